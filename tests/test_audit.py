"""The audit stage: the same document serially and in parallel, bounded memory, damage."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from privaudit import audit, parallel
from privaudit.errors import InputError

DATA = Path(__file__).parent / "data"
EVALSET = DATA / "evalset" / "evalset.mitm"
CANARIES = DATA / "evalset" / "canaries.yaml"
CORPUS = DATA / "mitmproxy-testdata"


def test_parallel_document_equals_serial(many_batches, stable):
    serial = audit.analyze([EVALSET], canaries_path=CANARIES, jobs=1)
    par = audit.analyze([EVALSET], canaries_path=CANARIES, jobs=2)
    assert serial["flows_analyzed"] > 100 and len(serial["findings"]) > 100
    assert stable(par) == stable(serial)


def test_the_last_batches_go_out_in_quarters_and_the_order_holds(monkeypatch, stable):
    """A pool run whose last batches are cut into quarters (parallel._pieces)
    still gives the serial document."""
    serial = audit.analyze([EVALSET], canaries_path=CANARIES, jobs=1)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "BATCH", 40)
    monkeypatch.setattr(parallel, "MAX_POOL_BATCH", 40)
    monkeypatch.setattr(parallel, "MIN_STEP", 2)
    sizes: list[int] = []
    real = parallel._pieces

    def pieces(*a):
        for p in real(*a):
            sizes.append(len(p))
            yield p

    monkeypatch.setattr(parallel, "_pieces", pieces)
    par = audit.analyze([EVALSET], canaries_path=CANARIES, jobs=2)
    assert stable(par) == stable(serial)
    assert sizes[0] == 40 and sizes.count(10) >= 4 and sum(sizes) == par["flows_analyzed"]


def test_the_last_batches_come_in_quarters():
    items = [(i, "mitmproxy", "x", b"r" * 100) for i in range(1000)]
    batches = list(parallel._batches(iter(items), 100))
    pieces = list(parallel._pieces(iter(batches), total=100 * 1000, tail=3))
    assert [it for p in pieces for it in p] == items
    sizes = [len(p) for p in pieces]
    assert sizes[:7] == [100] * 7 and set(sizes[7:]) == {25} and len(sizes) == 7 + 3 * 4
    # a capture that grew after its size was taken: past the size taken, its
    # end is unknown and batches stay whole
    grown = list(parallel._pieces(iter(batches), total=100 * 500, tail=3))
    assert [it for p in grown for it in p] == items
    assert [len(p) for p in grown][-5:] == [100] * 5


def test_findings_spill_to_disk_and_stream_out_identically(monkeypatch):
    small = audit.analyze([EVALSET], jobs=1)
    monkeypatch.setattr(audit.FindingSpool.__init__, "__defaults__", (10,))
    spilled = audit.analyze([EVALSET], jobs=1)
    assert isinstance(spilled["findings"], audit.FindingSpool) and spilled["findings"].spilled > 0
    a, b = io.StringIO(), io.StringIO()
    audit.dump_document({**small, "generated_at": None}, a)
    audit.dump_document({**spilled, "generated_at": None}, b)
    assert a.getvalue() == b.getvalue()
    assert json.loads(a.getvalue())["findings"] == small["findings"]


@pytest.mark.parametrize("count", [0, 1, 3, 4, 5, 9])
@pytest.mark.parametrize("block", [1, 2, 7, 1 << 20])
def test_spool_joined_is_its_lines_joined(count, block):
    """dump_document copies a spool's spilled lines in blocks: whatever the
    block size and wherever the lines end (in the file or in memory), the text
    is the lines joined, and awkward characters inside a value survive."""
    spool = audit.FindingSpool(limit=4)
    for i in range(count):
        spool.append({"i": i, "v": f"a\nb\r\u2028\u2029c{i}\x85 \\n"} if i % 2 else json.dumps({"i": i}))
    sep = ",\n    "
    assert "".join(spool.joined(sep, block=block)) == sep.join(spool.lines())
    spool.append({"after": True})  # still appendable after being read
    assert list(spool)[-1] == {"after": True} and len(spool) == count + 1


@pytest.mark.parametrize("jobs", [1, 2])
def test_damaged_flow_file_keeps_the_flows_before_the_damage(tmp_path, many_batches, jobs):
    data = EVALSET.read_bytes()
    cut = tmp_path / "cut.mitm"
    cut.write_bytes(data[: len(data) // 2])
    doc = audit.analyze([cut, CORPUS / "har_files" / "chrome.har"], jobs=jobs)
    assert any("damaged" in w and "cut.mitm" in w for w in doc["warnings"])
    (cut_info, har_info) = doc["inputs"]
    assert 0 < cut_info["flows"] < 1000 and har_info["flows"] == 3
    assert doc["flows_analyzed"] == cut_info["flows"] + 3
    assert max(f["flow_index"] for f in doc["findings"]) < doc["flows_analyzed"]


def test_unreadable_har_entry_is_skipped_and_numbering_stays_dense(tmp_path, many_batches, stable):
    har = json.loads((CORPUS / "har_files" / "chrome.har").read_text())
    har["log"]["entries"].insert(1, {"request": {"url": "x"}})  # no method: unreadable
    p = tmp_path / "x.har"
    p.write_text(json.dumps(har))
    doc = audit.analyze([p, EVALSET], jobs=2)
    assert doc["inputs"][0]["flows"] == 3
    assert any("HAR entry 1 skipped" in w for w in doc["warnings"])
    serial = audit.analyze([p, EVALSET], jobs=1)
    assert stable(doc) == stable(serial)


@pytest.mark.parametrize("jobs", [1, 2])
def test_runs_counted_apart_and_absorbed_equal_flows_added_one_by_one(tmp_path, monkeypatch, many_batches, jobs, stable):
    """Workers count runs of flows in Tallies the audit absorbs (shifting the
    flow indexes after an unreadable HAR entry). The document must be the one
    the audit makes when each flow is read and added by itself, in order,
    with analysis failures (their warnings name flow indexes) in the mix."""
    from privaudit.detect import Detector
    from privaudit.source import ReadState, read_exchanges

    har = json.loads((CORPUS / "har_files" / "chrome.har").read_text())
    har["log"]["entries"].insert(1, {"request": {"url": "x"}})  # unreadable: numbering shifts by one
    p = tmp_path / "x.har"
    p.write_text(json.dumps(har))
    scan = Detector.scan

    def flaky(self, ex):
        if len(ex.url or "") % 3:  # (not the index: a worker's is the one before the shift)
            raise RuntimeError(f"hostile flow to {ex.host}")
        return scan(self, ex)

    monkeypatch.setattr(Detector, "scan", flaky)
    paths = [p, EVALSET, CORPUS / "dumpfile-7.mitm"]
    doc = audit.analyze(paths, canaries_path=CANARIES, jobs=jobs)
    one_by_one = audit.build(canaries_path=CANARIES)
    state = ReadState()
    for ex in read_exchanges(paths, state):
        one_by_one.add(ex)
    one_by_one.warnings.extend(state.warnings)
    ref = one_by_one.document([i.to_json() for i in state.inputs])
    assert ref["coverage"]["analysis_errors"] > 100 and len(ref["findings"]) > 100  # failures past the listed 100
    assert any("HAR entry 1 skipped" in w for w in ref["warnings"])
    assert stable(doc) == stable(ref)


def test_spool_takes_blocks_of_lines_in_order_and_as_they_are():
    lines = [json.dumps({"i": i, "v": "값\u2028"}, ensure_ascii=False) for i in range(9)]
    block = lambda ls: "".join(x + "\n" for x in ls).encode("utf-8")  # noqa: E731
    spool = audit.FindingSpool(limit=4)
    spool.append(lines[0])
    spool.append_lines(block(lines[1:3]), 2)  # still under the limit: held in memory
    assert spool.file is None and len(spool) == 3
    spool.append_lines(block(lines[3:7]), 4)  # past it: what is held goes first
    spool.append(json.loads(lines[7]))
    spool.extend([lines[8]])
    assert list(spool.lines()) == lines and len(spool) == 9 and spool.spilled == 7
    sep = ",\n    "
    assert b"".join(spool.joined_bytes(sep.encode(), block=3)) == sep.join(lines).encode("utf-8")


def test_a_spilled_spool_is_copied_as_bytes_into_a_utf8_file(tmp_path, monkeypatch):
    """dump_document writes a spool's bytes under a UTF-8 file's text layer:
    the file must hold exactly the text the plain way writes."""
    monkeypatch.setattr(audit.FindingSpool.__init__, "__defaults__", (10,))
    doc = {**audit.analyze([EVALSET], canaries_path=CANARIES, jobs=1), "generated_at": None}
    assert isinstance(doc["findings"], audit.FindingSpool) and doc["findings"].spilled > 0
    text = io.StringIO()
    audit.dump_document(doc, text)
    with open(tmp_path / "doc.json", "w", encoding="utf-8") as f:
        audit.dump_document(doc, f)
    assert (tmp_path / "doc.json").read_bytes() == text.getvalue().encode("utf-8")


def test_har_with_no_readable_entry_is_an_input_error(tmp_path):
    p = tmp_path / "x.har"
    p.write_text(json.dumps({"log": {"entries": [{"request": {}}, {"request": {}}]}}))
    with pytest.raises(InputError, match="none of its 2 entries"):
        audit.analyze([p], jobs=1)


def test_an_exception_in_detection_is_counted_not_fatal(monkeypatch):
    from privaudit.detect import Detector

    def boom(self, ex):
        raise RuntimeError("hostile flow")

    monkeypatch.setattr(Detector, "scan", boom)
    doc = audit.analyze([CORPUS / "har_files" / "chrome.har"], jobs=1)
    assert doc["flows_analyzed"] == 3 and doc["findings"] == []
    assert doc["coverage"]["analysis_errors"] == 3
    assert any("hostile flow" in w for w in doc["warnings"])


def test_capture_metadata_of_an_audit_directory_reaches_the_document(tmp_path):
    (tmp_path / "flows.mitm").write_bytes((CORPUS / "dumpfile-7.mitm").read_bytes())
    meta = {
        "tool": {"name": "privaudit", "version": "0.1.0", "mitmproxy": "12.3.1"},
        "mode": ["wireguard"],
        "phases": [{"name": "consent given", "timestamp": "2025-01-01T00:00:00Z"}],
        "tls_failures": [{"host": "pinned.example.com", "error": "certificate unknown"}],
        "audit": {"tester": "K. Lee", "device": "Galaxy S23", "app": "DeepSeek", "app_version": "1.0.9"},
    }
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    doc = audit.analyze([tmp_path], jobs=1, auditor={"case_ref": "2025-PIPC-001", "device": ""})
    assert doc["phases"] == meta["phases"]
    assert doc["coverage"]["tls_failures"] == [{"host": "pinned.example.com", "error": "certificate unknown"}]
    assert doc["environment"]["capture mode"] == "wireguard"
    assert doc["environment"]["mitmproxy (capture)"] == "12.3.1"
    assert doc["auditor"] == {"name": "K. Lee", "device": "Galaxy S23", "app": "DeepSeek", "app_version": "1.0.9", "case_ref": "2025-PIPC-001"}


def test_tls_versions_are_counted_per_endpoint_and_overall():
    doc = audit.analyze([CORPUS / "flows" / "diff_data.mitm"], jobs=1)
    assert doc["coverage"]["tls_versions"] == {"TLSv1.3": 7}
    assert all(e["tls_versions"] == ["TLSv1.3"] for e in doc["endpoints"])


def test_a_dumped_document_reads_back_with_its_findings_left_on_disk(tmp_path):
    doc = audit.analyze([EVALSET], canaries_path=CANARIES, jobs=1)
    path = tmp_path / "findings.json"
    with open(path, "w", encoding="utf-8") as f:
        audit.dump_document(doc, f)
    back = audit.load_document(path)
    assert isinstance(back["findings"], audit.FindingsFile)
    assert len(back["findings"]) == len(doc["findings"]) > 1000  # more than one parse batch
    assert list(back["findings"]) == list(doc["findings"])
    assert list(back["findings"]) == list(doc["findings"])  # re-iterable
    rest = {k: v for k, v in back.items() if k != "findings"}
    assert rest == {k: v for k, v in json.loads(path.read_text("utf-8")).items() if k != "findings"}


@pytest.mark.parametrize(
    "findings_text",
    [
        '  "findings": [\n    {"a": 1}, {"b": 2},\n    {"c": 3}\n  ],\n',  # two on one line: read whole
        '  "findings": [\n    {"a": 1},\n    "not an object"\n  ],\n',  # layout check fails: read whole
        '  "findings": [],\n',
    ],
)
def test_other_layouts_of_the_findings_list_read_whole(tmp_path, findings_text):
    path = tmp_path / "f.json"
    text = '{\n  "schema_version": 1,\n' + findings_text + '  "endpoints": []\n}\n'
    path.write_text(text, encoding="utf-8")
    expected = json.loads(text)["findings"]
    back = audit.load_document(path)
    if all(isinstance(d, dict) for d in expected):
        assert list(back["findings"]) == expected
    else:
        assert back["findings"] == expected  # plain json: the caller validates


def test_a_broken_findings_document_is_an_input_error(tmp_path):
    path = tmp_path / "f.json"
    path.write_text('{\n  "schema_version": 1,\n  "findings": [\n    {"a": 1},\n    {"b": \n  ]\n}\n', encoding="utf-8")
    with pytest.raises(InputError):
        doc = audit.load_document(path)
        list(doc["findings"])


def test_encoded_findings_are_exactly_json_dumps_of_the_dicts():
    """The fast JSON lines equal json.dumps of finding_dicts, hostile strings included."""
    from privaudit.model import Exchange, Finding

    nasty = ['q"uote', "back\\slash", "ctl\x00\x1f\x7f", "line\nbreak\ttab", "한국어 中文 😀", "\u2028\u2029", ""]
    for tls in (True, False):
        for ts in (None, 1732780993.6437042):
            ex = Exchange(index=3, kind="http", host=nasty[4], tls=tls, timestamp_start=ts)
            found = [
                Finding(3, h, side, "email", "rule." + h, "key", enc, "request.body $." + h, "high", h)
                for h in nasty
                for side, enc in (("request", None), ("response", "base64+json"))
            ]
            enc = audit.encode_findings(ex, found)
            assert enc.lines == [json.dumps(d, ensure_ascii=False) for d in audit.finding_dicts(ex, found)]
            assert enc.request_categories == ["email"] * len(nasty)


def test_every_input_is_hashed_when_the_pool_hashes_them_late(tmp_path, many_batches):
    # With a pool the main process hashes the inputs once the workers are
    # busy; an input opened after that (the second one here) is hashed at the end.
    from privaudit.source import file_sha256

    second = tmp_path / "second.mitm"
    second.write_bytes((CORPUS / "dumpfile-7.mitm").read_bytes())
    doc = audit.analyze([EVALSET, second], jobs=2)
    assert [i["sha256"] for i in doc["inputs"]] == [file_sha256(EVALSET), file_sha256(second)]
    serial = audit.analyze([EVALSET, second], jobs=1)
    assert doc["inputs"] == serial["inputs"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_pool_run_hashes_its_inputs_in_a_thread_while_the_rules_load(tmp_path, many_batches, monkeypatch, jobs):
    """With a pool (and only then: -j1 stays on one core) the inputs are
    hashed in a thread started before the rules load, which is stopped
    before the workers fork; the digests are the same."""
    import hashlib
    import os
    import threading
    import time

    import privaudit.source as source

    started = []
    real_init = source.AheadHasher.__init__

    def spy(self, paths, block=1 << 20):
        started.append([p.name for p in paths])
        real_init(self, paths, block)

    forks = []
    real_fork = os.fork

    def fork():
        forks.append([t.name for t in threading.enumerate() if t.name == "privaudit-hash"])
        return real_fork()

    class Slow(threading.Event):  # hashing that would outlast the rules' loading
        def is_set(self):
            time.sleep(0.1)
            return super().is_set()

    monkeypatch.setattr(source.AheadHasher, "__init__", spy)
    monkeypatch.setattr(source.AheadHasher, "_event", Slow)
    monkeypatch.setattr(os, "fork", fork)
    second = tmp_path / "second.mitm"
    second.write_bytes((CORPUS / "dumpfile-7.mitm").read_bytes())
    doc = audit.analyze([EVALSET, second], jobs=jobs)
    assert [i["sha256"] for i in doc["inputs"]] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in (EVALSET, second)]
    assert started == ([] if jobs == 1 else [["evalset.mitm", "second.mitm"]])
    assert forks == ([] if jobs == 1 else [[], []])  # two workers, forked with no hashing thread alive


@pytest.mark.parametrize(
    "checks, stopped_at",
    [(0, ("f0", 0)), (3, ("f0", 3000)), (11, ("f1", 0)), (14, ("f2", 2000)), (100, None)],
)
def test_hashing_ahead_stopped_anywhere_gives_every_digest(tmp_path, checks, stopped_at):
    """Stopped before it starts, inside a file, between files or after the
    end (it checks before each 1,000-byte block): the digests are those of
    the whole files."""
    import hashlib

    from privaudit.source import AheadHasher

    files = []
    for k, size in enumerate([10_000, 0, 7_000, 33]):
        p = tmp_path / f"f{k}"
        p.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
        files.append(p)

    class Countdown:
        def __init__(self):
            self.left = checks

        def is_set(self):
            self.left -= 1
            return self.left < 0

        def set(self):
            self.left = -1

    class Counted(AheadHasher):
        _event = Countdown

    h = Counted(files, block=1000)
    h._thread.join()
    assert (h.partial[0].name, h.partial[2]) == stopped_at if stopped_at else h.partial is None
    assert len(h.done) == (4 if stopped_at is None else int(stopped_at[0][1]))
    assert [h.digest(p) for p in files] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]
