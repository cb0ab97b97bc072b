"""The analysis loop turns Python's cyclic GC off and collects by itself
(privaudit.parallel.paced_gc): the caller's GC state must come back as it
was, and cyclic garbage made during analysis must still be collected."""

import gc
import weakref
from pathlib import Path

import pytest

from privaudit import parallel

EVALSET = Path(__file__).parent / "data" / "evalset" / "evalset.mitm"


def test_paced_gc_restores_state():
    assert gc.isenabled()
    with parallel.paced_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_paced_gc_restores_state_after_an_error():
    with pytest.raises(RuntimeError):
        with parallel.paced_gc():
            raise RuntimeError("boom")
    assert gc.isenabled()


def test_paced_gc_leaves_a_disabled_gc_disabled():
    gc.disable()
    try:
        with parallel.paced_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


class _Node:
    pass


def test_cycles_made_during_analysis_are_collected(monkeypatch):
    monkeypatch.setattr(parallel, "GC_EVERY", 3)
    with parallel.paced_gc():
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a reference cycle: only the cyclic GC frees it
        ref = weakref.ref(a)
        del a, b
        assert ref() is not None  # the automatic collector is off
        for _ in range(3):
            parallel._batch_done()
        assert ref() is None  # the paced collection freed it


@pytest.mark.parametrize("jobs", [1, 2])
def test_analysis_leaves_gc_as_it_found_it(monkeypatch, jobs):
    from privaudit import audit

    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "BATCH", 7)
    monkeypatch.setattr(parallel, "MAX_POOL_BATCH", 7)
    doc = audit.analyze([EVALSET], jobs=jobs)
    assert doc["flows_analyzed"] > 100
    assert gc.isenabled()


def test_pool_batches_grow_with_the_input_within_bounds():
    assert parallel.pool_batch(0, 2) == parallel.BATCH
    assert parallel.pool_batch(26_000_000, 2) == 26_000_000 // parallel._RECORD_BYTES // 16
    assert parallel.pool_batch(10**12, 2) == parallel.MAX_POOL_BATCH
    assert parallel.pool_batch(26_000_000, 8) < parallel.pool_batch(26_000_000, 2)


def test_batches_are_closed_early_when_their_records_are_big(monkeypatch):
    monkeypatch.setattr(parallel, "BATCH_BYTES", 10_000)
    items = [(i, "mitm", "x", b"r" * 3_000) for i in range(20)]
    sizes = [len(b) for b in parallel._batches(iter(items), 200)]
    assert sizes == [4] * 5  # 4 records reach 12,000 bytes
    small = [(i, "mitm", "x", b"r" * 10) for i in range(20)]
    assert [len(b) for b in parallel._batches(iter(small), 7)] == [7, 7, 6]
    assert [it for b in parallel._batches(iter(items), 200) for it in b] == items
