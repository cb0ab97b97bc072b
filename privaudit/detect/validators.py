"""Validators: the part of a rule that decides.

A rule's regex is deliberately weak (it finds candidates); a validator named in
the rule decides whether the candidate is the real thing, as Presidio's
recognizers do. A validator takes the candidate text and answers

* ``True``  - valid (checksum passes, number is assigned, ...),
* ``False`` - not valid: no finding,
* ``None``  - "no opinion": the format is right but nothing can be checked
  (Korean RRNs issued after October 2020 have no check digit). The rule then
  fires only if its ``context`` matches.

Checksummed numbers are checked as python-stdnum checks them
(:mod:`privaudit.detect.idnumbers`: its algorithms for ASCII input, its data
files, python-stdnum itself for anything else; tests hold every verdict to
python-stdnum's), phone numbers with phonenumbers.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from functools import lru_cache

import phonenumbers

from .. import rxcache
from . import idnumbers


Verdict = bool | None
Validator = Callable[[str], Verdict]

_NON_DIGITS = rxcache.compile(r"\D")
_UUID = rxcache.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_PLACEHOLDERS = frozenset(
    {
        "", "null", "none", "nil", "undefined", "unknown", "n/a", "na", "-", "0", "false", "true",
        "default", "test", "empty", "placeholder", "xxx", "***", "******", "********",
    }
)


def _digits(text: str) -> str:
    return _NON_DIGITS.sub("", text)


def meid(text: str) -> Verdict:
    from stdnum import meid  # (rare: CDMA handsets; its import costs ~40 ms, see idnumbers)

    return bool(meid.is_valid(text))


def imei(text: str) -> Verdict:
    d = _digits(text)
    return len(set(d)) > 2 and idnumbers.imei(d)


# Reporting-body prefixes of the TACs phones carry today (GSMA TAC
# allocation: 35 BABT, 86 TAF China, 01 PTCRB, 99 GHA, 49/50-54 older BABT).
_TAC_PREFIX = ("01", "35", "86", "99", "49", "50", "51", "52", "53", "54")


def imei_value(text: str) -> Verdict:
    """An IMEI recognised by its value alone: exactly 15 digits, Luhn-valid,
    a TAC from a reporting body that allocates to phones, and not a run of
    one digit. (Random 15-digit ids pass this about 1 time in 250.)"""
    d = text.strip()
    return len(d) == 15 and d.isdigit() and d.startswith(_TAC_PREFIX) and len(set(d)) > 3 and idnumbers.imei(d)


def luhn(text: str) -> Verdict:
    d = _digits(text)
    return len(d) >= 8 and idnumbers.luhn(d)


def iccid(text: str) -> Verdict:
    # ICCID (ITU-T E.118): 19-20 digits, "89" telecom prefix, Luhn check digit;
    # some devices report a trailing "F" filler nibble.
    d = text.strip().rstrip("Ff")
    return d.isdigit() and 18 <= len(d) <= 20 and d.startswith("89") and idnumbers.luhn(d)


def kr_rrn(text: str) -> Verdict:
    """KR resident registration number (주민등록번호).

    Since October 2020 the last digit is random, not a check digit, so a bad
    checksum is "no opinion", not "invalid" (Presidio's kr_rrn_recognizer does
    the same). The birth date and the century/sex digit are still checked.
    Written as RRNs are (``YYMMDD-NNNNNNN``) a valid checksum decides; a bare
    13-digit run is also what tokens and ids look like, so it is "no opinion"
    either way and needs context.
    """
    number = _digits(text)
    if len(number) != 13:
        return False
    ok = idnumbers.kr_rrn(number)
    if ok is False:
        return False
    return ok if ("-" in text or " " in text.strip()) else None


def cn_ric(text: str) -> Verdict:
    return idnumbers.cn_ric(text.upper())


def us_ssn(text: str) -> Verdict:
    return idnumbers.us_ssn(re.sub(r"\s+", "-", text.strip()))


# Issuer identification number prefixes of the card schemes that issue to the
# public (ISO/IEC 7812; scheme ranges as published by Visa, Mastercard, Amex,
# Discover, JCB, UnionPay, Diners). A Luhn-valid number outside them is far more
# often a build number or an order id than a card.
_IIN = rxcache.compile(
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
    """Luhn and length decide; the issuer range only decides *how sure*.

    A 13-16 digit number in a published scheme range is a card on its own.
    Anything else that passes Luhn (domestic ranges such as Korea's BC Card
    94xx/9490, 17-19 digit PANs, and 18-19 digit trace/snowflake ids that
    pass Luhn one time in ten) is "no opinion": the rule's context (a card
    key or location) must say so.
    """
    d = _digits(text)
    if not 13 <= len(d) <= 19 or len(set(d)) < 2 or not idnumbers.luhn(d):
        return False
    if len(d) <= 16 and _IIN.match(d):
        return True
    return None


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


@lru_cache(maxsize=8192)
def _phone_valid(text: str, regions: tuple[str, ...]) -> bool:
    # memoised: phonenumbers takes ~0.1 ms a call, and the same numbers
    # (the user's own) come back in flow after flow
    return parse_phone(text, regions) is not None


def phone(text: str) -> Verdict:
    """A valid number in E.164 (any region) or in KR/CN/US national form."""
    if len(_digits(text)) < 7:
        return False
    return _phone_valid(text, PHONE_REGIONS)


def phone_kr(text: str) -> Verdict:
    return _phone_valid(text, ("KR",))


def phone_cn(text: str) -> Verdict:
    """A CN mobile number. Written as a bare 11-digit run it is also what
    counters and ids look like, so then the answer is "no opinion" (the rule's
    context must name a phone); with +86 or separators it decides."""
    t = text.strip()
    if t.startswith("86") and len(_digits(t)) == 13:
        t = "+" + t
    if not _phone_valid(t, ("CN",)):
        return False
    return True if (t.startswith("+") or not t.isdigit()) else None


_HEX_KEY = rxcache.compile(r"^[0-9a-fA-F]{16,}$")
_ASSET_SUFFIX = rxcache.compile(r"\.(png|jpe?g|gif|webp|svg|js|css|map|woff2?|ttf|ico)$", re.I)


def email(text: str) -> Verdict:
    # "icon@2x.png" and "name@3x.webp" are asset names, not addresses.
    local, _, domain = text.rpartition("@")
    if not local or "." not in domain or _ASSET_SUFFIX.search(text):
        return False
    # Sentry/ingest DSNs ("<32 hex key>@o123.ingest.sentry.io") put a project
    # key where a mailbox would be: a URL's userinfo, not an address.
    if _HEX_KEY.match(local) and ("ingest" in domain or "sentry" in domain):
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


_PLACEHOLDER_WORDS = rxcache.compile(r"(?i)(your|example|placeholder|changeme|replace|dummy|sample|here|insert|xxxx)")


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


# Keys published by design, that identify an app or project and let no one
# act as a user: Mapbox public tokens (pk.), Stripe publishable keys (pk_),
# Google API keys (AIza, restricted by app signature), Sentry/Mixpanel-style
# project keys are handled by the rules' keys. Sources: docs.mapbox.com
# "Access tokens", docs.stripe.com/keys, cloud.google.com/docs/authentication/api-keys.
_PUBLIC_KEY = rxcache.compile(r"^\s*(?:pk\.|pk_(?:live|test)_|AIza[\w-]{20,}|rk_test_)")


def user_secret(text: str) -> Verdict:
    """:func:`secret_like`, and not a key that is public by design."""
    if _PUBLIC_KEY.match(text):
        return False
    return secret_like(text)


def auth_header(text: str) -> Verdict:
    """An Authorization value that authenticates a user: not Basic with an
    empty password (analytics SDKs such as Segment and Amplitude send their
    write key as "Basic base64(key:)"), not a public key."""
    scheme, _, cred = text.strip().partition(" ")
    cred = cred.strip()
    if not cred:  # a raw token, no scheme
        return user_secret(scheme)
    if scheme.lower() == "basic":
        raw = _b64(cred)
        if raw is not None:
            user, sep, pw = raw.partition(":")
            if sep and not pw:
                return False
    return not _PUBLIC_KEY.match(cred)


def _b64(s: str) -> str | None:
    try:
        return base64.b64decode(s + "=" * (-len(s) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def not_placeholder(text: str) -> Verdict:
    t = text.strip()
    return bool(t) and t.lower() not in _PLACEHOLDERS and (len(t) < 3 or len(set(t)) > 1)


_WORD = rxcache.compile(r"[^\W\d_]{2,}")
_CJK = rxcache.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_URLISH = rxcache.compile(r"^(?:[a-z][\w+.-]*://|/|www\.)", re.I)


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


# Common surnames (Statistics Korea census 2015; the Chinese "Hundred
# Family Surnames" most in use, per the Ministry of Public Security ranking):
# a short Hangul/Han string under a "name" key is a person's name when it
# begins with one. Event, product and screen names rarely do.
_KO_SURNAMES = frozenset(
    "김이박최정강조윤장임한오서신권황안송류전홍고문양손배백허유남심노하곽성차주우구민진나지엄채원천방공현함변염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예경봉사부가복태목형피두감음빈동온호범좌갈승견당"
)
_KO_SURNAMES2 = frozenset({"남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "동방"})
_ZH_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝张陳劉楊黃趙吳許韓馮鄧蕭葉蘇魏呂盧鐘譚陸汪賈鄒孟熊薛閻段雷侯龍陶賀顧龔萬錢嚴覃"
)
_ZH_SURNAMES2 = frozenset({"欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "令狐", "慕容", "司徒", "夏侯", "歐陽", "諸葛"})
# Everyday words that begin with a surname syllable (이벤트 "event", 정보
# "info"...) and institution names (신한카드): not people.
_KO_NOT_NAMES = frozenset(
    "이벤트 이미지 이름 이용 이메일 정보 정산 조회 주문 주소 유저 고객 기본 설정 전체 전화 최근 신규 인기 공지 안내 도움말 "
    "한국 한국어 중국 일본 미국 서울 부산 강남 신한 우리 국민 하나 기업 농협 신용 체크 배송 결제 상품 선물 나의 내정보 문의 "
    "채팅 사진 동영상 음악 게임 방송 뉴스 날씨 지도 오늘 내일 어제 홈 마이 장바구니 검색 추천 기타 소개 서비스 구매 판매 "
    "김밥 김치 김치전 이모지 이모티콘 정답 조건 주간 고기 전화번호 이메일주소 서비스 "
    "카카오 네이버 우체국 하나은행 신한은행 국민은행 우리은행 기업은행 남성 여성 성인 전자 모바일".split()
)
_KO_NOT_NAME_SUFFIX = ("카드", "은행", "센터", "마트", "증권", "보험", "페이", "톡", "회사", "병원", "학교", "설정", "화면", "목록", "정보", "관리", "시청", "구청")
_HANGUL_NAME = rxcache.compile(r"^[\uac00-\ud7a3]{2,4}$")
_HAN_NAME = rxcache.compile(r"^[\u4e00-\u9fff]{2,4}$")
_LATIN_NAME = rxcache.compile(r"^[A-Z][a-z]+(?:[-'][A-Za-z][a-z]+)?(?: (?:(?:van|de|der|da|di|von|la|le|del|bin|al)\s)?[A-Z][a-z]+(?:[-'][A-Za-z][a-z]+)?){1,2}$")


@lru_cache(maxsize=4096)
def cjk_person_name(text: str) -> Verdict:
    """A Korean or Chinese personal name: 2-4 Hangul syllables or Han
    characters beginning with a common surname (spaces between surname and
    given name allowed)."""
    t = text.strip().replace(" ", "").replace("\u00b7", "")
    if _HANGUL_NAME.match(t):
        if t in _KO_NOT_NAMES or t.endswith(_KO_NOT_NAME_SUFFIX):
            return False
        if t[:2] in _KO_SURNAMES2:
            return len(t) >= 3
        # four syllables with a one-syllable surname is rare for a name and
        # common for words (김치찌개)
        return t[0] in _KO_SURNAMES and len(t) <= 3
    if _HAN_NAME.match(t):
        return t[0] in _ZH_SURNAMES or t[:2] in _ZH_SURNAMES2
    return False


@lru_cache(maxsize=4096)
def person_name_shape(text: str) -> Verdict:
    """A personal name by its shape: :func:`cjk_person_name`, or Latin
    "Given Family" (2-3 capitalised words, letters only). For keys that may
    also hold product or event names, with a person-ish parent or endpoint."""
    if cjk_person_name(text):
        return True
    t = text.strip()
    return bool(_LATIN_NAME.match(t)) and t.lower() not in _NOT_NAMES


@lru_cache(maxsize=4096)
def carrier_value(text: str) -> Verdict:
    """A mobile carrier: a known operator name or code, or an MCC+MNC whose
    MCC is assigned (python-stdnum's IMSI tables)."""
    t = text.strip()
    if t.isdigit() and len(t) in (5, 6):
        return idnumbers.carrier_mcc_mnc(t)  # (its table is read on first use)
    return t.lower().replace(" ", "") in _CARRIERS


# Operators' short names as SDKs report them (TelephonyManager
# getNetworkOperatorName / CTCarrier.carrierName in KR, CN, JP, US).
_CARRIERS = frozenset(
    {
        "skt", "sktelecom", "kt", "olleh", "lgu+", "lguplus", "lgt", "lgtelecom",
        "cmcc", "chinamobile", "中国移动", "cucc", "chinaunicom", "中国联通", "ctcc", "chinatelecom", "中国电信",
        "cbn", "中国广电", "docomo", "nttdocomo", "softbank", "kddi", "rakuten", "verizon", "at&t", "att",
        "t-mobile", "tmobile", "sprint", "vodafone", "orange", "telekom", "three",
    }
)


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
    "imsi": idnumbers.imsi,
    "meid": meid,
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
    "imei_value": imei_value,
    "user_secret": user_secret,
    "auth_header": auth_header,
    "cjk_person_name": cjk_person_name,
    "person_name_shape": person_name_shape,
    "carrier_value": carrier_value,
}
"""Validator names a rule may use (the schema's ``validator`` field)."""
