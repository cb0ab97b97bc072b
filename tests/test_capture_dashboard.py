"""The terminal dashboard and the onboarding text, without a terminal."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from rich.console import Console

from privaudit.capture import dashboard as db
from privaudit.capture import onboarding as ob

NOW = time.time()

SNAP = {
    "started": "2026-01-01T00:00:00.000Z",
    "flows_recorded": 42,
    "flows_analysed": 40,
    "queued": 2,
    "deferred_pending": 0,
    "findings": 7,
    "phases": [{"name": "consent shown", "timestamp": "2026-01-01T00:00:05.000Z"}],
    "countries": {"CN": {"hosts": 2, "flows": 30, "categories": ["device_id", "email"]},
                  "??": {"hosts": 1, "flows": 3, "categories": []}},
    "categories": {"device_id": 5, "email": 2},
    "parties": [{"domain": "deepseek.com", "host": "chat.deepseek.com", "country": "CN", "party": "first", "time": NOW},
                {"domain": "volces.com", "host": "gator.volces.com", "country": "CN", "party": "third", "time": NOW}],
    "own_domains": ["deepseek.com"],
    "recent": [{"host": "gator.volces.com", "category": "device_id", "severity": "high",
                "location": "request.body $.openudid", "time": NOW}],
    "errors": [],
    "write_errors": 0,
    "analysis_errors": 0,
    "enabled": True,
    "ready": True,
}


def test_render_shows_what_goes_where():
    text = db.render_text(SNAP)
    for expected in ("42 recorded, 40 analysed", "(2 waiting)", "findings 7", "phase: consent shown",
                     "Endpoints by country", "CN", "unknown", "device_id, email", "Findings by category",
                     "New third parties", "volces.com", "Latest findings", "gator.volces.com", "1 launched"):
        assert expected in text, expected
    assert "deepseek.com " not in text.split("New third parties")[1].split("Latest findings")[0]  # first party hidden


@pytest.mark.parametrize(
    "extra, expected",
    [
        ({"write_errors": 3, "last_write_error": "OSError: [Errno 28] No space left -- the disk is full"},
         "NOT RECORDED: 3 flows"),
        ({"analysis_errors": 5}, "analysis errors: 5 flows"),
        ({"rules_error": "RuleError: rules/x.yaml:3"}, "live analysis off: RuleError"),
        ({"errors": ["flow 3: analysis failed: boom"]}, "flow 3: analysis failed: boom"),
        ({"own_domains": []}, "New domains (name the app's own with --own-domain)"),
        ({"enabled": False}, "live analysis off"),
    ],
)
def test_render_shows_errors_and_states(extra, expected):
    assert expected in db.render_text({**SNAP, **extra})


def test_render_of_an_empty_snapshot():
    text = db.render_text({})
    assert "flows 0 recorded, 0 analysed" in text and "(none marked)" in text


@pytest.mark.parametrize(
    "keys, marks, typing",
    [
        ("1", ["launched"], None),
        ("35", ["consent given", "sent prompt"], None),
        ("9x", [], None),
        ("pfound settings\r", ["found settings"], None),
        ("pabc\x7f\x7fz\n", ["az"], None),
        ("phalf", [], "half"),
        ("pgone\x1b2", ["consent shown"], None),
        ("p   \r", [], None),
        ("q", [db.KeyInput.QUIT], None),
    ],
)
def test_keys_mark_phases(keys, marks, typing):
    k = db.KeyInput()
    got = [m for m in (k.feed(ch) for ch in keys) if m]
    assert got == marks
    assert k.typing == typing


def test_dashboard_marks_phases_and_quits_without_a_terminal():
    marked, quits = [], []
    d = db.Dashboard(lambda: SNAP, marked.append, quit=lambda: quits.append(1),
                     console=Console(file=io.StringIO(), width=100), stdin=io.StringIO())
    for ch in "4pmy phase\rq":
        d.handle(ch)
    assert marked == ["logged in", "my phase"] and quits == [1]
    assert "marked phase 'my phase'" in d.message
    d.start()  # not a TTY: renders, reads no keys
    time.sleep(0.3)
    d.stop()
    assert "Endpoints by country" in d.console.file.getvalue()


# --- onboarding ---------------------------------------------------------------------

CONF = Path("/home/t/.mitmproxy")


@pytest.mark.parametrize(
    "mode, listen, expected",
    [
        ("regular", [("0.0.0.0", 8080)], ["Proxy: Manual", "port 8080", "HTTPS_PROXY=http://127.0.0.1:8080"]),
        ("regular", [("127.0.0.1", 8080)], ["listens on loopback only", "--listen-host 0.0.0.0"]),
        ("upstream:http://10.1.2.3:3128", [("0.0.0.0", 8080)], ["upstream proxy in http://10.1.2.3:3128"]),
        ("reverse:https://api.example.com", [("0.0.0.0", 8443)], ["as if it were the server https://api.example.com"]),
        ("transparent", [("0.0.0.0", 8080)], ["REDIRECT --to-port 8080"]),
        ("local:ChatApp", [], ["desktop app ChatApp"]),
    ],
)
def test_onboarding_says_where_to_point_the_device(mode, listen, expected):
    text = ob.onboarding_text(mode, listen, CONF)
    for e in expected:
        assert e in text, e
    for ca in ("http://mitm.it", str(CONF / "mitmproxy-ca-cert.pem"), "Android:", "iOS/iPadOS:", "macOS:",
               "Windows: certutil -addstore root", "update-ca-certificates"):
        assert ca in text, ca


WG = """[Interface]
PrivateKey = MEJXE3DQWGlg7qs/v/vRO+1KY19SkdpM/QXheEOCEmQ=
Address = 10.0.0.1/32
DNS = 10.0.0.53

