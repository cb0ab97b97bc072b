"""The imitation backend: every host the demo app talks to, on loopback.

One server object listens on two loopback ports, HTTPS (a certificate from
the demo's own test CA, valid for every imitation host) and plain HTTP, and
answers by ``Host`` header the way a chat app's backend and its third parties
would. :class:`LoopbackRedirect` is the mitmproxy addon that sends the
proxy's connections for those hosts here, so the demo never resolves a name
and never leaves the machine.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger(__name__)

CHAT_HOST = "chat.deepseek.com"
API_HOST = "api.deepseek.com"
ANALYTICS_HOST = "gator.volces.com"  # ByteDance/Volcano Engine analytics
FINGERPRINT_HOST = "fp-it.fengkongcloud.com"  # Shumei device fingerprinting
INTERCOM_HOST = "api-iam.intercom.io"  # Intercom messenger
UPDATE_HOST = "update.deepseek.com"  # reached over cleartext HTTP

HTTPS_HOSTS: tuple[str, ...] = (CHAT_HOST, API_HOST, ANALYTICS_HOST, FINGERPRINT_HOST, INTERCOM_HOST)
HTTP_HOSTS: tuple[str, ...] = (UPDATE_HOST,)
DEMO_HOSTS: tuple[str, ...] = HTTPS_HOSTS + HTTP_HOSTS

SSE_ANSWER = (
    "An HbA1c of 7.9% is above the usual target.",
    " Ask your doctor whether your treatment plan should change.",
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib's name
        logger.debug("demo backend: " + format, *args)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _json(self, doc: object, status: int = 200) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _sse(self, chunks: tuple[str, ...]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = [f"data: {json.dumps({'choices': [{'delta': {'content': c}}]})}\n\n" for c in chunks]
        events.append("data: [DONE]\n\n")
        for e in events:
            data = e.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        self._body()
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        path = self.path.split("?")[0]
        if host == CHAT_HOST and path == "/api/v0/users/login":
            self._json({"code": 0, "data": {"biz_data": {"user": {"id": str(uuid.uuid4()), "token": uuid.uuid4().hex}}}})
        elif host == CHAT_HOST and path == "/api/v0/chat/completion":
            self._sse(SSE_ANSWER)
        elif host in (CHAT_HOST, API_HOST):
            self._json({"code": 0, "data": {}})
        elif host == ANALYTICS_HOST:
            self._json({"e": 0, "sc": 1, "tc": 1})
        elif host == FINGERPRINT_HOST:
            self._json({"code": 1100, "message": "success", "deviceId": "B" + uuid.uuid4().hex})
        elif host == INTERCOM_HOST:
            self._json({"type": "user", "app_id": "demo1234"})
        elif host == UPDATE_HOST:
            self._json({"update": False, "latest": "1.0.7"})
        else:
            self._json({"error": f"no imitation of {host!r}"}, status=421)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request, client_address) -> None:
        # TLS handshake in the connection's own thread, not the accept loop.
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                logger.debug("demo backend: TLS handshake failed: %s", e)
                return
        super().finish_request(request, client_address)


class Backend:
    """The imitation backend on 127.0.0.1: ``https_port`` and ``http_port``.

    ``server_tls`` is a server-side SSL context with the demo certificate.
    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, server_tls: ssl.SSLContext) -> None:
        self._https = _HttpServer(("127.0.0.1", 0), _Handler)
        self._https.tls = server_tls
        self._http = _HttpServer(("127.0.0.1", 0), _Handler)
        self._threads: list[threading.Thread] = []

    @property
    def https_port(self) -> int:
        return self._https.server_address[1]

    @property
    def http_port(self) -> int:
        return self._http.server_address[1]

    def start(self) -> Backend:
        for srv in (self._https, self._http):
            t = threading.Thread(target=srv.serve_forever, name="privaudit-demo-backend", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for srv in (self._https, self._http):
            srv.shutdown()
            srv.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> Backend:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class LoopbackRedirect:
    """mitmproxy addon: connect the imitation hosts to the loopback backend
    and refuse everything else, so the demo never leaves the machine.

    Runs on ``server_connect``, before mitmproxy opens the socket (so no DNS
    lookup happens). With ``connection_strategy=lazy`` the request keeps its
    host name and the TLS SNI; only the socket goes to loopback, which is what
    the flow's ``server_conn.peername`` then records.
    """

    def __init__(self, https_port: int, http_port: int) -> None:
        self.https_port = https_port
        self.http_port = http_port

    def server_connect(self, data) -> None:
        host, port, *_ = data.server.address
        host = str(host).lower()
        if host in HTTPS_HOSTS and port == 443:
            data.server.address = ("127.0.0.1", self.https_port)
        elif host in HTTP_HOSTS and port == 80:
            data.server.address = ("127.0.0.1", self.http_port)
        else:
            data.server.error = f"privaudit demo: {host}:{port} is not an imitation host; not connecting"
