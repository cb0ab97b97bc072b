"""The detector: findings, dedupe, severity, redaction, and what must not fire."""

from __future__ import annotations

import json

import pytest

from privaudit.detect import Detector, canaries_from_mapping, load_rules, redact
from privaudit.detect.ruletool import case_exchange
from privaudit.model import Exchange, Finding, Message, WsMessage

RULES = load_rules()


def scan(case, **kw) -> list[Finding]:
    return Detector(RULES, **kw).scan(case_exchange(case))


def cats(case) -> set[tuple[str, str]]:
    return {(f.category, f.location) for f in scan(case)}


# Positives and their near-miss negatives side by side: (case, category or None).
TABLE = [
    ({"key": "android_id", "value": "f0e1d2c3b4a59687"}, "device_id"),
    ({"key": "span_id", "value": "f0e1d2c3b4a59687"}, None),
    ({"key": "X-Request-Id", "value": "a1b2c3d4-e5f6-4711-8899-aabbccddeeff", "where": "header"}, None),
    ({"key": "traceparent", "value": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "where": "header"}, None),
    ({"key": "uuid", "value": "a1b2c3d4-e5f6-4711-8899-aabbccddeeff"}, None),
    ({"key": "idfa", "value": "a1b2c3d4-e5f6-4711-8899-aabbccddeeff"}, "advertising_id"),
    ({"key": "idfa", "value": "00000000-0000-0000-0000-000000000000"}, None),
    ({"key": "asset", "value": "/static/js/main.3f2a9c1b7d4e5f60.chunk.js"}, None),
    ({"key": "icon", "value": "icon_4a7d1ed414474e4033ac29ccb8653d9b@2x.png"}, None),
    ({"key": "ts", "value": 1732790000123}, None),
    ({"key": "ts", "value": "1732790000"}, None),
    ({"key": "created", "value": "2024-11-28T10:26:30.123Z"}, None),
    ({"key": "build", "value": "4111111111111112"}, None),
    ({"key": "card", "value": "4111 1111 1111 1111"}, "payment_card"),
    ({"key": "app_version", "value": "10.0.19045.2965"}, None),
    ({"key": "sdk_version", "value": "3.4.5-beta.2+20241128"}, None),
    ({"key": "User-Agent", "value": "Mozilla/5.0 (Linux; Android 14; SM-S918N) AppleWebKit/537.36", "where": "header"}, None),
    ({"key": "model", "value": "SM-S918N"}, "device_info"),
    ({"key": "order_id", "value": "1734567890123456789"}, None),
    ({"key": "sign", "value": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}, None),
    ({"key": "imei", "value": "356938035643809"}, "device_id"),
    ({"key": "imei", "value": "356938035643808"}, None),
    ({"key": "note", "value": "call me on 010-1234-5678"}, "phone"),
    ({"key": "count", "value": "01012345678901"}, None),
    ({"key": "message", "value": "What's the weather in Seoul?", "url": "https://x.example.ai/v1/chat"}, "chat_content"),
    ({"key": "message", "value": "What's the weather in Seoul?", "url": "https://x.example.com/v1/log"}, None),
    ({"json": {"lat": 37.5665, "lon": 126.978}}, "location"),
    ({"json": {"lat": 37.5665, "zoom": 12.125}}, None),
    ({"key": "jumin", "value": "9710131019902"}, "national_id"),
    ({"key": "seq", "value": "9710131019902"}, None),
    # false-alarm patterns seen in real SDK traffic
    ({"key": "dsn", "value": "https://8f14e45fceea167a5a36dedd4bea2543@o12345.ingest.sentry.io/4504"}, None),
    ({"key": "Authorization", "value": "Basic c2VnX3dyaXRlX2tleTo=", "where": "header"}, None),
    ({"key": "api_key", "value": "3f6b1c9e2d4a8b7c0e5f1a2b3c4d5e6f"}, None),
    ({"key": "access_token", "value": "pk.eyJ1IjoibHVtaSIsImEiOiJjbHgifQ.aBcDeFgHiJkLmN", "where": "query"}, None),
    ({"key": "X-CSRF-Token", "value": "Zk3pQ8vN2mR7tY4wL9xB1cD6", "where": "header"}, None),
    ({"key": "lang", "value": "ko", "where": "query"}, None),
    ({"json": {"lang": "ko", "model": "SM-S918N"}}, "device_info"),
    ({"json": {"vendor": "xiaomi", "regId": "abc"}}, None),
    ({"key": "span_id", "value": "7123456789012345674"}, None),
    ({"key": "seq", "value": "13800000123"}, None),
    ({"json": {"messages": [{"role": "system", "content": "You are Lumi, a helpful assistant."}]}, "url": "https://x.example.ai/v1/chat/completions"}, None),
    # misses: general SDK shapes
    ({"json": {"traits": {"name": "Jane Park"}, "type": "identify"}}, "name"),
    ({"key": "P_UNAME", "value": "홍길동", "where": "form"}, "name"),
    ({"json": {"name": "김민지", "gender": "F"}}, "name"),
    ({"json": {"name": "Premium Plan", "price": 9900}}, None),
    ({"json": {"header": {"imei_md5": "e10adc3949ba59abbe56e057f20f883e"}}}, "device_id"),
    ({"json": {"common": {"A2": "356938035643809"}}}, "device_id"),
    ({"key": "regId", "value": "15xMx3pRb4W0rHk9TQmD2sU8yXg7nVz1cL5aF6jE9oK"}, "device_id"),
    ({"json": {"user_data": {"madid": "38400000-8cf0-11bd-b23e-10b96e40000d"}}}, "advertising_id"),
    ({"key": "telco", "value": "SKT", "where": "query"}, "network_info"),
    ({"key": "card_no", "value": "9410123456789010"}, "payment_card"),
    ({"json": {"al": ["com.kakao.talk", "com.nhn.android.search", "com.tencent.mm"]}}, "installed_apps"),
    ({"json": {"ks": [{"t": 0, "dt": 112}, {"t": 180, "dt": 95}, {"t": 342, "dt": 130}]}}, "behavioral"),
    ({"json": {"event": "$AppOnPause"}}, "behavioral"),
    ({"json": {"event": "heartbeat"}}, None),
    ({"body": "\x00\x00\x00\x008\x0a4\xec\x98\xa4\xeb\x8a\x98 \xed\x9a\x8c\xec\x82\xac\xec\x97\x90\xec\x84\x9c \xeb\x84\x88\xeb\xac\xb4 \xed\x9e\x98\xeb\x93\xa4\xec\x97\x88\xec\x96\xb4 \xec\x9c\x84\xeb\xa1\x9c\xed\x95\xb4\xec\xa4\x98\x10\x01", "content_type": "application/grpc-web+proto", "url": "https://x.example.ai/chat.v1.Chat/Send"}, "chat_content"),
    ({"body": "--b0\x0d\x0aContent-Disposition: form-data; name=\x22file\x22; filename=\x22voice.m4a\x22\x0d\x0aContent-Type: audio/mp4\x0d\x0a\x0d\x0a\x00\x00\x00\x1cftypM4A \x00\x01\x0d\x0a--b0\x0d\x0aContent-Disposition: form-data; name=\x22model\x22\x0d\x0a\x0d\x0awhisper-1\x0d\x0a--b0--\x0d\x0a", "content_type": "multipart/form-data; boundary=b0", "url": "https://x.example.ai/v1/audio/transcriptions"}, "chat_content"),
]


