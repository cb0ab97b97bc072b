"""mitmproxy flow files (``.mitm``/``.flows``), every version mitmproxy can still read.

A flow file is a sequence of tnetstrings, one per flow. We split the file into
raw records ourselves (cheap: a length prefix and a slice) and decode each
record the way :class:`mitmproxy.io.FlowReader` does (``tnetstring.loads``,
``compat.migrate_flow``, ``Flow.from_state``), so that records can be decoded
in worker processes, in parallel, and still in order.
"""

from __future__ import annotations

import os
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
            digits, n, rest = _head(head, offset)
            need = n + 1 - len(rest)
            body = rest + (f.read(need) if need > 0 else b"")
            if len(body) < n + 1:
                raise RecordError(f"record at byte {offset} is cut short ({len(body)} of {n + 1} bytes)")
            if len(body) > n + 1:  # the 13-byte peek ran past a short record
                f.seek(offset + len(digits) + 1 + n + 1)
                body = body[: n + 1]
            yield offset, digits + b":" + body


def iter_record_spans(path: Path, chunk: int = 1 << 16) -> Iterator[tuple[int, int]]:
    """Yields (byte offset, length) of each record of a flow file: what
    :func:`iter_records` yields, without the bytes (a worker process reads
    them itself, see :func:`read_spans`), and the same :class:`RecordError`
    at the same record. Only the length prefixes are looked at, in ``chunk``
    bytes read at a time (~1.6 µs a record with the generator, against ~4
    for reading the records). 64 KB: with 1 MB reads, every buffer was a
    fresh mapping, ~3,000 page faults more over a 26 MB capture, and no
    faster."""
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        base = 0  # the file offset of buf[0]
        buf = b""
        pos = 0  # the next record, in buf
        while True:
            if len(buf) - pos < 13:  # its prefix may run past what is read
                base += pos
                buf = buf[pos:] + os.pread(fd, chunk, base + len(buf) - pos)
                pos = 0
                if not buf:
                    return
            digits, n, _ = _head(buf[pos : pos + 13], base + pos)
            colon = pos + len(digits)
            length = len(digits) + 1 + n + 1
            end = pos + length
            if end > len(buf):  # past what is read: the file must hold it
                size = os.fstat(fd).st_size
                if base + end > size:
                    raise RecordError(f"record at byte {base + pos} is cut short ({size - base - colon - 1} of {n + 1} bytes)")
                if end - len(buf) > chunk:  # a big record: skip it, not read it
                    yield base + pos, length
                    base += end
                    buf = b""
                    pos = 0
                    continue
                base += pos
                buf = buf[pos:] + os.pread(fd, chunk, base + len(buf) - pos)
                end -= pos
                pos = 0
                if end > len(buf):  # (the file shrank since its size was read)
                    raise RecordError(f"record at byte {base} is cut short (the file shrank while it was read)")
            yield base + pos, length
            pos = end


def read_spans(path: str | Path, spans: list[tuple[int, int]]) -> tuple[list[bytes], RecordError | None]:
    """The records at ``spans`` (from :func:`iter_record_spans`, consecutive
    and in file order), read with one call, and None; or, if the file no
    longer holds them all (truncated since), those before the first it does
    not hold and a :class:`RecordError` for that one."""
    start = spans[0][0]
    end = spans[-1][0] + spans[-1][1]
    with open(path, "rb", buffering=0) as f:
        data = os.pread(f.fileno(), end - start, start)
    if len(data) == end - start:
        return [data[o - start : o - start + n] for o, n in spans], None
    good = [data[o - start : o - start + n] for o, n in spans if o - start + n <= len(data)]
    bad = spans[len(good)][0]
    return good, RecordError(f"record at byte {bad} is cut short (the file shrank since it was split)")


def _head(head: bytes, offset: int) -> tuple[bytes, int, bytes]:
    """A record's first bytes -> (length digits, payload length, the rest of ``head``)."""
    digits, colon, rest = head.partition(b":")
    if not colon or not digits.isdigit() or len(digits) > 12:
        raise RecordError(f"no length prefix at byte {offset}")
    return digits, int(digits), rest


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


def iter_flowfile_records(path: Path, warnings: list[str], *, spans: bool = False) -> Iterator[tuple[int, Any]]:
    """Raw records (with ``spans``, their (offset, length) only: see
    :func:`iter_record_spans`), turning damage into the same
    warning/InputError as decoding does."""
    n = 0
    try:
        for rec in iter_record_spans(path) if spans else iter_records(path):
            yield rec
            n += 1
    except RecordError as e:
        damaged(path, n, str(e), warnings)


def damaged(path: Path, n: int, reason: str, warnings: list[str]) -> None:
    """Records damage after ``n`` good flows: a warning, or an InputError if none was good."""
    if n == 0:
        raise InputError(f"{path}: not a readable mitmproxy flow file: {reason}")
    warnings.append(f"{path}: read {n} flows, then the file is damaged ({reason}); the rest of the file was skipped")
