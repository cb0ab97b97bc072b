"""``privaudit demo``: a whole audit of an imitation chat app, offline.

:func:`run_demo` builds a test CA (``trustme``) and an imitation backend on
loopback for a chat app and its third parties, runs the real mitmproxy
in-process (:func:`privaudit.capture.run_capture`) with a fresh mitmproxy CA,
plays a scripted app session through it, then analyses the capture with the
demo's canary identity and renders the report. Nothing resolves a name or
leaves the machine: the proxy connects the imitation hosts to loopback and
refuses any other destination.

The output folder (0700, files 0600)::

    OUT/flows.mitm      the capture (mitmproxy flow file)
    OUT/meta.json       the capture session's facts
    OUT/canaries.yaml   the demo identity as a canary file
    OUT/findings.json   the findings document
    OUT/report.html     the report
"""

from __future__ import annotations

import os
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from privaudit.capture.files import write_private_json
from privaudit.fsutil import private_dir
from privaudit.errors import ConfigError

READY_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class DemoResult:
    """The files a demo run wrote."""

    out_dir: Path
    flows: Path
    """The capture, ``OUT/flows.mitm``."""
    canaries: Path
    """The demo identity, ``OUT/canaries.yaml``."""
    findings: Path
    """The findings document, ``OUT/findings.json``."""
    report: Path
    """The HTML report, ``OUT/report.html``."""
    calls: tuple[tuple[str, int], ...] = ()
    """What the imitation app did, with the HTTP status it got back."""


def capture_demo(out_dir: Path) -> tuple[Path, tuple[tuple[str, int], ...]]:
    """Run the imitation app through a real mitmproxy into ``out_dir``.

    Returns the flow file and the app's calls with their HTTP statuses.
    """
    import trustme

    from privaudit.capture.runner import CaptureReady, run_capture
    from privaudit.demo.app import ProxyClient, run_session
    from privaudit.demo.backend import DEMO_HOSTS, Backend, LoopbackRedirect

    out_dir = private_dir(Path(out_dir))
    for stale in ("flows.mitm", "meta.json"):  # run_capture appends; a demo starts afresh
        (out_dir / stale).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="privaudit-demo-") as tmp:
        ca = trustme.CA(organization_name="privaudit demo CA")
        server_cert = ca.issue_cert(*DEMO_HOSTS)
        ca_file = Path(tmp) / "demo-ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_cert.configure_cert(server_tls)

        with Backend(server_tls) as backend:
            ready, stop = CaptureReady(), threading.Event()
            outcome: dict = {}

            def capture() -> None:
                try:
                    outcome["result"] = run_capture(
                        out_dir,
                        listen_host="127.0.0.1",
                        listen_port=0,
                        confdir=Path(tmp) / "mitmproxy",
                        ssl_verify_upstream_trusted_ca=ca_file,
                        extra_addons=[LoopbackRedirect(backend.https_port, backend.http_port)],
                        # lazy: the server socket opens after the request is
                        # read, so the flow keeps the app's host name and SNI
                        mitm_options={"connection_strategy": "lazy"},
                        # the demo analyses the audit directory afterwards, with its demo addresses
                        live=False,
                        ready=ready,
                        stop=stop,
                    )
                except BaseException as e:  # re-raised in the caller's thread
                    outcome["error"] = e

            proxy = threading.Thread(target=capture, name="privaudit-demo-proxy", daemon=True)
            proxy.start()
            try:
                if not ready.wait(READY_TIMEOUT) or ready.error:
                    raise ConfigError(f"the demo proxy did not start: {ready.error or 'timed out'}")
                client = ProxyClient(ready.listen_host, ready.listen_port, str(ready.confdir / "mitmproxy-ca-cert.pem"))
                try:
                    calls = tuple(run_session(client, phase=ready.phase))
                finally:
                    client.close()
            finally:
                stop.set()
                proxy.join(READY_TIMEOUT)
            if "error" in outcome:
                raise outcome["error"]
    return outcome["result"].flows, calls


def run_demo(out_dir: Path) -> DemoResult:
    """Capture the imitation app, analyse the capture, render the report."""
    from privaudit.audit import analyze
    from privaudit.jurisdiction.demo_addresses import DEMO_ADDRESSES
    from privaudit.audit import with_findings_list
    from privaudit.report import render_report

    from privaudit.demo.identity import write_canaries

    out_dir = private_dir(Path(out_dir))
    canaries = write_canaries(out_dir / "canaries.yaml")
    flows, calls = capture_demo(out_dir)
    # the audit directory, not just the flow file: its meta.json carries the phases
    doc = with_findings_list(analyze([out_dir], canaries_path=canaries, demo_addresses=DEMO_ADDRESSES))
    findings = out_dir / "findings.json"
    write_private_json(findings, doc)
    report = out_dir / "report.html"
    render_report(doc, "html", "en", report)
    os.chmod(report, 0o600)
    return DemoResult(out_dir=out_dir, flows=flows, canaries=canaries, findings=findings, report=report, calls=calls)


__all__ = ["DemoResult", "capture_demo", "run_demo"]
