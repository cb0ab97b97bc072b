"""Turns a findings document into what the report shows.

All grouping, counting, sorting and judging happens here, in Python, so the
templates only display and the logic is tested without rendering. The input is
the findings document as a plain dict (CONTRACT.md plus the extras in the
helpers' brief), which may come from a saved JSON file: every field other than
``schema_version`` is optional here, and every string in it is untrusted (host
names, rule ids, evidence come from captured traffic or a file anyone can edit).
The templates escape on output; this module never builds markup.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from privaudit.errors import InputError
from privaudit.model import CATEGORIES, SEVERITIES
from privaudit.report.i18n import Translator

SUPPORTED_SCHEMA_VERSIONS = (1,)

#: Findings shown per endpoint in the main body; the rest go to the appendix.
MAIN_FINDINGS_PER_ENDPOINT = 15
#: Findings per endpoint in the appendix; beyond that the report says how many
#: were left out and points to the findings JSON.
APPENDIX_FINDINGS_PER_ENDPOINT = 200
#: Warnings listed in the coverage section.
MAX_WARNINGS = 100
#: Longest untrusted value shown in full; longer ones are cut with an ellipsis.
MAX_VALUE_CHARS = 300
#: Hosts named in one summary sentence or one country row; the rest are counted.
MAX_NAMED_HOSTS = 12

RATINGS: tuple[str, ...] = ("none", "low", "medium", "high", "critical")

#: Categories that identify the user or reveal what they said: sending them to
#: another country's jurisdiction is a transfer of personal data that needs a
#: legal basis (e.g. PIPA Art. 28-8, GDPR Chapter V).
KEY_CATEGORIES: frozenset[str] = frozenset({
    "chat_content", "email", "phone", "name", "national_id", "payment_card",
    "credentials", "advertising_id", "device_id", "contacts", "location",
})
#: Categories whose exposure in cleartext alone makes the verdict critical:
#: anyone on the path (Wi-Fi, ISP) can read or reuse them.
CLEARTEXT_CRITICAL: frozenset[str] = frozenset({
    "chat_content", "credentials", "national_id", "payment_card",
})
#: Device and network attributes: personal data when combined (fingerprinting),
#: but on their own they weigh less than the rest.
FINGERPRINT_CATEGORIES: frozenset[str] = frozenset({"device_info", "network_info"})
#: Countries whose law obliges organisations to hand data to state authorities
#: on request without independent oversight: CN (National Intelligence Law 2017
#: Art. 7, Data Security Law Art. 35) and RU (Federal Law 374-FZ "Yarovaya",
#: SORM). Kept short on purpose; a verdict must be explainable in one sentence.
STATE_ACCESS_COUNTRIES: frozenset[str] = frozenset({"CN", "RU"})

_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_RATING_RANK = {r: i for i, r in enumerate(RATINGS)}
_CATEGORY_RANK = {c: i for i, c in enumerate(CATEGORIES)}
_FLOW_KINDS = ("http", "tcp", "udp", "dns", "other")


# --------------------------------------------------------------------------
# Small helpers for untrusted values


def text(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """An untrusted value as a bounded string ("" for None)."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _list(value: object) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def _dict(value: object) -> dict:
    return value if isinstance(value, Mapping) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _severity_rank(sev: object) -> int:
    return _SEVERITY_RANK.get(str(sev), -1)


def _category_sort_key(cat: str) -> tuple[int, str]:
    return (_CATEGORY_RANK.get(cat, len(_CATEGORY_RANK)), cat)


def _bounded(items: list[str], t: Translator, limit: int = MAX_NAMED_HOSTS) -> list[str]:
    """The first ``limit`` items, then "and N more"."""
    if len(items) <= limit:
        return items
    return items[:limit] + [t("common.and_more", n=len(items) - limit)]


def _worst(ratings: Iterable[str]) -> str:
    return max(ratings, key=_RATING_RANK.__getitem__, default="none")


# --------------------------------------------------------------------------
# The view


@dataclass(frozen=True)
class FindingView:
    flow_index: str
    side: str
    category: str
    category_label: str
    rule: str
    method: str
    encoding: str
    location: str
    severity: str
    severity_known: bool
    evidence: str
    timestamp: str
    tls: bool | None


