"""The privaudit mitmproxy addons: record every completed flow, analyse it off
the event loop, keep the session's facts.

Runs inside mitmproxy (``privaudit capture``, or ``mitmdump``/``mitmweb -s
<this file>``). Written in the style of mitmproxy's own ``save.py``/``block.py``:
one small class per concern, options declared in ``load()``, parsed once in
``configure()`` (bad values raise ``OptionsError``), short hooks, stdlib logging.

- :class:`StreamKeeper` streams server-sent events (and other answers that
  arrive piece by piece) to the app as they come, keeping a bounded copy of
  the body for the flow file.
- :class:`Recorder` appends each completed flow to the flow file at once.
- :class:`~privaudit.capture.live.LiveAnalysis` analyses the recorded flows
  in a separate low-priority process that follows the flow file, annotates
  them in mitmweb and writes ``findings.json``.
- :class:`Session` keeps ``meta.json`` and the phase marks.
- :class:`Privaudit` is what mitmproxy loads: one addon that calls these
  parts from its hooks (one object, so mitmproxy's per-event hook look-ups
  stay few; see there).

Options::

    privaudit_flowfile       append completed flows here (created 0600)
    privaudit_meta_file      write the session's meta.json here (0600)
    privaudit_findings_file  write the live analysis' findings document here
    privaudit_canaries       the tester's canary file (checked at start-up)
    privaudit_own_domains    the audited app's own domains (first party)
    privaudit_rules          extra rules folders for the live analysis
    privaudit_geoip          GeoIP/ASN MMDB files for the live analysis
    privaudit_live           analyse flows while capturing (default on)
    privaudit_annotate       comment and mark flows with their findings (mitmweb)
    privaudit_tester, privaudit_device, privaudit_app, privaudit_app_version
                             who tested what, recorded in meta.json
    privaudit_stream_types   content types streamed to the app as they arrive
    privaudit_stream_keep    bytes of a streamed body kept for the analysis

Command ``privaudit.phase NAME`` (mitmweb's command bar or mitmproxy console
``:privaudit.phase "consent given"``; ``privaudit.phase 3`` for the third
standard phase) marks a moment of the session in meta.json; the report's
timeline uses the marks (e.g. data sent before consent).

Example::

    mitmweb -s "$(python -c 'import privaudit.capture as c; print(c.addon_path())')" \\
        --set privaudit_flowfile=audit/flows.mitm --set privaudit_meta_file=audit/meta.json \\
        --set privaudit_own_domains=deepseek.com --set privaudit_canaries=canaries.yaml
"""

from __future__ import annotations

import asyncio
import errno
import io
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from mitmproxy import command, ctx, exceptions
from mitmproxy import hooks as _mitmproxy_hooks
from mitmproxy import flow as mflow
from mitmproxy import http
from mitmproxy import io as mio
from mitmproxy import version as mversion

from privaudit.capture.files import open_private_append, replace_private, write_private_json
from privaudit.capture.flowwrite import RecordWriter
from privaudit.capture.live import LiveAnalysis

logger = logging.getLogger(__name__)

#: How often, at most, the flow file is fsync'ed while flows keep arriving.
#: Every flow is written with its own os.write the moment it completes (so a
#: killed process loses nothing); a flusher thread fsyncs in batches, off the
#: event loop, which bounds what a power loss can take.
FSYNC_INTERVAL = 1.0

#: WebSocket flows stay open for a whole chat; until they end, a copy of each
#: is rewritten at most this often to ``<flowfile stem>.open<suffix>`` (a
#: capture file ``privaudit analyze AUDIT_DIR`` reads after the flow file), so
#: a killed capture keeps their messages too.
CHECKPOINT_INTERVAL = 2.0

#: The moments a tester usually marks, in order (dashboard keys 1-5).
STANDARD_PHASES = ("launched", "consent shown", "consent given", "logged in", "sent prompt")

