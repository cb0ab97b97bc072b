"""The privaudit mitmproxy addon: record every completed flow, nothing more.

Runs inside mitmproxy (``privaudit capture`` or ``mitmdump -s <this file>``)
and only writes flows to a mitmproxy flow file; detection runs later, outside
mitmproxy's event loop, on that file. Written in the style of mitmproxy's own
``save.py``/``block.py``: one small class per concern, options declared in
``load()``, parsed once in ``configure()`` (bad values raise ``OptionsError``),
short hooks, stdlib logging.

Options::

    privaudit_flowfile     append completed flows here (created 0600)
    privaudit_meta_file    write the session's meta.json here (0600)
    privaudit_canaries     the tester's canary file, checked at start-up and
                           recorded in meta.json for the analysis that follows
    privaudit_own_domains  the audited app's own domains (first party),
                           recorded in meta.json

Command ``privaudit.phase NAME`` (mitmproxy console ``:privaudit.phase login``,
or :meth:`privaudit.capture.runner.CaptureReady.phase`) marks the start of a
test phase in meta.json; the analysis groups findings by phase.

Example::

    mitmdump -s "$(python -c 'import privaudit.capture as c; print(c.addon_path())')" \\
        --set privaudit_flowfile=audit/flows.mitm --set privaudit_meta_file=audit/meta.json
"""

from __future__ import annotations

import io
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from mitmproxy import command, ctx, exceptions
from mitmproxy import flow as mflow
from mitmproxy import http
from mitmproxy import io as mio
from mitmproxy import version as mversion

from privaudit.capture.files import open_private_append, write_private_json

logger = logging.getLogger(__name__)

#: How often, at most, the flow file is fsync'ed while flows keep arriving.
#: Every flow is written with its own os.write (so it is in the OS as soon as
#: it completes); fsync bounds what a power loss can take.
FSYNC_INTERVAL = 1.0

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


class Recorder:
    """Appends each completed flow to ``privaudit_flowfile``.

    A flow is written when it is complete: HTTP on ``response``/``error``
    (WebSocket flows on ``websocket_end``), TCP/UDP on ``*_end``/``*_error``,
    DNS on ``dns_response``/``dns_error``. Flows still open at shutdown are
    written by ``done``. Each flow is serialised with ``mitmproxy.io.FlowWriter``
    into memory and appended with one ``os.write``; a failed or short write is
    cut back off the file so it stays readable. Write errors are counted and
    logged, never raised: the app's traffic keeps flowing.
    """

    def __init__(self) -> None:
        self.path: Path | None = None
        self.fd: int | None = None
        self.flows_written = 0
        self.write_errors = 0
        self.last_error: str | None = None
        self._last_fsync = 0.0
        self._open: dict[str, mflow.Flow] = {}

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
                self.fd = open_private_append(path)
            except OSError as e:
                raise exceptions.OptionsError(f"privaudit_flowfile: cannot open {path}: {e.strerror or e}") from e
            self.path = path
            logger.info("privaudit: recording flows to %s", path)

    # --- hooks ---------------------------------------------------------------

    def requestheaders(self, f: http.HTTPFlow) -> None:
        self._started(f)

    def response(self, f: http.HTTPFlow) -> None:
        if f.websocket is None:  # a WebSocket flow is complete at websocket_end
            self.save(f)

    def error(self, f: http.HTTPFlow) -> None:
        self.response(f)

    def websocket_end(self, f: http.HTTPFlow) -> None:
        self.save(f)

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
        self._close()

    # --- writing -------------------------------------------------------------

    def _started(self, f: mflow.Flow) -> None:
        if self.fd is not None:
            self._open[f.id] = f

    def save(self, f: mflow.Flow) -> None:
        self._open.pop(f.id, None)
        if self.fd is None:
            return
        try:
            buf = io.BytesIO()
            mio.FlowWriter(buf).add(f)
            self._append(buf.getvalue())
        except Exception as e:  # never raise into mitmproxy: count, log, keep proxying
            self.write_errors += 1
            self._report(e, "could not record a flow to")
            return
        self.flows_written += 1
        if time.monotonic() - self._last_fsync >= FSYNC_INTERVAL:
            self._sync()

    def _append(self, data: bytes) -> None:
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

    def _sync(self) -> None:
        assert self.fd is not None
        try:
            os.fsync(self.fd)
        except OSError as e:  # the flow is written, only not yet durable
            self._report(e, "could not sync")
        self._last_fsync = time.monotonic()

    def _report(self, e: Exception, what: str) -> None:
        message = f"{type(e).__name__}: {e}"
        if message != self.last_error:  # once per distinct error, not once per flow
            logger.error("privaudit: %s %s: %s", what, self.path, message)
        self.last_error = message

    def _close(self) -> None:
        if self.fd is not None:
            self._sync()
            os.close(self.fd)
        self.fd = None


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


class Session:
    """Checks the session's inputs at start-up and keeps ``meta.json``.

    meta.json holds what the analysis and the report need to know about the
    capture besides the flows: start and end time, phase marks (command
    ``privaudit.phase NAME``), proxy mode, listen addresses, tool versions,
    canary file, own domains, the recorder's counters and the TLS handshakes
    that failed (hosts whose traffic could not be inspected). It is written when the proxy is running and again at shutdown,
    so a crashed session still says when it started.
    """

    def __init__(self, recorder: Recorder | None = None, tls_failures: TlsFailures | None = None) -> None:
        self.recorder = recorder
        self.tls_failures = tls_failures
        self.meta_path: Path | None = None
        self.canaries: Path | None = None
        self.own_domains: tuple[str, ...] = ()
        self.started: str | None = None
        self.ended: str | None = None
        self.listen_addrs: list[tuple[str, int]] = []
        self.phases: list[dict] = []

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
            "The tester's canary file (YAML). Checked at start-up and recorded for the analysis.",
        )
        loader.add_option(
            "privaudit_own_domains",
            Sequence[str],
            [],
            "The audited app's own domains, e.g. deepseek.com (first party). Recorded for the analysis.",
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
        """Mark the start of a test phase (e.g. "login", "chat", "idle"): the
        report groups findings by the phase they happened in."""
        name = " ".join(str(name).split())[:80]
        if not name:
            raise exceptions.CommandError("privaudit.phase: give the phase a name")
        self.phases.append({"name": name, "timestamp": utcnow_iso()})
        logger.info("privaudit: phase %r", name)
        self.write(end=self.ended)

    def meta(self, end: str | None = None) -> dict:
        from privaudit import __version__

        rec = self.recorder
        return {
            "tool": {"name": "privaudit", "version": __version__, "mitmproxy": mversion.VERSION},
            "capture": {"start": self.started, "end": end},
            "phases": list(self.phases),
            "mode": list(ctx.options.mode),
            "listen": [{"host": h, "port": p} for h, p in self.listen_addrs],
            "flowfile": rec.path.name if rec is not None and rec.path is not None else None,
            "canaries": str(self.canaries) if self.canaries else None,
            "own_domains": list(self.own_domains),
            "flows_written": rec.flows_written if rec is not None else None,
            "write_errors": rec.write_errors if rec is not None else None,
            "last_write_error": rec.last_error if rec is not None else None,
            "tls_failures": self.tls_failures.to_json() if self.tls_failures is not None else [],
        }

    def write(self, end: str | None) -> None:
        if self.meta_path is None:
            return
        try:
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


def make_addons() -> list:
    recorder, tls_failures = Recorder(), TlsFailures()
    return [recorder, tls_failures, Session(recorder, tls_failures)]


addons = make_addons()