@dataclass(frozen=True)
class EvidenceView:
    kind: str
    detail: str
    country: str


@dataclass(frozen=True)
class OperatorView:
    name: str
    country: str
    parent: str
    parent_country: str
    source: str


@dataclass(frozen=True)
class EndpointView:
    anchor: str
    host: str
    ips: list[str]
    hosting_country: str
    asn: str
    as_org: str
    operator: OperatorView | None
    jurisdictions: list[str]
    evidence: list[EvidenceView]
    tls: bool | None
    flow_count: str
    categories: list[str]
    confidence: str
    confidence_known: bool
    confidence_reasons: list[str]
    first_seen: str
    demo_address: bool
    rating: str
    findings_total: int
    request_findings: int
    severity_counts: list[tuple[str, int]]
    findings: list[FindingView]
    appendix: list[FindingView]
    omitted: int


@dataclass(frozen=True)
class CountryView:
    code: str
    label: str
    foreign: bool
    state_access: bool
    roles: list[str]
    hosts: list[str]
    categories: list[str]
    findings: int


@dataclass(frozen=True)
class CategoryView:
    category: str
    label: str
    findings: int
    hosts: int
    countries: list[str]
    severity: str


@dataclass(frozen=True)
class Reason:
    level: str
    key: str
    """i18n key of the sentence; ``params`` fill its placeholders."""
    params: dict[str, object]


@dataclass(frozen=True)
class CleartextView:
    anchor: str
    host: str
    flow_count: str
    endpoint_tls: bool | None
    categories: list[str]
    findings: int


@dataclass(frozen=True)
class InputView:
    path: str
    sha256: str
    format: str
    flows: str


@dataclass(frozen=True)
class Figures:
    flows_analyzed: str
    endpoints: int
    endpoints_with_findings: int
    findings: int
    request_findings: int
    canary_findings: int
    countries: int
    foreign_countries: int


@dataclass(frozen=True)
class Coverage:
    flows_analyzed: str
    flows_by_kind: list[tuple[str, str]]
    non_http: int
    flows_with_errors: str
    cleartext_flows: str
    websocket_messages: str
    undecodable_bodies: str
    warnings: list[str]
    warnings_omitted: int


@dataclass(frozen=True)
class Method:
    tool_name: str
    tool_version: str
    rules_digest: str
    schema_version: str
    generated_at: str
    capture_start: str
    capture_end: str
    inputs: list[InputView]
    phases: list[tuple[str, str]]
    home_country: str
    redacted: str


@dataclass(frozen=True)
class ReportView:
    lang: str
    demo: bool
    unredacted: bool
    home_country: str | None
    home_country_label: str
    rating: str
    reasons: list[Reason]
    figures: Figures
    countries: list[CountryView]
    categories: list[CategoryView]
    endpoints: list[EndpointView]
    cleartext: list[CleartextView]
    coverage: Coverage
    method: Method
    appendix_endpoints: list[EndpointView] = field(default_factory=list)
    main_limit: int = MAIN_FINDINGS_PER_ENDPOINT
    appendix_limit: int = APPENDIX_FINDINGS_PER_ENDPOINT


# --------------------------------------------------------------------------
# Verdict


