"""Reading and detection spread over processes, results kept in input order.

The main process only splits inputs into items (a raw flow-file record, or a
HAR entry; with a pool, a record's place in its file instead of its bytes)
and batches them; worker processes read and decode each item into an
Exchange and run the detector on it, returning what the audit counts of
the flows and their findings (see :func:`analyze_batch`). Batches are
consumed in submission order with a bounded number in flight, so memory stays
flat whatever the capture size and the document is identical to a serial run.

The same batch function runs in-process for small inputs and ``jobs=1``.
"""

from __future__ import annotations

import gc
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .source import InputInfo, ReadState, file_sha256

BATCH = 200
#: With a pool, batches grow with the input up to this many flows (see
#: :func:`pool_batch`).
MAX_POOL_BATCH = 2000
#: A flow record's typical size in a capture file, to guess flows from bytes.
_RECORD_BYTES = 2500
#: A batch is closed early once its records hold this many bytes: a capture
#: of uploads (10 MB bodies) must not put gigabytes in flight.
BATCH_BYTES = 8 << 20
#: The input's last batches are cut into quarters of at least this many flows.
MIN_STEP = 25
#: Inputs smaller than this are analysed in-process: starting workers costs more.
PARALLEL_MIN_BYTES = 4 << 20

Item = tuple[int, str, str, Any]  # (provisional index, format, source path, raw record | (offset, length) | HAR entry)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def iter_items(
    opened: Sequence[tuple[Path, str]], state: ReadState, *, hash_now: bool = True, spans: bool = False
) -> Iterator[Item]:
    """Every flow of every opened input (:func:`~privaudit.source.open_inputs`) as
    an undecoded item, in input order. With ``hash_now`` false, each input's
    SHA-256 is left to ``state.hash_inputs()``. With ``spans``, a flow-file
    item holds its record's (offset, length) instead of its bytes: the
    worker that gets it reads the record (:func:`_with_records`)."""
    from .source.flowfile import iter_flowfile_records
    from .source.har import load_har

    i = 0
    for path, fmt in opened:
        info = InputInfo(path=str(path), sha256=file_sha256(path) if hash_now else "", format=fmt)
        if not hash_now:
            state.unhashed.append((info, path))
        state.inputs.append(info)
        if fmt == "har":
            for entry in load_har(path):
                yield (i, fmt, str(path), entry)
                i += 1
        else:
            for offset, rec in iter_flowfile_records(path, state.warnings, spans=spans):
                yield (i, fmt, str(path), (offset, rec) if spans else rec)
                i += 1


# Per-process detector: set by _init_worker in workers, or given directly in-process.
_DETECTOR = None

#: Batches between two explicit garbage collections while analysing.
GC_EVERY = 50


