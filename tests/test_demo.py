"""``privaudit demo``: the imitation app through the real mitmproxy, end to end."""

from __future__ import annotations

import ipaddress
import json
import os
import stat

import pytest
import yaml
from mitmproxy import io
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.test import tflow

from privaudit.demo import backend, capture_demo, identity, run_demo

pytestmark = pytest.mark.e2e

THIRD_PARTIES = ("gator.volces.com", "fp-it.fengkongcloud.com", "api-iam.intercom.io")

def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def read_flows(path):
    with open(path, "rb") as f:
        return list(io.FlowReader(f).stream())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    res = run_demo(tmp_path_factory.mktemp("demo") / "out")
    return res, json.loads(res.findings.read_text("utf-8"))


# --- the capture alone (needs no analysis stage) --------------------------------

def test_capture_stays_on_loopback_and_keeps_tls_facts(tmp_path):
    flows, calls = capture_demo(tmp_path / "cap")
    assert all(status == 200 for _, status in calls), calls
    got = read_flows(flows)
    assert {f.request.host for f in got} == set(backend.DEMO_HOSTS)
    for f in got:
        assert ipaddress.ip_address(f.server_conn.peername[0]).is_loopback
        if f.request.host in backend.HTTPS_HOSTS:
            assert f.request.scheme == "https"
            assert f.server_conn.sni == f.request.host
            assert f.server_conn.certificate_list
        else:
            assert f.request.scheme == "http" and not f.server_conn.tls_established
    sse = next(f for f in got if f.request.path.endswith("/chat/completion"))
    assert sse.response.headers["content-type"].startswith("text/event-stream")
    assert b"HbA1c" in sse.response.content
    meta = json.loads((tmp_path / "cap" / "meta.json").read_text())
    assert [p["name"] for p in meta["phases"]] == ["start-up", "login", "chat", "background"]

    again, _ = capture_demo(tmp_path / "cap")  # a second run replaces, not appends
    assert len(read_flows(again)) == len(got)


@pytest.mark.parametrize(
    "address, redirected",
    [
        (("gator.volces.com", 443), ("127.0.0.1", 4443)),
        (("chat.deepseek.com", 443), ("127.0.0.1", 4443)),
        (("update.deepseek.com", 80), ("127.0.0.1", 8080)),
        (("update.deepseek.com", 443), None),  # only the cleartext port is imitated
        (("gator.volces.com", 80), None),
        (("example.com", 443), None),
        (("127.0.0.1", 4443), None),
    ],
)
def test_loopback_redirect_refuses_anything_not_imitated(address, redirected):
    server = tflow.tserver_conn()
    server.address = address
    data = ServerConnectionHookData(client=tflow.tclient_conn(), server=server)
    backend.LoopbackRedirect(https_port=4443, http_port=8080).server_connect(data)
    if redirected:
        assert data.server.address == redirected and data.server.error is None
    else:
        assert "not an imitation host" in data.server.error


def test_canary_file_is_the_demo_identity(tmp_path):
    path = identity.write_canaries(tmp_path / "canaries.yaml")
    assert mode(path) == 0o600
    doc = yaml.safe_load(path.read_text("utf-8"))
    assert doc["phone"].startswith("+82 10-")
    assert "김민지" in doc["name"]
    assert set(doc) == {"email", "phone", "name", "advertising_id", "device_id", "location", "chat_content"}
    from privaudit.detect import load_canaries

    load_canaries(path)  # the detector accepts it


# --- the whole demo ---------------------------------------------------------------

def test_demo_writes_private_files(demo):
    res, _ = demo
    for p in (res.flows, res.canaries, res.findings, res.report):
        assert p.is_file() and mode(p) == 0o600, p
    assert mode(res.out_dir) == 0o700
    assert res.report.read_text("utf-8").lstrip().lower().startswith("<!doctype html")


@pytest.mark.parametrize(
    "host, category, encoding",
    [
        ("gator.volces.com", "device_id", None),
        ("gator.volces.com", "advertising_id", None),
        ("gator.volces.com", "location", None),
        ("fp-it.fengkongcloud.com", "device_id", "base64"),
        ("fp-it.fengkongcloud.com", "advertising_id", "base64"),
        ("api-iam.intercom.io", "email", "sha256"),
        ("api-iam.intercom.io", "name", None),
        ("chat.deepseek.com", "chat_content", None),
        ("chat.deepseek.com", "phone", None),
    ],
)
def test_canaries_are_found_at_the_imitation_hosts(demo, host, category, encoding):
    _, doc = demo
    hits = [
        f for f in doc["findings"]
        if f["host"] == host and f["category"] == category and f["method"] == "canary" and f["side"] == "request"
    ]
    assert hits, f"no {category} canary at {host}"
    if encoding:
        assert any(encoding in (f["encoding"] or "") for f in hits), [f["encoding"] for f in hits]


def test_evidence_is_redacted(demo):
    _, doc = demo
    raw = json.dumps(doc["findings"], ensure_ascii=False)
    for value in (identity.EMAIL, identity.IMEI, identity.ADVERTISING_ID, identity.CHAT_PROMPT):
        assert value not in raw


def test_cleartext_flow_is_marked(demo):
    _, doc = demo
    update = [f for f in doc["findings"] if f["host"] == "update.deepseek.com"]
    assert update and all(f["tls"] is False for f in update)
    assert any(f["category"] == "device_id" and "query" in f["location"] for f in update)
    assert all(f["tls"] is True for f in doc["findings"] if f["host"] != "update.deepseek.com")
    assert doc["coverage"]["cleartext_flows"] == 1


def test_endpoints_carry_the_demo_addresses(demo):
    from privaudit.jurisdiction.demo_addresses import DEMO_ADDRESSES

    _, doc = demo
    assert doc["demo"] is True
    endpoints = {e["host"]: e for e in doc["endpoints"]}
    assert set(endpoints) == set(backend.DEMO_HOSTS)
    for host, e in endpoints.items():
        assert e["demo_address"] is True
        assert e["ips"] == [DEMO_ADDRESSES[host]]
        # the stand-in addresses are registered in CN, Intercom's in the US
        assert e["hosting_country"] == ("US" if host.endswith(".intercom.io") else "CN")
    assert endpoints["update.deepseek.com"]["tls"] is False
    for host in THIRD_PARTIES:
        assert {"device_id", "email", "advertising_id"} & set(endpoints[host]["categories"])


def test_demo_document_has_the_phases(demo):
    _, doc = demo
    assert [p["name"] for p in doc["phases"]] == ["start-up", "login", "chat", "background"]
