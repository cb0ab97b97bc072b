"""Identity and network numbers checked as python-stdnum checks them, without
importing it for ASCII input.

Importing any python-stdnum module costs ~40 ms (``stdnum.util`` imports
``pydoc`` and ``ssl``), and its number databases are parsed on first use,
~40 ms each for the IMSI and the Chinese region-code tables: ~0.12 s that
every analysing process paid at its first flow carrying such numbers, and
each worker of a parallel run paid again (side by side, so like start-up:
no second core shortens it). Here:

- the algorithms (Luhn, IMEI, IMSI, Korean RRN, Chinese RIC, US SSN) are written
  out for ASCII input, which is what they see; anything else (fullwidth
  digits, Unicode dashes, which python-stdnum maps to ASCII first) goes to
  python-stdnum itself, so the verdict is always python-stdnum's;
- the two databases are read from the installed python-stdnum's own data
  files (``imsi.dat``, ``cn/loc.dat``: the data is the version installed),
  keeping only the property each check uses, and looked up with
  python-stdnum's rule (at each level the shortest matching prefix), in
  ~10 ms each.

One difference, on purpose: python-stdnum's ``cn.ric.is_valid`` raises
KeyError for a region code whose province or prefecture is listed but whose
county is not; here that number is not valid (the region does not exist).
Tests compare the verdicts with python-stdnum's over every region code and
every MCC+MNC of its tables and over random and valid numbers.
"""

from __future__ import annotations

import datetime
import functools
import os
from typing import Any

from .. import rxcache

# --------------------------------------------------------------- algorithms


_ISDIGITS = rxcache.compile(r"^[0-9]+$")


def _digits_only(s: str) -> bool:
    """python-stdnum's ``isdigits``, quirk included (``$`` also matches
    before a final newline)."""
    return _ISDIGITS.match(s) is not None


def luhn(number: str) -> bool:
    """``stdnum.luhn.is_valid`` (decimal alphabet)."""
    if not number.isascii():
        from stdnum import luhn as std

        return std.is_valid(number)
    if not number.isdigit():
        return False
    total = 0
    for i, c in enumerate(reversed(number)):
        v = ord(c) - 48
        if i & 1:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return total % 10 == 0


def imei(number: str) -> bool:
    """``stdnum.imei.is_valid``."""
    if not number.isascii():
        from stdnum import imei as std

        return std.is_valid(number)
    number = number.replace(" ", "").replace("-", "").strip().upper()
    if not _digits_only(number):
        return False
    if len(number) == 15:
        return luhn(number)
    return len(number) in (14, 16)


def kr_rrn(number: str) -> bool | None:
    """``stdnum.kr.rrn.validate``: True if valid, None if only the check
    digit is wrong (``InvalidChecksum``), False for any other error."""
    if not number.isascii():
        from stdnum.exceptions import InvalidChecksum, ValidationError
        from stdnum.kr import rrn as std

        try:
            std.validate(number)
        except InvalidChecksum:
            return None
        except ValidationError:
            return False
        return True
    number = number.replace("-", "").strip()
    if not _digits_only(number) or len(number) != 13:
        return False
    century = 1900 if number[6] in "1256" else 2000 if number[6] in "3478" else 1800
    try:
        datetime.date(century + int(number[0:2]), int(number[2:4]), int(number[4:6]))
    except ValueError:
        return False
    if int(number[7:9]) > 96:
        return False
    check = sum(w * (ord(c) - 48) for w, c in zip((2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5), number))
    return True if number[-1] == str((11 - check % 11) % 10) else None


_SSN = rxcache.compile(r"^(?P<area>[0-9]{3})-?(?P<group>[0-9]{2})-?(?P<serial>[0-9]{4})$")
_SSN_BLACKLIST = frozenset({"078-05-1120", "457-55-5462", "219-09-9999"})


def us_ssn(number: str) -> bool:
    """``stdnum.us.ssn.is_valid``."""
    if not number.isascii():
        from stdnum.us import ssn as std

        return std.is_valid(number)
    number = number.replace("`", "'")  # (the one ASCII character python-stdnum's clean() changes)
    m = _SSN.search(number.strip())
    if not m:
        return False
    area, group, serial = m.group("area", "group", "serial")
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    bare = number.replace("-", "").strip()
    return bare[:3] + "-" + bare[3:5] + "-" + bare[5:] not in _SSN_BLACKLIST


def cn_ric(number: str) -> bool:
    """``stdnum.cn.ric.is_valid`` (checksum, birth date, and a region code
    that existed in the year of birth), except as the module docstring says."""
    if not number.isascii():
        from stdnum.cn import ric as std

        try:
            return std.is_valid(number)
        except KeyError:  # a listed province or prefecture, no such county
            return False
    number = number.replace("`", "'").upper().strip()
    if len(number) != 18 or not _digits_only(number[:-1]):
        return False
    check = (1 - 2 * int(number[:-1], 13)) % 11
    if number[-1] != ("X" if check == 10 else str(check)):
        return False
    try:
        year = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14])).year
    except ValueError:
        return False
    county = _lookup("cn/loc", "county", number[:6])
    if county is None:
        return False
    for name in county.split(","):
        if not name.startswith("["):
            return True
        start, end = name[1:].split("]")[0].split("-")
        if (not start or year >= int(start)) and (not end or year <= int(end)):
            return True
    return False


