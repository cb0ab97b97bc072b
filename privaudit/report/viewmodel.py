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

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from privaudit.errors import InputError
from privaudit.model import CATEGORIES, SEVERITIES
from privaudit.jurisdiction.legal import notes_for
from privaudit.report import custody as custody_mod
from privaudit.report.flowmap import FlowMap, build_flowmap
from privaudit.report.i18n import Translator
from privaudit.report.timeline import MAX_EVENTS, Boundary, FirstSends, boundary, offset_seconds, parse_time

SUPPORTED_SCHEMA_VERSIONS = (1,)

#: Findings per endpoint in the evidence appendix; beyond that the report says
#: how many were left out and points to the findings JSON.
APPENDIX_FINDINGS_PER_ENDPOINT = 100
#: Findings in the whole appendix (keeps a report of a long capture printable).
APPENDIX_FINDINGS_TOTAL = 1000
#: Endpoints given a detail card (most serious first); the rest are counted
#: and stay in the recipients table and the findings JSON. A day-long capture
#: can reach thousands of hosts; this keeps the HTML report a few MB.
MAX_ENDPOINT_CARDS = 150
#: Rows of the per-endpoint encryption table and of each recipients table
#: (cleartext endpoints first); the rest are counted, and are in the JSON.
MAX_TABLE_ROWS = 200
#: Top findings told in plain words in the executive summary.
TOP_FINDINGS = 6
#: Warnings listed in the coverage section.
MAX_WARNINGS = 100
#: Longest untrusted value shown in full; longer ones are cut with an ellipsis.
MAX_VALUE_CHARS = 300
#: Hosts named in one summary sentence or one country row; the rest are counted.
MAX_NAMED_HOSTS = 12

# The PDF is for reading and printing, and WeasyPrint lays it out at about a
# page per 0.2 s: it is bounded tighter than the HTML report. Each notice of
# what was left out says where it is (the findings JSON; the HTML report).
#: Endpoint detail cards in the PDF.
PDF_MAX_ENDPOINT_CARDS = 50
#: Findings per endpoint, and in all, in the PDF's evidence appendix; the
#: appendix lists only the endpoints it shows findings of and counts the rest.
PDF_APPENDIX_FINDINGS_PER_ENDPOINT = 25
PDF_APPENDIX_FINDINGS_TOTAL = 300
#: Hosts named per recipient in the PDF (a tracker's per-install subdomains
#: can run to thousands); the rest are counted.
PDF_HOSTS_PER_RECIPIENT = MAX_NAMED_HOSTS

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
    """The endpoint's findings shown in the evidence appendix, most severe first."""
    omitted: int
    """Findings of this endpoint left out of the appendix (they are in the JSON)."""
    party: str
    """"first", "third" or "" (not classified)."""
    party_reason: str
    tls_versions: list[str]


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
class Line:
    """One sentence: an i18n key and its (already translated) parameters."""

    key: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Question:
    """A regulator's question and what the capture answers."""

    id: str
    status: str
    """"observed", "partial" or "not_observable"."""
    lines: list[Line]


@dataclass(frozen=True)
class LawView:
    name: str
    articles: str
    effect: str
    link: str


@dataclass(frozen=True)
class LegalNoteView:
    id: str
    regime: str
    summary: str
    transfers: str
    government_access: str
    laws: list[LawView]


@dataclass(frozen=True)
class TransferView:
    code: str
    label: str
    state_access: bool
    roles: list[str]
    hosts: list[str]
    recipients: list[str]
    categories: list[str]
    findings: int
    first_sent: str
    notes: list[LegalNoteView]


@dataclass(frozen=True)
class Transfers:
    countries: list[TransferView]
    home_note: LegalNoteView | None
    """The user's own country's rules for sending data abroad."""
    no_data_countries: list[str]
    """Foreign countries contacted without personal data being found."""


@dataclass(frozen=True)
class ReceivedCategory:
    label: str
    offset: str
    time: str
    findings: int


@dataclass(frozen=True)
class RecipientView:
    party: str
    name: str
    known: bool
    country: str
    parent: str
    parent_country: str
    source: str
    hosts: list[tuple[str, str]]
    """(anchor, host)."""
    countries: list[str]
    categories: list[ReceivedCategory]
    first_received: str
    first_offset: str
    findings: int
    hosts_omitted: int = 0
    """Hosts of this recipient left out of ``hosts`` (the PDF names a few)."""


@dataclass(frozen=True)
class TimelineRow:
    kind: str
    """"phase" or "send"."""
    offset: str
    time: str
    name: str
    """The phase name, or the host."""
    category: str
    tls: bool | None
    before: bool
    """Sent before the boundary (see privaudit.report.timeline)."""
    boundary: bool
    """This phase is the boundary."""


@dataclass(frozen=True)
class Timeline:
    start: str
    start_source: str
    """"capture" (the capture's start) or "first_flow" (no start recorded)."""
    rows: list[TimelineRow]
    omitted: int
    boundary_kind: str
    """"consent", "first_action" or "" (no boundary)."""
    boundary_name: str
    boundary_offset: str
    before_categories: list[str]
    before_hosts: list[str]
    undated: int


