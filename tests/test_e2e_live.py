"""Live capture end to end: a real mitmproxy on loopback, real clients and
servers through it, in regular, reverse, upstream and WireGuard mode; server-
sent events; kill -9; a thousand requests past an analyser that always raises."""

from __future__ import annotations

import http.client
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mitmproxy import io
from mitmproxy.addons.view import View

import privaudit.capture as capture
from privaudit.audit import build
from privaudit.capture.onboarding import onboarding_text
from privaudit.capture.runner import CaptureReady, run_capture

pytestmark = pytest.mark.e2e

EMAIL = "tester.one@example.org"
REPO = Path(capture.__file__).parents[2]


def sub_env() -> dict:
    """The environment for privaudit in a subprocess (this test's, e.g. conftest's PRIVAUDIT_GEOIP)."""
    return {**os.environ, "PYTHONPATH": str(REPO)}


class Backend(BaseHTTPRequestHandler):
    """POST: echoes a small JSON. GET /sse: one event, then waits for the
    test's gate before the rest, so the test knows the first event was not
    held back until the stream ended."""

    protocol_version = "HTTP/1.1"
    gate: threading.Event
    state: dict

    def do_POST(self):
        n = len(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self._send(200, json.dumps({"ok": True, "got": n}).encode())

    def do_GET(self):
        if self.path != "/sse":
            self._send(404, b"{}")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunk(b'data: {"delta": "first"}\n\n')
        self.state["gate_opened_in_time"] = self.gate.wait(20)
        self._chunk(b'data: {"delta": "second"}\n\n')
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def serve(handler):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def backend():
    gate, state = threading.Event(), {}
    handler = type("B", (Backend,), {"gate": gate, "state": state})
    with serve(handler) as port:
        yield port, gate, state
    gate.set()


@contextmanager
def proxy(tmp_path, **kw):
    """run_capture in a thread; yields (ready, finish) where finish() stops it and returns the result."""
    ready, stop, out = CaptureReady(), threading.Event(), {}
    kw.setdefault("listen_port", 0)
    kw.setdefault("confdir", tmp_path / "conf")

    def run():
        try:
            out["result"] = run_capture(tmp_path / "audit", ready=ready, stop=stop, **kw)
        except BaseException as e:
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(60), "the proxy did not start"

    def finish():
        stop.set()
        t.join(120)
        assert not t.is_alive()
        if "error" in out:
            raise out["error"]
        result = out["result"]
        assert result.findings is not None, f"no live findings: {result.analysis_problem}"
        return result

    try:
        yield ready, finish
    finally:
        stop.set()
        t.join(60)


def post(conn: http.client.HTTPConnection, url: str, payload: dict) -> tuple[int, dict]:
    conn.request("POST", url, body=json.dumps(payload), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, json.loads(r.read())


def read_flows(path):
    with open(path, "rb") as f:
        return list(io.FlowReader(f).stream())


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- modes -----------------------------------------------------------------------------

def test_regular_mode_analyses_live_and_writes_the_audit_directory(tmp_path, backend):
    port, _, _ = backend
    canaries = tmp_path / "canaries.yaml"
    canaries.write_text("chat_content: the tester's exact prompt text\n")
    with proxy(tmp_path, own_domains=["example.org"], canaries=canaries,
               meta_fields={"tester": "Kim", "device": "Pixel 7", "app": "DeepSeek", "app_version": "1.2.3"}) as (ready, finish):
        assert ready.error is None
        conn = http.client.HTTPConnection("127.0.0.1", ready.listen_port, timeout=10)
        ready.phase("1")
        assert post(conn, f"http://127.0.0.1:{port}/v1/log", {"email": EMAIL}) == (200, {"ok": True, "got": 35})
        ready.phase("consent given")
        assert post(conn, f"http://127.0.0.1:{port}/v1/chat", {"q": "the tester's exact prompt text"})[0] == 200
        conn.close()
        deadline = time.time() + 20
        while ready.live.snapshot()["flows_analysed"] < 2 and time.time() < deadline:
            time.sleep(0.05)
        snap = ready.live.snapshot()
        assert snap["flows_analysed"] == 2 and snap["categories"].get("email") == 1  # seen live, before the end
        result = finish()

    assert result.flows_written == 2 and result.flows_analysed == 2 and result.analysis_errors == 0
    doc = json.loads(result.findings.read_text())
    assert doc["flows_analyzed"] == 2
    assert any(f["category"] == "email" and f["flow_index"] == 0 for f in doc["findings"])
    assert any(f["method"] == "canary" and f["flow_index"] == 1 for f in doc["findings"])  # the session's canaries
    assert [p["name"] for p in doc["phases"]] == ["launched", "consent given"]
    meta = json.loads(result.meta.read_text())
    assert meta["audit"] == {"tester": "Kim", "device": "Pixel 7", "app": "DeepSeek", "app_version": "1.2.3"}
    assert meta["tool"]["rules_digest"] == doc["tool"]["rules_digest"] and len(meta["tool"]["rules_digest"]) == 64
    assert meta["capture"]["start"] and meta["capture"]["end"]
    assert [p["name"] for p in meta["phases"]] == ["launched", "consent given"]
    assert meta["analysis"]["flows_analysed"] == 2 and meta["layout"] == 1
    assert mode(result.audit_dir) == 0o700
    assert {p.name: mode(p) for p in result.audit_dir.iterdir()} == {
        "flows.mitm": 0o600, "meta.json": 0o600, "findings.json": 0o600}


def test_reverse_mode(tmp_path, backend):
    port, _, _ = backend
    with proxy(tmp_path, mode=f"reverse:http://127.0.0.1:{port}") as (ready, finish):
        assert ready.error is None
        conn = http.client.HTTPConnection("127.0.0.1", ready.listen_port, timeout=10)
        assert post(conn, "/v1/log?x=1", {"email": EMAIL})[0] == 200
        conn.close()
        result = finish()
    (flow,) = read_flows(result.flows)
    assert flow.request.path == "/v1/log?x=1" and flow.request.port == port
    assert json.loads(result.meta.read_text())["mode"] == [f"reverse:http://127.0.0.1:{port}"]
    assert any(f["category"] == "email" for f in json.loads(result.findings.read_text())["findings"])


def test_upstream_mode_goes_through_the_upstream_proxy(tmp_path, backend):
    port, _, _ = backend
    seen: list[str] = []

    class Forward(BaseHTTPRequestHandler):
        """A tiny forward proxy: absolute-form requests, passed on as they are."""

        protocol_version = "HTTP/1.1"

        def do_POST(self):
            seen.append(self.path)
            u = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            c.request("POST", u.path + (f"?{u.query}" if u.query else ""), body=body,
                      headers={"Content-Type": self.headers.get("Content-Type", "")})
            r = c.getresponse()
            data = r.read()
            c.close()
            self.send_response(r.status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    with serve(Forward) as upstream_port:
        with proxy(tmp_path, mode=f"upstream:http://127.0.0.1:{upstream_port}") as (ready, finish):
            assert ready.error is None
            conn = http.client.HTTPConnection("127.0.0.1", ready.listen_port, timeout=10)
            assert post(conn, f"http://127.0.0.1:{port}/v1/log", {"email": EMAIL})[0] == 200
            conn.close()
            result = finish()
    assert seen == [f"http://127.0.0.1:{port}/v1/log"]
    (flow,) = read_flows(result.flows)
    assert flow.request.pretty_url == f"http://127.0.0.1:{port}/v1/log"


def test_wireguard_mode_prints_the_client_config_and_a_qr_code(tmp_path):
    with proxy(tmp_path, mode="wireguard") as (ready, finish):
        if ready.error:
            pytest.skip(f"WireGuard mode cannot run here: {ready.error}")
        (server,) = ready.servers
        text = onboarding_text("wireguard", ready.listen_addrs, ready.confdir, ready.servers)
        finish()
    assert "[Interface]" in server["wireguard_conf"] and "PrivateKey" in text
    assert f"Endpoint = 127.0.0.1:{ready.listen_port}" in text  # the bound port, not 0
    assert "Scan from QR code" in text and ("█" in text or "▀" in text)


def test_findings_are_attached_to_the_flows_mitmweb_shows(tmp_path, backend):
    port, _, _ = backend
    view = View()
    with proxy(tmp_path, extra_addons=[view]) as (ready, finish):
        conn = http.client.HTTPConnection("127.0.0.1", ready.listen_port, timeout=10)
        assert post(conn, f"http://127.0.0.1:{port}/v1/log", {"email": EMAIL})[0] == 200
        assert post(conn, f"http://127.0.0.1:{port}/v1/ping", {"n": 1})[0] == 200
        conn.close()
        deadline = time.time() + 20
        while not any(f.comment for f in list(view)) and time.time() < deadline:
            time.sleep(0.05)
        flows = {f.request.path: (f.comment, f.marked) for f in list(view)}
        finish()
    comment, marked = flows["/v1/log"]
    assert "privaudit:" in comment and "email" in comment and marked
    assert flows["/v1/ping"] == ("", "")


# --- streams ---------------------------------------------------------------------------

def test_sse_events_reach_the_client_before_the_stream_ends_and_are_kept(tmp_path, backend):
    port, gate, state = backend
    with proxy(tmp_path) as (ready, finish):
        conn = http.client.HTTPConnection("127.0.0.1", ready.listen_port, timeout=30)
        conn.request("GET", f"http://127.0.0.1:{port}/sse")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.headers["content-type"] == "text/event-stream"
        first = resp.readline()
        gate.set()  # only now may the server finish the stream
        rest = resp.read()
        conn.close()
        result = finish()
    assert first == b'data: {"delta": "first"}\n'
    assert state["gate_opened_in_time"] is True  # the first event was not held back until the end
    assert rest.endswith(b"data: [DONE]\n\n")
    (flow,) = read_flows(result.flows)
    assert flow.response.content == b'data: {"delta": "first"}\n\ndata: {"delta": "second"}\n\ndata: [DONE]\n\n'
    assert flow.metadata["privaudit_streamed"]["response"]["truncated"] is False


# --- nothing lost, never in the way ------------------------------------------------------

_KILL_SCRIPT = """
import sys, threading
from pathlib import Path
from privaudit.capture.runner import CaptureReady, run_capture
ready = CaptureReady()
def announce():
    ready.wait()
    Path(sys.argv[3]).write_text(str(ready.listen_port))
threading.Thread(target=announce, daemon=True).start()
run_capture(Path(sys.argv[1]), mode=sys.argv[4], listen_port=0, confdir=Path(sys.argv[2]), ready=ready)
"""

@contextmanager
def killable_capture(tmp_path, mode="regular"):
    """A capture in its own process; yields (audit dir, proxy port) and kills it with SIGKILL at the end."""
    audit, port_file = tmp_path / "audit", tmp_path / "port"
    p = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(audit), str(tmp_path / "conf"), str(port_file), mode],
                         env=sub_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        yield audit, int(port_file.read_text())
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(30)
    assert p.returncode == -signal.SIGKILL


def test_kill_9_loses_no_completed_flow_and_report_still_works(tmp_path, backend):
    port, _, _ = backend
    with killable_capture(tmp_path) as (audit, proxy_port):
        conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
        for i in range(25):
            assert post(conn, f"http://127.0.0.1:{port}/v1/log?i={i}", {"email": EMAIL, "i": i})[0] == 200
        conn.close()

    assert json.loads((audit / "meta.json").read_text())["capture"]["end"] is None  # it really died
    assert len(read_flows(audit / "flows.mitm")) == 25
    out = tmp_path / "report.json"
    r = subprocess.run([sys.executable, "-m", "privaudit", "report", str(audit), "-o", str(out)],
                       env=sub_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["flows_analyzed"] == 25
    assert sorted({f["flow_index"] for f in doc["findings"] if f["category"] == "email"}) == list(range(25))


@contextmanager
def ws_echo_server():
    """A loopback WebSocket server (wsproto, mitmproxy's own WebSocket library) that echoes text."""
    import socket

    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage

    srv = socket.create_server(("127.0.0.1", 0))

    def handle(conn):
        ws = WSConnection(ConnectionType.SERVER)
        with conn:
            while data := conn.recv(65536):
                ws.receive_data(data)
                for ev in ws.events():
                    if isinstance(ev, Request):
                        conn.sendall(ws.send(AcceptConnection()))
                    elif isinstance(ev, TextMessage):
                        conn.sendall(ws.send(Message(data="echo: " + ev.data)))
                    elif isinstance(ev, CloseConnection):
                        conn.sendall(ws.send(ev.response()))
                        return

    def serve_ws():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve_ws, daemon=True).start()
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


def test_kill_9_during_an_open_websocket_keeps_its_messages(tmp_path):
    import socket

    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage

    def wait_for(sock, ws, kind):
        while True:
            for ev in ws.events():
                if isinstance(ev, kind):
                    return ev
            ws.receive_data(sock.recv(65536))

    with ws_echo_server() as ws_port, killable_capture(tmp_path, f"reverse:http://127.0.0.1:{ws_port}") as (audit, port):

        def connect():
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            ws = WSConnection(ConnectionType.CLIENT)
            sock.sendall(ws.send(Request(host="chat.example.com", target="/ws")))
            wait_for(sock, ws, AcceptConnection)
            return sock, ws

        sock, ws = connect()  # a conversation that ended: in the flow file
        sock.sendall(ws.send(Message(data="hello")))
        wait_for(sock, ws, TextMessage)
        sock.sendall(ws.send(CloseConnection(code=1000)))
        wait_for(sock, ws, CloseConnection)
        sock.close()
        sock, ws = connect()  # a conversation still going on when the capture is killed
        for i in range(3):
            sock.sendall(ws.send(Message(data=f"my e-mail is {EMAIL} ({i})")))
            assert wait_for(sock, ws, TextMessage).data.startswith("echo: my e-mail")
        checkpoint = audit / "flows.open.mitm"
        deadline = time.time() + 20
        while time.time() < deadline:  # the open flow's copy catches up within CHECKPOINT_INTERVAL
            if checkpoint.exists() and sum(len(f.websocket.messages) for f in read_flows(checkpoint)) == 6:
                break
            time.sleep(0.1)
    sock.close()
    r = subprocess.run([sys.executable, "-m", "privaudit", "analyze", str(audit), "-o", str(tmp_path / "f.json")],
                       env=sub_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "f.json").read_text())
    assert doc["flows_analyzed"] == 2 and doc["coverage"]["websocket_messages"] == 2 + 6
    assert any(f["category"] == "email" for f in doc["findings"])


class Boom:
    def scan(self, ex):
        raise RuntimeError("the analyser broke")


def raising_audit():
    a = build()
    a.detector = Boom()
    return a


def test_a_thousand_requests_all_answered_while_the_analyser_raises_on_every_flow(tmp_path, backend):
    port, _, _ = backend
    clients, per_client = 8, 125
    statuses: list[int] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ready.listen_port, timeout=30)
        try:
            for i in range(per_client):
                status, body = post(conn, f"http://127.0.0.1:{port}/v1/log?c={k}&i={i}", {"email": EMAIL, "i": i})
                with lock:
                    statuses.append(status if body.get("ok") else -1)
        finally:
            conn.close()

    with proxy(tmp_path, build_audit=raising_audit) as (ready, finish):
        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        result = finish()

    assert statuses == [200] * (clients * per_client)
    assert result.flows_written == 1000 and result.write_errors == 0
    assert result.analysis_errors == 1000
    doc = json.loads(result.findings.read_text())
    assert doc["flows_analyzed"] == 1000 and doc["coverage"]["analysis_errors"] == 1000
    assert json.loads(result.meta.read_text())["analysis"]["analysis_errors"] == 1000


