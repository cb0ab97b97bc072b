"""Live capture: the mitmproxy addons that record and analyse flows, the
in-process proxy runner behind ``privaudit capture``, its terminal dashboard
and the onboarding it prints.

- ``addon.py``: :class:`~privaudit.capture.addon.Privaudit`, the one
  mitmproxy addon, made of :class:`~privaudit.capture.addon.Recorder` (flow
  file), :class:`~privaudit.capture.addon.StreamKeeper` (server-sent events),
  :class:`~privaudit.capture.addon.Session` (meta.json, phase marks) and the
  live analysis; loadable as a script with ``mitmdump``/``mitmweb -s``.
- ``flowwrite.py``: the recorder's serialiser, byte for byte mitmproxy's
  flow-file records, about three times faster.
- ``live.py``: analysis in a low-priority process that follows the flow file,
  never in the proxy's process.
- ``runner.py``: :func:`run_capture` and the audit directory layout.
- ``dashboard.py``: the rich live view and its phase keys.
- ``onboarding.py``: where to point the device, the CA, WireGuard's QR code.
"""

from __future__ import annotations

from pathlib import Path


def addon_path() -> str:
    """Path of the addon script, for ``mitmdump``/``mitmweb -s``."""
    return str(Path(__file__).resolve().with_name("addon.py"))


def __getattr__(name: str):
    # run_capture/CaptureResult import mitmproxy's whole proxy stack; load on use.
    if name in ("run_capture", "CaptureResult", "CaptureReady"):
        from privaudit.capture import runner

        return getattr(runner, name)
    raise AttributeError(name)


__all__ = ["addon_path", "run_capture", "CaptureResult", "CaptureReady"]
