"""Decoding: every layer, with its location and encoding chain; the bounds."""

from __future__ import annotations

import base64
import gzip
import json
import zlib

import pytest

from privaudit.detect.decode import Bounds, Decoder, normalize_key
from privaudit.model import Exchange, Message, WsMessage


def ex(body: bytes = b"", ctype: str = "", url: str = "https://a.example.com/v1/x", headers=(), ws=(), response=None) -> Exchange:
    return Exchange(
        index=0, kind="http", host="a.example.com", scheme="https", method="POST", url=url,
        request=Message(headers=tuple(headers), body=body, content_type=ctype), response=response,
        websocket=tuple(ws), tls=True,
    )


def fields(e: Exchange, **kw) -> dict[str, tuple[str | None, str]]:
    """location -> (encoding, value) of the deepest decoding at each location."""
    out: dict[str, tuple[str | None, str]] = {}
    for f in Decoder().exchange(e, **kw)[0]:
        out[f.location] = (f.encoding, f.value)
    return out


def b64(s: str | bytes, urlsafe=False, pad=True) -> str:
    raw = s.encode() if isinstance(s, str) else s
    t = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return t if pad else t.rstrip("=")


INNER = json.dumps({"openudid": "6e3f0b8c9a2d4e71", "n": 1})
JWT = f"{b64(json.dumps({'alg': 'HS256'}), True, False)}.{b64(json.dumps({'sub': 'u-1234', 'phone': '01012345678'}), True, False)}.c2lnbmF0dXJlc2lnbmF0dXJl"
BOUNDARY = "----b0undary"
MULTIPART = (
    f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n"
    f"{json.dumps({'x': 'hello', 'y': {'z': 'deep'}})}\r\n"
    f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"phone\"\r\n\r\n01012345678\r\n"
    f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    "\x00\x01\x02zzzz-printable-run-zzzz\x00\r\n"
    f"--{BOUNDARY}--\r\n"
).encode("latin-1")

MULTIPART_AUDIO = (
    f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"note.m4a\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    "\x00\x00\x00\x1cftypM4A \x00\r\n"
    f"--{BOUNDARY}--\r\n"
).encode("latin-1")
# field 1 = {field 3: "356938035643809" (an IMEI), field 4: 7}, field 2 = "SM-S918N"
_PB_INNER = b"\x1a\x0f356938035643809\x20\x07"
PB_NESTED = b"\x0a" + bytes([len(_PB_INNER)]) + _PB_INNER + b"\x12\x08SM-S918N"

