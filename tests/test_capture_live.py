"""The live analysis, the stream keeper and the recorder's bookkeeping, under
mitmproxy's own addon test harness (real flows from mitmproxy.test.tflow)."""

from __future__ import annotations

import contextlib
import errno
import io as pyio
import json
import time

import pytest
from mitmproxy import io
from mitmproxy.addons.view import View
from mitmproxy.test import taddons, tflow

from privaudit.audit import build
from privaudit.capture import addon as pa
from privaudit.capture.live import LiveAnalysis, comment_text


def email_flow(i: int = 0):
    f = tflow.tflow(resp=True)
    f.request.host = "klink.example.com"
    f.request.content = json.dumps({"email": "tester.one@example.org", "n": i}).encode()
    f.request.headers["content-type"] = "application/json"
    return f


class Boom:
    def scan(self, ex):
        raise RuntimeError("analyser broke")


@pytest.fixture(scope="module")
def audit_factory():
    build()  # load the rules once, so each test's build is warm

    def make(detector=None):
        def factory():
            a = build()
            if detector is not None:
                a.detector = detector
            return a

        return factory

    return make


def run_worker(live: LiveAnalysis) -> None:
    """What the worker thread does, here in the test's thread: drain and stop."""
    live._stop.set()
    live._work(None, ())


def recorded(tmp_path, live: LiveAnalysis, flows):
    rec = pa.Recorder()
    live.attach(rec)
    with taddons.context(rec) as tctx:
        tctx.configure(rec, privaudit_flowfile=str(tmp_path / "flows.mitm"))
        for f in flows:
            rec.response(f)
        run_worker(live)
        doc = live._document()
        rec.done()
    return rec, doc


# --- live analysis ---------------------------------------------------------------

def test_every_recorded_flow_is_analysed_from_the_file(tmp_path, audit_factory):
    live = LiveAnalysis(audit_factory())
    rec, doc = recorded(tmp_path, live, [email_flow(i) for i in range(3)])
    assert live.analysed == 3 and doc["flows_analyzed"] == 3
    assert [f["flow_index"] for f in doc["findings"] if f["category"] == "email"] == [0, 1, 2]
    assert doc["inputs"][0]["flows"] == 3 and doc["inputs"][0]["format"] == "mitm"


def test_a_full_queue_defers_flows_and_none_is_dropped(tmp_path, audit_factory):
    live = LiveAnalysis(audit_factory(), queue_size=2)
    rec, doc = recorded(tmp_path, live, [email_flow(i) for i in range(7)])
    assert live.deferred_total == 5
    assert live.analysed == 7 and doc["flows_analyzed"] == 7
    idx = [f["flow_index"] for f in doc["findings"] if f["category"] == "email"]
    assert idx == sorted(idx) == list(range(7))  # deferred flows analysed later, reported in order


def test_an_analyser_that_raises_is_counted_not_raised(tmp_path, audit_factory):
    live = LiveAnalysis(audit_factory(Boom()))
    rec, doc = recorded(tmp_path, live, [email_flow(i) for i in range(4)])
    assert rec.flows_written == 4
    assert doc["coverage"]["analysis_errors"] == 4
    assert live.counters()["analysis_errors"] == 4
    assert doc["findings"] == []


def test_a_record_that_cannot_be_read_back_is_an_analysis_error(tmp_path, audit_factory):
    live = LiveAnalysis(audit_factory())
    live.build_audit = audit_factory()
    live.offer(0, "x", None, b"this is not a flow")
    run_worker(live)
    assert live.read_errors == 1 and live.audit.analysis_errors == 1
    assert "could not be read back" in live.audit.warnings[0]


def test_rules_that_fail_to_load_switch_live_analysis_off_and_say_why(tmp_path):
    def broken():
        raise ValueError("bad rule file rules/x.yaml:3")

    live = LiveAnalysis(broken)
    live.offer(0, "x", None, b"")
    run_worker(live)
    assert live.audit is None and "bad rule file" in live.build_error
    assert live.finish() is None  # nothing written; `privaudit analyze` works from the flow file


def test_without_a_flow_file_flows_are_analysed_from_memory(audit_factory):
    live = LiveAnalysis(audit_factory())
    rec = pa.Recorder()
    live.attach(rec)
    with taddons.context(rec):
        rec.response(email_flow())
        run_worker(live)
    assert live.analysed == 1 and rec.flows_written == 0


