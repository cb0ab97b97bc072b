"""Canaries: every variant the contract lists is found, and says which it was."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import quote, quote_plus

import pytest

from privaudit.detect import Detector, canaries_from_mapping, load_canaries, load_rules
from privaudit.detect.ruletool import case_exchange
from privaudit.errors import RuleError
from privaudit.model import Exchange, Message

EMAIL = "Tester.One@Example.org"
LOWER = EMAIL.lower()
PHONE = "+82 10-1234-5678"
CANARIES = canaries_from_mapping(
    {
        "email": EMAIL,
        "phone": PHONE,
        "name": ["Hong Gildong", "홍길동"],
        "advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
        "device_id": ["f0e1d2c3b4a59687", "356938035643809"],
        "location": {"lat": 37.5665, "lon": 126.9780},
        "chat_content": "the tester's exact prompt text",
    }
)
RULES = load_rules()
NO_RULES = RULES.subset([])


def scan(doc, rules=NO_RULES, canaries=CANARIES, **kw):
    return Detector(rules, canaries, **kw).scan(case_exchange({"json": doc}))


def canary_hits(doc) -> dict[str, tuple[str, str | None]]:
    """category -> (location, encoding) of canary findings."""
    return {f.category: (f.location, f.encoding) for f in scan(doc) if f.method == "canary"}


def h(algo: str, s: str) -> bytes:
    return hashlib.new(algo, s.encode()).digest()


def b64(raw: bytes | str, urlsafe=False, pad=True) -> str:
    raw = raw.encode() if isinstance(raw, str) else raw
    t = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return t if pad else t.rstrip("=")


# (variant, category, text as sent, expected encoding)
VARIANTS = [
    ("plain", "email", EMAIL, None),
    ("lower", "email", LOWER, None),
    ("upper", "email", EMAIL.upper(), None),
    ("in text", "email", f"mail me at {LOWER} today", None),
    ("quote", "email", quote(EMAIL, safe=""), "url"),
    ("quote_plus", "name", quote_plus("Hong Gildong"), "url"),
    ("quote utf-8", "name", quote("홍길동"), "url"),
    ("quote lower hex", "name", quote("홍길동").lower(), "url"),
    ("base64 std", "email", b64(EMAIL), "base64"),
    ("base64 unpadded", "email", b64(EMAIL, pad=False), "base64"),
    ("base64 urlsafe", "name", b64("홍길동", urlsafe=True), "base64"),
    ("base64 urlsafe unpadded", "chat_content", b64("the tester's exact prompt text", True, False), "base64"),
    ("hex lower", "email", EMAIL.encode().hex(), "hex"),
    ("hex upper", "device_id", "356938035643809".encode().hex().upper(), "hex"),
    ("md5", "email", h("md5", LOWER).hex(), "md5"),
    ("md5 upper", "email", h("md5", LOWER).hex().upper(), "md5"),
    ("md5 of original case", "email", h("md5", EMAIL).hex(), "md5"),
    ("sha1", "device_id", h("sha1", "f0e1d2c3b4a59687").hex(), "sha1"),
    ("sha256", "advertising_id", h("sha256", "38400000-8cf0-11bd-b23e-10b96e40000d").hex(), "sha256"),
    ("sha256 upper", "advertising_id", h("sha256", "38400000-8cf0-11bd-b23e-10b96e40000d").hex().upper(), "sha256"),
    ("advertising id upper", "advertising_id", "38400000-8CF0-11BD-B23E-10B96E40000D", None),
    ("md5 base64", "email", b64(h("md5", LOWER)), "md5+base64"),
    ("sha1 base64 unpadded", "email", b64(h("sha1", LOWER), pad=False), "sha1+base64"),
    ("sha256 base64 urlsafe", "phone", b64(h("sha256", "+821012345678"), urlsafe=True), "sha256+base64"),
    ("phone E.164", "phone", "+821012345678", None),
    ("phone E.164 without +", "phone", "821012345678", None),
    ("phone international", "phone", "+82 10-1234-5678", None),
    ("phone international dashes", "phone", "+82-10-1234-5678", None),
    ("phone national", "phone", "010-1234-5678", None),
    ("phone national spaces", "phone", "010 1234 5678", None),
    ("phone digits only", "phone", "01012345678", None),
    ("phone md5 of E.164", "phone", h("md5", "+821012345678").hex(), "md5"),
    ("phone sha256 of digits", "phone", h("sha256", "01012345678").hex(), "sha256"),
    ("name plain", "name", "Hong Gildong", None),
    ("name reversed", "name", "Gildong Hong", None),
    ("name hangul in text", "name", "저는 홍길동님 입니다", None),
    ("device id", "device_id", "356938035643809", None),
    ("chat content", "chat_content", "the tester's exact prompt text", None),
    ("lat,lon trunc 3", "location", "37.566,126.978", None),
    ("lat,lon round 3", "location", "37.567,126.978", None),
    ("lon,lat 4", "location", "126.9780,37.5665", None),
    ("lat;lon 5", "location", "37.56650;126.97800", None),
    ("lat, lon 6", "location", "37.566500, 126.978000", None),
    ("geo uri", "location", "geo:37.5665,126.978", None),
]


@pytest.mark.parametrize(("variant", "category", "text", "encoding"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_variant_found(variant, category, text, encoding):
    hits = canary_hits({"v": text})
    assert hits.get(category) == ("request.body $.v", encoding)


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("urlsafe", [False, True])
@pytest.mark.parametrize(("category", "value"), [("email", EMAIL), ("name", "홍길동"), ("device_id", "f0e1d2c3b4a59687")])
def test_found_inside_a_larger_base64_blob(offset, urlsafe, category, value):
    blob = b"\xff\xfe\xfd\xfc\xfb\xfa"[:offset] + b"\x00\x9f" + value.encode() + b"\x80\xfe\xff\x01" * 3
    hits = canary_hits({"blob": b64(blob, urlsafe=urlsafe, pad=False)})
    assert hits.get(category) == ("request.body $.blob", "base64")


@pytest.mark.parametrize(
    "doc",
    [
        {"lat": 37.566, "lng": 126.978},
        {"lat": 37.567, "lng": 126.978},
        {"y": 37.5665, "x": 126.978},
        {"pos": {"longitude": 126.97812, "latitude": 37.56649}},
        {"a": {"lat": "37.566512"}, "b": {"lon": "126.978"}},
    ],
)
def test_coordinates_as_separate_numbers(doc):
    assert canary_hits(doc).get("location", ("",))[0].startswith("request.body $.")


@pytest.mark.parametrize(
    "doc",
    [
        {"lat": 37.57, "lng": 126.98},  # 2 decimals: a city, not the tester
        {"lat": 37.5705, "lng": 126.978},  # 4 m off in lon, 450 m off in lat
        {"lat": 37.5665},  # no longitude
        {"v": "37.56,126.97"},
        {"v": "137.5665,126.9780"},
    ],
)
def test_coordinate_near_misses(doc):
    assert "location" not in canary_hits(doc)


@pytest.mark.parametrize(
    "text",
    [
        "1356938035643809",  # the IMEI inside a longer number
        "3569380356438091",
        "f0e1d2c3b4a59687aa",  # the Android ID inside a longer hex string
        "x" + h("md5", LOWER).hex(),
        "Hong Gildongs",
        "tester.one@example.organization",
        "+8210123456789",
    ],
)
def test_glued_matches_are_not_canaries(text):
    assert canary_hits({"v": text}) == {}


def test_one_finding_per_location_and_raw_pass_does_not_duplicate():
    e = case_exchange({"json": {"e": LOWER, "f": {"g": LOWER}}, "url": f"https://a.example.com/x?m={quote(LOWER)}"})
    fs = Detector(NO_RULES, CANARIES).scan(e)
    assert sorted(f.location for f in fs) == ["request.body $.e", "request.body $.f.g", "request.query m"]
    assert {(f.rule, f.method, f.side) for f in fs} == {("canary.email", "canary", "request")}


def test_raw_pass_finds_what_decoding_cannot():
    body = b"\x08\x01\x12" + b64(b"\xfe\xff" + LOWER.encode() + b"\x81").encode()[:-3] + b"\x00\xff"
    e = Exchange(index=3, kind="http", host="a.example.com", scheme="https", url="https://a.example.com/",
                 request=Message(headers=(), body=body, content_type="application/x-protobuf"), tls=True)
    fs = Detector(NO_RULES, CANARIES).scan(e)
    assert [(f.category, f.encoding) for f in fs] == [("email", "base64")]


def test_canary_beats_rule_at_same_location_and_raises_severity():
    fs = scan({"phone": "010-1234-5678"}, rules=RULES)
    assert [(f.rule, f.method, f.severity) for f in fs] == [("canary.phone", "canary", "critical")]
    other = scan({"phone": "010-9876-5432"}, rules=RULES)
    assert [(f.rule, f.method, f.severity) for f in other] == [("identity.phone_by_key", "key", "high")]


def test_many_variants_one_automaton():
    assert CANARIES.variant_count > 300
    assert len(CANARIES) == 9


def test_load_canary_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text('email: tester.one@example.org\nphone: "+82 10-1234-5678"\nname: ["Hong Gildong", "홍길동"]\n'
                 "device_id: 356938035643809\nlocation: {lat: 37.5665, lon: 126.9780}\n", encoding="utf-8")
    c = load_canaries(p)
    assert [(x.category, x.value, x.line) for x in c.canaries] == [
        ("email", "tester.one@example.org", 1), ("phone", "+82 10-1234-5678", 2), ("name", "Hong Gildong", 3),
        ("name", "홍길동", 3), ("device_id", "356938035643809", 4), ("location", "37.5665,126.978", 5),
    ]


BAD = [
    ("yaml", "email: [a@b.org\nphone: x\n", ":2:6:", "not valid YAML"),
    ("category", "email: a@example.org\nfavourite_colour: blue\n", ":2", "unknown category 'favourite_colour'"),
    ("email", "email:\n  - a@example.org\n  - not-an-email\n", ":3", "not an e-mail address"),
    ("phone", 'phone: "12"\n', ":1", "too short"),
    ("phone invalid", 'phone: "+82 00-0000-0000"\n', ":1", "not a valid phone number"),
    ("location", "location: {lat: 37.5}\n", ":1", "{lat: <number>, lon: <number>}"),
    ("location range", "location: {lat: 137.5, lon: 1}\n", ":1", "out of range"),
    ("type", "name: {first: Hong}\n", ":1", "must be a string"),
    ("not mapping", "- a@example.org\n", ":1", "must be a mapping"),
]


@pytest.mark.parametrize(("name", "text", "where", "needle"), BAD, ids=[b[0] for b in BAD])
def test_bad_canary_file(tmp_path, name, text, where, needle):
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as ei:
        load_canaries(p)
    msg = str(ei.value)
    assert f"{p}{where}" in msg and needle in msg and "a correct canary file looks like" in msg


def test_missing_canary_file(tmp_path):
    with pytest.raises(RuleError, match="cannot read"):
        load_canaries(tmp_path / "nope.yaml")


def test_empty_canaries_change_nothing():
    doc = {"phone": "010-1234-5678"}
    assert scan(doc, rules=RULES, canaries=canaries_from_mapping({})) == scan(doc, rules=RULES, canaries=None)
