"""HAR 1.2 files from browsers, Charles, Playwright, Insomnia and mitmproxy.

Each entry goes through mitmproxy's own converter
(:func:`mitmproxy.io.har.request_to_flow`), after we fill in what real exports
leave out and it requires (``postData.text`` when only ``params`` are given, a
missing ``time``). What that converter drops we add back from the entry:
``serverIPAddress`` (the address the browser actually talked to) and
Chrome's ``_webSocketMessages``.

An entry that cannot be read is skipped with a warning naming its position; a
file that is not HAR at all is an :class:`~privaudit.errors.InputError`.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_plus, urlsplit

from ..errors import InputError
from ..model import Exchange, WsMessage
from .convert import flow_to_exchange


def load_har(path: Path) -> list[dict]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: HAR file is not UTF-8 (byte {e.start})") from e
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}:{e.colno}: invalid HAR file: {e.msg}") from e
    entries = doc.get("log", {}).get("entries") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise InputError(f"{path}: invalid HAR file: no log.entries list (is this a HAR 1.2 export?)")
    return entries


def _fill_gaps(entry: dict) -> dict:
    """A copy of ``entry`` with what mitmproxy's converter requires filled in."""
    e = copy.copy(entry)
    e.setdefault("time", 0)
    req = e["request"] = dict(e["request"])
    req.setdefault("headers", [])
    req.setdefault("httpVersion", "HTTP/1.1")
    pd = req.get("postData")
    if isinstance(pd, dict) and "text" not in pd:
        pd = dict(pd)
        params = pd.get("params") or []
        pd["text"] = "&".join(
            f"{quote_plus(str(p.get('name', '')))}={quote_plus(str(p.get('value', '')))}" for p in params
        )
        req["postData"] = pd
    elif isinstance(pd, dict) and pd.get("encoding") == "base64":
        # Not in HAR 1.2 but written by some tools; decode to the real bytes.
        pd = dict(pd)
        raw = base64.b64decode(pd["text"])
        pd["text"] = raw.decode("utf-8", errors="surrogateescape")
        req["postData"] = pd
    resp = e["response"] = dict(e.get("response") or {"status": 0})
    resp.setdefault("status", 0)
    resp.setdefault("headers", [])
    resp.setdefault("httpVersion", "HTTP/1.1")
    resp["content"] = dict(resp.get("content") or {})
    return e


def _ws_messages(entry: dict) -> tuple[WsMessage, ...]:
    out = []
    for m in entry.get("_webSocketMessages") or []:
        data = m.get("data", "")
        opcode = m.get("opcode", 1)
        is_text = opcode == 1
        if is_text:
            content = str(data).encode("utf-8", errors="surrogateescape")
        else:
            try:
                content = base64.b64decode(str(data))
            except ValueError:
                content = str(data).encode("utf-8", errors="surrogateescape")
        out.append(
            WsMessage(
                from_client=m.get("type") == "send",
                is_text=is_text,
                content=content,
                timestamp=m.get("time"),
            )
        )
    return tuple(out)


class HarEntryError(ValueError):
    """One HAR entry that cannot be read."""


def entry_to_exchange(entry: dict, index: int, path: str) -> Exchange:
    """One HAR entry -> Exchange; HarEntryError if the entry is not readable."""
    from mitmproxy.io.har import request_to_flow

    try:
        flow = request_to_flow(_fill_gaps(entry))
    except Exception as e:  # mitmproxy's converter raises bare KeyError/ValueError
        raise HarEntryError(f"{type(e).__name__}: {e}") from e
    server_ip = entry.get("serverIPAddress") or None
    if server_ip:
        server_ip = str(server_ip).strip("[]")
    ex = flow_to_exchange(flow, index, source=path, server_ip=server_ip)
    ws = _ws_messages(entry)
    if ws:
        scheme = "wss" if urlsplit(ex.url).scheme in ("https", "wss") else "ws"
        ex = _replace(ex, websocket=ws, scheme=scheme)
    return ex


def read_har(path: Path, start_index: int, warnings: list[str]) -> Iterator[Exchange]:
    entries = load_har(path)
    n = 0
    for i, entry in enumerate(entries):
        try:
            ex = entry_to_exchange(entry, start_index + n, str(path))
        except HarEntryError as e:
            warnings.append(f"{path}: HAR entry {i} skipped: {e}")
            continue
        yield ex
        n += 1
    if entries and n == 0:
        raise InputError(f"{path}: invalid HAR file: none of its {len(entries)} entries could be read")


def _replace(ex: Exchange, **kw) -> Exchange:
    from dataclasses import replace

    return replace(ex, **kw)