@contextmanager
def paced_gc() -> Iterator[None]:
    """Python's cyclic garbage collector off for the body, with an explicit
    collection every :data:`GC_EVERY` batches instead (see :func:`_batch_done`).

    Analysis allocates millions of short-lived containers (fields, tuples,
    decoded JSON) that reference counting frees; almost none form cycles
    (about 2,000 cyclic objects in a 10k-flow run). The automatic collector
    still walked the young ones every 700 allocations and, now and then,
    every object the rules and canaries are made of: 5-8 % of the CPU time
    of ``analyze`` for nothing. The paced collections keep memory bounded
    should hostile data make cycles after all. The previous state is
    restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_batches_done = 0


def _batch_done() -> None:
    global _batches_done
    _batches_done += 1
    if _batches_done % GC_EVERY == 0 and not gc.isenabled():
        # the young generation (what survived since the last time): a cycle
        # made and dropped within these batches is found there; everything,
        # older survivors included, one time in ten
        gc.collect(0 if _batches_done % (10 * GC_EVERY) else 2)


def _init_worker(rules_dirs: list[str], canaries_path: str | None, show_values: bool) -> None:
    global _DETECTOR
    gc.disable()  # collected every GC_EVERY batches instead (see paced_gc)
    if _DETECTOR is not None:  # forked from a process that had loaded it: nothing to load again
        return
    from .detect import Detector, load_canaries, load_rules

    rules = load_rules([Path(d) for d in rules_dirs])
    canaries = load_canaries(Path(canaries_path)) if canaries_path else None
    _DETECTOR = Detector(rules, canaries=canaries, show_values=show_values)


def analyze_batch(batch: list[Item], detector=None) -> list[tuple]:
    """Decodes and scans items. Returns, in order:

    ("run", source path, first flow's index, Tally, findings, count) for each
    run of consecutive flows read from one source: what the audit counts of
    them (:class:`~privaudit.audit.Tally`) and their ``count`` findings as
    UTF-8 JSON lines, each ended by a newline (they pickle as one block, and
    the audit writes them to its spool as they are) |
    ("skip", path, message) for an unreadable HAR entry |
    ("damaged", path, message) for a damaged flow-file record (the batch stops there).
    """
    from .audit import Tally, encode_findings, flow_facts
    from .source.flowfile import RecordError, record_to_exchange
    from .source.har import HarEntryError, entry_to_exchange

    det = detector if detector is not None else _DETECTOR
    if any(it[3].__class__ is tuple for it in batch):
        batch = _with_records(batch)
    out: list[tuple] = []
    tally = None
    source = first = None

    def close() -> None:  # the run so far, if any, goes out
        nonlocal tally
        if tally is None:
            return
        lines = tally.findings
        tally.findings = None  # (sent as one block below, not twice)
        text = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
        out.append(("run", source, first, tally, text, len(lines)))
        tally = None

    for index, fmt, path, payload in batch:
        try:
            if payload.__class__ is RecordError:  # (unreadable since the main process found it)
                raise payload
            if fmt == "har":
                ex = entry_to_exchange(payload, index, path)
            else:
                ex = record_to_exchange(payload, index, path)
        except HarEntryError as e:
            close()
            out.append(("skip", path, f"HAR entry {index} skipped: {e}"))
            continue
        except RecordError as e:
            close()
            out.append(("damaged", path, str(e)))
            break
        found = None
        err = None
        if ex.kind != "dns":
            try:
                found = encode_findings(ex, det.scan(ex))
            except Exception as e:  # one hostile flow must not end the audit
                err = f"{type(e).__name__}: {e}"
        if tally is None or ex.source != source:
            close()
            tally, source, first = Tally(), ex.source, ex.index
        tally.add_facts(flow_facts(ex), found, err)
    close()
    _batch_done()
    return out


def _with_records(batch: list[Item]) -> list[Item]:
    """The batch with each span item's record read, one read for each run of
    consecutive spans of one file. Reading stops at the first record that
    cannot be read: its item then holds the :class:`RecordError` (the batch
    ends there, as at a damaged record)."""
    from .source.flowfile import RecordError, read_spans

    out: list[Item] = []
    i = 0
    while i < len(batch):
        first = batch[i]
        if first[3].__class__ is not tuple:
            out.append(first)
            i += 1
            continue
        j = i + 1
        while j < len(batch) and batch[j][2] == first[2] and batch[j][3].__class__ is tuple:
            j += 1
        run = batch[i:j]
        try:
            raws, error = read_spans(first[2], [it[3] for it in run])
        except OSError as e:
            raws, error = [], RecordError(f"cannot read the record: {e}")
        out.extend([(it[0], it[1], it[2], raw) for it, raw in zip(run, raws)])
        if error is not None:
            out.append((*run[len(raws)][:3], error))
            return out
        i = j
    return out


def _size(payload: Any) -> int:
    """A record's bytes (a raw record, or a span's length); 0 for a HAR entry."""
    if payload.__class__ is bytes:
        return len(payload)
    if payload.__class__ is tuple:
        return payload[1]
    return 0


def pool_batch(total_bytes: int, jobs: int) -> int:
    """Flows per batch for a pool of ``jobs`` workers: about eight batches
    per worker, at least :data:`BATCH`, at most :data:`MAX_POOL_BATCH`.

    Batches go to whichever worker is free, so each worker's memos and
    caches (a value, a header, a JSON shape seen a moment ago) see only its
    own share of the stream. Flows next to each other repeat the most, so
    longer runs of consecutive flows keep the memos working: on the 100k
    benchmark capture a worker's half of the batches took 15.3 s of CPU in
    batches of 200 and 12.5 s in batches of 5,000 (the whole capture in one
    process: 26.4 s). Eight per worker keeps the last batches short enough
    that no core idles long at the end.
    """
    flows = total_bytes // _RECORD_BYTES
    return max(BATCH, min(MAX_POOL_BATCH, flows // (8 * jobs)))


def _batches(items: Iterator[Item], size: int | None = None) -> Iterator[list[Item]]:
    """Items in batches of ``size`` (default :data:`BATCH`), or fewer once a
    batch's records hold :data:`BATCH_BYTES` (HAR entries are not counted)."""
    size = size or BATCH
    batch: list[Item] = []
    held = 0
    for it in items:
        batch.append(it)
        held += _size(it[3])
        if len(batch) >= size or held >= BATCH_BYTES:
            yield batch
            batch = []
            held = 0
    if batch:
        yield batch