class Held:
    """Delegates to the real detector once ``gate`` opens: until then the analysis is behind."""

    def __init__(self, inner, gate: threading.Event):
        self.inner = inner
        self.gate = gate

    def scan(self, ex):
        self.gate.wait(60)
        return self.inner.scan(ex)


def test_an_analysis_that_falls_behind_defers_flows_and_analyses_them_all(tmp_path, backend):
    port, _, _ = backend
    gate = threading.Event()

    def held_audit():
        a = build()
        a.detector = Held(a.detector, gate)
        return a

    with proxy(tmp_path, build_audit=held_audit, queue_size=2) as (ready, finish):
        conn = http.client.HTTPConnection("127.0.0.1", ready.listen_port, timeout=10)
        try:
            for i in range(30):  # all answered while the analysis is stuck on the first flows
                assert post(conn, f"http://127.0.0.1:{port}/v1/log?i={i}", {"email": EMAIL})[0] == 200
        finally:
            conn.close()
            gate.set()
        result = finish()
    assert result.deferred > 0
    doc = json.loads(result.findings.read_text())
    assert doc["flows_analyzed"] == 30
    assert sorted(f["flow_index"] for f in doc["findings"] if f["category"] == "email") == list(range(30))


def test_a_session_resumed_into_the_same_folder_is_analysed_whole(tmp_path, backend):
    port, _, _ = backend
    for n in range(2):
        with proxy(tmp_path) as (ready, finish):
            conn = http.client.HTTPConnection("127.0.0.1", ready.listen_port, timeout=10)
            assert post(conn, f"http://127.0.0.1:{port}/v1/log?session={n}", {"email": EMAIL})[0] == 200
            conn.close()
            result = finish()
    doc = json.loads(result.findings.read_text())
    assert doc["flows_analyzed"] == 2 and doc["inputs"][0]["flows"] == 2
    assert sorted(f["flow_index"] for f in doc["findings"] if f["category"] == "email") == [0, 1]


