"""The detector's shortcuts (memos, fast paths, the Rust automaton) answer
exactly what the plain definitions answer.

Each shortcut is checked against the slow form it replaces, on tables of
cases that include the corners where a shortcut could go wrong: the same
value under another key or endpoint, a field budget hit halfway through a
remembered header, Python's dict-key equality (1 == 1.0 == True).
"""

from __future__ import annotations

import json
import random
import re
from urllib.parse import parse_qsl

import pytest

from privaudit.detect import Detector, canaries_from_mapping, load_rules
from privaudit.detect import canaries as canaries_mod
from privaudit.detect.decode import Bounds, Decoder, _Ctx, parse_form
from privaudit.detect.detector import _drop_outer, _worth_decoding
from privaudit.model import Exchange, Message

RULES = load_rules()


def _ex(url: str, body: dict | None = None, headers=(), index: int = 0, scheme: str = "https") -> Exchange:
    data = json.dumps(body).encode() if body is not None else b""
    req = Message(headers=tuple(headers) + (("Content-Type", "application/json"),), body=data,
                  content_type="application/json")
    host = url.split("/")[2]
    return Exchange(index=index, kind="http", host=host, port=443, scheme=scheme, method="POST", url=url,
                    request=req, tls=scheme == "https")


def _plain(e: Exchange, **kw):
    """What a fresh detector (every memo empty) finds."""
    return [f.to_json() for f in Detector(RULES, **kw).scan(e)]


# ------------------------------------------------------------ memoised rules

# The same (key, value) twice in one detector, where the second verdict must
# differ or match because of the field's context, not the memo.
SAME_VALUE_OTHER_CONTEXT = [
    # chat.message_key depends on the endpoint
    (_ex("https://api.example.com/v1/chat/completions", {"message": "I feel unwell since Monday morning"}),
     _ex("https://api.example.com/v1/settings", {"message": "I feel unwell since Monday morning"}, index=1)),
    # identity.name_by_sibling depends on the keys beside the value
    (_ex("https://api.example.com/u", {"name": "Kim Minjun", "phone": "x"}),
     _ex("https://api.example.com/u", {"name": "Kim Minjun", "colour": "x"}, index=1)),
    # national_id.us_ssn needs a context word (the pattern memo is per value)
    (_ex("https://api.example.com/pay", {"ssn": "536221234"}),
     _ex("https://api.example.com/pay", {"ref": "536221234"}, index=1)),
    # cleartext raises the severity of a memoised hit
    (_ex("https://api.example.com/a", {"email": "tester.one@example.org"}),
     _ex("http://api.example.com/a", {"email": "tester.one@example.org"}, index=1, scheme="http")),
]


@pytest.mark.parametrize("first,second", SAME_VALUE_OTHER_CONTEXT)
def test_memo_never_carries_context_over(first, second):
    det = Detector(RULES)
    warm = [[f.to_json() for f in det.scan(e)] for e in (first, second, first, second)]
    assert warm == [_plain(first), _plain(second), _plain(first), _plain(second)]


def test_records_and_lists_match_as_before_on_repeat():
    body = {
        "events": [{"event": "open_chat", "ts": 1}, {"event": "send", "ts": 2}, {"event": "crash", "ts": 3}],
        "apps": ["com.kakao.talk", "com.nhn.line", "jp.naver.line.android"],
        "contacts": [{"name": "A B", "phone": "010-1111-2222"}, {"name": "C D", "phone": "010-3333-4444"}],
        "odd": [{"1": "x"}, {"event": "", "ts": 5}],
    }
    e = _ex("https://api.example.com/batch", body)
    det = Detector(RULES)
    once = _plain(e)
    assert once, "the case must produce findings to be a test"
    for _ in range(3):
        assert [f.to_json() for f in det.scan(e)] == once


# ------------------------------------------------------------ dedupe


def _drop_outer_plain(best: dict) -> None:
    locs: dict = {}
    for side, cat, loc in best:
        locs.setdefault((side, cat), set()).add(loc)
    for (side, cat), group in locs.items():
        for loc in group:
            if any(o.startswith(loc + " ") for o in group):
                del best[(side, cat, loc)]


DEDUPE = [
    ["request.body", "request.body $.a", "request.body $.a $.b"],
    ["request.body $.a", "request.body $.ab"],
    ["request.body $.a", "request.body $.a!x", "request.body $.a\x01 y"],
    ["request.query q", "request.query q form[x]", "request.query qq form[x]"],
    ["websocket[1]", "websocket[1] stomp $.c", "websocket[10] $.c"],
    ["a b c", "a b", "a"],
    ["x", "x  y", "x "],
]


