"""Decoding: one exchange -> the leaf fields the rules look at, with provenance.

Every value the app sent is turned into :class:`Field` objects, each saying
*where* it was (``location``), *how* it had to be decoded to be read
(``encoding``), under which key, and what it says. Layers are peeled once per
exchange and the fields shared by every rule and by the canary matcher.

Locations read as ``<part> <layer> <layer> ...``::

    request.path
    request.query device_id
    request.query data $.user.phone          (a JSON string in a query value)
    request.header User-Agent
    request.cookie sid
    request.body $.header.openudid
    request.body form[phone]
    request.body multipart[meta] $.x
    request.body ndjson[2] $.event
    request.body strings[4]                  (a printable run in a binary body)
    request.body protobuf 1.3                (field 3 of the message in field 1)
    request.body grpc[0] protobuf 2          (gRPC / gRPC-web frame 0)
    request.body sse[1] $.text               (a "data:" line of an SSE-framed body)
    request.body multipart[file] content-type  (what a file part is: audio/mp4...)
    websocket[3] $.content
    websocket[3] $[1].text                   (Socket.IO event 42["send", {...}])
    websocket[3] stomp $.content             (the body of a STOMP frame)

``encoding`` is the chain of decodings beyond the part's natural one (a JSON
body or a query string is not "encoded"): ``url`` (percent-encoding left after
the natural decoding), ``json`` (JSON inside a string), ``base64`` (standard or
URL-safe, padded or not), ``hex``, ``jwt``, ``gzip``, ``deflate``, ``zstd``, ``form`` (a
query string inside a value), joined with ``+`` in the order they were peeled:
``base64+gzip+json``. Form and query values are read as UTF-8, else CP949 or
GB18030 (Korean and Chinese payment forms still post those).

Protobuf is read without a schema (wire format only: varints, fixed32/64
as floats where plausible, length-delimited fields tried as a nested
message, else as UTF-8 text) for ``application/x-protobuf``/``grpc``
content types, and for untyped binary bodies when that yields text fields.

Bounds keep hostile or huge traffic cheap: nesting depth, fields per exchange,
bytes parsed per body, bytes produced by decompression. When one is hit the
decoder stops going deeper there and counts it in ``stats["bounds_hit"]``.

The JSON walk and the plain-string case of ``_string`` (most of the decoder's
time) also exist in C (``_walk.c``, compiled at install by hatch_build.py);
where it is built a Decoder uses it, and it calls back into the Python methods
here for every string that might decode further and every unusual object.
Both give the same Fields in the same order and the same counters (tested);
``PRIVAUDIT_PURE_PYTHON=1`` or ``Decoder(native=False)`` runs Python only.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import os
import re
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, fields
from functools import lru_cache
from types import MethodType
from urllib.parse import parse_qsl, unquote, unquote_to_bytes, urlsplit

from privaudit import rxcache
from privaudit.model import Exchange, Message

__all__ = ["Bounds", "Field", "RawText", "Decoder", "normalize_key", "WALKER"]


@dataclass(frozen=True, slots=True)
class Bounds:
    """Limits on how much work decoding one exchange may do."""

    max_depth: int = 6
    """Nested decodings (JSON in base64 in a query value is depth 2)."""
    max_fields: int = 5000
    """Fields produced per exchange."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Bytes of one body (or WebSocket message) parsed structurally."""
    max_inflate_bytes: int = 8 * 1024 * 1024
    """Bytes one gzip/deflate stream may expand to."""
    max_strings: int = 500
    """Printable runs taken from one binary body."""
    max_nesting: int = 64
    """JSON objects/arrays inside each other within one layer."""
    max_protobuf_fields: int = 2000
    """Protobuf fields read from one message (all nesting levels)."""


# Not frozen: a frozen dataclass pays an object.__setattr__ call per
# attribute in __init__, three times the cost of building a Field, and the
# decoder builds one per value (treat Fields as read-only all the same).
@dataclass(slots=True, eq=False)
class Field:
    """One value the app sent, with where and how it was found (read-only)."""

    side: str
    """"request" (incl. client WebSocket messages) or "response"."""
    location: str
    """Where, e.g. "request.body $.header.openudid" (see the module docstring)."""
    encoding: str | None
    """The decoding chain beyond the part's natural one, e.g. "base64+json"."""
    key: str
    """The key name as sent ("" for a bare value such as a text body)."""
    nkey: str
    """:func:`normalize_key` of ``key``: what key rules match."""
    value: str
    """The value as text (numbers as written; lists as JSON)."""
    keypath: str = ""
    """Normalised key path inside the innermost JSON layer, e.g. "$.messages[].content"."""
    siblings: frozenset[str] = frozenset()
    """Normalised keys of the object this value sits in (itself included)."""
    items: tuple | None = None
    """For a list: its items, each a str (scalar) or a dict nkey->str (object)."""


@dataclass(frozen=True, slots=True)
class RawText:
    """A whole body, URL or message as text, for the canary matcher's raw pass."""

    side: str
    location: str
    text: str
    covers: tuple[str, ...] = ()
    """Field locations this text contains (default: those under ``location``)."""


#: How many entries each memo of the detection engine keeps before it starts
#: over (memos are cleared whole when full: cheap, and the vocabulary of keys
#: and repeated values an app sends refills them at once). Small enough that
#: the memory an audit needs stops growing within the first few thousand flows.
MEMO_LIMIT = 8192

_KEY_STRIP = rxcache.compile(r"[\W_]+")
_HEADER_X = rxcache.compile(r"^x[-_]")
_BRACKET = rxcache.compile(r"\[([^\[\]]*)\]")