def test_disk_errors_are_reported_and_traffic_keeps_flowing(tmp_path, backend, monkeypatch):
    """The flow file's disk fills up mid-session: every request still gets its answer."""
    import errno

    from privaudit.capture import addon as pa

    port, _, _ = backend
    real_write = os.write
    full = threading.Event()

    def write(fd, data):
        if full.is_set() and fd not in (0, 1, 2):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(pa.os, "write", write)
    with proxy(tmp_path) as (ready, finish):
        conn = http.client.HTTPConnection("127.0.0.1", ready.listen_port, timeout=10)
        assert post(conn, f"http://127.0.0.1:{port}/v1/a", {"n": 1})[0] == 200
        full.set()
        assert post(conn, f"http://127.0.0.1:{port}/v1/b", {"n": 2})[0] == 200
        snap = ready.live.snapshot()
        full.clear()
        assert post(conn, f"http://127.0.0.1:{port}/v1/c", {"n": 3})[0] == 200
        conn.close()
        result = finish()
    assert snap["write_errors"] == 1 and "disk is full" in snap["last_write_error"]
    assert result.write_errors == 1
    assert [f.request.path for f in read_flows(result.flows)] == ["/v1/a", "/v1/c"]
    meta = json.loads(result.meta.read_text())
    assert meta["write_errors"] == 1 and "disk is full" in meta["last_write_error"]


