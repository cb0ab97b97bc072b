"""A real mitmproxy on loopback, a real HTTPS client and server through it."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from mitmproxy import io

import privaudit.capture as capture
from privaudit.capture.runner import CaptureReady, run_capture
from privaudit.errors import ConfigError

pytestmark = pytest.mark.e2e

HOST = "klink.example.com"


class _Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def tls_server(tmp_path):
    """A loopback HTTPS server with a certificate for HOST from a test CA."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(server_ctx)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    srv.socket = server_ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    ca_file = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield srv.server_address[1], ca_file
    srv.shutdown()
    srv.server_close()


class ToLoopback:
    """Sends the proxy's connection for HOST to the loopback server."""

    def __init__(self, port):
        self.port = port

    def server_connect(self, data):
        if data.server.address[0] == HOST:
            data.server.address = ("127.0.0.1", self.port)


@pytest.fixture
def proxy(tmp_path, tls_server):
    port, ca_file = tls_server
    ready, stop, out = CaptureReady(), threading.Event(), {}

    def run():
        out["result"] = run_capture(
            tmp_path / "audit",
            listen_port=0,
            confdir=tmp_path / "conf",
            ssl_verify_upstream_trusted_ca=ca_file,
            extra_addons=[ToLoopback(port)],
            own_domains=["example.com"],
            ready=ready,
            stop=stop,
        )

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(30) and ready.error is None

    def finish():
        stop.set()
        t.join(30)
        assert not t.is_alive()
        return out["result"]

    yield ready, finish
    stop.set()
    t.join(30)


def https_post_through(proxy_port: int, cafile: Path, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", proxy_port, timeout=10, context=ssl.create_default_context(cafile=str(cafile))
    )
    conn.set_tunnel(HOST, 443)
    try:
        conn.request("POST", "/v1/log?aid=1", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_capture_records_the_flow_with_peername_and_certificate(proxy, tmp_path):
    ready, finish = proxy
    assert ready.listen_host == "127.0.0.1" and ready.listen_port > 0
    mitm_ca = ready.confdir / "mitmproxy-ca-cert.pem"
    status, body = https_post_through(ready.listen_port, mitm_ca, b'{"openudid": "f0e1d2c3b4a59687"}')
    assert (status, body) == (200, b'{"ok": true}')
    result = finish()

    assert result.flows == tmp_path / "audit" / "flows.mitm"
    assert result.flows_written == 1 and result.write_errors == 0
    assert result.listen_addrs == ((ready.listen_host, ready.listen_port),)
    with open(result.flows, "rb") as f:
        (flow,) = list(io.FlowReader(f).stream())
    assert flow.request.pretty_url == f"https://{HOST}/v1/log?aid=1"
    assert flow.request.content == b'{"openudid": "f0e1d2c3b4a59687"}'
    assert flow.server_conn.peername[0] == "127.0.0.1"
    assert flow.server_conn.sni == HOST
    assert flow.server_conn.tls_established
    leaf = flow.server_conn.certificate_list[0]
    assert HOST in [str(getattr(n, "value", n)) for n in leaf.altnames]  # GeneralName (11.x) or str

    assert stat.S_IMODE(os.stat(result.flows).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(result.audit_dir).st_mode) == 0o700
    meta = json.loads(result.meta.read_text())
    assert meta["capture"]["start"] == result.start and meta["capture"]["end"] == result.end
    assert meta["mode"] == ["regular"]
    assert meta["listen"] == [{"host": "127.0.0.1", "port": ready.listen_port}]
    assert meta["own_domains"] == ["example.com"]
    assert meta["flows_written"] == 1


def test_refused_proxy_certificate_is_noted_as_uninspected(proxy, tls_server):
    """An app that does not trust the proxy (pinning) leaves no flow; meta.json says so."""
    ready, finish = proxy
    _, not_the_proxy_ca = tls_server
    with pytest.raises(ssl.SSLError):
        https_post_through(ready.listen_port, not_the_proxy_ca, b"{}")
    result = finish()
    assert result.flows_written == 0
    (failure,) = json.loads(result.meta.read_text())["tls_failures"]
    assert failure["side"] == "client" and failure["host"] == HOST and failure["count"] == 1


def test_port_in_use_is_a_config_error_and_ready_is_set(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ready = CaptureReady()
        with pytest.raises(ConfigError, match="could not start"):
            run_capture(tmp_path / "audit", listen_port=busy.getsockname()[1], confdir=tmp_path / "conf", ready=ready)
    assert ready.is_set() and ready.error
    assert not (tmp_path / "audit").exists()  # nothing half-made is left behind


def test_bad_mode_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="invalid capture mode"):
        run_capture(tmp_path / "audit", mode="nonsense:xyz", confdir=tmp_path / "conf")


def test_missing_canary_file_is_a_config_error_before_capture(tmp_path):
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "notes.txt").write_text("the tester's own notes")
    with pytest.raises(ConfigError, match="privaudit_canaries"):
        run_capture(audit, listen_port=0, confdir=tmp_path / "conf", canaries=tmp_path / "missing.yaml")
    assert sorted(p.name for p in audit.iterdir()) == ["notes.txt"]  # a folder it did not make stays


