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