# (name, exchange, location, encoding, value)
PROVENANCE = [
    ("path", ex(url="https://a.example.com/u/010-1234-5678/p"), "request.path", None, "/u/010-1234-5678/p"),
    ("query", ex(url="https://a.example.com/x?device_id=abc123&b=2"), "request.query device_id", None, "abc123"),
    ("query nested url", ex(url="https://a.example.com/x?e=a%2540b.org"), "request.query e", "url", "a@b.org"),
    ("query json", ex(url="https://a.example.com/x?d=%7B%22k%22%3A%22v%20w%22%7D"), "request.query d $.k", "json", "v w"),
    ("query base64 json", ex(url=f"https://a.example.com/x?d={b64(INNER, True, False)}"), "request.query d $.openudid", "base64+json", "6e3f0b8c9a2d4e71"),
    ("header", ex(headers=[("User-Agent", "okhttp/4.12.0")]), "request.header User-Agent", None, "okhttp/4.12.0"),
    ("cookie", ex(headers=[("Cookie", "sid=s3cr3t; theme=dark")]), "request.cookie sid", None, "s3cr3t"),
    ("cookie base64", ex(headers=[("Cookie", f"u={b64('hello world, how are you')}")]), "request.cookie u", "base64", "hello world, how are you"),
    ("json", ex(json.dumps({"header": {"openudid": "x1"}}).encode(), "application/json"), "request.body $.header.openudid", None, "x1"),
    ("json odd key", ex(json.dumps({"a b": {"c.d": 5}}).encode(), "application/json"), 'request.body $["a b"]["c.d"]', None, "5"),
    ("json array", ex(json.dumps({"m": [{"content": "hi there"}]}).encode(), "application/json"), "request.body $.m[0].content", None, "hi there"),
    ("json sniffed", ex(json.dumps({"k": "v"}).encode(), "text/plain"), "request.body $.k", None, "v"),
    ("json in string", ex(json.dumps({"data": INNER}).encode(), "application/json"), "request.body $.data $.openudid", "json", "6e3f0b8c9a2d4e71"),
    ("base64 json in json", ex(json.dumps({"data": b64(INNER)}).encode(), "application/json"), "request.body $.data $.openudid", "base64+json", "6e3f0b8c9a2d4e71"),
    ("base64url unpadded", ex(json.dumps({"data": b64("ab?c>d~ text here!", True, False)}).encode(), "application/json"), "request.body $.data", "base64", "ab?c>d~ text here!"),
    ("hex", ex(json.dumps({"h": "hello world hex".encode().hex()}).encode(), "application/json"), "request.body $.h", "hex", "hello world hex"),
    ("jwt", ex(json.dumps({"t": JWT}).encode(), "application/json"), "request.body $.t $.phone", "jwt", "01012345678"),
    ("gzip field", ex(json.dumps({"z": base64.b64encode(gzip.compress(INNER.encode())).decode()}).encode(), "application/json"), "request.body $.z $.openudid", "base64+gzip", "6e3f0b8c9a2d4e71"),
    ("gzip body", ex(gzip.compress(INNER.encode()), "application/octet-stream"), "request.body $.openudid", "gzip", "6e3f0b8c9a2d4e71"),
    ("deflate body", ex(zlib.compress(INNER.encode()), ""), "request.body $.openudid", "deflate", "6e3f0b8c9a2d4e71"),
    ("form", ex(b"phone=01012345678&x=1", "application/x-www-form-urlencoded"), "request.body form[phone]", None, "01012345678"),
    ("form sniffed", ex(b"a=1&phone=010", ""), "request.body form[phone]", None, "010"),
    ("form in value", ex(json.dumps({"q": "a=1&imei=356938035643809"}).encode(), "application/json"), "request.body $.q form[imei]", "form", "356938035643809"),
    ("ndjson", ex(b'{"a": 1}\n{"event": "open", "did": "d-1"}\n', "application/x-ndjson"), "request.body ndjson[1] $.did", None, "d-1"),
    ("multipart json", ex(MULTIPART, f"multipart/form-data; boundary={BOUNDARY}"), "request.body multipart[meta] $.y.z", None, "deep"),
    ("multipart text", ex(MULTIPART, f"multipart/form-data; boundary={BOUNDARY}"), "request.body multipart[phone]", None, "01012345678"),
    ("multipart binary", ex(MULTIPART, f"multipart/form-data; boundary={BOUNDARY}"), "request.body multipart[file] strings[0]", None, "zzzz-printable-run-zzzz"),
    ("protobuf text", ex(b"\x08\x96\x01\x12\x0ftester@mail.org\x1a\x02ok", "application/x-protobuf"), "request.body protobuf 2", None, "tester@mail.org"),
    ("protobuf varint", ex(b"\x08\x96\x01\x12\x0ftester@mail.org", "application/x-protobuf"), "request.body protobuf 1", None, "150"),
    ("protobuf nested", ex(PB_NESTED, "application/x-protobuf"), "request.body protobuf 1.3", None, "356938035643809"),
    ("protobuf untyped", ex(PB_NESTED, "application/octet-stream"), "request.body protobuf 2", None, "SM-S918N"),
    ("grpc-web frame", ex(b"\x00" + len(PB_NESTED).to_bytes(4, "big") + PB_NESTED + b"\x80\x00\x00\x00\x0fgrpc-status:0\r\n", "application/grpc-web+proto"), "request.body grpc[0] protobuf 1.3", None, "356938035643809"),
    ("grpc-web-text", ex(base64.b64encode(b"\x00" + len(PB_NESTED).to_bytes(4, "big") + PB_NESTED), "application/grpc-web-text"), "request.body grpc[0] protobuf 2", None, "SM-S918N"),
    ("binary strings", ex(b"\x00\x01\xff\xfe garbage \x00tester@mail.org\x07\x07", "application/octet-stream"), "request.body strings[1]", None, "tester@mail.org"),
    ("zstd body", ex(__import__("zstandard").ZstdCompressor().compress(json.dumps({"imei": "356938035643809"}).encode()), "application/octet-stream"), "request.body $.imei", "zstd", "356938035643809"),
    ("sse body", ex(b"event: msg\ndata: {\"text\": \"hi there\"}\n\ndata: [DONE]\n", "text/event-stream"), "request.body sse[0] $.text", None, "hi there"),
    ("cp949 form", ex(b"P_UNAME=%C8%AB%B1%E6%B5%BF&x=1", "application/x-www-form-urlencoded"), "request.body form[P_UNAME]", None, "\ud64d\uae38\ub3d9"),
    ("form value json", ex(b"data=%7B%22he%22%3A%7B%22m%22%3A%22SM-S918N%22%7D%7D&v=1", "application/x-www-form-urlencoded"), "request.body form[data] $.he.m", "json", "SM-S918N"),
    ("multipart attachment", ex(MULTIPART_AUDIO, f"multipart/form-data; boundary={BOUNDARY}"), "request.body multipart[file] content-type", None, "audio/mp4"),
    ("text body", ex("안녕하세요 반갑습니다".encode(), "text/plain"), "request.body", None, "안녕하세요 반갑습니다"),
    ("websocket", ex(ws=[WsMessage(True, True, b'{"content": "hi"}')]), "websocket[0] $.content", None, "hi"),
    ("socket.io frame", ex(ws=[WsMessage(True, True, '42["message", {"content": "안녕"}]'.encode())]), "websocket[0] $[1].content", None, "안녕"),
    ("websocket gzip", ex(ws=[WsMessage(False, False, b"x"), WsMessage(True, False, gzip.compress(b'{"did": "d-9"}'))]), "websocket[1] $.did", "gzip", "d-9"),
]


