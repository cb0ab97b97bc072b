"""Live analysis during a capture, never on mitmproxy's event loop.

The :class:`~privaudit.capture.addon.Recorder` appends each completed flow to
the flow file and hands :class:`LiveAnalysis` only the flow's place in it
(index, byte offset, length) through a bounded queue: nothing on the event
loop waits for the analysis, and the queue holds no flow bodies. A worker
thread takes each place and has a separate, lower-priority process read the
flow back from the file (from the page cache, as ``privaudit analyze`` would
read it) and scan it; the thread feeds the result to the shared
:class:`privaudit.audit.Audit`. Scanning in a process, not the thread, keeps
it from holding the interpreter lock the proxy needs. When the queue is full the flow is
*deferred*: its place is remembered and the worker reads it later, so no flow
is ever dropped. An exception anywhere in the analysis is counted
(``coverage.analysis_errors``) and never reaches the traffic.

What the analysis finds goes three ways: counters for the dashboard
(:meth:`LiveAnalysis.snapshot`), comments and marks on the flows mitmweb
shows (set on the event loop, only on flows still in its view), and at the
end the findings document (``findings.json``).
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

from mitmproxy import ctx, exceptions, hooks

logger = logging.getLogger(__name__)

#: Flows waiting for the analysis before new ones are deferred (read back later).
QUEUE_SIZE = 1024

#: At the end of a capture the analysis catches up with what is still queued;
#: if it makes no progress for this long (a pathological flow), it is given up
#: and ``privaudit analyze AUDIT_DIR`` is left to do the work.
STALL_SECONDS = 60.0

#: How many findings a flow's mitmweb comment lists.
COMMENT_FINDINGS = 8

_SEVERE = ("high", "critical")

#: Flows handed to the analysis process in one call, at most.
BATCH_MAX = 256
#: Pause after each batch, so that flows queue up into the next one.
BATCH_PAUSE = 0.05

#: Niceness of the analysis process: under load the kernel gives the proxy the
#: CPU first; the analysis catches up (or defers) instead of slowing traffic.
ANALYSIS_NICE = 10


def _init_scanner(rules_dirs: list[str], canaries: str | None) -> None:
    """Runs in the analysis process: lower priority, then load rules and canaries once."""
    try:
        os.nice(ANALYSIS_NICE)
    except OSError:  # pragma: no cover - not permitted: run at normal priority
        pass
    from privaudit.parallel import _init_worker

    _init_worker(rules_dirs, canaries, False)


def read_exchange(raw: bytes, index: int, source: str):
    """A recorded flow back as (Exchange, mitmproxy flow id): the fast road, else mitmproxy's."""
    from privaudit.source.convert import flow_to_exchange
    from privaudit.source.fast import flow_state, http_exchange
    from privaudit.source.flowfile import decode_record

    try:
        state = flow_state(raw)
        ex = http_exchange(state, index, source)
        if ex is not None:
            return ex, state.get("id")
    except ValueError:
        pass
    flow = decode_record(raw)
    return flow_to_exchange(flow, index, source=source), flow.id


def _scan_records(source: str, items: list) -> list:
    """Runs in the analysis process: :func:`_scan_record` for each queued (index, offset, length, data)."""
    return [_scan_record(index, source, offset, length, data) for index, offset, length, data in items]


def _scan_record(index: int, source: str, offset: int | None, length: int, raw: bytes | None):
    """Runs in the analysis process: read one flow back, scan it.

    Returns ("read", error text) if the flow cannot be read, else
    ("ok", exchange without bodies, flow id, findings or None, scan error or None).
    """
    from privaudit import parallel

    try:
        if raw is None:
            with open(source, "rb") as f:
                raw = os.pread(f.fileno(), length, offset)
        ex, flow_id = read_exchange(raw, index, source)
    except Exception as e:
        return ("read", f"{type(e).__name__}: {e}")
    try:
        found, err = parallel._DETECTOR.scan(ex), None
    except Exception as e:
        found, err = None, f"{type(e).__name__}: {e}"
    return ("ok", _slim(ex), flow_id, found, err)


def _slim(ex):
    """The Exchange without bodies: all the audit keeps, cheap to send back from the process."""
    from dataclasses import replace

    req = replace(ex.request, body=b"") if ex.request is not None else None
    resp = replace(ex.response, body=b"") if ex.response is not None else None
    ws = tuple(replace(m, content=b"") for m in ex.websocket)
    return replace(ex, request=req, response=resp, websocket=ws)


