"""Compiled regexes kept between runs (privaudit.rxcache): the same Pattern
as re.compile, or re.compile itself when the cache is missing, damaged,
unwritable or turned off."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from privaudit import rxcache

PATTERNS = [
    (r"(?P<area>\d{3})-?(?P<serial>\d{4})", 0),
    (r"[\w.+-]+@[\w-]+\.[\w.-]+", 0),
    (r"\.(png|jpe?g|gif)$", re.I),
    (r"^data:\s?(.*)$", re.M),
    (r"[\uac00-\ud7a3]{2,4}", 0),
    (r"(?i)bearer\s+[a-z0-9._~+/-]+=*", 0),
]


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty cache in tmp_path/cache, as a new process would start."""
    monkeypatch.setenv("PRIVAUDIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(rxcache, "_entries", None)
    monkeypatch.setattr(rxcache, "_used", set())
    monkeypatch.setattr(rxcache, "_dirty", False)
    return tmp_path / "cache"


def _restart(monkeypatch) -> None:
    monkeypatch.setattr(rxcache, "_entries", None)
    monkeypatch.setattr(rxcache, "_used", set())
    monkeypatch.setattr(rxcache, "_dirty", False)


def _same(a: re.Pattern, b: re.Pattern) -> bool:
    return a == b and a.groups == b.groups and a.groupindex == b.groupindex and a.flags == b.flags


def test_patterns_come_back_from_the_file_as_re_compile_makes_them(fresh, monkeypatch):
    for p, f in PATTERNS:
        assert _same(rxcache.compile(p, f), re.compile(p, f))
    rxcache.save()
    (path,) = fresh.iterdir()
    assert oct(fresh.stat().st_mode & 0o777) == "0o700" and oct(path.stat().st_mode & 0o777) == "0o600"
    _restart(monkeypatch)
    expected = [re.compile(p, f) for p, f in PATTERNS]
    from re import _compiler

    calls = []
    monkeypatch.setattr(_compiler, "_code", lambda *a: calls.append(a))  # (nothing may be compiled afresh)
    got = [rxcache.compile(p, f) for p, f in PATTERNS]
    monkeypatch.undo()
    assert calls == []
    assert all(_same(a, b) for a, b in zip(got, expected))
    assert rxcache.compile(PATTERNS[0][0]).match("123-4567").group("serial") == "4567"
    assert rxcache.compile(r"\.(png|jpe?g|gif)$", re.I).search("A.JPEG")


def test_every_pattern_privaudit_compiles_is_rebuilt_equal_from_the_cache(tmp_path):
    """The shipped rules, the detector's own pattern and the modules'
    patterns: a second process builds all of them from the file, with no
    regex compiled afresh, and each equals what re.compile makes."""
    env = {**os.environ, "PRIVAUDIT_CACHE_DIR": str(tmp_path / "c")}
    script = """
import re
from re import _parser

parsed = set()  # every pattern parsed afresh in this process (re's and the libraries' own too)
real = _parser.parse
_parser.parse = lambda p, *a: parsed.add(p) or real(p, *a)
from privaudit import audit, rxcache

audit.build()
entries = rxcache._load()
mine = {k.split(":", 1)[1] for k in entries}
afresh = len(mine & parsed)
bad = []
for key, entry in entries.items():
    flags, pattern = key.split(":", 1)
    a, b = rxcache._build(pattern, entry), re.compile(pattern, int(flags))
    if not (a == b and a.groups == b.groups and a.groupindex == b.groupindex):
        bad.append(key)
print(afresh, len(entries), bad)
"""
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    n_first, entries, bad = first.stdout.split(" ", 2)
    assert int(entries) > 200 and n_first == entries and bad.strip() == "[]"
    assert second.stdout.split(" ", 2) == ["0", entries, "[]\n"]


def test_a_damaged_file_is_not_read_and_is_written_afresh(fresh, monkeypatch):
    for p, f in PATTERNS:
        rxcache.compile(p, f)
    rxcache.save()
    (path,) = fresh.iterdir()
    data = bytearray(path.read_bytes())
    data[-30] ^= 1  # one bit of a program
    path.write_bytes(bytes(data))
    _restart(monkeypatch)
    for p, f in PATTERNS:
        assert _same(rxcache.compile(p, f), re.compile(p, f))
    assert rxcache._dirty  # (every entry compiled afresh)
    rxcache.save()
    digest, _, body = path.read_bytes().partition(b"\n")
    assert len(json.loads(body)) == len(PATTERNS)


def test_an_entry_whose_program_the_engine_refuses_is_compiled_afresh(fresh, monkeypatch):
    p = PATTERNS[0][0]
    rxcache.compile(p)
    rxcache.save()
    (path,) = fresh.iterdir()
    entries = json.loads(path.read_bytes().partition(b"\n")[2])
    entries[f"0:{p}"][1] = [99999, 1, 2, 3]  # not a program _sre accepts
    import hashlib

    body = json.dumps(entries).encode()
    path.write_bytes(hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
    _restart(monkeypatch)
    assert _same(rxcache.compile(p), re.compile(p))
    assert rxcache._entries[f"0:{p}"][1] != [99999, 1, 2, 3]


def test_a_bad_pattern_raises_as_re_compile_does_and_is_not_kept(fresh):
    with pytest.raises(re.error, match="missing \\)"):
        rxcache.compile(r"(ab")
    rxcache.save()
    assert not fresh.exists()


def test_turned_off_or_unwritable_the_cache_changes_nothing_but_speed(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv("PRIVAUDIT_CACHE_DIR", "")
    for p, f in PATTERNS:
        assert _same(rxcache.compile(p, f), re.compile(p, f))
    rxcache.save()
    assert rxcache.cache_dir() is None and not fresh.exists()
    _restart(monkeypatch)
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    monkeypatch.setenv("PRIVAUDIT_CACHE_DIR", str(blocked / "sub"))
    for p, f in PATTERNS:
        assert _same(rxcache.compile(p, f), re.compile(p, f))
    rxcache.save()  # (cannot create the folder: says nothing)
    assert blocked.read_text() == "x"


def test_the_cache_folder_follows_xdg_and_home(monkeypatch, tmp_path):
    monkeypatch.delenv("PRIVAUDIT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert rxcache.cache_dir() == tmp_path / "xdg" / "privaudit"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert rxcache.cache_dir() == Path(tmp_path / "home" / ".cache" / "privaudit")
