"""The recorder's fast serialiser writes exactly mitmproxy's own flow-file
records (on whichever mitmproxy version runs the tests: CI runs 11 and 12),
and falls back to mitmproxy's writer where it cannot be sure."""

from __future__ import annotations

import io as pyio
import logging

import pytest
import trustme
from mitmproxy import certs, http
from mitmproxy import io as mio
from mitmproxy.io import tnetstring
from mitmproxy.test import tflow

from privaudit.capture import flowwrite as fw


def theirs(f) -> bytes:
    buf = pyio.BytesIO()
    mio.FlowWriter(buf).add(f)
    return buf.getvalue()


def post_flow(n: int = 2000):
    f = tflow.tflow(resp=True)
    f.request.method = "POST"
    f.request.headers["content-type"] = "application/json"
    f.request.content = b'{"email":"tester.one@example.org","pad":"' + b"x" * n + b'"}'
    return f


def tls_flow():
    f = tflow.tflow(resp=True)
    f.request.scheme = "https"
    cert = certs.Cert.from_pem(trustme.CA().issue_cert("klink.example.com").cert_chain_pems[0].bytes())
    f.server_conn.certificate_list = [cert]
    f.server_conn.alpn = b"h2"
    f.server_conn.alpn_offers = [b"h2", b"http/1.1"]
    f.server_conn.cipher_list = ["TLS_AES_128_GCM_SHA256"]
    f.server_conn.via = ("http", ("upstream.example", 8080))
    f.client_conn.mitmcert = cert
    f.client_conn.sni = "klink.example.com"
    return f


def odd_flow():
    f = tflow.tflow(resp=True, err=True)
    f.metadata["privaudit_streamed"] = {"response": {"bytes": 18, "kept": 10, "truncated": True}}
    f.metadata["n"] = [1, 2.5, None, True, False, -3, (1, "x")]
    f.comment = "ünïcode comment\n"
    f.marked = ":red_circle:"
    f.is_replay = "request"
    f.request.headers["x-bytes"] = "\xff"
    f.response.trailers = http.Headers(grpc_status="0")
    f.request.content = None  # streamed, nothing kept
    f.server_conn.peername = None
    f.server_conn.timestamp_start = 1700000000  # an int where a float is declared
    return f


def message_edges_flow():
    f = tflow.tflow(resp=True)
    f.request.timestamp_start = 1700000000  # an int where a float is declared
    f.request.timestamp_end = None
    f.request.http_version = "HTTP/2.0"
    f.request.headers.fields = ((b"a", b"1"), (b"A", b""), (b"x-long", b"v" * 300))
    f.request.trailers = http.Headers()  # empty, not None
    f.response.headers.fields = ()
    f.response.content = b""
    f.response.reason = b"\xff not utf-8"
    return f


def modified_flow():
    f = tflow.tflow(resp=True)
    f.backup()
    f.request.path = "/changed"
    return f


FLOWS = {
    "post": post_flow,
    "get without response": lambda: tflow.tflow(),
    "error": lambda: tflow.tflow(err=True),
    "tls": tls_flow,
    "odd values": odd_flow,
    "modified (backup)": modified_flow,
    "message edge cases": message_edges_flow,
    "websocket": tflow.twebsocketflow,
    "tcp": tflow.ttcpflow,
    "udp": tflow.tudpflow,
    "dns": tflow.tdnsflow,
    "empty body": lambda: post_flow(0),
}


@pytest.mark.parametrize("name", FLOWS)
def test_records_are_mitmproxys_byte_for_byte(name):
    f = FLOWS[name]()
    assert fw.record(f) == theirs(f)
    assert fw.RecordWriter()(f) == theirs(f)


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -7, 2**70, 1.5, -0.0, 1e100, b"", b"\x00:,", "", "é;", [], (), [1, [2, (3,)]],
     {}, {"a": 1, "b": {"c": b"d"}, "e": [None]}, {b"k": 1}],
)
def test_tnetstrings_are_mitmproxys(value):
    assert fw.dumps(value) == tnetstring.dumps(value)


def test_a_value_mitmproxy_cannot_write_fails_the_same_way():
    with pytest.raises(ValueError):
        fw.dumps({"x": object()})
    f = tflow.tflow(resp=True)
    f.metadata["x"] = object()
    with pytest.raises(Exception):
        theirs(f)
    with pytest.raises(Exception):
        fw.RecordWriter()(f)


def test_a_difference_switches_to_mitmproxys_writer_for_good(monkeypatch, caplog):
    w = fw.RecordWriter()
    f = post_flow()
    assert w(f) == theirs(f) and w.fast
    monkeypatch.setattr(fw, "record", lambda flow: b"0:~")
    with caplog.at_level(logging.WARNING):
        assert w(f) == theirs(f)
    assert not w.fast and "differs" in caplog.text
    monkeypatch.undo()
    assert w(f) == theirs(f) and not w.fast


def test_records_read_back_with_mitmproxys_reader(tmp_path):
    flows = [f() for f in FLOWS.values()]
    path = tmp_path / "flows.mitm"
    path.write_bytes(b"".join(fw.record(f) for f in flows))
    with open(path, "rb") as fh:
        back = list(mio.FlowReader(fh).stream())
    assert [b.id for b in back] == [f.id for f in flows]
    assert back[0].request.content == flows[0].request.content


def test_a_connection_changed_between_flows_is_written_as_it_is_now():
    first, second = post_flow(), post_flow()
    second.client_conn, second.server_conn = first.client_conn, first.server_conn  # one keep-alive connection
    assert fw.record(first) == theirs(first)
    assert fw.record(second) == theirs(second)  # remembered bytes, still right
    first.server_conn.timestamp_end = 1700000099.5
    first.server_conn.alpn_offers.append(b"h2")  # changed in place
    first.client_conn.certificate_list.append(certs.Cert.from_pem(
        trustme.CA().issue_cert("klink.example.com").cert_chain_pems[0].bytes()))
    assert fw.record(second) == theirs(second)
    first.client_conn.certificate_list.clear()
    assert fw.record(second) == theirs(second)


def test_remembered_header_lines_are_written_as_they_are_now(monkeypatch):
    monkeypatch.setattr(fw, "PAIRS_SIZE", 4)  # full after a few lines: cleared and filled again
    for i in range(12):
        f = post_flow(i)
        f.request.headers["x-n"] = str(i % 3)  # some lines repeat, some do not
        f.request.headers.fields = f.request.headers.fields + ((b"X-N", b"\xff"),)
        f.response.headers["date"] = f"Sat, 28 Nov 2026 16:00:{i:02d} GMT"
        assert fw.record(f) == theirs(f)
    assert len(fw._PAIRS) <= 4
