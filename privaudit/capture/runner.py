"""Run mitmproxy in-process with the privaudit addons (``privaudit capture``).

An audit directory (mode 0700; every file in it 0600) is what one capture
session leaves behind::

    AUDIT_DIR/
      flows.mitm     every completed flow, a mitmproxy flow file, appended the
                     moment each flow completes (fsync'ed in batches of at most
                     a second); readable by mitmproxy itself and by
                     ``privaudit analyze/report AUDIT_DIR`` even after the
                     capture was killed (kill -9) or the machine lost power
      flows.open.mitm  while WebSocket flows are open (or after a kill): a
                     copy of them, rewritten every CHECKPOINT_INTERVAL seconds;
                     read after flows.mitm, moved into it by the next session
      meta.json      the session's facts: layout (1); tool (privaudit and
                     mitmproxy versions, rules_digest); audit (tester, device,
                     app, app_version); capture start/end (ISO 8601 UTC, end
                     null while running or after a kill); phases (name +
                     timestamp marks); mode and listen addresses; canary file;
                     own domains; recorder counters (flows_written,
                     flows_in_file, write_errors, last_write_error); analysis
                     counters (flows_analysed, analysis_errors, findings,
                     deferred, not_analysed, rules_error, stopped);
                     tls_failures (hosts whose traffic the proxy could not
                     inspect, e.g. certificate pinning)
      findings.json  the live analysis' findings document, written when the
                     capture ends (missing after a kill: run ``privaudit
                     analyze AUDIT_DIR``, which reads the flow file)
      report.*       written afterwards by the CLI's report (not here)

The directory is a valid ``INPUT`` for ``privaudit analyze``/``report``.

:func:`run_capture` blocks until SIGINT/SIGTERM (when called from the main
thread) or until its ``stop`` event is set. mitmproxy keeps its CA in
``confdir`` (``~/.mitmproxy`` by default, the CA the tester installed on the
device).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitmproxy import addons as default_addons
from mitmproxy import exceptions, options
from mitmproxy.master import Master
from mitmproxy.proxy import mode_specs

from privaudit.capture.addon import META_FIELDS, Privaudit, Session
from privaudit.capture.live import QUEUE_SIZE, LiveAnalysis
from privaudit.fsutil import private_dir
from privaudit.errors import ConfigError

logger = logging.getLogger(__name__)

FLOWS_NAME = "flows.mitm"
META_NAME = "meta.json"
FINDINGS_NAME = "findings.json"


@dataclass(frozen=True, slots=True)
class CaptureResult:
    """What a finished capture session produced."""

    audit_dir: Path
    """The audit directory (mode 0700)."""
    flows: Path
    """The flow file, ``audit_dir/flows.mitm``."""
    meta: Path
    """The session facts, ``audit_dir/meta.json``."""
    mode: str
    """The mitmproxy mode spec the proxy ran in."""
    listen_addrs: tuple[tuple[str, int], ...]
    """The (host, port) pairs the proxy actually listened on (port 0 resolved)."""
    start: str | None
    """ISO 8601 UTC time the proxy started serving."""
    end: str | None
    """ISO 8601 UTC time the proxy stopped."""
    flows_written: int
    """Flows appended to the flow file."""
    write_errors: int
    """Flows that could not be recorded (disk full, permissions); see meta.json."""
    findings: Path | None = None
    """The live analysis' findings document, ``audit_dir/findings.json``
    (None when the live analysis was off or could not load its rules)."""
    flows_analysed: int = 0
    """Flows the live analysis read back and analysed."""
    analysis_errors: int = 0
    """Flows whose analysis raised (counted, never raised into the proxy)."""
    deferred: int = 0
    """Flows the analysis could not take at once and read back later."""
    analysis_problem: str | None = None
    """Why ``findings`` is None although the live analysis was on (rules
    that did not load, a flow file it could not read, ...)."""


class CaptureReady(threading.Event):
    """A ``ready`` event that also carries where the proxy listens.

    :func:`run_capture` sets the attributes below on whatever event it is
    given (a plain ``threading.Event`` gets them too), then sets it. It is
    also set when start-up fails, with ``error`` saying why, so nobody waits
    forever.
    """

    listen_addrs: tuple[tuple[str, int], ...] = ()
    listen_host: str | None = None
    listen_port: int | None = None
    confdir: Path | None = None
    """mitmproxy's configuration folder; its CA is ``mitmproxy-ca-cert.pem`` there."""
    error: str | None = None
    servers: tuple[dict, ...] = ()
    """mitmproxy's description of each proxy server (``ServerInstance.to_json``):
    for ``wireguard`` mode it holds ``wireguard_conf``, the client configuration
    to load on the device (it contains a private key: show it, don't store it)."""
    live: LiveAnalysis | None = None
    """The live analysis (its :meth:`~LiveAnalysis.snapshot` feeds the dashboard)."""
    _mark = None

    def phase(self, name: str) -> None:
        """Mark the start of a test phase (recorded in meta.json); thread-safe."""
        if self._mark is None:
            raise RuntimeError("the capture is not running")
        self._mark(name)


