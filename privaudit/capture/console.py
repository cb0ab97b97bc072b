"""``privaudit capture`` in a terminal: onboarding, the live dashboard, phase
keys, a quiet mode for scripts and CI, and the capture itself.

:func:`capture_session` is what the CLI calls; it blocks until Ctrl-C,
SIGTERM or the dashboard's ``q`` and returns the
:class:`~privaudit.capture.runner.CaptureResult`.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from privaudit.capture.runner import CaptureReady, CaptureResult, run_capture
from privaudit.errors import ConfigError


def parse_phase_keys(specs: Iterable[str]) -> dict[str, str]:
    """``--phase-key 6="logged out"`` values -> {key: phase name}.

    >>> parse_phase_keys(["6=logged out", "0=idle"])
    {'6': 'logged out', '0': 'idle'}
    """
    from privaudit.capture.dashboard import RESERVED_KEYS

    out: dict[str, str] = {}
    for spec in specs:
        key, sep, name = str(spec).partition("=")
        key, name = key.strip(), " ".join(name.split())
        if not sep or len(key) != 1 or not key.isprintable() or key == " " or not name:
            raise ConfigError(f"--phase-key {spec!r}: expected KEY=NAME with a single-character key, e.g. 6=\"logged out\"")
        if key in RESERVED_KEYS:
            raise ConfigError(f"--phase-key {spec!r}: key {key!r} is taken ({RESERVED_KEYS[key]}); use another, e.g. 6")
        out[key] = name[:80]
    return out


def capture_summary(result: CaptureResult) -> str:
    """One line for the end of a session (also in quiet mode)."""
    parts = [f"{result.flows_written} flows recorded"]
    if result.findings is not None:
        parts.append(f"{result.flows_analysed} analysed live")
    elif result.analysis_problem:
        parts.append(f"no live findings ({result.analysis_problem})")
    if result.deferred:
        parts.append(f"{result.deferred} analysed late")
    if result.analysis_errors:
        parts.append(f"{result.analysis_errors} analysis errors")
    if result.write_errors:
        parts.append(f"{result.write_errors} NOT recorded (see {result.meta})")
    return f"privaudit: capture ended: {', '.join(parts)} in {result.audit_dir}/"


class _PanelLog(logging.Handler):
    """While the dashboard draws, warnings and errors go into its error panel
    instead of through the drawing."""

    def __init__(self, sink: list) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.append(record.getMessage().removeprefix("privaudit: ")[:300])
            del self.sink[:-5]
        except Exception:  # pragma: no cover
            pass


def capture_session(
    out: Path,
    *,
    mode: str = "regular",
    listen_host: str = "127.0.0.1",
    listen_port: int = 8080,
    canaries: Path | None = None,
    own_domains: Iterable[str] = (),
    meta_fields: Mapping[str, str | None] | None = None,
    rules_dirs: Iterable[str | Path] = (),
    geoip_paths: Iterable[str | Path] = (),
    quiet: bool = False,
    phase_keys: Mapping[str, str] | None = None,
    live: bool = True,
    confdir: Path | None = None,
    stderr=None,
    stdin=None,
) -> CaptureResult:
    """Run a capture for a person at a terminal (or, ``quiet``, for a script).

    Not quiet: prints the onboarding (where to point the device, the CA, the
    WireGuard QR code) once the proxy listens, then the live dashboard if
    stderr is a terminal (keys if stdin is one too). Quiet: prints nothing;
    errors still go to the log (stderr).
    """
    from rich.console import Console

    from privaudit.capture.dashboard import Dashboard
    from privaudit.capture.onboarding import print_onboarding

    err = stderr if stderr is not None else sys.stderr
    ready, stop = CaptureReady(), threading.Event()
    console = Console(file=err, stderr=err is sys.stderr)
    ui: dict = {}
    panel: list[str] = []

    def start_ui() -> None:
        ready.wait()
        if ready.error or stop.is_set():
            return
        print_onboarding(ready, mode, file=err)
        if not console.is_terminal or ready.live is None:
            print("privaudit: use the app now; press Ctrl-C to stop and write the audit", file=err, flush=True)
            return

        def snapshot() -> dict:
            snap = ready.live.snapshot()
            snap["errors"] = list(snap.get("errors") or []) + list(panel)
            return snap

        handler = _PanelLog(panel)
        root = logging.getLogger()
        ui["saved"] = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
        for h in ui["saved"]:
            root.removeHandler(h)
        root.addHandler(handler)
        ui["handler"] = handler
        ui["dash"] = Dashboard(snapshot, ready.phase, quit=stop.set, console=console, stdin=stdin,
                               extra_keys=phase_keys or {}).start()

    if not quiet:
        threading.Thread(target=start_ui, name="privaudit-ui", daemon=True).start()
    try:
        return run_capture(
            Path(out),
            mode=mode,
            listen_host=listen_host,
            listen_port=listen_port,
            canaries=canaries,
            confdir=confdir,
            own_domains=own_domains,
            ready=ready,
            stop=stop,
            live=live,
            rules_dirs=rules_dirs,
            geoip_paths=geoip_paths,
            meta_fields=meta_fields,
        )
    finally:
        stop.set()
        if "dash" in ui:
            ui["dash"].stop()
        if "handler" in ui:
            root = logging.getLogger()
            root.removeHandler(ui["handler"])
            for h in ui.get("saved", []):
                root.addHandler(h)
            for line in panel:  # what the panel showed stays on screen after it closes
                print(f"privaudit: {line}", file=err)