def imsi(number: str) -> bool:
    """``stdnum.imsi.is_valid``: 14 or 15 digits starting with a listed MCC."""
    if not number.isascii():
        from stdnum import imsi as std

        return std.is_valid(number)
    number = number.replace(" ", "").replace("-", "").strip().upper()
    if not _digits_only(number) or len(number) not in (14, 15):
        return False
    return len(_info("imsi", "operator", number)) >= 2


def carrier_mcc_mnc(code: str) -> bool:
    """Whether a 5- or 6-digit ``code`` is an MCC followed by an MNC listed
    with an operator in python-stdnum's IMSI table: the MNC matched for
    ``code`` padded to an IMSI's 15 digits is exactly the rest of ``code``."""
    parts = _info("imsi", "operator", code + "0" * (15 - len(code)))
    return len(parts) == 3 and parts[1][0] == code[3:] and bool(parts[1][1])


# ---------------------------------------------------------------- databases

# (length, low, high, the kept property or None, children) as numdb.PrefixInfo
_Prefix = tuple


@functools.lru_cache(maxsize=None)
def _database(name: str, prop: str) -> list:
    """python-stdnum's ``name`` database, each entry keeping only ``prop``:
    its top-level entries (MCCs, provinces), each with its lines below
    parsed only when a look-up first reaches them (:class:`_Block`: a
    process meets a few carriers' countries and a few provinces, and
    parsing every line cost 12 ms and 20 ms)."""
    path = _data_file(name)
    if path is None:  # (python-stdnum installed some other way: its own reader)
        from stdnum import numdb

        def convert(prefixes):
            return [(length, low, high, props.get(prop), convert(children)) for length, low, high, props, children in prefixes]

        return convert(numdb.get(name).prefixes)
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    root: list = []
    # (a match's start in "\n" + text is where its line starts in text)
    tops = [m.start() for m in _TOP_LINE.finditer("\n" + text)]
    for at, end in zip(tops, tops[1:] + [len(text)]):
        head, _, rest = text[at:end].partition("\n")
        _add(root, head, _Block(rest, prop), prop + '="')
    return root


# the newline before a line that starts an entry at the top level (not
# indented, not a comment); a literal first, so the search is fast
_TOP_LINE = rxcache.compile(r"\n(?=[^ #\n])")


class _Block:
    """The lines under one top-level entry, parsed on first use (as
    numdb.read: a line is a child of the last line less indented)."""

    __slots__ = ("_text", "_prop", "_entries")

    def __init__(self, text: str, prop: str) -> None:
        self._text = text
        self._prop = prop
        self._entries: list | None = None

    def entries(self) -> list:
        if self._entries is None:
            key = self._prop + '="'
            root: list = []
            stack: list[tuple[int, list]] = [(0, root)]
            for line in self._text.splitlines():
                if not line or line[0] == "#" or line.isspace():
                    continue
                body = line.lstrip(" ")
                indent = len(line) - len(body)
                while stack[-1][0] >= indent and len(stack) > 1:
                    stack.pop()
                children: list = []
                _add(stack[-1][1], body, children, key)
                stack.append((indent, children))
            self._entries = root
            self._text = ""
        return self._entries


def _add(siblings: list, body: str, children: Any, key: str) -> None:
    """Appends the entries of one line (``body``: its ranges and
    properties, without the indent), sharing ``children``."""
    ranges, _, rest = body.partition(" ") if " " in body else (body.strip(), "", "")
    at = rest.find(key)
    while at > 0 and not rest[at - 1].isspace():  # (a longer name ending in prop)
        at = rest.find(key, at + 1)
    value = rest[at + len(key) : rest.index('"', at + len(key))] if at >= 0 else None
    for rng in ranges.split(","):
        low, _, high = rng.partition("-")
        siblings.append((len(low), low, high or low, value, children))


def _data_file(name: str) -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("stdnum")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], name + ".dat")
    return path if os.path.isfile(path) else None


def _info(name: str, prop: str, number: str) -> list[tuple[str, str | None]]:
    """``numdb.get(name).info(number)`` with each part's ``prop`` (merged
    as numdb merges properties: the last listed value of the shortest
    matching prefixes)."""
    out: list[tuple[str, str | None]] = []
    prefixes = _database(name, prop)
    while number:
        part = number
        value = None
        following: list = []
        for length, low, high, v, children in prefixes:
            if len(part) >= length and low <= part[:length] <= high:
                if length < len(part):  # only what the shortest match says
                    part = part[:length]
                    value = None
                    following = []
                if v is not None:
                    value = v
                following.extend(children.entries() if children.__class__ is _Block else children)
        out.append((part, value))
        number = number[len(part):]
        prefixes = following
    return out


def _lookup(name: str, prop: str, number: str) -> str | None:
    """``prop`` as numdb's info() of ``number`` gives it, merged over its parts."""
    value = None
    for _, v in _info(name, prop, number):
        if v is not None:
            value = v
    return value