class LiveAnalysis:
    """mitmproxy addon: analyses each recorded flow off the event loop (a worker
    thread that hands the scanning to a lower-priority process).

    ``build_audit`` makes the :class:`~privaudit.audit.Audit` the worker fills
    (default: :func:`privaudit.audit.build` with the session's canaries, own
    domains, extra rules and GeoIP files); it runs in the worker, so loading
    rules never delays the proxy.
    """

    def __init__(self, build_audit: Callable[[], Any] | None = None, queue_size: int = QUEUE_SIZE) -> None:
        self.build_audit = build_audit
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self.enabled = True
        self.annotate = True
        self.findings_path: Path | None = None
        self.rules_dirs: tuple[str, ...] = ()
        self.geoip: tuple[str, ...] = ()
        self.recorder: Any = None
        self.session: Any = None
        self.audit: Any = None
        self.rules_digest: str | None = None
        self.build_error: str | None = None
        self.document: dict | None = None
        # counters (written by the loop: deferred/not_analysed; by the worker: the rest)
        self.analysed = 0
        self.deferred_total = 0
        self.not_analysed = 0
        self.read_errors = 0
        self._deferred: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: Any = None
        self._master: Any = None
        self._own_regs: frozenset[str] = frozenset()
        self._stats = _Stats()
        self._finished = False
        self.crashed: str | None = None
        self._pool: Any = None
        self.problem: str | None = None
        """Why there is no findings document at the end, if there is none."""

    def attach(self, recorder) -> None:
        self.recorder = recorder
        recorder.listeners.append(self.offer)

    # --- mitmproxy hooks ---------------------------------------------------------

    def load(self, loader) -> None:
        loader.add_option("privaudit_live", bool, True, "Analyse flows while capturing, off the proxy's event loop (in a separate process).")
        loader.add_option(
            "privaudit_findings_file",
            Optional[str],
            None,
            "Write the live analysis' findings document here when the capture ends (mode 0600).",
        )
        loader.add_option("privaudit_rules", Sequence[str], [], "Extra rules folders for the live analysis.")
        loader.add_option("privaudit_geoip", Sequence[str], [], "GeoIP/ASN MMDB files for the live analysis.")
        loader.add_option(
            "privaudit_annotate", bool, True, "Comment and mark flows with their findings (shown by mitmweb)."
        )

    def configure(self, updated) -> None:
        opts = ctx.options
        if "privaudit_live" in updated:
            self.enabled = bool(opts.privaudit_live)
        if "privaudit_annotate" in updated:
            self.annotate = bool(opts.privaudit_annotate)
        if "privaudit_findings_file" in updated:
            v = opts.privaudit_findings_file
            self.findings_path = Path(v).expanduser() if v else None
        if "privaudit_rules" in updated:
            for d in opts.privaudit_rules:
                if not Path(d).expanduser().is_dir():
                    raise exceptions.OptionsError(f"privaudit_rules: {d} is not a folder of rules")
            self.rules_dirs = tuple(opts.privaudit_rules)
        if "privaudit_geoip" in updated:
            for g in opts.privaudit_geoip:
                if not Path(g).expanduser().is_file():
                    raise exceptions.OptionsError(f"privaudit_geoip: cannot read {g}")
            self.geoip = tuple(opts.privaudit_geoip)

    def running(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        import asyncio

        from privaudit.capture.addon import parse_domains

        self._loop = asyncio.get_running_loop()
        self._master = ctx.master
        if self.session is not None:  # its options, checked and normalised at start-up
            own, canaries = self.session.own_domains, self.session.canaries
        else:
            own = parse_domains(getattr(ctx.options, "privaudit_own_domains", ()))
            c = getattr(ctx.options, "privaudit_canaries", None)
            canaries = Path(c).expanduser() if c else None
        self._own_regs = frozenset(_reg(d.removeprefix("*.")) for d in own)
        rec = self.recorder
        if rec is not None and rec.existing:
            # flows already in the file (a session resumed into the same folder)
            self._deferred.append(("range", 0, rec.existing_bytes, None))
        self._thread = threading.Thread(
            target=self._work, args=(canaries, own), name="privaudit-analysis", daemon=True
        )
        self._thread.start()

    def done(self) -> None:
        self.finish()

    # --- hand-over (event loop) ------------------------------------------------------

    def offer(self, index: int, flow_id: str, offset: int | None, data: bytes) -> None:
        """A flow was recorded: queue it for analysis without ever blocking."""
        if not self.enabled or self._finished or self.build_error or self.crashed:
            return
        item = (index, offset, len(data), data if offset is None else None)
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            if offset is None:  # no flow file to read it back from later
                self.not_analysed += 1
                return
            with self._lock:
                self._deferred.append(item)
                self.deferred_total += 1

    def finish(self, timeout: float | None = None) -> dict | None:
        """Analyse what is still queued or deferred, then write the findings
        document (if ``privaudit_findings_file`` is set). Idempotent."""
        if self._finished:
            return self.document
        self._finished = True
        self._stop.set()
        if self._thread is not None and not self._join(timeout):
            self.problem = f"the analysis got stuck after {self.analysed} flows"
            logger.error("privaudit: %s; no findings document was written: run `privaudit analyze` on the audit "
                         "folder", self.problem)
            return None
        if self.audit is not None and not self.crashed:  # a partial document must not pass for a whole one
            try:
                self.document = self._document()
                if self.findings_path is not None:
                    from privaudit.capture.files import write_private_json

                    write_private_json(self.findings_path, self.document)
            except Exception as e:  # the flow file is safe; findings can be made again with `privaudit analyze`
                self.document = None
                self.problem = f"could not write the findings document {self.findings_path}: {type(e).__name__}: {e}"
                logger.error("privaudit: %s", self.problem)
        else:
            self.problem = self.problem or self.build_error or self.crashed or "the live analysis did not start"
        return self.document

    def _join(self, timeout: float | None) -> bool:
        """Wait for the worker while it makes progress (at most ``timeout``)."""
        assert self._thread is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._thread.is_alive():
            done_before = self.analysed + self.read_errors + (self.audit.analysis_errors if self.audit else 0)
            wait = STALL_SECONDS if deadline is None else min(STALL_SECONDS, max(0.0, deadline - time.monotonic()))
            self._thread.join(wait)
            if not self._thread.is_alive():
                break
            done_after = self.analysed + self.read_errors + (self.audit.analysis_errors if self.audit else 0)
            if done_after == done_before or (deadline is not None and time.monotonic() >= deadline):
                return False
        return True

    # --- the worker thread -------------------------------------------------------------

    def _work(self, canaries: Path | None, own_domains: tuple[str, ...]) -> None:
        try:
            if self.build_audit is not None:
                audit = self.build_audit()
            else:
                from privaudit.audit import build

                audit = build(
                    rules_dirs=self.rules_dirs,
                    canaries_path=canaries,
                    geoip_paths=self.geoip,
                    own_domains=tuple(d.removeprefix("*.") for d in own_domains),
                )
        except Exception as e:
            self.build_error = f"{type(e).__name__}: {e}"
            logger.error("privaudit: live analysis is off (%s); `privaudit analyze` the audit folder afterwards", e)
            return
        self.audit = audit
        self.rules_digest = getattr(audit, "rules_digest", None)
        if self.build_audit is None:
            self._start_scanner(canaries)
        self._call_on_loop(self._session_write)
        fd: int | None = None
        try:
            while True:
                item = self._next()
                if item is None:
                    break
                if fd is None and self.recorder is not None and self.recorder.path is not None and (
                    item[0] == "range" or item[1] is not None
                ):
                    fd = os.open(self.recorder.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                if item[0] == "range":
                    self._analyse_range(fd, item[1], item[2])
                elif self._pool is not None:
                    # Flows that queued up meanwhile go to the process in one call:
                    # one wake-up of the pool's threads per batch, not per flow, so
                    # the interpreter lock the proxy needs changes hands rarely.
                    batch = [item]
                    while len(batch) < BATCH_MAX:
                        try:
                            nxt = self.queue.get_nowait()
                        except queue.Empty:
                            break
                        if nxt[0] == "range":
                            self._deferred.appendleft(nxt)
                            break
                        batch.append(nxt)
                    self._analyse_batch(fd, batch)
                    time.sleep(BATCH_PAUSE)
                else:
                    self._analyse(fd, *item)
        except Exception as e:  # e.g. the flow file cannot be opened for reading
            self.crashed = f"{type(e).__name__}: {e}"
            logger.error("privaudit: live analysis stopped (%s); `privaudit analyze` the audit folder afterwards", e)
        finally:
            if fd is not None:
                os.close(fd)
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)

    def _start_scanner(self, canaries: Path | None) -> None:
        """The default analysis scans in a separate, lower-priority process: a
        thread would hold the interpreter lock the proxy needs and halve its
        throughput. A custom ``build_audit`` (tests, embedders) scans in this thread."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        try:
            # spawn, not fork: mitmproxy's threads and event loop must not be copied mid-flight
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_scanner,
                initargs=([str(d) for d in self.rules_dirs], str(canaries) if canaries else None),
            )
        except Exception as e:  # pragma: no cover - no process support: scan in this thread
            logger.warning("privaudit: analysis process unavailable (%s); analysing in a thread", e)
            self._pool = None

    def _next(self):
        while True:
            try:
                return self.queue.get_nowait()
            except queue.Empty:
                pass
            with self._lock:
                if self._deferred:
                    return self._deferred.popleft()
            if self._stop.is_set():
                return None
            try:
                return self.queue.get(timeout=0.2)
            except queue.Empty:
                continue

    def _analyse_range(self, fd: int | None, start: int, end: int) -> None:
        """Flows already in the file when the session began, indices from 0."""
        from privaudit.source.flowfile import iter_records

        if self.recorder is None or self.recorder.path is None:
            return
        n = 0
        try:
            for offset, raw in iter_records(self.recorder.path):
                if offset >= end:
                    break
                if offset < start:
                    n += 1
                    continue
                self._analyse(fd, n, offset, len(raw), raw)
                n += 1
        except Exception as e:
            self._failed(n, "could not be read back for analysis", f"{type(e).__name__}: {e}")

    def _analyse_batch(self, fd: int | None, items: list) -> None:
        """Scans (index, offset, length, data) items in the analysis process, or
        in this thread when there is none (a custom ``build_audit``, or the
        process died), and feeds each result on."""
        source = str(self.recorder.path) if self.recorder and self.recorder.path else ""
        if self._pool is not None:
            try:
                results = self._pool.submit(_scan_records, source, items).result()
            except Exception as e:  # the process died: go on in this thread
                logger.warning("privaudit: analysis process failed (%s); analysing in a thread", e)
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                results = None
            if results is not None:
                for it, res in zip(items, results):
                    self._take(it[0], res)
                return
        for index, offset, length, data in items:
            try:
                raw = data if data is not None else os.pread(fd, length, offset)  # type: ignore[arg-type]
                ex, flow_id = read_exchange(raw, index, source)
            except Exception as e:
                self._take(index, ("read", f"{type(e).__name__}: {e}"))
                continue
            # found=None: audit.add scans here, counting the detector's own exceptions
            self._take(index, ("ok", ex, flow_id, None, None))

    def _analyse(self, fd: int | None, index: int, offset: int | None, length: int, data: bytes | None) -> None:
        self._analyse_batch(fd, [(index, offset, length, data)])

    def _take(self, index: int, res: tuple) -> None:
        """Feeds one scan result to the audit, the dashboard and mitmweb."""
        audit = self.audit
        if res[0] == "read":
            self.read_errors += 1
            self._failed(index, "could not be read back for analysis", res[1])
            return
        _, ex, flow_id, found, err = res
        try:
            found = audit.add(ex, found, err)
        except Exception as e:
            self._failed(index, "analysis failed", f"{type(e).__name__}: {e}")
            return
        self.analysed += 1
        try:
            self._stats.add(ex, found, audit, self._own_regs)
        except Exception as e:  # pragma: no cover - the dashboard's counters are best effort
            logger.debug("privaudit: dashboard counters: %s", e)
        if found and self.annotate:
            self._call_on_loop(self._annotate, flow_id, [f.to_json() for f in found])

    def _failed(self, index: int, what: str, detail: str) -> None:
        msg = f"flow {index}: {what}: {detail}"
        if self.audit is not None:
            self.audit.analysis_errors += 1
            self.audit.warnings.append(msg)
        self._stats.error(msg)
        logger.debug("privaudit: %s", msg)

    def _call_on_loop(self, fn, *args) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed meanwhile
            pass

    # --- back on the event loop -------------------------------------------------------

    def _session_write(self) -> None:
        if self.session is not None:
            self.session.write(self.session.ended)

    def _annotate(self, flow_id: str, findings: list[dict]) -> None:
        """Comment and mark a flow mitmweb still shows (safe: looked up by id)."""
        master = self._master
        view = master.addons.get("view") if master is not None else None
        if view is None:
            return
        f = view.get_by_id(flow_id)
        if f is None:
            return
        f.comment = "\n".join(filter(None, [f.comment, comment_text(findings)]))
        if not f.marked:
            f.marked = ":red_circle:" if any(d["severity"] in _SEVERE for d in findings) else ":warning:"
        master.addons.trigger(hooks.UpdateHook([f]))

    # --- what the dashboard and meta.json read ------------------------------------------

    def counters(self) -> dict:
        audit = self.audit
        return {
            "flows_analysed": self.analysed,
            "analysis_errors": audit.analysis_errors if audit is not None else 0,
            "findings": len(audit.findings) if audit is not None else 0,
            "queued": self.queue.qsize(),
            "deferred": self.deferred_total,
            "deferred_pending": len(self._deferred),
            "not_analysed": self.not_analysed,
            "rules_error": self.build_error,
            "stopped": self.crashed,
        }

    def snapshot(self) -> dict:
        """A consistent copy of everything the dashboard shows (thread-safe)."""
        rec, session = self.recorder, self.session
        snap = self._stats.snapshot()
        snap.update(self.counters())
        snap["enabled"] = self.enabled
        snap["ready"] = self.audit is not None
        snap["flows_recorded"] = rec.count if rec is not None else 0
        snap["write_errors"] = rec.write_errors if rec is not None else 0
        snap["last_write_error"] = rec.last_error if rec is not None else None
        snap["phases"] = list(session.phases) if session is not None else []
        snap["own_domains"] = sorted(self._own_regs)
        snap["started"] = session.started if session is not None else None
        return snap

    def _document(self) -> dict:
        from privaudit.source import file_sha256

        rec = self.recorder
        inputs = []
        if rec is not None and rec.path is not None and rec.path.exists():
            inputs.append({"path": str(rec.path), "sha256": file_sha256(rec.path), "format": "mitm", "flows": rec.count})
        doc = self.audit.document(inputs)
        # Deferred flows were analysed later; sorted() also takes a spilled FindingSpool.
        doc["findings"] = sorted(doc["findings"], key=lambda d: d["flow_index"])
        if self.session is not None:
            doc["phases"] = list(self.session.phases)
        return doc


def comment_text(findings: list[dict]) -> str:
    """A flow's findings as mitmweb shows them in the flow's comment."""
    lines = [f"privaudit: {len(findings)} finding{'s' if len(findings) != 1 else ''}"]
    for d in findings[:COMMENT_FINDINGS]:
        lines.append(f"- {d['category']} ({d['severity']}) {d['location']} [{d['rule']}]")
    if len(findings) > COMMENT_FINDINGS:
        lines.append(f"- ... and {len(findings) - COMMENT_FINDINGS} more")
    return "\n".join(lines)


def _reg(host: str) -> str:
    from privaudit.jurisdiction.parties import _reg as reg

    return reg(host)


class _Stats:
    """The dashboard's counters, updated by the worker thread."""

    RECENT = 8
    ERRORS = 5

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hosts: dict[str, dict] = {}
        self.countries: dict[str, dict] = {}
        self.categories: collections.Counter = collections.Counter()
        self.parties: list[dict] = []
        self._regs: set[str] = set()
        self.recent: collections.deque = collections.deque(maxlen=self.RECENT)
        self.errors: collections.deque = collections.deque(maxlen=self.ERRORS)

    def add(self, ex, found, audit, own_regs: frozenset[str]) -> None:
        if ex.kind == "dns" or not ex.host:
            return
        host = self.hosts.get(ex.host)
        if host is None or (host["country"] is None and ex.server_ip and not host["located"]):
            country, jur = None, []
            try:
                info = audit.locator.describe(ex.host, [ex.server_ip] if ex.server_ip else [], cert=ex.cert)
                country, jur = info.hosting_country, list(info.jurisdictions)
            except Exception:
                pass
            if host is None:
                reg = _reg(ex.host)
                host = {"reg": reg, "country": country, "jurisdictions": jur, "flows": 0,
                        "categories": set(), "located": bool(ex.server_ip)}
                with self.lock:
                    self.hosts[ex.host] = host
                    if reg not in self._regs:
                        self._regs.add(reg)
                        party = None if not own_regs else ("first" if reg in own_regs else "third")
                        self.parties.append({"domain": reg, "host": ex.host, "country": country,
                                             "party": party, "time": time.time()})
            else:
                host.update(country=country, jurisdictions=jur, located=True)
        with self.lock:
            host["flows"] += 1
            key = host["country"] or "??"
            c = self.countries.setdefault(key, {"hosts": set(), "flows": 0, "categories": set()})
            c["hosts"].add(ex.host)
            c["flows"] += 1
            for f in found:
                self.categories[f.category] += 1
                if f.side == "request":
                    host["categories"].add(f.category)
                    c["categories"].add(f.category)
                self.recent.append({"host": f.host, "category": f.category, "severity": f.severity,
                                    "location": f.location, "time": time.time()})

    def error(self, msg: str) -> None:
        with self.lock:
            self.errors.append(msg)

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "hosts": {h: {**v, "categories": sorted(v["categories"])} for h, v in self.hosts.items()},
                "countries": {k: {"hosts": len(v["hosts"]), "flows": v["flows"], "categories": sorted(v["categories"])}
                              for k, v in self.countries.items()},
                "categories": dict(self.categories),
                "parties": [dict(p) for p in self.parties],
                "recent": list(self.recent),
                "errors": list(self.errors),
            }