def test_findings_are_attached_to_flows_mitmweb_still_shows():
    view = View()
    live = LiveAnalysis()
    with taddons.context(view) as tctx:
        shown, gone = email_flow(), email_flow()
        view.add([shown])
        live._master = tctx.master
        found = [{"category": "email", "severity": "high", "location": "request.body $.email", "rule": "pii.email"}]
        live._annotate(shown.id, found)
        live._annotate(gone.id, found)  # not in the view (cleared): nothing to do, nothing raised
    assert shown.marked == ":red_circle:"
    assert "email (high) request.body $.email" in shown.comment
    assert gone.comment == "" and gone.marked == ""


@pytest.mark.parametrize(
    "n, last_line",
    [(1, "- email (high) request.body $.email [pii.email]"), (12, "- ... and 4 more")],
)
def test_comment_text(n, last_line):
    found = [{"category": "email", "severity": "high", "location": "request.body $.email", "rule": "pii.email"}] * n
    text = comment_text(found)
    assert text.splitlines()[0] == f"privaudit: {n} finding{'s' if n > 1 else ''}"
    assert text.splitlines()[-1] == last_line


def test_dashboard_counters_follow_the_analysis(tmp_path, audit_factory):
    live = LiveAnalysis(audit_factory())
    live._own_regs = frozenset({"example.com"})
    other = email_flow()
    other.request.host = "gator.volces.com"
    recorded(tmp_path, live, [email_flow(), other])
    snap = live.snapshot()
    assert snap["categories"]["email"] == 2
    assert [(p["domain"], p["party"]) for p in snap["parties"]] == [("example.com", "first"), ("volces.com", "third")]
    assert snap["flows_recorded"] == 2 and snap["flows_analysed"] == 2


# --- streamed bodies -----------------------------------------------------------------

def sse_flow(ctype="text/event-stream; charset=utf-8"):
    f = tflow.tflow(resp=True)
    f.response.headers["content-type"] = ctype
    f.response.raw_content = None
    return f


@pytest.mark.parametrize(
    "ctype, streamed",
    [
        ("text/event-stream", True),
        ("text/event-stream; charset=utf-8", True),
        ("application/x-ndjson", True),
        ("application/json", False),
        ("text/html", False),
    ],
)
def test_stream_keeper_streams_answers_that_arrive_piece_by_piece(ctype, streamed):
    keeper = pa.StreamKeeper()
    with taddons.context(keeper):
        f = sse_flow(ctype)
        keeper.responseheaders(f)
    assert isinstance(f.response.stream, pa.KeptBody) is streamed


def test_kept_body_passes_chunks_through_and_keeps_a_bounded_copy():
    f = sse_flow()
    keep = pa.KeptBody(f, f.response, "response", cap=10)
    assert [keep(c) for c in (b"data: 1\n\n", b"data: 2\n\n")] == [b"data: 1\n\n", b"data: 2\n\n"]
    assert keep(b"") == b""
    assert f.response.raw_content == b"data: 1\n\nd"
    assert f.metadata["privaudit_streamed"]["response"] == {"bytes": 18, "kept": 10, "truncated": True}


def test_mitmproxys_own_streaming_keeps_a_copy_too():
    keeper = pa.StreamKeeper()
    with taddons.context(keeper):
        f = sse_flow("application/octet-stream")
        f.response.stream = True  # stream_large_bodies decided so
        f.request.stream = True
        keeper.requestheaders(f)
        keeper.responseheaders(f)
    assert isinstance(f.request.stream, pa.KeptBody) and isinstance(f.response.stream, pa.KeptBody)


def test_a_stream_cut_short_is_recorded_with_what_arrived(tmp_path):
    rec = pa.Recorder()
    with taddons.context(rec) as tctx:
        tctx.configure(rec, privaudit_flowfile=str(tmp_path / "flows.mitm"))
        f = sse_flow()
        f.response.stream = pa.KeptBody(f, f.response, "response", cap=1000)
        f.response.stream(b"data: first\n\n")
        rec.error(f)  # the client went away mid-stream
        rec.done()
    (got,) = list(io.FlowReader(open(tmp_path / "flows.mitm", "rb")).stream())
    assert got.response.content == b"data: first\n\n"
    assert got.metadata["privaudit_streamed"]["response"]["truncated"] is False


# --- recorder bookkeeping ---------------------------------------------------------------