@lru_cache(maxsize=4096)
def normalize_key(key: str, header: bool = False) -> str:
    """The form key rules match: lower case, separators removed.

    ``deviceId``, ``device_id``, ``Device-ID`` all read ``deviceid``; headers
    also lose a vendor ``X-`` prefix (``X-Device-Id`` -> ``deviceid``); PHP-style
    form keys keep their last bracket (``user[phone]`` -> ``phone``).
    """
    k = key.lower()
    if header:
        k = _HEADER_X.sub("", k)
    if "[" in k:
        inner = [p for p in _BRACKET.findall(k) if p and not p.isdigit()]
        if inner:
            k = inner[-1]
        else:
            k = k.split("[", 1)[0]
    return _KEY_STRIP.sub("", k)


# Protocol plumbing that carries nothing about the user; skipping it saves a
# field per header per flow. (Referer, sec-ch-ua-*, custom X- headers stay.)
_SKIP_HEADERS = frozenset(
    {
        "accept", "accept-encoding", "accept-charset", "connection", "content-length", "host", "content-type",
        "cache-control", "pragma", "upgrade", "te", "keep-alive", "transfer-encoding", "expect", "priority",
        "if-none-match", "if-modified-since", "range", "sec-fetch-dest", "sec-fetch-mode", "sec-fetch-site",
        "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
    }
)
_SIMPLE_KEY = rxcache.compile(r"^[A-Za-z_][\w-]*$")
_PCT = rxcache.compile(r"%[0-9A-Fa-f]{2}")
# Unambiguous on purpose (each "&" segment splits one way only): an ambiguous
# form regex backtracks exponentially on a long value that ends in a space.
_FORMISH = rxcache.compile(r"^[^=&\s]+=[^&\s]*(?:&[^=&\s]+(?:=[^&\s]*)?)+$")
_B64 = rxcache.compile(r"^[A-Za-z0-9+/_-]{12,}={0,2}$")
_HEX = rxcache.compile(r"^(?:[0-9a-fA-F]{2}){8,}$")
_JWT = rxcache.compile(r"^eyJ[\w-]+\.(eyJ[\w-]+)\.[\w-]*$")
_CONTROL = rxcache.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_STOMP_FIRST = frozenset("SMC")
_STOMP = rxcache.compile(r"^(?:SEND|MESSAGE|CONNECT|STOMP|SUBSCRIBE)\r?\n(?:[^\n:]+:[^\n]*\r?\n)*\r?\n")
_SOCKETIO = rxcache.compile(r"^\d{1,4}(?=[\[{])")
_APP_ROLES = frozenset({"system", "developer"})
_RUNS = rxcache.compile(r"[^\x00-\x1f\x7f\ufffd]{6,}")


@lru_cache(maxsize=4096)
def _json_step(key: str) -> str:
    return f".{key}" if _SIMPLE_KEY.match(key) else f"[{json.dumps(key, ensure_ascii=False)}]"


_KEY_INFO: dict[str, tuple[str, str, str]] = {}


_SHAPES: dict[tuple, tuple[tuple[tuple[str, str, str, str], ...], frozenset[str]]] = {}


def _object_shape(shape: tuple) -> tuple[tuple[tuple[str, str, str, str], ...], frozenset[str]]:
    """Per key of a JSON object (keys in order): (key, normalised key,
    location step, keypath step), and the set of normalised keys (the
    siblings). Memoised per key tuple: objects of one shape (events, device
    blocks) come back in every flow, and sharing the set lets its hash be
    reused too."""
    infos = tuple((k,) + _key_info(k) for k in (k if type(k) is str else str(k) for k in shape))
    known = (infos, frozenset([i[1] for i in infos]))
    # only str keys (all JSON has): 1, 1.0 and True are one dict key but
    # three different names
    if all(type(k) is str for k in shape):
        if len(_SHAPES) >= MEMO_LIMIT:
            _SHAPES.clear()
        _SHAPES[shape] = known
    return known


def _key_info(key: str) -> tuple[str, str, str]:
    """(normalised key, location step, keypath step) of a JSON object key,
    memoised: traffic repeats a small vocabulary of keys."""
    info = _KEY_INFO.get(key)
    if info is None:
        if len(_KEY_INFO) >= 4096:
            _KEY_INFO.clear()
        nk = normalize_key(key)
        info = _KEY_INFO[key] = (nk, _json_step(key), "." + nk)
    return info


