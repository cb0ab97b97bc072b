"""A fast road from a raw flow-file record to an Exchange.

Reading a capture through ``mitmproxy.io`` costs about as much as detecting
personal data in it: mitmproxy's tnetstring parser slices memoryviews one
byte at a time, and ``Flow.from_state`` rebuilds every object through
reflection and type checks. For the common case — an HTTP flow already in the
current flow-format version — this module parses the record with a tighter
tnetstring reader and builds the Exchange straight from the state dict,
reusing mitmproxy's own helpers for what has rules (authority parsing, URL
forms, Content-Encoding).

Anything else (older versions needing migration, TCP/UDP/DNS flows, a shape we
do not expect) returns ``None`` and the caller takes mitmproxy's road, so the
result never depends on which road was taken; tests check that both roads
give equal Exchanges for every capture we have.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

from mitmproxy.net.http import url
from mitmproxy.version import FLOW_FORMAT_VERSION

from ..model import CertInfo, Exchange, Message, WsMessage
from .convert import _text

_COLON = ord(":")


def _c_reader():
    """The compiled parser (``_tnet.c``, built at install by hatch_build.py), or
    None: not built here, or ``PRIVAUDIT_PURE_PYTHON=1`` asks for the Python one.
    Both give the same values and refuse the same records (tested)."""
    if os.environ.get("PRIVAUDIT_PURE_PYTHON"):
        return None
    try:
        from . import _tnet
    except ImportError:
        return None
    return _tnet


_C = _c_reader()
#: Which parser reads flow records here: "C" or "Python" (recorded in the
#: findings document's environment, so a reader knows what ran).
READER = "C" if _C is not None else "Python"


def tnet_loads(buf: bytes) -> Any:
    """Parses one tnetstring (the whole of ``buf``); ValueError if malformed."""
    if _C is not None:
        return _C.loads(buf)
    return tnet_loads_py(buf)


def tnet_loads_py(buf: bytes) -> Any:
    """:func:`tnet_loads` in Python."""
    try:
        value, end = _parse(buf, 0, len(buf))
    except (TypeError, RecursionError) as e:
        raise ValueError(f"not a tnetstring: {type(e).__name__}: {e}") from None
    if end != len(buf):
        raise ValueError("not a tnetstring: trailing data")
    return value


#: The parts of a flow's state the Exchange needs, by nesting level: ``True``
#: keeps the whole value, a dict keeps only the keys it names, ``_HEADERS``
#: reads a header list with the specialised loop. Everything else (client
#: connection, cipher lists, timestamps nothing reads, metadata...) is skipped
#: by its length prefix without being parsed, which is most of a record.
_HEADERS = "headers"
_SPEC: dict[bytes, Any] = {
    b"id": True,
    b"type": True,
    b"version": True,
    b"timestamp_created": True,
    b"error": True,
    b"websocket": True,
    b"request": {
        k: True
        for k in (b"scheme", b"http_version", b"method", b"path", b"authority", b"port", b"host", b"content", b"timestamp_start")
    }
    | {b"headers": _HEADERS},
    b"response": {b"content": True, b"headers": _HEADERS, b"status_code": True},
    b"server_conn": {k: True for k in (b"peername", b"timestamp_tls_setup", b"tls_version", b"sni", b"certificate_list")},
}
#: Top-level keys :func:`flow_state` returns (when present in the record).
_WANTED = frozenset(k.decode() for k in _SPEC)


def flow_state(buf: bytes) -> dict:
    """The parts of a flow record's state dict the Exchange needs (see :data:`_SPEC`).

    Same values as a full parse for every part it keeps; ValueError if the
    record is not a well-formed tnetstring dict.
    """
    if _C is not None:
        return _C.pick(buf, _SPEC)
    return flow_state_py(buf)


def flow_state_py(buf: bytes) -> dict:
    """:func:`flow_state` in Python."""
    colon = buf.find(b":", 0, 13)
    if colon <= 0:
        raise ValueError("not a tnetstring: missing length prefix")
    n = int(buf[:colon])
    start = colon + 1
    stop = start + n
    if n < 0 or stop != len(buf) - 1 or buf[stop] != 125:
        raise ValueError("not a tnetstring dict")
    try:
        return _pick(buf, start, stop, _SPEC)
    except (TypeError, RecursionError) as e:  # an unhashable key, nesting past the stack: hostile data
        raise ValueError(f"not a flow record: {type(e).__name__}: {e}") from None


#: A dict key as mitmproxy writes them (a short ASCII string) and the length
#: prefix of its value, in one match. Keys of any other shape take the
#: careful loop in :func:`_pick_slow`.
_KEY = re.compile(rb"(\d{1,3}):([A-Za-z0-9_]*);(\d{1,12}):")


def _pick(buf: bytes, p: int, stop: int, spec: dict) -> dict:
    """Parses the dict body ``buf[p:stop]``, keeping only the keys in ``spec``."""
    d = {}
    match = _KEY.match
    while p < stop:
        m = match(buf, p)
        if m is None:
            d.update(_pick_slow(buf, p, stop, spec))
            return d
        kl, key, vl = m.groups()
        if len(key) != int(kl):
            d.update(_pick_slow(buf, p, stop, spec))
            return d
        vs = m.end()
        ve = vs + int(vl)
        if ve >= stop:
            raise ValueError(f"not a tnetstring: value at {p} runs past its dict")
        want = spec.get(key)
        if want is not None:
            if want is True:
                d[key.decode()], _ = _parse(buf, m.start(3), ve + 1)
            elif want is _HEADERS and buf[ve] == 93:
                d[key.decode()] = _header_list(buf, vs, ve, m.start(3))
            elif buf[ve] == 125 and want.__class__ is dict:
                d[key.decode()] = _pick(buf, vs, ve, want)
            else:  # not the shape we expect: parse it whole, let the caller decide
                d[key.decode()], _ = _parse(buf, m.start(3), ve + 1)
        p = ve + 1
    return d


def _pick_slow(buf: bytes, p: int, stop: int, spec: dict) -> dict:
    """:func:`_pick` for dicts whose keys are not plain short strings."""
    d = {}
    while p < stop:
        key, p = _parse(buf, p, stop)
        vs, ve = _span(buf, p, stop)
        if ve < vs or ve >= stop:
            raise ValueError(f"not a tnetstring: value at {p} runs past its dict")
        want = spec.get(key.encode("utf-8", "surrogateescape") if isinstance(key, str) else key)
        if want is not None:
            if want is _HEADERS and buf[ve] == 93:
                d[key] = _header_list(buf, vs, ve, p)
            elif buf[ve] == 125 and want.__class__ is dict:
                d[key] = _pick(buf, vs, ve, want)
            else:
                d[key], _ = _parse(buf, p, ve + 1)
        p = ve + 1
    return d


def _span(buf: bytes, p: int, limit: int) -> tuple[int, int]:
    """(first payload byte, type tag's index) of the tnetstring at ``p``; the
    caller checks the tag lies before its limit (a negative length puts it
    before the payload). ValueError without a length prefix."""
    c = buf.find(b":", p, p + 13)
    if c < 0 or c >= limit:
        raise ValueError(f"not a tnetstring: missing length prefix at {p}")
    return c + 1, c + 1 + int(buf[p:c])


def _header_list(buf: bytes, p: int, stop: int, at: int) -> list:
    """A list of [name, value] byte-string pairs (mitmproxy's header fields);
    any other shape is read by the general parser from ``at``."""
    out = []
    while p < stop:
        s, e = _span(buf, p, stop)  # one [name, value] pair
        if e < s or e >= stop or buf[e] != 93:
            return _parse(buf, at, stop + 1)[0]
        ks, ke = _span(buf, s, e)
        if ke < ks or ke >= e or buf[ke] != 44:
            return _parse(buf, at, stop + 1)[0]
        vs, ve = _span(buf, ke + 1, e)
        if ve < vs or ve + 1 != e or buf[ve] != 44:
            return _parse(buf, at, stop + 1)[0]
        out.append([buf[ks:ke], buf[vs:ve]])
        p = e + 1
    return out


def _parse(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
    colon = buf.find(b":", pos, pos + 13)
    if colon < 0 or colon >= end:
        raise ValueError(f"not a tnetstring: missing length prefix at {pos}")
    n = int(buf[pos:colon])
    start = colon + 1
    stop = start + n
    if n < 0 or stop >= end:
        raise ValueError(f"not a tnetstring: length {n} at {pos} runs past the data")
    tag = buf[stop]
    if tag == 44:  # ,
        return buf[start:stop], stop + 1
    if tag == 125:  # }
        d = {}
        p = start
        while p < stop:
            k, p = _parse(buf, p, stop)
            v, p = _parse(buf, p, stop)
            d[k] = v
        return d, stop + 1
    if tag == 93:  # ]
        lst = []
        p = start
        while p < stop:
            v, p = _parse(buf, p, stop)
            lst.append(v)
        return lst, stop + 1
    if tag == 59:  # ;
        return buf[start:stop].decode("utf-8"), stop + 1
    if tag == 35:  # #
        return int(buf[start:stop]), stop + 1
    if tag == 126:  # ~
        if n:
            raise ValueError("not a tnetstring: invalid null literal")
        return None, stop + 1
    if tag == 33:  # !
        raw = buf[start:stop]
        if raw == b"true":
            return True, stop + 1
        if raw == b"false":
            return False, stop + 1
        raise ValueError("not a tnetstring: invalid boolean literal")
    if tag == 94:  # ^
        return float(buf[start:stop]), stop + 1
    raise ValueError(f"not a tnetstring: unknown type tag {tag}")


def _get(headers: list, name: bytes) -> bytes | None:
    """The first header called ``name`` (lower case), case-insensitively."""
    n = len(name)
    for k, v in headers:
        if len(k) == n and k.lower() == name:
            return v
    return None


def _content_headers(headers: list) -> tuple[bytes | None, bytes | None]:
    """(Content-Encoding, Content-Type): the first of each, in one pass."""
    ce = ct = None
    for k, v in headers:
        n = len(k)
        if n == 12:
            if ct is None and k.lower() == b"content-type":
                ct = v
        elif n == 16:
            if ce is None and k.lower() == b"content-encoding":
                ce = v
    return ce, ct


def _headers(raw_headers: list) -> tuple:
    try:  # almost always ASCII/UTF-8: one comprehension, no per-field calls
        return tuple([(k.decode(), v.decode()) for k, v in raw_headers])
    except (UnicodeDecodeError, AttributeError):
        return tuple([(_text(k), _text(v)) for k, v in raw_headers])


def _message(m: dict) -> Message:
    raw_headers = m["headers"]
    headers = _headers(raw_headers)
    raw = m["content"]
    error = None
    ce, ct = _content_headers(raw_headers)
    if raw is None:
        body = b""
    else:
        body = raw
        if ce:
            from mitmproxy.net import encoding

            ce_s = ce.decode("utf-8", "surrogateescape")
            try:
                body = encoding.decode(raw, ce_s)
                if isinstance(body, str):
                    raise ValueError(f"Invalid Content-Encoding: {ce_s}")
            except ValueError as e:
                body = raw
                error = f"cannot remove Content-Encoding {ce_s!r}: {e}"
    return Message(
        headers=headers,
        body=body,
        content_type=ct.decode("utf-8", "surrogateescape").lower() if ct else "",
        body_decode_error=error,
    )


@lru_cache(maxsize=256)
def cert_info(pem: bytes) -> CertInfo | None:
    """The certificate facts of a PEM leaf certificate (cached: a capture repeats them)."""
    from mitmproxy import certs

    from .convert import cert_facts

    try:
        return cert_facts(certs.Cert.from_pem(pem))
    except Exception:
        return None


def _ip(addr: Any) -> str | None:
    if not addr:
        return None
    return _ip_text(str(addr[0]))


@lru_cache(maxsize=1024)
def _ip_text(text: str) -> str | None:
    import ipaddress

    host = text.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


@lru_cache(maxsize=1024)
def _authority(host_header: str, scheme: str) -> tuple[str, int]:
    """(host, port) from a Host header / :authority, as mitmproxy's ``pretty_host``/``pretty_url``."""
    pretty_host, p_port = url.parse_authority(host_header, check=False)
    return pretty_host, p_port or url.default_port(scheme) or 443


@lru_cache(maxsize=1024)
def _url_prefix(scheme: str, host: str, port: int) -> str:
    return url.unparse(scheme, host, port, "")


def http_exchange(state: dict, index: int, source: str) -> Exchange | None:
    """An Exchange from a current-version HTTP flow state, or None to take mitmproxy's road."""
    if state.get("type") != "http" or state.get("version") != FLOW_FORMAT_VERSION:
        return None
    try:
        req = state["request"]
        sc = state["server_conn"]
        scheme = req["scheme"].decode("ascii")
        http_version = req["http_version"].decode("ascii")
        method = req["method"].decode("utf-8", "surrogateescape")
        path = req["path"].decode("utf-8", "surrogateescape")
        authority = req["authority"].decode("utf-8", "surrogateescape")
        port = req["port"]
        host = req["host"]
        h = _get(req["headers"], b"host")
        host_hdr = h.decode("utf-8", "surrogateescape") if h is not None else None
        if http_version in ("HTTP/2.0", "HTTP/3"):
            host_header = authority or host_hdr
        else:
            host_header = host_hdr
        if method.upper() == "CONNECT":  # authority-form request line
            return None
        if host_header:
            pretty_host, p_port = _authority(host_header, scheme)
            if path == "*":  # mitmproxy versions differ here: ask the one installed
                pretty_url = url.unparse(scheme, pretty_host, p_port, path)
            else:  # unparse(..., path) is unparse(..., "") + path in every version
                pretty_url = _url_prefix(scheme, pretty_host, p_port) + path
        else:
            pretty_host = host
            pretty_url = url.unparse(scheme, host, port, path if path != "*" else "")
        ws: tuple[WsMessage, ...] = ()
        if state.get("websocket") is not None:
            scheme_out = "wss" if scheme == "https" else "ws"
            ws = tuple(
                WsMessage(
                    from_client=bool(m[1]),
                    is_text=int(m[0]) == 1,
                    content=m[2].encode("utf-8", "surrogateescape") if isinstance(m[2], str) else bytes(m[2]),
                    timestamp=m[3] if len(m) > 3 else None,
                )
                for m in state["websocket"]["messages"]
            )
        else:
            scheme_out = scheme
        resp = state.get("response")
        certs_ = sc.get("certificate_list") or []
        err = state.get("error")
        tls_version = sc.get("tls_version")
        return Exchange(
            index=index,
            kind="http",
            host=pretty_host.lower().rstrip("."),
            port=port,
            scheme=scheme_out,
            method=method,
            url=pretty_url,
            request=_message(req),
            response=_message(resp) if resp is not None else None,
            websocket=ws,
            server_ip=_ip(sc.get("peername")),
            tls=sc.get("timestamp_tls_setup") is not None or scheme == "https",
            tls_version=str(tls_version) if tls_version else None,
            sni=sc.get("sni"),
            cert=cert_info(bytes(certs_[0])) if certs_ else None,
            timestamp_start=req.get("timestamp_start") or state.get("timestamp_created"),
            error=err["msg"] if err else None,
            source=source,
            http_version=http_version,
            streamed=req["content"] is None or (resp is not None and resp["content"] is None),
        )
    except (KeyError, TypeError, AttributeError, IndexError, UnicodeDecodeError, ValueError):
        return None
