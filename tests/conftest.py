"""Shared test setup."""

import os
import shutil
import tempfile

import pytest

# Compiled regexes are cached in a folder of the test session's, not the
# user's (privaudit.rxcache); set before any test module imports privaudit.
_REGEX_CACHE = tempfile.mkdtemp(prefix="privaudit-test-rxcache-")
os.environ["PRIVAUDIT_CACHE_DIR"] = _REGEX_CACHE


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_REGEX_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_machine_geoip(monkeypatch):
    """Findings must not depend on MMDB files that happen to lie on the test machine."""
    monkeypatch.setenv("PRIVAUDIT_GEOIP", "")



@pytest.fixture
def many_batches(monkeypatch):
    """Force the process pool even for small inputs, with small batches."""
    from privaudit import parallel

    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "BATCH", 7)
    monkeypatch.setattr(parallel, "MAX_POOL_BATCH", 7)


def stable(doc: dict) -> dict:
    """A findings document without what differs between two runs of the same
    analysis (``generated_at``), its findings as a list: for comparing runs."""
    doc = dict(doc)
    doc.pop("generated_at")
    doc["findings"] = list(doc["findings"])
    return doc


@pytest.fixture(name="stable")
def _stable_fixture():
    return stable