def _printable_text(data: bytes) -> str | None:
    """``data`` as text if it is UTF-8 that a person or a parser could read."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or _count_controls(text) > len(text) // 50:
        return None
    return text


def _count_controls_py(text: str) -> int:
    """How many characters of ``text`` _CONTROL matches (_walk.c counts faster)."""
    return len(_CONTROL.findall(text))


_count_controls = _count_controls_py


def _b64decode(s: str) -> bytes | None:
    t = s.rstrip("=")
    if len(t) % 4 == 1:
        return None
    t += "=" * (-len(t) % 4)
    try:
        if "-" in t or "_" in t:
            return base64.urlsafe_b64decode(t)
        return base64.b64decode(t, validate=True)
    except (binascii.Error, ValueError):
        return None


# Legacy charsets apps still percent-encode form values in: Korean PG and
# portal forms post EUC-KR/CP949 (KG Inicis, KCP), Chinese ones GBK/GB18030.
_FORM_CHARSETS = ("utf-8", "cp949", "gb18030")


def parse_form(qs: str) -> list[tuple[str, str]]:
    """``k=v&...`` pairs, percent-decoded in the first charset that decodes
    every pair cleanly (UTF-8, then CP949, then GB18030)."""
    if "%" not in qs and "+" not in qs:
        # nothing to decode: what parse_qsl(keep_blank_values=True) returns
        # for such a string, without its per-pair unquoting
        return [(k, v) for k, _, v in (p.partition("=") for p in qs.split("&") if p)]
    for cs in _FORM_CHARSETS:
        try:
            return parse_qsl(qs, keep_blank_values=True, encoding=cs, errors="strict")
        except UnicodeDecodeError:
            continue
    return parse_qsl(qs, keep_blank_values=True)


def _unquote_any(s: str) -> str:
    """Percent-decoding that also reads CP949/GB18030 bytes (see ``parse_form``)."""
    try:
        return unquote(s, errors="strict")
    except UnicodeDecodeError:
        pass
    raw = unquote_to_bytes(s)
    for cs in _FORM_CHARSETS[1:]:
        try:
            return raw.decode(cs)
        except UnicodeDecodeError:
            continue
    return unquote(s)


def _bracket_path(key: str) -> str:
    """Keypath of a PHP/Rails-style form key: ``card[name]`` -> ``$.card.name``,
    ``items[0][sku]`` -> ``$.items[].sku`` (so path rules see the parent)."""
    head, _, rest = key.partition("[")
    out = "$." + normalize_key(head)
    for p in _BRACKET.findall("[" + rest):
        out += "[]" if not p or p.isdigit() else "." + normalize_key(p)
    return out


# Server-sent-event framing ("data: {...}" lines) some clients also POST.
_SSE = rxcache.compile(r"^(?:(?:data|event|id|retry):)", re.M)
_SSE_DATA = rxcache.compile(r"^data:\s?(.*)$", re.M)

# gRPC / gRPC-web: each message is a 5-byte prefix (flags, big-endian length).
_GRPC_FRAME = struct.Struct(">BI")
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_AUDIO_EXT = rxcache.compile(r"\.(m4a|mp3|wav|ogg|oga|opus|amr|aac|flac|webm|3gp|caf|pcm|silk|spx)$", re.I)


# Container signatures of the recordings phones make (voice notes, dictation):
# WAV, Ogg/Opus, MP3 (ID3 or a frame sync), AMR, SILK (WeChat/QQ voice), FLAC,
# WebM/Matroska, ISO-BMFF audio brands (M4A/AAC).
_AUDIO_MAGIC = (
    (b"RIFF", 8, b"WAVE", "audio/wav"), (b"OggS", 0, b"", "audio/ogg"), (b"ID3", 0, b"", "audio/mpeg"),
    (b"#!AMR", 0, b"", "audio/amr"), (b"#!SILK", 0, b"", "audio/silk"), (b"\x02#!SILK", 0, b"", "audio/silk"),
    (b"fLaC", 0, b"", "audio/flac"), (b"\x1a\x45\xdf\xa3", 0, b"", "audio/webm"),
)
_AUDIO_NAME = rxcache.compile(r"(?:audio|voice|voicenote|voicemsg|speech|recording|record|sound|wav|pcm|amr)(?:file|data|blob)?")


def _sniff_audio(head: bytes) -> str | None:
    for magic, off, second, kind in _AUDIO_MAGIC:
        if head.startswith(magic) and (not second or head[off : off + len(second)] == second):
            return kind
    if head[4:8] == b"ftyp" and head[8:11] in (b"M4A", b"M4B", b"3gp", b"3g2"):
        return "audio/mp4"
    if head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xf1", b"\xff\xf9"):
        return "audio/mpeg" if head[1] in (0xFB, 0xF3, 0xF2) else "audio/aac"
    return None


class _NotProto(Exception):
    pass


class _ProtoBudget(_NotProto):
    """More fields than ``Bounds.max_protobuf_fields``."""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(data) or shift > 63:
            raise _NotProto
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def parse_protobuf(data: bytes, budget: list[int]) -> list[tuple[int, int, object]]:
    """One schema-less protobuf message: [(field number, wire type, value)],
    where value is an int (varint/fixed) or bytes (length-delimited). Raises
    ``_NotProto`` unless ``data`` is exactly a sequence of well-formed fields
    (groups, wire types 3/4, are deprecated and not accepted)."""
    out = []
    i, n = 0, len(data)
    while i < n:
        tag, i = _varint(data, i)
        num, wt = tag >> 3, tag & 7
        if num == 0 or num > 536_870_911:
            raise _NotProto
        if wt == 0:
            v, i = _varint(data, i)
        elif wt == 2:
            ln, i = _varint(data, i)
            if i + ln > n:
                raise _NotProto
            v, i = data[i : i + ln], i + ln
        elif wt == 1:
            if i + 8 > n:
                raise _NotProto
            v, i = data[i : i + 8], i + 8
        elif wt == 5:
            if i + 4 > n:
                raise _NotProto
            v, i = data[i : i + 4], i + 4
        else:
            raise _NotProto
        budget[0] -= 1
        if budget[0] < 0:
            raise _ProtoBudget
        out.append((num, wt, v))
    return out


def _fixed_number(raw: bytes) -> str | None:
    """A fixed32/fixed64 as the float it most plausibly is (coordinates are
    doubles in most location protos), or None."""
    (v,) = struct.unpack("<d" if len(raw) == 8 else "<f", raw)
    if v != v or v in (float("inf"), float("-inf")) or not (1e-4 < abs(v) < 1e7):
        return None
    return repr(round(v, 7))


_NO_KEYS: frozenset[str] = frozenset()


def _json_text_fn():
    """``json.dumps(x, ensure_ascii=False)`` for the JSON values the decoder
    parsed: the encoder the stdlib's one-shot ``encode`` builds per call
    (``c_make_encoder``, same arguments), built once here. It keeps no
    circular-reference markers: parsed JSON cannot hold a cycle, and markers
    left over by a failed call would make the next ones fail."""
    enc = json.JSONEncoder(ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has _json
        return enc.encode
    one_shot = make(None, enc.default, json.encoder.encode_basestring, None, enc.key_separator, enc.item_separator,
                    False, False, True)
    join = "".join

    def text(o) -> str:
        return join(one_shot(o, 0))

    return text


_JSON_TEXT = _json_text_fn()


# What _message does with a header: read it as a field, skip it, or read
# its cookies. Memoised per (part, name): the same few names come back in
# every flow.
_FIELD, _SKIP, _COOKIE, _SET_COOKIE = "field", "skip", "cookie", "set-cookie"
_HEADER_INFO: dict[tuple[str, str], tuple[str, str, str]] = {}


def _header_info(part: str, name: str) -> tuple[str, str, str]:
    """(what to do, location, normalised key) of header ``name`` in ``part``."""
    lname = name.lower()
    if lname in ("cookie", "set-cookie"):
        info = (_SET_COOKIE if lname == "set-cookie" else _COOKIE, "", "")
    elif lname.startswith(":") or lname in _SKIP_HEADERS:
        info = (_SKIP, "", "")
    else:
        info = (_FIELD, f"{part}.header {name}", normalize_key(name, header=True))
    if len(_HEADER_INFO) >= MEMO_LIMIT:
        _HEADER_INFO.clear()
    _HEADER_INFO[(part, name)] = info
    return info


class _Budget(Exception):
    """Raised inside the walk when the per-exchange field budget is spent."""


class _Ctx:
    __slots__ = ("side", "encoding", "depth", "enc")

    def __init__(self, side: str, encoding: tuple[str, ...], depth: int) -> None:
        self.side = side
        self.encoding = encoding
        self.depth = depth
        self.enc = "+".join(encoding) or None


class Decoder:
    """Peels an exchange into :class:`Field` objects. Pure: no I/O.

    One instance may be reused for many exchanges; ``stats`` accumulates.
    """

    def __init__(self, bounds: Bounds | None = None, stats: dict | None = None, *, native: bool = True) -> None:
        """``native=False`` walks JSON in Python even where the compiled walk
        (``_walk.c``) is built: same Fields, slower (for tests and benchmarks)."""
        self.bounds = bounds or Bounds()
        if native and _C is not None:
            # the compiled _walk and _string; they call back into the Python
            # methods for what they leave to them (see _walk.c)
            self._walk = MethodType(_C.walk, self)
            self._string = MethodType(_C.string, self)
            self._raw_text = _C.raw_text
        else:
            self._raw_text = RawText
        self.stats = stats if stats is not None else {}
        self.stats.setdefault("bounds_hit", Counter())  # depth, nesting, fields, body_bytes, inflate_bytes, strings, protobuf_fields
        self.stats.setdefault("undecodable_bodies", 0)
        self._out: list[Field] = []
        self._raw: list[RawText] = []
        self._string_memo: dict[tuple, tuple[Field, ...]] = {}

    # ------------------------------------------------------------------ entry

    def exchange(self, ex: Exchange, responses: bool = False) -> tuple[list[Field], list[RawText]]:
        """All fields of ``ex``'s request and client WebSocket messages (and of
        its response and server messages if ``responses``), plus the raw texts."""
        self._out, self._raw = [], []
        try:
            if ex.request is not None or ex.url:
                self._request(ex)
            if responses and ex.response is not None:
                self._message(ex.response, _Ctx("response", (), 0), "response")
            for i, ws in enumerate(ex.websocket):
                if ws.from_client or responses:
                    side = "request" if ws.from_client else "response"
                    self._body(ws.content, "", f"websocket[{i}]", _Ctx(side, (), 0))
                    self._raw.append(self._raw_text(side, f"websocket[{i}]", ws.content.decode("utf-8", "replace")))
        except _Budget:
            self.stats["bounds_hit"]["fields"] += 1
        return self._out, self._raw

    def drop_memos(self) -> None:
        """Forgets the remembered header and cookie fields (see :meth:`_string_once`)."""
        self._string_memo.clear()

    def response(self, ex: Exchange) -> list[Field]:
        """The fields of ``ex``'s response message only (headers, Set-Cookie, body)."""
        self._out, self._raw = [], []
        if ex.response is not None:
            try:
                self._message(ex.response, _Ctx("response", (), 0), "response")
            except _Budget:
                self.stats["bounds_hit"]["fields"] += 1
        return self._out

    # -------------------------------------------------------------- emitting

    def _emit(
        self, ctx: _Ctx, location: str, key: str, nkey: str, value: str,
        keypath: str = "", siblings: frozenset = _NO_KEYS, items: tuple | None = None,
    ) -> None:
        if len(self._out) >= self.bounds.max_fields:
            raise _Budget
        self._out.append(Field(ctx.side, location, ctx.enc, key, nkey, value, keypath, siblings, items))

    def _deeper(self, ctx: _Ctx, step: str) -> _Ctx | None:
        if ctx.depth + 1 > self.bounds.max_depth:
            self.stats["bounds_hit"]["depth"] += 1
            return None
        return _Ctx(ctx.side, ctx.encoding + (step,), ctx.depth + 1)

    # -------------------------------------------------------------- request

    def _request(self, ex: Exchange) -> None:
        ctx = _Ctx("request", (), 0)
        if ex.url:
            parts = urlsplit(ex.url)
            self._raw.append(self._raw_text("request", "request.url", ex.url, ("request.path", "request.query")))
            if parts.path and parts.path != "/":
                path = unquote(parts.path)
                self._emit(ctx, "request.path", "", "", path)
            self._pairs(parse_form(parts.query), ctx, "request.query ")
        if ex.request is not None:
            self._message(ex.request, ctx, "request")

    def _message(self, msg: Message, ctx: _Ctx, part: str) -> None:
        infos = _HEADER_INFO
        for name, value in msg.headers:
            info = infos.get((part, name))
            if info is None:
                info = _header_info(part, name)
            kind, loc, nkey = info
            if kind is _FIELD:
                self._string_once(value, ctx, loc, name, nkey)
            elif kind is not _SKIP:
                self._cookies(value, ctx, part, set_cookie=kind is _SET_COOKIE)
        if msg.body:
            self._raw.append(self._raw_text(ctx.side, f"{part}.body", msg.body[: self.bounds.max_body_bytes].decode("utf-8", "replace")))
            self._body(msg.body, msg.content_type, f"{part}.body", ctx)

    def _cookies(self, header: str, ctx: _Ctx, part: str, set_cookie: bool) -> None:
        pairs = header.split(";")
        if set_cookie:
            pairs = pairs[:1]  # the rest are attributes (Path, Expires, ...)
        for pair in pairs:
            name, sep, value = pair.strip().partition("=")
            if not sep or not name:
                continue
            self._string_once(value.strip().strip('"'), ctx, f"{part}.cookie {name}", name, normalize_key(name))

    def _string_once(self, s: str, ctx: _Ctx, loc: str, key: str, nkey: str) -> None:
        """:meth:`_string` for a header or cookie of the message itself, whose
        fields are remembered: the same User-Agent, tokens and ids come back
        in every flow, and their fields say nothing about the flow."""
        if len(s) < 8 or len(s) > 4096:
            self._string(s, ctx, loc, key, nkey)
            return
        out = self._out
        mk = (ctx.side, ctx.encoding, loc, key, nkey, s)
        done = self._string_memo.get(mk)
        if done is not None and len(out) + len(done) <= self.bounds.max_fields:
            out.extend(done)
            return
        n0 = len(out)
        stats = self.stats
        before = (sum(stats["bounds_hit"].values()), stats["undecodable_bodies"])
        self._string(s, ctx, loc, key, nkey)
        # (only a clean run is replayed: bounds and counters stay exact)
        if (sum(stats["bounds_hit"].values()), stats["undecodable_bodies"]) == before:
            memo = self._string_memo
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[mk] = tuple(out[n0:])

    # ----------------------------------------------------------------- bodies

    def _body(self, data: bytes, ctype: str, loc: str, ctx: _Ctx) -> None:
        if len(data) > self.bounds.max_body_bytes:
            self.stats["bounds_hit"]["body_bytes"] += 1
            data = data[: self.bounds.max_body_bytes]
            truncated = True
        else:
            truncated = False
        inflated = self._inflate(data)
        if inflated is not None:
            step, raw = inflated
            sub = self._deeper(ctx, step)
            if sub is not None:
                self._body(raw, "", loc, sub)
            return
        ctype = ctype.lower()
        if ctype.startswith("multipart/"):
            if self._multipart(data, ctype, loc, ctx):
                return
        if "grpc" in ctype:
            if "grpc-web-text" in ctype:
                raw = _b64decode(data.decode("ascii", "replace").strip())
                if raw is not None and self._grpc(raw, loc, ctx):
                    return
            elif self._grpc(data, loc, ctx):
                return
        if "protobuf" in ctype or "proto" in ctype.split(";")[0].split("/")[-1]:
            if self._protobuf(data, loc, ctx, strict=False):
                return
        if ctype.startswith(("audio/", "video/")) and ctx.depth == 0:
            # a recording sent as the whole body (voice note, dictation)
            self._attachment(ctx, loc, ctype, "", len(data))
            return
        text = None if truncated and "json" in ctype else _printable_text(data)
        if text is None:
            if not truncated and ("octet-stream" in ctype or not ctype) and self._protobuf(data, loc, ctx, strict=True):
                return
            self._strings(data, loc, ctx)
            return
        stripped = text.strip()
        if stripped[:1].isdigit():
            # Socket.IO / Engine.IO frames: a packet type number before the
            # JSON ("42[\"message\", {...}]").
            m = _SOCKETIO.match(stripped)
            if m:
                stripped = stripped[m.end() :]
                if stripped[:1] == "[" and self._socketio_event(stripped, loc, ctx):
                    return
        elif stripped[:1] in _STOMP_FIRST:
            m = _STOMP.match(stripped)
            if m:
                # a STOMP frame (Spring/RabbitMQ chat over WebSocket): the
                # body after the headers is the payload
                frame_body = stripped[m.end() :].rstrip("\x00").strip()
                if frame_body:
                    self._body(frame_body.encode("utf-8"), "", f"{loc} stomp", ctx)
                return
        if stripped[:1] in ("{", "[") or "json" in ctype:
            if self._json_text(stripped, loc, ctx, ndjson=True):
                return
        if "x-www-form-urlencoded" in ctype or _FORMISH.match(stripped):
            self._pairs(parse_form(stripped), ctx, f"{loc} form[", "]")
            return
        if _SSE.match(stripped) and self._sse(stripped, loc, ctx):
            return
        # a bare text body (or text WebSocket message) is read as the
        # message's "body": a chat app's plain-text send is the user's text
        self._string(text, ctx, loc, "", "body", keypath="$")

    def _pairs(self, pairs: list[tuple[str, str]], ctx: _Ctx, prefix: str, suffix: str = "") -> None:
        """Query or form pairs; each knows the others' keys (``siblings``),
        like the keys of one JSON object."""
        nkeys = [normalize_key(k) for k, _ in pairs]
        keys = frozenset(nkeys)
        string = self._string
        for (k, v), nk in zip(pairs, nkeys):
            string(v, ctx, f"{prefix}{k}{suffix}", k, nk, siblings=keys)

    def _socketio_event(self, text: str, loc: str, ctx: _Ctx) -> bool:
        """``42["event", arg, ...]``: each argument is read under the event's
        name as its key (``["send_message", "hi"]`` reads as {"send_message": "hi"})."""
        try:
            arr = json.loads(text)
        except (ValueError, RecursionError):
            return False
        if not (isinstance(arr, list) and arr and isinstance(arr[0], str)):
            return False
        event, nev = arr[0], normalize_key(arr[0])
        # the event name is protocol, not an analytics event: its own key
        self._emit(ctx, f"{loc} $[0]", "socket.io event", "socketioevent", event, keypath="$.socketioevent")
        for i, arg in enumerate(arr[1:], 1):
            self._walk(arg, ctx, f"{loc} ", f"$[{i}]", f"$.{nev}", event, nev, frozenset({"socketioevent", nev}))
        return True

    def _sse(self, text: str, loc: str, ctx: _Ctx) -> bool:
        datas = _SSE_DATA.findall(text)
        if not datas:
            return False
        for i, d in enumerate(datas):
            d = d.strip()
            if d and d != "[DONE]":
                if d[:1] in ("{", "[") and self._json_text(d, f"{loc} sse[{i}]", ctx):
                    continue
                self._string(d, ctx, f"{loc} sse[{i}]", "", "")
        return True

    # --------------------------------------------------------------- protobuf

    def _grpc(self, data: bytes, loc: str, ctx: _Ctx) -> bool:
        """gRPC / gRPC-web length-prefixed frames, each a protobuf message."""
        i, frames = 0, []
        while i + 5 <= len(data):
            flags, ln = _GRPC_FRAME.unpack_from(data, i)
            if flags & 0x7E or i + 5 + ln > len(data):
                return False
            frames.append((flags, data[i + 5 : i + 5 + ln]))
            i += 5 + ln
        if i != len(data) or not frames:
            return False
        for n, (flags, payload) in enumerate(frames):
            if flags & 0x80:  # trailers (grpc-status ...)
                continue
            if flags & 0x01:
                inflated = self._inflate(payload)
                if inflated is None:
                    continue
                payload = inflated[1]
            if not self._protobuf(payload, f"{loc} grpc[{n}]", ctx, strict=False):
                self._strings(payload, f"{loc} grpc[{n}]", ctx)
        return True

    def _protobuf(self, data: bytes, loc: str, ctx: _Ctx, strict: bool) -> bool:
        """Schema-less protobuf: every field, nested messages tried recursively,
        text fields as strings. Locations read ``protobuf 1.3`` (field 3 of the
        message in field 1). ``strict`` (an untyped body): accept only if at
        least one text field came out, so random bytes are not read as fields."""
        budget = [self.bounds.max_protobuf_fields]
        try:
            msg = parse_protobuf(data, budget)
        except _ProtoBudget:
            self.stats["bounds_hit"]["protobuf_fields"] += 1
            return False
        except _NotProto:
            return False
        if not msg:
            return False
        out: list[tuple[str, str, bool]] = []
        self._proto_collect(msg, "", out, budget, 0)
        if strict and not any(is_text for _, _, is_text in out):
            return False
        keys = frozenset()
        for path, value, _ in out:
            self._string(value, ctx, f"{loc} protobuf {path}", path, "protobuf", keypath=f"$.protobuf.{path}", siblings=keys)
        return True

    def _proto_collect(self, msg, prefix: str, out: list, budget: list[int], level: int) -> None:
        for num, wt, v in msg:
            path = f"{prefix}{num}"
            if wt == 0:
                out.append((path, str(v), False))
            elif wt == 2:
                assert isinstance(v, bytes)
                text = _printable_text(v) if v else None
                nested = None
                if (text is None or (v[:1] < b"\x20")) and len(v) >= 2:
                    if level + 1 > self.bounds.max_depth:
                        self.stats["bounds_hit"]["depth"] += 1
                    else:
                        try:
                            nested = parse_protobuf(v, budget)
                        except _ProtoBudget:
                            self.stats["bounds_hit"]["protobuf_fields"] += 1
                            nested = None
                        except _NotProto:
                            nested = None
                if nested:
                    self._proto_collect(nested, path + ".", out, budget, level + 1)
                elif text is not None:
                    out.append((path, text, True))
            else:
                num_s = _fixed_number(v)
                if num_s is not None:
                    out.append((path, num_s, False))

    def _inflate(self, data: bytes) -> tuple[str, bytes] | None:
        if data[:4] == _ZSTD_MAGIC:
            return self._unzstd(data)
        if data[:2] == b"\x1f\x8b":
            step, wbits = "gzip", 16 + zlib.MAX_WBITS
        elif len(data) > 2 and data[0] == 0x78 and data[1] in (0x01, 0x5E, 0x9C, 0xDA) and (data[0] << 8 | data[1]) % 31 == 0:
            step, wbits = "deflate", zlib.MAX_WBITS
        else:
            return None
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(data, self.bounds.max_inflate_bytes)
        except zlib.error:
            return None
        if d.unconsumed_tail:
            self.stats["bounds_hit"]["inflate_bytes"] += 1
        return step, out

    def _unzstd(self, data: bytes) -> tuple[str, bytes] | None:
        """A zstd frame (SDKs that compress the body themselves, with no
        Content-Encoding header); zstandard ships with mitmproxy."""
        try:
            import zstandard
        except ImportError:  # pragma: no cover - mitmproxy depends on it
            return None
        limit = self.bounds.max_inflate_bytes
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(data)
            out = reader.read(limit + 1)
        except zstandard.ZstdError:
            return None
        if len(out) > limit:
            self.stats["bounds_hit"]["inflate_bytes"] += 1
            out = out[:limit]
        return "zstd", out

    def _strings(self, data: bytes, loc: str, ctx: _Ctx) -> None:
        """Printable runs of a binary body (protobuf and friends keep strings as UTF-8)."""
        self.stats["undecodable_bodies"] += 1
        text = data.decode("utf-8", "replace")
        for i, m in enumerate(_RUNS.finditer(text)):
            if i >= self.bounds.max_strings:
                self.stats["bounds_hit"]["strings"] += 1
                break
            self._string(m.group(), ctx, f"{loc} strings[{i}]", "", "")

    def _multipart(self, data: bytes, ctype: str, loc: str, ctx: _Ctx) -> bool:
        m = re.search(r'boundary="?([^";]+)"?', ctype)
        if not m:
            return False
        boundary = b"--" + m.group(1).encode("latin-1")
        for chunk in data.split(boundary)[1:]:
            if chunk.startswith(b"--"):
                break
            head, sep, body = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
            if not sep:
                continue
            if body.endswith(b"\r\n"):
                body = body[:-2]
            headers = head.decode("utf-8", "replace")
            nm = re.search(r'name="([^"]*)"', headers)
            name = nm.group(1) if nm else ""
            ct = re.search(r"(?im)^content-type:\s*(.+)$", headers)
            part_loc = f"{loc} multipart[{name}]"
            fn = re.search(r'filename\*?="?([^";\r\n]*)"?', headers)
            if fn is not None or (ct and not ct.group(1).lower().startswith(("text/plain", "application/json"))):
                # An attachment (voice note, file): what it is matters even
                # when its bytes cannot be read - say so as a field.
                self._attachment(ctx, part_loc, ct.group(1).strip() if ct else "", fn.group(1) if fn else "", len(body), body[:16], name)
            text = _printable_text(body)
            if text is not None and "filename=" not in headers and not text.lstrip()[:1] in ("{", "["):
                self._string(text, ctx, part_loc, name, normalize_key(name))
            else:
                self._body(body, ct.group(1).strip() if ct else "", part_loc, ctx)
        return True

    def _attachment(self, ctx: _Ctx, loc: str, ctype: str, filename: str, size: int, head: bytes = b"", name: str = "") -> None:
        kind = ctype.split(";")[0].strip().lower()
        if not kind or kind == "application/octet-stream":
            kind = (mimetypes.guess_type(filename)[0] or "") if filename else ""
            if not kind and _AUDIO_EXT.search(filename):
                kind = "audio/" + filename.rsplit(".", 1)[1].lower()
            if not kind:
                kind = _sniff_audio(head) or ""
            if not kind and _AUDIO_NAME.fullmatch(normalize_key(name)):
                kind = "audio/unknown"
        self._emit(ctx, f"{loc} content-type", "Content-Type", "partcontenttype", kind or "application/octet-stream",
                   keypath="$.partcontenttype")

    # ------------------------------------------------------------------- JSON

    def _json_text(self, text: str, loc: str, ctx: _Ctx, ndjson: bool = False) -> bool:
        try:
            obj = json.loads(text)
        except RecursionError:
            self.stats["bounds_hit"]["nesting"] += 1
            return False
        except ValueError:
            if not ndjson or "\n" not in text:
                return False
            lines = [ln for ln in text.splitlines() if ln.strip()]
            objs = []
            for ln in lines:
                try:
                    objs.append(json.loads(ln))
                except (ValueError, RecursionError):
                    return False
            for i, o in enumerate(objs):
                self._walk(o, ctx, f"{loc} ndjson[{i}] ", "$", "$", "", "", frozenset())
            return True
        if not isinstance(obj, (dict, list)):
            return False
        self._walk(obj, ctx, f"{loc} ", "$", "$", "", "", frozenset())
        return True

    def _walk(self, obj, ctx: _Ctx, prefix: str, path: str, kpath: str, key: str, nkey: str, siblings: frozenset, level: int = 0) -> None:
        if level > self.bounds.max_nesting:
            self.stats["bounds_hit"]["nesting"] += 1
            return
        if isinstance(obj, dict):
            if key and "value" in obj and len(obj) <= 3 and not isinstance(obj["value"], (dict, list)):
                # {"device_model": {"value": "SM-S918N"}} (GA4/Firebase user
                # properties, typed attribute bags): the value belongs to the
                # outer key.
                self._walk(obj["value"], ctx, prefix, path + ".value", kpath, key, nkey, siblings, level + 1)
                rest = {k: v for k, v in obj.items() if k != "value"}
                if not rest:
                    return
                obj = rest
            shape = tuple(obj)
            known = _SHAPES.get(shape)
            if known is None:
                known = _object_shape(shape)
            infos, keys = known
            level += 1
            if level > self.bounds.max_nesting:
                for (k, nk, step, kstep), v in zip(infos, obj.values()):
                    self._walk(v, ctx, prefix, path + step, kpath + kstep, k, nk, keys, level)
                return
            # scalars inline (most values are): one call less per value
            here = prefix + path
            out = self._out
            for (k, nk, step, kstep), v in zip(infos, obj.values()):
                t = type(v)
                if t is str and len(v) < 8:
                    # what _string does with a short string: emit it, nothing to peel
                    if len(out) >= self.bounds.max_fields:
                        raise _Budget
                    out.append(Field(ctx.side, here + step, ctx.enc, k, nk, v, kpath + kstep, keys))
                elif t is str or (t is not dict and t is not list and isinstance(v, str)):
                    self._string(v, ctx, here + step, k, nk, kpath + kstep, keys)
                elif t is dict or t is list or isinstance(v, (dict, list)):
                    self._walk(v, ctx, prefix, path + step, kpath + kstep, k, nk, keys, level)
                elif v is not None:
                    self._emit(ctx, here + step, k, nk, _scalar(v), kpath + kstep, keys)
            return
        if isinstance(obj, list):
            if obj:
                self._list_field(obj, ctx, prefix, path, kpath, key, nkey, siblings)
            for i, v in enumerate(obj):
                # an instruction the app itself wrote (a system prompt) is not
                # what the user said: its path reads "messages[system]"
                step = "[]"
                if isinstance(v, dict):
                    role = v.get("role") or v.get("Role")
                    # (a str test first: a list as the role is unhashable)
                    if isinstance(role, str) and role in _APP_ROLES:
                        step = "[system]"
                self._walk(v, ctx, prefix, f"{path}[{i}]", kpath + step, key, nkey, siblings, level + 1)
            return
        if obj is None:
            return
        if isinstance(obj, str):
            self._string(obj, ctx, prefix + path, key, nkey, kpath, siblings)
        else:
            self._emit(ctx, prefix + path, key, nkey, _scalar(obj), kpath, siblings)

    def _list_field(self, obj: list, ctx: _Ctx, prefix: str, path: str, kpath: str, key: str, nkey: str, siblings: frozenset) -> None:
        """The Field of a non-empty JSON list itself: its JSON text, and its
        items (each a str, or a dict nkey->str for an object)."""
        items = tuple(
            {
                (_key_info(k) if type(k) is str else _key_info(str(k)))[0]: v if type(v) is str else _scalar(v)
                for k, v in it.items()
            }
            if isinstance(it, dict)
            else (it if type(it) is str else _scalar(it))
            for it in obj
        )
        self._emit(ctx, prefix + path, key, nkey, _JSON_TEXT(obj)[:4096], kpath, siblings, items)

    # ---------------------------------------------------------------- strings

    def _string(
        self, s: str, ctx: _Ctx, loc: str, key: str, nkey: str, keypath: str | None = None, siblings: frozenset = _NO_KEYS
    ) -> None:
        """Emit a string value, then whatever it decodes to."""
        if keypath is None:
            keypath = (_bracket_path(key) if "[" in key else f"$.{nkey}") if nkey else ""
        out = self._out
        if len(out) >= self.bounds.max_fields:
            raise _Budget
        out.append(Field(ctx.side, loc, ctx.enc, key, nkey, s, keypath, siblings))
        if len(s) < 8:
            return
        st = s.strip()
        first = st[:1]
        if first in ("{", "[") and st[-1:] in ("}", "]"):
            sub = self._deeper(ctx, "json")
            if sub is not None and self._json_text(st, loc, sub):
                return
        m = _JWT.match(st) if st.startswith("eyJ") else None
        if m:
            raw = _b64decode(m.group(1))
            sub = self._deeper(ctx, "jwt")
            if raw is not None and sub is not None:
                try:
                    self._walk(json.loads(raw), sub, f"{loc} ", "$", "$", "", "", frozenset())
                except (ValueError, RecursionError):
                    pass
            return
        if "=" in st and "&" in st and _FORMISH.match(st):
            # before percent-decoding: an encoded "&" or "=" inside a value
            # must not split it
            sub = self._deeper(ctx, "form")
            if sub is not None:
                self._pairs(parse_form(st), sub, f"{loc} form[", "]")
            return
        if "%" in st and _PCT.search(st):
            u = _unquote_any(st)
            sub = self._deeper(ctx, "url")
            if u != st and sub is not None:
                self._string(u, sub, loc, key, nkey, keypath, siblings)
            return
        if len(st) >= 16 and _HEX.match(st):
            data = bytes.fromhex(st)
            self._decoded_bytes(data, "hex", ctx, loc, key, nkey, keypath, siblings)
            return
        if _B64.match(st) and not st.isalpha() and not st.isdigit():
            data = _b64decode(st)
            if data is not None:
                self._decoded_bytes(data, "base64", ctx, loc, key, nkey, keypath, siblings)

    def _decoded_bytes(
        self, data: bytes, step: str, ctx: _Ctx, loc: str, key: str, nkey: str, keypath: str, siblings: frozenset
    ) -> None:
        inflated = self._inflate(data)
        if inflated is not None:
            sub = self._deeper(ctx, step)
            if sub is not None:
                self._body(inflated[1], "", loc, _Ctx(sub.side, sub.encoding + (inflated[0],), sub.depth))
            return
        text = _printable_text(data)
        if text is None:
            return
        sub = self._deeper(ctx, step)
        if sub is not None:
            self._string(text, sub, loc, key, nkey, keypath, siblings)


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return _JSON_TEXT(v)
    return str(v)


