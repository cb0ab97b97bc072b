"""The demo's test identity: the canary values the imitation app sends.

Written as a canary file (CONTRACT.md format) so the analysis finds them in
whatever encoding the imitation third parties use.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from privaudit.fsutil import atomic_write

EMAIL = "minji.demo@example.org"
PHONE = "+82 10-2345-6789"
NAME_LATIN = "Kim Minji"
NAME_KO = "김민지"
ADVERTISING_ID = "6f1c2a9e-4b7d-4e1f-9a3c-2d5e8b7f0a41"
ANDROID_ID = "9c4e1f7a2b6d3e80"
# A Luhn-valid IMEI from the GSMA's published examples, not a real device.
IMEI = "490154203237518"
LAT, LON = 37.5665, 126.9780  # Seoul City Hall
CHAT_PROMPT = "My blood test says HbA1c 7.9%, what should I tell my doctor at Severance Hospital?"


def canaries() -> dict:
    return {
        "email": EMAIL,
        "phone": PHONE,
        "name": [NAME_LATIN, NAME_KO],
        "advertising_id": ADVERTISING_ID,
        "device_id": [ANDROID_ID, IMEI],
        "location": {"lat": LAT, "lon": LON},
        "chat_content": CHAT_PROMPT,
    }


def write_canaries(path: Path) -> Path:
    """Write the demo identity as a canary YAML file (mode 0600)."""
    text = "# privaudit demo: the imitation app's test identity (not a real person)\n"
    text += yaml.safe_dump(canaries(), allow_unicode=True, sort_keys=False)
    atomic_write(path, text.encode("utf-8"))
    return path