@dataclass(frozen=True)
class TlsRow:
    anchor: str
    host: str
    tls: bool | None
    versions: list[str]
    cleartext_categories: list[str]
    flow_count: str


@dataclass(frozen=True)
class Transmission:
    rows: list[TlsRow]
    versions: list[tuple[str, str]]
    """TLS versions over the capture (version, flows), when recorded."""
    versions_recorded: bool
    tls_failures: list[tuple[str, str]]
    tls_failures_omitted: int
    rows_omitted: int = 0


@dataclass(frozen=True)
class Custody:
    document_sha256: str
    inputs: list[InputView]
    generated_at: str
    rendered_at: str
    report_name: str
    environment: list[tuple[str, str]]
    doc_environment: list[tuple[str, str]]
    auditor: list[tuple[str, str]]
    """(field, value); value "" leaves a blank to fill in."""

    @property
    def sidecar(self) -> str:
        """The detached hash file's name."""
        return f"{self.report_name or '<report>'}.sha256"


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
    top_findings: list[Reason] = field(default_factory=list)
    flowmap: FlowMap | None = None
    questions: list[Question] = field(default_factory=list)
    transfers: Transfers | None = None
    recipients: list[RecipientView] = field(default_factory=list)
    transmission: Transmission | None = None
    timeline: Timeline | None = None
    blind_spots: list[Line] = field(default_factory=list)
    custody: Custody | None = None
    appendix_endpoints: list[EndpointView] = field(default_factory=list)
    endpoint_cards: list[EndpointView] = field(default_factory=list)
    endpoint_cards_omitted: int = 0
    appendix_limit: int = APPENDIX_FINDINGS_PER_ENDPOINT
    appendix_total: int = APPENDIX_FINDINGS_TOTAL
    appendix_shown: int = 0
    appendix_omitted: int = 0
    appendix_endpoints_omitted: int = 0
    """Endpoints with findings the appendix does not list at all (PDF only;
    the HTML lists each one with its count of omitted findings)."""
    fmt: str = "html"
    card_anchors: frozenset[str] = frozenset()
    """Anchors of the endpoints that have a detail card: only those are linked
    to (a link to no target is dead, and WeasyPrint logs an error for each)."""
    html_bounds: tuple[int, int, int] = (MAX_ENDPOINT_CARDS, APPENDIX_FINDINGS_PER_ENDPOINT, APPENDIX_FINDINGS_TOTAL)
    """The HTML report's bounds (cards, appendix per endpoint, appendix in
    all), which a PDF names where it shows less."""

    @property
    def flow_lines(self) -> list[tuple[list[str], str, list[str]]]:
        """The data-flow picture as text: (categories, recipient, countries)."""
        return [([c.label for c in r.categories], r.name, r.countries) for r in self.recipients if r.categories]

    def recipients_of(self, party: str) -> list[RecipientView]:
        """Recipients of one party kind: "first", "third" or "" (unclassified), at most MAX_TABLE_ROWS."""
        return [r for r in self.recipients if r.party == party][:MAX_TABLE_ROWS]

    def recipients_omitted(self, party: str) -> int:
        """Recipients of one party kind left out of its table."""
        return max(0, sum(1 for r in self.recipients if r.party == party) - MAX_TABLE_ROWS)


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


def _findings_of(value: object) -> Iterable:
    """The document's findings to iterate: a list, or a stream of them (the
    audit's spool, or a saved document's findings read from disk, both of
    which have ``lines``); anything else is no findings."""
    if isinstance(value, (list, tuple)) or custody_mod._is_stream(value):
        return value
    return ()


def _fed(items: Iterable, feed) -> Iterable:
    for item in items:
        feed(item)
        yield item


class _HostFindings:
    """What the report keeps of one host's findings: counts, categories, and
    only the few the appendix may show (see :meth:`add`)."""

    __slots__ = ("n", "n_req", "n_clear", "req_cats", "clear_cats", "sev_counts", "cat_agg", "kept")

    def __init__(self) -> None:
        self.n = self.n_req = self.n_clear = 0
        self.req_cats: dict[str, None] = {}
        self.clear_cats: dict[str, None] = {}
        self.sev_counts: Counter[str] = Counter()
        self.cat_agg: dict[str, list] = {}  # category -> [request findings, worst severity rank, its text]
        self.kept: list[Mapping] = []

    def add(self, f: Mapping, limit: int, sort_key) -> None:
        self.n += 1
        sev = f.get("severity")
        sev_text = sev if type(sev) is str and len(sev) <= MAX_VALUE_CHARS else text(sev)
        self.sev_counts[sev_text] += 1
        clear = f.get("tls") is False
        self.n_clear += clear
        if f.get("side") == "request":
            self.n_req += 1
            cat = f.get("category")
            if type(cat) is not str or len(cat) > MAX_VALUE_CHARS:
                cat = text(cat)
            self.req_cats[cat] = None
            if clear:
                self.clear_cats[cat] = None
            agg = self.cat_agg.get(cat)
            if agg is None:
                agg = self.cat_agg[cat] = [0, -1, ""]
            agg[0] += 1
            rank = _severity_rank(sev)
            if rank > agg[1]:
                agg[1], agg[2] = rank, sev_text
        if limit > 0:
            # Keep the ``limit`` first in appendix order, as (key, arrival, finding):
            # the arrival number keeps ties in input order (a stable sort) and
            # each finding's key is worked out once.
            kept = self.kept
            kept.append((sort_key(f), self.n, f))
            if len(kept) >= 4 * limit:
                self.kept = heapq.nsmallest(limit, kept)

    def shown(self, limit: int, sort_key=None) -> list[Mapping]:
        """The appendix's findings of this host, in order: the same as sorting them all."""
        kept = heapq.nsmallest(limit, self.kept) if len(self.kept) > limit else sorted(self.kept)
        return [f for _, _, f in kept]


