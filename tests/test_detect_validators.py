"""Validators: the part of a rule that decides (True / False / None = no opinion)."""

from __future__ import annotations

import pytest

from privaudit.detect.validators import VALIDATORS

TABLE = [
    ("kr_rrn", "971013-1019901", True),
    ("kr_rrn", "9710131019902", None),  # bad check digit: could be a post-2020 RRN
    ("kr_rrn", "971313-1019901", False),  # month 13
    ("kr_rrn", "97101310199", False),
    ("cn_ric", "11010519491231002X", True),
    ("cn_ric", "110105194912310021", False),
    ("us_ssn", "536-90-4399", True),
    ("us_ssn", "536 90 4399", True),
    ("us_ssn", "666-12-3456", False),
    ("payment_card", "4111-1111-1111-1111", True),
    ("payment_card", "4111111111111112", False),
    ("payment_card", "1234567812345670", None),  # Luhn-valid, no public scheme: only with card context
    ("payment_card", "9410123456789010", None),  # BC Card (KR domestic 94xx): Luhn-valid, context decides
    ("payment_card", "3569599942142609396", None),  # 19 digits in the JCB range: a snowflake id as often
    ("payment_card", "4111111111111112", False),
    ("imei_value", "356938035643809", True),
    ("imei_value", "123456789012347", False),  # Luhn-valid, no phone TAC prefix
    ("cjk_person_name", "김민지", True),
    ("cjk_person_name", "이벤트", False),
    ("cjk_person_name", "张伟", True),
    ("cjk_person_name", "首页", False),
    ("person_name_shape", "Jane Park", True),
    ("person_name_shape", "home_screen", False),
    ("carrier_value", "46001", True),
    ("carrier_value", "12345", False),
    ("carrier_value", "SKT", True),
    ("auth_header", "Basic c2VnX3dyaXRlX2tleTo=", False),  # "seg_write_key:" - an SDK write key
    ("auth_header", "Basic dXNlcjpwYXNzd29yZA==", True),
    ("user_secret", "pk.eyJ1IjoibHVtaSJ9.abcdefghijklmnop", False),
    ("user_secret", "AIzaSyD3-x7Q9kLmNpR2sTuVwXyZ01234567", False),
    ("email", "8f14e45fceea167a5a36dedd4bea2543@o12345.ingest.sentry.io", False),
    ("kr_rrn", "9710131019901", None),
    ("phone_cn", "13800138000", None),
    ("phone_cn", "+86 138 0013 8000", True),
    ("imei", "356938035643809", True),
    ("imei", "000000000000000", False),
    ("iccid", "8982300001234567895", True),
    ("iccid", "898230000123456781F", True),
    ("phone", "+821012345678", True),
    ("phone", "01012345678", True),
    ("phone", "18612345678", True),
    ("phone", "(650) 253-0000", True),
    ("phone", "1732790000", True),  # a valid US number: which is why phone rules need a "+" or a phone key
    ("phone", "0000000", False),
    ("phone_kr", "18612345678", False),
    ("phone_cn", "8618612345678", True),
    ("email", "a@example.org", True),
    ("email", "icon@2x.png", False),
    ("not_zero_id", "00000000-0000-0000-0000-000000000000", False),
    ("not_zero_id", "38400000-8cf0-11bd-b23e-10b96e40000d", True),
    ("mac", "02:00:00:00:00:00", False),
    ("mac", "3c:5a:b4:12:34:56", True),
    ("ip_address", "192.168.0.2", True),
    ("ip_address", "127.0.0.1", False),
    ("lat_lon_pair", "126.978,37.5665", True),
    ("lat_lon_pair", "37.5,200.1", False),
    ("secret_like", "8f14e45fceea167a5a36dedd4bea2543", True),
    ("secret_like", "YOUR_API_KEY_HERE_0000", False),
    ("natural_text", "how do I reset my password", True),
    ("natural_text", "내일 날씨", True),
    ("natural_text", "app_open", False),
    ("natural_text", "https://example.com/a b", False),
    ("person_name", "홍길동", True),
    ("person_name", "guest", False),
    ("person_name", "Na", True),
    ("id_like", "6e3f0b8c9a2d4e71", True),
    ("id_like", "unknown", False),
    ("jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", True),
    ("jwt", "a.b.c", False),
]


@pytest.mark.parametrize(("name", "text", "want"), TABLE, ids=[f"{n}-{t}" for n, t, _ in TABLE])
def test_validator(name, text, want):
    assert VALIDATORS[name](text) is want
