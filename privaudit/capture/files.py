"""The capture's own file primitives: an owner-only append-only flow file,
and a quick owner-only replace for the checkpoint of flows still open.

Whole-file writes (meta.json, findings) go through :mod:`privaudit.fsutil`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from privaudit.fsutil import PRIVATE_DIR, PRIVATE_FILE, atomic_write


def open_private_append(path: Path) -> int:
    """Open ``path`` for appending (an fd), creating it 0600 and missing
    parent folders 0700; an existing file is tightened to 0600, since it
    will hold the tester's personal data."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except OSError:  # pragma: no cover - someone else's file: keep its mode
        pass
    return fd


def write_private_json(path: Path, doc: object) -> None:
    """Replace ``path`` atomically with ``doc`` as indented UTF-8 JSON, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    atomic_write(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def replace_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (mode 0600) through a temporary file and
    a rename, without fsync: it must survive the process being killed, which
    the page cache guarantees, and it is rewritten every few seconds, from
    the event loop, where an fsync could stall traffic."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