@pytest.mark.parametrize(("case", "category"), TABLE, ids=[f"{i}-{c or 'none'}" for i, (_, c) in enumerate(TABLE)])
def test_positive_and_near_miss(case, category):
    got = {c for c, _ in cats(case)}
    assert got == ({category} if category else set())


def test_finding_fields():
    [f] = scan({"json": {"header": {"openudid": "6e3f0b8c9a2d4e71b5c8d064"}}})
    assert f.to_json() == {
        "flow_index": 0, "host": "api.example.com", "side": "request", "category": "device_id",
        "rule": "device.vendor_id", "method": "key", "encoding": None,
        "location": "request.body $.header.openudid", "severity": "medium", "evidence": "6e3f…d064",
    }


JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
       "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")


@pytest.mark.parametrize(
    ("case", "rule"),
    [
        # credentials.password_key (critical) beats credentials.jwt (high)
        ({"key": "password", "value": JWT}, "credentials.password_key"),
        # identity.phone_by_key and identity.phone_kr_national (both high): lower id
        ({"key": "phone", "value": "010-1234-5678"}, "identity.phone_by_key"),
    ],
)
def test_one_finding_per_category_per_location(case, rule):
    fs = scan(case)
    assert [(f.category, f.rule) for f in fs] == [(RULES.by_id[rule].category, rule)]