def test_unknown_mitmproxy_option_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no_such_option"):
        run_capture(tmp_path / "audit", listen_port=0, confdir=tmp_path / "conf", mitm_options={"no_such_option": 1})


_SIGNAL_SCRIPT = """
import sys
from pathlib import Path
from privaudit.capture.runner import run_capture
r = run_capture(Path(sys.argv[1]), listen_port=0, confdir=Path(sys.argv[2]))
print("STOPPED", r.end, flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_capture_cleanly(tmp_path, sig):
    audit = tmp_path / "audit"
    p = subprocess.Popen(
        [sys.executable, "-c", _SIGNAL_SCRIPT, str(audit), str(tmp_path / "conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(capture.__file__).parents[2])},
    )
    try:
        meta = audit / "meta.json"
        for _ in range(300):  # meta.json appears once the proxy is serving
            if meta.exists():
                break
            threading.Event().wait(0.05)
        assert meta.exists()
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert "STOPPED 20" in out
    assert json.loads(meta.read_text())["capture"]["end"]


def test_mitmdump_runs_the_addon_script(tmp_path, tls_server):
    """The addon also works as a plain mitmdump script."""
    mitmdump = Path(sys.executable).with_name("mitmdump")
    if not mitmdump.exists():
        pytest.skip("no mitmdump next to this python")
    port, ca_file = tls_server
    redirect = tmp_path / "redirect.py"
    redirect.write_text(
        "class R:\n"
        "    def server_connect(self, data):\n"
        f"        if data.server.address[0] == {HOST!r}:\n"
        f"            data.server.address = ('127.0.0.1', {port})\n"
        "addons = [R()]\n"
    )
    flows = tmp_path / "out" / "flows.mitm"
    p = subprocess.Popen(
        [str(mitmdump), "--listen-host", "127.0.0.1", "--listen-port", "0",
         "--set", f"confdir={tmp_path / 'conf'}", "--set", f"ssl_verify_upstream_trusted_ca={ca_file}",
         "-s", capture.addon_path(), "-s", str(redirect),
         "--set", f"privaudit_flowfile={flows}", "--set", f"privaudit_meta_file={tmp_path / 'out' / 'meta.json'}",
         "--set", "termlog_verbosity=info", "--set", "flow_detail=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(capture.__file__).parents[2])},
    )
    watchdog = threading.Timer(60, p.kill)  # never hang the suite on a silent mitmdump
    watchdog.start()
    try:
        proxy_port = None
        for line in p.stdout:
            if m := re.search(r"listening at .*:(\d+)", line):
                proxy_port = int(m.group(1))
                break
        assert proxy_port, "mitmdump did not start"
        status, _ = https_post_through(proxy_port, tmp_path / "conf" / "mitmproxy-ca-cert.pem", b"{}")
        assert status == 200
    finally:
        p.terminate()
        p.wait(30)
        watchdog.cancel()
    with open(flows, "rb") as f:
        (flow,) = list(io.FlowReader(f).stream())
    assert flow.request.pretty_host == HOST  # eager connect: .host is the redirected address
    assert flow.server_conn.certificate_list
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["capture"]["end"]


def test_certificate_captured_through_the_proxy_names_the_operator(tmp_path):
    """Jurisdiction evidence from a real certificate of a real test CA, seen by the real proxy.

    The host's domain is in no operator map; only the server certificate's
    subject organisation says who runs it (here a Chinese operator).
    """
    from privaudit.audit import analyze

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, organization_name="Beijing Volcano Engine Technology Co., Ltd.").configure_cert(server_ctx)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    srv.socket = server_ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ca_file = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ready, stop, out = CaptureReady(), threading.Event(), {}

    def run():
        out["result"] = run_capture(
            tmp_path / "audit", listen_port=0, confdir=tmp_path / "conf", ssl_verify_upstream_trusted_ca=ca_file,
            extra_addons=[ToLoopback(srv.server_address[1])], live=False, ready=ready, stop=stop,
        )

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        assert ready.wait(30) and ready.error is None
        status, _ = https_post_through(ready.listen_port, tmp_path / "conf" / "mitmproxy-ca-cert.pem", b"{}")
        assert status == 200
    finally:
        stop.set()
        t.join(30)
        srv.shutdown()
        srv.server_close()
    doc = analyze([tmp_path / "audit"], jobs=1)
    (ep,) = [e for e in doc["endpoints"] if e["host"] == HOST]
    tls = [e for e in ep["evidence"] if e["kind"] == "tls"]
    assert tls and "Beijing Volcano Engine" in tls[0]["detail"]
    assert "CN" in ep["jurisdictions"]
