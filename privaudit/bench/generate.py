"""A seeded generator of realistic, labelled chat-app traffic.

``python -m privaudit.bench.generate --seed 1 --flows 400 -o F.mitm --labels L.json``
writes a mitmproxy flow file of synthetic app traffic (the payload shapes real
SDKs send: ByteDance applog, Shumei device fingerprint, Firebase/GA4,
AppsFlyer, Adjust, Umeng, JPush, Sentry, Crashlytics, OneSignal, Intercom,
maps, payments, KYC, login, chat prompts over HTTP and WebSocket, ...) and
beside it the ground truth: which flows carry which personal data.

The labels are decided from what the generator put in the flow, by the
category table of CONTRACT.md, never from what any detector finds.

Label rules
-----------
- Unit of evaluation: ``(flow_index, side, category)``. A flow with an IMEI
  and an Android ID has one ``device_id`` unit. Each label still keeps a
  location hint (``request.body $.header.udid``) and the value, for debugging.
- ``side`` is "request" for what the app sent (URL, headers, body, WebSocket
  messages from the client) and "response" for what the server sent back.
  Responses are labelled only where they really hold the user's data (a login
  response's session token is ``credentials``); otherwise responses carry the
  server's own data and are negatives.
- ``email``/``phone``: any form (plain, URL-encoded, E.164, national, digits
  only) and hashed forms (MD5/SHA-256 of the address or number) — the label's
  ``encoding`` says which.
- ``name``: a key that holds a person's name (``name`` in a profile,
  ``real_name``, ``realName``, ``nickname``...). Keys holding a product name
  (``app_name``, an installed app's ``label``) are not names. A name inside
  free text (a chat prompt) is labelled only for the canary identity, because
  that is the only case a test can know it (testers use their test identity).
- ``national_id``: KR RRN (pre-2020 with check digit, post-2020 without), CN
  resident ID, US SSN, KR passport number. The birth-date half of an RRN
  alone (a card PG's ``customerIdentityNumber``) is not labelled.
- ``credentials``: the user's password, session cookies, ``Authorization:
  Bearer`` user tokens, Intercom ``user_hash`` (it authenticates the user).
  Keys embedded identically in every install of an app (a Google ``AIza`` API
  key, a Sentry DSN public key, an Adjust app token, a GA4 ``api_secret``,
  Umeng/JPush app keys, a Shumei organization, Intercom/AMap/Naver app ids)
  do not let anyone act as the user: they are *optional* labels (see below).
  Analytics session ids, request ids and search session ids are not
  credentials (negatives).
- ``location``: lat/lon pairs in fields, ``?location=lat,lon``, "lon,lat"
  strings (AMap, Naver), ``Geo-Position`` headers (even at 2 decimals, about
  1 km: still the user's position).
- ``advertising_id``: GAID/IDFA/OAID.
- ``device_id``: IMEI, Android ID, MAC, vendor device/install ids (ByteDance
  ``device_id``/``install_id``/``openudid``, AppsFlyer ``uid``, Firebase
  ``app_instance_id``, Crashlytics installation UUID, JPush/OneSignal/FCM push
  registration ids), also when hashed. The Android placeholder MAC
  ``02:00:00:00:00:00`` identifies nothing and is not labelled.
- ``device_info``: model, brand, OS version, screen, CPU ABI, battery,
  timezone, language/region in a device or analytics payload. A bare UI or
  API parameter (a ``lang=`` cookie, ``language=`` or ``abi=`` in a query, a
  language code in a static file's path such as ``/i18n/ko.json``) is
  *optional*: the contract lists "language" and "CPU" but these are requests
  for content, and the independent evalset2 does not label them either.
  App versions and build numbers are not device_info; an AI model name
  under ``model`` (``"model": "hana-pro"``) is not a device model.
  A ``User-Agent`` header alone (the
  platform HTTP stack's ``Dalvik/2.1.0 (Linux; U; Android 14; SM-S918N ...)``)
  is an *optional* device_info label: it is protocol metadata every request
  carries, so a detector is neither rewarded nor punished for it.
- ``network_info``: carrier, MCC/MNC, connection type, SSID/BSSID, local IP,
  the user's IP address sent in a payload (Sentry ``user.ip_address``).
- ``installed_apps``: lists of other apps' package names.
- ``contacts``: uploaded address books. The names and numbers in them are
  other people's; ``name`` and ``phone`` labels for them are *optional*.
- ``chat_content``: what the user typed to the assistant (JSON prompts,
  OpenAI-style messages, client WebSocket frames, form ``q=``). The
  assistant's replies are not labelled.
- ``behavioral``: keystroke timing / typing rhythm, clipboard content,
  app-usage event streams (screen views, clicks, durations in analytics
  batches).

First-party API payloads (login, KYC, profile, contacts, payments, chat,
telemetry) spell their keys in several ways (``real_name``/``realName``/
``user_name``...), drawn per flow, so a fresh seed checks that detection
does not hang on one spelling; third-party SDK payloads keep their fixed keys.

Flows that died before an answer (about 2%, ``flow.error`` set, no
response) keep their request labels. Some Chinese SDK hosts are plain HTTP.

Optional labels (``"required": false``) are don't-cares: a detector that
reports them gets neither a true nor a false positive, and missing them is no
false negative.

Negatives: CDN assets with content hashes in names, config/flag/update
fetches, trace headers (traceparent, x-request-id, x-b3-*), span ids (16 hex,
the shape of an Android ID), UUID request ids under non-ad keys, 10/13-digit
timestamps, 19-digit message ids (the shape of a ByteDance device id),
15-digit order numbers that fail Luhn, build numbers and app versions, A/B
buckets, nonces, hashes of files, and server responses with the server's own
data (including a support address).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

from . import values as V

__all__ = ["Label", "GeneratedFlow", "iter_flows", "generate", "write_capture", "main"]

BASE_TIME = 1_732_780_800.0  # 2024-11-28T08:00:00Z


@dataclass(frozen=True, slots=True)
class Label:
    """One piece of ground truth: this flow carries this category here."""

    flow_index: int
    side: str
    """"request" (what the app sent) or "response"."""
    category: str
    location: str
    """A hint for humans, e.g. "request.body $.header.udid"; not matched exactly."""
    value: str
    """The plain value (for location: "lat,lon" as sent)."""
    encoding: str | None = None
    """How the value appears: None (plain), "url", "base64+json", "md5", "sha256", ...."""
    required: bool = True
    """False for don't-care labels (see the module docstring)."""

    def unit(self) -> tuple[int, str, str]:
        return (self.flow_index, self.side, self.category)


@dataclass(slots=True)
class _Spec:
    """A flow under construction, before it becomes a mitmproxy flow."""

    scenario: str
    host: str
    method: str = "POST"
    path: str = "/"
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    gzip_body: bool = False
    status: int = 200
    resp_headers: list[tuple[str, str]] = field(default_factory=list)
    resp_body: bytes = b""
    ws: list[tuple[bool, bool, bytes]] | None = None
    """(from_client, is_text, content) messages, for WebSocket flows."""
    http2: bool = True
    cleartext: bool = False
    """Plain HTTP on port 80 (some SDKs still report without TLS)."""
    brotli_response: bool = False
    error: str | None = None
    """If set, the flow has no response and this error."""
    labels: list[tuple[str, str, str, str, str | None, bool]] = field(default_factory=list)

    def label(self, category: str, location: str, value, encoding: str | None = None, *, side: str = "request", required: bool = True) -> None:
        self.labels.append((side, category, location, str(value), encoding, required))

    def json_body(self, obj, ascii_: bool = False) -> None:
        self.body = json.dumps(obj, ensure_ascii=ascii_, separators=(",", ":")).encode()
        self.headers.append(("content-type", "application/json; charset=utf-8"))

    def form_body(self, pairs: list[tuple[str, str]]) -> None:
        self.body = "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs).encode()
        self.headers.append(("content-type", "application/x-www-form-urlencoded"))

    def json_response(self, obj) -> None:
        self.resp_body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        self.resp_headers.append(("content-type", "application/json; charset=utf-8"))


@dataclass(slots=True)
class GeneratedFlow:
    index: int
    scenario: str
    flow: object
    """A mitmproxy.http.HTTPFlow."""
    labels: list[Label]
    body_bytes: int
    """Request + response body bytes (after content decoding) + WebSocket payloads."""


# Plausible public addresses per operator, so the jurisdiction stage has
# something real-looking to locate (none of these are contacted).
_NETS = {
    "cn": ("111.62.{a}.{b}", "117.184.{a}.{b}", "220.181.{a}.{b}"),
    "google": ("142.250.{a}.{b}", "172.217.{a}.{b}"),
    "aws": ("52.78.{a}.{b}", "3.35.{a}.{b}"),
    "kr": ("211.249.{a}.{b}", "223.130.{a}.{b}"),
    "cf": ("104.18.{a}.{b}",),
}
_HOST_NET = {
    "snssdk.com": "cn", "volces.com": "cn", "fengkongcloud.com": "cn", "umeng.com": "cn", "jpush.cn": "cn",
    "amap.com": "cn", "googleapis.com": "google", "google-analytics.com": "google", "app-measurement.com": "google",
    "facebook.com": "aws", "appsflyer.com": "aws", "adjust.com": "aws", "sentry.io": "google", "onesignal.com": "cf",
    "intercom.io": "aws", "stripe.com": "aws", "ntruss.com": "kr", "toss.im": "kr",
}


