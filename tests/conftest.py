"""Shared test setup."""

import pytest


@pytest.fixture(autouse=True)
def _no_machine_geoip(monkeypatch):
    """Findings must not depend on MMDB files that happen to lie on the test machine."""
    monkeypatch.setenv("PRIVAUDIT_GEOIP", "")