# --- the terminal session: dashboard keys on a real pseudo-terminal, quiet mode ------------

def test_dashboard_keys_mark_phases_and_q_stops_the_capture(tmp_path, backend):
    import pty

    from privaudit.capture.console import capture_session

    port, _, _ = backend
    master, slave = pty.openpty()
    term_out = open(slave, "w", buffering=1, encoding="utf-8", closefd=False)
    term_in = open(slave, "r", encoding="utf-8", closefd=False)
    screen = bytearray()
    done = threading.Event()

    def drain():  # a terminal must be read, or the dashboard blocks on a full pty
        while not done.is_set():
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            screen.extend(chunk)

    threading.Thread(target=drain, daemon=True).start()
    listen = _free_port()
    out: dict = {}

    def run():
        out["result"] = capture_session(tmp_path / "audit", listen_port=listen, confdir=tmp_path / "conf",
                                        stderr=term_out, stdin=term_in, phase_keys={"6": "opened settings"})

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        deadline = time.time() + 60
        while b"Endpoints by country" not in screen and time.time() < deadline:
            time.sleep(0.05)
        assert b"Endpoints by country" in screen, screen[-2000:]
        assert b"mitm.it" in screen  # the onboarding came first
        conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=10)
        os.write(master, b"3")
        assert post(conn, f"http://127.0.0.1:{port}/v1/log", {"email": EMAIL})[0] == 200
        conn.close()
        os.write(master, b"6")
        os.write(master, b"pmy own phase\r")
        deadline = time.time() + 20
        while b"my own phase" not in screen and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the last mark reaches the event loop
        os.write(master, b"q")
        t.join(60)
        assert not t.is_alive()
    finally:
        done.set()
        term_out.close()
        term_in.close()
        os.close(slave)
        os.close(master)
    meta = json.loads(out["result"].meta.read_text())
    assert [p["name"] for p in meta["phases"]] == ["consent given", "opened settings", "my own phase"]
    assert out["result"].flows_written == 1


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_QUIET_SCRIPT = """
import sys
from pathlib import Path
from privaudit.capture.console import capture_session, capture_summary
r = capture_session(Path(sys.argv[1]), listen_port=int(sys.argv[3]), confdir=Path(sys.argv[2]), quiet=True)
print(capture_summary(r), file=sys.stderr)
"""