def test_same_value_at_two_locations_is_two_findings():
    two = scan({"json": {"a": {"imei": "356938035643809"}, "b": {"imei": "356938035643809"}}})
    assert [f.location for f in two] == ["request.body $.a.imei", "request.body $.b.imei"]


def test_severity_raised_for_cleartext():
    e = case_exchange({"key": "imei", "value": "356938035643809", "url": "http://api.example.com/x"})
    e = Exchange(**{**{s: getattr(e, s) for s in e.__slots__}, "tls": False, "scheme": "http"})
    [f] = Detector(RULES).scan(e)
    assert f.severity == "critical"  # device.imei is high; +1 for cleartext


def test_canary_severity_is_base_plus_one():
    can = canaries_from_mapping({"device_id": "f0e1d2c3b4a59687"})
    [f] = scan({"key": "android_id", "value": "f0e1d2c3b4a59687"}, canaries=can)
    assert (f.method, f.rule, f.severity) == ("canary", "canary.device_id", "high")


@pytest.mark.parametrize(
    ("value", "want"),
    [("6e3f0b8c9a2d4e71b5c8d064", "6e3f…d064"), ("356938035643", "35…43"), ("abcdef", "a…f"), ("abcd", "…"), ("", "…")],
)
def test_redact(value, want):
    assert redact(value) == want


def test_evidence_never_holds_the_whole_value_unless_asked():
    secrets = {"password": "hunter2-very-secret", "imei": "356938035643809", "email": "kim@example.org", "phone": "01012345678"}
    for f in scan({"json": secrets}):
        assert not any(v in f.evidence for v in secrets.values())
    shown = scan({"json": secrets}, show_values=True)
    assert {f.evidence for f in shown} >= {"hunter2-very-secret", "356938035643809"}


def test_list_evidence_counts_items():
    [f] = scan({"json": {"installed_apps": ["com.kakao.talk", "com.whatsapp", "org.telegram.messenger"]}})
    assert f.category == "installed_apps" and f.evidence.startswith("[3 items] ")


def test_responses_are_not_scanned_by_rules_and_only_canaries_when_asked():
    resp = Message(headers=(("Content-Type", "application/json"),), body=json.dumps(
        {"phone": "010-1234-5678", "email": "kim@example.org", "token": "k2J9xQv7LmN4pR8sT1wY6zB3"}).encode(), content_type="application/json")
    e = Exchange(index=1, kind="http", host="a.example.com", scheme="https", method="GET", url="https://a.example.com/me",
                 request=Message(headers=(), body=b""), response=resp, tls=True,
                 websocket=(WsMessage(False, True, b'{"content": "server says kim@example.org"}'),))
    token = ("response", "response.body $.token", "credentials.session_token")
    # the phone and e-mail are the server's data; the token issued to the user is a credential
    assert {(f.side, f.location, f.rule) for f in Detector(RULES).scan(e)} == {token}
    assert Detector(RULES, response_credentials=False).scan(e) == []
    assert {(f.side, f.location, f.rule) for f in Detector(RULES, scan_responses=True).scan(e)} == {token}
    can = canaries_from_mapping({"email": "kim@example.org"})
    fs = Detector(RULES, can, scan_responses=True).scan(e)
    assert {(f.side, f.location, f.rule) for f in fs} == {
        ("response", "response.body $.email", "canary.email"), ("response", "websocket[0] $.content", "canary.email"), token,
    }


