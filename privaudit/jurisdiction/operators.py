"""The operator map: which organisation runs the service behind a domain.

Data lives in ``rules/operators/*.yaml`` (schema: ``operators.schema.json``
beside it). Each operator names its country (ISO 3166-1 alpha-2 of the
headquarters), its parent company and the parent's country where there is one,
a category, and a public ``source`` that names the domain's owner.

Look-ups go by the longest listed suffix of the host, down to its registrable
domain as the Public Suffix List defines it (the copy in ``rules/psl/``,
never fetched; see :mod:`privaudit.jurisdiction.psl`): ``gator.volces.com`` -> ``volces.com``; an entry may also name
a sub-domain (``bugly.qq.com``) that is more specific than its parent's.
"""

from __future__ import annotations

import functools
import re
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from privaudit import resources
from privaudit.errors import RuleError
from privaudit.jurisdiction._yaml import load_valid
from privaudit.jurisdiction.countries import is_country
from privaudit.jurisdiction.psl import registrable_domain
from privaudit.model import Operator

SCHEMA_FILE = "operators.schema.json"


@dataclass(frozen=True, slots=True)
class OperatorEntry:
    """One domain of the operator map."""

    domain: str
    """The listed domain: a registrable domain or a sub-domain of one."""
    operator: Operator
    category: str
    aliases: tuple[str, ...] = ()
    """Other names of the operator, e.g. as written in certificate subjects."""
    origin: str = ""
    """``file:line`` the entry came from."""


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    path = resources.rules_dir() / "operators" / SCHEMA_FILE
    return json.loads(path.read_text(encoding="utf-8"))


def shipped_operator_files() -> list[Path]:
    return sorted((resources.rules_dir() / "operators").glob("*.yaml"))


