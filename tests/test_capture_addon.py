"""The recorder addon under mitmproxy's own addon test harness."""

from __future__ import annotations

import errno
import json
import os
import stat

import pytest
import trustme
from mitmproxy import certs, exceptions, hooks, io
from mitmproxy.test import taddons, tflow

import privaudit.capture as capture
from privaudit.capture import addon as pa


def read_flows(path):
    with open(path, "rb") as f:
        return list(io.FlowReader(f).stream())


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def recorder(tmp_path):
    rec = pa.Recorder()
    with taddons.context(rec) as tctx:
        tctx.configure(rec, privaudit_flowfile=str(tmp_path / "audit" / "flows.mitm"))
        yield rec
        rec.done()


# --- parse_domains: a table of good and near-miss values ----------------------

@pytest.mark.parametrize(
    "specs, expected",
    [
        (["deepseek.com"], ("deepseek.com",)),
        (["DeepSeek.COM."], ("deepseek.com",)),
        (["deepseek.com, *.deepseek.com"], ("deepseek.com", "*.deepseek.com")),
        (["a.example", "a.example"], ("a.example",)),
        (["", " , "], ()),
        (["xn--9n2bp8q.example"], ("xn--9n2bp8q.example",)),
    ],
)
def test_parse_domains(specs, expected):
    assert pa.parse_domains(specs) == expected


@pytest.mark.parametrize(
    "bad",
    ["https://deepseek.com", "deepseek.com/path", "dee pseek.com", "-bad.example", "a..b", "*", "deepseek.com:443"],
)
def test_parse_domains_rejects_with_an_example(bad):
    with pytest.raises(ValueError, match="expected e.g."):
        pa.parse_domains([bad])


# --- recording ------------------------------------------------------------------

def test_every_kind_of_completed_flow_is_appended(recorder):
    http_flow = tflow.tflow(resp=True)
    err_flow = tflow.tflow(err=True)
    ws_flow = tflow.twebsocketflow()
    tcp_flow = tflow.ttcpflow()
    tcp_err = tflow.ttcpflow(err=True)
    udp_flow = tflow.tudpflow()
    dns_flow = tflow.tdnsflow(resp=True)
    dns_err = tflow.tdnsflow(err=True)

    recorder.response(http_flow)
    recorder.error(err_flow)
    recorder.response(ws_flow)  # not complete yet: written at websocket_end
    recorder.websocket_end(ws_flow)
    recorder.tcp_end(tcp_flow)
    recorder.tcp_error(tcp_err)
    recorder.udp_end(udp_flow)
    recorder.dns_response(dns_flow)
    recorder.dns_error(dns_err)

    got = read_flows(recorder.path)
    assert [f.id for f in got] == [
        f.id for f in (http_flow, err_flow, ws_flow, tcp_flow, tcp_err, udp_flow, dns_flow, dns_err)
    ]
    assert got[2].websocket is not None and got[2].websocket.messages
    assert recorder.flows_written == 8
    assert recorder.write_errors == 0


def test_flow_file_and_folder_are_private(recorder):
    recorder.response(tflow.tflow(resp=True))
    assert mode(recorder.path) == 0o600
    assert mode(recorder.path.parent) == 0o700


def test_existing_file_is_appended_to_and_tightened(tmp_path):
    path = tmp_path / "flows.mitm"
    first = tflow.tflow(resp=True)
    with open(path, "wb") as f:
        io.FlowWriter(f).add(first)
    os.chmod(path, 0o644)
    rec = pa.Recorder()
    with taddons.context(rec) as tctx:
        tctx.configure(rec, privaudit_flowfile=str(path))
        second = tflow.tflow(resp=True)
        rec.response(second)
        rec.done()
    assert [f.id for f in read_flows(path)] == [first.id, second.id]
    assert mode(path) == 0o600


def test_server_certificate_and_peername_survive(recorder):
    ca = trustme.CA()
    leaf = ca.issue_cert("chat.deepseek.com")
    f = tflow.tflow(resp=True)
    f.server_conn.certificate_list = [certs.Cert.from_pem(leaf.cert_chain_pems[0].bytes())]
    f.server_conn.peername = ("203.0.113.7", 443)
    f.server_conn.tls_version = "TLSv1.3"
    recorder.response(f)
    (got,) = read_flows(recorder.path)
    assert got.server_conn.peername == ("203.0.113.7", 443)
    assert got.server_conn.certificate_list[0].altnames == f.server_conn.certificate_list[0].altnames
    assert got.server_conn.certificate_list[0].fingerprint() == f.server_conn.certificate_list[0].fingerprint()


def test_flows_still_open_at_shutdown_are_written(tmp_path):
    path = tmp_path / "flows.mitm"
    rec = pa.Recorder()
    with taddons.context(rec) as tctx:
        tctx.configure(rec, privaudit_flowfile=str(path))
        pending = tflow.tflow()
        rec.requestheaders(pending)
        tcp = tflow.ttcpflow()
        rec.tcp_start(tcp)
        rec.tcp_end(tcp)
        rec.done()
    assert [f.id for f in read_flows(path)] == [tcp.id, pending.id]