def test_quiet_mode_prints_only_the_summary(tmp_path, backend):
    port, _, _ = backend
    listen = _free_port()
    p = subprocess.Popen([sys.executable, "-c", _QUIET_SCRIPT, str(tmp_path / "audit"), str(tmp_path / "conf"), str(listen)],
                         env=sub_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        meta = tmp_path / "audit" / "meta.json"
        for _ in range(600):
            if meta.exists():
                break
            time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=10)
        assert post(conn, f"http://127.0.0.1:{port}/v1/log", {"email": EMAIL})[0] == 200
        conn.close()
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 0, stderr
    assert stdout == ""
    assert stderr.strip().splitlines() == [
        f"privaudit: capture ended: 1 flows recorded, 1 analysed live in {tmp_path / 'audit'}/"]


def test_mitmweb_shows_the_findings_on_its_flows(tmp_path, backend):
    """mitmweb -s addon.py: findings arrive as flow comments and marks in mitmweb's own flow list."""
    import re

    mitmweb = Path(sys.executable).with_name("mitmweb")
    if not mitmweb.exists():
        pytest.skip("no mitmweb next to this python")
    port, _, _ = backend
    web_port = _free_port()
    audit = tmp_path / "audit"
    p = subprocess.Popen(
        [str(mitmweb), "--listen-host", "127.0.0.1", "--listen-port", "0", "--web-port", str(web_port),
         "--set", "web_open_browser=false", "--set", f"confdir={tmp_path / 'conf'}",
         "-s", capture.addon_path(),
         "--set", f"privaudit_flowfile={audit / 'flows.mitm'}", "--set", f"privaudit_meta_file={audit / 'meta.json'}",
         "--set", f"privaudit_findings_file={audit / 'findings.json'}", "--set", "privaudit_own_domains=example.org",
         "--set", "termlog_verbosity=info"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=sub_env(),
    )
    watchdog = threading.Timer(90, p.kill)
    watchdog.start()
    try:
        proxy_port = token = None
        for line in p.stdout:
            if m := re.search(r"proxy listening at .*:(\d+)", line):
                proxy_port = int(m.group(1))
            if m := re.search(r"Web server listening at \S+?(?:\?token=(\w+))?\s*$", line):
                token = m.group(1) or ""
            if proxy_port and token is not None:
                break
        assert proxy_port, "mitmweb did not start"
        conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
        assert post(conn, f"http://127.0.0.1:{port}/v1/log", {"email": EMAIL})[0] == 200
        conn.close()
        flows: list = []
        deadline = time.time() + 30
        while time.time() < deadline:
            web = http.client.HTTPConnection("127.0.0.1", web_port, timeout=10)
            web.request("GET", f"/flows?token={token}", headers={"Authorization": f"Bearer {token}"})
            r = web.getresponse()
            body = r.read()
            web.close()
            if r.status == 200:
                flows = json.loads(body)
                if flows and flows[0]["comment"]:
                    break
            time.sleep(0.2)
        assert flows and "email" in flows[0]["comment"] and flows[0]["marked"]
    finally:
        p.terminate()
        try:
            p.wait(30)
        finally:
            watchdog.cancel()
            p.kill()
    doc = json.loads((audit / "findings.json").read_text())
    assert doc["flows_analyzed"] == 1 and any(f["category"] == "email" for f in doc["findings"])


def test_local_mode_where_it_cannot_run_is_a_clear_config_error(tmp_path):
    import shutil

    from privaudit.capture.onboarding import local_mode_support
    from privaudit.errors import ConfigError

    if local_mode_support()[0] and (shutil.which("sudo") or os.name == "nt" or sys.platform == "darwin"):
        pytest.skip("local mode could really start here and redirect this machine's traffic")
    try:
        with proxy(tmp_path, mode="local:no-such-app") as (ready, finish):
            started = ready.error is None
            finish()
    except ConfigError as e:
        assert "could not start" in str(e) and "local mode" in str(e)
        assert "Stack backtrace" not in str(e) and "\n" not in str(e)
        return
    assert started  # where local mode runs (Windows, macOS, Linux as root) it simply starts
