"""The compiled decoder walk (privaudit/detect/_walk.c) gives what the Python one gives.

Every test decodes with ``Decoder(native=True)`` (the C walk, when built) and
``Decoder(native=False)`` (pure Python, the reference) and compares the Field
sequences attribute by attribute, the raw texts, and the stats counters.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from privaudit.detect import decode
from privaudit.detect.decode import Bounds, Decoder, Field, RawText, _Budget, _Ctx
from privaudit.model import Exchange, Message, WsMessage

TESTS = Path(__file__).parent
C = decode._C
needs_c = pytest.mark.skipif(C is None, reason="the C decoder walk is not built here")

_ATTRS = ("side", "location", "encoding", "key", "nkey", "value", "keypath", "siblings", "items")


def _rows(fields) -> list[tuple]:
    out = []
    for f in fields:
        assert type(f) is Field
        out.append(tuple(getattr(f, a) for a in _ATTRS))
    return out


def _decoders(bounds: Bounds | None = None) -> tuple[Decoder, Decoder]:
    return Decoder(bounds, native=True), Decoder(bounds, native=False)


def assert_same(exchanges, bounds: Bounds | None = None) -> int:
    """Both decoders, over every exchange (requests and responses): the same
    Fields, raw texts and counters. Returns how many Fields were compared."""
    fast, slow = _decoders(bounds)
    n = 0
    for ex in exchanges:
        for responses in (False, True):
            fa, ra = fast.exchange(ex, responses=responses)
            fb, rb = slow.exchange(ex, responses=responses)
            assert _rows(fa) == _rows(fb), (ex.index, ex.url)
            assert ra == rb
            n += len(fa)
        assert _rows(fast.response(ex)) == _rows(slow.response(ex))
        assert fast.stats == slow.stats
    return n


def http(body: bytes = b"", ctype: str = "application/json", headers=(), url: str = "https://a.example.com/v1/x?q=1", ws=()) -> Exchange:
    return Exchange(
        index=0, kind="http", host="a.example.com", scheme="https", method="POST", url=url,
        request=Message(headers=tuple(headers), body=body, content_type=ctype),
        response=Message(headers=(("Set-Cookie", "sid=abcdef0123456789; Path=/"),), body=body, content_type=ctype),
        websocket=tuple(ws), tls=True,
    )


def jbody(obj) -> Exchange:
    return http(json.dumps(obj).encode())


# ------------------------------------------------------------ the extension


def test_the_c_walk_is_built_in_ci():
    """CI installs privaudit the way users do; the compiled walk must be there
    (elsewhere a missing compiler only makes decoding slower)."""
    if os.environ.get("CI") != "true" and decode.WALKER != "C":
        pytest.skip("the C decoder walk is not built here (no compiler at install?)")
    assert decode.WALKER == "C"
    assert decode._C.__file__.endswith(".so")


def test_pure_python_switch():
    code = "from privaudit.detect import decode as d; print(d.WALKER, d._C)"
    env = dict(os.environ, PRIVAUDIT_PURE_PYTHON="1")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Python", "None"]


@needs_c
def test_native_decoder_uses_the_c_walk_and_pure_one_does_not():
    fast, slow = _decoders()
    assert fast._walk.__func__ is C.walk and fast._string.__func__ is C.string
    assert "_walk" not in vars(slow) and "_string" not in vars(slow)


# ------------------------------------------------------------------ corpora


def _capture_exchanges(path: Path) -> list[Exchange]:
    from privaudit.source import read_exchanges

    try:
        return list(read_exchanges([path]))
    except Exception:  # a corrupted capture (the corpora keep some on purpose)
        return []


def _corpus_files() -> list[Path]:
    roots = [TESTS / "data", TESTS / "fixtures", Path("/work/shared/corpus")]
    files = []
    for root in roots:
        if root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.suffix in (".mitm", ".har", ".flows") or p.name.startswith("dumpfile"))
    return sorted(set(files))


@needs_c
@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_same_fields_on_test_corpora(path):
    exs = _capture_exchanges(path)
    if not exs:
        pytest.skip("does not load")
    assert_same(exs)


@needs_c
def test_same_fields_on_a_generated_bench_capture(tmp_path):
    from privaudit.bench import generate as G
    from privaudit.source import read_exchanges

    cap = tmp_path / "bench.mitm"
    G.write_capture(G.generate(11, 600), cap)
    exs = list(read_exchanges([cap]))
    assert len(exs) == 600
    assert assert_same(exs) > 5000
    # and with bounds that the bench traffic hits
    assert_same(exs[:200], Bounds(max_fields=40, max_nesting=2, max_depth=1))


# ---------------------------------------------------------------- hostile


def _nest(depth: int, leaf, kind: str = "dict"):
    obj = leaf
    for i in range(depth):
        obj = {f"k{i}": obj, "s": "x" * (i % 10), "n": i} if kind == "dict" else [obj, i, "yy"]
    return obj


HOSTILE = [
    _nest(80, "deep"),                      # past max_nesting (64)
    _nest(80, {"a": 1}, "list"),
    [_nest(70, [1, 2], "dict"), _nest(70, {}, "list")],
    {"a": {}, "b": [], "c": [[]], "d": [{}], "e": [[], {}, None], "f": None, "": ""},
    {"f1": 1e308, "f2": -0.0, "f3": 1.5e-7, "f4": 12345678901234567890123, "b": True, "c": False, "n": None,
     "l": [True, False, None, 1.0, -2, 3e20, "s"]},
    {"sur": "\ud800\udc00 \udfff x \ud83d", "nul": "a\x00b\x00c\x00d", "bom": "\ufeff{\"a\": 1}", "rtl": "\u202e12345678"},
    {"messages": [{"role": "system", "content": "be nice"}, {"Role": "developer", "content": "x" * 20},
                  {"role": "", "Role": "system", "content": "y"}, {"role": ["system"], "content": "z"},
                  {"role": {"a": 1}, "Role": "system"}, {"role": 0, "Role": None}, {"role": "user", "content": "hi"}]},
    {"device_model": {"value": "SM-S918N"}, "bag": {"value": "v", "type": "string", "ts": 1},
     "big": {"value": "v", "a": 1, "b": 2, "c": 3}, "nested": {"value": {"x": 1}}, "list": {"value": [1, 2]}},
    {"user[phone]": "01012345678", "a-b_c.d": "x", "Ünï": "ü", "1": "one", "k k": "sp", "\"q\"": "q", "[0]": 0},
    {"events": [{"name": "e", "params": {"a": 1, "b": [1, {"c": "d"}]}} for _ in range(30)]},
    {"long": "L" * 10000, "list": list(range(3000)), "text": "é" * 5000},
    [{"a": 1}, {"a": 1, "A": 2}, {"b": {"c": None}}],
    ["socket", {"x": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2ln"}],
]


@needs_c
@pytest.mark.parametrize("obj", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize(
    "bounds",
    [None, Bounds(max_nesting=3), Bounds(max_fields=7), Bounds(max_fields=0), Bounds(max_nesting=0, max_fields=30),
     Bounds(max_depth=0), Bounds(max_nesting=-1)],
    ids=["default", "nesting3", "fields7", "fields0", "nesting0", "depth0", "nesting-1"],
)
def test_same_fields_on_hostile_json(obj, bounds):
    exs = [jbody(obj), http(b"42" + json.dumps(["send", obj]).encode(), "")]
    exs.append(http(b"", headers=[("X-Data", base64.b64encode(json.dumps(obj).encode()).decode())]))
    exs.append(http(ws=[WsMessage(from_client=True, is_text=True, content=json.dumps(obj).encode(), timestamp=0.0)], body=b""))
    assert_same(exs, bounds)


@needs_c
def test_budget_fires_at_the_same_field():
    obj = {f"k{i}": [i, {"v": "x" * i, "h": "%032x" % i}] for i in range(200)}
    for limit in (1, 2, 3, 10, 57, 123, 400, 801):
        fast, slow = _decoders(Bounds(max_fields=limit))
        fa, _ = fast.exchange(jbody(obj))
        fb, _ = slow.exchange(jbody(obj))
        assert len(fa) == limit and _rows(fa) == _rows(fb)
        assert fast.stats["bounds_hit"]["fields"] == slow.stats["bounds_hit"]["fields"] == 1


def _walk_both(obj, bounds: Bounds | None = None, out_of: int = 0):
    """Decoder._walk called directly (objects JSON never gives: other key
    types, subclasses), by both decoders."""
    rows, stats, errors = [], [], []
    for d in _decoders(bounds):
        d._out = [Field("request", "pre", None, "", "", "v")] * out_of
        try:
            d._walk(obj, _Ctx("request", ("base64",), 1), "request.body ", "$", "$", "", "", frozenset())
            errors.append(None)
        except _Budget:
            errors.append(_Budget)
        except (TypeError, ValueError, RecursionError) as e:
            errors.append(type(e))
        rows.append(_rows(d._out))
        stats.append(d.stats)
    assert rows[0] == rows[1]
    assert stats[0] == stats[1]
    assert errors[0] == errors[1]
    return rows[0]


class _Str(str):
    pass


class _Dict(dict):
    pass


class _List(list):
    pass


class _Num:
    def __str__(self) -> str:
        return "num!"


@needs_c
@pytest.mark.parametrize(
    "obj",
    [
        {1: "int key", 1.5: "float", True: "bool", None: "none", (1, 2): "tuple", "s": "str"},
        {"a": _Str("a str subclass of some length"), "b": _Dict(x=1, y=[1]), "c": _List([1, "2", {"z": 3}])},
        _Dict(value="bag", k="v"),
        _List([_Dict(role="system", c=1), {"role": _Str("system")}]),
        {"n": _Num(), "l": [_Num(), {"k": _Num()}], "d": {"value": _Num()}},
        {"x": [{1: 2, None: True}, {(1,): 1.0}]},
        [[{"a": [[{"b": "x"}]]}]] * 3,
        "a top-level string that is long enough",
        _Str("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2ln"),
        12, 1.25, True, None, _Num(),
    ],
)
@pytest.mark.parametrize("bounds", [None, Bounds(max_nesting=1), Bounds(max_fields=3)], ids=["default", "nesting1", "fields3"])
def test_same_walk_of_unusual_objects(obj, bounds):
    _walk_both(obj, bounds)


@needs_c
def test_budget_already_spent_and_deep_recursion():
    _walk_both({"a": 1}, Bounds(max_fields=5), out_of=5)
    _walk_both([1, 2, 3], Bounds(max_fields=6), out_of=5)
    deep = "leaf"
    for _ in range(5000):
        deep = [deep]
    _walk_both(deep, Bounds(max_nesting=10**6))  # RecursionError in both, or neither


# ------------------------------------------------------------------ strings

_ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _random_string(rng: random.Random) -> str:
    """Strings around every test of _string: lengths 7/8/11/12/15/16/17,
    hex (odd and even), base64 (std, URL-safe, padding), JWT-ish, form-ish,
    percent, JSON, whitespace, non-ASCII, compressed payloads."""
    kind = rng.randrange(16)
    n = rng.choice([6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 24, 31, 32, 33, 64])
    if kind == 0:
        return "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(n))
    if kind == 1:
        return "".join(rng.choice(_ALPHA + "+/-_") for _ in range(n)) + "=" * rng.randrange(4)
    if kind == 2:
        raw = bytes(rng.randrange(256) for _ in range(n))
        return (base64.urlsafe_b64encode if rng.random() < 0.5 else base64.b64encode)(raw).decode().rstrip("=" * rng.randrange(2))
    if kind == 3:
        text = rng.choice(["hello world phone 01012345678", '{"a": "b", "n": 1}', "a=1&b=2", "안녕하세요 여러분", "%41%42"])
        return base64.b64encode(text.encode()).decode()
    if kind == 4:
        return base64.b64encode(gzip.compress(json.dumps({"imei": "356938035643809"}).encode())).decode()
    if kind == 5:
        return bytes(rng.randrange(256) for _ in range(n // 2)).hex()
    if kind == 6:
        return "text in hex".encode().hex() if rng.random() < 0.5 else "日本語テキスト".encode().hex()
    if kind == 7:
        return "eyJ" + "".join(rng.choice(_ALPHA) for _ in range(n))
    if kind == 8:
        return "a=%d&b=%s" % (rng.randrange(1000), rng.choice(["x", "", "y z", "%20"]))
    if kind == 9:
        return rng.choice(["100%", "%zz%41", "50% off today", "caf%C3%A9 time"])
    if kind == 10:
        return rng.choice(["{}", "[1,2]", '{"a": [1]}', "[not json]", " {\"x\": \"y\"} "]) * rng.randrange(1, 3)
    if kind == 11:
        return rng.choice(" \t\n\u3000\xa0") * rng.randrange(3) + "".join(rng.choice(_ALPHA) for _ in range(n)) + " " * rng.randrange(2)
    if kind == 12:
        return "".join(rng.choice(_ALPHA[:52]) for _ in range(n))  # letters only
    if kind == 13:
        return "".join(rng.choice("0123456789") for _ in range(n))  # digits only
    if kind == 14:
        return "".join(chr(rng.choice([rng.randrange(0x20, 0x7F), rng.randrange(0xA0, 0x3000), rng.randrange(0xD800, 0xE000), 0xFFFD, 0x1F600])) for _ in range(n))
    return "".join(rng.choice(_ALPHA + "+/=-_ .:&%{}[]") for _ in range(n))


def _b64_reference(st: str) -> bytes | None:
    return decode._b64decode(st)


@needs_c
def test_string_classing_matches_string():
    """needs_python(s) False means _string would emit s's Field and nothing
    else; the bytes the C side decodes are the ones _string would."""
    rng = random.Random(5)
    seen = Counter()
    for _ in range(20000):
        s = _random_string(rng)
        st = s.strip()
        got = C.decoded(s)
        if isinstance(got, tuple):
            kind, data = got
            seen[kind] += 1
            assert data == (bytes.fromhex(st) if kind == "hex" else _b64_reference(st)), s
            assert (kind == "hex") == bool(len(st) >= 16 and decode._HEX.match(st))
        elif got is None:
            seen["b64-none"] += 1
            assert _b64_reference(st) is None
        d = Decoder(native=False)
        d._out = []
        d._string(s, _Ctx("request", (), 0), "loc", "k", "k", "$.k", frozenset())
        if not C.needs_python(s):
            seen["c"] += 1
            assert len(d._out) == 1 and d.stats["bounds_hit"] == Counter() and d.stats["undecodable_bodies"] == 0, s
        else:
            seen["python"] += 1
    assert min(seen.values()) > 100, seen


@needs_c
def test_same_fields_for_random_strings_everywhere():
    rng = random.Random(9)
    exs = []
    for i in range(300):
        vals = [_random_string(rng) for _ in range(12)]
        obj = {f"k{j}": v for j, v in enumerate(vals[:6])}
        obj["list"] = vals[6:9]
        obj["nested"] = {"x": [{"y": vals[9]}], "value": vals[10]}
        q = "&".join(f"p{j}={v}" for j, v in enumerate(vals[:3]))
        exs.append(http(json.dumps(obj).encode(), url=f"https://h.example/p/{vals[11]}?{q}",
                        headers=[("X-Token", vals[0]), ("Cookie", f"a={vals[1]}; b={vals[2]}"), ("User-Agent", vals[3])]))
        exs.append(http(q.encode("utf-8", "surrogatepass"), "application/x-www-form-urlencoded"))
        exs.append(http(vals[4].encode("utf-8", "surrogatepass"), "text/plain"))
    for bounds in (None, Bounds(max_depth=1), Bounds(max_fields=25), Bounds(max_depth=2, max_fields=60)):
        assert_same(exs, bounds)


@needs_c
def test_string_entry_point_arguments():
    """Decoder._string's keyword arguments and default keypath/siblings."""
    for kw in ({}, {"keypath": "$.x"}, {"siblings": frozenset({"a"})}, {"keypath": None, "siblings": frozenset()}):
        for key, nkey in (("user[phone]", "phone"), ("k", "k"), ("", ""), ("K-ey", "key")):
            rows = []
            for d in _decoders():
                d._out = []
                d._string("a plain value", _Ctx("response", ("url",), 1), "loc", key, nkey, **kw)
                rows.append(_rows(d._out))
            assert rows[0] == rows[1]
    d = Decoder()
    d._out = []
    with pytest.raises(TypeError):
        d._string("x" * 20, _Ctx("request", (), 0), "loc", "k", "k", bogus=1)


@needs_c
def test_count_controls_and_raw_text():
    rng = random.Random(3)
    pool = [chr(c) for c in [*range(0x90), 0xFFFD, 0xFFFE, 0xD800, 0x10FFFF, 0x1F600, 0x2028, 0xA0]]
    for _ in range(5000):
        t = "".join(rng.choice(pool) for _ in range(rng.randrange(40)))
        assert C.count_controls(t) == decode._count_controls_py(t)
    a = C.raw_text("request", "request.body", "text")
    b = RawText("request", "request.body", "text")
    assert type(a) is RawText and a == b and hash(a) == hash(b) and a.covers == ()
    assert C.raw_text("s", "l", "t", ("x",)) == RawText("s", "l", "t", ("x",))