def test_write_error_is_counted_not_raised_and_file_stays_readable(recorder, monkeypatch, caplog):
    good = tflow.tflow(resp=True)
    recorder.response(good)

    real_write = os.write

    def disk_full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))  # a short write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pa.os, "write", disk_full)
    recorder.response(tflow.tflow(resp=True))
    recorder.tcp_end(tflow.ttcpflow())
    monkeypatch.undo()

    assert recorder.write_errors == 2
    assert "No space left" in recorder.last_error
    assert sum("could not record" in r.getMessage() for r in caplog.records) == 1  # logged once, not per flow

    after = tflow.tflow(resp=True)
    recorder.response(after)  # the disk has room again: recording goes on
    assert [f.id for f in read_flows(recorder.path)] == [good.id, after.id]


def test_no_flowfile_records_nothing(tmp_path):
    rec = pa.Recorder()
    with taddons.context(rec) as tctx:
        tctx.configure(rec, privaudit_flowfile=None)
        rec.response(tflow.tflow(resp=True))
    assert rec.flows_written == 0 and rec.write_errors == 0


# --- options --------------------------------------------------------------------

def test_unopenable_flowfile_is_an_options_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    rec = pa.Recorder()
    with taddons.context(rec) as tctx:
        with pytest.raises(exceptions.OptionsError, match="privaudit_flowfile"):
            tctx.configure(rec, privaudit_flowfile=str(blocker / "flows.mitm"))


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("privaudit_own_domains", ["https://deepseek.com"], "privaudit_own_domains"),
        ("privaudit_canaries", "/nonexistent/canaries.yaml", "privaudit_canaries: cannot read"),
    ],
)
def test_bad_session_options_are_options_errors(option, value, message):
    s = pa.Session()
    with taddons.context(s) as tctx:
        with pytest.raises(exceptions.OptionsError, match=message):
            tctx.configure(s, **{option: value})


def test_session_meta_is_written_at_start_and_end(tmp_path):
    rec = pa.Recorder()
    s = pa.Session(rec)
    meta = tmp_path / "meta.json"
    with taddons.context(rec, s) as tctx:
        tctx.configure(rec, privaudit_flowfile=str(tmp_path / "flows.mitm"))
        tctx.configure(s, privaudit_meta_file=str(meta), privaudit_own_domains=["DeepSeek.com"])
        s.running()
        started = json.loads(meta.read_text())
        assert started["capture"]["start"] and started["capture"]["end"] is None
        rec.response(tflow.tflow(resp=True))
        rec.done()
        s.done()
    doc = json.loads(meta.read_text())
    assert doc["capture"]["end"] is not None
    assert doc["flows_written"] == 1 and doc["write_errors"] == 0
    assert doc["own_domains"] == ["deepseek.com"]
    assert doc["flowfile"] == "flows.mitm"
    assert doc["tool"]["name"] == "privaudit" and doc["tool"]["mitmproxy"]
    assert mode(meta) == 0o600


def test_addon_path_is_a_loadable_mitmproxy_script():
    with taddons.context() as tctx:
        ns = tctx.script(capture.addon_path())  # the script's module, whose `addons` mitmproxy loads
    assert [type(a).__name__ for a in ns.addons] == ["Privaudit"]
    assert capture.addon_path().endswith("addon.py")
    # mitmproxy looks every hook up on the script's module too: present and None, it is skipped at once
    assert ns.request is None and ns.update is None and ns.client_connected is None
    assert not hasattr(ns, "add_log")  # mitmproxy warns about addons with this deprecated hook


def test_the_one_addon_has_every_hook_of_its_parts():
    p = pa.Privaudit()
    parts = (p.keeper, p.recorder, p.tls_failures, p.live, p.session)
    for name in hooks.all_hooks:
        if any(callable(getattr(part, name, None)) for part in parts):
            assert callable(getattr(p, name, None)), name
        else:  # a hook no part has must not cost mitmproxy a call for every flow
            assert not hasattr(p, name), name


def test_the_one_addon_records_flows_and_marks_phases(tmp_path):
    p = pa.Privaudit()
    flows, meta = tmp_path / "flows.mitm", tmp_path / "meta.json"
    with taddons.context(p) as tctx:
        tctx.configure(p, privaudit_flowfile=str(flows), privaudit_meta_file=str(meta), privaudit_live=False)
        f = tflow.tflow(resp=True)
        p.requestheaders(f)
        p.responseheaders(f)
        p.response(f)
        tctx.master.commands.call("privaudit.phase", "3")
        p.done()
    assert [g.id for g in read_flows(flows)] == [f.id]
    doc = json.loads(meta.read_text())
    assert [x["name"] for x in doc["phases"]] == ["consent given"]
    assert doc["flows_written"] == 1


def test_failed_fsync_loses_no_flow(recorder, monkeypatch):
    def no_sync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(pa.os, "fsync", no_sync)
    f = tflow.tflow(resp=True)
    recorder.response(f)
    recorder.flush()  # what the flusher thread does, at most a second later
    monkeypatch.undo()
    assert (recorder.flows_written, recorder.write_errors) == (1, 0)
    assert "Input/output error" in recorder.last_error
    assert [g.id for g in read_flows(recorder.path)] == [f.id]
