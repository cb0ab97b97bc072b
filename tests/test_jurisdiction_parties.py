"""First and third parties on a findings document's endpoints, as tables."""

from __future__ import annotations

import copy

import pytest

from privaudit.jurisdiction import classify_parties

DEEPSEEK = {"name": "Hangzhou DeepSeek Artificial Intelligence Co., Ltd.", "country": "CN",
            "parent": "High-Flyer (Ningbo High-Flyer Quantitative Investment Management)", "parent_country": "CN"}
VOLC = {"name": "Beijing Volcano Engine Technology Co., Ltd. (Volcengine)", "country": "CN",
        "parent": "ByteDance Ltd.", "parent_country": "CN"}
BYTEDANCE = {"name": "ByteDance Ltd.", "country": "CN"}
SHUMEI = {"name": "Beijing Shumei Shidai Technology Co., Ltd. (Shumei)", "country": "CN"}
INTERCOM = {"name": "Intercom, Inc.", "country": "US"}


def ep(host, flows, operator=None, first_seen=None):
    return {"host": host, "flow_count": flows, "operator": operator, "first_seen": first_seen}


CAPTURE = [
    ep("chat.deepseek.com", 12, DEEPSEEK),
    ep("gator.volces.com", 8, VOLC),
    ep("cdn.deepseek.com", 3, DEEPSEEK),
    ep("fp-it.fengkongcloud.com", 2, SHUMEI),
    ep("api-iam.intercom.io", 1, INTERCOM),
    ep("203.0.113.7", 1),
    ep("static.deepseek-assets.example", 1, DEEPSEEK),  # not deepseek.com, but DeepSeek's
]


def _table(result):
    return {e["host"]: (e["party"], e["party_rule"]) for e in result}


@pytest.mark.parametrize(
    "own, login, expected",
    [
        # Inferred: deepseek.com is contacted most (15 flows).
        ((), (), {
            "chat.deepseek.com": ("first", "inferred-most-contacted"),
            "cdn.deepseek.com": ("first", "inferred-most-contacted"),
            "static.deepseek-assets.example": ("first", "inferred-operator"),
            "gator.volces.com": ("third", "third-party"),
            "fp-it.fengkongcloud.com": ("third", "third-party"),
            "api-iam.intercom.io": ("third", "third-party"),
            "203.0.113.7": ("third", "third-party"),
        }),
        # The user's own domains win over inference.
        (("deepseek.com",), (), {
            "chat.deepseek.com": ("first", "own-domain"),
            "cdn.deepseek.com": ("first", "own-domain"),
            "static.deepseek-assets.example": ("first", "own-operator"),
            "gator.volces.com": ("third", "third-party"),
            "fp-it.fengkongcloud.com": ("third", "third-party"),
            "api-iam.intercom.io": ("third", "third-party"),
            "203.0.113.7": ("third", "third-party"),
        }),
        # Own domains given as hosts count by registrable domain; login hosts are
        # then not used (the user said who the first party is).
        (("www.volces.com",), ("api-iam.intercom.io",), {
            "chat.deepseek.com": ("third", "third-party"),
            "cdn.deepseek.com": ("third", "third-party"),
            "static.deepseek-assets.example": ("third", "third-party"),
            "gator.volces.com": ("first", "own-domain"),
            "fp-it.fengkongcloud.com": ("third", "third-party"),
            "api-iam.intercom.io": ("third", "third-party"),
            "203.0.113.7": ("third", "third-party"),
        }),
        # Inferred with a login endpoint: both the most-contacted domain and the login host's.
        ((), ("login.fengkongcloud.com",), {
            "chat.deepseek.com": ("first", "inferred-most-contacted"),
            "cdn.deepseek.com": ("first", "inferred-most-contacted"),
            "static.deepseek-assets.example": ("first", "inferred-operator"),
            "gator.volces.com": ("third", "third-party"),
            "fp-it.fengkongcloud.com": ("first", "inferred-login"),
            "api-iam.intercom.io": ("third", "third-party"),
            "203.0.113.7": ("third", "third-party"),
        }),
    ],
)
def test_classify_parties(own, login, expected):
    assert _table(classify_parties(CAPTURE, own, login)) == expected