@dataclass
class _Aggregate:
    by_host: dict[str, _HostFindings]
    sends: list
    first_time: object
    findings: int
    request_findings: int
    canary_findings: int


def _aggregate(findings: Iterable, limit: int, sort_key) -> _Aggregate:
    """One pass over the findings: per host (:class:`_HostFindings`), the first
    sends of each category to each host, the earliest time, and totals."""
    by_host: dict[str, _HostFindings] = {}
    sends = FirstSends(text)
    first = None
    n = n_req = n_canary = 0
    host_keys: dict[str, str] = {}
    for f in findings:
        if not isinstance(f, Mapping):
            continue
        n += 1
        side = f.get("side")
        n_req += side == "request"
        n_canary += f.get("method") == "canary"
        h = f.get("host")
        key = host_keys.get(h) if type(h) is str else None
        if key is None:
            key = text(h, limit=10_000)
            if type(h) is str and len(host_keys) < 100_000:
                host_keys[h] = key
        fa = by_host.get(key)
        if fa is None:
            fa = by_host[key] = _HostFindings()
        fa.add(f, limit, sort_key)
        t = sends.time_of(f)
        if t is not None and (first is None or t < first):
            first = t
        sends.add(f, t)
    return _Aggregate(by_host, sends.result(), first, n, n_req, n_canary)


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


def _finding_sort_keys():
    """:func:`_finding_sort_key`, faster: the (severity, side, category) part
    is worked out once per distinct triple of plain strings."""
    prefixes: dict[tuple[str, str, str], tuple] = {}
    far = 1 << 62

    def key(f: Mapping) -> tuple:
        sev, side, cat, loc = f.get("severity"), f.get("side"), f.get("category"), f.get("location")
        if not (type(sev) is str and type(side) is str and type(cat) is str and type(loc) is str
                and len(loc) <= MAX_VALUE_CHARS):
            return _finding_sort_key(f)
        prefix = prefixes.get((sev, side, cat))
        if prefix is None:
            prefix = prefixes[sev, side, cat] = (
                -_severity_rank(sev), 0 if side == "request" else 1, _category_sort_key(text(cat)))
        idx = f.get("flow_index")
        if type(idx) is not int:
            idx = _int(idx)
            if idx is None:
                idx = far
        return (*prefix, idx, loc)

    return key


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


#: Where each category comes from, as far as traffic can tell: what the user
#: typed or gave, what the app read from the device, what it recorded of the
#: user's behaviour. A project's own categories go to "other".
SOURCES: dict[str, str] = {
    "email": "user", "phone": "user", "name": "user", "national_id": "user", "payment_card": "user",
    "credentials": "user", "chat_content": "user",
    "location": "device", "advertising_id": "device", "device_id": "device", "device_info": "device",
    "network_info": "device", "installed_apps": "device", "contacts": "device",
    "behavioral": "behaviour",
}
SOURCE_ORDER = ("user", "device", "behaviour", "other")
AUDITOR_FIELDS = ("name", "organisation", "case_ref", "device", "app", "app_version")
MAX_TLS_FAILURES = 100