class _Lifecycle:
    """Reports readiness (or a failed start) and stops on the caller's signal."""

    def __init__(
        self,
        ready: threading.Event | None,
        stop: threading.Event | None,
        confdir: Path,
        session: Session,
        live: LiveAnalysis | None = None,
    ) -> None:
        self.ready = ready
        self.session = session
        self.live = live
        self.stop = stop
        self.confdir = confdir
        self.error: str | None = None
        self.listen_addrs: tuple[tuple[str, int], ...] = ()
        self.servers: tuple[dict, ...] = ()
        self._watch: asyncio.Task | None = None

    def running(self) -> None:
        from mitmproxy import ctx

        ps = ctx.master.addons.get("proxyserver")
        self.servers = tuple(s.to_json() for s in ps.servers)
        failed = [s for s in ps.servers if not s.is_running]
        if failed or not len(ps.servers):
            self.error = "; ".join(
                str(s.last_exception or f"{s.mode.description} did not start") for s in failed
            ) or "no proxy server was started"
            ctx.master.shutdown()
        else:
            self.listen_addrs = tuple((str(a[0]), int(a[1])) for a in ps.listen_addrs())
        self._announce()
        if self.stop is not None and self.error is None:
            self._watch = asyncio.get_running_loop().create_task(self._wait_for_stop(ctx.master))

    def _announce(self) -> None:
        if self.ready is None:
            return
        r = self.ready
        r.listen_addrs = self.listen_addrs  # type: ignore[attr-defined]
        r.listen_host = self.listen_addrs[0][0] if self.listen_addrs else None  # type: ignore[attr-defined]
        r.listen_port = self.listen_addrs[0][1] if self.listen_addrs else None  # type: ignore[attr-defined]
        r.confdir = self.confdir  # type: ignore[attr-defined]
        r.servers = self.servers  # type: ignore[attr-defined]
        r.error = self.error  # type: ignore[attr-defined]
        r.live = self.live  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        r._mark = lambda name: loop.call_soon_threadsafe(self.session.phase, name)  # type: ignore[attr-defined]
        r.set()

    async def _wait_for_stop(self, master: Master) -> None:
        assert self.stop is not None
        while not self.stop.is_set():
            await asyncio.sleep(0.05)
        master.shutdown()

    def done(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self.ready is not None:
            self.ready._mark = None  # type: ignore[attr-defined]


def run_capture(
    audit_dir: Path,
    mode: str = "regular",
    listen_host: str = "127.0.0.1",
    listen_port: int = 8080,
    canaries: Path | None = None,
    confdir: Path | None = None,
    extra_addons: Iterable[object] = (),
    ssl_verify_upstream_trusted_ca: Path | None = None,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
    own_domains: Iterable[str] = (),
    mitm_options: Mapping[str, Any] | None = None,
    *,
    live: bool = True,
    build_audit: Callable[[], Any] | None = None,
    rules_dirs: Iterable[str | Path] = (),
    geoip_paths: Iterable[str | Path] = (),
    meta_fields: Mapping[str, str | None] | None = None,
    queue_size: int = QUEUE_SIZE,
) -> CaptureResult:
    """Run a mitmproxy capture session into ``audit_dir`` until stopped.

    ``mode`` is a mitmproxy mode spec: ``regular``, ``transparent``,
    ``wireguard``, ``local:AppName``, ``upstream:http://host:port``,
    ``reverse:https://host:port``, ... ``listen_port=0`` picks a free port;
    pass ``ready`` to learn it (see :class:`CaptureReady`). ``extra_addons``
    are added after privaudit's own; ``mitm_options`` sets further mitmproxy
    options by name (as ``--set name=value`` would). Raises :class:`ConfigError` on a bad
    option or when the proxy cannot start (port in use, ...).

    ``live`` analyses flows while capturing (in a worker thread, see
    :mod:`privaudit.capture.live`) and writes ``findings.json`` at the end;
    ``build_audit`` replaces the default :func:`privaudit.audit.build` with
    ``rules_dirs``/``geoip_paths``/``canaries``/``own_domains``.
    ``meta_fields`` (tester, device, app, app_version) go into meta.json.
    """
    bad = sorted(set(meta_fields or {}) - set(META_FIELDS))
    if bad:
        raise ConfigError(f"unknown audit fields {bad}; expected some of {list(META_FIELDS)}")
    try:
        mode_specs.ProxyMode.parse(mode)
    except ValueError as e:
        raise ConfigError(f"invalid capture mode {mode!r}: {e}") from e
    if live:
        _preload_analysis()
    audit_dir = Path(audit_dir)
    created = not audit_dir.exists()
    private_dir(audit_dir)
    try:
        return asyncio.run(
            _run(
                audit_dir,
                mode,
                listen_host,
                listen_port,
                canaries,
                confdir,
                tuple(extra_addons),
                ssl_verify_upstream_trusted_ca,
                ready,
                stop,
                tuple(own_domains),
                dict(mitm_options or {}),
                _LiveSettings(live, build_audit, tuple(map(str, rules_dirs)), tuple(map(str, geoip_paths)),
                              dict(meta_fields or {}), queue_size),
            )
        )
    except BaseException as e:
        if isinstance(e, ConfigError):
            _remove_unstarted(audit_dir, created)
        if ready is not None and not ready.is_set():
            ready.error = str(e) or type(e).__name__  # type: ignore[attr-defined]
            ready.set()
        raise


def _preload_analysis() -> None:
    """Import the analysis stages here, before the proxy runs, rather than in
    the analysis thread while the event loop may import some of the same
    modules: no import work on the loop later, no import races."""
    import privaudit.audit  # noqa: F401
    import privaudit.detect  # noqa: F401
    import privaudit.jurisdiction  # noqa: F401
    import privaudit.jurisdiction.parties  # noqa: F401
    import privaudit.source.convert  # noqa: F401
    import privaudit.source.fast  # noqa: F401
    import privaudit.source.flowfile  # noqa: F401


def _start_error(error: str, mode: str) -> str:
    """mitmproxy's start-up error, without the Rust backtrace mitmproxy_rs
    appends, and with what to do about local mode."""
    message = " ".join(error.split("Stack backtrace:", 1)[0].split())
    if mode.split(":", 1)[0].split("@", 1)[0] == "local":
        from privaudit.capture.onboarding import local_mode_support

        message += f" ({local_mode_support()[1]})"
    return message


def _remove_unstarted(audit_dir: Path, created: bool) -> None:
    """A session that never started leaves nothing behind: no empty flow
    file, no meta.json, no folder it made itself."""
    flows = audit_dir / FLOWS_NAME
    try:
        if flows.exists() and flows.stat().st_size == 0:
            flows.unlink()
            (audit_dir / META_NAME).unlink(missing_ok=True)
            (audit_dir / FINDINGS_NAME).unlink(missing_ok=True)
        if created:
            audit_dir.rmdir()  # only if empty
    except OSError:
        pass


@dataclass(frozen=True)
class _LiveSettings:
    live: bool
    build_audit: Callable[[], Any] | None
    rules_dirs: tuple[str, ...]
    geoip_paths: tuple[str, ...]
    meta_fields: dict[str, str | None]
    queue_size: int


async def _run(
    audit_dir: Path,
    mode: str,
    listen_host: str,
    listen_port: int,
    canaries: Path | None,
    confdir: Path | None,
    extra_addons: tuple[object, ...],
    trusted_ca: Path | None,
    ready: threading.Event | None,
    stop: threading.Event | None,
    own_domains: tuple[str, ...],
    mitm_options: dict[str, Any],
    settings: _LiveSettings,
) -> CaptureResult:
    # confdir goes in before the TLS addon exists so it never touches another CA.
    core: dict = {"mode": [mode], "listen_host": listen_host, "listen_port": listen_port}
    if confdir is not None:
        core["confdir"] = str(confdir)
    if trusted_ca is not None:
        core["ssl_verify_upstream_trusted_ca"] = str(trusted_ca)
    try:
        opts = options.Options(**core)
    except (exceptions.OptionsError, KeyError, TypeError) as e:
        raise ConfigError(f"capture options: {e}") from e
    master = Master(opts)  # no termlog, no dumper: quiet; logs go to stdlib logging
    live = LiveAnalysis(settings.build_audit, settings.queue_size)
    ours = Privaudit(live)
    recorder, session = ours.recorder, ours.session
    lifecycle = _Lifecycle(ready, stop, Path(opts.confdir).expanduser(), session, live if settings.live else None)
    master.addons.add(*default_addons.default_addons())
    master.addons.add(ours, lifecycle, *extra_addons)
    flows = audit_dir / FLOWS_NAME
    meta = audit_dir / META_NAME
    findings = audit_dir / FINDINGS_NAME
    try:
        # inputs first, so a bad one fails before any file is created
        opts.update(
            privaudit_canaries=str(canaries) if canaries else None,
            privaudit_own_domains=list(own_domains),
            privaudit_live=settings.live,
            privaudit_rules=list(settings.rules_dirs),
            privaudit_geoip=list(settings.geoip_paths),
            **{f"privaudit_{k}": v for k, v in settings.meta_fields.items()},
            **mitm_options,
        )
        if settings.live:
            findings.unlink(missing_ok=True)  # a stale document must not pass for this session's
        opts.update(
            privaudit_flowfile=str(flows),
            privaudit_meta_file=str(meta),
            privaudit_findings_file=str(findings) if settings.live else None,
        )
    except (exceptions.OptionsError, KeyError, TypeError) as e:
        recorder.done()
        raise ConfigError(str(e).strip("'\"")) from e

    loop = asyncio.get_running_loop()
    signals: list[int] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, master.shutdown)
                signals.append(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
                pass
    try:
        await master.run()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    if lifecycle.error:
        recorder.done()
        raise ConfigError(f"the capture proxy could not start: {_start_error(lifecycle.error, mode)}")
    return CaptureResult(
        audit_dir=audit_dir,
        flows=flows,
        meta=meta,
        mode=mode,
        listen_addrs=lifecycle.listen_addrs,
        start=session.started,
        end=session.ended,
        flows_written=recorder.flows_written,
        write_errors=recorder.write_errors,
        findings=findings if settings.live and live.document is not None else None,
        flows_analysed=live.analysed,
        analysis_errors=live.audit.analysis_errors if live.audit is not None else 0,
        deferred=live.deferred_total,
        analysis_problem=live.problem if settings.live else None,
    )
