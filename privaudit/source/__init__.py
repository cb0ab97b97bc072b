"""Source stage: capture files in, normalised :class:`~privaudit.model.Exchange` out.

Inputs are mitmproxy flow files (any version mitmproxy itself can still read,
through :mod:`mitmproxy.io`, which migrates old dumps) and HAR 1.2 files
(browsers, Charles, Playwright, Insomnia, mitmproxy's own export). A folder
stands for its capture files in name order; other files in it (an audit's own
findings or report, its metadata) are skipped.

Reading streams: flows are yielded one at a time, so memory stays bounded
whatever the capture size. Every flow is yielded, HTTP or not, so non-HTTP
flows are counted and reported rather than dropped.

Damage: a flow file that breaks part-way yields the flows before the damage and
records a warning saying how many were read; a file that yields nothing at all
is an :class:`~privaudit.errors.InputError`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..model import Exchange

#: File name suffixes taken from a folder. Files given by name are sniffed
#: whatever their name.
CAPTURE_SUFFIXES = (".mitm", ".flows", ".flow", ".dump", ".har")


@dataclass(slots=True)
class InputInfo:
    """One input file as the findings document lists it."""

    path: str
    """The path as given (or as found in a folder)."""
    sha256: str
    format: str
    """"mitm" or "har"."""
    flows: int = 0
    """Flows read from this file (HTTP and other)."""

    def to_json(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "format": self.format, "flows": self.flows}


@dataclass(slots=True)
class ReadState:
    """What reading has found out so far, filled in while exchanges stream."""

    inputs: list[InputInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unhashed: list[tuple[InputInfo, Path]] = field(default_factory=list)
    """Inputs whose ``sha256`` is still to be computed (see :meth:`hash_inputs`)."""

    ahead: AheadHasher | None = field(default=None, repr=False)
    """Inputs being hashed in a thread (:meth:`hash_ahead`)."""

    def hash_ahead(self, paths: Sequence[Path]) -> None:
        """Starts hashing ``paths`` in a thread (:class:`AheadHasher`), for
        :meth:`hash_inputs` to take."""
        self.ahead = AheadHasher(paths)

    def stop_hashing(self) -> None:
        """Stops :meth:`hash_ahead`'s thread (where it is: the rest is done by
        :meth:`hash_inputs`). Called before forking: a process that forks
        while it runs other threads may leave locks held in the child."""
        if self.ahead is not None:
            self.ahead.stop()

    def hash_inputs(self) -> None:
        """Computes the SHA-256 of every input opened so far that has none yet."""
        while self.unhashed:
            info, path = self.unhashed.pop(0)
            info.sha256 = self.ahead.digest(path) if self.ahead is not None else file_sha256(path)


class AheadHasher:
    """The SHA-256 of some files, computed in a thread until :meth:`stop`.

    hashlib lets go of the interpreter while it hashes a block, so this runs
    on a second core while the first does other work: with a process pool to
    feed, :func:`~privaudit.audit.analyze` starts it before the rules load,
    when that core would be idle (~23 ms for the 26 MB capture of 10k flows),
    instead of later on a core the workers need. The pool stops it before it
    forks; :meth:`digest` finishes what it left (from where it stopped). A
    file it cannot read is left for :meth:`digest` to meet again and report.
    """

    _event = threading.Event  # (what says stop: a test may count the checks)

    def __init__(self, paths: Sequence[Path], block: int = 1 << 20) -> None:
        self.done: dict[Path, str] = {}
        self.partial: tuple[Path, Any, int] | None = None  # (path, its hash so far, bytes hashed)
        self._stop = self._event()
        self._thread = threading.Thread(target=self._run, args=(list(paths), block), name="privaudit-hash", daemon=True)
        self._thread.start()

    def _run(self, paths: list[Path], block: int) -> None:
        for path in paths:
            h = hashlib.sha256()
            try:
                n, finished = _hash_into(h, path, 0, block, self._stop)
            except OSError:
                return
            if not finished:
                self.partial = (path, h, n)
                return
            self.done[path] = h.hexdigest()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def digest(self, path: Path) -> str:
        self.stop()
        if path in self.done:
            return self.done[path]
        if self.partial is not None and self.partial[0] == path:
            _, h, offset = self.partial
            _hash_into(h, path, offset)
            return h.hexdigest()
        return file_sha256(path)


def expand_inputs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Input paths in reading order: files as given, folders as their capture files by name."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                (c for c in p.iterdir() if c.is_file() and c.suffix.lower() in CAPTURE_SUFFIXES),
                key=lambda c: c.name,
            )
            if not found:
                raise InputError(
                    f"{p}: folder holds no capture files (looked for {', '.join(CAPTURE_SUFFIXES)})"
                )
            out.extend(found)
        elif p.is_file():
            out.append(p)
        elif p.exists():
            raise InputError(f"{p}: not a regular file or folder")
        else:
            raise InputError(f"{p}: no such file or folder")
    return out


def sniff_format(path: Path) -> str:
    """"mitm" or "har" from a file's first bytes; InputError otherwise."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from e
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if stripped.startswith(b"{"):
        return "har"
    # A mitmproxy flow file is a sequence of tnetstrings: "<digits>:<payload>".
    digits = head.split(b":", 1)[0]
    if head and digits.isdigit() and len(digits) < 12 and b":" in head:
        return "mitm"
    if not head:
        raise InputError(f"{path}: file is empty; expected a mitmproxy flow file or a HAR file")
    raise InputError(
        f"{path}: unknown file type (starts with {head[:16]!r}); "
        "expected a mitmproxy flow file (.mitm/.flows) or a HAR 1.2 file (.har)"
    )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    _hash_into(h, path)
    return h.hexdigest()


def _hash_into(h: Any, path: Path, offset: int = 0, block: int = 1 << 20, stop: Any = None) -> tuple[int, bool]:
    """Feeds ``path`` from byte ``offset`` to ``h``, a block at a time, until
    its end or until ``stop`` (a threading.Event) is set; returns the offset
    reached and whether that is the end."""
    buf = bytearray(block)  # one buffer, not a fresh megabyte (and its page faults) per read
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        while not (stop is not None and stop.is_set()):
            n = f.readinto(buf)
            if not n:
                return offset, True
            h.update(view[:n])
            offset += n
    return offset, False


def open_inputs(paths: Sequence[str | os.PathLike]) -> list[tuple[Path, str]]:
    """Expands and sniffs every input up front, so a bad one fails before any work.

    An empty capture file found in a folder is skipped (a capture killed before
    its first flow completed leaves one); a folder whose capture files are all
    empty, or an empty file named directly, is an InputError.
    """
    out: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = [f for f in expand_inputs([p]) if f.stat().st_size > 0]
            if not found:
                raise InputError(f"{p}: the folder's capture files are all empty; nothing was captured")
            out.extend((f, sniff_format(f)) for f in found)
        else:
            out.extend((f, sniff_format(f)) for f in expand_inputs([p]))
    return out


def read_exchanges(
    paths: Sequence[str | os.PathLike], state: ReadState | None = None
) -> Iterator[Exchange]:
    """Yields every flow of every input as an Exchange, numbered across inputs.

    ``state`` collects per-input info and warnings as reading goes on.
    """
    from .flowfile import read_flowfile
    from .har import read_har

    state = state if state is not None else ReadState()
    index = 0
    for path, fmt in open_inputs(paths):
        info = InputInfo(path=str(path), sha256=file_sha256(path), format=fmt)
        state.inputs.append(info)
        reader = read_har if fmt == "har" else read_flowfile
        for ex in reader(path, index, state.warnings):
            index += 1
            info.flows += 1
            yield ex
