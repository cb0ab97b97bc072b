"""The fast road from a flow-file record to an Exchange equals mitmproxy's road."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from mitmproxy.io import tnetstring

from privaudit.source.convert import flow_to_exchange
from privaudit.source import fast
from privaudit.source.fast import _HEADERS, _SPEC, flow_state, flow_state_py, http_exchange, tnet_loads, tnet_loads_py
from privaudit.source.flowfile import decode_record, iter_records

DATA = Path(__file__).parent / "data"
FILES = sorted(DATA.rglob("*.mitm"))


def _records():
    for path in FILES:
        for i, (_, raw) in enumerate(iter_records(path)):
            if "evalset" in str(path) and i % 5:
                continue  # every fifth flow of the big sets is plenty
            yield pytest.param(path, i, raw, id=f"{path.name}#{i}")


def _project(state, spec):
    """What flow_state should keep of a fully parsed state: the keys _SPEC names, nested."""
    out = {}
    for k, v in state.items():
        want = spec.get(k.encode() if isinstance(k, str) else k)
        if want is None:
            continue
        out[k] = _project(v, want) if isinstance(want, dict) and isinstance(v, dict) else v
    return out


@pytest.mark.parametrize("path,i,raw", list(_records()))
def test_fast_road_equals_mitmproxys(path, i, raw):
    full = tnetstring.loads(raw)
    assert tnet_loads(raw) == full
    assert tnet_loads_py(raw) == full
    assert flow_state(raw) == _project(full, _SPEC)
    assert flow_state_py(raw) == _project(full, _SPEC)
    fast = http_exchange(flow_state(raw), i, str(path))
    slow = flow_to_exchange(decode_record(raw), i, source=str(path))
    if fast is not None:  # None: not a current-version HTTP flow, mitmproxy's road is taken
        assert fast == slow


def test_fast_road_is_taken_for_current_http_flows():
    raws = [raw for _, raw in iter_records(DATA / "evalset" / "evalset.mitm")]
    taken = sum(http_exchange(flow_state(r), 0, "x") is not None for r in raws)
    assert taken == len(raws)


@pytest.mark.parametrize(
    "raw",
    [b"5:hello", b"5:hel,", b"3:abc?", b"x:abc,", b"0:~extra", b"4:nope!", b"2:ab#", b"12:1:a,1:b,1:c,}"],
)
def test_malformed_tnetstrings_are_value_errors(raw):
    with pytest.raises(ValueError):
        tnet_loads(raw)
    with pytest.raises(ValueError):
        tnet_loads_py(raw)


@pytest.mark.parametrize("raw", [b"5:hello", b"10:1:a,2:bc,}", b"8:1:a,9:b,}", b"1:a,"])
def test_malformed_flow_records_are_value_errors(raw):
    with pytest.raises(ValueError):
        flow_state(raw)
    with pytest.raises(ValueError):
        flow_state_py(raw)


def test_unusual_keys_and_header_shapes_read_like_a_full_parse():
    """Keys that are not short ASCII strings, and header lists of another shape,
    take the careful path and still give the full parser's values."""
    from mitmproxy.io import tnetstring as T

    state = {
        "type": "http",
        "request": {"headers": [[b"a", b"1"], [b"b", b"2", b"extra"]], "p\u00e4th": "x", "path": b"/"},
        b"bytes-key": 1,
        "server_conn": {"sni": "example.org", "peername": ["1.2.3.4", 443], "cipher": "x"},
    }
    raw = T.dumps(state)
    got = flow_state(raw)
    assert got["request"]["headers"] == [[b"a", b"1"], [b"b", b"2", b"extra"]]
    assert got["request"]["path"] == b"/"
    assert got["server_conn"] == {"sni": "example.org", "peername": ["1.2.3.4", 443]}
    assert got["type"] == "http"


@pytest.mark.parametrize("raw", [b"9:2:id;-5:x,}", b"14:2:id;3:abc,-1:}"])
def test_negative_lengths_are_value_errors_not_loops(raw):
    with pytest.raises(ValueError):
        flow_state(raw)


def _nested_lists(depth: int) -> bytes:
    inner = b"0:]"
    for _ in range(depth):
        inner = str(len(inner)).encode() + b":" + inner + b"]"
    return inner


@pytest.mark.parametrize(
    "body",
    [
        b"4:1:a,]1:x,4:type;4:http;",  # a list as a dict key
        b"9:websocket;" + _nested_lists(5000) + b"4:type;4:http;",  # nesting past the interpreter's stack
    ],
)
def test_hostile_records_are_value_errors_or_damaged_records_never_crashes(body):
    from privaudit.source.flowfile import RecordError, record_to_exchange

    raw = str(len(body)).encode() + b":" + body + b"}"
    for parse in (flow_state, flow_state_py, tnet_loads, tnet_loads_py):
        with pytest.raises(ValueError):
            parse(raw)
    with pytest.raises(RecordError):
        record_to_exchange(raw, 0, "x")


def test_the_c_reader_is_built_in_ci():
    """CI installs privaudit the way users do; the compiled reader must be there
    (elsewhere a missing compiler only makes reading slower)."""
    if os.environ.get("CI") != "true" and fast.READER != "C":
        pytest.skip("the C reader is not built here (no compiler at install?)")
    assert fast.READER == "C"


def _mutations(raw: bytes, rng: random.Random, n: int):
    """Damaged variants of a record: flipped bytes, changed length digits,
    cut tails, spliced pieces, swapped type tags."""
    for _ in range(n):
        b = bytearray(raw)
        kind = rng.randrange(5)
        if kind == 0:
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif kind == 1:
            digits = [i for i, c in enumerate(b) if 48 <= c <= 57]
            for i in rng.sample(digits, min(3, len(digits))):
                b[i] = rng.choice(b"0123456789")
        elif kind == 2:
            del b[rng.randrange(1, len(b)):]
        elif kind == 3:
            i, j = sorted(rng.sample(range(len(b)), 2))
            b[i:i] = b[i:j]
        else:
            tags = [i for i, c in enumerate(b) if c in b",;#^~!]}"]
            for i in rng.sample(tags, min(2, len(tags))):
                b[i] = rng.choice(b",;#^~!]}")
        yield bytes(b)


@pytest.mark.skipif(fast.READER != "C", reason="the C reader is not built here")
def test_c_and_python_readers_agree_on_damaged_records():
    """Hostile input: thousands of damaged records. Both parsers must return
    the same value or both refuse (ValueError); the C one must never crash.
    The C parser reads length prefixes strictly (digits only), where Python's
    int() also takes "+5" or " 5": there it may refuse what Python reads."""
    rng = random.Random(7)
    raws = [raw for _, raw in iter_records(DATA / "evalset" / "evalset.mitm")][:40]
    strict_only = 0
    for raw in raws:
        for bad in _mutations(raw, rng, 150):
            for c_fn, py_fn in ((fast._C.loads, tnet_loads_py), (lambda r: fast._C.pick(r, _SPEC), flow_state_py)):
                try:
                    want = py_fn(bad)
                except ValueError:
                    want = ValueError
                try:
                    got = c_fn(bad)
                except ValueError:
                    got = ValueError
                if got is ValueError and want is not ValueError:
                    strict_only += 1
                    continue
                assert got == want
    assert strict_only < 0.01 * len(raws) * 150 * 2
