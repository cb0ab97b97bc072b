"""The capture's own file primitive: an owner-only append-only flow file.

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
