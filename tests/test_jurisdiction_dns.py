"""DNS evidence: a real dnsmasq on loopback answers, dnspython asks, the
Locator turns CNAME chains into evidence and jurisdictions.

Also: CNAME answers carried by DNS flows in a capture file (a real dnsmasq
answer wrapped in a mitmproxy DNS flow, written and read back) reach
``Locator.describe(cnames=...)`` through :func:`cname_chain`.

Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import dns.message
import dns.query
import pytest

from privaudit.errors import ConfigError
from privaudit.jurisdiction import DnsAnswer, Locator, cname_chain, parse_nameserver, resolve_hosts

DNSMASQ = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)

# The zone dnsmasq serves. Addresses are public ones the embedded registry
# data lists for the country in the comment; nothing is sent to them.
CNAMES = [
    # a two-step chain into Volcengine's GSLB domain (ByteDance, CN)
    ("api.chatapp-test.example", "edge.chatapp-test.example"),
    ("edge.chatapp-test.example", "api.chatapp-test.example.volcgslb.com"),
    # into Amazon CloudFront (US)
    ("cdn.chatapp-test.example", "d1234abcd.cloudfront.net"),
]
HOST_RECORDS = [
    ("api.chatapp-test.example.volcgslb.com", "101.126.0.10", "240c::6666"),  # CN
    ("d1234abcd.cloudfront.net", "3.5.140.2"),  # US
    ("plain.chatapp-test.example", "168.126.63.1"),  # KR, no alias
]
NXDOMAIN_ZONE = "nx.chatapp-test.example"


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port")


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory) -> int:
    """A real dnsmasq on 127.0.0.1:<port>, serving only the zone above."""
    if DNSMASQ is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("dnsmasq is not installed (Debian package dnsmasq-base); CI must install it")
        pytest.skip("dnsmasq is not installed (Debian package dnsmasq-base)")
    tmp = tmp_path_factory.mktemp("dnsmasq")
    port = _free_port()
    args = [
        DNSMASQ, "--no-daemon", f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces",
        "--no-resolv", "--no-hosts", "--conf-file=/dev/null", f"--pid-file={tmp / 'dnsmasq.pid'}",
        "--log-queries", f"--log-facility={tmp / 'dnsmasq.log'}", f"--address=/{NXDOMAIN_ZONE}/",
    ]
    args += [f"--cname={alias},{target}" for alias, target in CNAMES]
    args += [f"--host-record={','.join(rec)}" for rec in HOST_RECORDS]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        query = dns.message.make_query("plain.chatapp-test.example.", "A")
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                pytest.fail(f"dnsmasq exited with {proc.returncode}: {out}")
            try:
                dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2)
                break
            except (dns.exception.Timeout, OSError):
                if time.monotonic() > deadline:
                    pytest.fail("dnsmasq did not start answering within 10 s")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture
def silent_port():
    """A bound UDP port on loopback that never answers (a dead DNS server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.fixture(scope="module")
def locator() -> Locator:
    return Locator()


# -- resolving through a real DNS server --------------------------------------------

@pytest.mark.parametrize(
    "host, chain, addresses, error",
    [
        ("api.chatapp-test.example",
         ("edge.chatapp-test.example", "api.chatapp-test.example.volcgslb.com"), ("101.126.0.10", "240c::6666"), None),
        ("CDN.chatapp-test.example.", ("d1234abcd.cloudfront.net",), ("3.5.140.2",), None),
        ("plain.chatapp-test.example", (), ("168.126.63.1",), None),
        ("gone.nx.chatapp-test.example", (), (), "NXDOMAIN"),
        ("unknown.example", (), (), "REFUSED"),  # dnsmasq has no upstream for it
    ],
)
def test_resolve_hosts_gives_chain_and_addresses(dnsmasq, host, chain, addresses, error):
    answers = resolve_hosts([host], "127.0.0.1", port=dnsmasq, timeout=2.0)
    key = host.lower().rstrip(".")
    answer = answers[key]
    assert (answer.host, answer.cnames, answer.addresses) == (key, chain, addresses)
    assert answer.server == f"127.0.0.1:{dnsmasq}"
    if error is None:
        assert answer.error is None
    else:
        assert error in answer.error


def test_resolve_hosts_skips_literals_and_duplicates(dnsmasq):
    answers = resolve_hosts(["8.8.8.8", "[::1]", "plain.chatapp-test.example", "PLAIN.chatapp-test.example"],
                            f"127.0.0.1:{dnsmasq}")
    assert list(answers) == ["plain.chatapp-test.example"]


def test_resolved_cname_chain_becomes_evidence_and_jurisdiction(dnsmasq, locator):
    host = "api.chatapp-test.example"
    answer = resolve_hosts([host], "127.0.0.1", port=dnsmasq)[host]
    info = locator.describe(host, [], resolved=answer)  # e.g. a HAR without server addresses
    cname = [e for e in info.evidence if e.kind == "cname"]
    assert [("volcgslb.com" in e.detail, e.country) for e in cname] == [(False, None), (True, "CN")]
    assert all(f"resolved at audit time via DNS server 127.0.0.1:{dnsmasq}" in e.detail for e in cname)
    assert any("Volcano Engine" in e.detail for e in cname)
    assert any("parent ByteDance Ltd. (CN)" in e.detail for e in cname)
    assert info.jurisdictions == ("CN",)
    # No address in the capture: the resolved ones are located, marked, and kept out of ips.
    assert info.ips == ()
    assert info.hosting_country == "CN"
    rir = [e for e in info.evidence if e.kind == "rir"]
    assert rir and all("resolved at audit time" in e.detail for e in rir)
    assert any("DNS look-up at audit time" in r for r in info.confidence_reasons)
    assert info.operator is None  # the CNAME target's operator is evidence, not the host's operator


def test_captured_address_wins_over_resolved(dnsmasq, locator):
    host = "cdn.chatapp-test.example"
    answer = resolve_hosts([host], "127.0.0.1", port=dnsmasq)[host]
    info = locator.describe(host, ["168.126.63.1"], resolved=answer)
    assert info.ips == ("168.126.63.1",)
    assert info.hosting_country == "KR"
    assert not any("3.5.140.2" in e.detail for e in info.evidence)
    assert any(e.kind == "cname" and e.country == "US" and "cloudfront.net" in e.detail for e in info.evidence)
    assert info.jurisdictions == ("KR", "US")


def test_resolved_chain_adds_only_what_the_capture_lacks(dnsmasq, locator):
    host = "api.chatapp-test.example"
    answer = resolve_hosts([host], "127.0.0.1", port=dnsmasq)[host]
    info = locator.describe(host, [], cnames=["edge.chatapp-test.example"], resolved=answer)
    details = [e.detail for e in info.evidence if e.kind == "cname"]
    assert "resolved at audit time" not in details[0]  # from the capture
    assert all("resolved at audit time" in d for d in details[1:])
    assert sum("edge.chatapp-test.example" in d for d in details) == 1


def test_failed_lookup_is_recorded(dnsmasq, locator):
    host = "gone.nx.chatapp-test.example"
    answer = resolve_hosts([host], "127.0.0.1", port=dnsmasq)[host]
    info = locator.describe(host, [], resolved=answer)
    assert any(e.kind == "cname" and "NXDOMAIN" in e.detail and e.country is None for e in info.evidence)
    assert info.jurisdictions == ()


# -- a DNS server that does not answer ----------------------------------------------

def test_unreachable_nameserver_is_config_error(silent_port):
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=rf"DNS server 127\.0\.0\.1:{silent_port} did not answer.*--nameserver"):
        resolve_hosts(["a.example", "b.example", "c.example"], "127.0.0.1", port=silent_port, timeout=0.3)
    assert time.monotonic() - t0 < 3  # gave up at the first host