def test_set_cookie_session_is_a_response_credential():
    resp = Message(headers=(("Set-Cookie", "sessionid=JqTEugnPucbaY7sUMuCzuzee6uMDhqnYNX5I3SEQ; Path=/; HttpOnly"),), body=b"")
    e = Exchange(index=1, kind="http", host="a.example.com", scheme="http", method="POST", url="http://a.example.com/login",
                 request=Message(headers=(), body=b""), response=resp, tls=False)
    [f] = Detector(RULES).scan(e)
    assert (f.side, f.location, f.category, f.severity) == ("response", "response.cookie sessionid", "credentials", "critical")


def test_non_http_flows_and_stats():
    det = Detector(RULES)
    assert det.scan(Exchange(index=0, kind="dns", host="a.example.com")) == []
    det.scan(case_exchange({"key": "imei", "value": "356938035643809"}))
    assert det.stats["exchanges"] == 2 and det.stats["findings"] == 1 and det.stats["fields"] >= 2
    assert det.stats["bounds_hit"] == {} and det.stats["undecodable_bodies"] == 0


def test_encoded_value_and_its_decoding_are_one_finding():
    import base64

    inner = base64.b64encode(json.dumps({"imei": "356938035643809"}).encode()).decode()
    fs = scan({"json": {"data": inner}})
    assert [(f.location, f.encoding, f.rule) for f in fs] == [("request.body $.data $.imei", "base64+json", "device.imei")]


def test_websocket_client_messages_are_request_side():
    e = Exchange(index=2, kind="http", host="chat.example.ai", scheme="wss", url="wss://chat.example.ai/ws/chat", tls=True,
                 websocket=(WsMessage(True, True, json.dumps({"type": "msg", "text": "내 진료 기록 요약해줘"}).encode()),))
    fs = Detector(RULES).scan(e)
    assert [(f.side, f.location, f.category) for f in fs] == [("request", "websocket[0] $.text", "chat_content")]


@pytest.mark.parametrize(
    "value",
    [
        "1" * 20_000,
        "+1 " * 5_000 + "x",
        "a=" + "b&c" * 5_000 + " ",
        "1.234," * 5_000,
        "eyJ" + "a" * 20_000,
        ("a" * 60 + "@") * 300,
        "010-" * 5_000,
        "A" * 30_000 + "=",
    ],
    ids=["digits", "plus", "form", "floats", "jwtish", "at", "dashes", "b64ish"],
)
def test_adversarial_values_stay_fast(value):
    import time

    det = Detector(RULES, canaries_from_mapping({"email": "tester.one@example.org", "phone": "+82 10-1234-5678"}))
    t = time.process_time()
    det.scan(case_exchange({"json": {"v": value, "password": value}}))
    assert time.process_time() - t < 1.0


def test_protobuf_body_fields_are_scanned():
    inner = b"\x1a\x0f356938035643809\x22\x08SM-S918N"
    body = b"\x0a" + bytes([len(inner)]) + inner
    ex = case_exchange({"body": body.decode("latin-1"), "content_type": "application/x-protobuf"})
    got = {(f.category, f.location) for f in Detector(RULES).scan(ex)}
    assert ("device_id", "request.body protobuf 1.3") in got
    assert ("device_info", "request.body protobuf 1.4") in got


@pytest.mark.parametrize("frame", [
    '42["send_message","이번 주말 여행 계획 좀 세워줘"]',
    'SEND\ndestination:/app/chat\n\n{"content":"summarise my medical results please"}\x00',
])
def test_chat_in_websocket_protocol_frames(frame):
    ex = Exchange(index=0, kind="http", host="ws.example.com", scheme="wss", method="GET", url="wss://ws.example.com/socket",
                  request=Message(headers=(), body=b""), tls=True, websocket=(WsMessage(True, True, frame.encode()),))
    assert "chat_content" in {f.category for f in Detector(RULES).scan(ex)}
