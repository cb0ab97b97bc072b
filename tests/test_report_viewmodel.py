"""privaudit.report.viewmodel: the verdict, grouping, counting and bounds,
tested without rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from privaudit.errors import InputError
from privaudit.report.viewmodel import MAX_NAMED_HOSTS, MAX_VALUE_CHARS, build_view, endpoint_rating

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "sample_findings.json"


@pytest.fixture
def doc() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def _finding(host, category, *, severity="high", side="request", tls=True, flow=1, location="request.body $.x"):
    return {"flow_index": flow, "host": host, "side": side, "category": category, "rule": f"r.{category}",
            "method": "key", "encoding": None, "location": location, "severity": severity,
            "evidence": "ab…yz", "tls": tls}


def _worst(reasons):
    order = ["none", "low", "medium", "high", "critical"]
    return max((r.level for r in reasons), key=order.index, default="none")


# categories, cleartext categories, jurisdictions, operator countries, home -> rating
RATING_CASES = [
    pytest.param({"chat_content"}, set(), ["CN"], {"CN"}, "KR", "critical", id="chat-to-CN-operator"),
    pytest.param({"device_id"}, set(), ["CN", "KY"], {"CN", "KY"}, "KR", "critical", id="identifier-to-CN-operator"),
    pytest.param({"email"}, set(), ["SG"], {"CN"}, "KR", "critical", id="CN-operator-hosting-abroad"),
    pytest.param({"email"}, set(), ["RU"], {"RU"}, None, "critical", id="home-unknown-counts-as-foreign"),
    pytest.param({"chat_content"}, set(), ["CN"], {"CN"}, "CN", "medium", id="CN-user-to-CN-is-domestic"),
    pytest.param({"device_info"}, set(), ["CN"], {"CN"}, "KR", "medium", id="fingerprint-only-to-CN"),
    pytest.param({"device_id"}, set(), ["US"], {"US"}, "KR", "high", id="identifier-to-US"),
    pytest.param({"behavioral"}, set(), ["US"], {"US"}, "KR", "high", id="behaviour-abroad"),
    pytest.param({"device_info", "network_info"}, set(), ["US"], set(), "KR", "medium", id="fingerprint-abroad"),
    pytest.param({"email"}, set(), ["KR"], {"KR"}, "KR", "medium", id="domestic"),
    pytest.param({"device_info"}, set(), ["KR"], set(), "KR", "low", id="domestic-fingerprint"),
    pytest.param({"credentials"}, {"credentials"}, ["KR"], set(), "KR", "critical", id="cleartext-password"),
    pytest.param({"location"}, {"location"}, ["KR"], set(), "KR", "high", id="cleartext-location"),
    pytest.param({"device_info"}, {"device_info"}, ["KR"], set(), "KR", "high", id="cleartext-anything"),
    pytest.param({"email"}, set(), [], set(), "KR", "high", id="unknown-jurisdiction"),
    pytest.param({"device_info"}, set(), [], set(), "KR", "medium", id="unknown-jurisdiction-fingerprint"),
    pytest.param(set(), set(), ["CN"], {"CN"}, "KR", "none", id="nothing-sent"),
]


@pytest.mark.parametrize(("cats", "clear", "juris", "ops", "home", "expected"), RATING_CASES)
def test_endpoint_rating(cats, clear, juris, ops, home, expected):
    assert _worst(endpoint_rating(cats, clear, juris, ops, home)) == expected


def test_sample_verdict_and_reasons(doc):
    view = build_view(doc, "en", home_country="KR")
    assert view.rating == "critical"
    keys = [(r.level, r.key) for r in view.reasons]
    assert keys[0] == ("critical", "reason.state_access")
    state = [r for r in view.reasons if r.key == "reason.state_access"]
    # one sentence per set of state-access countries: CN operators, the RU one
    assert [r.params["countries"] for r in state] == [["China (CN)"], ["Russia (RU)"]]
    assert state[0].params["hosts"] == ["chat.deepseek.com", "gator.volces.com", "fp-it.fengkongcloud.com"]
    assert "Chat content" in state[0].params["categories"]
    assert ("high", "reason.cleartext") in keys  # log.example-cdn.net: location, device id over HTTP


def test_countries_group_hosts_and_categories(doc):
    view = build_view(doc, "ko", home_country="KR")
    cn = view.countries[0]
    assert (cn.code, cn.label, cn.foreign, cn.state_access) == ("CN", "중국 (CN)", True, True)
    assert cn.hosts == ["chat.deepseek.com", "gator.volces.com", "fp-it.fengkongcloud.com"]
    assert "대화 내용" in cn.categories and "설치된 앱 목록" in cn.categories
    ky = next(c for c in view.countries if c.code == "KY")
    assert ky.roles == ["운영자의 모회사 설립지", "관할"]
    kr = next(c for c in view.countries if c.code == "KR")
    assert (kr.foreign, kr.findings, kr.categories) == (False, 0, [])
    assert view.countries[-1].code == "KR", "countries without findings last"


def test_endpoints_most_serious_first_with_their_facts(doc):
    view = build_view(doc, "en", home_country="KR")
    hosts = [e.host for e in view.endpoints]
    assert hosts[0] == "chat.deepseek.com"
    assert hosts[-1] == "update.example.com"
    ds = view.endpoints[0]
    assert ds.rating == "critical"
    assert ds.operator.name.startswith("Hangzhou DeepSeek")
    assert ds.operator.country == "China (CN)"
    assert ds.hosting_country == "China (CN)"
    assert ds.asn == "37963" and ds.tls is True and ds.flow_count == "9" and ds.demo_address
    assert [e.kind for e in ds.evidence] == ["geoip", "asn", "entity", "tls"]
    assert ds.findings_total == 9 and ds.request_findings == 8
    assert ds.findings[0].severity == "critical"
    ranks = ["info", "low", "medium", "high", "critical"]
    sevs = [ranks.index(f.severity) for f in ds.findings]
    assert sevs == sorted(sevs, reverse=True), "most severe first"
    assert [f.side for f in ds.findings if f.severity == "medium"] == ["response"]
    gator = next(e for e in view.endpoints if e.host == "gator.volces.com")
    assert (gator.operator.parent, gator.operator.parent_country) == ("ByteDance Ltd.", "Cayman Islands (KY)")
    assert not next(e for e in view.endpoints if e.host == "update.example.com").demo_address


def test_the_appendix_is_bounded_per_endpoint_and_in_total(doc):
    view = build_view(doc, "en", appendix_limit=4)
    ds = next(e for e in view.endpoints if e.host == "chat.deepseek.com")
    assert (len(ds.findings), ds.omitted) == (4, 5)
    api = next(e for e in view.endpoints if e.host == "api-iam.intercom.io")
    assert (len(api.findings), api.omitted) == (3, 0)
    assert view.appendix_shown + view.appendix_omitted == view.figures.findings

    view = build_view(doc, "en", appendix_total=10)
    assert view.appendix_shown == 10 and view.appendix_omitted == view.figures.findings - 10
    assert sum(len(e.findings) for e in view.appendix_endpoints) == 10


def test_figures_and_coverage(doc):
    view = build_view(doc, "en", home_country="KR")
    f = view.figures
    assert (f.flows_analyzed, f.endpoints, f.endpoints_with_findings) == ("33", 7, 6)
    assert (f.findings, f.request_findings, f.canary_findings) == (26, 25, 13)
    c = view.coverage
    assert c.flows_by_kind == [("http", "28"), ("tcp", "2"), ("udp", "1"), ("dns", "2"), ("other", "0")]
    assert c.non_http == 5 and c.cleartext_flows == "3" and len(c.warnings) == 2
    hostile = doc["endpoints"][-1]["host"][:MAX_VALUE_CHARS]
    assert [x.host for x in view.cleartext] == [hostile, "log.example-cdn.net"], "in endpoint order"
    log = view.cleartext[1]
    assert (log.flow_count, log.endpoint_tls, log.categories, log.findings) == (
        "2", False, ["Location", "Device identifier"], 2)
    m = view.method
    assert m.rules_digest == doc["tool"]["rules_digest"]
    assert [i.sha256 for i in m.inputs] == [i["sha256"] for i in doc["inputs"]]
    assert m.phases[:2] == [("login", "2026-11-20T09:10:00Z"), ("chat", "2026-11-20T09:12:00Z")]


def test_a_finding_for_an_unlisted_host_still_gets_an_endpoint():
    doc = {"schema_version": 1, "findings": [_finding("ghost.example", "email")], "endpoints": []}
    view = build_view(doc, "en")
    (ep,) = view.endpoints
    assert ep.host == "ghost.example" and ep.hosting_country == "unknown" and ep.rating == "high"
    assert view.reasons[0].key == "reason.unknown_jurisdiction"


def test_long_values_are_cut_and_odd_types_shown_as_text():
    long = "x" * (MAX_VALUE_CHARS * 3)
    f = _finding("h.example", "email") | {"evidence": long, "flow_index": "7", "severity": 5}
    doc = {"schema_version": 1, "findings": [f], "endpoints": [{"host": "h.example", "flow_count": "many",
                                                                  "asn": True, "operator": "not an object"}]}
    (ep,) = build_view(doc, "en").endpoints
    (fv,) = ep.findings
    assert len(fv.evidence) == MAX_VALUE_CHARS and fv.evidence.endswith("…")
    assert (fv.flow_index, fv.severity, fv.severity_known) == ("7", "5", False)
    assert (ep.flow_count, ep.asn, ep.operator) == ("", "", None)


@pytest.mark.parametrize(
    ("redacted", "show_values", "unredacted"),
    [(True, False, False), (True, True, True), (False, False, True), (None, False, False)],
)
def test_unredacted_marking(redacted, show_values, unredacted):
    doc = {"schema_version": 1, "redacted": redacted}
    assert build_view(doc, "en", show_values=show_values).unredacted is unredacted


@pytest.mark.parametrize("doc", [[], "x", {"schema_version": "1"}, {"schema_version": True}, {}])
def test_unreadable_documents(doc):
    with pytest.raises(InputError):
        build_view(doc, "en")


def test_home_country_from_the_document(doc):
    doc["home_country"] = "kr"
    view = build_view(doc, "en")
    assert view.home_country == "KR"
    assert not next(c for c in view.countries if c.code == "KR").foreign


def test_long_host_lists_are_counted_not_listed():
    hosts = [f"h{i:02d}.example" for i in range(MAX_NAMED_HOSTS + 5)]
    doc = {"schema_version": 1,
           "findings": [_finding(h, "email") for h in hosts],
           "endpoints": [{"host": h, "jurisdictions": ["CN"], "hosting_country": "CN",
                          "operator": {"name": "x", "country": "CN"}} for h in hosts]}
    view = build_view(doc, "ko", home_country="KR")
    reason = view.reasons[0]
    assert reason.params["host_count"] == len(hosts)
    assert reason.params["hosts"][-1] == "외 5곳" and len(reason.params["hosts"]) == MAX_NAMED_HOSTS + 1
    assert view.countries[0].hosts[-1] == "외 5곳"


# ---------------------------------------------------------------------------
# The regulator-facing sections

from privaudit.report import custody  # noqa: E402
from privaudit.report.flowmap import MAX_NODES  # noqa: E402
from privaudit.report.timeline import boundary, parse_time  # noqa: E402


def _t(s):
    return parse_time(s)


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        pytest.param([("start-up", "2026-01-01T00:00:00Z"), ("Consent dialog", "2026-01-01T00:00:05Z"),
                      ("login", "2026-01-01T00:00:09Z")], ("consent", "Consent dialog"), id="consent-wins"),
        pytest.param([("앱 시작", "2026-01-01T00:00:00Z"), ("개인정보 동의", "2026-01-01T00:00:05Z")],
                     ("consent", "개인정보 동의"), id="korean-consent"),
        pytest.param([("start-up", "2026-01-01T00:00:00Z"), ("login", "2026-01-01T00:00:09Z"),
                      ("chat", "2026-01-01T00:00:20Z")], ("first_action", "login"), id="second-phase"),
        pytest.param([("chat", "2026-01-01T00:00:20Z"), ("start-up", "2026-01-01T00:00:00Z"),
                      ("login", "2026-01-01T00:00:09Z")], ("first_action", "login"), id="in-time-order"),
        pytest.param([("start-up", "2026-01-01T00:00:00Z")], None, id="one-phase"),
        pytest.param([("start-up", "2026-01-01T00:00:00Z"), ("login", "not a time")], None, id="undated"),
        pytest.param([], None, id="none"),
    ],
)
def test_the_before_the_user_acted_boundary(phases, expected):
    b = boundary((n, _t(ts)) for n, ts in phases)
    assert (None if b is None else (b.kind, b.name)) == expected


def _timed_doc(phases):
    return {
        "schema_version": 1,
        "capture": {"start": "2026-01-01T00:00:00Z"},
        "phases": [{"name": n, "timestamp": ts} for n, ts in phases],
        "findings": [
            _finding("a.example", "device_id") | {"timestamp": "2026-01-01T00:00:01.500Z"},
            _finding("a.example", "device_id") | {"timestamp": "2026-01-01T00:00:00.250Z"},
            _finding("b.example", "email") | {"timestamp": "2026-01-01T00:01:10Z"},
            _finding("b.example", "chat_content", tls=False) | {"timestamp": None},
        ],
        "endpoints": [{"host": "a.example", "jurisdictions": ["CN"], "party": "third",
                       "operator": {"name": "A Co", "country": "CN"}},
                      {"host": "b.example", "jurisdictions": ["KR"], "party": "first",
                       "operator": {"name": "B Co", "country": "KR"}}],
    }


def test_timeline_marks_what_went_before_consent():
    doc = _timed_doc([("start-up", "2026-01-01T00:00:00Z"), ("consent", "2026-01-01T00:00:30Z")])
    view = build_view(doc, "en", home_country="KR")
    tl = view.timeline
    assert (tl.boundary_kind, tl.boundary_name, tl.boundary_offset) == ("consent", "consent", "+30.0 s")
    sends = [(r.name, r.category, r.offset, r.before) for r in tl.rows if r.kind == "send"]
    assert sends == [("a.example", "Device identifier", "+0.25 s", True),
                     ("b.example", "E-mail address", "+1 min 10 s", False)]
    assert [r.name for r in tl.rows if r.kind == "phase" and r.boundary] == ["consent"]
    assert tl.undated == 1 and tl.before_categories == ["Device identifier"]
    basis = next(q for q in view.questions if q.id == "basis")
    assert basis.status == "not_observable"
    assert [line.key for line in basis.lines] == ["answer.basis_not_observable", "answer.basis_before_consent"]
    top = view.top_findings
    assert top[0].key == "top.cleartext" and top[0].level == "critical", "cleartext chat content first"
    assert any(r.key == "top.sent_before" and r.params["phase"] == "consent" for r in top)


def test_timeline_without_phases_does_not_judge():
    view = build_view(_timed_doc([]), "en")
    assert view.timeline.boundary_kind == "" and not any(r.before for r in view.timeline.rows)
    basis = next(q for q in view.questions if q.id == "basis")
    assert basis.lines[-1].key == "answer.basis_no_consent_phase"


def test_the_questions_answer_from_the_sample(doc):
    view = build_view(doc, "en", home_country="KR")
    qs = {q.id: q for q in view.questions}
    assert list(qs) == ["data", "sources", "purposes", "basis", "storage", "recipients", "security"]
    assert {q.status for q in qs.values()} == {"observed", "partial", "not_observable"}
    assert qs["purposes"].status == "not_observable"
    storage = [line.key for line in qs["storage"].lines]
    assert "answer.china_yes" in storage and "answer.storage_limits" in storage
    sources = {line.key for line in qs["sources"].lines}
    assert {"answer.source_user", "answer.source_device", "answer.source_limits"} <= sources
    security = [line.key for line in qs["security"].lines]
    assert security == ["answer.security_cleartext", "answer.security_pinning"]
    recipients = {line.key: line.params for line in qs["recipients"].lines}
    assert recipients["answer.recipients_first"]["recipients"] == ["Hangzhou DeepSeek Artificial Intelligence Basic Technology Research Co., Ltd."]


def test_transfers_carry_the_legal_notes(doc):
    view = build_view(doc, "en", home_country="KR")
    codes = [c.code for c in view.transfers.countries]
    assert "KR" not in codes and codes[0] == "CN"
    cn = view.transfers.countries[0]
    assert cn.state_access and cn.notes and cn.notes[0].id == "CN"
    assert any("National Intelligence Law" in law.name for law in cn.notes[0].laws)
    assert all(law.link.startswith("https://") for law in cn.notes[0].laws)
    assert view.transfers.home_note.id == "KR"
    # Without a home country every country is foreign, and there is no home note.
    view = build_view(doc, "en")
    assert view.transfers.home_note is None and "KR" not in [c.code for c in view.transfers.countries]


def test_recipients_are_grouped_by_operator_third_parties_first(doc):
    view = build_view(doc, "en", home_country="KR")
    parties = [r.party for r in view.recipients]
    assert parties == sorted(parties, key=["third", "", "first"].index)
    (first,) = view.recipients_of("first")
    assert first.name.startswith("Hangzhou DeepSeek") and first.hosts[0][1] == "chat.deepseek.com"
    volc = next(r for r in view.recipients if r.hosts[0][1] == "gator.volces.com")
    assert volc.party == "third" and volc.categories and volc.first_received
    assert all(c.offset.startswith("+") for c in volc.categories)


def test_transmission_and_blind_spots(doc):
    view = build_view(doc, "en", home_country="KR")
    tr = view.transmission
    assert tr.versions_recorded and ("TLSv1.3", "9") in tr.versions
    assert [h for h, _ in tr.tls_failures][0] == "pinned.deepseek.com"
    keys = [b.key for b in view.blind_spots]
    assert keys[0] == "blind.tls_failures" and view.blind_spots[0].params == {"n": 2}
    assert {"blind.tcp", "blind.udp", "blind.dns", "blind.quic", "blind.opaque", "blind.errors"} <= set(keys)


def test_custody_hashes_the_canonical_document(doc):
    view = build_view(doc, "en", report_name="r.html", rendered_at="2026-11-28T00:00:00Z")
    c = view.custody
    assert c.document_sha256 == custody.document_sha256(doc)
    reordered = json.loads(json.dumps(doc, sort_keys=True, indent=4))
    assert custody.document_sha256(reordered) == c.document_sha256, "key order and whitespace do not count"
    assert c.sidecar == "r.html.sha256" and c.rendered_at == "2026-11-28T00:00:00Z"
    assert [k for k, _ in c.auditor] == ["name", "organisation", "case_ref", "device", "app", "app_version"]
    assert dict(c.auditor)["app"] == "", "missing fields are blanks to fill in"
    assert ("mitmproxy", "11.0.2") in c.doc_environment


@pytest.mark.parametrize("extra", [
    {},
    {"findings": []},
    {"findings": [{"evidence": f"é…{i}\u2028\"", "n": i, "x": None} for i in range(4321)], "tuple": (1, "ü")},
    {"warnings": ["a"], "nested": {"b": [1, {"z": 2, "a": [3.5, True]}]}},
], ids=["plain", "empty-list", "long-list", "nested"])
def test_the_document_hash_is_that_of_its_canonical_json_in_one_piece(doc, extra):
    import hashlib

    d = {**doc, **extra}
    # Hashed piece by piece (a 100k-flow document's canonical JSON is hundreds of MB), same bytes.
    assert custody.document_sha256(d) == hashlib.sha256(custody.canonical_json(d)).hexdigest()


def test_the_flowmap_is_bounded():
    hosts = [f"h{i:02d}.example" for i in range(MAX_NODES + 6)]
    doc = {"schema_version": 1,
           "findings": [_finding(h, "email") for h in hosts],
           "endpoints": [{"host": h, "jurisdictions": ["CN"], "operator": {"name": f"Op {h}", "country": "CN"}}
                         for h in hosts]}
    fm = build_view(doc, "en", home_country="KR").flowmap
    middle = [n for n in fm.nodes if n.id.startswith("c1")]
    assert len(middle) == MAX_NODES and middle[-1].label == "and 7 more"
    assert not fm.empty and fm.height > 0
    assert build_view({"schema_version": 1}, "en").flowmap.empty


def test_endpoint_detail_cards_are_bounded_and_the_rest_counted():
    import copy
    import json
    from pathlib import Path

    from privaudit.report import render_bytes
    from privaudit.report.viewmodel import MAX_ENDPOINT_CARDS, build_view

    doc = json.loads((Path(__file__).parent / "fixtures" / "report" / "sample_findings.json").read_text())
    template = doc["endpoints"][0]
    doc["endpoints"] = []
    for i in range(MAX_ENDPOINT_CARDS + 7):
        ep = copy.deepcopy(template)
        ep["host"] = f"h{i}.example.com"
        doc["endpoints"].append(ep)
    view = build_view(doc, "en")
    extra = len(view.endpoints) - MAX_ENDPOINT_CARDS
    assert extra >= 7  # the fixture's findings name a few hosts of their own too
    assert len(view.endpoint_cards) == MAX_ENDPOINT_CARDS and view.endpoint_cards_omitted == extra
    html = render_bytes(doc, "html", "en").decode()
    assert html.count('<section class="endpoint"') == MAX_ENDPOINT_CARDS
    assert f"{extra} further endpoint(s) are not shown in detail" in html


def _many_endpoints_doc(n_hosts: int, findings_per_host: int) -> dict:
    """One third-party recipient with ``n_hosts`` per-install subdomains, as
    a tracker SDK makes them in a long capture."""
    hosts = [f"i{i:04d}.inapps.tracker.example" for i in range(n_hosts)]
    return {"schema_version": 1,
            "findings": [_finding(h, "device_id", flow=i * findings_per_host + k)
                         for i, h in enumerate(hosts) for k in range(findings_per_host)],
            "endpoints": [{"host": h, "jurisdictions": ["US"], "party": "third",
                           "operator": {"name": "Tracker, Inc.", "country": "US"}} for h in hosts]}


def test_the_pdf_is_bounded_tighter_and_says_what_it_left_out():
    from privaudit.report import _render_template
    from privaudit.report.viewmodel import (
        APPENDIX_FINDINGS_PER_ENDPOINT, APPENDIX_FINDINGS_TOTAL, MAX_ENDPOINT_CARDS, PDF_APPENDIX_FINDINGS_PER_ENDPOINT,
        PDF_APPENDIX_FINDINGS_TOTAL, PDF_HOSTS_PER_RECIPIENT, PDF_MAX_ENDPOINT_CARDS)

    n_hosts, per_host = PDF_MAX_ENDPOINT_CARDS + 30, PDF_APPENDIX_FINDINGS_PER_ENDPOINT + 5
    doc = _many_endpoints_doc(n_hosts, per_host)
    total = n_hosts * per_host
    html, pdf = build_view(doc, "en", fmt="html"), build_view(doc, "en", fmt="pdf")

    # The HTML keeps its own bounds: every host named, every endpoint with findings in the appendix.
    assert len(html.endpoint_cards) == min(n_hosts, MAX_ENDPOINT_CARDS)
    (tracker,) = html.recipients
    assert len(tracker.hosts) == n_hosts and tracker.hosts_omitted == 0
    assert len(html.appendix_endpoints) == n_hosts and html.appendix_endpoints_omitted == 0
    assert (html.appendix_limit, html.appendix_total) == (APPENDIX_FINDINGS_PER_ENDPOINT, APPENDIX_FINDINGS_TOTAL)

    # The PDF: fewer cards, a few hosts per recipient, a shorter appendix; everything counted.
    assert len(pdf.endpoint_cards) == PDF_MAX_ENDPOINT_CARDS and pdf.endpoint_cards_omitted == 30
    (tracker,) = pdf.recipients
    assert len(tracker.hosts) == PDF_HOSTS_PER_RECIPIENT and tracker.hosts_omitted == n_hosts - PDF_HOSTS_PER_RECIPIENT
    assert pdf.appendix_shown == PDF_APPENDIX_FINDINGS_TOTAL
    assert pdf.appendix_shown + pdf.appendix_omitted == total
    listed = pdf.appendix_endpoints
    assert all(e.findings for e in listed), "the PDF lists only endpoints it shows findings of"
    assert len(listed) + pdf.appendix_endpoints_omitted == n_hosts
    assert sum(len(e.findings) for e in listed) == PDF_APPENDIX_FINDINGS_TOTAL
    assert all(len(e.findings) <= PDF_APPENDIX_FINDINGS_PER_ENDPOINT for e in listed)
    # The flow map and the answers still count every host.
    assert pdf.flowmap == html.flowmap and pdf.questions == html.questions

    text = _render_template(doc, "pdf", "en", False, None, "r.pdf")
    assert text.count('<section class="endpoint"') == PDF_MAX_ENDPOINT_CARDS
    assert "30 further endpoint(s) are not shown in detail in this PDF; they are in the findings JSON" in text
    assert f"and {n_hosts - PDF_HOSTS_PER_RECIPIENT} more host(s), in the findings JSON and the HTML report" in text
    assert (f"{pdf.appendix_endpoints_omitted} further endpoint(s) with findings are not listed in this appendix"
            in text)
    assert (f"At most {PDF_APPENDIX_FINDINGS_PER_ENDPOINT} findings per endpoint and {PDF_APPENDIX_FINDINGS_TOTAL} "
            f"in all are listed here. This PDF lists fewer than the HTML report") in text
    import re

    for page in (text, _render_template(doc, "html", "en", False, None, "r.html")):
        ids = set(re.findall(r' id="([^"]+)"', page))
        targets = set(re.findall(r' href="#([^"]+)"', page))
        assert targets and targets <= ids, "no link to an endpoint without a card"
    ko = _render_template(doc, "pdf", "ko", False, None, "r.pdf")
    assert f"외 호스트 {n_hosts - PDF_HOSTS_PER_RECIPIENT}곳" in ko and "이 PDF는 HTML 보고서보다 적게 싣습니다" in ko
    assert "in this PDF" not in _render_template(doc, "html", "en", False, None, "r.html")


def test_the_appendix_shows_the_most_severe_findings_of_a_large_endpoint():
    # Only the appendix's few are sorted (heapq.nsmallest): the same as sorting all.
    findings = [_finding("big.example", "email", severity=sev, flow=i, side=side)
                for i, (sev, side) in enumerate([("low", "request"), ("critical", "response"), ("high", "request"),
                                                  ("critical", "request"), ("info", "request")] * 30)]
    doc = {"schema_version": 1, "findings": findings, "endpoints": [{"host": "big.example"}]}
    (ep,) = build_view(doc, "en", appendix_limit=7).endpoints
    assert [(f.severity, f.side, f.flow_index) for f in ep.findings] == (
        [("critical", "request", str(i)) for i in range(3, 35, 5)])
    assert ep.omitted == len(findings) - 7 and ep.findings_total == len(findings)
    assert ep.severity_counts == [("critical", 60), ("high", 30), ("low", 30), ("info", 30)]


# -- findings streamed from disk ------------------------------------------------

@pytest.mark.parametrize("fmt", ["html", "pdf"])
def test_a_report_from_streamed_findings_equals_one_from_a_list(tmp_path, fmt):
    """A saved document's findings are read from disk as a stream, many more
    than the per-host appendix bound so the trimming runs; the view (every
    count, the appendix, the document hash) must be the one a list gives."""
    from privaudit import audit

    base = json.loads(FIXTURE.read_text())
    many = []
    for i in range(30):
        for f in base["findings"]:
            many.append({**f, "flow_index": (f.get("flow_index") or 0) + 1000 * i})
    base["findings"] = many
    path = tmp_path / "doc.json"
    with open(path, "w", encoding="utf-8") as fh:
        audit.dump_document(base, fh)
    streamed = audit.load_document(path)
    assert isinstance(streamed["findings"], audit.FindingsFile)
    listed = {**streamed, "findings": list(streamed["findings"])}
    kw = dict(fmt=fmt, report_name="r", rendered_at="2026-01-01T00:00:00Z", appendix_limit=3, appendix_total=40)
    a = build_view(listed, "en", **kw)
    b = build_view(streamed, "en", **kw)
    assert a == b
    assert a.figures.findings == len(many)
    assert custody.document_sha256(listed) == custody.document_sha256(streamed)


def test_appendix_order_when_trimmed_while_streaming_is_a_full_sort():
    from privaudit.report.viewmodel import _finding_sort_keys, _HostFindings

    key = _finding_sort_keys()
    sev = ["low", "medium", "high", "critical"]
    fs = [{"severity": sev[(i * 7) % 4], "side": "request" if i % 3 else "response", "category": "email",
           "location": f"request.body $.k{i % 5}", "flow_index": (i * 13) % 50} for i in range(400)]
    acc = _HostFindings()
    for f in fs:
        acc.add(f, 7, key)
    assert len(acc.kept) < 4 * 7 + 1
    assert acc.shown(7, key) == sorted(fs, key=key)[:7]
    assert acc.n == 400