def endpoint_rating(
    categories: set[str],
    cleartext_categories: set[str],
    jurisdictions: list[str],
    operator_countries: set[str],
    home_country: str | None,
) -> list[Reason]:
    """The reasons one endpoint contributes to the verdict (may be empty).

    ``categories`` are the request-side categories sent to the endpoint,
    ``cleartext_categories`` those of them sent without TLS. A jurisdiction is
    *foreign* when it is not ``home_country``; with no home country given,
    every jurisdiction counts as foreign (the cautious reading), and the report
    says so.

    Every rule that applies adds a reason; the endpoint's rating, and the
    report's, is the most serious reason. The rules:

    - **critical** when chat content or an identifier (:data:`KEY_CATEGORIES`)
      goes to an endpoint with a foreign jurisdiction whose operator, or the
      operator's parent, is established in a country with state-access laws
      (:data:`STATE_ACCESS_COUNTRIES`: CN, RU);
    - **critical** when chat content, credentials, a national id or a card
      number travels in cleartext;
    - **high** when any personal data other than device/network attributes
      goes to a foreign jurisdiction, or to an endpoint whose jurisdiction is
      unknown; or when any personal data travels in cleartext;
    - **medium** when only device/network attributes go to a foreign or
      unknown jurisdiction, or personal data stays in the home country;
    - **low** when only device/network attributes stay in the home country;
    - **none** when no personal data was sent at all.
    """
    reasons: list[Reason] = []
    if not categories:
        return reasons
    foreign = [j for j in jurisdictions if j != home_country]
    key = categories & KEY_CATEGORIES
    state = sorted((operator_countries & STATE_ACCESS_COUNTRIES) - {home_country})
    if key and foreign and state:
        reasons.append(Reason("critical", "reason.state_access", {"categories": key, "countries": state}))
    bad_clear = cleartext_categories & CLEARTEXT_CRITICAL
    if bad_clear:
        reasons.append(Reason("critical", "reason.cleartext_sensitive", {"categories": bad_clear}))
    elif cleartext_categories:
        reasons.append(Reason("high", "reason.cleartext", {"categories": cleartext_categories}))
    substantive = categories - FINGERPRINT_CATEGORIES
    if not jurisdictions:
        reasons.append(Reason("high" if substantive else "medium", "reason.unknown_jurisdiction",
                              {"categories": categories}))
    elif foreign and substantive:
        reasons.append(Reason("high", "reason.foreign_transfer", {"categories": substantive, "countries": foreign}))
    elif foreign:
        reasons.append(Reason("medium", "reason.foreign_fingerprint", {"categories": categories, "countries": foreign}))
    elif substantive:
        reasons.append(Reason("medium", "reason.domestic", {"categories": substantive}))
    else:
        reasons.append(Reason("low", "reason.domestic_fingerprint", {"categories": categories}))
    return reasons


#: The order reasons are listed in within one rating level.
_REASON_ORDER = (
    "reason.state_access", "reason.cleartext_sensitive", "reason.foreign_transfer", "reason.cleartext",
    "reason.unknown_jurisdiction", "reason.foreign_fingerprint", "reason.domestic", "reason.domestic_fingerprint",
)


def _merge_reasons(per_host: list[tuple[str, list[Reason]]], t: Translator) -> list[Reason]:
    """One sentence per kind of reason, naming every host it applies to; the
    state-access reason once per set of countries, since each names its law."""
    merged: dict[tuple, dict] = {}
    for host, reasons in per_host:
        for r in reasons:
            group = tuple(r.params.get("countries", ())) if r.key == "reason.state_access" else ()
            m = merged.setdefault((r.key, group),
                                  {"key": r.key, "level": r.level, "hosts": [], "categories": set(), "countries": set()})
            m["level"] = _worst((m["level"], r.level))
            m["hosts"].append(host)
            m["categories"] |= set(r.params.get("categories", ()))
            m["countries"] |= set(r.params.get("countries", ()))
    out = []
    for m in merged.values():
        params = {
            "hosts": _bounded(m["hosts"], t),
            "host_count": len(m["hosts"]),
            "categories": [t.category(c) for c in sorted(m["categories"], key=_category_sort_key)],
            "countries": t.countries(sorted(m["countries"])),
        }
        out.append(Reason(m["level"], m["key"], params))
    out.sort(key=lambda r: (-_RATING_RANK[r.level], _REASON_ORDER.index(r.key)))
    return out


# --------------------------------------------------------------------------
# Building the view


def check_document(doc: object) -> int:
    """The document's schema_version, or :class:`InputError` if unreadable."""
    if not isinstance(doc, Mapping):
        raise InputError("the findings document must be a JSON object")
    version = doc.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        raise InputError(
            f"findings document has schema_version {version!r}; this privaudit reads "
            f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}"
        )
    return version