@pytest.mark.parametrize(("name", "exchange", "location", "encoding", "value"), PROVENANCE, ids=[p[0] for p in PROVENANCE])
def test_provenance(name, exchange, location, encoding, value):
    got = fields(exchange)
    assert location in got, sorted(got)
    assert got[location] == (encoding, value)


def test_form_and_query_keys_know_their_siblings_and_parents():
    e = ex(b"card[name]=Jane+Park&card[number]=4242", "application/x-www-form-urlencoded", url="https://a.example.com/x?lang=ko&model=SM-S918N")
    fs = {f.location: f for f in Decoder().exchange(e)[0]}
    assert fs["request.body form[card[name]]"].keypath == "$.card.name"
    assert fs["request.query lang"].siblings == frozenset({"lang", "model"})


def test_system_prompts_have_their_own_path():
    body = json.dumps({"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hello you"}]}).encode()
    fs = {f.location: f for f in Decoder().exchange(ex(body, "application/json"))[0]}
    assert fs["request.body $.messages[0].content"].keypath == "$.messages[system].content"
    assert fs["request.body $.messages[1].content"].keypath == "$.messages[].content"


def test_protobuf_field_budget_is_bounded():
    from privaudit.detect.decode import Bounds
    d = Decoder(Bounds(max_protobuf_fields=3))
    fs = d.exchange(ex(b"\x08\x01" * 10, "application/x-protobuf"))[0]
    assert not any("protobuf" in f.location for f in fs)
    assert d.stats["bounds_hit"]["protobuf_fields"] == 1


