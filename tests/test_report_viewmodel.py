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


def test_main_body_and_appendix_are_bounded(doc):
    view = build_view(doc, "en", main_limit=3, appendix_limit=4)
    ds = next(e for e in view.endpoints if e.host == "chat.deepseek.com")
    assert (len(ds.findings), len(ds.appendix), ds.omitted) == (3, 4, 2)
    assert ds in view.appendix_endpoints
    api = next(e for e in view.endpoints if e.host == "api-iam.intercom.io")
    assert (len(api.findings), len(api.appendix), api.omitted) == (3, 0, 0)
    assert api not in view.appendix_endpoints


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
    assert m.phases == [("login", "2026-11-20T09:10:00Z"), ("chat", "2026-11-20T09:12:00Z")]


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