def _finding_view(f: Mapping, t: Translator) -> FindingView:
    sev = text(f.get("severity"))
    tls = f.get("tls")
    return FindingView(
        flow_index=text(f.get("flow_index")),
        side=text(f.get("side")),
        category=text(f.get("category")),
        category_label=t.category(text(f.get("category"))),
        rule=text(f.get("rule")),
        method=text(f.get("method")),
        encoding=text(f.get("encoding")),
        location=text(f.get("location")),
        severity=sev,
        severity_known=sev in _SEVERITY_RANK,
        evidence=text(f.get("evidence")),
        timestamp=text(f.get("timestamp")),
        tls=tls if isinstance(tls, bool) else None,
    )


def _finding_sort_key(f: Mapping) -> tuple:
    idx = _int(f.get("flow_index"))
    return (
        -_severity_rank(f.get("severity")),
        0 if f.get("side") == "request" else 1,
        _category_sort_key(text(f.get("category"))),
        idx if idx is not None else 1 << 62,
        text(f.get("location")),
    )


def _operator_view(op: object, t: Translator) -> OperatorView | None:
    if not isinstance(op, Mapping):
        return None
    return OperatorView(
        name=text(op.get("name")),
        country=t.country(op.get("country")),
        parent=text(op.get("parent")),
        parent_country=t.country(op.get("parent_country")) if op.get("parent_country") else "",
        source=text(op.get("source")),
    )


