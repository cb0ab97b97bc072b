"""The imitation chat app: one scripted session through the proxy.

What it sends is modelled on what such apps were publicly reported to send
(login with e-mail and phone, the prompt, analytics with device identifiers
to ByteDance's Volcano Engine, a device fingerprint to Shumei, an Intercom
identify call, an update check over cleartext HTTP). Every value is the demo
identity from :mod:`privaudit.demo.identity`.

The client speaks to the proxy directly with ``http.client`` (CONNECT for
HTTPS, absolute-form for HTTP), so no environment proxy setting can send it
anywhere else.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import ssl
import time
import uuid
from urllib.parse import urlencode

from privaudit.demo import identity as me
from privaudit.demo.backend import ANALYTICS_HOST, API_HOST, CHAT_HOST, FINGERPRINT_HOST, INTERCOM_HOST, UPDATE_HOST

USER_AGENT = "DeepSeek/1.0.7 Android/14 (SM-S918N)"
DEVICE = {
    "device_model": "SM-S918N",
    "device_brand": "samsung",
    "os": "Android",
    "os_version": "14",
    "resolution": "1440x3088",
    "dpi": 600,
    "carrier": "SK Telecom",
    "mcc_mnc": "45005",
    "access": "wifi",
    "language": "ko",
    "timezone": 9,
}


class ProxyClient:
    """Sends requests through an HTTP proxy at ``proxy_host:proxy_port``,
    trusting only ``cafile`` (the proxy's CA) for HTTPS."""

    def __init__(self, proxy_host: str, proxy_port: int, cafile: str, timeout: float = 20) -> None:
        self.proxy = (proxy_host, proxy_port)
        self.tls = ssl.create_default_context(cafile=cafile)
        self.timeout = timeout
        self._tunnels: dict[str, http.client.HTTPSConnection] = {}

    def https(self, host: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        conn = self._tunnels.get(host)
        if conn is None:
            conn = http.client.HTTPSConnection(*self.proxy, timeout=self.timeout, context=self.tls)
            conn.set_tunnel(host, 443)
            self._tunnels[host] = conn
        return self._send(conn, method, path, body, headers)

    def http(self, host: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(*self.proxy, timeout=self.timeout)
        try:
            return self._send(conn, method, f"http://{host}{path}", body, headers)
        finally:
            conn.close()

    def _send(self, conn, method, target, body, headers) -> tuple[int, bytes]:
        h = {"User-Agent": USER_AGENT, **(headers or {})}
        conn.request(method, target, body=body, headers=h)
        resp = conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        for conn in self._tunnels.values():
            conn.close()
        self._tunnels.clear()


def _json(doc: object) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def run_session(client: ProxyClient, phase=lambda name: None) -> list[tuple[str, int]]:
    """Play one chat-app session; returns (what, HTTP status) per call.

    ``phase(name)`` is called as the session enters each test phase.
    """
    done: list[tuple[str, int]] = []
    now_ms = int(time.time() * 1000)
    session_id = str(uuid.uuid4())

    phase("start-up")
    # 0. Remote config from the API host, keyed by the device.
    status, _ = client.https(
        API_HOST, "GET", f"/api/v0/client/settings?did={me.ANDROID_ID}&scope=app", headers={"X-Device-Id": me.ANDROID_ID}
    )
    done.append(("settings", status))

    phase("login")
    # 1. Login: e-mail, phone and name in clear JSON, to the app's own backend.
    status, body = client.https(
        CHAT_HOST,
        "POST",
        "/api/v0/users/login",
        _json({"email": me.EMAIL, "mobile": me.PHONE, "area_code": "+82", "password": "correct horse battery",
               "device_id": me.ANDROID_ID, "os": "android", "nickname": me.NAME_KO}),
        {"Content-Type": "application/json"},
    )
    done.append(("login", status))
    token = (json.loads(body or b"{}").get("data", {}).get("biz_data", {}).get("user", {}).get("token")) or "t"

    phase("chat")
    # 2. The prompt, answered as a server-sent event stream.
    status, _ = client.https(
        CHAT_HOST,
        "POST",
        "/api/v0/chat/completion",
        _json({"chat_session_id": session_id, "parent_message_id": None, "prompt": me.CHAT_PROMPT,
               "ref_file_ids": [], "thinking_enabled": False}),
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
    )
    done.append(("chat", status))

    # 3. Analytics to Volcano Engine (ByteDance), gzip-compressed JSON with
    #    device identifiers, the advertising id and a location.
    header = {"aid": 588888, "app_version": "1.0.7", "device_id": me.ANDROID_ID, "openudid": me.ANDROID_ID,
              "google_aid": me.ADVERTISING_ID, "imei": me.IMEI, **DEVICE}
    events = [{"event": "chat_send", "local_time_ms": now_ms, "session_id": session_id,
               "params": json.dumps({"latitude": me.LAT, "longitude": me.LON, "input_length": len(me.CHAT_PROMPT)})}]
    status, _ = client.https(
        ANALYTICS_HOST,
        "POST",
        "/service/2/app_log/?aid=588888&device_platform=android",
        gzip.compress(_json({"magic_tag": "ss_app_log", "header": header, "event_v3": events})),
        {"Content-Type": "application/json; charset=utf-8", "Content-Encoding": "gzip"},
    )
    done.append(("analytics", status))

    # 4. Device fingerprint to Shumei: a base64 blob of device attributes.
    blob = base64.b64encode(_json({"imei": me.IMEI, "androidId": me.ANDROID_ID, "oaid": me.ADVERTISING_ID,
                                   "model": DEVICE["device_model"], "brand": DEVICE["device_brand"],
                                   "screen": DEVICE["resolution"], "carrier": DEVICE["carrier"],
                                   "battery": 83, "boot_time": now_ms - 86_400_000})).decode()
    status, _ = client.https(
        FINGERPRINT_HOST,
        "POST",
        "/deviceprofile/v4",
        _json({"organization": "demoOrg", "os": "android", "appId": "deepseek", "encode": 2, "data": blob}),
        {"Content-Type": "application/json"},
    )
    done.append(("fingerprint", status))

    # 5. Intercom identify: the e-mail hashed with SHA-256, the name in clear.
    status, _ = client.https(
        INTERCOM_HOST,
        "POST",
        "/messenger/web/ping",
        _json({"app_id": "demo1234", "user_data": {
            "email_sha256": hashlib.sha256(me.EMAIL.encode()).hexdigest(),
            "name": me.NAME_LATIN,
            "anonymous_id": str(uuid.uuid4())}}),
        {"Content-Type": "application/json"},
    )
    done.append(("intercom", status))

    phase("background")
    # 6. Update check over cleartext HTTP, the device id in the query string.
    query = urlencode({"device_id": me.ANDROID_ID, "version": "1.0.7", "os": "android", "model": DEVICE["device_model"]})
    status, _ = client.http(UPDATE_HOST, "GET", f"/api/check?{query}")
    done.append(("update", status))
    return done