def test_field_keys_siblings_and_keypath():
    e = ex(json.dumps({"loc": {"Lat": 37.5, "lng": 126.9}, "messages": [{"content": "yo"}]}).encode(), "application/json")
    fs = {f.location: f for f in Decoder().exchange(e)[0]}
    lat = fs["request.body $.loc.Lat"]
    assert (lat.key, lat.nkey, lat.keypath, lat.siblings) == ("Lat", "lat", "$.loc.lat", frozenset({"lat", "lng"}))
    assert fs["request.body $.messages[0].content"].keypath == "$.messages[].content"
    lst = fs["request.body $.messages"]
    assert lst.items == ({"content": "yo"},)


def test_websocket_server_messages_and_responses_only_on_request():
    resp = Message(headers=(("Content-Type", "application/json"),), body=b'{"phone": "01012345678"}', content_type="application/json")
    e = ex(ws=[WsMessage(False, True, b'{"a": "server"}')], response=resp)
    assert not [loc for loc in fields(e) if loc.startswith(("websocket", "response"))]
    both = fields(e, responses=True)
    assert both["websocket[0] $.a"] == (None, "server")
    assert both["response.body $.phone"] == (None, "01012345678")


def test_raw_texts_cover_url_bodies_and_messages():
    e = ex(b'{"a": 1}', "application/json", url="https://a.example.com/x?q=1", ws=[WsMessage(True, True, b"hello")])
    raws = Decoder().exchange(e)[1]
    assert [(r.location, r.text) for r in raws] == [
        ("request.url", "https://a.example.com/x?q=1"), ("request.body", '{"a": 1}'), ("websocket[0]", "hello"),
    ]


@pytest.mark.parametrize(
    ("key", "header", "want"),
    [
        ("deviceId", False, "deviceid"), ("device_id", False, "deviceid"), ("Device-ID", False, "deviceid"),
        ("X-Device-Id", True, "deviceid"), ("X-Device-Id", False, "xdeviceid"), ("user[phone]", False, "phone"),
        ("ids[]", False, "ids"), ("手机号", False, "手机号"), ("이름", False, "이름"),
    ],
)
def test_normalize_key(key, header, want):
    assert normalize_key(key, header) == want


def _nest(depth: int) -> str:
    v = json.dumps({"leaf": "bottom value"})
    for _ in range(depth):
        v = b64(v)
    return v


def test_depth_bound_is_counted():
    d = Decoder(Bounds(max_depth=3))
    fs, _ = d.exchange(ex(json.dumps({"x": _nest(5)}).encode(), "application/json"))
    assert d.stats["bounds_hit"]["depth"] == 1
    assert all(f.value != "bottom value" for f in fs)
    d2 = Decoder(Bounds(max_depth=6))
    fs2, _ = d2.exchange(ex(json.dumps({"x": _nest(5)}).encode(), "application/json"))
    assert any(f.value == "bottom value" and f.encoding == "base64+base64+base64+base64+base64+json" for f in fs2)
    assert not d2.stats["bounds_hit"]


def test_field_bound_is_counted():
    d = Decoder(Bounds(max_fields=10))
    fs, _ = d.exchange(ex(json.dumps({f"k{i}": i for i in range(100)}).encode(), "application/json"))
    assert len(fs) == 10 and d.stats["bounds_hit"]["fields"] == 1


def test_body_and_inflate_bounds_are_counted():
    d = Decoder(Bounds(max_body_bytes=100))
    d.exchange(ex(b"a" * 500, "text/plain"))
    assert d.stats["bounds_hit"] == {"body_bytes": 1}
    d = Decoder(Bounds(max_inflate_bytes=1000))
    d.exchange(ex(gzip.compress(b'{"a": "' + b"x" * 5000 + b'"}'), ""))
    assert d.stats["bounds_hit"] == {"inflate_bytes": 1}


