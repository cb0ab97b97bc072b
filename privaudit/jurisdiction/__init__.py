"""Jurisdiction: which countries' law reaches the data an app sends to a host.

:class:`Locator` turns what the capture says about one host (its name, the
addresses the app actually talked to, the server certificate, the CNAME chain)
into an :class:`~privaudit.model.EndpointInfo`. It never resolves names itself:
the address that counts is the one in the capture.

Evidence, strongest first:

``geoip``   a GeoIP country/city database the user supplied (``--geoip``)
``rir``     the regional internet registry's country for the address block
            (embedded ``iptocc`` data, offline)
``asn``     the autonomous system from a GeoIP ASN database, and who runs that
            network according to the ASN map (``rules/asn/*.yaml``)
``entity``  the operator map (``rules/operators/*.yaml``): who runs the domain,
            where it and its parent company are based, with a public source
``tls``     the server certificate's subject organisation and country
``cname``   CNAME targets whose domain is in the operator map: from the
            capture's DNS flows, or from a DNS look-up the user asked for
            (:func:`resolve_hosts`, ``--resolve``), which says so
``tld``     a country-code TLD (weak; recorded, not counted)
``region``  a cloud region name in a host name (a hint; recorded, not counted)
``demo``    a demo-only stand-in address (``privaudit demo`` only)

Conflicts are kept: every country that any counted piece of evidence names is in
``jurisdictions``, and ``confidence_reasons`` say where the pieces disagree.

The network operator (ASN map) and ``jurisdictions``
-----------------------------------------------------
The company whose network announces the server address is always recorded as
``asn`` evidence with its country. That country joins ``jurisdictions`` only

- when the network belongs to the service operator's own company family (the
  same company or parent as the operator, certificate holder or CNAME target
  operator: e.g. a Volcengine host on Volcengine's AS137718, or a ByteDance
  service on ByteDance's US network AS396986, which adds US); or
- when no service operator is known at all (a host missing from the operator
  map, a bare address): then the network operator is the best available answer
  to "who holds the server", and a reason says it was used that way.

Otherwise (a known operator on someone else's network: a Chinese app on a
backbone carrier's addresses, or on AWS) the network's country is evidence but
not a jurisdiction: a carrier only transports the data, and a cloud host is
the operator's processor whose location already counts through the server
address. A reason notes the case where a data-holding network (cloud, CDN,
hosting) is based in a country no other evidence names, so a reader can weigh
it (a processor may be reached by its home country's law).

Resolved DNS (``resolved=`` of :meth:`Locator.describe`)
--------------------------------------------------------
A look-up made at audit time, only when the user asked for one. Its CNAME chain
is evidence like the capture's (marked as resolved, naming the DNS server);
its addresses are used only when the capture recorded none for the host, are
marked as resolved in every piece of evidence, and never appear in ``ips``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from privaudit.errors import RuleError
from privaudit.jurisdiction.addresses import non_public_reason, parse_ip, registry_country
from privaudit.jurisdiction.countries import is_country
from privaudit.jurisdiction.asn import HOSTING_KINDS, AsnEntry, AsnMap, load_asn_file, norm_name, user_asn_files
from privaudit.jurisdiction.geoip import GeoDatabases, find_geoip_databases
from privaudit.jurisdiction.hints import region_hints, tld_country
from privaudit.jurisdiction.legal import load_legal_note_files, load_legal_notes, notes_for
from privaudit.jurisdiction.operators import (
    OperatorEntry,
    OperatorMap,
    load_operator_file,
    registrable_domain,
    user_operator_files,
)
from privaudit.jurisdiction.parties import classify_parties
from privaudit.jurisdiction.resolve import DnsAnswer, cname_chain, parse_nameserver, resolve_hosts
from privaudit.model import CertInfo, EndpointInfo, Evidence

__all__ = [
    "Locator",
    "OperatorMap",
    "OperatorEntry",
    "AsnMap",
    "AsnEntry",
    "DnsAnswer",
    "registrable_domain",
    "load_legal_notes",
    "notes_for",
    "check_data_files",
    "classify_parties",
    "cname_chain",
    "find_geoip_databases",
    "parse_nameserver",
    "resolve_hosts",
    "user_asn_files",
    "user_operator_files",
]


def _describe_operator(entry: OperatorEntry) -> str:
    op = entry.operator
    text = f"{op.name} ({op.country}), {entry.category}"
    if op.parent:
        text += f"; parent {op.parent}" + (f" ({op.parent_country})" if op.parent_country else "")
    return text + f"; source: {op.source}"


@dataclass
class _Case:
    """What :meth:`Locator.describe` learns about one host, step by step."""

    host: str
    evidence: list[Evidence] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    addr_countries: list[str] = field(default_factory=list)
    """One country per address that has one (GeoIP if known, else registry)."""
    registry_countries: set[str] = field(default_factory=set)
    geo_countries: set[str] = field(default_factory=set)
    party_countries: set[str] = field(default_factory=set)
    """Countries of those who run or terminate the service: operator, parent,
    certificate holder and subject country, CNAME target operators."""
    party_names: list[str] = field(default_factory=list)
    party_entries: list[OperatorEntry] = field(default_factory=list)
    """Service operators found (host's own, certificate holder, CNAME targets)."""
    networks: list[AsnEntry] = field(default_factory=list)
    """Network operators (ASN map) of the addresses, one per distinct AS."""
    network_countries: set[str] = field(default_factory=set)
    """Network operator countries that count (see the module docstring)."""
    asn: int | None = None
    as_org: str | None = None

    def add(self, kind: str, detail: str, country: str | None = None) -> None:
        self.evidence.append(Evidence(kind, detail, country))

    def add_party(self, kind: str, lead: str, entry: OperatorEntry, label: str) -> None:
        """Evidence that ``entry``'s operator (and its parent) handle the data."""
        op = entry.operator
        self.add(kind, f"{lead} {_describe_operator(entry)}", op.country)
        if op.parent_country and op.parent_country != op.country:
            self.add(kind, f"{op.name}'s parent company {op.parent} is based in {op.parent_country}", op.parent_country)
        self.party_countries.update(c for c in (op.country, op.parent_country) if c)
        self.party_names.append(f"{label} {op.name} ({op.country})")
        self.party_entries.append(entry)

    @property
    def hosting_country(self) -> str | None:
        return Counter(self.addr_countries).most_common(1)[0][0] if self.addr_countries else None

    @property
    def jurisdictions(self) -> tuple[str, ...]:
        return tuple(
            sorted(
                set(self.addr_countries)
                | self.registry_countries
                | self.geo_countries
                | self.party_countries
                | self.network_countries
            )
        )


class Locator:
    """Describes endpoints. Build once per audit; :meth:`describe` depends only
    on its arguments and the data loaded here.

    ``geoip_paths``: MMDB files (GeoLite2/GeoIP2 Country, City, ASN; DB-IP lite),
    type detected from metadata; a missing or corrupt file is a ConfigError.
    ``operator_files``: extra operator-map YAML files or folders; they override
    the shipped map domain by domain (:func:`user_operator_files` finds them
    in ``--rules`` folders).
    ``asn_files``: extra ASN-map YAML files or folders, overriding the shipped
    ``rules/asn`` AS by AS (:func:`user_asn_files`). The ASN map is used only
    when one of ``geoip_paths`` is an ASN database.
    :func:`find_geoip_databases` says which ``geoip_paths`` to use when the
    user gives none (environment, config file, standard folders).
    ``demo_addresses``: host -> stand-in public address, for ``privaudit demo``
    only (see :mod:`privaudit.jurisdiction.demo_addresses`).
    """

    def __init__(
        self,
        geoip_paths: Iterable[str | Path] = (),
        operator_files: Iterable[str | Path] = (),
        demo_addresses: Mapping[str, str] | None = None,
        asn_files: Iterable[str | Path] = (),
    ):
        self.geo = GeoDatabases(geoip_paths)
        self.operators = OperatorMap.default(operator_files)
        self.asns = AsnMap.default(asn_files)
        self.demo_addresses = {k.lower(): v for k, v in (demo_addresses or {}).items()}

    def close(self) -> None:
        self.geo.close()

    def __enter__(self) -> Locator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(
        self,
        host: str,
        ips: Sequence[str],
        cert: CertInfo | None = None,
        cnames: Sequence[str] = (),
        resolved: DnsAnswer | None = None,
    ) -> EndpointInfo:
        """Everything known about where data sent to ``host`` goes.

        ``ips`` are the addresses the app talked to, from the capture; ``cert``
        the server's leaf certificate; ``cnames`` the CNAME chain seen in the
        capture's DNS flows (:func:`cname_chain` builds it from DNS answers);
        ``resolved`` what a DNS look-up the user asked for said about ``host``
        (:func:`resolve_hosts`).
        """
        host = host.strip().strip("[]").rstrip(".").lower()
        case = _Case(host)
        addresses = self._addresses_to_use(case, _unique(ips))
        for text in addresses:
            self._address_evidence(case, text)
        if not addresses and resolved is not None and resolved.addresses:
            via = f"resolved at audit time via DNS server {resolved.server}, not seen in the capture"
            for text in resolved.addresses:
                self._address_evidence(case, text, via)
            case.reasons.append(
                f"the capture recorded no server address; the address country comes from a DNS look-up at audit "
                f"time via {resolved.server}, which may differ from the server the app reached"
            )
        entry = self.operators.lookup(host)
        if entry is not None:
            case.add_party("entity", f"{entry.domain} is operated by", entry, "operator")
        cert_entry = self._cert_evidence(case, cert, entry) if cert is not None else None
        chain = [c.rstrip(".").lower() for c in _unique(cnames)]
        for cname in chain:
            self._cname_evidence(case, cname)
        if resolved is not None:
            for cname in resolved.cnames:
                if cname not in chain:
                    chain.append(cname)
                    self._cname_evidence(case, cname, f" (resolved at audit time via DNS server {resolved.server})")
            if resolved.error and not resolved.cnames and not resolved.addresses:
                case.add("cname", f"DNS look-up of {host} via {resolved.server} at audit time: {resolved.error}")
        self._network_decision(case)
        tld = self._hint_evidence(case, [host, *chain])
        operator = entry or cert_entry
        return EndpointInfo(
            host=host,
            ips=tuple(addresses),
            hosting_country=case.hosting_country,
            asn=case.asn,
            as_org=case.as_org,
            operator=operator.operator if operator else None,
            jurisdictions=case.jurisdictions,
            evidence=tuple(case.evidence),
            confidence=_confidence(case, tld),
            confidence_reasons=tuple(case.reasons),
        )

    # -- the steps ---------------------------------------------------------------------

    def _addresses_to_use(self, case: _Case, addresses: list[str]) -> list[str]:
        if not addresses and parse_ip(case.host) is not None:
            addresses = [case.host]  # the app contacted a literal address
        demo_ip = self.demo_addresses.get(case.host)
        if demo_ip is None:
            return addresses
        captured = ", ".join(addresses) or "none recorded"
        case.add(
            "demo",
            f"demo-only address {demo_ip} stands in for the captured address(es) ({captured}); "
            "the imitation server really ran on this machine. Not a finding about any real service.",
        )
        case.reasons.append("demo: the address is a demo-only stand-in, not one the app contacted")
        return [demo_ip]

    def _address_evidence(self, case: _Case, text: str, via: str | None = None) -> None:
        note = f" ({via})" if via else ""
        addr = parse_ip(text)
        if addr is None:
            case.add("rir", f"{text!r} is not an IP address; no country{note}")
            return
        why = non_public_reason(addr)
        if why is not None:
            case.add("rir", f"{addr}: {why}; it has no country{note}")
            return
        geo = self.geo.locate(str(addr))
        if geo is not None and geo.country:
            detail = f"{addr} located in {geo.country}"
            if geo.city:
                detail += f" ({geo.city})"
            if geo.registered_country and geo.registered_country != geo.country:
                detail += f"; registered to {geo.registered_country}"
            case.add("geoip", f"{detail} by {geo.source}{note}", geo.country)
            case.geo_countries.add(geo.country)
        rir = registry_country(addr)
        if rir is not None:
            case.add("rir", f"{addr} is in an address block the regional internet registry lists for {rir}{note}", rir)
            case.registry_countries.add(rir)
        else:
            case.add("rir", f"{addr} is not in the embedded registry data; no registry country{note}")
        best = geo.country if geo is not None and geo.country else rir
        if best:
            case.addr_countries.append(best)
        a = self.geo.asn(str(addr))
        if a is not None:
            org = f" {a.org}" if a.org else ""
            net = self.asns.lookup(a.asn)
            if net is None:
                case.add("asn", f"{addr} is announced by AS{a.asn}{org} ({a.source}); network operator not in the ASN map{note}")
            else:
                case.add(
                    "asn",
                    f"{addr} is announced by AS{a.asn}{org} ({a.source}); the network is run by {net.describe()}{note}",
                    net.countries[0],
                )
                if all(n.asn != net.asn for n in case.networks):
                    case.networks.append(net)
            if case.asn is None:
                case.asn, case.as_org = a.asn, a.org

    def _family(self, names: Iterable[str | None]) -> set[str]:
        """Normalised names of the companies ``names`` belong to: each name,
        and the operator map's entry for it (its name, aliases and parent)."""
        out: set[str] = set()
        for name in names:
            if not name:
                continue
            out.add(norm_name(name))
            bracket = re.search(r"\(([^)]*)\)", name)
            if bracket:
                out.add(norm_name(bracket.group(1)))
            mapped = self.operators.lookup_name(name)
            if mapped is not None:
                out.update(norm_name(n) for n in (mapped.operator.name, mapped.operator.parent, *mapped.aliases) if n)
        out.discard("")
        return out

    def _network_decision(self, case: _Case) -> None:
        """Whether the network operators' countries join ``jurisdictions``
        (rules in the module docstring); the reasons say which way and why."""
        if not case.networks:
            return
        service: set[str] = set()
        for e in case.party_entries:
            service |= self._family([e.operator.name, e.operator.parent, *e.aliases])
        for net in case.networks:
            label = f"AS{net.asn} network operator {net.name} ({'/'.join(net.countries)})"
            if not case.party_entries:
                case.network_countries.update(net.countries)
                case.reasons.append(
                    f"no service operator is known, so the {label} is listed as a jurisdiction "
                    "as the best available answer to who holds the server"
                )
            elif self._family([net.name, net.parent, *net.aliases]) & service:
                case.network_countries.update(net.countries)
                case.reasons.append(f"the server sits in the service operator's own network: {label}")
            else:
                known = case.jurisdictions
                outside = [c for c in net.countries if c not in known]
                if net.kind in HOSTING_KINDS and outside:
                    case.reasons.append(
                        f"the server sits in a {net.kind} network of another company, {label}; "
                        f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} recorded as evidence, "
                        "not as a jurisdiction, since that company "
                        "acts for the service operator (its home country's law may still reach data it holds)"
                    )

    def _cert_evidence(self, case: _Case, cert: CertInfo, direct: OperatorEntry | None) -> OperatorEntry | None:
        """Adds ``tls`` evidence; returns the operator the certificate names if
        it is in the map and is not the host's own."""
        c = (cert.subject_c or "").strip().upper() or None
        if c is not None and not is_country(c):
            c = None
        if cert.subject_o or cert.subject_c:
            parts = [f"O={cert.subject_o}" if cert.subject_o else "", f"C={cert.subject_c}" if cert.subject_c else ""]
            case.add("tls", f"server certificate subject {', '.join(p for p in parts if p)}", c)
            if c:
                case.party_countries.add(c)
                case.party_names.append(f"certificate subject country {c}")
        else:
            issuer = cert.issuer_o or cert.issuer_cn or "an unnamed issuer"
            case.add("tls", f"server certificate names no organisation (domain-validated, issued by {issuer})")
        found = self.operators.lookup_name(cert.subject_o) if cert.subject_o else None
        if found is None and cert.sans:
            # A certificate whose every name (SAN) belongs to one mapped
            # operator shows that operator holds the key. Certificates shared
            # by several parties (CDN certificates with many customers'
            # names) say nothing about any one of them.
            entries = [self.operators.lookup(san.lstrip("*.")) for san in cert.sans]
            if all(entries) and len({e.operator.name for e in entries}) == 1:
                found = entries[0]
        if found is None or (direct is not None and found.operator.name == direct.operator.name):
            return None
        case.add_party("tls", f"the certificate for {case.host} belongs to", found, "certificate holder")
        return found

    def _cname_evidence(self, case: _Case, cname: str, via: str = "") -> None:
        entry = self.operators.lookup(cname)
        if entry is None:
            case.add("cname", f"{case.host} is an alias (CNAME) of {cname}{via}; operator not in the map")
        else:
            case.add_party(
                "cname", f"{case.host} is an alias (CNAME) of {cname}{via}, run by", entry, "CNAME target operator"
            )

    @staticmethod
    def _hint_evidence(case: _Case, names: list[str]) -> str | None:
        """ccTLD and cloud-region hints; returns the host's ccTLD country."""
        tld = tld_country(case.host)
        if tld is not None and tld[1] is not None:
            case.add(
                "tld",
                f"country-code top-level domain .{tld[0]} ({tld[1]}); the name's registry, not the server's location",
                tld[1],
            )
        for name in names:
            for region, country in region_hints(name.lower()):
                where = f" ({country})" if country else ""
                case.add(
                    "region",
                    f"hint only: {name} contains the cloud region name {region}{where}; "
                    "region labels are chosen by the operator and prove nothing alone",
                    country,
                )
        return tld[1] if tld else None


