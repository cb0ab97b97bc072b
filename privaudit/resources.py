"""Finds the data privaudit ships: rules/ and report_templates/.

In a wheel they live at ``privaudit/_data/``; in a source checkout (editable
install, tests) at the top of the repository. The installed location wins.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"privaudit's {name}/ data folder is missing (looked in {_PKG / '_data'} and {_PKG.parent}); "
        "reinstall privaudit"
    )


def rules_dir() -> Path:
    return _find("rules")


def templates_dir() -> Path:
    return _find("report_templates")
