"""Canaries: the tester's own identity, found in any encoding an app uses.

The canary file (CONTRACT.md) maps a category to a value or a list of values.
Every value is expanded once, at load time, into the forms apps really send
(E.164 and national phone forms, lower-cased e-mail, ...) and every form into
its encodings:

========================  =========================================  ===============
variant                   example (for ``ab@x.io``)                  ``encoding``
========================  =========================================  ===============
plain, lower/upper case   ``ab@x.io``, ``AB@X.IO``                   ``None``
URL-encoded               ``ab%40x.io`` (quote, quote_plus, lower)   ``url``
base64 std/url-safe       ``YWJAeC5pbw``; padded or not; and the     ``base64``
                          three alignment-offset cores, so the value
                          is found inside a larger base64 blob
hex (either case)         ``616240782e696f``                         ``hex``
MD5/SHA-1/SHA-256 hex     ``7d4b...`` either case                    ``md5`` ...
digest in base64          std/url-safe, padded or not                ``sha256+base64``
========================  =========================================  ===============

Coordinates (``location: {lat: .., lon: ..}``) become "lat,lon" / "lon,lat" /
"lat;lon" / "lat lon" strings truncated and rounded to 3..6 decimals; a flow
that carries the latitude and the longitude as two numeric fields is matched
with a tolerance of 0.001 degree (truncation to 3 decimals).

All variants go into ONE multi-literal matcher, searched once per exchange's
decoded fields and once per raw body; the cost does not grow with the number
of canaries or variants. Three engines give the same overlapping matches
(every occurrence of every variant), fastest first, each used when installed:
Hyperscan (``hyperscan``: SIMD literal matching, ~15x faster than the
others on bodies, ~60 ms to compile at start-up), ahocorasick_rs, and
pyahocorasick (always there). ``PRIVAUDIT_CANARY_ENGINE=hyperscan|rs|pyaho``
picks one (tests compare them). Matches of plain, URL and hex variants must not be
glued to more letters or digits (so "356938035643809" is not reported inside a
longer number); base64 cores are by nature inside a blob and are not checked.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import string
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import quote, quote_plus

import ahocorasick
import phonenumbers

try:  # the Rust automaton (a DFA with a SIMD prefilter), 2-3x faster; optional
    import ahocorasick_rs
except ImportError:  # pragma: no cover - depends on the environment
    ahocorasick_rs = None
import yaml

from privaudit import rxcache
from privaudit.errors import RuleError, yaml_location
from privaudit.model import CATEGORIES

from .validators import parse_phone

__all__ = ["Canary", "Canaries", "CanaryHit", "load_canaries", "canaries_from_mapping"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ASCII_ALNUM = frozenset(string.ascii_letters + string.digits)
_EMAIL = rxcache.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MIN_LEN = 4
_MIN_CORE = 8
_COORD_TOLERANCE = 0.001 + 1e-9
_DECIMAL_NUMBER = rxcache.compile(r"^-?\d{1,3}\.\d{3,}$")

EXAMPLE = """\
email: tester.one@example.org
phone: "+82 10-1234-5678"
name: ["Hong Gildong", "홍길동"]
device_id: ["f0e1d2c3b4a59687", "356938035643809"]
location: {lat: 37.5665, lon: 126.9780}"""


@dataclass(frozen=True, slots=True)
class Canary:
    """One value from the canary file."""

    category: str
    value: str
    """As written ("lat,lon" for a location)."""
    lat: float | None = None
    lon: float | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class CanaryHit:
    canary: Canary
    encoding: str | None
    """The variant's encoding ("md5", "base64", "url", "sha256+base64"...), None for plain."""
    text: str
    """The matched text as it appears in the haystack."""
    start: int
    rank: int
    """Lower is a plainer variant; used to pick one hit per location."""


# ------------------------------------------------------------------- loading


def _error(where: str, msg: str) -> RuleError:
    return RuleError(f"{where}: {msg}\n  a correct canary file looks like:\n" + "\n".join("    " + ln for ln in EXAMPLE.splitlines()))