def test_unreachable_nameserver_best_effort_warns_once_and_continues(silent_port):
    warnings: list[str] = []
    t0 = time.monotonic()
    answers = resolve_hosts(["a.example", "b.example", "c.example"], "127.0.0.1", port=silent_port,
                            timeout=0.3, best_effort=True, warnings=warnings)
    assert time.monotonic() - t0 < 3  # waited on the dead server once, not three times
    assert len(warnings) == 1 and "best effort" in warnings[0] and str(silent_port) in warnings[0]
    assert list(answers) == ["a.example", "b.example", "c.example"]
    assert all(a.error and "did not answer" in a.error and not a.cnames and not a.addresses
               for a in answers.values())


# -- parsing and chains (pure) ------------------------------------------------------

@pytest.mark.parametrize(
    "spec, expected",
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[::1]", ("::1", 53)),
        (" system ", ("system", 53)),
        ("SYSTEM", ("system", 53)),
    ],
)
def test_parse_nameserver(spec, expected):
    assert parse_nameserver(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("dns.example.com", "IP address"),
        ("127.0.0.1:dns", "port must be a number"),
        ("127.0.0.1:0", "out of range"),
        ("127.0.0.1:70000", "out of range"),
        ("[::1", r"\[IPv6\]:port"),
        ("[::1]x", r"\[IPv6\]:port"),
        ("[::1]:", "port must be a number"),
        ("", "IP address"),
    ],
)
def test_parse_nameserver_rejects(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_nameserver(spec)


def test_default_port_applies_without_port_in_text():
    assert parse_nameserver("127.0.0.1", 5353) == ("127.0.0.1", 5353)
    assert parse_nameserver("127.0.0.1:53", 5353) == ("127.0.0.1", 53)


@pytest.mark.parametrize(
    "host, table, chain",
    [
        ("a.example", {}, []),
        ("a.example", {"a.example.": ["b.example."], "b.example": ["c.example"]}, ["b.example", "c.example"]),
        ("A.Example", {"a.example": ["B.EXAMPLE."]}, ["b.example"]),
        ("a.example", {"a.example": ["b.example"], "b.example": ["a.example"]}, ["b.example"]),  # loop
        ("a.example", {"a.example": ["a.example", "b.example"]}, ["b.example"]),  # self-alias skipped
        ("x.example", {f"n{i}.example": [f"n{i + 1}.example"] for i in range(40)} | {"x.example": ["n0.example"]},
         ["n0.example"] + [f"n{i}.example" for i in range(1, 16)]),  # limit 16
    ],
)
def test_cname_chain(host, table, chain):
    assert cname_chain(host, table) == chain


def test_dns_answer_serialises():
    a = DnsAnswer("a.example", ("b.example",), ("192.0.2.1",), "127.0.0.1:53", None)
    assert a.to_json() == {"host": "a.example", "cnames": ["b.example"], "addresses": ["192.0.2.1"],
                           "server": "127.0.0.1:53", "error": None}


# -- CNAME answers from DNS flows in a capture --------------------------------------

def test_dns_flow_in_capture_feeds_cname_evidence(dnsmasq, tmp_path, locator):
    """A real dnsmasq answer, wrapped in a mitmproxy DNS flow and saved as a
    capture, read back by privaudit's source stage: its CNAME records, chained,
    give the Locator the same evidence as a resolved look-up."""
    from mitmproxy import dns as mdns
    from mitmproxy import io as mio
    from mitmproxy.test import tflow

    from privaudit.source import read_exchanges

    query = dns.message.make_query("api.chatapp-test.example.", "A")
    response = dns.query.udp(query, "127.0.0.1", port=dnsmasq, timeout=2)
    message = getattr(mdns, "DNSMessage", None) or mdns.Message  # renamed in mitmproxy 12
    flow = tflow.tdnsflow()
    flow.request = message.unpack(query.to_wire())
    flow.response = message.unpack(response.to_wire())
    capture = tmp_path / "dns.mitm"
    with capture.open("wb") as f:
        mio.FlowWriter(f).add(flow)

    exchanges = list(read_exchanges([capture]))
    assert [ex.kind for ex in exchanges] == ["dns"]
    table: dict[str, list[str]] = {}
    for rec in exchanges[0].dns:
        if rec.type == "CNAME":
            table.setdefault(rec.name, []).append(rec.value)
    chain = cname_chain("api.chatapp-test.example", table)
    assert chain == ["edge.chatapp-test.example", "api.chatapp-test.example.volcgslb.com"]

    info = locator.describe("api.chatapp-test.example", ["127.0.0.1"], cnames=chain)
    assert info.jurisdictions == ("CN",)
    cname = [e for e in info.evidence if e.kind == "cname"]
    assert [e.country for e in cname] == [None, "CN"]
    assert not any("resolved at audit time" in e.detail for e in cname)