def build_view(
    doc: Mapping,
    lang: str,
    *,
    show_values: bool = False,
    home_country: str | None = None,
    main_limit: int = MAIN_FINDINGS_PER_ENDPOINT,
    appendix_limit: int = APPENDIX_FINDINGS_PER_ENDPOINT,
) -> ReportView:
    """The whole report as plain values, ready for a template.

    ``home_country`` is the user's own country (ISO code); without it the
    document's optional ``home_country`` is used, and failing that every
    jurisdiction counts as foreign. Raises :class:`InputError` for a document
    this version cannot read.
    """
    version = check_document(doc)
    t = Translator(lang)
    home = home_country or (doc.get("home_country") if isinstance(doc.get("home_country"), str) else None)
    home = home.upper() if home else None

    findings = [f for f in _list(doc.get("findings")) if isinstance(f, Mapping)]
    by_host: dict[str, list[Mapping]] = defaultdict(list)
    for f in findings:
        by_host[text(f.get("host"), limit=10_000)].append(f)

    raw_endpoints = [e for e in _list(doc.get("endpoints")) if isinstance(e, Mapping)]
    known_hosts = {text(e.get("host"), limit=10_000) for e in raw_endpoints}
    # A finding for a host the endpoint list lacks still gets shown, with unknowns.
    for host in by_host:
        if host not in known_hosts:
            raw_endpoints.append({"host": host})
            known_hosts.add(host)

    endpoint_views: list[EndpointView] = []
    per_host_reasons: list[tuple[str, list[Reason]]] = []
    country_hosts: dict[str, dict] = {}
    category_stats: dict[str, dict] = {}
    cleartext: list[CleartextView] = []

    for e in raw_endpoints:
        host_key = text(e.get("host"), limit=10_000)
        host = text(host_key)
        fs = sorted(by_host.get(host_key, []), key=_finding_sort_key)
        req = [f for f in fs if f.get("side") == "request"]
        req_cats = {text(f.get("category")) for f in req}
        clear_cats = {text(f.get("category")) for f in req if f.get("tls") is False}
        if e.get("tls") is False:
            clear_cats |= req_cats
        jurisdictions = [text(j) for j in _list(e.get("jurisdictions"))]
        hosting = e.get("hosting_country")
        if not jurisdictions and isinstance(hosting, str) and hosting:
            jurisdictions = [hosting]
        op = _dict(e.get("operator"))
        op_countries = {text(c) for c in (op.get("country"), op.get("parent_country")) if c}
        reasons = endpoint_rating(req_cats, clear_cats, jurisdictions, op_countries, home)
        if reasons:
            per_host_reasons.append((host, reasons))
        rating = _worst(r.level for r in reasons)

        doc_cats = [text(c) for c in _list(e.get("categories"))] or sorted(req_cats)
        sev_counts = Counter(text(f.get("severity")) for f in fs)
        anchor = f"ep-{len(endpoint_views) + 1}"
        confidence = text(e.get("confidence"))
        tls = e.get("tls")
        ev = EndpointView(
            anchor=anchor,
            host=host,
            ips=[text(ip) for ip in _list(e.get("ips"))],
            hosting_country=t.country(hosting),
            asn=text(_int(e.get("asn"))) if _int(e.get("asn")) is not None else "",
            as_org=text(e.get("as_org")),
            operator=_operator_view(e.get("operator"), t),
            jurisdictions=t.countries(jurisdictions),
            evidence=[
                EvidenceView(kind=text(x.get("kind")), detail=text(x.get("detail")),
                             country=t.country(x.get("country")) if x.get("country") else "")
                for x in _list(e.get("evidence")) if isinstance(x, Mapping)
            ],
            tls=tls if isinstance(tls, bool) else None,
            flow_count=text(_int(e.get("flow_count"))) if _int(e.get("flow_count")) is not None else "",
            categories=[t.category(c) for c in sorted(doc_cats, key=_category_sort_key)],
            confidence=confidence,
            confidence_known=confidence in ("high", "medium", "low"),
            confidence_reasons=[text(r) for r in _list(e.get("confidence_reasons"))],
            first_seen=text(e.get("first_seen")),
            demo_address=e.get("demo_address") is True,
            rating=rating,
            findings_total=len(fs),
            request_findings=len(req),
            severity_counts=[(s, sev_counts[s]) for s in reversed(SEVERITIES) if sev_counts[s]],
            findings=[_finding_view(f, t) for f in fs[:main_limit]],
            appendix=[_finding_view(f, t) for f in fs[main_limit:main_limit + appendix_limit]],
            omitted=max(0, len(fs) - main_limit - appendix_limit),
        )
        endpoint_views.append(ev)

        # Countries: every country whose law reaches the endpoint, with its role.
        roles: dict[str, set[str]] = defaultdict(set)
        for j in jurisdictions:
            roles[j].add("jurisdiction")
        if hosting:
            roles[text(hosting)].add("hosting")
        if op.get("country"):
            roles[text(op.get("country"))].add("operator")
        if op.get("parent_country"):
            roles[text(op.get("parent_country"))].add("parent")
        for code, rs in roles.items():
            c = country_hosts.setdefault(code, {"roles": set(), "hosts": [], "categories": set(), "findings": 0})
            c["roles"] |= rs
            c["hosts"].append(host)
            c["categories"] |= req_cats
            c["findings"] += len(req)

        for f in req:
            cat = text(f.get("category"))
            s = category_stats.setdefault(cat, {"findings": 0, "hosts": set(), "countries": set(), "severity": ""})
            s["findings"] += 1
            s["hosts"].add(host_key)
            s["countries"] |= set(jurisdictions)
            if _severity_rank(f.get("severity")) > _severity_rank(s["severity"]):
                s["severity"] = text(f.get("severity"))

        # An endpoint whose flows were all cleartext, or one with some cleartext finding.
        clear_findings = fs if e.get("tls") is False else [f for f in fs if f.get("tls") is False]
        if e.get("tls") is False or clear_findings:
            cleartext.append(CleartextView(
                anchor=anchor, host=host, flow_count=ev.flow_count, endpoint_tls=ev.tls,
                categories=[t.category(c) for c in sorted(clear_cats, key=_category_sort_key)],
                findings=len(clear_findings),
            ))

    # Most serious first, then by how much was found, then by name.
    order = sorted(
        range(len(endpoint_views)),
        key=lambda i: (-_RATING_RANK[endpoint_views[i].rating], -endpoint_views[i].request_findings,
                       -endpoint_views[i].findings_total, endpoint_views[i].host),
    )
    endpoint_views = [endpoint_views[i] for i in order]
    position = {e.anchor: i for i, e in enumerate(endpoint_views)}
    cleartext.sort(key=lambda c: position[c.anchor])

    reasons = _merge_reasons(per_host_reasons, t)
    rating = _worst(r.level for r in reasons)

    countries = [
        CountryView(
            code=code,
            label=t.country(code),
            foreign=code != home,
            state_access=code in STATE_ACCESS_COUNTRIES,
            roles=[t(f"role.{r}") for r in ("hosting", "operator", "parent", "jurisdiction") if r in c["roles"]],
            hosts=_bounded(c["hosts"], t),
            categories=[t.category(x) for x in sorted(c["categories"], key=_category_sort_key)],
            findings=c["findings"],
        )
        for code, c in country_hosts.items()
    ]
    countries.sort(key=lambda c: (-c.findings, -len(c.categories), c.code))

    categories = [
        CategoryView(
            category=cat,
            label=t.category(cat),
            findings=s["findings"],
            hosts=len(s["hosts"]),
            countries=t.countries(sorted(s["countries"])),
            severity=s["severity"],
        )
        for cat, s in category_stats.items()
    ]
    categories.sort(key=lambda c: (-_severity_rank(c.severity), -c.findings, _category_sort_key(c.category)))

    coverage_doc = _dict(doc.get("coverage"))
    kinds = _dict(coverage_doc.get("flows_by_kind"))
    kind_names = list(_FLOW_KINDS) + sorted(k for k in map(str, kinds) if k not in _FLOW_KINDS)
    warnings = [text(w) for w in _list(doc.get("warnings"))]
    coverage = Coverage(
        flows_analyzed=text(doc.get("flows_analyzed")),
        flows_by_kind=[(k, text(kinds.get(k, 0))) for k in kind_names],
        non_http=sum(v for k, v in kinds.items() if k != "http" and _int(v) is not None),
        flows_with_errors=text(coverage_doc.get("flows_with_errors")),
        cleartext_flows=text(coverage_doc.get("cleartext_flows")),
        websocket_messages=text(coverage_doc.get("websocket_messages")),
        undecodable_bodies=text(coverage_doc.get("undecodable_bodies")),
        warnings=warnings[:MAX_WARNINGS],
        warnings_omitted=max(0, len(warnings) - MAX_WARNINGS),
    )

    tool = _dict(doc.get("tool"))
    capture = _dict(doc.get("capture"))
    redacted = doc.get("redacted")
    method = Method(
        tool_name=text(tool.get("name")),
        tool_version=text(tool.get("version")),
        rules_digest=text(tool.get("rules_digest")),
        schema_version=text(version),
        generated_at=text(doc.get("generated_at")),
        capture_start=text(capture.get("start")),
        capture_end=text(capture.get("end")),
        inputs=[
            InputView(path=text(i.get("path")), sha256=text(i.get("sha256")),
                      format=text(i.get("format")), flows=text(i.get("flows")))
            for i in _list(doc.get("inputs")) if isinstance(i, Mapping)
        ],
        phases=[(text(p.get("name")), text(p.get("timestamp")))
                for p in _list(doc.get("phases")) if isinstance(p, Mapping)],
        home_country=t.country(home) if home else t("method.home_unknown"),
        redacted=t("common.yes") if redacted is True else t("common.no") if redacted is False else t("common.unknown"),
    )

    figures = Figures(
        flows_analyzed=coverage.flows_analyzed,
        endpoints=len(endpoint_views),
        endpoints_with_findings=sum(1 for e in endpoint_views if e.request_findings),
        findings=len(findings),
        request_findings=sum(1 for f in findings if f.get("side") == "request"),
        canary_findings=sum(1 for f in findings if f.get("method") == "canary"),
        countries=sum(1 for c in countries if c.findings),
        foreign_countries=sum(1 for c in countries if c.findings and c.foreign),
    )

    return ReportView(
        lang=lang,
        demo=doc.get("demo") is True,
        # A document analysed with show_values carries raw values whatever the
        # caller asks now; mark it just the same.
        unredacted=show_values or redacted is False,
        home_country=home,
        home_country_label=method.home_country,
        rating=rating,
        reasons=reasons,
        figures=figures,
        countries=countries,
        categories=categories,
        endpoints=endpoint_views,
        cleartext=cleartext,
        coverage=coverage,
        method=method,
        appendix_endpoints=[e for e in endpoint_views if e.appendix or e.omitted],
        main_limit=main_limit,
        appendix_limit=appendix_limit,
    )