def expand_yaml_paths(paths: Iterable[str | Path], what: str = "operator map file") -> list[Path]:
    """Files as given, folders as their ``*.yaml``/``*.yml`` files by name; a
    path that does not exist is a :class:`RuleError`."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")))
        elif p.is_file():
            out.append(p)
        else:
            raise RuleError(f"{p}: {what} not found")
    return out


def user_data_files(rules_dirs: Iterable[str | Path], folder: str) -> list[Path]:
    """``<dir>/<folder>/*.yaml`` (and ``*.yml``) in each user rules folder, in
    the order the folders are given; folders without one contribute nothing."""
    out: list[Path] = []
    for d in rules_dirs:
        sub = Path(d) / folder
        if sub.is_dir():
            out.extend(expand_yaml_paths([sub]))
    return out


def user_operator_files(rules_dirs: Iterable[str | Path]) -> list[Path]:
    """The operator-map files users keep beside their detection rules:
    ``<dir>/operators/*.yaml`` for each ``--rules`` folder. Pass the result as
    ``Locator(operator_files=...)``; they override the shipped map domain by
    domain (a domain listed twice among them is a RuleError naming both
    places)."""
    return user_data_files(rules_dirs, "operators")


_EXAMPLE = """an operator entry looks like:
    operators:
      - name: Hangzhou DeepSeek Artificial Intelligence Co., Ltd.
        country: CN            # ISO 3166-1 alpha-2 of the headquarters
        parent: High-Flyer     # optional, with parent_country
        parent_country: CN
        category: ai/chat
        source: https://en.wikipedia.org/wiki/DeepSeek   # a public page naming the owner
        domains: [deepseek.com]"""


def company_items(
    path: Path, schema: dict, example: str, companies: str, items: str, scalar: str
) -> Iterator[tuple[Mapping, Mapping, int]]:
    """Loads and validates a map file whose top key ``companies`` lists
    company entries each with a list ``items`` (domains, AS numbers), and
    yields (company, item, item's line) with a bare item as ``{scalar: item}``."""
    data = load_valid(path, schema, example)
    for company in data[companies]:
        check_company(path, company)
        for i, item in enumerate(company[items]):
            spec = item if isinstance(item, Mapping) else {scalar: item}
            yield company, spec, company[items].item_lines[i]


def check_company(path: Path, node: Mapping) -> None:
    """The checks a schema cannot make on a company entry (operator or
    network): real country codes, and no parent country without a parent."""
    for key in ("country", "parent_country"):
        if key in node and not is_country(node[key]):
            raise RuleError(
                f"{path}:{node.key_lines[key]}: {key}: {node[key]!r} is not an ISO 3166-1 "
                "alpha-2 country code (e.g. CN, US, KR)"
            )
    if "parent_country" in node and "parent" not in node:
        raise RuleError(f"{path}:{node.key_lines['parent_country']}: parent_country given without parent")


def load_operator_file(path: Path) -> list[OperatorEntry]:
    """Parse and validate one operator map file."""
    entries: list[OperatorEntry] = []
    for op, spec, line in company_items(path, _schema(), _EXAMPLE, "operators", "domains", "domain"):
        domain = str(spec["domain"])
        if registrable_domain(domain) is None:
            raise RuleError(
                f"{path}:{line}: {domain!r} is a public suffix, not a registrable domain "
                "(list e.g. example.com.cn, not com.cn)"
            )
        operator = Operator(
            name=str(op["name"]),
            country=str(op["country"]),
            parent=str(op["parent"]) if "parent" in op else None,
            parent_country=str(op["parent_country"]) if "parent_country" in op else None,
            source=str(spec.get("source", op["source"])),
        )
        entries.append(
            OperatorEntry(
                domain=domain,
                operator=operator,
                category=str(spec.get("category", op["category"])),
                aliases=tuple(str(a) for a in op.get("aliases", ())),
                origin=f"{path}:{line}",
            )
        )
    return entries


class OperatorMap:
    """Domain -> :class:`OperatorEntry`, built from one or more layers of files.

    Within a layer a domain may appear once (a second listing is a
    :class:`RuleError` naming both places). A later layer (the user's own
    files) overrides an earlier one (the shipped map) domain by domain.
    """

    def __init__(self, layers: Iterable[Iterable[str | Path]]):
        self._by_domain: dict[str, OperatorEntry] = {}
        for layer in layers:
            seen: dict[str, OperatorEntry] = {}
            for path in expand_yaml_paths(layer):
                for entry in load_operator_file(path):
                    if entry.domain in seen:
                        raise RuleError(
                            f"{entry.origin}: {entry.domain} is already listed at {seen[entry.domain].origin}"
                        )
                    seen[entry.domain] = entry
            self._by_domain.update(seen)
        self._by_name: dict[str, OperatorEntry] = {}
        for entry in self._by_domain.values():
            for name in (entry.operator.name, *entry.aliases):
                self._by_name.setdefault(_norm_name(name), entry)
                # "Beijing Volcano Engine Technology Co., Ltd. (Volcengine)" is
                # written without the bracketed trade name in certificates.
                bare = re.sub(r"\s*\([^)]*\)", "", name)
                if bare != name:
                    self._by_name.setdefault(_norm_name(bare), entry)

    @classmethod
    def default(cls, extra: Iterable[str | Path] = ()) -> OperatorMap:
        return cls([shipped_operator_files(), list(extra)])

    def __len__(self) -> int:
        return len(self._by_domain)

    def entries(self) -> list[OperatorEntry]:
        return list(self._by_domain.values())

    def lookup(self, host: str) -> OperatorEntry | None:
        """The entry for the longest listed suffix of ``host`` that is at least
        its registrable domain, or None."""
        host = host.strip().rstrip(".").lower()
        reg = registrable_domain(host)
        if reg is None:
            return None
        labels = host.split(".")
        n_reg = reg.count(".") + 1
        for start in range(0, len(labels) - n_reg + 1):
            entry = self._by_domain.get(".".join(labels[start:]))
            if entry is not None:
                return entry
        return None

    def lookup_name(self, name: str) -> OperatorEntry | None:
        """The entry whose operator name or alias matches ``name`` (e.g. a
        certificate's subject O), ignoring case and punctuation."""
        return self._by_name.get(_norm_name(name))


def _norm_name(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())

