"""Live analysis during a capture, never on mitmproxy's event loop.

The :class:`~privaudit.capture.addon.Recorder` appends each completed flow to
the flow file. By default a separate, lowest-priority process (the *scanner*)
follows that file the way ``tail -f`` does: it reads the flows the recorder
has written (from the page cache, as ``privaudit analyze`` would read them),
scans them and keeps the whole :class:`privaudit.audit.Audit`. The proxy
process does no analysis work: for each recorded flow it only moves a shared
"written up to byte N" mark (one store into shared memory), so the scanner
never reads a record still being written. What the scanner finds comes back
over a pipe a few times a second as the dashboard's counters (and, under
mitmweb, the findings to show on flows); at the end it writes the findings
document itself. Under load the scanner falls behind (the dashboard lags;
``queued`` says by how many flows) and catches up when the traffic pauses or
the capture ends; no flow is skipped.

With a custom ``build_audit`` (tests, embedders), or without a flow file, a
worker thread in the proxy process analyses instead: the recorder hands it
each flow's place in the file (or, without a file, its bytes) through a
bounded queue; when the queue is full the flow is *deferred*: its place is
remembered and the worker reads it later, so no flow is ever dropped.

An exception anywhere in the analysis is counted
(``coverage.analysis_errors``) and never reaches the traffic. What the
analysis finds goes three ways: counters for the dashboard
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

#: Flows waiting for the worker thread before new ones are deferred (read back later).
QUEUE_SIZE = 1024

#: At the end of a capture the analysis catches up with what is still queued;
#: if it makes no progress for this long (a pathological flow), it is given up
#: and ``privaudit analyze AUDIT_DIR`` is left to do the work.
STALL_SECONDS = 60.0

#: How many findings a flow's mitmweb comment lists.
COMMENT_FINDINGS = 8

_SEVERE = ("high", "critical")

#: Niceness of the scanner process: under load the kernel gives the proxy (and
#: the app's traffic) the CPU first; the scanner catches up when there is time.
ANALYSIS_NICE = 19

#: How long the idle scanner waits before it looks for new flows again.
SCANNER_POLL = 0.02
#: The scanner sends the dashboard's counters at most this often.
SCANNER_REPORT = 0.25
#: Bytes of the flow file the scanner reads at a time (a longer record is read whole).
SCANNER_CHUNK = 1 << 20
#: Flows recorded per second above which the scanner yields to the traffic: it
#: then analyses at most :data:`BUSY_BATCH` flows every :data:`BUSY_PAUSE`
#: seconds (the dashboard lags) and catches up at full speed once the traffic
#: slows down, or at the end of the capture.
BUSY_RATE = 50.0
BUSY_BATCH = 8
BUSY_PAUSE = 0.1


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


# --- the scanner process ----------------------------------------------------------------


def scanner_main(conn, path: str, written, settings: dict) -> None:
    """The scanner process: follows the flow file ``path`` up to ``written[0]``
    (bytes of whole records; ``written[1]`` counts the flows recorded, which
    tells how busy the proxy is) and analyses every flow.

    Messages to the proxy on ``conn``: ``("ready", rules digest)``,
    ``("build_error", text)``, ``("crashed", text)``, ``("stats", report)``,
    ``("done", report)``. From the proxy: ``("finish", {...})``. It ends after
    ``done``, or when the proxy is gone (``conn`` closed).
    """
    import signal

    # Ctrl-C in a terminal reaches the whole process group: the proxy says when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _lower_priority(0)
    try:
        _Scanner(conn, path, written, settings).run()
    except (EOFError, OSError) as e:  # the proxy is gone (or the pipe with it): nobody to report to
        logger.debug("privaudit scanner: %s", e)


def _lower_priority(pid: int) -> None:
    """Gives process ``pid`` (0: this one) the niceness :data:`ANALYSIS_NICE`, if it has less."""
    try:
        if os.getpriority(os.PRIO_PROCESS, pid) < ANALYSIS_NICE:
            os.setpriority(os.PRIO_PROCESS, pid, ANALYSIS_NICE)
    except (OSError, AttributeError):  # pragma: no cover - not permitted, or not POSIX: normal priority
        pass


class _Scanner:
    """The scanner process's state (see :func:`scanner_main`)."""

    def __init__(self, conn, path: str, written, settings: dict) -> None:
        self.conn = conn
        self.path = path
        self.written = written
        self.settings = settings
        self.annotate = bool(settings.get("annotate"))
        self.own_regs = frozenset(settings.get("own_regs") or ())
        self.audit: Any = None
        self.stats = _Stats()
        self.pos = 0
        self.index = 0
        self.analysed = 0
        self.read_errors = 0
        self.notes: list = []
        self.last_report = 0.0
        self.dirty = True
        self.rate = 0.0
        self._rate_at = (time.monotonic(), 0)

    def run(self) -> None:
        s = self.settings
        try:
            from privaudit.audit import build

            self.audit = build(
                rules_dirs=s.get("rules_dirs") or (),
                canaries_path=s.get("canaries"),
                geoip_paths=s.get("geoip") or (),
                own_domains=s.get("own_domains") or (),
            )
        except Exception as e:
            self.conn.send(("build_error", f"{type(e).__name__}: {e}"))
            return
        self.conn.send(("ready", getattr(self.audit, "rules_digest", None)))
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as e:
            self.conn.send(("crashed", f"{type(e).__name__}: {e}"))
            return
        try:
            finish = self._follow(fd)
        except Exception as e:  # e.g. the file was cut short under us
            self.conn.send(("crashed", f"{type(e).__name__}: {e}"))
            return
        finally:
            os.close(fd)
        self._report("stats")
        self.conn.send(("done", self._finish(finish)))

    def _follow(self, fd: int) -> dict:
        """Analyses flows as they are written until the proxy says ``finish``
        and everything up to its last byte is analysed; returns its message."""
        finish: dict | None = None
        while True:
            end = self.written[0] if finish is None else finish["end"]
            busy = finish is None and self._busy()
            progressed = self.pos < end and self._step(fd, end, BUSY_BATCH if busy else None)
            if finish is not None and (self.pos >= end or not progressed):
                return finish
            if self.dirty and (not progressed or time.monotonic() - self.last_report >= SCANNER_REPORT):
                self._report("stats")
            if self.conn.poll(SCANNER_POLL if not progressed else BUSY_PAUSE if busy else 0):
                msg = self.conn.recv()  # EOFError when the proxy is gone
                if msg[0] == "finish":
                    finish = msg[1]

    def _busy(self) -> bool:
        """Is the proxy recording more than :data:`BUSY_RATE` flows a second?"""
        now = time.monotonic()
        at, n = self._rate_at
        if now - at >= 0.2:
            flows = self.written[1]
            self.rate = (flows - n) / (now - at)
            self._rate_at = (now, flows)
        return self.rate > BUSY_RATE

    def _step(self, fd: int, end: int, limit: int | None = None) -> bool:
        """Analyses the whole records in the next chunk before ``end`` (at most ``limit``)."""
        buf = os.pread(fd, min(end - self.pos, SCANNER_CHUNK if limit is None else SCANNER_CHUNK // 16), self.pos)
        p = 0
        done = 0
        while p < len(buf) and (limit is None or done < limit):
            colon = buf.find(b":", p, p + 13)
            if colon <= p or not buf[p:colon].isdigit():
                if len(buf) - p < 13 and self.pos + len(buf) < end:
                    break  # the length prefix runs past this chunk
                raise ValueError(f"{self.path}: no flow record at byte {self.pos + p}")
            stop = colon + 1 + int(buf[p:colon]) + 1
            if stop > len(buf):
                if p == 0 and self.pos + stop <= end:  # longer than a chunk: read it whole
                    buf = os.pread(fd, stop, self.pos)
                    if len(buf) < stop:
                        raise ValueError(f"{self.path}: the record at byte {self.pos} is cut short")
                    continue
                break
            self._analyse(self.index, buf[p:stop])
            self.index += 1
            done += 1
            p = stop
            if time.monotonic() - self.last_report >= SCANNER_REPORT:
                self._report("stats")
        self.pos += p
        return p > 0

    def _analyse(self, index: int, raw: bytes) -> None:
        audit = self.audit
        try:
            ex, flow_id = read_exchange(raw, index, self.path)
        except Exception as e:
            self.read_errors += 1
            self._failed(index, "could not be read back for analysis", f"{type(e).__name__}: {e}")
            return
        try:
            found = audit.add(ex)
        except Exception as e:
            self._failed(index, "analysis failed", f"{type(e).__name__}: {e}")
            return
        self.analysed += 1
        self.dirty = True
        try:
            self.stats.add(ex, found, audit, self.own_regs)
        except Exception as e:  # pragma: no cover - the dashboard's counters are best effort
            logger.debug("privaudit: dashboard counters: %s", e)
        if found and self.annotate:
            self.notes.append((flow_id, [f.to_json() for f in found]))

    def _failed(self, index: int, what: str, detail: str) -> None:
        msg = f"flow {index}: {what}: {detail}"
        self.audit.analysis_errors += 1
        self.audit.warnings.append(msg)
        self.stats.error(msg)
        self.dirty = True

    def counters(self) -> dict:
        audit = self.audit
        return {
            "flows_analysed": self.analysed,
            "read_errors": self.read_errors,
            "analysis_errors": audit.analysis_errors,
            "findings": len(audit.findings),
            "flows_seen": self.index,
        }

    def _report(self, kind: str) -> None:
        notes, self.notes = self.notes, []
        self.conn.send((kind, {"counters": self.counters(), "stats": self.stats.snapshot(), "notes": notes}))
        self.last_report = time.monotonic()
        self.dirty = False

    def _finish(self, finish: dict) -> dict:
        """Writes the findings document (if asked); what the proxy learns of it."""
        out: dict = {"counters": self.counters(), "document": None, "problem": None}
        path = finish.get("findings_path")
        if self.pos < finish["end"]:
            out["problem"] = f"the analysis stopped at byte {self.pos} of {finish['end']}"
            return out
        try:
            from privaudit.audit import dump_document
            from privaudit.fsutil import atomic_text_writer
            from privaudit.source import file_sha256

            inputs = [{"path": self.path, "sha256": file_sha256(Path(self.path)), "format": "mitm",
                       "flows": finish.get("flows", self.index)}]
            doc = self.audit.document(inputs)
            doc["phases"] = list(finish.get("phases") or ())
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                with atomic_text_writer(Path(path)) as f:
                    dump_document(doc, f)
            out["document"] = {"flows_analyzed": doc.get("flows_analyzed"), "findings": len(doc["findings"]),
                               "path": path}
        except Exception as e:  # the flow file is safe; findings can be made again with `privaudit analyze`
            out["problem"] = f"could not write the findings document {path}: {type(e).__name__}: {e}"
        return out


class _RemoteAudit:
    """What the proxy process knows of the scanner's audit (``LiveAnalysis.audit``
    in scanner mode): its counters, not its findings."""

    def __init__(self, rules_digest: str | None) -> None:
        self.rules_digest = rules_digest
        self.analysis_errors = 0
        self.findings_count = 0
        self.warnings: list[str] = []


class LiveAnalysis:
    """mitmproxy addon: analyses each recorded flow off the event loop: in the
    scanner process (default), or in a worker thread (a custom ``build_audit``,
    or no flow file).

    ``build_audit`` makes the :class:`~privaudit.audit.Audit` the worker thread
    fills; by default :func:`privaudit.audit.build` with the session's
    canaries, own domains, extra rules and GeoIP files runs in the scanner
    process. Either way loading rules never delays the proxy.
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
        """The audit the worker thread fills; in scanner mode a :class:`_RemoteAudit` with its counters."""
        self.rules_digest: str | None = None
        self.build_error: str | None = None
        self.document: dict | None = None
        """The findings document; in scanner mode (which writes it itself) a summary:
        ``flows_analyzed``, ``findings`` (a count) and ``path``."""
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
        self.problem: str | None = None
        """Why there is no findings document at the end, if there is none."""
        # scanner mode
        self._proc: Any = None
        self._conn: Any = None
        self._written: Any = None
        self._remote: dict = {}
        self._progress = 0
        self._done = threading.Event()
        self._result: dict | None = None

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
            rec = self.recorder
            if rec is not None and not self.enabled and self.offer in rec.listeners:
                rec.listeners.remove(self.offer)  # recording only: nothing to hand over
            elif rec is not None and self.enabled and self.offer not in rec.listeners:
                rec.listeners.append(self.offer)
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
        if self.build_audit is None and rec is not None and rec.path is not None and rec.fd is not None:
            try:
                self._start_scanner(canaries, own)
                return
            except Exception as e:  # pragma: no cover - no process support: analyse in a thread
                logger.warning("privaudit: analysis process unavailable (%s); analysing in a thread", e)
                self._proc = self._conn = self._written = None
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
        """A flow was recorded: let the scanner read it, or queue it for the
        worker thread, without ever blocking."""
        written = self._written
        if written is not None:
            if offset is not None:
                written[0] = offset + len(data)
                written[1] += 1
            return
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
        if self._proc is not None:
            return self._finish_scanner(timeout)
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

    # --- the scanner process (proxy side) --------------------------------------------

    def _start_scanner(self, canaries: Path | None, own_domains: tuple[str, ...]) -> None:
        """Starts the scanner process on the recorder's flow file (see :func:`scanner_main`)."""
        import multiprocessing

        # spawn, not fork: mitmproxy's threads and event loop must not be copied mid-flight
        mp = multiprocessing.get_context("spawn")
        rec = self.recorder
        view = self._master.addons.get("view") if self._master is not None else None
        settings = {
            "rules_dirs": [str(d) for d in self.rules_dirs],
            "canaries": str(canaries) if canaries else None,
            "geoip": [str(g) for g in self.geoip],
            "own_domains": [d.removeprefix("*.") for d in own_domains],
            "own_regs": sorted(self._own_regs),
            "annotate": self.annotate and view is not None,  # no view (mitmdump): nothing to show them on
        }
        # [bytes of whole records (appends are cut back on errors), flows recorded]
        written = mp.RawArray("q", [os.fstat(rec.fd).st_size, 0])
        here, there = mp.Pipe(duplex=True)
        proc = mp.Process(target=scanner_main, args=(there, str(rec.path), written, settings),
                          name="privaudit-scanner", daemon=True)
        proc.start()
        there.close()
        _lower_priority(proc.pid)  # at once, before the child's own imports compete with the traffic
        self._proc, self._conn, self._written = proc, here, written
        self._thread = threading.Thread(target=self._listen, name="privaudit-scanner-reports", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        """Takes the scanner's reports (a thread: blocked in recv, it costs the loop nothing)."""
        conn = self._conn
        try:
            while True:
                try:
                    kind, payload = conn.recv()
                except (TypeError, ValueError) as e:  # closed by _stop_scanner meanwhile
                    raise EOFError(str(e)) from e
                if kind == "ready":
                    self.audit = _RemoteAudit(payload)
                    self.rules_digest = payload
                    self._call_on_loop(self._session_write)
                elif kind in ("stats", "done"):
                    self._take_report(payload)
                    if kind == "done":
                        self._result = payload
                        return
                elif kind == "build_error":
                    self.build_error = payload
                    logger.error("privaudit: live analysis is off (%s); `privaudit analyze` the audit folder "
                                 "afterwards", payload)
                    return
                elif kind == "crashed":
                    self.crashed = payload
                    logger.error("privaudit: live analysis stopped (%s); `privaudit analyze` the audit folder "
                                 "afterwards", payload)
                    return
        except (EOFError, OSError):
            if not self.crashed and not self.build_error:
                code = self._proc.exitcode if self._proc is not None else None
                self.crashed = f"the analysis process ended unexpectedly (exit code {code})"
                logger.error("privaudit: %s; `privaudit analyze` the audit folder afterwards", self.crashed)
        finally:
            self._done.set()

    def _take_report(self, report: dict) -> None:
        c = report["counters"]
        if "stats" in report:
            self._remote = report["stats"]
        self.analysed = c["flows_analysed"]
        self.read_errors = c["read_errors"]
        if self.audit is not None:
            self.audit.analysis_errors = c["analysis_errors"]
            self.audit.findings_count = c["findings"]
        self._progress = c["flows_seen"]
        notes = report.get("notes")
        if notes:
            self._call_on_loop(self._annotate_many, notes)

    def _finish_scanner(self, timeout: float | None) -> dict | None:
        """Tells the scanner where the flow file ends; waits while it makes progress."""
        rec = self.recorder
        if not self._done.is_set():
            try:
                self._conn.send(("finish", {
                    "end": self._written[0],
                    "flows": rec.count if rec is not None else None,
                    "phases": list(self.session.phases) if self.session is not None else [],
                    "findings_path": str(self.findings_path) if self.findings_path is not None else None,
                }))
            except OSError:  # it is gone; _listen says why
                pass
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.is_set():
            before = self._progress
            wait = STALL_SECONDS if deadline is None else min(STALL_SECONDS, max(0.0, deadline - time.monotonic()))
            if self._done.wait(wait):
                break
            if self._progress == before or (deadline is not None and time.monotonic() >= deadline):
                self.problem = f"the analysis got stuck after {self.analysed} flows"
                logger.error("privaudit: %s; no findings document was written: run `privaudit analyze` on the "
                             "audit folder", self.problem)
                break
        self._stop_scanner()
        result = self._result
        if result is None:
            self.problem = self.problem or self.build_error or self.crashed or "the live analysis did not start"
            return None
        self.document = result["document"]
        if self.document is None:
            self.problem = result["problem"] or "no findings document"
            logger.error("privaudit: %s", self.problem)
        return self.document

    def _stop_scanner(self) -> None:
        proc, self._written = self._proc, None
        if proc is None:
            return
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        try:
            self._conn.close()
        except OSError:  # pragma: no cover
            pass

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
                else:
                    self._analyse(fd, *item)
        except Exception as e:  # e.g. the flow file cannot be opened for reading
            self.crashed = f"{type(e).__name__}: {e}"
            logger.error("privaudit: live analysis stopped (%s); `privaudit analyze` the audit folder afterwards", e)
        finally:
            if fd is not None:
                os.close(fd)

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

    def _analyse(self, fd: int | None, index: int, offset: int | None, length: int, data: bytes | None) -> None:
        """Reads one flow back (or takes its bytes), scans it and feeds the result on."""
        source = str(self.recorder.path) if self.recorder and self.recorder.path else ""
        try:
            raw = data if data is not None else os.pread(fd, length, offset)  # type: ignore[arg-type]
            ex, flow_id = read_exchange(raw, index, source)
        except Exception as e:
            self.read_errors += 1
            self._failed(index, "could not be read back for analysis", f"{type(e).__name__}: {e}")
            return
        try:
            found = self.audit.add(ex)  # scans here, counting the detector's own exceptions
        except Exception as e:
            self._failed(index, "analysis failed", f"{type(e).__name__}: {e}")
            return
        self.analysed += 1
        try:
            self._stats.add(ex, found, self.audit, self._own_regs)
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

    def _annotate_many(self, notes: list) -> None:
        for flow_id, findings in notes:
            self._annotate(flow_id, findings)

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
        remote = self._proc is not None
        if remote:
            rec = self.recorder
            queued = max(0, (rec.count if rec is not None else 0) - self._progress)
            findings = audit.findings_count if audit is not None else 0
        else:
            queued = self.queue.qsize()
            findings = len(audit.findings) if audit is not None else 0
        return {
            "flows_analysed": self.analysed,
            "analysis_errors": audit.analysis_errors if audit is not None else 0,
            "findings": findings,
            "queued": queued,
            "deferred": self.deferred_total,
            "deferred_pending": len(self._deferred),
            "not_analysed": self.not_analysed,
            "rules_error": self.build_error,
            "stopped": self.crashed,
        }

    def snapshot(self) -> dict:
        """A consistent copy of everything the dashboard shows (thread-safe)."""
        rec, session = self.recorder, self.session
        snap = dict(self._remote) if self._proc is not None and self._remote else self._stats.snapshot()
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