def _pieces(batches: Iterator[list[Item]], total: int, tail: int) -> Iterator[list[Item]]:
    """The batches, except that the last ``tail`` batches' worth of the
    input (by bytes read out of ``total``) come in quarters: a worker then
    has less queued when the input runs out, and the cores finish together.
    HAR entries are not counted (their batches come whole)."""
    seen = 0
    count = 0
    for batch in batches:
        held = sum(_size(it[3]) for it in batch)
        seen += held
        count += 1
        if held and 0 <= total - seen < tail * seen / count:  # (a file still growing: no end in sight)
            q = max(MIN_STEP, -(-len(batch) // 4))
            for i in range(0, len(batch), q):
                yield batch[i : i + q]
        else:
            yield batch


def _flows(batch: list[Item]) -> str:
    """'flows 12-40 of PATH': a batch's items, for a message."""
    first, last = batch[0], batch[-1]
    return f"flows {first[0]}-{last[0]} of {first[2]}" if first[2] == last[2] else f"flows from {first[2]} on"


def pool_jobs(opened: Sequence[tuple[Path, str]], jobs: int | None) -> int:
    """The worker processes :func:`run_batches` starts for these inputs and
    ``jobs`` (None: one per CPU); 1 means none, the work is done in-process."""
    jobs = default_jobs() if jobs is None else max(1, jobs)
    if not hasattr(os, "fork"):  # (e.g. Windows: the workers are forked, see privaudit.forkpool)
        return 1
    if jobs == 1 or sum(p.stat().st_size for p, _ in opened) < PARALLEL_MIN_BYTES:
        return 1
    return jobs


def run_batches(
    opened: Sequence[tuple[Path, str]],
    state: ReadState,
    detector,
    *,
    jobs: int | None,
    worker_args: tuple[list[str], str | None, bool],
    while_waiting: Callable[[], object] | None = None,
) -> Iterator[list[tuple]]:
    """Yields each batch's results in input order, in-process or from a pool.

    With a pool, the main process has time on its hands once the workers are
    busy: it then computes the inputs' SHA-256 (or takes them from
    ``state.hash_ahead``, which :func:`~privaudit.audit.analyze` starts when
    :func:`pool_jobs` says a pool will run) and calls ``while_waiting`` (the
    audit loads what only the document step needs), work that would
    otherwise come before the first flow or after the last one, with the
    second core idle. In-process, the inputs are hashed as they are opened
    and ``while_waiting`` is not called (one core, nothing to overlap).

    Each worker has up to two batches running or queued. The input's last
    batches come in quarters (:func:`_pieces`): with whole batches of up to
    2,000 flows, one worker was still working off its queue 0.9 s after the
    other had run out, in a 17 s run of 100k flows (timed per batch); in
    quarters they finish within 0.1 s of each other.

    Measured and not kept: the main process analysing a share itself (one
    worker fewer, a worker handed the rest of the main process's batch when
    it ran short). The two finished together, but spent ~5 % more time per
    flow (shorter runs of consecutive flows for each process's memos): in two
    series of side-by-side runs of 100k flows its medians were 21.2 and
    24.4 s, against 19.6 and 21.8 s for two workers.
    """
    jobs = pool_jobs(opened, jobs)
    total = sum(p.stat().st_size for p, _ in opened)
    if jobs == 1:
        items = iter_items(opened, state)
        with paced_gc():
            for batch in _batches(items):
                yield analyze_batch(batch, detector)
        return
    # The workers read the records themselves: the main process only finds
    # where each one starts (see iter_record_spans), and sends that.
    items = iter_items(opened, state, hash_now=False, spans=True)

    from .forkpool import ForkPool

    global _DETECTOR
    # Forked workers inherit the detector already built here (rules compiled,
    # canaries loaded) instead of building their own: start-up paid once.
    inherited = _DETECTOR
    if detector is not None:
        _DETECTOR = detector  # until the workers are forked
    state.stop_hashing()  # no thread of ours runs when the workers fork
    finished = False
    try:
        with paced_gc():
            pool = ForkPool(jobs, lambda: _init_worker(*worker_args), analyze_batch, _flows)
            _DETECTOR = inherited
            try:
                pieces = _pieces(_batches(items, pool_batch(total, jobs)), total, 2 * jobs + 2)
                sent = done = 0  # batches handed out, results yielded
                ready: dict[int, list[tuple]] = {}
                idle_work = exhausted = False
                while True:
                    # Each worker holds at most two batches (one running, one
                    # queued in its pipe), and at most 4 x jobs results wait
                    # to go out in order: a worker that is ahead never idles
                    # for want of a batch, and memory stays bounded.
                    while not exhausted and sent - done < 4 * jobs:
                        w = pool.idlest()
                        if len(w.held) >= 2:
                            break
                        batch = next(pieces, None)
                        if batch is None:
                            exhausted = True
                            break
                        pool.send(w, sent, batch)
                        sent += 1
                    if not idle_work:  # the workers have their first batches
                        idle_work = True
                        state.hash_inputs()
                        if while_waiting is not None:
                            while_waiting()
                    if exhausted and done == sent:
                        break
                    for seq, results in pool.wait():
                        ready[seq] = results
                    while done in ready:
                        results = ready.pop(done)
                        done += 1
                        _batch_done()
                        yield results
                finished = True
            finally:
                pool.close(kill=not finished)
        state.hash_inputs()  # inputs opened after the first batches
    finally:
        _DETECTOR = inherited
