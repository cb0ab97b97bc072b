"""Flow-file records found by their length prefixes only (iter_record_spans)
and read back by a worker (read_spans): the same records, the same damage,
as reading them whole (iter_records)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from privaudit import audit, parallel
from privaudit.source.flowfile import RecordError, iter_record_spans, iter_records, read_spans

DATA = Path(__file__).parent / "data"
EVALSET = DATA / "evalset" / "evalset.mitm"
FLOW_FILES = sorted(DATA.rglob("*.mitm")) + sorted((DATA / "mitmproxy-testdata" / "flows").glob("*"))


def _outcome(records) -> list:
    """What a reader yields, then the error it ends with, if any."""
    out = []
    try:
        out.extend(records)
    except RecordError as e:
        out.append(("error", str(e)))
    return out


def _as_spans(outcome: list) -> list:
    return [(a, len(b)) if a != "error" else (a, b) for a, b in outcome]


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("chunk", [13, 100, 1 << 20])
def test_spans_are_the_records_read_whole(path, chunk):
    whole = _outcome(iter_records(path))
    assert _outcome(iter_record_spans(path, chunk)) == _as_spans(whole)
    good = [(offset, raw) for offset, raw in whole if offset != "error"]
    if good:
        raws, error = read_spans(str(path), [(offset, len(raw)) for offset, raw in good])
        assert error is None and raws == [raw for _, raw in good]


def test_spans_of_damaged_files_end_where_reading_them_whole_ends(tmp_path):
    """Cut and scribbled-on copies of a capture: the same records before
    the damage, then the same error, whatever the read size."""
    data = EVALSET.read_bytes()
    rng = random.Random(7)
    errors = 0
    for k in range(150):
        copy = bytearray(data[: rng.randint(0, 80_000)])
        for _ in range(rng.randint(0, 3)):
            if copy:
                copy[rng.randrange(len(copy))] = rng.choice(b"0123456789:,x")
        path = tmp_path / f"damaged-{k}.mitm"
        path.write_bytes(bytes(copy))
        whole = _as_spans(_outcome(iter_records(path)))
        errors += whole[-1:] != [] and whole[-1][0] == "error"
        for chunk in (13, 64, 1 << 20):
            assert _outcome(iter_record_spans(path, chunk)) == whole, (k, chunk)
    assert errors > 50  # most copies were damaged


def test_length_prefixes_across_read_boundaries(tmp_path):
    """Many tiny records (framing only: a length, a colon, the payload and
    its type byte), read a few bytes at a time, so that length prefixes
    straddle every kind of read boundary; then the same file cut at every
    byte of its last records."""
    rng = random.Random(3)
    records = []
    for _ in range(400):
        payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 9, 10, 11, 30, 99, 100, 101])))
        records.append(b"%d:%s}" % (len(payload), payload))
    data = b"".join(records)
    path = tmp_path / "tiny.mitm"
    for cut in [len(data), *range(len(data) - 300, len(data))]:
        path.write_bytes(data[:cut])
        whole = _as_spans(_outcome(iter_records(path)))
        for chunk in (13, 14, 17, 25, 64, 4096):
            assert _outcome(iter_record_spans(path, chunk)) == whole, (cut, chunk)
    assert len(whole) == 400
    # long length prefixes (six and seven digits) right after tiny records
    records = [r for rec in records[:60] for r in (rec, b"%d:%s," % (n, b"x" * n) if rng.random() < 0.2 else b"")
               for n in [rng.choice([100_000, 123_456, 1_000_001])]]
    path.write_bytes(b"".join(records))
    whole = _as_spans(_outcome(iter_records(path)))
    assert len(whole) == len([r for r in records if r]) > 60
    for chunk in (13, 14, 15, 16, 17, 18, 19, 20, 21, 4096):
        assert _outcome(iter_record_spans(path, chunk)) == whole, chunk


def test_a_record_bigger_than_a_read_is_skipped_not_read(tmp_path):
    raws = [raw for _, raw in iter_records(EVALSET)][:5]
    big = max(raws, key=len)
    path = tmp_path / "big.mitm"
    path.write_bytes(b"".join(raws))
    assert [length for _, length in iter_record_spans(path, chunk=len(big) // 3)] == [len(r) for r in raws]


def test_read_spans_of_a_file_cut_since_returns_what_it_still_holds(tmp_path):
    path = tmp_path / "shrinks.mitm"
    path.write_bytes(EVALSET.read_bytes())
    spans = list(iter_record_spans(path))[:10]
    path.write_bytes(EVALSET.read_bytes()[: spans[6][0] + 5])  # truncated in the 7th record
    raws, error = read_spans(str(path), spans)
    assert raws == [raw for _, raw in list(iter_records(EVALSET))[:6]]
    assert isinstance(error, RecordError) and f"byte {spans[6][0]}" in str(error)


def test_a_worker_given_spans_of_a_shrunk_file_counts_the_flows_before_and_says_damaged(tmp_path):
    from privaudit.detect import Detector, load_rules

    path = tmp_path / "shrinks.mitm"
    path.write_bytes(EVALSET.read_bytes())
    batch = [(i, "mitm", str(path), span) for i, span in enumerate(list(iter_record_spans(path))[:10])]
    path.write_bytes(EVALSET.read_bytes()[: batch[6][3][0] + 5])
    results = parallel.analyze_batch(batch, Detector(load_rules([])))
    assert [r[0] for r in results] == ["run", "damaged"]
    assert results[0][3].flows == 6 and "cut short" in results[1][2]
    gone = [(0, "mitm", str(tmp_path / "gone.mitm"), (0, 10))]
    assert parallel.analyze_batch(gone, Detector(load_rules([])))[0][0] == "damaged"


def test_garbage_inside_a_capture_gives_the_same_document_in_a_pool(tmp_path, monkeypatch):
    """The main process finds the damage while splitting (no worker reads
    the records): the flows before it, the same warning, as in-process."""
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "BATCH", 7)
    monkeypatch.setattr(parallel, "MAX_POOL_BATCH", 7)
    spans = list(iter_record_spans(EVALSET))
    data = bytearray(EVALSET.read_bytes())
    data[spans[40][0] : spans[40][0] + 3] = b"x:y"
    path = tmp_path / "garbage.mitm"
    path.write_bytes(bytes(data))
    serial = audit.analyze([path], jobs=1)
    pooled = audit.analyze([path], jobs=2)
    for doc in (serial, pooled):
        doc.pop("generated_at")
        doc["findings"] = list(doc["findings"])
    assert pooled == serial
    assert serial["flows_analyzed"] == 40
    assert any(f"no length prefix at byte {spans[40][0]}" in w for w in serial["warnings"])