def test_a_damaged_tail_is_moved_aside_so_new_flows_stay_readable(tmp_path):
    path = tmp_path / "flows.mitm"
    first = tflow.tflow(resp=True)
    buf = pyio.BytesIO()
    io.FlowWriter(buf).add(first)
    path.write_bytes(buf.getvalue() + b"12345:cut sh")  # a crash in the middle of a record
    rec = pa.Recorder()
    with taddons.context(rec) as tctx:
        tctx.configure(rec, privaudit_flowfile=str(path))
        assert rec.existing == 1 and rec.count == 1
        second = tflow.tflow(resp=True)
        rec.response(second)
        rec.done()
    assert [f.id for f in io.FlowReader(open(path, "rb")).stream()] == [first.id, second.id]
    (aside,) = tmp_path.glob("flows.mitm.damaged-*")
    assert aside.read_bytes() == b"12345:cut sh"


@pytest.mark.parametrize(
    "code, words",
    [(errno.ENOSPC, "disk is full"), (errno.EACCES, "no permission"), (errno.EIO, "not recorded")],
)
def test_write_errors_are_explained(code, words):
    assert words in pa.explain_os_error(OSError(code, "x"))


@pytest.mark.parametrize(
    "given, name",
    [("1", "launched"), ("3", "consent given"), ("5", "sent prompt"), ("6", "6"),
     ("  opened   settings ", "opened settings"), ("x" * 100, "x" * 80)],
)
def test_phase_names(given, name):
    assert pa.phase_name(given) == name


def test_phase_command_records_standard_and_free_phases(tmp_path):
    s = pa.Session()
    with taddons.context(s) as tctx:
        tctx.configure(s, privaudit_meta_file=str(tmp_path / "meta.json"), privaudit_tester="Kim", privaudit_app="DeepSeek")
        tctx.command(s.phase, "3")
        tctx.command(s.phase, "opened the settings")
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert [p["name"] for p in meta["phases"]] == ["consent given", "opened the settings"]
    assert meta["audit"] == {"tester": "Kim", "device": None, "app": "DeepSeek", "app_version": None}
    assert all(p["timestamp"].endswith("Z") for p in meta["phases"])


def test_a_stuck_analysis_is_given_up_at_the_end_not_waited_for_forever(tmp_path, audit_factory, monkeypatch):
    import threading

    from privaudit.capture import live as lv

    release = threading.Event()

    class Stuck:
        def scan(self, ex):
            release.wait(30)
            return []

    monkeypatch.setattr(lv, "STALL_SECONDS", 0.3)
    live = LiveAnalysis(audit_factory(Stuck()))
    live.findings_path = tmp_path / "findings.json"
    live._thread = threading.Thread(target=live._work, args=(None, ()), daemon=True)
    live._thread.start()
    for _ in range(300):  # the rules are loaded: from now on only the stuck flow holds it up
        if live.audit is not None:
            break
        time.sleep(0.05)
    live.offer(0, "x", None, _serialised(email_flow()))
    assert live.finish() is None  # given up: no half-made document
    assert not live.findings_path.exists()
    release.set()


def _serialised(f) -> bytes:
    buf = pyio.BytesIO()
    io.FlowWriter(buf).add(f)
    return buf.getvalue()


def test_a_worker_that_cannot_read_the_flow_file_writes_no_partial_document(tmp_path, audit_factory, monkeypatch):
    from privaudit.capture import live as lv

    real_open = lv.os.open

    def no_read(path, flags, *a):
        if not flags & (lv.os.O_WRONLY | lv.os.O_RDWR):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *a)

    live = LiveAnalysis(audit_factory())
    live.findings_path = tmp_path / "findings.json"
    monkeypatch.setattr(lv.os, "open", no_read)
    rec, _ = recorded(tmp_path, live, [email_flow()])
    monkeypatch.undo()
    assert rec.flows_written == 1 and "Permission denied" in live.crashed
    assert live.finish() is None and not live.findings_path.exists()
    assert live.counters()["stopped"] == live.crashed


# --- WebSocket flows still open --------------------------------------------------------

def ws_flow():
    f = tflow.twebsocketflow()
    f.request.host = "chat.example.com"
    return f