@pytest.mark.parametrize(
    "own, login, host, reason",
    [
        ((), (), "chat.deepseek.com", "inferred: most-contacted registrable domain deepseek.com (15 flows)"),
        ((), (), "static.deepseek-assets.example",
         "inferred: operated by Hangzhou DeepSeek Artificial Intelligence Co., Ltd., which also runs "
         "most-contacted registrable domain deepseek.com (15 flows)"),
        ((), (), "gator.volces.com", "third party: not run by the first party (inferred first party: deepseek.com)"),
        ((), ("login.fengkongcloud.com",), "fp-it.fengkongcloud.com", "inferred: login endpoint login.fengkongcloud.com"),
        (("deepseek.com",), (), "cdn.deepseek.com", "registrable domain deepseek.com is one of your own domains"),
        (("deepseek.com",), (), "static.deepseek-assets.example",
         "operated by Hangzhou DeepSeek Artificial Intelligence Co., Ltd., which also runs your own domain deepseek.com"),
        (("deepseek.com",), (), "api-iam.intercom.io",
         "third party: not run by the first party (your own domains: deepseek.com)"),
    ],
)
def test_party_reasons(own, login, host, reason):
    result = {e["host"]: e for e in classify_parties(CAPTURE, own, login)}
    assert result[host]["party_reason"] == reason


def test_affiliate_is_third_party_and_says_so():
    endpoints = [ep("www.doubao.com", 20, BYTEDANCE), ep("gator.volces.com", 5, VOLC)]
    result = {e["host"]: e for e in classify_parties(endpoints)}
    assert result["www.doubao.com"]["party"] == "first"
    assert result["gator.volces.com"]["party"] == "third"
    assert "affiliate (same group, parent ByteDance Ltd.)" in result["gator.volces.com"]["party_reason"]


def test_own_domain_not_in_capture_uses_operator_map():
    # bytedance.com is never contacted, but the operator map says ByteDance runs it.
    endpoints = [ep("log.snssdk.com", 4, BYTEDANCE), ep("api-iam.intercom.io", 9, INTERCOM)]
    result = _table(classify_parties(endpoints, own_domains=["bytedance.com"]))
    assert result == {"log.snssdk.com": ("first", "own-operator"), "api-iam.intercom.io": ("third", "third-party")}


@pytest.mark.parametrize(
    "endpoints, first",
    [
        # Equal counts: the earlier first_seen wins, then the name.
        ([ep("a.one.example", 3, first_seen="2026-01-01T00:00:02Z"),
          ep("b.two.example", 3, first_seen="2026-01-01T00:00:01Z")], "b.two.example"),
        ([ep("a.one.example", 3), ep("b.two.example", 3)], "a.one.example"),
        # Counts add up per registrable domain.
        ([ep("x.one.example", 2), ep("y.one.example", 2), ep("z.two.example", 3)], "x.one.example"),
        # IP literals count as their own "domain".
        ([ep("192.0.2.1", 9), ep("z.two.example", 3)], "192.0.2.1"),
    ],
)
def test_most_contacted_tie_breaks(endpoints, first):
    result = classify_parties(endpoints)
    assert [e["host"] for e in result if e["party"] == "first"][0] == first


def test_input_is_not_changed_and_keys_are_kept():
    before = copy.deepcopy(CAPTURE)
    result = classify_parties(CAPTURE)
    assert CAPTURE == before
    assert all({"party", "party_reason", "party_rule"} <= set(e) for e in result)
    assert [e["host"] for e in result] == [e["host"] for e in CAPTURE]


def test_no_endpoints():
    assert classify_parties([]) == []
