"""mitmproxy flow files (``.mitm``/``.flows``), every version mitmproxy can still read.

A flow file is a sequence of tnetstrings, one per flow. We split the file into
raw records ourselves (cheap: a length prefix and a slice) and decode each
record the way :class:`mitmproxy.io.FlowReader` does (``tnetstring.loads``,
``compat.migrate_flow``, ``Flow.from_state``), so that records can be decoded
in worker processes, in parallel, and still in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..model import Exchange
from .convert import flow_to_exchange


class RecordError(ValueError):
    """A record that is not a readable flow (damaged or truncated file)."""


def iter_records(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yields (byte offset, raw tnetstring) for each record of a flow file.

    Raises :class:`RecordError` at the first damaged record (after yielding
    every good one before it).
    """
    with open(path, "rb") as f:
        while True:
            offset = f.tell()
            head = f.read(13)
            if not head:
                return
            digits, colon, rest = head.partition(b":")
            if not colon or not digits.isdigit() or len(digits) > 12:
                raise RecordError(f"no length prefix at byte {offset}")
            n = int(digits)
            need = n + 1 - len(rest)
            body = rest + (f.read(need) if need > 0 else b"")
            if len(body) < n + 1:
                raise RecordError(f"record at byte {offset} is cut short ({len(body)} of {n + 1} bytes)")
            if len(body) > n + 1:  # the 13-byte peek ran past a short record
                f.seek(offset + len(digits) + 1 + n + 1)
                body = body[: n + 1]
            yield offset, digits + b":" + body


def decode_record(raw: bytes) -> Any:
    """A raw record -> a mitmproxy flow object (of any mitmproxy version's dump)."""
    from mitmproxy import flow as mflow
    from mitmproxy.io import compat, tnetstring

    try:
        loaded = tnetstring.loads(raw)
        return mflow.Flow.from_state(compat.migrate_flow(loaded))
    except Exception as e:  # mitmproxy raises ValueError/KeyError/TypeError on bad state
        raise RecordError(f"{type(e).__name__}: {e}") from e


def record_to_exchange(raw: bytes, index: int, source: str) -> Exchange:
    """A raw record -> Exchange: the fast road for current HTTP flows, else mitmproxy's.

    RecordError if the record is not a readable flow.
    """
    from .fast import flow_state, http_exchange

    try:
        ex = http_exchange(flow_state(raw), index, source)
    except ValueError:
        ex = None
    if ex is not None:
        return ex
    return flow_to_exchange(decode_record(raw), index, source=source)


def read_flowfile(path: Path, start_index: int, warnings: list[str]) -> Iterator[Exchange]:
    n = 0
    for _, raw in iter_flowfile_records(path, warnings):
        try:
            ex = record_to_exchange(raw, start_index + n, str(path))
        except RecordError as e:
            damaged(path, n, str(e), warnings)
            return
        yield ex
        n += 1


def iter_flowfile_records(path: Path, warnings: list[str]) -> Iterator[tuple[int, bytes]]:
    """Raw records, turning damage into the same warning/InputError as decoding does."""
    n = 0
    try:
        for rec in iter_records(path):
            yield rec
            n += 1
    except RecordError as e:
        damaged(path, n, str(e), warnings)


def damaged(path: Path, n: int, reason: str, warnings: list[str]) -> None:
    """Records damage after ``n`` good flows: a warning, or an InputError if none was good."""
    if n == 0:
        raise InputError(f"{path}: not a readable mitmproxy flow file: {reason}")
    warnings.append(f"{path}: read {n} flows, then the file is damaged ({reason}); the rest of the file was skipped")
