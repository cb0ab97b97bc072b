"""Worker processes forked from this one, fed tasks through pipes.

:class:`ForkPool` replaced ``concurrent.futures.ProcessPoolExecutor`` for the
analysis (:func:`privaudit.parallel.run_batches`): its imports (~17 ms before
the first flow) and two helper threads in the main process (~30 ms of CPU in a
10k-flow run, taken from the workers' cores) were the pool's own cost; see the
README's performance section. Imported only when a pool runs.
"""

from __future__ import annotations

import os
import pickle
import selectors
import signal
import struct
import sys
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any


class WorkerError(RuntimeError):
    """A worker failed outside the per-flow guard, or died (killed by the
    kernel for memory, say). The audit stops: its document would miss the
    worker's flows. The capture files are only read, never changed."""


_FRAME = struct.Struct("<Q")  # each message: its pickle's length, then the pickle


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, n: int) -> bytearray | None:
    """``n`` bytes from a blocking ``fd``; None at end of file before the first."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k == 0:
            if got == 0:
                return None
            raise EOFError(f"pipe closed after {got} of {n} bytes")
        got += k
    return buf


def _worker_loop(task_fd: int, result_fd: int, init: Callable[[], object], work: Callable[[Any], Any]) -> None:
    """A forked worker's life: ``init()``, then ``work(task)`` for each task
    read from ``task_fd``, its result written to ``result_fd``, until the
    main process closes its end of ``task_fd``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    init()
    while True:
        head = _read_exact(task_fd, _FRAME.size)
        if head is None:
            return
        body = _read_exact(task_fd, _FRAME.unpack(head)[0])
        try:
            data = pickle.dumps(("ok", work(pickle.loads(body))), pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # (the analysis guards each flow; this is anything around it)
            data = pickle.dumps(("error", f"{type(e).__name__}: {e}", traceback.format_exc()), pickle.HIGHEST_PROTOCOL)
        _write_all(result_fd, _FRAME.pack(len(data)) + data)


class _Worker:
    """The main process's side of one forked worker: its two pipes, what is
    waiting to be written to it, the tasks it holds, and its part-read result."""

    __slots__ = ("pid", "task_fd", "result_fd", "out", "held", "buf", "pos", "in_body")

    def __init__(self, pid: int, task_fd: int, result_fd: int) -> None:
        self.pid, self.task_fd, self.result_fd = pid, task_fd, result_fd
        self.out = memoryview(b"")
        self.held: deque[tuple[int, Any]] = deque()  # (sequence number, task), oldest first
        self.buf = bytearray(_FRAME.size)
        self.pos = 0
        self.in_body = False

    def flush(self) -> None:
        """Writes what it can of the pending tasks without blocking."""
        while self.out:
            try:
                self.out = self.out[os.write(self.task_fd, self.out) :]
            except BlockingIOError:
                return

    def receive(self) -> list:
        """The results the pipe completes now, oldest first ([] if none);
        EOFError once the worker has closed it (exited or died)."""
        done = []
        while True:
            try:
                k = os.readv(self.result_fd, [memoryview(self.buf)[self.pos :]])
            except BlockingIOError:
                return done
            if k == 0:
                raise EOFError
            self.pos += k
            if self.pos < len(self.buf):
                continue
            if self.in_body:
                done.append(pickle.loads(self.buf))
                self.buf = bytearray(_FRAME.size)
            else:
                self.buf = bytearray(_FRAME.unpack(self.buf)[0])
            self.in_body = not self.in_body
            self.pos = 0


class ForkPool:
    """``jobs`` worker processes forked from this one, each fed tasks through
    a pipe of its own and answering through another.

    Each worker runs ``init()`` once, then ``work(task)`` for every task sent
    to it; ``describe(task)`` names a task in error messages. Forked workers
    inherit what this process has built (for the analysis: rules compiled,
    canaries loaded, modules imported), so nothing is loaded twice.

    The main process never blocks on a pipe: it writes and reads only what a
    pipe takes or holds (``selectors``), so a worker writing a large result
    while the main process is writing it a task cannot deadlock them. A
    worker that dies (a signal, the kernel's OOM killer) is found by its
    closed pipe and reported as :class:`WorkerError`, naming the task it held.
    """

    def __init__(self, jobs: int, init: Callable[[], object], work: Callable[[Any], Any],
                 describe: Callable[[Any], str]) -> None:
        self.describe = describe
        self.workers: list[_Worker] = []
        self.sel: selectors.BaseSelector | None = None
        for stream in (sys.stdout, sys.stderr):  # a child must not inherit unwritten output
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            for _ in range(jobs):
                task_r, task_w = os.pipe()
                result_r, result_w = os.pipe()
                pid = os.fork()
                if pid == 0:  # the worker
                    code = 0
                    try:
                        os.close(task_w)
                        os.close(result_r)
                        for w in self.workers:  # the earlier workers' pipes: theirs alone
                            os.close(w.task_fd)
                            os.close(w.result_fd)
                        _worker_loop(task_r, result_w, init, work)
                    except BaseException:
                        code = 1  # (the main process went away; it reports nothing more)
                    finally:
                        os._exit(code)
                os.close(task_r)
                os.close(result_w)
                os.set_blocking(task_w, False)
                os.set_blocking(result_r, False)
                self.workers.append(_Worker(pid, task_w, result_r))
            self.sel = selectors.DefaultSelector()
            for w in self.workers:
                self.sel.register(w.result_fd, selectors.EVENT_READ, w)
        except BaseException:
            self.close(kill=True)
            raise

    def idlest(self) -> _Worker:
        return min(self.workers, key=lambda w: len(w.held))

    def send(self, worker: _Worker, seq: int, task: Any) -> None:
        """Queues ``task`` (number ``seq``) for ``worker``; written now as far as its pipe takes it."""
        data = pickle.dumps(task, pickle.HIGHEST_PROTOCOL)
        worker.held.append((seq, task))
        worker.out = memoryview(bytes(worker.out) + _FRAME.pack(len(data)) + data)
        self._flush(worker)

    def _flush(self, worker: _Worker) -> None:
        """Writes what ``worker``'s pipe takes, and watches the pipe while some is left."""
        try:
            worker.flush()
        except BrokenPipeError:
            self._died(worker)
        watched = worker.task_fd in self.sel.get_map()
        if worker.out and not watched:
            self.sel.register(worker.task_fd, selectors.EVENT_WRITE, worker)
        elif not worker.out and watched:
            self.sel.unregister(worker.task_fd)

    def wait(self) -> list[tuple[int, Any]]:
        """Blocks until at least one task's result is in: [(sequence number, result)]."""
        got: list[tuple[int, Any]] = []
        while not got:
            for key, _events in self.sel.select():
                w: _Worker = key.data
                if key.fd == w.task_fd:
                    self._flush(w)
                    continue
                try:
                    frames = w.receive()
                except EOFError:
                    self._died(w)
                for frame in frames:
                    seq, task = w.held.popleft()
                    if frame[0] != "ok":
                        err = WorkerError(f"analysis worker {w.pid} failed on {self.describe(task)}: {frame[1]}")
                        err.add_note(f"in the worker:\n{frame[2]}")
                        raise err
                    got.append((seq, frame[1]))
        return got

    def _died(self, w: _Worker):
        try:
            _, status = os.waitpid(w.pid, 0)
        except ChildProcessError:
            status = None
        w.pid = -abs(w.pid)  # (reaped)
        how = "ended"
        if status is not None and os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            how = f"was killed by signal {sig} ({name}{', perhaps for memory' if sig == signal.SIGKILL else ''})"
        elif status is not None and os.WIFEXITED(status):
            how = f"exited with code {os.WEXITSTATUS(status)}"
        held = f" while analysing {self.describe(w.held[0][1])}" if w.held else ""
        raise WorkerError(f"analysis worker {abs(w.pid)} {how}{held}; the audit stops, no document is written")

    def close(self, kill: bool = False) -> None:
        """Ends the workers (at once with ``kill``, else once they have read
        their pipes to the end) and reaps them."""
        if self.sel is not None:
            self.sel.close()
            self.sel = None
        for w in self.workers:
            for fd in (w.task_fd, w.result_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
            if kill and w.pid > 0:
                try:
                    os.kill(w.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for w in self.workers:
            if w.pid > 0:
                try:
                    os.waitpid(w.pid, 0)
                except ChildProcessError:
                    pass
                w.pid = -w.pid
        self.workers = []
