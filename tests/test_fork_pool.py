"""The worker pool (parallel.ForkPool): the serial document through pipes of
any size, and a worker that fails or dies stops the audit with a message
that says which worker, how, and which flows it held; no worker outlives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from privaudit import audit, forkpool, parallel

DATA = Path(__file__).parent / "data"
EVALSET = DATA / "evalset" / "evalset.mitm"
CANARIES = DATA / "evalset" / "canaries.yaml"


def _children() -> set[int]:
    """This process's child processes not yet reaped (earlier tests' may be among them)."""
    me = os.getpid()
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                out.add(int(d.name))
    return out


def _big_har(path: Path, entries: int, emails: int, pad: int) -> Path:
    """A HAR whose entries each carry ``emails`` distinct addresses (many
    findings: large results) and ``pad`` bytes of padding (large batches)."""
    out = []
    for i in range(entries):
        body = {"contacts": [f"user{i}x{k}@example.org" for k in range(emails)], "pad": "z" * pad}
        out.append({
            "startedDateTime": "2025-02-01T10:00:00.000Z",
            "time": 1,
            "request": {
                "method": "POST",
                "url": f"https://sync{i % 5}.example.com/api/contacts",
                "httpVersion": "HTTP/1.1",
                "headers": [{"name": "Content-Type", "value": "application/json"}],
                "postData": {"mimeType": "application/json", "text": json.dumps(body)},
            },
            "response": {"status": 200, "httpVersion": "HTTP/1.1", "headers": [], "content": {"text": "{}"}},
        })
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": out}}))
    return path


def test_batches_and_results_larger_than_a_pipe_holds_give_the_serial_document(tmp_path, many_batches, stable):
    """Each batch here pickles to ~1.4 MB and each batch's findings to
    several hundred KB, both far over a pipe's 64 KB: the main process
    writes a batch while the worker is writing its last results, and
    neither may wait on the other."""
    har = _big_har(tmp_path / "big.har", entries=60, emails=300, pad=200_000)
    before = _children()
    serial = audit.analyze([har], jobs=1)
    par = audit.analyze([har], jobs=2)
    assert serial["flows_analyzed"] == 60
    assert len(serial["findings"]) >= 60 * 300
    assert stable(par) == stable(serial)
    assert _children() <= before


def test_a_worker_killed_mid_audit_stops_it_and_says_which_flows(many_batches, monkeypatch):
    real = parallel.analyze_batch

    def dies_on_flow_30(batch, detector=None):
        if any(it[0] == 30 for it in batch):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(batch, detector)

    monkeypatch.setattr(parallel, "analyze_batch", dies_on_flow_30)
    before = _children()
    with pytest.raises(forkpool.WorkerError) as e:
        audit.analyze([EVALSET], jobs=2)
    msg = str(e.value)
    assert "was killed by signal 9 (SIGKILL, perhaps for memory)" in msg
    assert f"flows 28-34 of {EVALSET}" in msg and "no document is written" in msg
    assert _children() <= before  # the other worker too is gone


def test_a_worker_error_outside_the_per_flow_guard_stops_the_audit_with_its_traceback(many_batches, monkeypatch):
    def broken(batch, detector=None):
        if batch[0][0] == 14:
            raise MemoryError("cannot allocate the batch")
        return []

    monkeypatch.setattr(parallel, "analyze_batch", broken)
    before = _children()
    with pytest.raises(forkpool.WorkerError) as e:
        audit.analyze([EVALSET], jobs=2)
    assert f"failed on flows 14-20 of {EVALSET}: MemoryError: cannot allocate the batch" in str(e.value)
    assert any("Traceback" in n and "broken" in n for n in e.value.__notes__)
    assert _children() <= before


def test_a_consumer_that_stops_early_leaves_no_worker_behind(many_batches):
    from privaudit.source import ReadState, open_inputs

    state = ReadState()
    opened = open_inputs([EVALSET])
    detector = audit.build(canaries_path=CANARIES).detector
    before = _children()
    gen = parallel.run_batches(opened, state, detector, jobs=2, worker_args=([], str(CANARIES), False))
    first = next(gen)
    assert first and first[0][0] == "run"
    assert len(_children() - before) == 2
    gen.close()
    assert _children() <= before


def test_ctrl_c_ends_the_audit_and_its_workers(tmp_path):
    """SIGINT to the whole process group, as a terminal sends it: the
    workers ignore it, the main process stops them and says 'interrupted'."""
    script = tmp_path / "slow.py"
    script.write_text(
        "import os, sys, time\n"
        "from privaudit import cli, parallel\n"
        "parallel.PARALLEL_MIN_BYTES = 0\n"
        "parallel.BATCH = parallel.MAX_POOL_BATCH = 5\n"
        "real = parallel.analyze_batch\n"
        "def slow(batch, detector=None):\n"
        "    print('worker', os.getpid(), flush=True)\n"
        "    time.sleep(0.2)\n"
        "    return real(batch, detector)\n"
        "parallel.analyze_batch = slow\n"
        f"sys.exit(cli.main(['analyze', {str(EVALSET)!r}, '-j', '2', '-o', {str(tmp_path / 'doc.json')!r}]))\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    workers = set()
    while len(workers) < 2:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        if line.startswith("worker "):
            workers.add(int(line.split()[1]))
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "privaudit: interrupted" in err
    assert not (tmp_path / "doc.json").exists()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists()


def test_a_result_that_cannot_be_sent_back_is_reported_not_lost(many_batches, monkeypatch):
    """A batch whose results will not pickle is an error the main process
    hears about, with the worker's traceback, not a worker that quietly dies."""
    import threading

    def unpicklable(batch, detector=None):
        return [("run", "x", 0, threading.Lock(), b"", 0)]

    monkeypatch.setattr(parallel, "analyze_batch", unpicklable)
    with pytest.raises(forkpool.WorkerError, match=r"failed on flows \d+-\d+ of .*: TypeError: cannot pickle"):
        audit.analyze([EVALSET], jobs=2)