[Peer]
PublicKey = H4rhjHTMpr2OK8Z+O5yAoBnaQe61VSp5EVNbIYLWuXQ=
AllowedIPs = 0.0.0.0/0
Endpoint = 0.0.0.0:0"""


def test_wireguard_onboarding_prints_the_config_and_a_qr_code():
    text = ob.onboarding_text("wireguard", [("0.0.0.0", 51820)], CONF, [{"wireguard_conf": WG}])
    assert "PrivateKey = MEJX" in text and "Scan from QR code" in text
    assert "Endpoint = " in text and ":51820" in text
    assert "█" in text or "▀" in text  # the QR code, drawn with blocks


@pytest.mark.parametrize(
    "listen, lan, endpoint",
    [
        ([("0.0.0.0", 51820)], "192.168.1.20", "Endpoint = 192.168.1.20:51820"),
        ([("192.168.1.5", 40000)], None, "Endpoint = 0.0.0.0:40000"),
    ],
)
def test_wireguard_endpoint_is_one_a_phone_can_use(listen, lan, endpoint):
    conf = WG if listen[0][0] == "0.0.0.0" else WG
    assert endpoint in ob.wireguard_client_conf(conf, listen, lan).splitlines()


def test_qr_text_is_scannable_text():
    qr = ob.qr_text("hello")
    assert len(qr.splitlines()) > 10 and len(set(qr) - {"\n"}) >= 2


@pytest.mark.parametrize(
    "system, ok, words",
    [("Windows", True, "Administrator"), ("Darwin", True, "system extension"), ("FreeBSD", False, "not available")],
)
def test_local_mode_support(system, ok, words):
    got_ok, why = ob.local_mode_support(system)
    assert got_ok is ok and words in why


@pytest.mark.parametrize(
    "mode, kind",
    [("regular", "regular"), ("regular@8081", "regular"), ("upstream:http://x:1", "upstream"),
     ("local:Chat App", "local"), ("wireguard:/k.conf@51821", "wireguard"), ("", "regular")],
)
def test_mode_type(mode, kind):
    assert ob.mode_type(mode) == kind


# --- console helpers ----------------------------------------------------------------------

from privaudit.capture import console as cs  # noqa: E402
from privaudit.errors import ConfigError  # noqa: E402


@pytest.mark.parametrize(
    "specs, expected",
    [([], {}), (["6=logged out"], {"6": "logged out"}), (['0=  idle   again '], {"0": "idle again"})],
)
def test_parse_phase_keys(specs, expected):
    assert cs.parse_phase_keys(specs) == expected


@pytest.mark.parametrize(
    "spec, words",
    [("6", "expected KEY=NAME"), ("66=x", "single-character"), ("6=", "expected KEY=NAME"),
     ("q=quiet", "is taken"), ("3=again", "is taken")],
)
def test_bad_phase_keys(spec, words):
    with pytest.raises(ConfigError, match=words):
        cs.parse_phase_keys([spec])


def test_extra_keys_are_offered_and_marked():
    k = db.KeyInput({"6": "logged out"})
    assert k.feed("6") == "logged out"
    assert "6 logged out" in db.keys_help(k.extra)
