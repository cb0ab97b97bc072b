"""Validators: the part of a rule that decides.

A rule's regex is deliberately weak (it finds candidates); a validator named in
the rule decides whether the candidate is the real thing, as Presidio's
recognizers do. A validator takes the candidate text and answers

* ``True``  - valid (checksum passes, number is assigned, ...),
* ``False`` - not valid: no finding,
* ``None``  - "no opinion": the format is right but nothing can be checked
  (Korean RRNs issued after October 2020 have no check digit). The rule then
  fires only if its ``context`` matches.

Checksummed numbers use python-stdnum, phone numbers use phonenumbers; nothing
here is hand-rolled where a kept library does it.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import math
import re
from collections import Counter
from collections.abc import Callable

import phonenumbers
from stdnum import imei as _imei
from stdnum import imsi as _imsi
from stdnum import luhn as _luhn
from stdnum import meid as _meid
from stdnum.cn import ric as _cn_ric
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.kr import rrn as _kr_rrn
from stdnum.us import ssn as _us_ssn

Verdict = bool | None
Validator = Callable[[str], Verdict]

_NON_DIGITS = re.compile(r"\D")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_PLACEHOLDERS = frozenset(
    {
        "", "null", "none", "nil", "undefined", "unknown", "n/a", "na", "-", "0", "false", "true",
        "default", "test", "empty", "placeholder", "xxx", "***", "******", "********",
    }
)


def _digits(text: str) -> str:
    return _NON_DIGITS.sub("", text)


def _stdnum(module) -> Validator:
    def check(text: str) -> Verdict:
        return bool(module.is_valid(text))

    return check


def imei(text: str) -> Verdict:
    d = _digits(text)
    return len(set(d)) > 2 and _imei.is_valid(d)


def luhn(text: str) -> Verdict:
    d = _digits(text)
    return len(d) >= 8 and _luhn.is_valid(d)


def iccid(text: str) -> Verdict:
    # ICCID (ITU-T E.118): 19-20 digits, "89" telecom prefix, Luhn check digit;
    # some devices report a trailing "F" filler nibble.
    d = text.strip().rstrip("Ff")
    return d.isdigit() and 18 <= len(d) <= 20 and d.startswith("89") and _luhn.is_valid(d)


def kr_rrn(text: str) -> Verdict:
    """KR resident registration number (주민등록번호).

    Since October 2020 the last digit is random, not a check digit, so a bad
    checksum is "no opinion", not "invalid" (Presidio's kr_rrn_recognizer does
    the same). The birth date and the century/sex digit are still checked.
    """
    number = _digits(text)
    if len(number) != 13:
        return False
    try:
        _kr_rrn.validate(number)
        return True
    except InvalidChecksum:
        return None
    except ValidationError:
        return False


def cn_ric(text: str) -> Verdict:
    return bool(_cn_ric.is_valid(text.upper()))


def us_ssn(text: str) -> Verdict:
    return bool(_us_ssn.is_valid(re.sub(r"\s+", "-", text.strip())))


# Issuer identification number prefixes of the card schemes that issue to the
# public (ISO/IEC 7812; scheme ranges as published by Visa, Mastercard, Amex,
# Discover, JCB, UnionPay, Diners). A Luhn-valid number outside them is far more
# often a build number or an order id than a card.
_IIN = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}"  # Visa 13/16/19
    r"|5[1-5]\d{14}|2(?:2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"  # Mastercard
    r"|3[47]\d{13}"  # Amex
    r"|6(?:011|5\d\d|4[4-9]\d)\d{12,15}"  # Discover
    r"|35(?:2[89]|[3-8]\d)\d{12,15}"  # JCB
    r"|62\d{14,17}"  # UnionPay
    r"|3(?:0[0-5]|[689]\d)\d{11,16}"  # Diners
    r"|(?:5[06-9]|6\d)\d{10,17})$"  # Maestro
)


def payment_card(text: str) -> Verdict:
    d = _digits(text)
    if not 13 <= len(d) <= 19 or len(set(d)) < 2:
        return False
    return bool(_IIN.match(d)) and _luhn.is_valid(d)


PHONE_REGIONS = ("KR", "CN", "US")
"""Where a number without "+" is tried: the markets privaudit audits first."""


def parse_phone(text: str, regions: tuple[str, ...] = PHONE_REGIONS) -> phonenumbers.PhoneNumber | None:
    """The valid number ``text`` is (E.164 in any region, else national in one
    of ``regions``), or None."""
    candidates = (None,) if text.strip().startswith("+") else regions
    for region in candidates:
        try:
            num = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(num):
            return num
    return None


def _phone_valid(text: str, regions: tuple[str, ...]) -> bool:
    return parse_phone(text, regions) is not None


def phone(text: str) -> Verdict:
    """A valid number in E.164 (any region) or in KR/CN/US national form."""
    if len(_digits(text)) < 7:
        return False
    return _phone_valid(text, PHONE_REGIONS)


def phone_kr(text: str) -> Verdict:
    return _phone_valid(text, ("KR",))


def phone_cn(text: str) -> Verdict:
    t = text.strip()
    if t.startswith("86") and len(_digits(t)) == 13:
        t = "+" + t
    return _phone_valid(t, ("CN",))


_ASSET_SUFFIX = re.compile(r"\.(png|jpe?g|gif|webp|svg|js|css|map|woff2?|ttf|ico)$", re.I)


def email(text: str) -> Verdict:
    # "icon@2x.png" and "name@3x.webp" are asset names, not addresses.
    local, _, domain = text.rpartition("@")
    if not local or "." not in domain or _ASSET_SUFFIX.search(text):
        return False
    tld = domain.rsplit(".", 1)[1]
    return tld.isalpha() and len(tld) >= 2


def not_zero_id(text: str) -> Verdict:
    """An identifier that is not all zeros or one repeated character.

    The all-zero IDFA/GAID is what iOS/Android send when the user limited ad
    tracking: it identifies no one.
    """
    core = re.sub(r"[-:_\s]", "", text)
    return len(set(core.lower())) > 2


def id_like(text: str) -> Verdict:
    """Looks like an opaque identifier: not a placeholder, not a word, varied."""
    t = text.strip()
    if t.lower() in _PLACEHOLDERS or len(t) < 8:
        return False
    if not any(c.isdigit() for c in t):
        return False
    return len(set(t.lower())) >= 5


def mac(text: str) -> Verdict:
    h = re.sub(r"[^0-9a-fA-F]", "", text).lower()
    # 02:00:00:00:00:00 is what Android 6+ returns instead of the real MAC.
    return len(h) == 12 and h not in {"000000000000", "ffffffffffff", "020000000000"}


def ip_address(text: str) -> Verdict:
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return False
    return not (addr.is_unspecified or addr.is_loopback)


def _degrees(text: str, limit: float) -> Verdict:
    try:
        v = float(text)
    except ValueError:
        return False
    return -limit <= v <= limit and v != 0.0


def latitude(text: str) -> Verdict:
    return _degrees(text, 90.0)


def longitude(text: str) -> Verdict:
    return _degrees(text, 180.0)


def lat_lon_pair(text: str) -> Verdict:
    parts = [p for p in re.split(r"[,;\s]+", text.strip()) if p]
    if len(parts) != 2:
        return False
    a, b = parts
    # Either order: (lat, lon) or (lon, lat), as GeoJSON does.
    return bool((latitude(a) and longitude(b)) or (longitude(a) and latitude(b)))


_PLACEHOLDER_WORDS = re.compile(r"(?i)(your|example|placeholder|changeme|replace|dummy|sample|here|insert|xxxx)")


def secret_like(text: str) -> Verdict:
    """Enough length and randomness to be a token, and not a placeholder."""
    t = text.strip()
    if len(t) < 16 or t.lower() in _PLACEHOLDERS or _PLACEHOLDER_WORDS.search(t):
        return False
    if " " in t:
        return False
    counts = Counter(t)
    entropy = -sum(c / len(t) * math.log2(c / len(t)) for c in counts.values())
    return entropy >= 3.0


def not_placeholder(text: str) -> Verdict:
    t = text.strip()
    return bool(t) and t.lower() not in _PLACEHOLDERS and (len(t) < 3 or len(set(t)) > 1)


_WORD = re.compile(r"[^\W\d_]{2,}")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_URLISH = re.compile(r"^(?:[a-z][\w+.-]*://|/|www\.)", re.I)


def natural_text(text: str) -> Verdict:
    """Something a person wrote: words with spaces, or CJK text - not an id,
    a URL, a path, a number or an enum value."""
    t = text.strip()
    if len(t) < 2 or _URLISH.match(t) or _UUID.match(t):
        return False
    cjk = len(_CJK.findall(t))
    if cjk >= 2:
        return True
    words = _WORD.findall(t)
    return len(words) >= 2 and " " in t


_NOT_NAMES = frozenset(
    {"", "null", "none", "nil", "undefined", "unknown", "n/a", "-", "test", "default", "guest", "user", "admin", "anonymous"}
)


def person_name(text: str) -> Verdict:
    t = text.strip()
    # not _PLACEHOLDERS: "Na" (나) is a Korean surname, not "n/a"
    if t.lower() in _NOT_NAMES:
        return False
    if any(c.isdigit() for c in t) or len(t) > 64:
        return False
    return bool(_CJK.search(t)) or bool(_WORD.search(t))


def jwt(text: str) -> Verdict:
    parts = text.split(".")
    if len(parts) != 3:
        return False
    try:
        raw = parts[1] + "=" * (-len(parts[1]) % 4)
        return isinstance(json.loads(base64.urlsafe_b64decode(raw)), dict)
    except (ValueError, UnicodeDecodeError):
        return False


VALIDATORS: dict[str, Validator] = {
    "luhn": luhn,
    "imei": imei,
    "imsi": _stdnum(_imsi),
    "meid": _stdnum(_meid),
    "iccid": iccid,
    "kr_rrn": kr_rrn,
    "cn_ric": cn_ric,
    "us_ssn": us_ssn,
    "payment_card": payment_card,
    "phone": phone,
    "phone_kr": phone_kr,
    "phone_cn": phone_cn,
    "email": email,
    "not_zero_id": not_zero_id,
    "id_like": id_like,
    "mac": mac,
    "ip_address": ip_address,
    "latitude": latitude,
    "longitude": longitude,
    "lat_lon_pair": lat_lon_pair,
    "secret_like": secret_like,
    "not_placeholder": not_placeholder,
    "natural_text": natural_text,
    "person_name": person_name,
    "jwt": jwt,
}
"""Validator names a rule may use (the schema's ``validator`` field)."""