@pytest.mark.parametrize("locs", DEDUPE)
def test_drop_outer_is_the_prefix_rule(locs):
    for cats in (["phone"], ["phone", "email"]):
        best = {("request", c, loc): i for i, (c, loc) in enumerate((c, loc) for c in cats for loc in locs)}
        want = dict(best)
        _drop_outer_plain(want)
        _drop_outer(best)
        assert best == want


# ------------------------------------------------------------ decoding


def test_parse_form_fast_path_is_parse_qsl():
    rnd = random.Random(7)
    cases = ["", "a", "a=", "=b", "a=b&c", "&&a=1&&", "a=b=c&d==", "x;y=1", "a=1;b=2", "é=ü&z"]
    cases += ["".join(rnd.choice("ab=&; 1é") for _ in range(rnd.randint(0, 12))) for _ in range(3000)]
    for qs in cases:
        assert parse_form(qs) == parse_qsl(qs, keep_blank_values=True, encoding="utf-8", errors="strict"), qs


def _fields(e: Exchange, dec: Decoder):
    fs, raws = dec.exchange(e)
    return [(f.location, f.encoding, f.key, f.nkey, f.value, f.keypath, sorted(f.siblings), f.items) for f in fs]


@pytest.mark.parametrize("max_fields", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 50])
def test_remembered_headers_respect_the_field_budget(max_fields):
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyIsIm5hbWUiOiJLaW0ifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    e = _ex("https://api.example.com/a?x=1", {"k": "v"},
            headers=(("Authorization", "Bearer " + token), ("X-Session", token), ("Cookie", f"sid={token}; a=b")))
    warm = Decoder(Bounds(max_fields=max_fields))
    runs = [_fields(e, warm) for _ in range(3)]
    fresh = Decoder(Bounds(max_fields=max_fields))
    cold = _fields(e, fresh)
    assert runs == [cold, cold, cold]
    assert warm.stats["bounds_hit"]["fields"] == 3 * fresh.stats["bounds_hit"]["fields"]


def test_object_shape_memo_tells_equal_keys_apart():
    # 1, 1.0 and True are one dict key but three names; only str keys are remembered
    dec = Decoder()
    for obj in ({1: "a"}, {1.0: "a"}, {True: "a"}, {"1": "a"}):
        fs = []
        dec._out, dec._raw = fs, []
        dec._walk({"o": obj}, _Ctx("request", (), 0), "request.body ", "$", "$", "", "", frozenset())
        assert [f.key for f in fs] == [str(next(iter(obj)))]


# ------------------------------------------------------------ responses

_HINT = re.compile(rb"(?i)token|session|secret|passw|auth|ticket|sid")


@pytest.mark.parametrize("body", [b"", b"{}", b'{"Token": 1}', b"SESSION", b"xSiDx", b"passWORD", b"nothing here",
                                  b"\xff\xfeAUTH", b"t o k e n", b"x" * 300_000 + b"token"])
@pytest.mark.parametrize("headers", [(), (("Set-Cookie", "a=b"),), (("set-cookie", "a=b"),), (("X-Set-Cookie", "a"),)])
def test_worth_decoding_is_the_regex(body, headers):
    resp = Message(headers=headers, body=body)
    plain = any(k.lower() == "set-cookie" for k, _ in headers) or (0 < len(body) <= 256 * 1024 and _HINT.search(body) is not None)
    assert _worth_decoding(resp) is plain


# ------------------------------------------------------------ canaries

CANARIES = {
    "email": "tester.one@example.org",
    "phone": "+82 10-1234-5678",
    "name": ["Hong Gildong", "홍길동"],
    "device_id": "356938035643809",
    "location": {"lat": 37.5665, "lon": 126.978},
}


def _engine(monkeypatch, name: str):
    """Canaries searched by engine ``name`` (skips if it is not installed)."""
    monkeypatch.setenv("PRIVAUDIT_CANARY_ENGINE", name)
    can = canaries_from_mapping(CANARIES)
    if can.engine != name:
        pytest.skip(f"{name} is not installed")
    return can