def test_garbage_does_not_crash_and_is_counted():
    d = Decoder()
    fs, _ = d.exchange(ex(bytes(range(256)) * 4, "application/octet-stream"))
    assert d.stats["undecodable_bodies"] == 1
    d.exchange(ex(b"\x1f\x8bnot gzip at all", ""))
    d.exchange(ex(b'{"a": ', "application/json"))
    d.exchange(ex(b"--x\r\nbroken", "multipart/form-data; boundary=x"))


def test_random_ids_are_not_decoded_as_base64_or_hex():
    e = ex(json.dumps({"trace": "4bf92f3577b34da6a3ce929d0e0e4736", "sign": "Zm9vYmFyYmF6cXV4eHl6MTIz8", "id": "a1b2c3d4e5f60718293a"}).encode(), "application/json")
    assert all(f.encoding is None for f in Decoder().exchange(e)[0])


def test_json_nesting_bound():
    deep = "[" * 200 + '"x"' + "]" * 200
    d = Decoder()
    d.exchange(ex(deep.encode(), "application/json"))
    assert d.stats["bounds_hit"]["nesting"] == 1
    very_deep = "[" * 100_000 + "]" * 100_000
    d.exchange(ex(very_deep.encode(), "application/json"))
    assert d.stats["bounds_hit"]["nesting"] >= 2


def test_value_wrapper_objects_keep_the_outer_key():
    e = ex(json.dumps({"user_properties": {"device_model": {"value": "NOH-AN00", "set_timestamp_micros": 1}}}).encode(), "application/json")
    fs = {f.location: f for f in Decoder().exchange(e)[0]}
    f = fs["request.body $.user_properties.device_model.value"]
    assert (f.key, f.nkey, f.value) == ("device_model", "devicemodel", "NOH-AN00")
    assert fs["request.body $.user_properties.device_model.set_timestamp_micros"].nkey == "settimestampmicros"


@pytest.mark.parametrize(("frame", "location", "key", "value"), [
    ('42["send_message","hello there friend"]', "websocket[0] $[1]", "send_message", "hello there friend"),
    ('42["chat",{"text":"hi you"}]', "websocket[0] $[1].text", "text", "hi you"),
    ('SEND\ndestination:/app/chat.send\ncontent-type:application/json\n\n{"content":"내일 날씨 어때"}\x00', "websocket[0] stomp $.content", "content", "내일 날씨 어때"),
])
def test_websocket_protocol_frames(frame, location, key, value):
    e = ex(ws=(WsMessage(True, True, frame.encode()),))
    fs = {f.location: f for f in Decoder().exchange(e)[0]}
    assert location in fs, sorted(fs)
    assert (fs[location].key, fs[location].value) == (key, value)


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_a_role_that_is_not_text_does_not_end_the_decoding(native):
    """{"role": [...]} is unhashable: the walk must not raise on it (it did,
    and the analysis dropped the flow with a warning)."""
    msgs = [{"role": ["system"], "content": "a"}, {"role": {"x": 1}, "Role": "system", "content": "b"},
            {"role": "system", "content": "c"}, {"role": "user", "content": "d"}]
    e = ex(json.dumps({"messages": msgs}).encode(), "application/json")
    fs = {f.location: f for f in Decoder(native=native).exchange(e)[0]}
    assert fs["request.body $.messages[0].content"].keypath == "$.messages[].content"
    assert fs["request.body $.messages[1].content"].keypath == "$.messages[].content"
    assert fs["request.body $.messages[2].content"].keypath == "$.messages[system].content"
    assert fs["request.body $.messages[3].content"].keypath == "$.messages[].content"


def test_list_text_is_json_dumps():
    from privaudit.detect.decode import _JSON_TEXT

    for v in ([1, 2.5, float("nan"), float("inf"), True, None, "\ud800é\"\\\n"], {"a": [{}, []], "b": -0.0}, "s", 10**30, []):
        assert _JSON_TEXT(v) == json.dumps(v, ensure_ascii=False)
