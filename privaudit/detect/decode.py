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
    websocket[3] $.content

``encoding`` is the chain of decodings beyond the part's natural one (a JSON
body or a query string is not "encoded"): ``url`` (percent-encoding left after
the natural decoding), ``json`` (JSON inside a string), ``base64`` (standard or
URL-safe, padded or not), ``hex``, ``jwt``, ``gzip``, ``deflate``, ``form`` (a
query string inside a value), joined with ``+`` in the order they were peeled:
``base64+gzip+json``.

Bounds keep hostile or huge traffic cheap: nesting depth, fields per exchange,
bytes parsed per body, bytes produced by decompression. When one is hit the
decoder stops going deeper there and counts it in ``stats["bounds_hit"]``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlsplit

from privaudit.model import Exchange, Message

__all__ = ["Bounds", "Field", "RawText", "Decoder", "normalize_key"]


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


@dataclass(frozen=True, slots=True, eq=False)
class Field:
    """One value the app sent, with where and how it was found."""

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


_KEY_STRIP = re.compile(r"[\W_]+")
_HEADER_X = re.compile(r"^x[-_]")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")


@lru_cache(maxsize=65536)
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
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][\w-]*$")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
# Unambiguous on purpose (each "&" segment splits one way only): an ambiguous
# form regex backtracks exponentially on a long value that ends in a space.
_FORMISH = re.compile(r"^[^=&\s]+=[^&\s]*(?:&[^=&\s]+(?:=[^&\s]*)?)+$")
_B64 = re.compile(r"^[A-Za-z0-9+/_-]{12,}={0,2}$")
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2}){8,}$")
_JWT = re.compile(r"^eyJ[\w-]+\.(eyJ[\w-]+)\.[\w-]*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_SOCKETIO = re.compile(r"^\d{1,4}(?=[\[{])")
_RUNS = re.compile(r"[^\x00-\x1f\x7f\ufffd]{6,}")


@lru_cache(maxsize=65536)
def _json_step(key: str) -> str:
    return f".{key}" if _SIMPLE_KEY.match(key) else f"[{json.dumps(key, ensure_ascii=False)}]"


def _printable_text(data: bytes) -> str | None:
    """``data`` as text if it is UTF-8 that a person or a parser could read."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or len(_CONTROL.findall(text)) > len(text) // 50:
        return None
    return text


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

    def __init__(self, bounds: Bounds | None = None, stats: dict | None = None) -> None:
        self.bounds = bounds or Bounds()
        self.stats = stats if stats is not None else {}
        self.stats.setdefault("bounds_hit", Counter())
        self.stats.setdefault("undecodable_bodies", 0)
        self._out: list[Field] = []
        self._raw: list[RawText] = []

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
                    self._raw.append(RawText(side, f"websocket[{i}]", ws.content.decode("utf-8", "replace")))
        except _Budget:
            self.stats["bounds_hit"]["fields"] += 1
        return self._out, self._raw

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

    def _emit(self, ctx: _Ctx, location: str, key: str, nkey: str, value: str, **kw) -> None:
        if len(self._out) >= self.bounds.max_fields:
            raise _Budget
        self._out.append(Field(ctx.side, location, ctx.enc, key, nkey, value, **kw))

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
            self._raw.append(RawText("request", "request.url", ex.url, ("request.path", "request.query")))
            if parts.path and parts.path != "/":
                path = unquote(parts.path)
                self._emit(ctx, "request.path", "", "", path)
            for k, v in parse_qsl(parts.query, keep_blank_values=True):
                self._string(v, ctx, f"request.query {k}", k, normalize_key(k))
        if ex.request is not None:
            self._message(ex.request, ctx, "request")

    def _message(self, msg: Message, ctx: _Ctx, part: str) -> None:
        for name, value in msg.headers:
            lname = name.lower()
            if lname in ("cookie", "set-cookie"):
                self._cookies(value, ctx, part, set_cookie=lname == "set-cookie")
                continue
            if lname.startswith(":") or lname in _SKIP_HEADERS:
                continue
            self._string(value, ctx, f"{part}.header {name}", name, normalize_key(name, header=True))
        if msg.body:
            self._raw.append(RawText(ctx.side, f"{part}.body", msg.body[: self.bounds.max_body_bytes].decode("utf-8", "replace")))
            self._body(msg.body, msg.content_type, f"{part}.body", ctx)

    def _cookies(self, header: str, ctx: _Ctx, part: str, set_cookie: bool) -> None:
        pairs = header.split(";")
        if set_cookie:
            pairs = pairs[:1]  # the rest are attributes (Path, Expires, ...)
        for pair in pairs:
            name, sep, value = pair.strip().partition("=")
            if not sep or not name:
                continue
            self._string(value.strip().strip('"'), ctx, f"{part}.cookie {name}", name, normalize_key(name))

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
        text = None if truncated and "json" in ctype else _printable_text(data)
        if text is None:
            self._strings(data, loc, ctx)
            return
        stripped = text.strip()
        if stripped[:1].isdigit():
            # Socket.IO / Engine.IO frames: a packet type number before the
            # JSON ("42[\"message\", {...}]").
            m = _SOCKETIO.match(stripped)
            if m:
                stripped = stripped[m.end() :]
        if stripped[:1] in ("{", "[") or "json" in ctype:
            if self._json_text(stripped, loc, ctx, ndjson=True):
                return
        if "x-www-form-urlencoded" in ctype or _FORMISH.match(stripped):
            for k, v in parse_qsl(stripped, keep_blank_values=True):
                self._string(v, ctx, f"{loc} form[{k}]", k, normalize_key(k))
            return
        self._string(text, ctx, loc, "", "")

    def _inflate(self, data: bytes) -> tuple[str, bytes] | None:
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
            text = _printable_text(body)
            if text is not None and "filename=" not in headers and not text.lstrip()[:1] in ("{", "["):
                self._string(text, ctx, part_loc, name, normalize_key(name))
            else:
                self._body(body, ct.group(1).strip() if ct else "", part_loc, ctx)
        return True

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
            named = [(str(k), normalize_key(str(k)), v) for k, v in obj.items()]
            keys = frozenset(nk for _, nk, _ in named)
            for k, nk, v in named:
                self._walk(v, ctx, prefix, path + _json_step(k), f"{kpath}.{nk}", k, nk, keys, level + 1)
            return
        if isinstance(obj, list):
            if obj:
                items = tuple(
                    {normalize_key(str(k)): _scalar(v) for k, v in it.items()} if isinstance(it, dict) else _scalar(it)
                    for it in obj
                )
                self._emit(
                    ctx, prefix + path, key, nkey, json.dumps(obj, ensure_ascii=False)[:4096],
                    keypath=kpath, siblings=siblings, items=items,
                )
            for i, v in enumerate(obj):
                self._walk(v, ctx, prefix, f"{path}[{i}]", kpath + "[]", key, nkey, siblings, level + 1)
            return
        if obj is None:
            return
        if isinstance(obj, str):
            self._string(obj, ctx, prefix + path, key, nkey, keypath=kpath, siblings=siblings)
        else:
            self._emit(ctx, prefix + path, key, nkey, _scalar(obj), keypath=kpath, siblings=siblings)

    # ---------------------------------------------------------------- strings

    def _string(self, s: str, ctx: _Ctx, loc: str, key: str, nkey: str, **kw) -> None:
        """Emit a string value, then whatever it decodes to."""
        if "keypath" not in kw:
            kw["keypath"] = f"$.{nkey}" if nkey else ""
        self._emit(ctx, loc, key, nkey, s, **kw)
        if len(s) < 8:
            return
        st = s.strip()
        first = st[:1]
        if first in ("{", "[") and st[-1:] in ("}", "]"):
            sub = self._deeper(ctx, "json")
            if sub is not None and self._json_text(st, loc, sub):
                return
        m = _JWT.match(st)
        if m:
            raw = _b64decode(m.group(1))
            sub = self._deeper(ctx, "jwt")
            if raw is not None and sub is not None:
                try:
                    self._walk(json.loads(raw), sub, f"{loc} ", "$", "$", "", "", frozenset())
                except (ValueError, RecursionError):
                    pass
            return
        if "%" in st and _PCT.search(st):
            u = unquote(st)
            sub = self._deeper(ctx, "url")
            if u != st and sub is not None:
                self._string(u, sub, loc, key, nkey, **kw)
            return
        if "=" in st and "&" in st and _FORMISH.match(st):
            sub = self._deeper(ctx, "form")
            if sub is not None:
                for k, v in parse_qsl(st, keep_blank_values=True):
                    self._string(v, sub, f"{loc} form[{k}]", k, normalize_key(k))
            return
        if len(st) >= 16 and _HEX.match(st):
            data = bytes.fromhex(st)
            self._decoded_bytes(data, "hex", ctx, loc, key, nkey, kw)
            return
        if _B64.match(st) and not st.isalpha() and not st.isdigit():
            data = _b64decode(st)
            if data is not None:
                self._decoded_bytes(data, "base64", ctx, loc, key, nkey, kw)

    def _decoded_bytes(self, data: bytes, step: str, ctx: _Ctx, loc: str, key: str, nkey: str, kw: dict) -> None:
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
            self._string(text, sub, loc, key, nkey, **kw)


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)
