"""The HTML report in a real browser: headless Chromium loads the file, and the
DOM it builds holds the hostile values as text, never as elements.

Needs the Debian package chromium. Outside CI a missing browser skips this
test; under CI=true it fails it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from privaudit.report import render_report

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "sample_findings.json"

pytestmark = pytest.mark.slow


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is required under CI (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


class _Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "style":
            self._skip += 1

    def handle_endtag(self, tag):
        if tag == "style":
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_chromium_renders_hostile_values_as_text(tmp_path, lang):
    browser = _chromium()
    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    report = tmp_path / f"report-{lang}.html"
    render_report(doc, "html", lang, report, show_values=True, home_country="KR")

    dom_html = _run(browser, tmp_path / "profile-dom", "--dump-dom", report.as_uri()).stdout
    dom = _Dom()
    dom.feed(dom_html)
    tags = {t for t, _ in dom.tags}
    assert not tags & {"script", "img", "iframe", "object", "embed", "link", "base", "form"}, tags
    assert not [a for _, attrs in dom.tags for a in attrs if a.startswith("on")]
    text = " ".join("".join(dom.text).split())
    assert "<script>alert(1)</script>" in text
    assert '"><img src=x onerror=alert(1)>' in text
    assert "{{7*7}}" in text
    title = {"en": "Privacy audit report", "ko": "개인정보 보호 점검 보고서"}[lang]
    assert title in text
    marked = {"en": "CONTAINS UNREDACTED PERSONAL DATA", "ko": "비식별 처리되지 않은 개인정보 포함"}[lang]
    assert marked in text

    shot = tmp_path / f"report-{lang}.png"
    _run(browser, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000, "a blank page compresses far smaller"
