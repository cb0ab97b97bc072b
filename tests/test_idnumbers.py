"""privaudit.detect.idnumbers gives python-stdnum's verdicts: over every
entry of the two databases it reads, and over random, valid and non-ASCII
numbers (those go to python-stdnum itself)."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from stdnum import imei, imsi, luhn, numdb
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.kr import rrn
from stdnum.us import ssn

from privaudit.detect import idnumbers

RNG = random.Random(20261128)
ODD = ["", " ", "-", "\n", "`", "１２３", "１２３４５６７８９０１２３４５", "35-209900-176148-1", " 490154203237518 ",
       "4901542032375１8", "49015420323751８", "11010519491231002x", "11010519491231002X\n", "078-05-1120", "078 05 1120",
       "457—55—5462", "123456789", "000-12-3456", "666123456", "900123456", "123-00-4567", "123-45-0000"]


def _digits(n: int) -> str:
    return "".join(RNG.choice("0123456789") for _ in range(n))


def _noisy(s: str) -> str:
    """``s`` with a separator, a space, a letter or a Unicode digit put in, or as it is."""
    k = RNG.randrange(8)
    i = RNG.randrange(len(s) + 1)
    put = {0: "-", 1: " ", 2: "a", 3: "\u0661", 4: "\uff13", 5: "\u2013"}.get(k)
    return s[:i] + put + s[i:] if put else s


def _std(check, *args):
    try:
        return check(*args)
    except KeyError:  # cn.ric: a listed province or prefecture, no such county
        return False


def _rrn_verdict(number: str):
    try:
        rrn.validate(number)
    except InvalidChecksum:
        return None
    except ValidationError:
        return False
    return True


def _samples(lengths, count=3000):
    out = list(ODD)
    for _ in range(count):
        out.append(_noisy(_digits(RNG.choice(lengths))))
    return out


def test_luhn_and_imei_and_imsi_are_python_stdnums():
    numbers = _samples([7, 8, 13, 14, 15, 16, 19])
    numbers += [b + luhn.calc_check_digit(b) for b in (_digits(14) for _ in range(500))]
    numbers += ["310150123456789", "460001234567890", "46001123456789", "99999123456789"]
    for n in numbers:
        assert idnumbers.luhn(n) == luhn.is_valid(n), n
        assert idnumbers.imei(n) == imei.is_valid(n), n
        assert idnumbers.imsi(n) == imsi.is_valid(n), n
    assert sum(map(idnumbers.luhn, numbers)) > 500 and sum(map(idnumbers.imsi, numbers)) > 50


def test_korean_rrn_is_python_stdnums_three_way_verdict():
    numbers = _samples([12, 13, 14])
    for _ in range(2000):  # plausible ones: a real date, every century digit
        body = f"{RNG.randrange(100):02d}{RNG.randrange(1, 13):02d}{RNG.randrange(1, 32):02d}{RNG.randrange(10)}{_digits(5)}"
        numbers += [body + str(d) for d in range(10)]
    verdicts = {True: 0, False: 0, None: 0}
    for n in numbers:
        got = idnumbers.kr_rrn(n)
        assert got == _rrn_verdict(n), n
        verdicts[got] += 1
    assert min(verdicts.values()) > 100


def test_us_ssn_is_python_stdnums():
    numbers = _samples([8, 9, 10]) + [f"{_digits(3)}-{_digits(2)}-{_digits(4)}" for _ in range(3000)]
    for n in numbers:
        assert idnumbers.us_ssn(n) == ssn.is_valid(n), n
    assert 1000 < sum(map(idnumbers.us_ssn, numbers)) < len(numbers) - 1000


def _region_codes() -> list[str]:
    codes = []

    def walk(prefixes, head):
        for length, low, high, props, children in prefixes:
            for k in range(int(low), int(high) + 1):
                code = head + str(k).zfill(length)
                if len(code) == 6:
                    codes.append(code)
                walk(children, code)

    walk(numdb.get("cn/loc").prefixes, "")
    return codes


def test_chinese_ric_is_python_stdnums_for_every_region_code_and_year():
    codes = _region_codes()
    assert len(codes) > 3000
    wrong_county = 0
    for code in codes + ["110199", "119999", "999999", "000000"]:
        for year in (RNG.randrange(1949, 1990), RNG.randrange(1990, 2026)):
            body = f"{code}{year}0{RNG.randrange(1, 10)}{RNG.randrange(10, 29)}{_digits(3)}"
            number = body + ric.calc_check_digit(body + "0")
            want = _std(ric.is_valid, number)
            assert idnumbers.cn_ric(number) == want, number
            wrong_county += not want
    assert wrong_county > 500  # codes that did not exist in that year
    for n in _samples([17, 18, 19], 2000) + [_digits(17) + "X" for _ in range(500)]:
        assert idnumbers.cn_ric(n.upper()) == _std(ric.is_valid, n.upper()), n


def test_a_listed_province_without_that_county_is_not_valid_where_stdnum_raises():
    body = "11019919900101123"
    number = body + ric.calc_check_digit(body + "0")
    with pytest.raises(KeyError):
        ric.is_valid(number)
    assert idnumbers.cn_ric(number) is False
    assert idnumbers.cn_ric(number.replace("1", "\uff11", 1)) is False  # (the python-stdnum road)


def _carrier_stdnum(code: str) -> bool:
    parts = numdb.get("imsi").info(code + "0" * (15 - len(code)))
    return len(parts) == 3 and parts[1][0] == code[3:] and bool(parts[1][1].get("operator"))


def test_carrier_codes_are_python_stdnums_for_every_listed_mcc_and_mnc():
    """Every MNC the table lists under every MCC, and a few it does not."""
    found = tried = 0
    mccs = 0
    for length, low, high, _, children in numdb.get("imsi").prefixes:
        for k in range(int(low), int(high) + 1):
            mcc = str(k).zfill(length)
            mccs += 1
            mncs = {str(m).zfill(n) for n, lo, hi, _, _ in children for m in range(int(lo), int(hi) + 1)}
            mncs |= {_digits(2) for _ in range(3)} | {_digits(3) for _ in range(3)}
            for mnc in sorted(mncs):
                want = _carrier_stdnum(mcc + mnc)
                assert idnumbers.carrier_mcc_mnc(mcc + mnc) == want, mcc + mnc
                found += want
                tried += 1
    assert mccs > 200 and 1000 < found < tried - 1000


@pytest.mark.parametrize("name, prop", [("imsi", "operator"), ("cn/loc", "county")])
def test_database_lookups_split_numbers_as_numdb_does(name, prop):
    db = numdb.get(name)
    for _ in range(3000):
        number = _digits(RNG.choice([3, 5, 6, 8, 15]))
        want = [(part, props.get(prop)) for part, props in db.info(number)]
        assert idnumbers._info(name, prop, number) == want, number


def test_the_checks_do_not_import_python_stdnum():
    """The point of the module: ASCII numbers are checked, and both
    databases read, with no python-stdnum module imported."""
    code = (
        "import sys\n"
        "from privaudit.detect import idnumbers as i\n"
        "assert i.imei('490154203237518') and i.luhn('79927398713') and i.imsi('460001234567890')\n"
        "assert i.kr_rrn('8001011234567') is not False and i.us_ssn('123-45-6789')\n"
        "assert i.cn_ric('11010519491231002X') and i.carrier_mcc_mnc('46001')\n"
        "print(sorted(m for m in sys.modules if m.startswith('stdnum')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