#: Content types whose bodies are streamed to the app as they arrive: chat
#: apps stream answers as server-sent events or newline-delimited JSON.
STREAM_TYPES = (
    "text/event-stream",
    "application/x-ndjson",
    "application/stream+json",
    "application/jsonl",
    "application/x-jsonlines",
)

#: Bytes of a streamed body kept for the flow file and the analysis.
STREAM_KEEP = 8 * 1024 * 1024

_DOMAIN = re.compile(r"^(?=.{1,253}$)(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?$")


def utcnow_iso() -> str:
    # the findings document's format (privaudit.audit.iso): phases are matched to flow times
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_domains(specs: Iterable[str]) -> tuple[str, ...]:
    """Normalise ``privaudit_own_domains`` values: lower-case host names, one
    or several per value (comma-separated), an optional leading ``*.``.

    >>> parse_domains(["DeepSeek.com, *.deepseek.com."])
    ('deepseek.com', '*.deepseek.com')

    Raises ValueError naming the bad value, with an example of a good one.
    """
    out: list[str] = []
    for spec in specs:
        for part in str(spec).split(","):
            d = part.strip().lower().rstrip(".")
            if not d:
                continue
            if not _DOMAIN.match(d):
                raise ValueError(
                    f"not a domain name: {part.strip()!r} (expected e.g. 'deepseek.com' or '*.deepseek.com')"
                )
            if d not in out:
                out.append(d)
    return tuple(out)


def phase_name(value: str) -> str:
    """A phase mark's name: ``"1"``..``"5"`` stand for :data:`STANDARD_PHASES`,
    anything else is free text (white space collapsed, at most 80 characters).

    >>> phase_name("3"), phase_name("  found   the settings ")
    ('consent given', 'found the settings')
    """
    name = " ".join(str(value).split())[:80]
    if name.isdigit() and 1 <= int(name) <= len(STANDARD_PHASES):
        return STANDARD_PHASES[int(name) - 1]
    return name