def load_canaries(path: str | Path) -> Canaries:
    """Read and check a canary file. Errors are :class:`RuleError` with file:line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuleError(f"{p}: cannot read the canary file: {e}") from e
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e)
        raise _error(yaml_location(str(p), e), f"not valid YAML: {problem}") from e
    return canaries_from_mapping(data, str(p), root)


def _line_of(root, key: str, index: int | None = None) -> int | None:
    if not isinstance(root, yaml.MappingNode):
        return None
    for k, v in root.value:
        if k.value == key:
            if index is not None and isinstance(v, yaml.SequenceNode) and index < len(v.value):
                return v.value[index].start_mark.line + 1
            return (v if index is None else k).start_mark.line + 1
    return None


def canaries_from_mapping(data, path: str = "<canaries>", root=None) -> Canaries:
    """Build :class:`Canaries` from the parsed YAML mapping (tests, tools)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _error(f"{path}:1", "the canary file must be a mapping from category to value(s)")
    out: list[Canary] = []
    for cat, values in data.items():
        cat_line = _line_of(root, cat)
        where = f"{path}:{cat_line}" if cat_line else path
        if cat not in CATEGORIES:
            raise _error(where, f"unknown category {cat!r} (known: {', '.join(CATEGORIES)})")
        seq = values if isinstance(values, list) else [values]
        for i, v in enumerate(seq):
            line = _line_of(root, cat, i if isinstance(values, list) else None)
            out.append(_canary(cat, v, f"{path}:{line}" if line else where, line))
    return Canaries(out)


def _canary(cat: str, v, where: str, line: int | None) -> Canary:
    if cat == "location":
        if not isinstance(v, dict) or set(v) != {"lat", "lon"}:
            raise _error(where, "a location canary is a mapping {lat: <number>, lon: <number>}")
        try:
            lat, lon = float(v["lat"]), float(v["lon"])
        except (TypeError, ValueError):
            raise _error(where, "lat and lon must be numbers") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise _error(where, f"lat {lat} / lon {lon} out of range")
        return Canary(cat, f"{v['lat']},{v['lon']}", lat, lon, line)
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise _error(where, f"a {cat} canary must be a string, got {type(v).__name__}")
    s = str(v).strip()
    if len(s.encode("utf-8")) < _MIN_LEN:
        raise _error(where, f"canary value {s!r} is too short (at least {_MIN_LEN} bytes), it would match everywhere")
    if cat == "email" and not _EMAIL.match(s):
        raise _error(where, f"{s!r} is not an e-mail address")
    if cat == "phone" and parse_phone(s) is None:
        raise _error(where, f"{s!r} is not a valid phone number (write it in E.164, e.g. +82 10-1234-5678)")
    return Canary(cat, s, line=line)


# ------------------------------------------------------------------ variants


def plain_forms(c: Canary) -> list[str]:
    """The textual forms apps send the value in, before any encoding."""
    v = c.value
    if c.category == "email":
        forms = [v, v.lower()]
    elif c.category == "phone":
        n = parse_phone(v)
        e164 = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
        intl = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        national = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.NATIONAL)
        nsn = phonenumbers.national_significant_number(n)
        forms = [
            v, e164, e164[1:], intl, intl.replace(" ", "-"), intl.replace("-", " "), intl.replace("-", ""),
            national, re.sub(r"\D", "", national), national.replace("-", " "), nsn,
            f"{n.country_code}-{nsn}", f"+{n.country_code}-{nsn}", f"+{n.country_code} {nsn}",
        ]
    elif c.category == "name" and " " in v:
        forms = [v, v.replace(" ", ""), " ".join(reversed(v.split()))]
    else:
        forms = [v]
    return list(dict.fromkeys(f for f in forms if len(f.encode("utf-8")) >= _MIN_LEN))


def _coord_strings(x: float, places: int) -> set[str]:
    try:
        d = Decimal(repr(x))
    except InvalidOperation:
        return set()
    q = Decimal(1).scaleb(-places)
    out = {format(d.quantize(q, rounding=r), "f") for r in (ROUND_DOWN, ROUND_HALF_UP, ROUND_HALF_EVEN)}
    out.add(f"{x:.{places}f}")
    return out


