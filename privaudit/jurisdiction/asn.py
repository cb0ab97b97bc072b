"""The ASN map: which company runs the network (autonomous system) a server
address is announced from.

Data lives in ``rules/asn/*.yaml`` (schema: ``asn.schema.json`` beside it),
one entry per operator with its AS numbers, headquarters country, parent
company, the kind of network, and a public ``source`` naming the AS's holder.
Users add or override entries with ``asn/*.yaml`` in their ``--rules``
folders (:func:`user_asn_files`).

The map is consulted only when an ASN database (GeoLite2-ASN, DB-IP ASN lite)
is configured, since only such a database says which AS an address is in. How
the network operator's country counts is decided in :class:`~privaudit.jurisdiction.Locator`
(see the module docstring there): it is always evidence, and it joins
``jurisdictions`` only when the network is run by the service operator's own
company family, or when no service operator is known at all.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from privaudit import resources
from privaudit.errors import RuleError
from privaudit.jurisdiction.countries import is_country
from privaudit.jurisdiction.operators import company_items, expand_yaml_paths, user_data_files

SCHEMA_FILE = "asn.schema.json"

#: Kinds of network that hold customers' or the operator's own data (servers),
#: as opposed to networks that mostly carry traffic (backbone, mobile, isp,
#: education).
HOSTING_KINDS = frozenset({"cloud", "cdn", "hosting", "content"})


@dataclass(frozen=True, slots=True)
class AsnEntry:
    """One autonomous system of the ASN map."""

    asn: int
    name: str
    """Who runs the network (the operator's legal or trade name)."""
    country: str
    """Headquarters country of the network's operator."""
    kind: str
    """backbone, mobile, isp, education, cloud, cdn, hosting or content."""
    source: str
    as_name: str | None = None
    """The AS name as the registry lists it, e.g. "CHINANET-BACKBONE"."""
    as_country: str | None = None
    """Set when this AS belongs to a subsidiary based elsewhere than the operator."""
    parent: str | None = None
    parent_country: str | None = None
    aliases: tuple[str, ...] = ()
    origin: str = ""
    """``file:line`` the entry came from."""

    @property
    def countries(self) -> tuple[str, ...]:
        """Every country this network's operator side names, strongest first."""
        out: list[str] = []
        for c in (self.as_country, self.country, self.parent_country):
            if c and c not in out:
                out.append(c)
        return tuple(out)

    def describe(self) -> str:
        text = f"{self.name} ({self.country}), {self.kind} network"
        if self.as_country and self.as_country != self.country:
            text += f"; this AS is its {self.as_country} arm"
        if self.parent:
            text += f"; parent {self.parent}" + (f" ({self.parent_country})" if self.parent_country else "")
        return text + f"; source: {self.source}"


_EXAMPLE = """an ASN map entry looks like:
    networks:
      - name: China Telecom Corporation Ltd.
        country: CN            # ISO 3166-1 alpha-2 of the headquarters
        parent: China Telecommunications Corporation   # optional, with parent_country
        parent_country: CN
        kind: backbone         # backbone|mobile|isp|education|cloud|cdn|hosting|content
        source: https://bgp.he.net/AS4134   # a public page naming the AS's holder
        asns: [4134, {asn: 4812, name: CHINANET-SH-AP}]"""


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    return json.loads((resources.rules_dir() / "asn" / SCHEMA_FILE).read_text(encoding="utf-8"))


def shipped_asn_files() -> list[Path]:
    return sorted((resources.rules_dir() / "asn").glob("*.yaml"))


def user_asn_files(rules_dirs: Iterable[str | Path]) -> list[Path]:
    """``<dir>/asn/*.yaml`` for each user ``--rules`` folder; pass the result as
    ``Locator(asn_files=...)``. They override the shipped map AS by AS."""
    return user_data_files(rules_dirs, "asn")


def load_asn_file(path: Path) -> list[AsnEntry]:
    """Parse and validate one ASN map file."""
    entries: list[AsnEntry] = []
    for net, spec, line in company_items(path, _schema(), _EXAMPLE, "networks", "asns", "asn"):
        as_country = spec.get("country")
        if as_country is not None and not is_country(as_country):
            raise RuleError(f"{path}:{line}: country: {as_country!r} is not an ISO 3166-1 alpha-2 country code")
        entries.append(
            AsnEntry(
                asn=int(spec["asn"]),
                name=str(net["name"]),
                country=str(net["country"]),
                kind=str(spec.get("kind", net["kind"])),
                source=str(spec.get("source", net["source"])),
                as_name=str(spec["name"]) if "name" in spec else None,
                as_country=str(as_country) if as_country else None,
                parent=str(net["parent"]) if "parent" in net else None,
                parent_country=str(net["parent_country"]) if "parent_country" in net else None,
                aliases=tuple(str(a) for a in net.get("aliases", ())),
                origin=f"{path}:{line}",
            )
        )
    return entries


class AsnMap:
    """AS number -> :class:`AsnEntry`, from layers of files (the shipped map,
    then the user's). Within a layer an AS may appear once; a later layer
    overrides an earlier one AS by AS."""

    def __init__(self, layers: Iterable[Iterable[str | Path]]):
        self._by_asn: dict[int, AsnEntry] = {}
        for layer in layers:
            seen: dict[int, AsnEntry] = {}
            for path in expand_yaml_paths(layer, "ASN map file"):
                for entry in load_asn_file(path):
                    if entry.asn in seen:
                        raise RuleError(f"{entry.origin}: AS{entry.asn} is already listed at {seen[entry.asn].origin}")
                    seen[entry.asn] = entry
            self._by_asn.update(seen)

    @classmethod
    def default(cls, extra: Iterable[str | Path] = ()) -> AsnMap:
        return cls([shipped_asn_files(), list(extra)])

    def __len__(self) -> int:
        return len(self._by_asn)

    def entries(self) -> list[AsnEntry]:
        return list(self._by_asn.values())

    def lookup(self, asn: int | None) -> AsnEntry | None:
        return self._by_asn.get(asn) if asn is not None else None


def norm_name(name: str) -> str:
    """A company name for comparison: case, punctuation and a bracketed trade
    name ignored ("Beijing Volcano Engine ... Ltd. (Volcengine)")."""
    return "".join(ch for ch in re.sub(r"\s*\([^)]*\)", "", name).casefold() if ch.isalnum())