def format_offset(seconds: float | None, t: Translator) -> str:
    """"+1.2 s", "+3 min 05 s", "+1 h 02 min" (words from the translations)."""
    if seconds is None:
        return ""
    sign = "−" if seconds < 0 else "+"
    s = abs(seconds)
    if s < 10:
        return sign + t("time.seconds", s=f"{s:.2f}")
    if s < 60:
        return sign + t("time.seconds", s=f"{s:.1f}")
    if s < 3600:
        return sign + t("time.minutes", m=int(s // 60), s=f"{int(s % 60):02d}")
    return sign + t("time.hours", h=int(s // 3600), m=f"{int(s % 3600 // 60):02d}")


def _iso(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z" if dt else ""


def _legal_note_view(note: Mapping) -> LegalNoteView:
    return LegalNoteView(
        id=text(note.get("id")),
        regime=text(note.get("regime")),
        summary=text(note.get("summary"), 2000),
        transfers=text(note.get("transfers"), 2000),
        government_access=text(note.get("government_access"), 2000),
        laws=[LawView(name=text(law.get("name")), articles=", ".join(text(a) for a in _list(law.get("articles"))),
                      effect=text(law.get("effect"), 2000), link=text(law.get("link")))
              for law in _list(note.get("laws")) if isinstance(law, Mapping)],
    )


def build_view(
    doc: Mapping,
    lang: str,
    *,
    show_values: bool = False,
    home_country: str | None = None,
    appendix_limit: int | None = None,
    appendix_total: int | None = None,
    fmt: str = "html",
    report_name: str = "",
    rendered_at: str = "",
) -> ReportView:
    """The whole report as plain values, ready for a template.

    ``home_country`` is the user's own country (ISO code); without it the
    document's optional ``home_country`` is used, and failing that every
    jurisdiction counts as foreign. ``fmt``, ``report_name`` and
    ``rendered_at`` go into the chain-of-custody block; a PDF (``fmt``
    "pdf") gets the tighter ``PDF_*`` bounds. ``appendix_limit`` and
    ``appendix_total`` override the appendix's bounds. Raises
    :class:`InputError` for a document this version cannot read.
    """
    version = check_document(doc)
    pdf = fmt == "pdf"
    if appendix_limit is None:
        appendix_limit = PDF_APPENDIX_FINDINGS_PER_ENDPOINT if pdf else APPENDIX_FINDINGS_PER_ENDPOINT
    if appendix_total is None:
        appendix_total = PDF_APPENDIX_FINDINGS_TOTAL if pdf else APPENDIX_FINDINGS_TOTAL
    max_cards = PDF_MAX_ENDPOINT_CARDS if pdf else MAX_ENDPOINT_CARDS
    t = Translator(lang)
    home = home_country or (doc.get("home_country") if isinstance(doc.get("home_country"), str) else None)
    home = home.upper() if home else None

    capture = _dict(doc.get("capture"))
    coverage_doc = _dict(doc.get("coverage"))
    sort_key = _finding_sort_keys()
    # One pass over the findings, which may be a list or a stream read from
    # disk (a 100k-flow audit has ~330k): everything the report needs of them
    # is aggregated here, per host, in memory that does not grow with them.
    findings_in = _findings_of(doc.get("findings"))
    hasher = None
    if isinstance(doc, dict) and all(type(k) is str for k in doc) and custody_mod._is_stream(findings_in):
        # the document's hash is taken as the findings stream by, not in a second read
        hasher = custody_mod.DocumentHasher(doc, "findings")
        findings_in = _fed(findings_in, hasher.feed)
    agg = _aggregate(findings_in, appendix_limit, sort_key)
    document_sha256 = hasher.hexdigest() if hasher is not None else None
    by_host = agg.by_host
    sends = agg.sends

    # Times: offsets count from the capture's start, or the first flow's.
    start = parse_time(capture.get("start"))
    start_source = "capture"
    if start is None:
        start = agg.first_time
        start_source = "first_flow"
    phases_raw = [(text(p.get("name")), parse_time(p.get("timestamp")), text(p.get("timestamp")))
                  for p in _list(doc.get("phases")) if isinstance(p, Mapping)]
    limit_at: Boundary | None = boundary((n, ts) for n, ts, _ in phases_raw)

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
    host_facts: dict[str, dict] = {}  # host -> raw facts the later sections reuse

    empty = _HostFindings()
    for e in raw_endpoints:
        host_key = text(e.get("host"), limit=10_000)
        host = text(host_key)
        fa = by_host.get(host_key, empty)
        n_req, n_clear, sev_counts, cat_agg = fa.n_req, fa.n_clear, fa.sev_counts, fa.cat_agg
        req_cats = set(fa.req_cats)
        clear_cats = set(fa.clear_cats)
        if e.get("tls") is False:
            clear_cats |= req_cats
        shown_findings = fa.shown(appendix_limit, sort_key)
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
        anchor = f"ep-{len(endpoint_views) + 1}"
        confidence = text(e.get("confidence"))
        tls = e.get("tls")
        party = text(e.get("party"))
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
            findings_total=fa.n,
            request_findings=n_req,
            severity_counts=[(s, sev_counts[s]) for s in reversed(SEVERITIES) if sev_counts[s]],
            findings=[_finding_view(f, t) for f in shown_findings],
            omitted=max(0, fa.n - appendix_limit),
            party=party if party in ("first", "third") else "",
            party_reason=text(e.get("party_reason")),
            tls_versions=[text(v) for v in _list(e.get("tls_versions"))],
        )
        endpoint_views.append(ev)
        host_facts[host] = {"anchor": anchor, "jurisdictions": jurisdictions, "op": op, "req_cats": req_cats,
                            "clear_cats": clear_cats, "hosting": text(hosting) if hosting else "", "view": ev}

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
            c["findings"] += n_req

        for cat, (n, rank, sev_text) in cat_agg.items():
            s = category_stats.setdefault(cat, {"findings": 0, "hosts": set(), "countries": set(), "severity": ""})
            s["findings"] += n
            s["hosts"].add(host_key)
            s["countries"] |= set(jurisdictions)
            if rank > _severity_rank(s["severity"]):
                s["severity"] = sev_text

        # An endpoint whose flows were all cleartext, or one with some cleartext finding.
        clear_findings = fa.n if e.get("tls") is False else n_clear
        if e.get("tls") is False or clear_findings:
            cleartext.append(CleartextView(
                anchor=anchor, host=host, flow_count=ev.flow_count, endpoint_tls=ev.tls,
                categories=[t.category(c) for c in sorted(clear_cats, key=_category_sort_key)],
                findings=clear_findings,
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
        phases=[(name, raw) for name, _, raw in phases_raw],
        home_country=t.country(home) if home else t("method.home_unknown"),
        redacted=t("common.yes") if redacted is True else t("common.no") if redacted is False else t("common.unknown"),
    )

    figures = Figures(
        flows_analyzed=coverage.flows_analyzed,
        endpoints=len(endpoint_views),
        endpoints_with_findings=sum(1 for e in endpoint_views if e.request_findings),
        findings=agg.findings,
        request_findings=agg.request_findings,
        canary_findings=agg.canary_findings,
        countries=sum(1 for c in countries if c.findings),
        foreign_countries=sum(1 for c in countries if c.findings and c.foreign),
    )

    recipients = _recipients(endpoint_views, host_facts, sends, start, t)
    timeline = _timeline(sends, phases_raw, limit_at, start, start_source, t)
    transfers = _transfers(countries, country_hosts, host_facts, sends, start, home, t)
    transmission = _transmission(endpoint_views, host_facts, coverage_doc, t)

    flowmap = _flowmap(categories, recipients, countries, host_facts, t)
    questions = _questions(categories, recipients, countries, cleartext, timeline, transmission, t)
    if pdf:  # after the flow map and the answers, which use every host
        recipients = [_replace(r, hosts=r.hosts[:PDF_HOSTS_PER_RECIPIENT],
                               hosts_omitted=len(r.hosts) - PDF_HOSTS_PER_RECIPIENT)
                      if len(r.hosts) > PDF_HOSTS_PER_RECIPIENT else r for r in recipients]

    # The appendix: every endpoint with findings, bounded in total.
    appendix_endpoints, shown, endpoints_left_out = [], 0, 0
    for ev in endpoint_views:
        if not ev.findings:
            continue
        room = max(0, appendix_total - shown)
        if pdf and not room:
            endpoints_left_out += 1
            continue
        if room < len(ev.findings):
            ev = _replace(ev, findings=ev.findings[:room], omitted=ev.omitted + len(ev.findings) - room)
        shown += len(ev.findings)
        appendix_endpoints.append(ev)

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
        endpoint_cards=endpoint_views[:max_cards],
        card_anchors=frozenset(e.anchor for e in endpoint_views[:max_cards]),
        endpoint_cards_omitted=max(0, len(endpoint_views) - max_cards),
        cleartext=cleartext,
        coverage=coverage,
        method=method,
        top_findings=_top_findings(sends, host_facts, category_stats, limit_at, start, t),
        flowmap=flowmap,
        questions=questions,
        transfers=transfers,
        recipients=recipients,
        transmission=transmission,
        timeline=timeline,
        blind_spots=_blind_spots(coverage_doc, kinds, transmission),
        custody=_custody(doc, method, fmt, report_name, rendered_at, document_sha256),
        appendix_endpoints=appendix_endpoints,
        appendix_limit=appendix_limit,
        appendix_total=appendix_total,
        appendix_shown=shown,
        appendix_omitted=agg.findings - shown,
        appendix_endpoints_omitted=endpoints_left_out,
        fmt=fmt,
    )


def _replace(obj, **changes):
    from dataclasses import replace

    return replace(obj, **changes)


# --------------------------------------------------------------------------
# The sections beyond the endpoint list


def _recipient_key(host: str, op: Mapping) -> str:
    name = text(op.get("name"))
    return f"op:{name}" if name else f"host:{host}"


def _recipients(endpoints: list[EndpointView], facts: dict, sends, start, t: Translator) -> list[RecipientView]:
    """Endpoints grouped by who runs them (the operator; the host when unknown),
    third parties first, each with the categories it received and when."""
    groups: dict[str, dict] = {}
    for ev in endpoints:
        f = facts[ev.host]
        op = f["op"]
        key = _recipient_key(ev.host, op)
        g = groups.setdefault(key, {"party": set(), "ev": ev, "hosts": [], "countries": [], "cats": {},
                                    "findings": 0})
        g["party"].add(ev.party)
        g["hosts"].append((ev.anchor, ev.host))
        for j in f["jurisdictions"]:
            if j not in g["countries"]:
                g["countries"].append(j)
        g["findings"] += ev.request_findings
    for s in sends:
        key = _recipient_key(s.host, facts[s.host]["op"]) if s.host in facts else None
        if key not in groups:
            continue
        cats = groups[key]["cats"]
        prev = cats.get(s.category)
        if prev is None:
            cats[s.category] = [s.time, s.findings]
        else:
            prev[1] += s.findings
            if s.time is not None and (prev[0] is None or s.time < prev[0]):
                prev[0] = s.time
    out = []
    for key, g in groups.items():
        ev: EndpointView = g["ev"]
        op = ev.operator
        party = "first" if "first" in g["party"] else "third" if "third" in g["party"] else ""
        cats = sorted(g["cats"].items(), key=lambda kv: _category_sort_key(kv[0]))
        firsts = [v[0] for _, v in cats if v[0] is not None]
        first = min(firsts) if firsts else None
        out.append(RecipientView(
            party=party,
            name=op.name if op and op.name else ev.host,
            known=bool(op and op.name),
            country=op.country if op else "",
            parent=op.parent if op else "",
            parent_country=op.parent_country if op else "",
            source=op.source if op else "",
            hosts=g["hosts"],
            countries=t.countries(g["countries"]),
            categories=[ReceivedCategory(label=t.category(c), offset=format_offset(offset_seconds(v[0], start), t),
                                         time=_iso(v[0]), findings=v[1]) for c, v in cats],
            first_received=_iso(first),
            first_offset=format_offset(offset_seconds(first, start), t),
            findings=g["findings"],
        ))
    party_rank = {"third": 0, "": 1, "first": 2}
    out.sort(key=lambda r: (party_rank[r.party], -len(r.categories), -r.findings, r.name))
    return out


def _timeline(sends, phases_raw, limit_at, start, start_source, t: Translator) -> Timeline:
    rows: list[tuple] = []
    for name, when, raw in phases_raw:
        is_boundary = bool(limit_at and when == limit_at.time and name == limit_at.name)
        rows.append((when, 0, TimelineRow("phase", format_offset(offset_seconds(when, start), t),
                                          raw, name, "", None, False, is_boundary)))
    before_cats: list[str] = []
    before_hosts: list[str] = []
    undated = 0
    for s in sends:
        if s.time is None:
            undated += 1
            continue
        before = bool(limit_at and s.time < limit_at.time)
        if before:
            label = t.category(s.category)
            if label not in before_cats:
                before_cats.append(label)
            if s.host not in before_hosts:
                before_hosts.append(s.host)
        rows.append((s.time, 1, TimelineRow("send", format_offset(offset_seconds(s.time, start), t), _iso(s.time),
                                            s.host, t.category(s.category), s.tls, before, False)))
    # In time order, a phase before the sends of its same instant; undated phases last.
    dated = sorted((r for r in rows if r[0] is not None), key=lambda r: (r[0], r[1]))
    ordered = [r[2] for r in dated] + [r[2] for r in rows if r[0] is None]
    return Timeline(
        start=_iso(start),
        start_source=start_source if start else "",
        rows=ordered[:MAX_EVENTS],
        omitted=max(0, len(ordered) - MAX_EVENTS),
        boundary_kind=limit_at.kind if limit_at else "",
        boundary_name=limit_at.name if limit_at else "",
        boundary_offset=format_offset(offset_seconds(limit_at.time, start), t) if limit_at else "",
        before_categories=before_cats,
        before_hosts=_bounded(before_hosts, t),
        undated=undated,
    )


def _transfers(countries: list[CountryView], raw: dict, facts: dict, sends, start, home, t: Translator) -> Transfers:
    out = []
    for c in countries:
        if not c.foreign or not c.findings:
            continue
        hosts = [h for h in raw[c.code]["hosts"] if h in facts and facts[h]["req_cats"]]
        recipients: list[str] = []
        for h in hosts:
            op = facts[h]["op"]
            name = text(op.get("name")) or h
            if name not in recipients:
                recipients.append(name)
        host_set = set(hosts)
        times = [s.time for s in sends if s.host in host_set and s.time is not None]
        first = min(times) if times else None
        out.append(TransferView(
            code=c.code, label=c.label, state_access=c.state_access, roles=c.roles,
            hosts=_bounded(hosts, t), recipients=_bounded(recipients, t), categories=c.categories,
            findings=c.findings,
            first_sent=(format_offset(offset_seconds(first, start), t) + " (" + _iso(first) + ")") if first else "",
            notes=[_legal_note_view(n) for n in notes_for([c.code])],
        ))
    home_notes = notes_for([home]) if home else []
    return Transfers(
        countries=out,
        home_note=_legal_note_view(home_notes[0]) if home_notes else None,
        no_data_countries=[c.label for c in countries if c.foreign and not c.findings],
    )


def _transmission(endpoints: list[EndpointView], facts: dict, coverage_doc: Mapping, t: Translator) -> Transmission:
    rows = [
        TlsRow(anchor=ev.anchor, host=ev.host, tls=ev.tls, versions=ev.tls_versions,
               cleartext_categories=[t.category(c) for c in sorted(facts[ev.host]["clear_cats"], key=_category_sort_key)],
               flow_count=ev.flow_count)
        for ev in endpoints
    ]
    versions = _dict(coverage_doc.get("tls_versions"))
    failures = [(text(f.get("host")), text(f.get("error"))) for f in _list(coverage_doc.get("tls_failures"))
                if isinstance(f, Mapping)]
    shown = sorted(rows, key=lambda r: r.tls is not False)[:MAX_TABLE_ROWS]  # stable: cleartext first
    return Transmission(
        rows=shown,
        rows_omitted=len(rows) - len(shown),
        versions=[(text(k), text(v)) for k, v in sorted(versions.items(), key=lambda kv: str(kv[0]))],
        versions_recorded=bool(versions) or any(r.versions for r in rows),
        tls_failures=failures[:MAX_TLS_FAILURES],
        tls_failures_omitted=max(0, len(failures) - MAX_TLS_FAILURES),
    )


#: Which kinds of data a reader most needs to hear about first.
_TOP_PRIORITY = ("chat_content", "credentials", "national_id", "payment_card", "contacts", "location", "phone",
                 "email", "name", "advertising_id", "device_id", "installed_apps", "behavioral")


def _top_findings(sends, facts: dict, category_stats: dict, limit_at, start, t: Translator) -> list[Reason]:
    """The most serious (host, category) sends, one plain sentence each."""
    def level(s) -> str:
        f = facts[s.host]
        state = bool({text(c) for c in (f["op"].get("country"), f["op"].get("parent_country")) if c}
                     & STATE_ACCESS_COUNTRIES)
        if s.tls is False:
            return "critical" if s.category in CLEARTEXT_CRITICAL else "high"
        if s.category in KEY_CATEGORIES:
            return "critical" if state else "high"
        return "medium"

    def worth(s) -> tuple:
        return (
            -_RATING_RANK[level(s)],
            _TOP_PRIORITY.index(s.category) if s.category in _TOP_PRIORITY else len(_TOP_PRIORITY),
            -_severity_rank(category_stats.get(s.category, {}).get("severity")),
            -(s.tls is False),
            _category_sort_key(s.category),
            s.host,
        )

    out = []
    for s in sorted((s for s in sends if s.host in facts), key=worth)[:TOP_FINDINGS]:
        f = facts[s.host]
        op = f["op"]
        when = format_offset(offset_seconds(s.time, start), t)
        params = {
            "category": t.category(s.category),
            "host": s.host,
            "recipient": text(op.get("name")) or t("common.unknown_operator"),
            "countries": t.countries(f["jurisdictions"]) or [t("common.unknown")],
            "when": when or t("common.unknown"),
            "n": s.findings,
        }
        key = "top.cleartext" if s.tls is False else "top.sent"
        if limit_at and s.time is not None and s.time < limit_at.time:
            key, params = key + "_before", params | {"phase": limit_at.name}
        out.append(Reason(level(s), key, params))
    return out


def _flowmap(categories: list[CategoryView], recipients: list[RecipientView], countries: list[CountryView],
             facts: dict, t: Translator) -> FlowMap:
    cat_items = [(c.category, c.label, "cat-key" if c.category in KEY_CATEGORIES else "cat") for c in categories]
    receiving = [r for r in recipients if r.categories]
    rcp_items, cat_links, country_links = [], [], []
    for r in receiving:
        key = f"r:{r.name}"
        rcp_items.append((key, r.name, f"rcp-{r.party or 'unknown'}"))
        for _, host in r.hosts:
            f = facts[host]
            for cat in sorted(f["req_cats"], key=_category_sort_key):  # a set: sorted, for the same picture every run
                cat_links.append((cat, key))
            for j in f["jurisdictions"]:
                country_links.append((key, j))
    used = {j for _, j in country_links}
    ctry_items = []
    for c in countries:
        if c.code in used:
            css = "ctry-state" if c.state_access and c.foreign else "ctry-foreign" if c.foreign else "ctry"
            ctry_items.append((c.code, c.label, css))
    return build_flowmap(
        cat_items, rcp_items, ctry_items, cat_links, country_links,
        (t("flowmap.data"), t("flowmap.recipient"), t("flowmap.country")),
        lambda n: t("common.and_more", n=n),
    )


def _questions(categories: list[CategoryView], recipients: list[RecipientView], countries: list[CountryView],
               cleartext: list[CleartextView], timeline: Timeline, transmission: Transmission,
               t: Translator) -> list[Question]:
    """The questions Korea's PIPC and Italy's Garante put to DeepSeek (January
    2025), answered as far as the capture can: see ``question.*`` in the
    translations for their wording."""
    qs: list[Question] = []

    # 1. Which personal data is collected?
    if categories:
        lines = [Line("answer.data_observed", {"categories": [f"{c.label} ({c.findings})" for c in categories]})]
    else:
        lines = [Line("answer.data_none")]
    lines.append(Line("answer.data_limits"))
    qs.append(Question("data", "observed", lines))

    # 2. From which sources?
    by_source: dict[str, list[str]] = defaultdict(list)
    for c in categories:
        by_source[SOURCES.get(c.category, "other")].append(c.label)
    lines = [Line(f"answer.source_{s}", {"categories": by_source[s]}) for s in SOURCE_ORDER if by_source.get(s)]
    lines.append(Line("answer.source_limits"))
    qs.append(Question("sources", "partial", lines))

    # 3. For what purposes?
    third = [r for r in recipients if r.party == "third" and r.categories]
    lines = [Line("answer.purpose_not_observable")]
    if third:
        lines.append(Line("answer.purpose_third_parties",
                          {"n": len(third), "recipients": _bounded([r.name for r in third], t)}))
    qs.append(Question("purposes", "not_observable", lines))

    # 4. On what legal basis?
    lines = [Line("answer.basis_not_observable")]
    if timeline.boundary_kind == "consent":
        if timeline.before_categories:
            lines.append(Line("answer.basis_before_consent", {"phase": timeline.boundary_name,
                                                              "categories": timeline.before_categories,
                                                              "hosts": timeline.before_hosts}))
        else:
            lines.append(Line("answer.basis_nothing_before_consent", {"phase": timeline.boundary_name}))
    elif timeline.boundary_kind == "first_action" and timeline.before_categories:
        lines.append(Line("answer.basis_before_action", {"phase": timeline.boundary_name,
                                                         "categories": timeline.before_categories,
                                                         "hosts": timeline.before_hosts}))
    else:
        lines.append(Line("answer.basis_no_consent_phase"))
    qs.append(Question("basis", "not_observable", lines))

    # 5. Where is it stored; does it go to China?
    receiving = [c for c in countries if c.findings]
    lines = []
    if receiving:
        lines.append(Line("answer.where_countries", {"countries": [c.label for c in receiving]}))
    else:
        lines.append(Line("answer.where_none"))
    cn = next((c for c in countries if c.code == "CN" and c.findings), None)
    if cn:
        lines.append(Line("answer.china_yes", {"categories": cn.categories, "hosts": cn.hosts}))
    else:
        lines.append(Line("answer.china_no"))
    lines.append(Line("answer.storage_limits"))
    qs.append(Question("storage", "partial", lines))

    # 6. Who receives it?
    first = [r for r in recipients if r.party == "first" and r.categories]
    other = [r for r in recipients if r.party not in ("first", "third") and r.categories]
    lines = []
    if first:
        lines.append(Line("answer.recipients_first", {"recipients": _bounded([r.name for r in first], t)}))
    if third:
        lines.append(Line("answer.recipients_third", {"n": len(third),
                                                      "recipients": _bounded([r.name for r in third], t)}))
    if other:
        lines.append(Line("answer.recipients_unclassified", {"recipients": _bounded([r.name for r in other], t)}))
    if not (first or third or other):
        lines.append(Line("answer.recipients_none"))
    lines.append(Line("answer.recipients_limits"))
    qs.append(Question("recipients", "observed", lines))

    # 7. Is it protected in transit?
    lines = []
    if cleartext:
        lines.append(Line("answer.security_cleartext", {"hosts": _bounded([c.host for c in cleartext], t),
                                                        "n": len(cleartext)}))
    else:
        lines.append(Line("answer.security_all_tls"))
    if transmission.tls_failures:
        lines.append(Line("answer.security_pinning", {"n": len(transmission.tls_failures) +
                                                       transmission.tls_failures_omitted}))
    qs.append(Question("security", "observed", lines))
    return qs


def _blind_spots(coverage_doc: Mapping, kinds: Mapping, transmission: Transmission) -> list[Line]:
    """What the capture could not see, one sentence each."""
    out = []
    n_fail = len(transmission.tls_failures) + transmission.tls_failures_omitted
    out.append(Line("blind.tls_failures" if n_fail else "blind.tls_failures_none", {"n": n_fail}))
    for kind in ("tcp", "udp", "dns", "other"):
        n = _int(kinds.get(kind))
        if n:
            out.append(Line(f"blind.{kind}", {"n": n}))
    out.append(Line("blind.quic", {}))
    opaque = _int(coverage_doc.get("undecodable_bodies"))
    if opaque:
        out.append(Line("blind.opaque", {"n": opaque}))
    errors = _int(coverage_doc.get("flows_with_errors"))
    if errors:
        out.append(Line("blind.errors", {"n": errors}))
    out.append(Line("blind.server_side", {}))
    return out


def _custody(doc: Mapping, method: Method, fmt: str, report_name: str, rendered_at: str,
             document_sha256: str | None = None) -> Custody:
    auditor = _dict(doc.get("auditor"))
    env = _dict(doc.get("environment"))
    return Custody(
        document_sha256=document_sha256 or custody_mod.document_sha256(doc),
        inputs=method.inputs,
        generated_at=method.generated_at,
        rendered_at=rendered_at,
        report_name=text(report_name),
        environment=custody_mod.environment(fmt),
        doc_environment=[(text(k), text(v)) for k, v in list(env.items())[:40]],
        auditor=[(k, text(auditor.get(k))) for k in AUDITOR_FIELDS],
    )