def _host_ip(host: str) -> str:
    net = "aws"
    for suffix, n in _HOST_NET.items():
        if host.endswith(suffix):
            net = n
            break
    h = int.from_bytes(uuid.uuid5(uuid.NAMESPACE_DNS, host).bytes[:4], "big")
    pats = _NETS[net]
    return pats[h % len(pats)].format(a=(h >> 8) % 250 + 1, b=(h >> 16) % 250 + 2)


def _stable_uuid(p: V.Persona, sdk: str) -> str:
    """A per-install UUID an SDK keeps (stable for the persona, differs per SDK)."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{sdk}:{p.android_id}"))


APP = "com.hanachat.assistant"
APP_VERSION = "5.12.3"
APP_BUILD = "51203"
API = "api.hanachat.example"
CDN = "cdn.hanachat.example"


class _Gen:
    def __init__(self, seed: int, canary_share: float = 0.3):
        self.rng = random.Random(seed)
        r = self.rng
        self.canary = V.canary_persona(r)
        self.people = [V.persona(r, region) for region in ("KR", "KR", "KR", "CN", "CN", "US", "KR", "CN")]
        self.decks: dict[int, list] = {}
        self.canary_share = canary_share
        self.p = self.people[0]
        self.t = BASE_TIME + r.randint(0, 3600)
        self.aid = str(r.choice((1128, 1233, 1180, 2329)))
        self.positive = [
            (self.applog, 7), (self.shumei, 4), (self.ga4, 4), (self.appsflyer, 4), (self.adjust, 3),
            (self.umeng, 3), (self.jpush, 2), (self.sentry, 3), (self.crashlytics, 2), (self.onesignal, 2),
            (self.intercom, 2), (self.maps, 8), (self.payment, 4), (self.kyc, 6), (self.login, 3),
            (self.chat_json, 5), (self.chat_openai, 4), (self.chat_ws, 3), (self.chat_form, 2),
            (self.contacts, 3), (self.apps_upload, 2), (self.keystrokes, 2), (self.clipboard, 1),
            (self.usage, 2), (self.fb_events, 2), (self.profile_lookup, 2), (self.profile_update, 2),
        ]
        self.split = [(True, 9), (False, 11)]  # 45% of flows from the negative scenarios
        self.negative = [
            (self.cdn_asset, 10), (self.config, 6), (self.flags, 4), (self.update_check, 3), (self.traces, 4),
            (self.models_list, 3), (self.i18n, 2), (self.announcements, 2), (self.attest, 2), (self.history, 3),
            (self.ping, 4), (self.presence_ws, 2), (self.orders, 2), (self.upload_check, 2), (self.options, 2),
        ]

    # ----------------------------------------------------------------- helpers
    def pick(self, table):
        """Draws from a shuffled deck holding each entry ``weight`` times.

        Drawing without replacement keeps a few hundred flows close to the
        weights, so a small evaluation set still covers every shape.
        """
        deck = self.decks.get(id(table))
        if not deck:
            deck = [fn for fn, w in table for _ in range(w)]
            self.rng.shuffle(deck)
            self.decks[id(table)] = deck
        return deck.pop()

    def ua(self, s: _Spec, kind: str | None = None) -> None:
        p = self.p
        kind = kind or self.rng.choice(("okhttp", "okhttp", "dalvik", "app"))
        if kind == "okhttp":
            s.headers.append(("user-agent", "okhttp/4.12.0"))
        elif kind == "dalvik":
            ua = f"Dalvik/2.1.0 (Linux; U; Android {p.os_version}; {p.model} Build/UP1A.231005.007)"
            s.headers.append(("user-agent", ua))
            s.label("device_info", "request.header User-Agent", p.model, required=False)
        else:
            ua = f"HanaChat/{APP_VERSION} (Android {p.os_version}; {p.brand} {p.model}; build {APP_BUILD})"
            s.headers.append(("user-agent", ua))
            s.label("device_info", "request.header User-Agent", p.model, required=False)

    def trace(self, s: _Spec) -> None:
        r = self.rng
        choice = r.randrange(3)
        if choice == 0:
            s.headers.append(("traceparent", f"00-{V.hexstr(r, 32)}-{V.hexstr(r, 16)}-01"))
        elif choice == 1:
            s.headers.append(("x-request-id", V.uuid4(r)))
        else:
            s.headers += [("x-b3-traceid", V.hexstr(r, 32)), ("x-b3-spanid", V.hexstr(r, 16)), ("x-b3-sampled", "1")]

    def auth(self, s: _Spec, how: str | None = None) -> None:
        p = self.p
        how = how or self.rng.choice(("bearer", "cookie"))
        if how == "bearer":
            s.headers.append(("authorization", f"Bearer {p.bearer}"))
            s.label("credentials", "request.header Authorization", p.bearer)
        else:
            s.headers.append(("cookie", f"sessionid={p.session}; lang={p.language}; _ga=GA1.1.{V.digits(self.rng, 10)}.{int(self.t)}"))
            s.label("credentials", "request.header Cookie sessionid", p.session)
            s.label("device_info", "request.header Cookie lang", f"lang={p.language}", required=False)

    def key(self, *names):
        """One of the spellings first-party APIs use for the same field.

        Third-party SDK payloads keep their fixed keys; an app's own API is
        where key names vary, and a detector should not depend on one.
        """
        return self.rng.choice(names)

    def ms(self) -> int:
        return int(self.t * 1000)

    def api(self, path: str, method: str = "POST", scenario: str = "") -> _Spec:
        s = _Spec(scenario=scenario, host=API, method=method, path=path)
        self.ua(s)
        self.trace(s)
        s.headers.append(("x-app-version", APP_VERSION))
        return s

    # -------------------------------------------------------------- positives
    def applog(self) -> _Spec:
        r, p = self.rng, self.p
        host = r.choice(("log.snssdk.com", "log-hl.snssdk.com", "gator.volces.com"))
        s = _Spec("bytedance.applog", host, "POST", "/service/2/app_log/")
        s.query = f"aid={self.aid}&device_platform=android&version_code={APP_BUILD}&iid={p.install_id}&device_id={p.bd_device_id}"
        s.label("device_id", "request.query iid/device_id", p.install_id)
        self.ua(s)
        real_mac = r.random() < 0.5
        header = {
            "aid": int(self.aid), "app_name": "hanachat", "app_version": APP_VERSION, "version_code": int(APP_BUILD),
            "sdk_version": "6.14.3", "device_id": p.bd_device_id, "install_id": p.install_id,
            "openudid": p.android_id, "udid": p.imei, "mc": p.mac if real_mac else "02:00:00:00:00:00",
            "device_model": p.model, "device_brand": p.brand, "os": "Android", "os_version": p.os_version,
            "os_api": 30 + int(p.os_version) - 11, "resolution": p.resolution, "density_dpi": 480,
            "carrier": p.carrier, "mcc_mnc": p.mcc_mnc, "access": r.choice(("wifi", "4g", "5g")),
            "timezone": 9 if p.timezone == "Asia/Seoul" else 8, "tz_name": p.timezone, "language": p.language,
            "region": "KR" if p.region != "CN" else "CN", "channel": "googleplay",
        }
        s.label("device_id", "request.body $.header.device_id", p.bd_device_id)
        s.label("device_id", "request.body $.header.openudid", p.android_id)
        s.label("device_id", "request.body $.header.udid", p.imei)
        if real_mac:
            s.label("device_id", "request.body $.header.mc", p.mac)
        s.label("device_info", "request.body $.header.device_model", p.model)
        s.label("network_info", "request.body $.header.carrier", p.carrier)
        events = []
        for _ in range(r.randint(1, 5)):
            self.t += r.uniform(0.2, 5)
            ev = r.choice(("app_launch", "enter_chat", "click_send", "stay_page", "click_suggestion"))
            events.append({
                "event": ev, "params": json.dumps({"page": r.choice(("home", "chat", "settings")), "duration": r.randint(100, 90000)}),
                "session_id": V.uuid4(r), "local_time_ms": self.ms(), "tea_event_index": r.randint(1, 9999),
            })
        s.label("behavioral", "request.body $.event_v3", events[0]["event"])
        s.json_body({"header": header, "event_v3": events, "magic_tag": "ss_app_log", "time_sync": {"server_time": int(self.t), "local_time": int(self.t)}})
        s.gzip_body = r.random() < 0.7
        s.json_response({"magic_tag": "ss_app_log", "message": "success", "server_time": int(self.t)})
        return s

    def shumei(self) -> _Spec:
        r, p = self.rng, self.p
        s = _Spec("shumei.fingerprint", r.choice(("fp-it.fengkongcloud.com", "fp-sa-it.fengkongcloud.com")), "POST", "/deviceprofile/v4")
        self.ua(s, "okhttp")
        inner = {
            "imei": p.imei, "androidId": p.android_id, "mac": p.mac, "ssid": p.ssid, "bssid": p.bssid,
            "wifiIp": p.wifi_ip, "apps": p.apps, "battery": {"level": r.randint(5, 100), "status": r.choice(("charging", "discharging"))},
            "screen": p.resolution.replace("*", "x"), "cpu": {"abi": p.cpu_abi, "cores": 8, "freq": 2_841_600},
            "model": p.model, "brand": p.brand, "sdkver": "3.1.2", "t": self.ms(),
        }
        enc = "base64+json"
        s.label("device_id", "request.body $.data(base64) $.imei", p.imei, enc)
        s.label("device_id", "request.body $.data(base64) $.androidId", p.android_id, enc)
        s.label("network_info", "request.body $.data(base64) $.ssid", p.ssid, enc)
        s.label("network_info", "request.body $.data(base64) $.wifiIp", p.wifi_ip, enc)
        s.label("installed_apps", "request.body $.data(base64) $.apps", p.apps[0], enc)
        s.label("device_info", "request.body $.data(base64) $.model", p.model, enc)
        data = V.b64(json.dumps(inner, separators=(",", ":")))
        s.label("credentials", "request.body $.organization (app-embedded)", "RlokQwRlVjUrTUlkIqOg", required=False)
        s.json_body({"organization": "RlokQwRlVjUrTUlkIqOg", "appId": "default", "os": "android", "encode": 2, "compress": 0, "data": data})
        s.json_response({"code": 1100, "requestId": V.hexstr(r, 32), "deviceId": "B" + V.hexstr(r, 62)})
        return s

    def ga4(self) -> _Spec:
        r, p = self.rng, self.p
        s = _Spec("firebase.ga4", "www.google-analytics.com", "POST", "/mp/collect")
        secret = V.token(r, 22)
        s.query = f"firebase_app_id=1:{V.digits(r, 12)}:android:{V.hexstr(r, 16)}&api_secret={secret}"
        s.label("credentials", "request.query api_secret", secret, required=False)
        self.ua(s, "okhttp")
        instance = V.hexstr(r, 32)
        events = [{"name": n, "params": {"engagement_time_msec": r.randint(100, 60000), "screen_name": r.choice(("ChatScreen", "Home", "Paywall"))}}
                  for n in r.sample(["screen_view", "user_engagement", "send_message", "purchase_intent", "share"], r.randint(1, 3))]
        body = {"app_instance_id": instance, "timestamp_micros": self.ms() * 1000, "events": events}
        s.label("device_id", "request.body $.app_instance_id", instance)
        s.label("behavioral", "request.body $.events", events[0]["name"])
        if r.random() < 0.5:
            body["user_properties"] = {"device_category": {"value": "mobile"}, "os_version": {"value": p.os_version}, "device_model": {"value": p.model}}
            s.label("device_info", "request.body $.user_properties.device_model", p.model)
        s.json_body(body)
        s.status = 204
        return s

    def appsflyer(self) -> _Spec:
        r, p = self.rng, self.p
        s = _Spec("appsflyer.event", f"{V.hexstr(r, 6)}.inapps.appsflyer.com" if r.random() < 0.4 else "t.appsflyer.com",
                  "POST", f"/api/v6.12/androidevent")
        s.query = f"app_id={APP}&buildnumber=6.12.1"
        self.ua(s, "dalvik")
        af_uid = f"{self.ms()}-{V.digits(r, 19)}"
        body = {
            "advertiserId": p.gaid, "advertiserIdEnabled": "true", "uid": af_uid,
            "deviceData": {"brand": p.brand, "model": p.model, "cpu_abi": p.cpu_abi, "build_display_id": "UP1A.231005.007",
                           "dim": {"x_px": p.resolution.split("*")[0], "y_px": p.resolution.split("*")[1], "d_dpi": "480"}},
            "carrier": p.carrier, "operator": p.carrier, "network": r.choice(("WIFI", "MOBILE")), "lang": p.language,
            "lang_code": p.language, "country": "KR" if p.region != "CN" else "CN", "af_timestamp": str(self.ms()),
            "counter": str(r.randint(1, 400)), "iaecounter": str(r.randint(0, 30)), "app_version_name": APP_VERSION,
            "eventName": r.choice(("af_login", "af_content_view", "af_subscribe")), "isFirstCall": "false",
            "installDate": "2024-10-02_031512+0900", "sdk": "6.12.1", "platformextension": "android_native",
        }
        s.label("advertising_id", "request.body $.advertiserId", p.gaid)
        s.label("device_id", "request.body $.uid", af_uid)
        s.label("device_info", "request.body $.deviceData.model", p.model)
        s.label("network_info", "request.body $.carrier", p.carrier)
        s.label("behavioral", "request.body $.eventName", body["eventName"])
        s.json_body(body)
        s.resp_body = b"ok"
        return s

    def adjust(self) -> _Spec:
        r, p = self.rng, self.p
        s = _Spec("adjust.session", "app.adjust.com", "POST", r.choice(("/session", "/event", "/sdk_click")))
        self.ua(s, "okhttp")
        app_token = V.hexstr(r, 12)
        pairs = [
            ("app_token", app_token), ("gps_adid", p.gaid), ("gps_adid_src", "service"), ("android_uuid", _stable_uuid(p, "adjust")),
            ("device_name", p.model), ("device_manufacturer", p.brand), ("os_name", "android"), ("os_version", p.os_version),
            ("api_level", str(30 + int(p.os_version) - 11)), ("network_type", str(r.choice((13, 20)))), ("mcc", p.mcc_mnc[:3]),
            ("mnc", p.mcc_mnc[3:]), ("language", p.language), ("country", "KR"), ("screen_size", "normal"),
            ("display_width", p.resolution.split("*")[0]), ("created_at", "2024-11-28T17:01:12.611Z+0900"),
            ("session_count", str(r.randint(1, 90))), ("environment", "production"), ("app_version", APP_VERSION),
        ]
        s.label("credentials", "request.body app_token", app_token, "url", required=False)
        s.label("advertising_id", "request.body gps_adid", p.gaid, "url")
        s.label("device_id", "request.body android_uuid", pairs[3][1], "url")
        s.label("device_info", "request.body device_name", p.model, "url")
        s.label("network_info", "request.body mcc/mnc", p.mcc_mnc[:3], "url")
        s.form_body(pairs)
        s.json_response({"tracker_token": V.token(r, 6), "adid": V.hexstr(r, 32), "timestamp": "2024-11-28T08:01:12.611Z+0000"})
        return s

    def umeng(self) -> _Spec:
        r, p = self.rng, self.p
        s = _Spec("umeng.log", r.choice(("ulogs.umeng.com", "alogus.umeng.com")), "POST", "/unify_logs")
        s.cleartext = r.random() < 0.3
        self.ua(s, "okhttp")
        umid = V.hexstr(r, 32)
        header = {
            "appkey": V.hexstr(r, 24), "app_version": APP_VERSION, "umid": umid, "oaid": p.gaid,
            "idmd5": V.digest("md5", p.imei), "device_model": p.model, "device_board": p.brand, "os_version": p.os_version,
            "resolution": p.resolution, "access": "Wi-Fi", "carrier": p.carrier, "timezone": 8 if p.region == "CN" else 9,
            "sdk_version": "9.6.1", "channel": "huawei",
        }
        s.label("credentials", "request.body $.header.appkey (app-embedded)", header["appkey"], required=False)
        s.label("device_id", "request.body $.header.umid", umid)
        s.label("device_id", "request.body $.header.idmd5", p.imei, "md5")
        s.label("advertising_id", "request.body $.header.oaid", p.gaid)
        s.label("device_info", "request.body $.header.device_model", p.model)
        s.label("network_info", "request.body $.header.carrier", p.carrier)
        content = {"analytics": {"sessions": [{"id": V.hexstr(r, 32), "start_time": str(self.ms()), "duration": r.randint(1000, 600000),
                                               "pages": [{"page_name": pg, "duration": r.randint(100, 90000)} for pg in ("MainActivity", "ChatActivity")]}]}}
        if r.random() < 0.3:
            content["location"] = {"lat": round(p.lat, 4), "lng": round(p.lon, 4), "ts": self.ms()}
            s.label("location", "request.body $.content.location", f"{round(p.lat, 4)},{round(p.lon, 4)}")
        s.label("behavioral", "request.body $.content.analytics.sessions[0].pages", "ChatActivity")
        if r.random() < 0.5:
            # Some Umeng builds hex-encode the content blob.
            s.json_body({"header": header, "content": json.dumps(content).encode().hex()})
            s.labels = [(side, cat, loc.replace("$.content", "$.content(hex)"), v, "hex+json", req) if "$.content" in loc else (side, cat, loc, v, enc, req)
                        for side, cat, loc, v, enc, req in s.labels]
        else:
            s.json_body({"header": header, "content": content})
        s.gzip_body = r.random() < 0.5
        s.json_response({"imprint": V.b64(V.token(r, 24)), "status": "ok"})
        return s

    def jpush(self) -> _Spec:
        r, p = self.rng, self.p
        s = _Spec("jpush.register", r.choice(("device.jpush.cn", "tsis.jpush.cn")), "POST", "/v3/device/register")
        s.cleartext = s.host == "tsis.jpush.cn"
        self.ua(s, "okhttp")
        reg = V.digits(r, 2) + V.hexstr(r, 2) + V.hexstr(r, 15)
        body = {"app_key": V.hexstr(r, 24), "platform": "a", "imei": p.imei, "android_id": p.android_id,
                "registration_id": reg, "sdk_ver": "5.2.0", "device_model": p.model, "manufacturer": p.brand,
                "os_version": f"Android {p.os_version}", "channel": "developer-default"}
        s.label("credentials", "request.body $.app_key (app-embedded)", body["app_key"], required=False)
        s.label("device_id", "request.body $.imei", p.imei)
        s.label("device_id", "request.body $.registration_id", reg)
        s.label("device_info", "request.body $.device_model", p.model)
        s.json_body(body)
        s.json_response({"code": 0, "msg": "success"})
        return s

    def sentry(self) -> _Spec:
        r, p = self.rng, self.p
        proj = r.randint(100000, 999999)
        key = V.hexstr(r, 32)
        s = _Spec("sentry.envelope", f"o{r.randint(10000, 999999)}.ingest.sentry.io", "POST", f"/api/{proj}/envelope/")
        self.ua(s, "okhttp")
        s.headers.append(("x-sentry-auth", f"Sentry sentry_version=7,sentry_client=sentry.java.android/7.3.0,sentry_key={key}"))
        s.label("credentials", "request.header X-Sentry-Auth sentry_key", key, required=False)
        event_id = V.hexstr(r, 32)
        ip = f"{r.choice((211, 118, 175, 223))}.{r.randint(1, 254)}.{r.randint(1, 254)}.{r.randint(1, 254)}"
        event = {
            "event_id": event_id, "timestamp": self.t, "platform": "java", "level": "error", "release": f"{APP}@{APP_VERSION}+{APP_BUILD}",
            "user": {"id": p.user_id, "email": p.email, "ip_address": ip},
            "contexts": {"device": {"model": p.model, "manufacturer": p.brand, "brand": p.brand.lower(), "family": p.model.split("-")[0],
                                    "screen_resolution": p.resolution.replace("*", "x"), "battery_level": float(r.randint(5, 100)),
                                    "timezone": p.timezone, "arch": p.cpu_abi, "online": True},
                         "os": {"name": "Android", "version": p.os_version, "build": "UP1A.231005.007"}},
            "exception": {"values": [{"type": "java.lang.IllegalStateException", "value": "Fragment not attached to a context.",
                                      "stacktrace": {"frames": [{"function": "onResume", "module": "com.hanachat.ui.ChatFragment", "lineno": 212}]}}]},
            "breadcrumbs": [{"timestamp": self.t - 3, "category": "ui.click", "message": "send_button"}],
        }
        s.label("email", "request.body line[3] $.user.email", p.email)
        s.label("network_info", "request.body line[3] $.user.ip_address", ip)
        s.label("device_info", "request.body line[3] $.contexts.device.model", p.model)
        ev = json.dumps(event, ensure_ascii=False).encode()
        lines = [
            json.dumps({"event_id": event_id, "sent_at": "2024-11-28T08:03:00.000Z", "dsn": f"https://{key}@o1.ingest.sentry.io/{proj}"}).encode(),
            json.dumps({"type": "event", "length": len(ev), "content_type": "application/json"}).encode(),
            ev,
        ]
        s.body = b"\n".join(lines) + b"\n"
        s.headers.append(("content-type", "application/x-sentry-envelope"))
        s.gzip_body = r.random() < 0.5
        s.json_response({"id": event_id})
        return s

    def crashlytics(self) -> _Spec:
        r, p = self.rng, self.p
        s = _Spec("crashlytics.report", "crashlyticsreports-pa.googleapis.com", "POST", "/v1/firelog/legacy/batchlog")
        self.ua(s, "okhttp")
        inst = V.hexstr(r, 32)
        body = {"sdkVersion": "18.6.0", "gmpAppId": f"1:{V.digits(r, 12)}:android:{V.hexstr(r, 16)}", "platform": 4,
                "installationUuid": inst, "buildVersion": APP_BUILD, "displayVersion": APP_VERSION,
                "session": {"identifier": V.hexstr(r, 32).upper(), "startedAt": int(self.t) - 300, "crashed": True,
                            "device": {"arch": 9, "model": p.model, "cores": 8, "ram": 7_812_345_856, "diskSpace": 110_000_000_000,
                                       "simulator": False, "state": 3, "manufacturer": p.brand, "modelClass": p.model},
                            "os": {"platform": 3, "version": p.os_version, "buildVersion": "UP1A.231005.007", "jailbroken": False},
                            "events": [{"timestamp": int(self.t), "type": "crash", "app": {"execution": {"signal": {"name": "SIGSEGV", "code": "0", "address": 0}}}}]}}
        s.label("device_id", "request.body $.installationUuid", inst)
        s.label("device_info", "request.body $.session.device.model", p.model)
        s.json_body(body)
        s.gzip_body = True
        s.json_response({"nextRequestWaitMillis": 0})
        return s

    def onesignal(self) -> _Spec:
        r, p = self.rng, self.p
        s = _Spec("onesignal.players", r.choice(("onesignal.com", "api.onesignal.com")), "POST", "/api/v1/players")
        self.ua(s, "okhttp")
        fcm = f"{V.token(r, 11)}:APA91b{V.token(r, 134)}"
        body = {"app_id": V.uuid4(r), "device_type": 1, "identifier": fcm, "ad_id": p.gaid, "device_model": p.model,
                "device_os": p.os_version, "timezone": 32400, "timezone_id": p.timezone, "language": p.language,
                "carrier": p.carrier, "sdk": "050100", "game_version": APP_VERSION, "net_type": 0, "rooted": False}
        s.label("device_id", "request.body $.identifier", fcm)
        s.label("advertising_id", "request.body $.ad_id", p.gaid)
        s.label("device_info", "request.body $.device_model", p.model)
        s.label("network_info", "request.body $.carrier", p.carrier)
        s.json_body(body)
        s.json_response({"success": True, "id": V.uuid4(r)})
        return s

    def intercom(self) -> _Spec:
        r, p = self.rng, self.p
        s = _Spec("intercom.identify", "api-iam.intercom.io", "POST", "/messenger/mobile/users")
        self.ua(s, "app")
        user_hash = V.hexstr(r, 64)
        body = {"user": {"email": p.email, "name": p.name_latin if r.random() < 0.5 else p.name, "user_id": p.user_id,
                         "custom_attributes": {"plan": r.choice(("free", "plus")), "app_version": APP_VERSION}},
                "user_hash": user_hash, "app_id": V.token(r, 8).lower(), "device_identifier": _stable_uuid(p, "intercom")}
        s.label("credentials", "request.body $.app_id (app-embedded)", body["app_id"], required=False)
        s.label("email", "request.body $.user.email", p.email)
        s.label("name", "request.body $.user.name", body["user"]["name"])
        s.label("credentials", "request.body $.user_hash", user_hash)
        s.label("device_id", "request.body $.device_identifier", body["device_identifier"])
        s.json_body(body)
        s.json_response({"type": "user", "id": V.hexstr(r, 24), "unread_conversations": 0})
        return s

    def maps(self) -> _Spec:
        r, p = self.rng, self.p
        variant = r.randrange(5)
        lat, lon = f"{p.lat:.6f}", f"{p.lon:.6f}"
        if variant == 0:
            s = _Spec("maps.google_places", "maps.googleapis.com", "GET", "/maps/api/place/nearbysearch/json")
            key = "AIza" + V.token(r, 35)
            s.query = f"location={lat},{lon}&radius={r.choice((300, 500, 1000))}&type=cafe&language={p.language}&key={key}"
            s.label("location", "request.query location", f"{lat},{lon}")
            s.label("device_info", "request.query language", f"language={p.language}", required=False)
            s.label("credentials", "request.query key", key, required=False)
            s.json_response({"results": [{"name": "Cafe Onion", "place_id": "ChIJ" + V.token(r, 23), "rating": 4.5}], "status": "OK"})
        elif variant == 1:
            s = _Spec("maps.naver_reverse", "naveropenapi.apigw.ntruss.com", "GET", "/map-reversegeocode/v2/gc")
            s.query = f"coords={lon},{lat}&output=json&orders=roadaddr"
            s.headers += [("x-ncp-apigw-api-key-id", V.token(r, 10).lower())]
            s.label("credentials", "request.header X-NCP-APIGW-API-KEY-ID (app-embedded)", s.headers[-1][1], required=False)
            s.label("location", "request.query coords (lon,lat)", f"{lon},{lat}")
            s.json_response({"status": {"code": 0, "name": "ok"}, "results": [{"region": {"area1": {"name": "서울특별시"}}}]})
        elif variant == 2:
            s = _Spec("maps.amap_regeo", "restapi.amap.com", "GET", "/v3/geocode/regeo")
            amap_key = V.hexstr(r, 32)
            s.query = f"key={amap_key}&location={lon}%2C{lat}&extensions=base"
            s.label("credentials", "request.query key (app-embedded)", amap_key, required=False)
            s.label("location", "request.query location (lon,lat, url)", f"{lon},{lat}", "url")
            s.json_response({"status": "1", "info": "OK", "regeocode": {"formatted_address": "北京市东城区"}})
        elif variant == 3:
            s = self.api("/v1/nearby/rooms", "POST", "maps.nearby_json")
            self.auth(s)
            klat, klon = self.key(("lat", "lng"), ("latitude", "longitude"), ("user_lat", "user_lon"), ("gpsLat", "gpsLng"))
            s.json_body({klat: float(lat), klon: float(lon), "accuracy": r.choice((5.0, 12.5, 35.0)), "radius_m": 2000, "limit": 20})
            s.label("location", f"request.body $.{klat}/$.{klon}", f"{lat},{lon}")
            s.json_response({"rooms": [], "next": None})
            return s
        else:
            s = self.api("/v1/weather", "GET", "maps.geo_header")
            s.headers.append(("geo-position", f"{p.lat:.2f};{p.lon:.2f}"))
            s.label("location", "request.header Geo-Position", f"{p.lat:.2f},{p.lon:.2f}")
            s.json_response({"temp_c": r.randint(-5, 30), "sky": "clear", "updated": int(self.t)})
            return s
        self.ua(s, "okhttp")
        return s

    def payment(self) -> _Spec:
        r, p = self.rng, self.p
        pan = p.card
        exp_m, exp_y = r.randint(1, 12), r.randint(2026, 2031)
        variant = r.randrange(3)
        if variant == 2:
            s = _Spec("payment.kr_pg", "api.pg.toss.im", "POST", "/v1/billing/authorizations/card")
            self.ua(s, "app")
            dashed = "-".join(pan[i:i + 4] for i in range(0, len(pan), 4))
            # Korean PGs ask for the birth date (YYMMDD), the first half of an RRN.
            birth6 = p.national_id[:6] if p.national_id_kind.startswith("kr_rrn") else f"{r.randint(70, 99)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
            s.headers.append(("authorization", "Basic " + V.b64("test_sk_" + V.token(r, 20) + ":")))
            s.label("credentials", "request.header Authorization (merchant key)", "test_sk_", "base64", required=False)
            s.json_body({"cardNumber": dashed, "cardExpirationYear": f"{exp_y % 100:02d}", "cardExpirationMonth": f"{exp_m:02d}",
                         "customerIdentityNumber": birth6, "customerKey": V.uuid4(r)})
            s.label("payment_card", "request.body $.cardNumber", dashed)
            # The birth date half of an RRN is not the identifier itself.
            s.json_response({"billingKey": V.token(r, 40), "cardCompany": "신한", "authenticatedAt": "2024-11-28T17:00:00+09:00"})
        elif variant == 0:
            s = _Spec("payment.stripe_tokens", "api.stripe.com", "POST", "/v1/tokens")
            self.ua(s, "app")
            pk = "pk_live_" + V.token(r, 24)
            s.headers.append(("authorization", f"Bearer {pk}"))
            s.label("credentials", "request.header Authorization (publishable key)", pk, required=False)
            s.form_body([("card[number]", pan), ("card[exp_month]", str(exp_m)), ("card[exp_year]", str(exp_y)),
                         ("card[cvc]", V.digits(r, 3)), ("guid", V.uuid4(r)), ("muid", V.uuid4(r)), ("payment_user_agent", "stripe-android/20.34.4")])
            s.label("payment_card", "request.body card[number]", pan, "url")
            s.json_response({"id": "tok_" + V.token(r, 24), "object": "token", "card": {"brand": "Visa", "last4": pan[-4:]}})
        else:
            s = self.api("/v1/billing/cards", "POST", "payment.app_json")
            self.auth(s)
            shown = " ".join(pan[i:i + 4] for i in range(0, len(pan), 4)) if r.random() < 0.5 else pan
            kc = self.key("card_number", "cardNo", "pan", "number")
            kh = self.key("holder", "cardholder_name", "holderName", "name_on_card")
            s.json_body({kc: shown, "expiry": f"{exp_m:02d}/{exp_y % 100:02d}", "cvc": V.digits(r, 3),
                         kh: p.name_latin.upper(), "billing_zip": V.digits(r, 5)})
            s.label("payment_card", f"request.body $.{kc}", shown)
            s.label("name", f"request.body $.{kh}", p.name_latin.upper())
            s.json_response({"card_id": "card_" + V.hexstr(r, 16), "last4": pan[-4:], "status": "verified"})
        return s

    def kyc(self) -> _Spec:
        r, p = self.rng, self.p
        s = self.api("/v2/identity/verify", "POST", "kyc.verify")
        s.host = r.choice((API, "kyc.hanachat.example"))
        self.auth(s)
        pf = V.phone_forms(p.phone)
        if p.region == "US":
            s.scenario = "kyc.us_ssn"
            area = r.choice([a for a in range(1, 900) if a != 666])
            ssn = f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"
            s.json_body({"first_name": p.name.split()[0], "last_name": p.name.split()[1], "ssn": ssn, "dob": "1990-04-12", "phone": pf["e164"]})
            s.label("name", "request.body $.first_name/$.last_name", p.name.split()[0])
            s.label("national_id", "request.body $.ssn", ssn)
            s.label("phone", "request.body $.phone", pf["e164"])
        elif r.random() < 0.2:
            s.scenario = "kyc.kr_passport"
            passport = "M" + V.digits(r, 8)
            s.json_body({"passport_no": passport, "nationality": "KOR", "name_en": p.name_latin.upper(), "expiry": "2031-05-30"})
            s.label("national_id", "request.body $.passport_no", passport)
            s.label("name", "request.body $.name_en", p.name_latin.upper())
        elif p.national_id_kind == "cn_ric":
            s.scenario = "kyc.cn_ric"
            s.json_body({"realName": p.name, "idCard": p.national_id, "mobile": pf["national"], "bizType": "REALNAME", "nonce": V.hexstr(r, 16)})
            s.label("name", "request.body $.realName", p.name)
            s.label("national_id", "request.body $.idCard", p.national_id)
            s.label("phone", "request.body $.mobile", pf["national"])
        else:
            s.scenario = "kyc.kr_rrn"
            nid = p.national_id if r.random() < 0.6 else p.national_id.replace("-", "")
            telecom = r.choice(("SKT", "KT", "LGU"))
            kn = self.key("real_name", "realName", "user_name", "name_kr")
            ki = self.key("rrn", "jumin_no", "residentNo", "resident_registration_number")
            kp = self.key("phone", "mobile", "phone_no", "tel")
            s.json_body({kn: p.name, ki: nid, kp: pf["national"], "telecom": telecom,
                         "ci_request_id": V.uuid4(r), "agree_terms": [1, 2, 3]})
            s.label("name", f"request.body $.{kn}", p.name)
            s.label("national_id", f"request.body $.{ki} ({p.national_id_kind})", nid)
            s.label("phone", f"request.body $.{kp}", pf["national"])
            s.label("network_info", "request.body $.telecom", telecom)
        s.json_response({"result": "PENDING", "tx_id": V.uuid4(r)})
        return s

    def login(self) -> _Spec:
        r, p = self.rng, self.p
        s = self.api(r.choice(("/v1/auth/login", "/api/v1/session")), "POST", "login")
        variant = r.randrange(4)
        pf = V.phone_forms(p.phone)
        if variant == 0:
            du = _stable_uuid(p, "login")
            ke = self.key("email", "user_email", "login_id", "account")
            s.json_body({ke: p.email, self.key("password", "passwd", "pwd"): p.password, "remember": True, "device_uuid": du})
            s.label("email", f"request.body $.{ke}", p.email)
            s.label("device_id", "request.body $.device_uuid", du)
        elif variant == 1:
            form = r.choice(("national", "intl", "e164", "digits"))
            kp = self.key("phone", "phoneNumber", "msisdn", "mobile_no")
            s.json_body({kp: pf[form], self.key("password", "pass", "user_password"): p.password, "country_code": "82" if p.region != "CN" else "86"})
            s.label("phone", f"request.body $.{kp} ({form})", pf[form])
        elif variant == 2:
            s.form_body([("username", p.email), ("password", p.password), ("grant_type", "password"), ("client_id", "android")])
            s.label("email", "request.body username", p.email, "url")
        else:
            s.json_body({"mobile": pf["e164_digits"], "sms_code": V.digits(r, 6), "password": p.password})
            s.label("phone", "request.body $.mobile (E.164 digits)", pf["e164_digits"])
        s.label("credentials", "request.body password", p.password, "url" if variant == 2 else None)
        # A login hands back the user's new session: the response carries credentials.
        refresh = V.token(r, 48)
        s.json_response({"access_token": p.bearer, "refresh_token": refresh, "token_type": "Bearer", "expires_in": 3600, "user_id": p.user_id})
        s.label("credentials", "response.body $.access_token", p.bearer, side="response")
        if r.random() < 0.5:
            s.resp_headers.append(("set-cookie", f"sessionid={p.session}; Path=/; HttpOnly; Secure; SameSite=Lax"))
        return s

    def _prompt(self, with_pii: bool = True) -> tuple[str, list[tuple[str, str]]]:
        """A prompt and the extra (category, value) it carries beyond chat_content."""
        r, p = self.rng, self.p
        text = r.choice(p.prompts)
        extra: list[tuple[str, str]] = []
        if with_pii and r.random() < 0.12:
            text = f"{text} (reply to {p.email})" if p.language == "en" else f"{text} 내 메일은 {p.email} 이야" if p.language == "ko" else f"{text} 我的邮箱是{p.email}"
            extra.append(("email", p.email))
        if with_pii and p.canary and r.random() < 0.25:
            text = f"저는 {p.name}입니다. {text}"
            extra.append(("name", p.name))
        return text, extra

    def chat_json(self) -> _Spec:
        r, p = self.rng, self.p
        s = self.api("/v1/chat/completion", "POST", "chat.session_json")
        self.auth(s)
        text, extra = self._prompt()
        kq = self.key("prompt", "query", "question", "input")
        s.json_body({"chat_session_id": V.uuid4(r), "parent_message_id": V.digits(r, 19), kq: text,
                     "model": r.choice(("hana-pro", "hana-lite")), "stream": True, "ref_file_ids": [], "thinking_enabled": False})
        s.label("chat_content", f"request.body $.{kq}", text)
        for cat, v in extra:
            s.label(cat, f"request.body $.{kq}", v)
        s.resp_headers.append(("content-type", "text/event-stream"))
        s.resp_body = "".join(f"data: {json.dumps({'v': w}, ensure_ascii=False)}\n\n" for w in ("네, ", "알려드릴게요", ".")).encode()
        return s

    def chat_openai(self) -> _Spec:
        r, p = self.rng, self.p
        s = self.api("/v1/chat/completions", "POST", "chat.openai_messages")
        self.auth(s, "bearer")
        text, extra = self._prompt()
        msgs = [{"role": "system", "content": "You are Hana, a helpful assistant."}, {"role": "user", "content": text}]
        # OpenAI's "user" field: a stable pseudonymous end-user id; no contract category fits exactly.
        end_user = V.digest("sha256", p.user_id)[:16]
        s.json_body({"model": "hana-4o", "messages": msgs, "temperature": 0.7, "user": end_user}, ascii_=r.random() < 0.3)
        s.label("device_id", "request.body $.user", end_user, required=False)
        s.label("chat_content", "request.body $.messages[1].content", text)
        for cat, v in extra:
            s.label(cat, "request.body $.messages[1].content", v)
        s.json_response({"id": "chatcmpl-" + V.token(r, 29), "object": "chat.completion", "created": int(self.t),
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "Here is a short answer."}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 31, "completion_tokens": 7}})
        return s

    def chat_ws(self) -> _Spec:
        r, p = self.rng, self.p
        s = _Spec("chat.websocket", "ws.hanachat.example", "GET", "/v2/stream")
        s.query = f"v={APP_VERSION}"
        self.ua(s, "okhttp")
        s.headers += [("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-version", "13"),
                      ("sec-websocket-key", V.b64(r.getrandbits(128).to_bytes(16, "big")))]
        s.http2 = False
        s.status = 101
        s.resp_headers += [("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-accept", V.b64(r.getrandbits(160).to_bytes(20, "big")))]
        msgs: list[tuple[bool, bool, bytes]] = []
        if r.random() < 0.5:
            msgs.append((True, True, json.dumps({"type": "auth", "token": p.bearer}).encode()))
            s.label("credentials", "websocket[0] $.token", p.bearer)
        msgs.append((False, True, json.dumps({"type": "ready", "conn_id": V.uuid4(r), "server_time": self.ms()}).encode()))
        text, extra = self._prompt()
        n = len(msgs)
        if r.random() < 0.5:
            msgs.append((True, True, json.dumps({"type": "prompt", "conversation_id": V.uuid4(r), "text": text, "client_ts": self.ms()}, ensure_ascii=False).encode()))
        else:  # socket.io framing
            msgs.append((True, True, ("42" + json.dumps(["message", {"content": text, "msg_id": V.hexstr(r, 16)}], ensure_ascii=False)).encode()))
        s.label("chat_content", f"websocket[{n}]", text)
        for cat, v in extra:
            s.label(cat, f"websocket[{n}]", v)
        msgs.append((True, True, b'{"type":"typing","state":"stop"}'))
        for w in ("Sure", ", here", " you go."):
            msgs.append((False, True, json.dumps({"type": "delta", "text": w}).encode()))
        msgs.append((True, True, json.dumps({"type": "ping", "ts": self.ms()}).encode()))
        s.ws = msgs
        return s

    def chat_form(self) -> _Spec:
        r, p = self.rng, self.p
        s = self.api("/search/suggest", "POST", "chat.form_q")
        text, extra = self._prompt(with_pii=False)
        s.form_body([("q", text), ("src", "input"), ("n", "8"), ("sid", V.hexstr(r, 16))])
        s.label("chat_content", "request.body q", text, "url")
        s.json_response({"suggestions": ["…"]})
        return s

    def contacts(self) -> _Spec:
        r, p = self.rng, self.p
        s = self.api("/v1/friends/sync", "POST", "contacts.upload")
        self.auth(s)
        variant = r.randrange(3)
        s.scenario = ("contacts.json_list", "contacts.address_book", "contacts.hashed")[variant]
        if variant == 0:
            kl = self.key("contacts", "friends", "address_book", "phonebook")
            kn, kp = self.key(("name", "phone"), ("contactName", "number"), ("full_name", "mobile"))
            items = [{kn: n, kp: ph, "starred": r.random() < 0.2} for n, ph in p.contacts]
            s.json_body({kl: items, "total": len(items), "sync_token": V.hexstr(r, 24)})
            s.label("contacts", f"request.body $.{kl}", items[0][kp])
            s.label("phone", f"request.body $.{kl}[*].{kp}", items[0][kp], required=False)
            s.label("name", f"request.body $.{kl}[*].{kn}", items[0][kn], required=False)
        elif variant == 1:
            items = [{"displayName": n, "phoneNumbers": [{"type": "mobile", "number": V.phone_forms(ph)["e164"]}], "lastContacted": self.ms() - r.randint(0, 10**9)}
                     for n, ph in p.contacts]
            s.json_body({"address_book": items, "device_contacts_count": len(items)})
            s.label("contacts", "request.body $.address_book", items[0]["displayName"])
            s.label("phone", "request.body $.address_book[*].phoneNumbers", items[0]["phoneNumbers"][0]["number"], required=False)
            s.label("name", "request.body $.address_book[*].displayName", items[0]["displayName"], required=False)
        else:
            # Contact discovery by hashes of the numbers (messenger style).
            hashed = [V.digest("sha256", V.phone_forms(ph)["e164"]) for _, ph in p.contacts]
            s.json_body({"hashes": hashed, "hash_alg": "sha256(e164)", "salt_version": 0})
            s.label("contacts", "request.body $.hashes", V.phone_forms(p.contacts[0][1])["e164"], "sha256")
            s.label("phone", "request.body $.hashes", V.phone_forms(p.contacts[0][1])["e164"], "sha256", required=False)
        s.gzip_body = r.random() < 0.5
        s.json_response({"matched": r.randint(0, 3), "sync_token": V.hexstr(r, 24)})
        return s

    def apps_upload(self) -> _Spec:
        r, p = self.rng, self.p
        if r.random() < 0.5:
            s = self.api("/v1/risk/env", "POST", "apps.risk_env")
            s.json_body({self.key("pkgs", "packages", "installed", "app_list"): p.apps, "ts": self.ms(), "sig": V.hexstr(r, 40)})
        else:
            s = _Spec("apps.sdk_list", "sdk.adlog.example.cn", "POST", "/v2/applist")
            s.cleartext = True
            self.ua(s, "okhttp")
            s.json_body({"app_name": "HanaChat", "list": [{"package": a, "label": V.APP_LABELS.get(a, a), "ver": f"{r.randint(1, 12)}.{r.randint(0, 9)}.{r.randint(0, 9)}",
                                                          "first_install": self.ms() - r.randint(10**8, 10**10)} for a in p.apps]})
        s.label("installed_apps", "request.body apps", p.apps[0])
        s.json_response({"ok": True})
        return s

    def keystrokes(self) -> _Spec:
        r = self.rng
        s = self.api("/v1/telemetry/input", "POST", "behavior.keystrokes")
        n = r.randint(8, 30)
        ki, kd = self.key(("intervals_ms", "dwell_ms"), ("flight_times", "hold_times"), ("key_intervals", "key_durations"))
        s.json_body({"field": "prompt_input", "typing": {ki: [r.randint(40, 600) for _ in range(n)],
                                                        kd: [r.randint(50, 180) for _ in range(n)], "backspaces": r.randint(0, 6)},
                     "session": V.uuid4(r), "ts": self.ms()})
        s.label("behavioral", f"request.body $.typing.{ki}", ki)
        s.json_response({"ok": True})
        return s

    def clipboard(self) -> _Spec:
        r, p = self.rng, self.p
        s = self.api("/v1/input/paste", "POST", "behavior.clipboard")
        clip = r.choice(("회의록 3쪽 요약 부탁", "https://map.naver.com/p/entry/place/1234567", "Tracking no. 5512-3344-88", "내일 10시 치과"))
        kc = self.key("clipboard_text", "clipboard", "pasteboard", "paste_content")
        s.json_body({kc: clip, "source_app": "com.android.chrome", "len": len(clip), "ts": self.ms()})
        s.label("behavioral", f"request.body $.{kc}", clip)
        s.json_response({"ok": True})
        return s

    def usage(self) -> _Spec:
        r = self.rng
        s = self.api("/v1/events/batch", "POST", "behavior.app_usage")
        evs = [{"type": r.choice(("screen_view", "tap", "background", "foreground")), "screen": r.choice(("Chat", "History", "Settings", "Paywall")),
                "duration_ms": r.randint(50, 300000), "seq": i, "ts": self.ms() + i * 1000} for i in range(r.randint(3, 12))]
        s.json_body({"events": evs, "batch_id": V.uuid4(r), "app_build": APP_BUILD})
        s.label("behavioral", "request.body $.events", evs[0]["type"])
        s.gzip_body = r.random() < 0.3
        s.json_response({"accepted": len(evs)})
        return s

    def fb_events(self) -> _Spec:
        r, p = self.rng, self.p
        s = _Spec("facebook.app_events", "graph.facebook.com", "POST", f"/v18.0/{V.digits(r, 15)}/activities")
        self.ua(s, "okhttp")
        pf = V.phone_forms(p.phone)
        em = V.digest("sha256", p.email.lower())
        ph = V.digest("sha256", pf["e164_digits"])
        pairs = [("event", "CUSTOM_APP_EVENTS"), ("advertiser_id", p.gaid), ("advertiser_tracking_enabled", "1"),
                 ("application_tracking_enabled", "1"), ("ud", json.dumps({"em": em, "ph": ph})),
                 ("custom_events", json.dumps([{"_eventName": "fb_mobile_activate_app", "_logTime": int(self.t)}])),
                 ("extinfo", json.dumps(["a2", APP, APP_BUILD, APP_VERSION, p.os_version, p.model, p.language, "KST", p.carrier, 1080, 2400, "2.75", 8, 110, 45, "Asia/Seoul"], ensure_ascii=False)),
                 ("format", "json"), ("sdk", "android")]
        s.form_body(pairs)
        s.label("advertising_id", "request.body advertiser_id", p.gaid, "url")
        s.label("email", "request.body ud.em (sha256)", p.email.lower(), "sha256")
        s.label("phone", "request.body ud.ph (sha256 of E.164 digits)", pf["e164_digits"], "sha256")
        s.label("device_info", "request.body extinfo", p.model, "url")
        s.label("network_info", "request.body extinfo", p.carrier, "url")
        s.label("behavioral", "request.body custom_events", "fb_mobile_activate_app", "url")
        s.json_response({"success": True})
        return s

    def profile_lookup(self) -> _Spec:
        r, p = self.rng, self.p
        s = self.api("/v1/users/lookup", "GET", "profile.lookup_query")
        self.auth(s)
        if r.random() < 0.5:
            s.query = f"email={quote(p.email, safe='')}&fields=id,avatar"
            s.label("email", "request.query email", p.email, "url")
        else:
            e164 = V.phone_forms(p.phone)["e164"]
            s.query = f"phone={quote(e164, safe='')}&fields=id,avatar"
            s.label("phone", "request.query phone", e164, "url")
        s.json_response({"found": False})
        return s

    def profile_update(self) -> _Spec:
        r, p = self.rng, self.p
        s = self.api("/v1/me/profile", "PATCH", "profile.update")
        self.auth(s, "cookie")
        nick = r.choice((p.name, p.name_latin.split()[0]))
        kn = self.key("nickname", "nick_name", "display_name", "screenName")
        body = {kn: nick, "birthday": f"{r.randint(1970, 2005)}-0{r.randint(1, 9)}-1{r.randint(0, 9)}",
                "avatar_id": V.hexstr(r, 24), "bio": "", "theme": "dark"}
        s.label("name", f"request.body $.{kn}", nick)
        if r.random() < 0.4:
            # Some apps put a base64 JSON user blob in a cookie.
            blob = V.b64(json.dumps({"uid": p.user_id, "email": p.email}), urlsafe=True, pad=False)
            s.headers.append(("cookie", f"uinfo={blob}"))
            s.label("email", "request.header Cookie uinfo (base64url+json)", p.email, "base64+json")
        s.json_body(body)
        s.json_response({"updated": True, "version": r.randint(1, 50)})
        return s

    # -------------------------------------------------------------- negatives
    def cdn_asset(self) -> _Spec:
        r = self.rng
        kind = r.choice(("js", "png", "woff2", "json", "webp"))
        name = r.choice(("main", "vendor", "chat", "emoji-sprite", "onboarding", "lottie-hello"))
        s = _Spec("neg.cdn_asset", r.choice((CDN, "static.hanachat.example", "fonts.gstatic.com")), "GET",
                  f"/static/{kind}/{name}.{V.hexstr(r, 8)}.{kind}")
        self.ua(s, "okhttp")
        s.headers += [("accept", "*/*"), ("if-none-match", f'W/"{V.hexstr(r, 32)}"'), ("accept-encoding", "gzip")]
        s.resp_headers += [("content-type", {"js": "application/javascript", "png": "image/png", "woff2": "font/woff2", "json": "application/json", "webp": "image/webp"}[kind]),
                           ("etag", f'"{V.hexstr(r, 32)}"'), ("cache-control", "public, max-age=31536000, immutable"),
                           ("x-amz-cf-id", V.b64(r.getrandbits(312).to_bytes(39, "big"), urlsafe=True)), ("age", str(r.randint(0, 86400)))]
        s.brotli_response = kind in ("js", "json")
        if kind == "js":
            s.resp_body = (f"!function(){{var e={{version:\"{APP_VERSION}\",build:{APP_BUILD},h:\"{V.hexstr(r, 40)}\"}};" + "x" * r.randint(200, 3000) + "}();").encode()
        elif kind == "json":
            s.resp_body = json.dumps({"v": 5, "fr": 30, "ip": 0, "op": 90, "w": 512, "h": 512, "nm": name, "layers": []}).encode()
        else:
            s.resp_body = bytes(r.getrandbits(8) for _ in range(r.randint(300, 4000)))
        return s

    def config(self) -> _Spec:
        r = self.rng
        s = self.api("/v1/config", "GET", "neg.config")
        s.query = f"platform=android&app_version={APP_VERSION}&build={APP_BUILD}&os=android&locale_fallback=en"
        s.json_response({"request_id": V.uuid4(r), "config_version": r.randint(100, 999), "min_supported": "4.0.0",
                         "features": {"voice_input": r.random() < 0.5, "image_gen": True, "new_paywall": r.random() < 0.5},
                         "endpoints": {"ws": "wss://ws.hanachat.example/v2/stream", "cdn": f"https://{CDN}"},
                         "refresh_interval_s": 3600, "server_time": int(self.t), "etag": V.hexstr(r, 40)})
        return s

    def flags(self) -> _Spec:
        r = self.rng
        s = self.api("/v1/experiments/assign", "POST", "neg.flags")
        s.json_body({"experiments": ["paywall_copy_v3", "onboarding_skip"], "bucket_seed": r.randint(0, 9999),
                     "client_ts": self.ms(), "sdk": "flags-android/2.3.1"})
        s.json_response({"assignments": {"paywall_copy_v3": r.choice("ABC"), "onboarding_skip": r.choice(("control", "treatment"))},
                         "bucket": r.randint(0, 99), "experiment_ids": [r.randint(10000, 99999) for _ in range(2)]})
        return s

    def update_check(self) -> _Spec:
        r = self.rng
        s = self.api("/api/update", "GET", "neg.update_check")
        s.query = f"channel=stable&version={APP_VERSION}&build={APP_BUILD}&abi={self.p.cpu_abi}"
        s.label("device_info", "request.query abi (CPU)", f"abi={self.p.cpu_abi}", required=False)
        s.json_response({"latest": "5.13.0", "build": 51300, "sha256": V.hexstr(r, 64), "size": r.randint(10**7, 10**8),
                         "url": f"https://{CDN}/apk/hanachat-5.13.0-{V.hexstr(r, 8)}.apk", "released_at": 1732000000, "notes": "Bug fixes"})
        return s

    def traces(self) -> _Spec:
        r = self.rng
        s = self.api("/v1/traces", "POST", "neg.spans")
        trace = V.hexstr(r, 32)
        spans = [{"trace_id": trace, "span_id": V.hexstr(r, 16), "parent_span_id": V.hexstr(r, 16) if i else None,
                  "name": r.choice(("http.request", "db.query", "render.chat")), "start_unix_nano": self.ms() * 1_000_000 + i,
                  "duration_ms": round(r.uniform(0.4, 900), 3), "status": "ok"} for i in range(r.randint(2, 6))]
        s.json_body({"resource": {"service.name": "hanachat-android", "service.version": APP_VERSION, "telemetry.sdk.version": "1.32.0"}, "spans": spans})
        s.gzip_body = r.random() < 0.5
        s.status = 202
        return s

    def models_list(self) -> _Spec:
        r = self.rng
        s = self.api("/v1/models", "GET", "neg.models")
        s.json_response({"object": "list", "data": [{"id": m, "created": 1720000000 + r.randint(0, 10**7), "owned_by": "hanachat"}
                                                     for m in ("hana-4o", "hana-pro", "hana-lite")]})
        return s

    def i18n(self) -> _Spec:
        r = self.rng
        lang = r.choice(("ko", "zh", "en"))
        s = _Spec("neg.i18n", CDN, "GET", f"/i18n/{lang}.{V.hexstr(r, 10)}.json")
        s.label("device_info", "request.path (UI language of a static file)", f"/i18n/{lang}.", required=False)
        self.ua(s, "okhttp")
        s.json_response({"send": {"ko": "보내기", "zh": "发送", "en": "Send"}[lang], "greeting": {"ko": "안녕하세요! 무엇을 도와드릴까요?", "zh": "你好！", "en": "Hi!"}[lang],
                         "name_placeholder": "Your name", "phone_label": "Phone number"})
        return s

    def announcements(self) -> _Spec:
        r = self.rng
        s = self.api("/v1/announcements", "GET", "neg.announcements")
        s.query = f"since={int(self.t) - 86400}&limit=5"
        s.json_response({"items": [{"id": r.randint(1, 500), "title": "서비스 점검 안내", "body": "12월 1일 02:00-04:00 점검이 있습니다.",
                                    "author": "HanaChat Team", "contact": "support@hanachat.example", "published_at": int(self.t) - 3600}]})
        return s

    def attest(self) -> _Spec:
        r = self.rng
        s = self.api("/v1/attest/challenge", "POST", "neg.attest")
        s.json_body({"nonce": V.b64(r.getrandbits(256).to_bytes(32, "big")), "ts": self.ms(), "apk_cert_sha256": V.hexstr(r, 64),
                     "bundle_md5": V.hexstr(r, 32)})
        s.json_response({"challenge": V.b64(r.getrandbits(256).to_bytes(32, "big"), urlsafe=True, pad=False), "expires_in": 60})
        return s

    def history(self) -> _Spec:
        r = self.rng
        s = self.api("/v1/conversations", "GET", "neg.history_list")
        s.query = f"cursor={V.digits(r, 19)}&limit=20"
        # The response lists conversation titles: the server's copy of old chats,
        # but no request-side data; titles are server-generated summaries.
        s.json_response({"items": [{"id": "7" + V.digits(r, 18), "title": r.choice(("새 대화", "New chat", "新对话")), "updated_at": self.ms() - r.randint(0, 10**8),
                                    "message_count": r.randint(1, 80)} for _ in range(r.randint(1, 5))], "has_more": False})
        return s

    def ping(self) -> _Spec:
        r = self.rng
        s = self.api(r.choice(("/ping", "/healthz", "/v1/heartbeat")), r.choice(("GET", "HEAD")), "neg.ping")
        s.query = f"t={self.ms()}" if r.random() < 0.5 else ""
        s.json_response({"ok": True, "ts": int(self.t), "region": r.choice(("ap-northeast-2", "ap-southeast-1"))})
        return s

    def presence_ws(self) -> _Spec:
        r = self.rng
        s = _Spec("neg.presence_ws", "push.hanachat.example", "GET", "/socket")
        self.ua(s, "okhttp")
        s.headers += [("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-version", "13"),
                      ("sec-websocket-key", V.b64(r.getrandbits(128).to_bytes(16, "big")))]
        s.http2 = False
        s.status = 101
        s.resp_headers += [("connection", "Upgrade"), ("upgrade", "websocket")]
        msgs = []
        for i in range(r.randint(2, 6)):
            msgs.append((True, True, json.dumps({"op": "ping", "seq": i, "ts": self.ms() + i * 30000}).encode()))
            msgs.append((False, True, json.dumps({"op": "pong", "seq": i, "server_id": V.hexstr(r, 8)}).encode()))
        s.ws = msgs
        return s

    def orders(self) -> _Spec:
        r = self.rng
        s = self.api("/v1/billing/orders/status", "POST", "neg.order_status")
        s.json_body({"order_no": V.not_luhn(r, 15), "product_id": "plus_monthly", "purchase_ms": self.ms(), "amount": 9900, "currency": "KRW"})
        s.json_response({"order_no": V.not_luhn(r, 16), "state": "PAID", "trade_no": V.digits(r, 12)})
        return s

    def upload_check(self) -> _Spec:
        r = self.rng
        s = self.api("/v1/files/precheck", "POST", "neg.file_precheck")
        s.json_body({"file_sha256": V.hexstr(r, 64), "size": r.randint(1000, 10**7), "mime": "image/jpeg", "chunk": 4_194_304, "upload_id": V.uuid4(r)})
        s.json_response({"exists": False, "upload_url": f"https://upload.hanachat.example/u/{V.token(r, 20)}", "expires": int(self.t) + 900})
        return s

    def options(self) -> _Spec:
        r = self.rng
        s = self.api("/v1/chat/completions", "OPTIONS", "neg.cors_preflight")
        s.headers += [("access-control-request-method", "POST"), ("access-control-request-headers", "authorization,content-type"), ("origin", "https://web.hanachat.example")]
        s.status = 204
        s.resp_headers += [("access-control-allow-origin", "https://web.hanachat.example"), ("access-control-max-age", "600")]
        return s

    # ------------------------------------------------------------------ driver
    def next_spec(self) -> _Spec:
        r = self.rng
        self.p = self.canary if r.random() < self.canary_share else r.choice(self.people)
        self.t += r.expovariate(1 / 2.0)
        fn = self.pick(self.negative if self.pick(self.split) else self.positive)
        spec = fn()
        if spec.ws is None and r.random() < 0.02:
            spec.error = r.choice(("Connection killed.", "peer closed connection without sending complete message body"))
            spec.labels = [lab for lab in spec.labels if lab[0] == "request"]
        return spec


def _build_flow(spec: _Spec, index: int, t: float, rng: random.Random):
    from mitmproxy import connection, http, websocket
    from mitmproxy import flow as mflow
    from mitmproxy.connection import ConnectionState
    from mitmproxy.proxy.mode_specs import ProxyMode

    tls = not spec.cleartext
    http2 = spec.http2 and tls
    alpn = (b"h2" if http2 else b"http/1.1") if tls else None
    port = 443 if tls else 80
    body = spec.body
    headers = list(spec.headers)
    if spec.gzip_body and body:
        body = gzip.compress(body, mtime=0)
        headers.append(("content-encoding", "gzip"))
    if spec.method not in ("GET", "HEAD", "OPTIONS") or body:
        headers.append(("content-length", str(len(body))))
    url = f"{'https' if tls else 'http'}://{spec.host}{spec.path}" + (f"?{spec.query}" if spec.query else "")
    ip = _host_ip(spec.host)
    cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    tls_facts = dict(tls_version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256") if tls else {}
    client = connection.Client(
        id=cid, peername=("10.0.2.16", 40000 + index % 20000), sockname=("10.0.2.2", 8080),
        timestamp_start=t - 0.05, timestamp_tls_setup=t - 0.04 if tls else None, sni=spec.host if tls else None,
        alpn=alpn, state=ConnectionState.CLOSED, tls=tls, proxy_mode=ProxyMode.parse("regular"), **tls_facts,
    )
    server = connection.Server(
        id=sid, address=(spec.host, port), peername=(ip, port), sockname=("10.0.2.2", 50000 + index % 15000),
        timestamp_start=t - 0.04, timestamp_tcp_setup=t - 0.03, timestamp_tls_setup=t - 0.02 if tls else None,
        sni=spec.host if tls else None, alpn=alpn, state=ConnectionState.CLOSED, tls=tls, **tls_facts,
    )
    f = http.HTTPFlow(client, server)
    f.id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    req = http.Request.make(spec.method, url, b"", [(k.encode(), v.encode()) for k, v in headers])
    req.raw_content = body
    req.http_version = "HTTP/2.0" if http2 else "HTTP/1.1"
    if http2:
        req.authority = spec.host
    req.timestamp_start, req.timestamp_end = t, t + 0.001
    f.request = req
    f.timestamp_created = t - 0.05
    resp_body = spec.resp_body
    if spec.error:
        # The connection died before an answer (app killed, network switch).
        f.error = mflow.Error(spec.error, t + 0.5)
        return f, len(spec.body)
    resp_headers = list(spec.resp_headers)
    resp_headers.append(("date", "Thu, 28 Nov 2024 08:00:00 GMT"))
    raw_resp = resp_body
    if spec.brotli_response and resp_body:
        import brotli

        raw_resp = brotli.compress(resp_body)
        resp_headers.append(("content-encoding", "br"))
    if raw_resp:
        resp_headers.append(("content-length", str(len(raw_resp))))
    resp = http.Response.make(spec.status, b"", [(k.encode(), v.encode()) for k, v in resp_headers])
    resp.raw_content = raw_resp
    resp.http_version = req.http_version
    resp.timestamp_start, resp.timestamp_end = t + 0.08, t + 0.09
    f.response = resp
    ws_bytes = 0
    if spec.ws is not None:
        data = websocket.WebSocketData()
        for i, (from_client, is_text, content) in enumerate(spec.ws):
            data.messages.append(websocket.WebSocketMessage(1 if is_text else 2, from_client, content, t + 0.1 + i * 0.5))
            ws_bytes += len(content)
        data.closed_by_client, data.close_code, data.close_reason = True, 1000, ""
        data.timestamp_end = t + 0.2 + len(spec.ws) * 0.5
        f.websocket = data
    return f, len(spec.body) + len(resp_body) + ws_bytes


def iter_flows(seed: int, n: int, canary_share: float = 0.3) -> Iterator[GeneratedFlow]:
    """Yields ``n`` labelled flows for ``seed``; the same seed gives the same flows."""
    gen = _Gen(seed, canary_share)
    build_rng = random.Random(seed ^ 0x5EED)
    for i in range(n):
        spec = gen.next_spec()
        flow, nbytes = _build_flow(spec, i, gen.t, build_rng)
        labels = [Label(i, side, cat, loc, value, enc, req) for side, cat, loc, value, enc, req in spec.labels]
        yield GeneratedFlow(i, spec.scenario, flow, labels, nbytes)


def generate(seed: int, n: int, canary_share: float = 0.3) -> list[GeneratedFlow]:
    return list(iter_flows(seed, n, canary_share))


def write_capture(flows, out: Path) -> None:
    """Writes flows to ``out`` (mode 0600: captures hold personal data) atomically."""
    from mitmproxy import io

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            w = io.FlowWriter(fh)
            for g in flows:
                w.add(g.flow if isinstance(g, GeneratedFlow) else g)
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def labels_document(seed: int, flows: list[GeneratedFlow], canary_share: float) -> dict:
    return {
        "generator": "privaudit.bench.generate",
        "seed": seed,
        "flows": len(flows),
        "canary_share": canary_share,
        "unit": ["flow_index", "side", "category"],
        "scenarios": [g.scenario for g in flows],
        "labels": [asdict(lab) for g in flows for lab in g.labels],
    }


def canaries_yaml() -> str:
    """The canary file for the generator's canary identity (CONTRACT.md format)."""
    import yaml

    return (
        "# The test identity used in about a third of the generated flows\n"
        "# (privaudit.bench.values.CANARY).\n" + yaml.safe_dump(V.CANARY, allow_unicode=True, sort_keys=False)
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m privaudit.bench.generate", description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--flows", type=int, default=400)
    ap.add_argument("--canary-share", type=float, default=0.3, help="share of flows sent by the canary identity")
    ap.add_argument("-o", "--out", required=True, help="the .mitm file to write")
    ap.add_argument("--labels", help="where to write the ground-truth labels (JSON)")
    ap.add_argument("--canaries", help="where to write the canary file (YAML)")
    args = ap.parse_args(argv)
    flows = generate(args.seed, args.flows, args.canary_share)
    write_capture(flows, Path(args.out))
    if args.labels:
        doc = labels_document(args.seed, flows, args.canary_share)
        Path(args.labels).write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if args.canaries:
        Path(args.canaries).write_text(canaries_yaml(), encoding="utf-8")
    neg = sum(1 for g in flows if not any(lab.required for lab in g.labels))
    print(f"wrote {len(flows)} flows ({neg} negative) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