def explain_os_error(e: BaseException) -> str:
    """What a write error means for the tester, in one line."""
    code = getattr(e, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        hint = "the disk is full: free some space; until then flows are NOT recorded (traffic still flows)"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "no permission to write there: fix the folder's permissions; until then flows are NOT recorded"
    else:
        hint = "flows are not recorded until this is fixed (traffic still flows)"
    return f"{type(e).__name__}: {e} -- {hint}"


# --- streamed bodies --------------------------------------------------------------


class KeptBody:
    """A ``message.stream`` callable: passes every chunk on unchanged, at once,
    and keeps the first ``cap`` bytes; when the stream ends (or the flow is
    recorded before it ends) the kept bytes become the message's body, and
    ``flow.metadata["privaudit_streamed"]`` says how much was kept."""

    def __init__(self, flow: http.HTTPFlow, message: http.Message, side: str, cap: int) -> None:
        self.flow = flow
        self.message = message
        self.side = side
        self.cap = cap
        self.buf = bytearray()
        self.total = 0
        self.finished = False

    def __call__(self, chunk: bytes) -> bytes:
        if chunk:
            self.total += len(chunk)
            room = self.cap - len(self.buf)
            if room > 0:
                self.buf += chunk[:room]
        else:  # b"" marks the end of the stream
            self.finish()
        return chunk

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self.message.raw_content is None:  # mitmproxy 12's store_streamed_bodies may have kept it all
            self.message.raw_content = bytes(self.buf)
        self.flow.metadata.setdefault("privaudit_streamed", {})[self.side] = {
            "bytes": self.total,
            "kept": min(self.total, len(self.buf)),
            "truncated": self.total > len(self.buf),
        }


def fill_kept_bodies(f: mflow.Flow) -> None:
    """Before a flow is recorded: streamed bodies become their kept copy."""
    if isinstance(f, http.HTTPFlow):
        for m in (f.request, f.response):
            if m is not None and isinstance(m.stream, KeptBody):
                m.stream.finish()


class StreamKeeper:
    """Streams answers that arrive piece by piece (server-sent events, NDJSON)
    to the app without waiting for their end, and keeps a bounded copy for the
    analysis. Bodies mitmproxy itself decided to stream (``stream_large_bodies``)
    are kept the same way instead of being lost."""

    def __init__(self) -> None:
        self.types: tuple[str, ...] = STREAM_TYPES
        self.keep = STREAM_KEEP

    def load(self, loader) -> None:
        loader.add_option(
            "privaudit_stream_types",
            Sequence[str],
            list(STREAM_TYPES),
            "Content types streamed to the app as they arrive (a copy is kept for the audit).",
        )
        loader.add_option(
            "privaudit_stream_keep",
            int,
            STREAM_KEEP,
            "Bytes of each streamed body kept for the flow file and the analysis.",
        )

    def configure(self, updated) -> None:
        if "privaudit_stream_types" in updated:
            self.types = tuple(t.strip().lower() for t in ctx.options.privaudit_stream_types if t.strip())
        if "privaudit_stream_keep" in updated:
            if ctx.options.privaudit_stream_keep < 0:
                raise exceptions.OptionsError("privaudit_stream_keep: must be 0 or more bytes, e.g. 8388608")
            self.keep = ctx.options.privaudit_stream_keep

    def requestheaders(self, f: http.HTTPFlow) -> None:
        if f.request.stream is True:
            f.request.stream = KeptBody(f, f.request, "request", self.keep)

    def responseheaders(self, f: http.HTTPFlow) -> None:
        r = f.response
        if r is None or callable(r.stream):
            return
        ctype = r.headers.get("content-type", "").split(";")[0].strip().lower()
        if r.stream is True or ctype in self.types:
            r.stream = KeptBody(f, r, "response", self.keep)


# --- recording ----------------------------------------------------------------------

#: ``listener(index, flow_id, offset, data)`` — a flow was recorded as record
#: ``index`` of the flow file, at byte ``offset`` (None without a flow file),
#: serialised as ``data``.
Listener = Callable[[int, str, Optional[int], bytes], None]


class Recorder:
    """Appends each completed flow to ``privaudit_flowfile``.

    A flow is written when it is complete: HTTP on ``response``/``error``
    (WebSocket flows on ``websocket_end``), TCP/UDP on ``*_end``/``*_error``,
    DNS on ``dns_response``/``dns_error``. Flows still open at shutdown are
    written by ``done``. Each flow is serialised into memory, exactly as
    ``mitmproxy.io.FlowWriter`` would (by :mod:`privaudit.capture.flowwrite`,
    about three times faster), and appended with one ``os.write``, so a killed process loses
    nothing already written; a failed or short write is cut back off the file
    so it stays readable. Write errors are counted and logged, never raised:
    the app's traffic keeps flowing. A flusher thread fsyncs in batches.

    ``count`` is the number of flows in the file (an existing file's flows
    included), so a flow's index is its position in the file, the index the
    findings document uses. ``listeners`` hear of every recorded flow.

    WebSocket flows still open are checkpointed to :attr:`open_path` (see
    :data:`CHECKPOINT_INTERVAL`); a checkpoint left by a killed session is
    appended to the flow file when the next session opens it.
    """

    def __init__(self) -> None:
        self.path: Path | None = None
        self.fd: int | None = None
        self.count = 0
        self.existing = 0
        self.existing_bytes = 0
        self.flows_written = 0
        self.write_errors = 0
        self.last_error: str | None = None
        self.listeners: list[Listener] = []
        self._open: dict[str, mflow.Flow] = {}
        self._lock = threading.Lock()
        self._dirty = False
        self._stop_flush = threading.Event()
        self._flusher: threading.Thread | None = None
        self.open_path: Path | None = None
        self._ws: dict[str, http.HTTPFlow] = {}
        self._last_checkpoint = 0.0
        self._checkpoint_timer = None
        self.serialise = RecordWriter()
        """flow -> its flow-file record (``mitmproxy.io.FlowWriter``'s bytes, faster)."""

    def load(self, loader) -> None:
        loader.add_option(
            "privaudit_flowfile",
            Optional[str],
            None,
            "Append every completed flow to this mitmproxy flow file (created with mode 0600).",
        )

    def configure(self, updated) -> None:
        if "privaudit_flowfile" not in updated:
            return
        value = ctx.options.privaudit_flowfile
        path = Path(value).expanduser() if value else None
        if path == self.path and (path is None or self.fd is not None):
            return
        self._close()
        self.path = None
        if path is not None:
            try:
                fd = open_private_append(path)
            except OSError as e:
                raise exceptions.OptionsError(f"privaudit_flowfile: cannot open {path}: {e.strerror or e}") from e
            self.open_path = path.with_name(f"{path.stem}.open{path.suffix or '.mitm'}")
            self.existing, self.existing_bytes = _existing_flows(fd, path)
            self.existing, self.existing_bytes = _recover_open_flows(fd, self.open_path, self.existing)
            self.count = self.existing
            self.fd, self.path = fd, path
            self._stop_flush.clear()
            self._flusher = threading.Thread(target=self._flush_loop, name="privaudit-fsync", daemon=True)
            self._flusher.start()
            logger.info("privaudit: recording flows to %s", path)

    # --- hooks ---------------------------------------------------------------

    def requestheaders(self, f: http.HTTPFlow) -> None:
        self._started(f)

    def response(self, f: http.HTTPFlow) -> None:
        if f.websocket is None:  # a WebSocket flow is complete at websocket_end
            self.save(f)

    def error(self, f: http.HTTPFlow) -> None:
        self.response(f)

    def websocket_start(self, f: http.HTTPFlow) -> None:
        if self.open_path is not None:
            self._ws[f.id] = f
            self._checkpoint_soon()

    def websocket_message(self, f: http.HTTPFlow) -> None:
        if f.id in self._ws:
            self._checkpoint_soon()

    def websocket_end(self, f: http.HTTPFlow) -> None:
        self.save(f)
        if self._ws.pop(f.id, None) is not None:
            self._checkpoint()

    def tcp_start(self, f) -> None:
        self._started(f)

    def tcp_end(self, f) -> None:
        self.save(f)

    def tcp_error(self, f) -> None:
        self.save(f)

    def udp_start(self, f) -> None:
        self._started(f)

    def udp_end(self, f) -> None:
        self.save(f)

    def udp_error(self, f) -> None:
        self.save(f)

    def dns_request(self, f) -> None:
        self._started(f)

    def dns_response(self, f) -> None:
        self.save(f)

    def dns_error(self, f) -> None:
        self.save(f)

    def done(self) -> None:
        for f in list(self._open.values()):
            self.save(f)
        self._ws.clear()
        self._checkpoint()  # nothing open any more: the checkpoint goes
        self._close()

    # --- writing -------------------------------------------------------------

    def _started(self, f: mflow.Flow) -> None:
        if self.fd is not None or self.listeners:
            self._open[f.id] = f

    def save(self, f: mflow.Flow) -> None:
        self._open.pop(f.id, None)
        if self.fd is None and not self.listeners:
            return
        try:
            fill_kept_bodies(f)
            data = self.serialise(f)
            offset = self._append(data) if self.fd is not None else None
        except Exception as e:  # never raise into mitmproxy: count, log, keep proxying
            self.write_errors += 1
            self._report(e, "could not record a flow to")
            return
        index = self.count
        self.count += 1
        if offset is not None:
            self.flows_written += 1
            self._dirty = True
        for listener in self.listeners:
            try:
                listener(index, f.id, offset, data)
            except Exception as e:  # pragma: no cover - a listener must never break recording
                logger.error("privaudit: live analysis hand-over failed: %s", e)

    def _append(self, data: bytes) -> int:
        assert self.fd is not None
        start = os.lseek(self.fd, 0, os.SEEK_END)
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except BaseException:
            try:  # drop the partial record so the file stays a valid flow file
                os.ftruncate(self.fd, start)
            except OSError:  # pragma: no cover
                pass
            raise
        return start

    def _checkpoint_soon(self) -> None:
        due = self._last_checkpoint + CHECKPOINT_INTERVAL - time.monotonic()
        if due <= 0:
            self._checkpoint()
        elif self._checkpoint_timer is None:
            try:
                self._checkpoint_timer = asyncio.get_running_loop().call_later(due, self._checkpoint)
            except RuntimeError:  # no event loop (tools, tests): the next message once due writes it
                pass

    def _checkpoint(self) -> None:
        """Rewrite the copy of the WebSocket flows still open (or remove it)."""
        if self._checkpoint_timer is not None:
            self._checkpoint_timer.cancel()
            self._checkpoint_timer = None
        self._last_checkpoint = time.monotonic()
        if self.open_path is None:
            return
        try:
            if not self._ws:
                self.open_path.unlink(missing_ok=True)
                return
            buf = io.BytesIO()
            writer = mio.FlowWriter(buf)
            for f in self._ws.values():
                writer.add(f)
            replace_private(self.open_path, buf.getvalue())
        except Exception as e:  # never raise into mitmproxy
            self._report(e, "could not keep a copy of the open WebSocket flows in")

    def flush(self) -> None:
        """fsync what was written since the last flush (thread-safe)."""
        with self._lock:
            if self.fd is None or not self._dirty:
                return
            self._dirty = False
            try:
                os.fsync(self.fd)
            except OSError as e:  # the flow is written, only not yet durable
                self._report(e, "could not sync")

    def _flush_loop(self) -> None:
        while not self._stop_flush.wait(FSYNC_INTERVAL):
            self.flush()

    def _report(self, e: Exception, what: str) -> None:
        message = explain_os_error(e) if isinstance(e, OSError) else f"{type(e).__name__}: {e}"
        if message != self.last_error:  # once per distinct error, not once per flow
            logger.error("privaudit: %s %s: %s", what, self.path, message)
        self.last_error = message

    def _close(self) -> None:
        self._stop_flush.set()
        if self._flusher is not None:
            self._flusher.join(5)
            self._flusher = None
        if self.fd is not None:
            self.flush()
            with self._lock:
                os.close(self.fd)
                self.fd = None


def _existing_flows(fd: int, path: Path) -> tuple[int, int]:
    """(flows, bytes) already in a flow file being appended to. A damaged tail
    (a record cut short by a crash) is moved aside to ``<name>.damaged-<time>``
    and cut off, so the flows recorded from now on stay readable."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0, 0
    from privaudit.source.flowfile import RecordError, iter_records

    n, good = 0, 0
    try:
        for offset, raw in iter_records(path):
            n, good = n + 1, offset + len(raw)
    except RecordError as e:
        aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
        with open(path, "rb") as src:
            src.seek(good)
            tail = src.read()
        fd2 = open_private_append(aside)
        try:
            os.write(fd2, tail)
        finally:
            os.close(fd2)
        os.ftruncate(fd, good)
        logger.warning("privaudit: %s: cut off a damaged tail after %d flows (%s); kept it in %s", path, n, e, aside)
    return n, good


def _recover_open_flows(fd: int, open_path: Path, existing: int) -> tuple[int, int]:
    """A killed session's checkpoint of its open flows becomes part of the
    flow file (they are all the session kept of them); returns the file's new
    (flows, bytes)."""
    from privaudit.source.flowfile import RecordError, iter_records

    for stale in open_path.parent.glob(f".{open_path.name}.*.tmp"):  # a checkpoint cut off mid-write
        stale.unlink(missing_ok=True)
    n = 0
    if open_path.exists():
        try:
            for _, raw in iter_records(open_path):
                view = memoryview(raw)
                while view:
                    view = view[os.write(fd, view):]
                n += 1
        except RecordError as e:  # pragma: no cover - written whole by rename; keep what is readable
            logger.warning("privaudit: %s: %s", open_path, e)
        open_path.unlink()
        if n:
            logger.warning("privaudit: recovered %d flows still open when the last session ended (%s)", n, open_path)
    return existing + n, os.fstat(fd).st_size


class TlsFailures:
    """Remembers TLS handshakes that failed, so the audit can say what it
    could not see: an app that refuses the proxy's certificate (certificate
    pinning, or the CA not trusted) sends that host's traffic uninspected.
    mitmproxy records no flow for these, so they are kept here (and in
    meta.json), one entry per (side, host, error) with a count.
    """

    MAX = 1000  # distinct entries kept; a hostile app must not grow meta.json without bound

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str, str], dict] = {}

    def tls_failed_client(self, data) -> None:
        self._add("client", data)

    def tls_failed_server(self, data) -> None:
        self._add("server", data)

    def _add(self, side: str, data) -> None:
        try:
            ctx_ = data.context
            host = ctx_.client.sni or (ctx_.server.address[0] if ctx_.server.address else "") or ""
            error = str(getattr(data.conn, "error", None) or "handshake failed")
            key = (side, str(host), error)
            entry = self.entries.get(key)
            if entry is None:
                if len(self.entries) >= self.MAX:
                    return
                entry = self.entries[key] = {"side": side, "host": str(host), "error": error, "count": 0,
                                             "first_seen": utcnow_iso()}
            entry["count"] += 1
        except Exception as e:  # pragma: no cover - bookkeeping must never break the proxy
            logger.debug("privaudit: could not note a TLS failure: %s", e)

    def to_json(self) -> list[dict]:
        return [dict(e) for e in self.entries.values()]


#: meta.json's "audit" fields and the options that set them.
META_FIELDS = ("tester", "device", "app", "app_version")


class Session:
    """Checks the session's inputs at start-up and keeps ``meta.json``.

    meta.json holds what the analysis and the report need to know about the
    capture besides the flows (see :mod:`privaudit.capture.runner` for the
    layout). It is written when the proxy is running, at every phase mark,
    when the live analysis has loaded its rules, and at shutdown, so a killed
    session still says when it started and what was marked.
    """

    def __init__(
        self,
        recorder: Recorder | None = None,
        tls_failures: TlsFailures | None = None,
        live: LiveAnalysis | None = None,
    ) -> None:
        self.recorder = recorder
        self.tls_failures = tls_failures
        self.live = live
        self.meta_path: Path | None = None
        self.canaries: Path | None = None
        self.own_domains: tuple[str, ...] = ()
        self.fields: dict[str, str | None] = dict.fromkeys(META_FIELDS)
        self.started: str | None = None
        self.ended: str | None = None
        self.listen_addrs: list[tuple[str, int]] = []
        self.phases: list[dict] = []
        self._lock = threading.Lock()
        if live is not None:
            live.session = self

    def load(self, loader) -> None:
        loader.add_option(
            "privaudit_meta_file",
            Optional[str],
            None,
            "Write the capture session's facts (times, mode, versions, counters) to this JSON file (mode 0600).",
        )
        loader.add_option(
            "privaudit_canaries",
            Optional[str],
            None,
            "The tester's canary file (YAML). Checked at start-up and used by the analysis.",
        )
        loader.add_option(
            "privaudit_own_domains",
            Sequence[str],
            [],
            "The audited app's own domains, e.g. deepseek.com (first party); the rest are third parties.",
        )
        for name in META_FIELDS:
            loader.add_option(
                f"privaudit_{name}", Optional[str], None, f"Recorded in meta.json: the audit's {name.replace('_', ' ')}."
            )

    def configure(self, updated) -> None:
        if "privaudit_meta_file" in updated:
            v = ctx.options.privaudit_meta_file
            self.meta_path = Path(v).expanduser() if v else None
        if "privaudit_canaries" in updated:
            v = ctx.options.privaudit_canaries
            self.canaries = check_canaries(Path(v).expanduser()) if v else None
        if "privaudit_own_domains" in updated:
            try:
                self.own_domains = parse_domains(ctx.options.privaudit_own_domains)
            except ValueError as e:
                raise exceptions.OptionsError(f"privaudit_own_domains: {e}") from e
        for name in META_FIELDS:
            if f"privaudit_{name}" in updated:
                v = getattr(ctx.options, f"privaudit_{name}")
                self.fields[name] = " ".join(str(v).split())[:200] if v else None

    def running(self) -> None:
        self.started = utcnow_iso()
        ps = ctx.master.addons.get("proxyserver")
        if ps is not None:
            self.listen_addrs = [(str(a[0]), int(a[1])) for a in ps.listen_addrs()]
        self.write(end=None)

    def done(self) -> None:
        if self.started is not None:
            self.ended = utcnow_iso()
            self.write(end=self.ended)

    @command.command("privaudit.phase")
    def phase(self, name: str) -> None:
        """Mark a moment of the session ("launched", "consent shown", "consent
        given", "logged in", "sent prompt" -- or 1-5 for those -- or any text):
        the report's timeline places findings before and after each mark."""
        name = phase_name(name)
        if not name:
            raise exceptions.CommandError("privaudit.phase: give the phase a name, e.g. \"consent given\" or 3")
        self.phases.append({"name": name, "timestamp": utcnow_iso()})
        logger.info("privaudit: phase %r", name)
        self.write(end=self.ended)

    def meta(self, end: str | None = None) -> dict:
        from privaudit import __version__

        rec = self.recorder
        live = self.live
        return {
            "layout": 1,
            "tool": {
                "name": "privaudit",
                "version": __version__,
                "mitmproxy": mversion.VERSION,
                "rules_digest": live.rules_digest if live is not None else None,
            },
            "audit": dict(self.fields),
            "capture": {"start": self.started, "end": end},
            "phases": list(self.phases),
            "mode": list(ctx.options.mode),
            "listen": [{"host": h, "port": p} for h, p in self.listen_addrs],
            "flowfile": rec.path.name if rec is not None and rec.path is not None else None,
            "canaries": str(self.canaries) if self.canaries else None,
            "own_domains": list(self.own_domains),
            "flows_written": rec.flows_written if rec is not None else None,
            "flows_in_file": rec.count if rec is not None and rec.path is not None else None,
            "write_errors": rec.write_errors if rec is not None else None,
            "last_write_error": rec.last_error if rec is not None else None,
            "analysis": live.counters() if live is not None and live.enabled else None,
            "tls_failures": self.tls_failures.to_json() if self.tls_failures is not None else [],
        }

    def write(self, end: str | None = None) -> None:
        if self.meta_path is None:
            return
        try:
            with self._lock:  # the loop and the analysis thread both write it
                write_private_json(self.meta_path, self.meta(end))
        except Exception as e:  # never raise into mitmproxy
            logger.error("privaudit: could not write %s: %s", self.meta_path, e)


def check_canaries(path: Path) -> Path:
    """Fail at start-up, not after an hour of capture, on a bad canary file."""
    try:
        with path.open("rb"):
            pass
    except OSError as e:
        raise exceptions.OptionsError(f"privaudit_canaries: cannot read {path}: {e.strerror or e}") from e
    try:
        from privaudit.detect import load_canaries
    except ImportError:  # pragma: no cover - detect not installed with this build
        return path
    from privaudit.errors import PrivauditError

    try:
        load_canaries(path)
    except PrivauditError as e:
        raise exceptions.OptionsError(f"privaudit_canaries: {e}") from e
    return path.resolve()


class Privaudit:
    """privaudit as one mitmproxy addon: its parts (:class:`StreamKeeper`,
    :class:`Recorder`, :class:`TlsFailures`,
    :class:`~privaudit.capture.live.LiveAnalysis`, :class:`Session`) are plain
    attributes, not sub-addons, and each hook is implemented here once,
    calling the parts in hook order: bodies are kept before a flow is
    recorded, recorded before it is analysed, analysed before meta.json's
    final counters are written.

    Why one object: mitmproxy offers every event of every flow (a request
    has eight: four hooks, each followed by ``update``) to every addon object
    in its tree, nested ``addons`` included, looking each hook up by name on
    each object. Five nested parts cost five look-ups per event, for hooks
    most of them do not have; one object costs one. An exception in a part's
    hook stops the parts after it, as it did when mitmproxy called them one
    by one (it calls an addon's sub-addons within one ``safecall``).
    """

    def __init__(self, live: LiveAnalysis | None = None) -> None:
        self.keeper = StreamKeeper()
        self.recorder = Recorder()
        self.tls_failures = TlsFailures()
        self.live = live if live is not None else LiveAnalysis()
        self.live.attach(self.recorder)
        self.session = Session(self.recorder, self.tls_failures, self.live)

    # --- lifecycle -------------------------------------------------------------

    def load(self, loader) -> None:
        self.keeper.load(loader)
        self.recorder.load(loader)
        self.live.load(loader)
        self.session.load(loader)

    def configure(self, updated) -> None:
        self.keeper.configure(updated)
        self.recorder.configure(updated)
        self.live.configure(updated)
        self.session.configure(updated)

    def running(self) -> None:
        self.live.running()
        self.session.running()

    def done(self) -> None:
        self.recorder.done()
        self.live.done()
        self.session.done()

    @command.command("privaudit.phase")
    def phase(self, name: str) -> None:
        """Mark a moment of the session ("launched", "consent shown", "consent
        given", "logged in", "sent prompt" -- or 1-5 for those -- or any text):
        the report's timeline places findings before and after each mark."""
        self.session.phase(name)

    # --- flows -----------------------------------------------------------------

    def requestheaders(self, f: http.HTTPFlow) -> None:
        self.keeper.requestheaders(f)
        self.recorder.requestheaders(f)

    def responseheaders(self, f: http.HTTPFlow) -> None:
        self.keeper.responseheaders(f)

    def response(self, f: http.HTTPFlow) -> None:
        self.recorder.response(f)

    def error(self, f: http.HTTPFlow) -> None:
        self.recorder.error(f)

    def websocket_start(self, f: http.HTTPFlow) -> None:
        self.recorder.websocket_start(f)

    def websocket_message(self, f: http.HTTPFlow) -> None:
        self.recorder.websocket_message(f)

    def websocket_end(self, f: http.HTTPFlow) -> None:
        self.recorder.websocket_end(f)

    def tcp_start(self, f) -> None:
        self.recorder.tcp_start(f)

    def tcp_end(self, f) -> None:
        self.recorder.tcp_end(f)

    def tcp_error(self, f) -> None:
        self.recorder.tcp_error(f)

    def udp_start(self, f) -> None:
        self.recorder.udp_start(f)

    def udp_end(self, f) -> None:
        self.recorder.udp_end(f)

    def udp_error(self, f) -> None:
        self.recorder.udp_error(f)

    def dns_request(self, f) -> None:
        self.recorder.dns_request(f)

    def dns_response(self, f) -> None:
        self.recorder.dns_response(f)

    def dns_error(self, f) -> None:
        self.recorder.dns_error(f)

    def tls_failed_client(self, data) -> None:
        self.tls_failures.tls_failed_client(data)

    def tls_failed_server(self, data) -> None:
        self.tls_failures.tls_failed_server(data)


def make_addons(live: LiveAnalysis | None = None) -> list:
    """privaudit's addons for mitmproxy's ``addons.add`` (one :class:`Privaudit`)."""
    return [Privaudit(live)]


addons = make_addons()

# Loaded as a script (``mitmdump -s``), this module is itself an addon:
# mitmproxy looks each event's hook up on it too, for every event of every
# flow. A name the module lacks costs Python 3.11 microseconds per look-up
# (the AttributeError's message is formatted), more than all of a flow's
# other look-ups together; a name that is there and None is found at once
# and skipped (mitmproxy calls only hooks that are set).
# ("add_log" is left out: mitmproxy warns about addons that have that deprecated hook.)
globals().update({h: None for h in _mitmproxy_hooks.all_hooks if h not in globals() and h != "add_log"})
