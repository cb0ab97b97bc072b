"""Live capture: the mitmproxy addon that records flows, and the in-process
proxy runner behind ``privaudit capture``.

``addon.py`` runs inside mitmproxy and only records; analysis happens after
the capture, on the recorded file.
"""

from __future__ import annotations

from pathlib import Path


def addon_path() -> str:
    """Path of the addon script, for ``mitmdump -s``/``mitmproxy -s``."""
    return str(Path(__file__).resolve().with_name("addon.py"))


def __getattr__(name: str):
    # run_capture/CaptureResult import mitmproxy's whole proxy stack; load on use.
    if name in ("run_capture", "CaptureResult"):
        from privaudit.capture import runner

        return getattr(runner, name)
    raise AttributeError(name)


__all__ = ["addon_path", "run_capture", "CaptureResult"]