def test_an_open_websocket_is_kept_in_a_checkpoint_a_kill_cannot_lose(tmp_path):
    from privaudit.source import read_exchanges

    rec = pa.Recorder()
    with taddons.context(rec) as tctx:
        tctx.configure(rec, privaudit_flowfile=str(tmp_path / "flows.mitm"))
        done = tflow.tflow(resp=True)
        rec.response(done)
        ws = ws_flow()
        rec.requestheaders(ws)
        rec.websocket_start(ws)
        rec.websocket_message(ws)
        assert rec.open_path == tmp_path / "flows.open.mitm" and mode(rec.open_path) == 0o600
        # killed here: the folder still holds both flows, the open one with its messages
        got = list(read_exchanges([tmp_path]))
        assert [e.kind for e in got] == ["http", "http"] and len(got[1].websocket) == len(ws.websocket.messages) > 0
        rec.websocket_end(ws)
        assert not rec.open_path.exists()
        assert [f.id for f in read_flows(tmp_path / "flows.mitm")] == [done.id, ws.id]
        rec.done()


def test_checkpoints_are_rewritten_at_most_every_interval(tmp_path, monkeypatch):
    writes = []
    monkeypatch.setattr(pa, "replace_private", lambda path, data: writes.append(len(data)))
    rec = pa.Recorder()
    with taddons.context(rec) as tctx:
        tctx.configure(rec, privaudit_flowfile=str(tmp_path / "flows.mitm"))
        ws = ws_flow()
        rec.websocket_start(ws)
        for _ in range(50):
            rec.websocket_message(ws)
        assert len(writes) == 1  # no event loop here to write the rest later: the next one is due in 2 s
        rec.done()


def test_a_killed_sessions_open_flows_join_the_flow_file_on_resume(tmp_path):
    first, ws = tflow.tflow(resp=True), ws_flow()
    with open(tmp_path / "flows.mitm", "wb") as f:
        io.FlowWriter(f).add(first)
    with open(tmp_path / "flows.open.mitm", "wb") as f:
        io.FlowWriter(f).add(ws)
    (tmp_path / ".flows.open.mitm.123.tmp").write_bytes(b"half")
    rec = pa.Recorder()
    with taddons.context(rec) as tctx:
        tctx.configure(rec, privaudit_flowfile=str(tmp_path / "flows.mitm"))
        assert rec.existing == 2 and rec.count == 2
        rec.done()
    assert [f.id for f in read_flows(tmp_path / "flows.mitm")] == [first.id, ws.id]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flows.mitm"]


def read_flows(path):
    with open(path, "rb") as f:
        return list(io.FlowReader(f).stream())


def mode(path) -> int:
    import os
    import stat

    return stat.S_IMODE(os.stat(path).st_mode)


# --- the scanner process: follows the flow file, keeps the audit ---------------------------

class FakeConn:
    """The scanner's end of the pipe: "finish" once it has looked ``polls`` times."""

    def __init__(self, finish: dict, polls: int = 1):
        self.sent: list = []
        self.finish = finish
        self.polls = polls

    def send(self, msg):
        self.sent.append(msg)

    def poll(self, timeout=0):
        self.polls -= 1
        return self.polls <= 0 and self.finish is not None

    def recv(self):
        msg, self.finish = ("finish", self.finish), None
        return msg


def scanner_run(path, written: int, end: int, annotate=False, **finish):
    from privaudit.capture.live import _Scanner

    conn = FakeConn({"end": end, "flows": None, "phases": [{"name": "launched", "timestamp": "x"}], **finish})
    _Scanner(conn, str(path), [written, 0], {"annotate": annotate, "own_regs": ["example.com"]}).run()
    kinds = [m[0] for m in conn.sent]
    assert kinds[0] == "ready" and kinds[-1] == "done", kinds
    return conn.sent


def test_the_scanner_reads_only_whole_records_the_recorder_has_marked(tmp_path):
    path = tmp_path / "flows.mitm"
    records = [_serialised(email_flow(i)) for i in range(3)]
    path.write_bytes(b"".join(records) + records[0][:40])  # a record being written
    two = len(records[0]) + len(records[1])
    sent = scanner_run(path, written=two, end=two, findings_path=str(tmp_path / "findings.json"))
    done = sent[-1][1]
    assert done["counters"]["flows_analysed"] == 2 and done["problem"] is None
    doc = json.loads((tmp_path / "findings.json").read_text())
    assert doc["flows_analyzed"] == 2 and doc["phases"][0]["name"] == "launched"
    assert sorted({f["flow_index"] for f in doc["findings"] if f["category"] == "email"}) == [0, 1]
    assert mode(tmp_path / "findings.json") == 0o600
    stats = [m[1] for m in sent if m[0] == "stats"][-1]
    assert stats["stats"]["categories"]["email"] == 2 and stats["notes"] == []  # no view to annotate: no notes


