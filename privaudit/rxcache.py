"""Compiled regular expressions kept between runs.

Every ``privaudit`` start compiles ~300 regular expressions: the rules' (~200,
~35 ms) and privaudit's own module-level ones (~9 ms). Nearly all of that
time is Python's pure-Python regex parser and code generator; the compiled
program they produce (a list of integers, which ``_sre.compile`` turns into
a Pattern) depends only on the pattern, the flags and the Python build.

:func:`compile` keeps those programs in one JSON file per Python build, in
the user's cache directory (``$PRIVAUDIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/privaudit``, else ``~/.cache/privaudit``; the folder is
created owner-only). A pattern found there is built by ``_sre.compile``
directly, which checks the program before accepting it; ~10 µs instead of
~150 µs.

Trust: a program is stored only after the Pattern built from it compared
equal (same flags, program and pattern, and the same groups) to what
``re.compile`` itself made of the same pattern in the same Python build. The
file is named after that build (``sys.version`` and the regex engine's
``MAGIC``), so another Python never reads it, and starts with the SHA-256
of the rest, so a damaged file is not read either. Anything unexpected (no cache
folder, a damaged or foreign file, a Python whose internals differ) falls
back to ``re.compile``: the cache can make start-up slower, never a match
different. ``PRIVAUDIT_CACHE_DIR=""`` (empty) turns it off. It holds
patterns only (the shipped rules' and the user's own rule files'), never
captured data, and never the canaries: their search database holds the
tester's seeded identity as literals, and caching it (measured: ~11 ms of
start-up for ten canaries) would leave a copy of that identity behind in a
folder nobody audits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

#: Entries kept in the file at most: past this, a save keeps this run's only.
MAX_ENTRIES = 5000

_entries: dict[str, list] | None = None  # key -> [flags, code, groups, groupindex]
_used: set[str] = set()
_dirty = False


def cache_dir() -> Path | None:
    """Where the cache lives, or None when ``PRIVAUDIT_CACHE_DIR`` is set empty."""
    env = os.environ.get("PRIVAUDIT_CACHE_DIR")
    if env is not None:
        return Path(env).expanduser() if env.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or ""
    return (Path(base) if base.strip() else Path.home() / ".cache") / "privaudit"


def _file() -> Path | None:
    d = cache_dir()
    if d is None:
        return None
    try:
        from re import _constants

        magic = _constants.MAGIC
    except (ImportError, AttributeError):
        return None
    build = hashlib.sha256(f"{sys.version}|{sys.implementation.cache_tag}|{magic}".encode()).hexdigest()[:16]
    return d / f"regex-{sys.implementation.cache_tag}-{build}.json"


def _load() -> dict[str, list]:
    global _entries
    if _entries is None:
        _entries = {}
        path = _file()
        try:
            if path is not None:
                digest, _, body = path.read_bytes().partition(b"\n")
                if hashlib.sha256(body).hexdigest().encode() == digest:  # (else damaged: start afresh)
                    data = json.loads(body)
                    if isinstance(data, dict):
                        _entries = data
        except (OSError, ValueError):
            pass
    return _entries


def _key(pattern: str, flags: int) -> str:
    return f"{int(flags)}:{pattern}"


def _program(pattern: str, flags: int) -> list | None:
    """What ``re.compile`` hands ``_sre.compile`` for ``pattern`` (CPython
    3.11+'s ``re._compiler.compile``, without the Pattern), or None."""
    try:
        from re import _compiler, _parser

        p = _parser.parse(pattern, flags)
        code = _compiler._code(p, flags)
        return [int(flags | p.state.flags), code, p.state.groups - 1, dict(p.state.groupdict)]
    except Exception:  # (internals of another Python): no entry
        return None


def _build(pattern: str, entry: list) -> re.Pattern:
    import _sre

    final, code, groups, groupindex = entry
    indexgroup: list = [None] * (groups + 1)
    for name, i in groupindex.items():
        indexgroup[i] = name
    return _sre.compile(pattern, final, code, groups, groupindex, tuple(indexgroup))


def compile(pattern: str, flags: int = 0) -> re.Pattern:  # noqa: A001 (re.compile's name, on purpose)
    """``re.compile(pattern, flags)``, from the cache when it holds ``pattern``.
    Raises ``re.error`` for a bad pattern, as ``re.compile`` does."""
    global _dirty
    if flags & (re.LOCALE | re.DEBUG) or pattern.__class__ is not str:
        return re.compile(pattern, flags)  # (locale-dependent, or printing: not kept)
    key = _key(pattern, flags)
    entries = _load()
    entry = entries.get(key)
    if entry is not None:
        try:
            rx = _build(pattern, entry)
            _used.add(key)
            return rx
        except Exception:  # a damaged entry: compiled afresh below, and replaced
            del entries[key]
    rx = re.compile(pattern, flags)
    entry = _program(pattern, flags)
    if entry is not None and _file() is not None:
        try:
            built = _build(pattern, entry)
        except Exception:
            built = None
        if built == rx and built.groups == rx.groups and built.groupindex == rx.groupindex:
            entries[key] = entry
            _used.add(key)
            _dirty = True
    return rx


def save() -> None:
    """Writes the entries added in this run, if any (atomically, owner-only).
    A cache that cannot be written is left as it is: nothing is reported."""
    global _dirty, _entries
    if not _dirty or _entries is None:
        return
    path = _file()
    if path is None:
        return
    entries = _entries
    if len(entries) > MAX_ENTRIES:
        entries = {k: v for k, v in entries.items() if k in _used}
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            body = json.dumps(entries, separators=(",", ":")).encode()
            with os.fdopen(fd, "wb") as f:
                f.write(hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError:
        return
    _entries = entries
    _dirty = False
