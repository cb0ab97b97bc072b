"""Writing files that hold captured data: owner-only, atomic, never half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """Creates ``path`` (and parents) if needed; the leaf is owner-only."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    try:
        os.chmod(path, PRIVATE_DIR)
    except PermissionError:
        pass
    return path


def atomic_write(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` with mode 0600 via a temp file and rename.

    On any error the temp file is removed and ``path`` is left as it was.
    """
    with _atomic(Path(path), "wb") as f:
        f.write(data)


def atomic_text_writer(path: Path):
    """A UTF-8 text file that becomes ``path`` (mode 0600) only if the block succeeds."""
    return _atomic(Path(path), "w")


@contextmanager
def _atomic(path: Path, mode: str) -> Iterator:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        os.fchmod(fd, PRIVATE_FILE)
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