def _confidence(case: _Case, tld: str | None) -> str:
    """"high" when the address country and the operator side agree, "medium"
    when only one side is known or they conflict, "low" when neither is; the
    reasons say which, and what else to keep in mind."""
    reasons = case.reasons
    hosting = case.hosting_country
    parties = "; ".join(case.party_names)
    registry_only = not case.geo_countries
    where = "registered to" if registry_only else "located in"
    if hosting and case.party_countries:
        if hosting in case.party_countries:
            level = "high"
            reasons.append(f"the server address ({where} {hosting}) agrees with {parties}")
        else:
            level = "medium"
            reasons.append(
                f"conflict: the server address is {where} {hosting}, while the operator side points "
                f"elsewhere ({parties}); all of these countries are listed as jurisdictions"
            )
    elif case.party_countries:
        level = "medium"
        reasons.append(f"only the operator side is known ({parties}); the server address gave no country")
    elif hosting:
        level = "medium"
        reg = registrable_domain(case.host) or case.host
        reasons.append(f"only the server address gives a country ({hosting}); {reg} is not in the operator map")
    else:
        level = "low"
        reasons.append("no address country and no known operator")
    countries = set(case.addr_countries)
    if len(countries) > 1:
        reasons.append(f"the app reached this host at addresses in several countries: {', '.join(sorted(countries))}")
    if hosting and registry_only:
        reasons.append(
            "the address country comes from the registry (where the address block is registered), "
            "not from a GeoIP database; pass --geoip for the server's location"
        )
    if case.geo_countries and case.registry_countries and case.geo_countries != case.registry_countries:
        reasons.append(
            f"GeoIP places the server in {', '.join(sorted(case.geo_countries))} but the block is registered to "
            f"{', '.join(sorted(case.registry_countries))}; both are listed"
        )
    if tld is not None:
        known = countries | case.party_countries
        if known and tld not in known:
            reasons.append(f"the country-code TLD points to {tld}, which no stronger evidence confirms")
        elif known:
            reasons.append(f"the country-code TLD ({tld}) agrees")
    return level


def _unique(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        item = item.strip()
        if item and item not in out:
            out.append(item)
    return out


def check_data_files(root: str | Path) -> list[str]:
    """Validate the jurisdiction data below a rules folder (``operators/*.yaml``,
    ``asn/*.yaml`` and ``jurisdictions/*.yaml``); one message per bad file,
    naming file:line.

    For ``privaudit rules validate``, whose detect-rule checker should skip
    these two folders and call this instead.
    """
    root = Path(root)
    errors: list[str] = []
    for folder, check_one, check_all in (
        ("operators", load_operator_file, lambda paths: OperatorMap([paths])),
        ("asn", load_asn_file, lambda paths: AsnMap([paths])),
        ("jurisdictions", lambda p: load_legal_note_files([p]), load_legal_note_files),
    ):
        good: list[Path] = []
        for path in sorted((root / folder).glob("*.y*ml")):
            try:
                check_one(path)
                good.append(path)
            except RuleError as exc:
                errors.append(str(exc))
        try:  # what only shows across files: a domain or country listed twice
            check_all(good)
        except RuleError as exc:
            errors.append(str(exc))
    return errors