ENGINES = ["hyperscan", "rs"]


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_finds_what_pyahocorasick_finds(monkeypatch, engine):
    can = _engine(monkeypatch, engine)
    words = list(can._automaton.keys())
    rnd = random.Random(3)
    # Hangul, CJK, an astral emoji, Latin-1, a lone surrogate: byte and
    # character offsets differ, and the text is not always UTF-8
    alphabet = "ab가홍길동张\U0001F600é\udc800123456789@.+-%"
    for _ in range(3000):
        text = "".join(
            rnd.choice(words) if rnd.random() < 0.3 else "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 6)))
            for _ in range(rnd.randint(1, 6))
        )
        key = lambda m: (m[0], m[1][4])  # noqa: E731
        assert sorted(can._matches(text), key=key) == sorted(can._automaton.iter(text), key=key), text


@pytest.mark.parametrize("engine", ENGINES)
def test_canary_findings_are_the_same_on_every_engine(monkeypatch, engine):
    body = {"user": {"email": "tester.one@example.org", "tel": "01012345678", "lat": 37.5665, "lng": 126.9781},
            "blob": "dGVzdGVyLm9uZUBleGFtcGxlLm9yZw", "nm": "홍길동"}
    e = _ex("https://api.example.com/p?d=356938035643809", body)
    fast = _plain(e, canaries=_engine(monkeypatch, engine))
    monkeypatch.setenv("PRIVAUDIT_CANARY_ENGINE", "pyaho")
    slow = canaries_from_mapping(CANARIES)
    assert slow.engine == "pyaho"
    assert fast == _plain(e, canaries=slow)
    assert {f["method"] for f in fast} >= {"canary"}


@pytest.mark.parametrize("engine", ENGINES + ["pyaho"])
def test_a_lone_surrogate_does_not_hide_a_flows_canaries(monkeypatch, engine):
    # json.loads turns "\udc80" into a lone surrogate, which is not UTF-8: the
    # Rust automaton used to raise on it, and the whole flow's findings were
    # lost as an "analysis failed"
    monkeypatch.setenv("PRIVAUDIT_CANARY_ENGINE", engine)
    can = canaries_from_mapping(CANARIES)
    data = b'{"email": "tester.one@example.org", "x": "\\udc80 pad"}'
    req = Message(headers=(("Content-Type", "application/json"),), body=data, content_type="application/json")
    e = Exchange(index=0, kind="http", host="api.example.com", port=443, scheme="https", method="POST",
                 url="https://api.example.com/p", request=req, tls=True)
    found = Detector(RULES, canaries=can).scan(e)
    assert any(f.method == "canary" and f.category == "email" and f.location == "request.body $.email" for f in found)


def test_dropping_the_memos_changes_no_result():
    det = Detector(RULES, canaries=canaries_from_mapping(CANARIES))
    exs = [
        _ex(f"https://api.example.com/v1/e?uid={i}", {"email": "tester.one@example.org", "imei": "356938035643809",
                                                      "ua": "Mozilla/5.0", "n": i, "tok": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.x"},
            headers=(("Cookie", "sid=abcdef0123456789"),), index=i)
        for i in range(3)
    ]
    first = [[f.to_json() for f in det.scan(e)] for e in exs]
    assert det._value_memo and det._pattern_memo  # the memos were used
    det.drop_memos()
    assert not det._value_memo and not det._pattern_memo and not det._decoder._string_memo
    assert [[f.to_json() for f in det.scan(e)] for e in exs] == first
    assert any(f["method"] == "canary" for f in first[0])


def test_memo_turnover_changes_no_result(monkeypatch):
    """With a tiny memo, entries turn over all the time (the full memo
    becomes the old generation, hot entries move back): the findings must
    be those of a detector that never forgets, flow after flow."""
    from privaudit.detect import detector as detector_mod

    exs = [
        _ex(f"https://api.example.com/v1/e?uid={i % 5}",
            {"email": "tester.one@example.org" if i % 3 else "other@example.net", "imei": "356938035643809",
             "n": i, "ua": f"app/{i % 4}", "phone": "010-1234-5678" if i % 2 else "+82 10 1234 5678"},
            headers=(("Cookie", f"sid=abcdef{i % 7}0123456789"),), index=i)
        for i in range(60)
    ]
    reference = Detector(RULES, canaries=canaries_from_mapping(CANARIES))
    expected = [[f.to_json() for f in reference.scan(e)] for e in exs]
    monkeypatch.setattr(detector_mod, "MEMO_LIMIT", 3)
    small = Detector(RULES, canaries=canaries_from_mapping(CANARIES))
    assert [[f.to_json() for f in small.scan(e)] for e in exs] == expected
    assert small._value_memo_old  # the turnover happened
    assert any(f["category"] == "email" for f in expected[1])