def _b64_cores(data: bytes) -> list[tuple[str, str]]:
    """(alphabet, text) of the base64 of ``data`` at the three alignments.

    Inside a larger blob, ``data`` starts at byte offset 0, 1 or 2 of a 3-byte
    group; the characters that depend only on ``data`` are those whose 6 bits
    lie wholly inside it: from ceil(8*o/6) to floor(8*(o+n)/6).
    """
    out = []
    n = len(data)
    for o in range(3):
        enc = base64.b64encode(b"\0" * o + data).decode("ascii").rstrip("=")
        start = -(-8 * o // 6)
        end = (8 * (o + n)) // 6
        core = enc[start:end]
        if len(core) >= _MIN_CORE:
            out.append(core)
    return out


def variants(c: Canary) -> list[tuple[str, str | None, bool]]:
    """Every (text, encoding, bounded) the canary is searched as; plainest first.

    ``bounded``: the match must not be glued to ASCII letters/digits.
    """
    out: list[tuple[str, str | None, bool]] = []
    if c.category == "location":
        # Each number at any precision from 3 to 6 decimals (apps format lat
        # and lon independently), either order, four separators.
        lats = sorted({repr(c.lat)} | {t for p in range(3, 7) for t in _coord_strings(c.lat, p)})
        lons = sorted({repr(c.lon)} | {t for p in range(3, 7) for t in _coord_strings(c.lon, p)})
        for a in lats:
            for b in lons:
                for sep in (",", ", ", ";", " "):
                    out.append((f"{a}{sep}{b}", None, True))
                    out.append((f"{b}{sep}{a}", None, True))
        return out
    forms = plain_forms(c)
    for f in forms:
        for t in (f, f.lower(), f.upper(), f.title()):
            out.append((t, None, True))
    for f in forms:
        for t in (quote(f, safe=""), quote(f), quote_plus(f)):
            if t != f:
                out.append((t, "url", True))
                out.append((re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), t), "url", True))
    for f in forms:
        raw = f.encode("utf-8")
        for core in _b64_cores(raw):
            out.append((core, "base64", False))
            out.append((core.replace("+", "-").replace("/", "_"), "base64", False))
        out.append((raw.hex(), "hex", True))
        out.append((raw.hex().upper(), "hex", True))
    for f in forms:
        raw = f.encode("utf-8")
        for algo in ("md5", "sha1", "sha256"):
            digest = hashlib.new(algo, raw).digest()
            out.append((digest.hex(), algo, True))
            out.append((digest.hex().upper(), algo, True))
            b = base64.b64encode(digest).decode("ascii")
            for t in (b, b.rstrip("="), base64.urlsafe_b64encode(digest).decode("ascii"), base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")):
                out.append((t, f"{algo}+base64", False))
    return out


# ------------------------------------------------------------------ matching


def _hyperscan_matcher(words: list[str]):
    """A function text -> [(index of the last character, word index)] of every
    occurrence of every word (overlapping, ordered by end, then word), on
    Hyperscan; None if Hyperscan is not installed or will not compile them.

    Hyperscan matches bytes: the text is searched as UTF-8 (surrogates
    passed through, as field values decoded with surrogateescape carry
    them). A UTF-8 word can only match at a character boundary, so the
    matches are the same as on the text; their byte offsets are turned back
    into character offsets when the text is not ASCII.
    """
    try:
        import hyperscan
    except Exception:  # not installed, or its library will not load here
        return None
    try:
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        pats = [w.encode("utf-8", "surrogatepass") for w in words]
        db.compile(expressions=pats, ids=list(range(len(pats))), elements=len(pats), flags=[0] * len(pats), literal=True)
        scratch = hyperscan.Scratch(db)
    except Exception:  # pragma: no cover - a Hyperscan that refuses: the automaton does the work
        return None
    scan = db.scan

    def on_match(i: int, _start: int, end: int, _flags: int, out: list) -> None:
        out.append((end, i))

    def find(text: str) -> list[tuple[int, int]]:
        data = text.encode("utf-8", "surrogatepass")
        out: list[tuple[int, int]] = []
        scan(data, match_event_handler=on_match, context=out, scratch=scratch)
        if not out:
            return out
        out.sort()
        if len(data) == len(text):  # ASCII: byte offsets are character offsets
            return [(end - 1, i) for end, i in out]
        return [(len(data[:end].decode("utf-8", "surrogatepass")) - 1, i) for end, i in out]

    return find


class Canaries:
    """Compiled canaries: one automaton over every variant of every value."""

    def __init__(self, canaries: list[Canary]) -> None:
        self.canaries: tuple[Canary, ...] = tuple(canaries)
        self.coords = tuple(c for c in self.canaries if c.category == "location")
        self._automaton = ahocorasick.Automaton()
        seen: set[str] = set()
        words: list[str] = []
        self._payloads: list[tuple[int, str | None, bool, int, int]] = []
        rank = 0
        for ci, c in enumerate(self.canaries):
            for text, enc, bounded in variants(c):
                if text in seen:
                    continue
                seen.add(text)
                payload = (ci, enc, bounded, len(text), rank)
                self._automaton.add_word(text, payload)
                words.append(text)
                self._payloads.append(payload)
                rank += 1
        self.variant_count = len(seen)
        self._empty = not seen
        self._rs = None
        self._hs = None
        self.engine = "pyaho"
        if seen:
            self._automaton.make_automaton()
            want = os.environ.get("PRIVAUDIT_CANARY_ENGINE", "")
            if want in ("", "hyperscan"):
                self._hs = _hyperscan_matcher(words)
                if self._hs is not None:
                    self.engine = "hyperscan"
            if self._hs is None and ahocorasick_rs is not None and want in ("", "rs"):
                # same words, same (overlapping, standard) matches: every
                # occurrence of every variant, as pyahocorasick's iter()
                self._rs = ahocorasick_rs.AhoCorasick(words)
                self.engine = "rs"

    def __len__(self) -> int:
        return len(self.canaries)

    def find(self, text: str) -> list[CanaryHit]:
        """Every canary variant in ``text``, in order of where it ends (a
        list: most texts hold none, and an empty list costs nothing)."""
        if self._empty or not text:
            return []
        matches = self._matches(text)
        if not matches:
            return []
        n = len(text)
        out = []
        for end, (ci, enc, bounded, length, rank) in matches:
            start = end - length + 1
            if bounded:
                t = text[start : end + 1]
                if t[0] in _ASCII_ALNUM and start > 0 and text[start - 1] in _ASCII_ALNUM:
                    continue
                if t[-1] in _ASCII_ALNUM and end + 1 < n and text[end + 1] in _ASCII_ALNUM:
                    continue
            out.append(CanaryHit(self.canaries[ci], enc, text[start : end + 1], start, rank))
        return out

    def _matches(self, text: str):
        """(index of the last character, payload) of every variant occurrence."""
        payloads = self._payloads
        if self._hs is not None:
            return [(end, payloads[i]) for end, i in self._hs(text)]
        if self._rs is not None:
            try:
                found = self._rs.find_matches_as_indexes(text, overlapping=True)
            except UnicodeEncodeError:
                # a lone surrogate ("\udc80" in a JSON string, a header read
                # with surrogateescape): not UTF-8, which the Rust automaton
                # needs; pyahocorasick takes any str
                return list(self._automaton.iter(text))
            return [(stop - 1, payloads[i]) for i, _start, stop in found]
        return list(self._automaton.iter(text))

    def coord_parts(self, value: str) -> list[tuple[Canary, str]]:
        """For a numeric field: which location canaries' "lat" or "lon" it is
        (within 0.001 degree, written with at least 3 decimals)."""
        if not self.coords or not _DECIMAL_NUMBER.match(value):
            return []
        x = float(value)
        out = []
        for c in self.coords:
            if abs(x - c.lat) <= _COORD_TOLERANCE:
                out.append((c, "lat"))
            elif abs(x - c.lon) <= _COORD_TOLERANCE:
                out.append((c, "lon"))
        return out