def _native_walk():
    """The compiled JSON walk (``_walk.c``, built at install by hatch_build.py),
    set up to call back into this module, or None: not built here, or
    ``PRIVAUDIT_PURE_PYTHON=1`` asks for the Python one. Both give the same
    Fields in the same order, and the same counters (tested)."""
    if os.environ.get("PRIVAUDIT_PURE_PYTHON"):
        return None
    try:
        from . import _walk
    except ImportError:
        return None
    # Fields (RawTexts) are built by filling their slots directly while the
    # class is still the plain slots dataclass above, whose __init__ only
    # assigns them (frozen RawText's through object.__setattr__)
    def plain(cls, frozen: bool) -> bool:
        return (
            type(cls) is type
            and cls.__slots__ == tuple(f.name for f in fields(cls))
            and cls.__new__ is object.__new__
            and (frozen or cls.__setattr__ is object.__setattr__)
            and not hasattr(cls, "__post_init__")
        )

    _walk.configure(
        Field=Field, direct=plain(Field, False), RawText=RawText, raw_direct=plain(RawText, True),
        shapes=_SHAPES, object_shape=_object_shape, key_infos=_KEY_INFO, key_info=_key_info,
        scalar=_scalar, json_text=_JSON_TEXT, budget=_Budget, app_roles=_APP_ROLES, no_keys=_NO_KEYS,
        py_walk=Decoder._walk, list_field=Decoder._list_field, py_string=Decoder._string,
    )
    return _walk


_C = _native_walk()
if _C is not None:
    _count_controls = _C.count_controls
#: Which decoder walks JSON here: "C" or "Python" (see :func:`_native_walk`;
#: for the findings document's environment, like the flow record reader).
WALKER = "C" if _C is not None else "Python"
