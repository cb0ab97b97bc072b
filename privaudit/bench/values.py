"""Random-but-valid personal values for the synthetic traffic generator.

Every function takes a :class:`random.Random`, so a seed fixes the output.
Checksummed identifiers are valid by their real algorithms (Luhn for IMEIs
and cards, mod-11 for pre-2020 Korean RRNs, ISO 7064 MOD 11-2 for Chinese
resident IDs); the tests check them with ``python-stdnum`` and
``phonenumbers``, which are independent of this module.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from dataclasses import dataclass, field

HEX = "0123456789abcdef"


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(digits: str) -> bool:
    return len(digits) > 1 and luhn_check_digit(digits[:-1]) == digits[-1]


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def hexstr(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(HEX) for _ in range(n))


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# Type allocation codes of common handsets (Samsung, Xiaomi, Apple, Huawei).
TACS = ("35693803", "35328711", "86891503", "35209611", "86769204", "35391110", "86446503")


def imei(rng: random.Random) -> str:
    body = rng.choice(TACS) + digits(rng, 6)
    return body + luhn_check_digit(body)


def card(rng: random.Random) -> str:
    kind = rng.choice(("visa", "mc", "unionpay", "amex"))
    if kind == "visa":
        body = "4" + digits(rng, 14)
    elif kind == "mc":
        body = str(rng.randint(51, 55)) + digits(rng, 13)
    elif kind == "unionpay":
        body = "62" + digits(rng, 13)
    else:
        body = rng.choice(("34", "37")) + digits(rng, 12)
    return body + luhn_check_digit(body)


def not_luhn(rng: random.Random, n: int) -> str:
    """An n-digit number that fails Luhn (order numbers and the like)."""
    body = str(rng.randint(1, 9)) + digits(rng, n - 2)
    good = luhn_check_digit(body)
    return body + str((int(good) + rng.randint(1, 9)) % 10)


def mac(rng: random.Random, sep: str = ":", upper: bool = False) -> str:
    first = rng.randrange(0, 256) & 0b11111100  # globally administered, unicast
    octets = [first] + [rng.randrange(256) for _ in range(5)]
    s = sep.join(f"{o:02x}" for o in octets)
    return s.upper() if upper else s


def kr_mobile(rng: random.Random) -> str:
    """National form 010-XXXX-XXXX."""
    # libphonenumber leaves parts of 010-5xxx unassigned; stay clear of them.
    return f"010-{rng.choice((rng.randint(2000, 4999), rng.randint(6000, 9999)))}-{rng.randint(0, 9999):04d}"


CN_PREFIXES = ("138", "139", "136", "150", "158", "186", "187", "177", "199", "135")


def cn_mobile(rng: random.Random) -> str:
    """National form 13812345678."""
    return rng.choice(CN_PREFIXES) + digits(rng, 8)


def phone_forms(national: str) -> dict[str, str]:
    """The forms apps send a phone number in."""
    d = national.replace("-", "").replace(" ", "")
    if d.startswith("010"):
        sub = d[1:]
        return {
            "national": national,
            "digits": d,
            "intl": f"+82 10-{d[3:7]}-{d[7:]}",
            "e164": "+82" + sub,
            "e164_digits": "82" + sub,
        }
    return {
        "national": d,
        "digits": d,
        "intl": f"+86 {d[:3]} {d[3:7]} {d[7:]}",
        "e164": "+86" + d,
        "e164_digits": "86" + d,
    }


RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def kr_rrn(rng: random.Random, post2020: bool = False) -> str:
    """A Korean resident registration number, YYMMDD-GNNNNNC.

    Numbers issued before October 2020 carry a mod-11 check digit; later ones
    have random digits after the gender digit and no checksum.
    """
    if post2020:
        yy = rng.randint(20, 24)
        g = rng.choice("34")
    else:
        yy = rng.randint(60, 99)
        g = rng.choice("12")
    mm, dd = rng.randint(1, 12), rng.randint(1, 28)
    front = f"{yy:02d}{mm:02d}{dd:02d}"
    if post2020:
        back = g + digits(rng, 6)
    else:
        # Digits 8-9 are the registration office's region, 00-96.
        body = front + g + f"{rng.randint(0, 96):02d}" + digits(rng, 3)
        s = sum(int(c) * w for c, w in zip(body, RRN_WEIGHTS))
        back = body[6:] + str((11 - s % 11) % 10)
    return f"{front}-{back}"


# Administrative division codes that existed over the whole birth-year range
# used below (a code must exist at the holder's birth; python-stdnum checks it).
CN_AREAS = ("110101", "110105", "110108", "310101", "310104", "440305", "330106", "420102", "320102")
CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def cn_ric(rng: random.Random) -> str:
    """A Chinese resident identity card number (18 chars, ISO 7064 MOD 11-2)."""
    body = (
        rng.choice(CN_AREAS)
        + f"{rng.randint(1990, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        + digits(rng, 3)
    )
    s = sum(int(c) * w for c, w in zip(body, CN_WEIGHTS))
    return body + "10X98765432"[s % 11]


def b64(data: bytes | str, urlsafe: bool = False, pad: bool = True) -> str:
    if isinstance(data, str):
        data = data.encode()
    out = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    return out if pad else out.rstrip("=")


def digest(algo: str, value: str) -> str:
    return hashlib.new(algo, value.encode()).hexdigest()


def jwt(rng: random.Random, sub: str) -> str:
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")), urlsafe=True, pad=False)
    payload = b64(
        json.dumps({"sub": sub, "iat": rng.randint(1_730_000_000, 1_735_000_000), "scope": "chat"}, separators=(",", ":")),
        urlsafe=True,
        pad=False,
    )
    sig = b64(rng.getrandbits(256).to_bytes(32, "big"), urlsafe=True, pad=False)
    return f"{header}.{payload}.{sig}"


def token(rng: random.Random, n: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(rng.choice(alphabet) for _ in range(n))


KR_SURNAMES = ("김", "이", "박", "최", "정", "강", "조", "윤", "장", "임")
KR_SURNAMES_ROM = ("kim", "lee", "park", "choi", "jung", "kang", "cho", "yoon", "jang", "lim")
KR_GIVEN = (("민준", "minjun"), ("서연", "seoyeon"), ("지훈", "jihoon"), ("하은", "haeun"), ("도윤", "doyun"), ("수빈", "subin"), ("예준", "yejun"), ("지우", "jiwoo"))
CN_SURNAMES = (("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"))
CN_GIVEN = (("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("强", "qiang"), ("磊", "lei"))
EN_FIRST = ("Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Mia", "Lucas")
EN_LAST = ("Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore")

DEVICES = (
    ("samsung", "SM-S918N", "arm64-v8a", "1440*3088"),
    ("samsung", "SM-G998N", "arm64-v8a", "1440*3200"),
    ("samsung", "SM-A536N", "arm64-v8a", "1080*2400"),
    ("Xiaomi", "M2102J2SC", "arm64-v8a", "1080*2400"),
    ("vivo", "V2227A", "arm64-v8a", "1080*2400"),
    ("HUAWEI", "NOH-AN00", "arm64-v8a", "1344*2772"),
    ("OPPO", "PGT-AN10", "arm64-v8a", "1080*2412"),
    ("Google", "Pixel 8", "arm64-v8a", "1080*2400"),
)
KR_CARRIERS = (("SK Telecom", "45005"), ("KT", "45008"), ("LG U+", "45006"))
CN_CARRIERS = (("中国移动", "46000"), ("中国联通", "46001"), ("中国电信", "46011"))
KR_SSIDS = ("iptime", "KT_GiGA_5G_{x}", "SK_WiFiGIGA{x}", "U+Net{x}")
CN_SSIDS = ("ChinaNet-{x}", "TP-LINK_5G_{x}", "CMCC-{x}", "MERCURY_{x}")
CITIES_KR = ((37.5665, 126.9780), (35.1796, 129.0756), (37.4563, 126.7052), (36.3504, 127.3845))
CITIES_CN = ((39.9042, 116.4074), (31.2304, 121.4737), (22.5431, 114.0579), (30.2741, 120.1551))
OTHER_APPS = (
    "com.kakao.talk", "com.nhn.android.search", "com.coupang.mobile", "viva.republica.toss",
    "com.tencent.mm", "com.eg.android.AlipayGphone", "com.ss.android.ugc.aweme", "com.sina.weibo",
    "com.instagram.android", "com.whatsapp", "com.spotify.music", "com.nianticlabs.pokemongo",
    "kr.co.shinhan", "com.kbstar.kbbank", "com.xunmeng.pinduoduo", "com.taobao.taobao",
)
APP_LABELS = {
    "com.kakao.talk": "KakaoTalk", "com.nhn.android.search": "NAVER", "com.coupang.mobile": "Coupang",
    "viva.republica.toss": "Toss", "com.tencent.mm": "WeChat", "com.eg.android.AlipayGphone": "Alipay",
    "com.ss.android.ugc.aweme": "Douyin", "com.sina.weibo": "Weibo", "com.instagram.android": "Instagram",
    "com.whatsapp": "WhatsApp", "com.spotify.music": "Spotify", "com.nianticlabs.pokemongo": "Pokémon GO",
    "kr.co.shinhan": "신한 SOL", "com.kbstar.kbbank": "KB스타뱅킹", "com.xunmeng.pinduoduo": "拼多多",
    "com.taobao.taobao": "淘宝",
}

PROMPTS_KO = (
    "내일 부산 날씨 어때?",
    "이메일 답장 좀 정중하게 다듬어줘: 회의는 다음 주로 미뤄야 할 것 같습니다.",
    "최근 두통이 잦은데 어떤 병원에 가야 할까?",
    "파이썬으로 CSV 파일 합치는 코드 짜줘",
    "전세 계약할 때 꼭 확인해야 하는 것들 알려줘",
)
PROMPTS_ZH = (
    "帮我写一封请假邮件，理由是孩子发烧。",
    "上海到杭州的高铁大概多久？",
    "我最近失眠，有什么办法改善睡眠？",
    "解释一下什么是量子纠缠",
)
PROMPTS_EN = (
    "Summarize my lab results: LDL 162 mg/dL, HbA1c 6.1%",
    "Draft a message telling my landlord the heater is broken again",
    "What are the side effects of sertraline?",
    "Write a haiku about the Han river at night",
    "How do I dispute a credit card charge?",
)


@dataclass
class Persona:
    """One test user on one device: every personal value the generator sends."""

    region: str
    name: str
    name_latin: str
    email: str
    phone: str
    """National form: 010-1234-5678 (KR) or 13812345678 (CN)."""
    gaid: str
    android_id: str
    imei: str
    mac: str
    bd_device_id: str
    install_id: str
    brand: str
    model: str
    cpu_abi: str
    resolution: str
    os_version: str
    carrier: str
    mcc_mnc: str
    ssid: str
    bssid: str
    wifi_ip: str
    lat: float
    lon: float
    timezone: str
    language: str
    apps: list[str]
    password: str
    session: str
    bearer: str
    card: str
    national_id: str
    national_id_kind: str
    prompts: list[str]
    user_id: str
    canary: bool = False
    contacts: list[tuple[str, str]] = field(default_factory=list)


def persona(rng: random.Random, region: str | None = None) -> Persona:
    region = region or rng.choice(("KR", "KR", "CN", "US"))
    if region == "CN":
        sur, sur_r = rng.choice(CN_SURNAMES)
        giv, giv_r = rng.choice(CN_GIVEN)
        name, latin = sur + giv, f"{giv_r.title()} {sur_r.title()}"
        email = f"{sur_r}{giv_r}{rng.randint(1, 999)}@" + rng.choice(("qq.com", "163.com", "126.com"))
        phone = cn_mobile(rng)
        carrier, mcc = rng.choice(CN_CARRIERS)
        ssid = rng.choice(CN_SSIDS).format(x=hexstr(rng, 4).upper())
        lat, lon = rng.choice(CITIES_CN)
        tz, lang = "Asia/Shanghai", "zh"
        nid, nid_kind = cn_ric(rng), "cn_ric"
        prompts = list(PROMPTS_ZH)
    else:
        if region == "KR":
            i = rng.randrange(len(KR_SURNAMES))
            giv, giv_r = rng.choice(KR_GIVEN)
            name, latin = KR_SURNAMES[i] + giv, f"{giv_r.title()} {KR_SURNAMES_ROM[i].title()}"
            email = f"{giv_r}.{KR_SURNAMES_ROM[i]}{rng.randint(1, 99)}@" + rng.choice(("naver.com", "gmail.com", "daum.net"))
            prompts = list(PROMPTS_KO)
            lang = "ko"
        else:
            first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
            name = latin = f"{first} {last}"
            email = f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@" + rng.choice(("gmail.com", "outlook.com", "example.org"))
            prompts = list(PROMPTS_EN)
            lang = "en"
        # US users of a Korean app: number and ids are still Korean-issued here.
        phone = kr_mobile(rng)
        carrier, mcc = rng.choice(KR_CARRIERS)
        ssid = rng.choice(KR_SSIDS).format(x=hexstr(rng, 4).upper())
        lat, lon = rng.choice(CITIES_KR)
        tz = "Asia/Seoul"
        post = rng.random() < 0.3
        nid, nid_kind = kr_rrn(rng, post2020=post), "kr_rrn_post2020" if post else "kr_rrn"
    brand, model, abi, res = rng.choice(DEVICES)
    p = Persona(
        region=region,
        name=name,
        name_latin=latin,
        email=email,
        phone=phone,
        gaid=uuid4(rng),
        android_id=hexstr(rng, 16),
        imei=imei(rng),
        mac=mac(rng),
        bd_device_id="7" + digits(rng, 18),
        install_id="7" + digits(rng, 18),
        brand=brand,
        model=model,
        cpu_abi=abi,
        resolution=res,
        os_version=rng.choice(("11", "12", "13", "14")),
        carrier=carrier,
        mcc_mnc=mcc,
        ssid=ssid,
        bssid=mac(rng),
        wifi_ip=f"192.168.{rng.choice((0, 1, 10, 35))}.{rng.randint(2, 254)}",
        lat=round(lat + rng.uniform(-0.05, 0.05), 6),
        lon=round(lon + rng.uniform(-0.05, 0.05), 6),
        timezone=tz,
        language=lang,
        apps=rng.sample(OTHER_APPS, rng.randint(5, 10)),
        password=rng.choice(("Sunflower!", "qwer", "Hanriver#", "dragon_", "P@ss")) + digits(rng, 4),
        session=token(rng, 40),
        bearer="",
        card=card(rng),
        national_id=nid,
        national_id_kind=nid_kind,
        prompts=prompts,
        user_id="u_" + digits(rng, 9),
    )
    p.bearer = jwt(rng, p.user_id)
    p.contacts = [contact(rng, region) for _ in range(rng.randint(3, 7))]
    return p


def contact(rng: random.Random, region: str) -> tuple[str, str]:
    if region == "CN":
        return rng.choice(CN_SURNAMES)[0] + rng.choice(CN_GIVEN)[0], cn_mobile(rng)
    return rng.choice(KR_SURNAMES) + rng.choice(KR_GIVEN)[0], kr_mobile(rng)


#: The test identity of tests/data/evalset/canaries.yaml (CONTRACT.md's example).
CANARY = {
    "email": "tester.one@example.org",
    "phone": "+82 10-1234-5678",
    "name": ["Hong Gildong", "홍길동"],
    "advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
    "device_id": ["f0e1d2c3b4a59687", "356938035643809"],
    "location": {"lat": 37.5665, "lon": 126.9780},
    "chat_content": "Find me a quiet cafe near Gwanghwamun that opens before 7",
}


def canary_persona(rng: random.Random) -> Persona:
    p = persona(rng, "KR")
    p.name, p.name_latin = "홍길동", "Hong Gildong"
    p.email = CANARY["email"]
    p.phone = "010-1234-5678"
    p.gaid = CANARY["advertising_id"]
    p.android_id, p.imei = CANARY["device_id"]
    # The device sits a few metres from the canary point: apps send more decimals.
    p.lat, p.lon = 37.566512, 126.978043
    p.prompts = [CANARY["chat_content"]] + list(PROMPTS_KO[:2])
    p.canary = True
    return p