def test_the_scanner_reads_a_record_longer_than_its_chunk_and_sends_notes_when_asked(tmp_path, monkeypatch):
    from privaudit.capture import live as lv

    monkeypatch.setattr(lv, "SCANNER_CHUNK", 64)
    path = tmp_path / "flows.mitm"
    flows = [email_flow(i) for i in range(2)]
    path.write_bytes(b"".join(_serialised(f) for f in flows))
    size = path.stat().st_size
    sent = scanner_run(path, written=size, end=size, annotate=True)
    assert sent[-1][1]["counters"]["flows_analysed"] == 2
    notes = [n for m in sent if m[0] in ("stats", "done") for n in m[1].get("notes", [])]
    assert [n[0] for n in notes] == [f.id for f in flows]
    assert all(any(d["category"] == "email" for d in n[1]) for n in notes)


def test_a_damaged_record_is_an_analysis_error_not_the_end(tmp_path):
    path = tmp_path / "flows.mitm"
    good = _serialised(email_flow())
    path.write_bytes(b"3:abc," + good)  # a well-framed record that is not a flow
    size = path.stat().st_size
    sent = scanner_run(path, written=size, end=size)
    c = sent[-1][1]["counters"]
    assert c["flows_analysed"] == 1 and c["read_errors"] == 1 and c["analysis_errors"] == 1


@contextlib.contextmanager
def recording(tmp_path):
    """A live analysis attached to a recorder writing tmp_path/flows.mitm (findings to tmp_path/findings.json)."""
    live = LiveAnalysis()
    rec = pa.Recorder()
    live.attach(rec)
    live.findings_path = tmp_path / "findings.json"
    with taddons.context(rec) as tctx:
        tctx.configure(rec, privaudit_flowfile=str(tmp_path / "flows.mitm"))
        yield live, rec


def test_the_scanner_process_analyses_the_recorded_flows_and_writes_the_document(tmp_path):
    with recording(tmp_path) as (live, rec):
        rec.response(email_flow(0))
        live._start_scanner(None, ())
        for i in range(1, 4):
            rec.response(email_flow(i))
        rec.done()
        doc = live.finish()
    assert live.problem is None and doc == {"flows_analyzed": 4, "findings": doc["findings"], "path": str(live.findings_path)}
    assert live.analysed == 4 and live.audit.analysis_errors == 0 and live.counters()["queued"] == 0
    full = json.loads(live.findings_path.read_text())
    assert [f["flow_index"] for f in full["findings"] if f["category"] == "email"] == [0, 1, 2, 3]
    assert full["tool"]["rules_digest"] == live.rules_digest and len(live.rules_digest) == 64
    assert live.snapshot()["categories"]["email"] == 4
    assert not live._proc.is_alive()


def test_the_scanner_process_ends_when_the_proxy_is_gone(tmp_path):
    with recording(tmp_path) as (live, rec):
        live._start_scanner(None, ())
        proc = live._proc
        live._conn.close()  # what the kernel does to the pipe when the proxy is killed
        proc.join(60)
        assert not proc.is_alive()
        rec.done()


def test_a_scanner_process_that_dies_is_reported_and_writes_nothing(tmp_path):
    with recording(tmp_path) as (live, rec):
        rec.response(email_flow())
        live._start_scanner(None, ())
        live._proc.kill()
        rec.done()
        assert live.finish() is None
    assert "ended unexpectedly" in live.problem and live.counters()["stopped"]
    assert not live.findings_path.exists()


def test_a_busy_proxy_gets_the_scanner_in_small_batches(tmp_path, monkeypatch):
    from privaudit.capture import live as lv

    path = tmp_path / "flows.mitm"
    path.write_bytes(b"".join(_serialised(email_flow(i)) for i in range(20)))
    size = path.stat().st_size
    written = [size, 0]
    scanner = lv._Scanner(FakeConn(None), str(path), written, {})
    scanner.audit = build()
    scanner._rate_at = (time.monotonic() - 1.0, 0)
    written[1] = 1000  # a thousand flows in the last second
    assert scanner._busy()
    fd = lv.os.open(path, lv.os.O_RDONLY)
    try:
        assert scanner._step(fd, size, lv.BUSY_BATCH) and scanner.analysed == lv.BUSY_BATCH
        assert scanner._step(fd, size) and scanner.analysed == 20  # traffic over: the rest at once
    finally:
        lv.os.close(fd)
