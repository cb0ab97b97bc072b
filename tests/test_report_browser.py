"""The HTML report in a real browser: headless Chromium loads the file with
scripts and the network out of reach, the DOM it builds holds the hostile
values as text, never as elements, the console stays silent (a CSP violation
or a script error would be logged there), and a screenshot shows a page.

Console messages: Chromium started with ``--enable-logging=stderr --v=0``
writes every console message, CSP violations included, to stderr as
``:CONSOLE`` lines; no DevTools protocol is needed. A control page proves the
check sees them.

Needs the Debian package chromium. Outside CI a missing browser skips this
test; under CI=true it fails it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from privaudit.report import render_report

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "sample_findings.json"

pytestmark = pytest.mark.slow

CONSOLE = re.compile(r":CONSOLE[:(]|Uncaught|Refused to|Content Security Policy", re.IGNORECASE)


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
        "--disable-extensions", "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
        f"--user-data-dir={profile}", *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE.search(line)]


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


def test_the_console_check_sees_csp_violations_and_script_errors(tmp_path):
    """The control: a page that breaks its CSP and throws is caught."""
    browser = _chromium()
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">"
        "</head><body><p>x</p><script>nope()</script><img src=\"http://127.0.0.1:9/x.png\"></body></html>",
        encoding="utf-8",
    )
    result = _run(browser, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert _console(result.stderr), result.stderr[-2000:]


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_chromium_renders_hostile_values_as_text(tmp_path, lang):
    browser = _chromium()
    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    report = tmp_path / f"report-{lang}.html"
    render_report(doc, "html", lang, report, show_values=True, home_country="KR")

    result = _run(browser, tmp_path / "profile-dom", "--dump-dom", report.as_uri())
    assert _console(result.stderr) == [], "the report logs nothing: no CSP violation, no script"
    dom = _Dom()
    dom.feed(result.stdout)
    tags = {t for t, _ in dom.tags}
    assert not tags & {"script", "img", "iframe", "object", "embed", "link", "base", "form", "foreignobject"}, tags
    assert not [a for _, attrs in dom.tags for a in attrs if a.startswith("on")]
    assert "svg" in tags and "rect" in tags, "the data-flow picture is inline SVG"
    text = " ".join("".join(dom.text).split())
    assert "<script>alert(1)</script>" in text
    assert '"><img src=x onerror=alert(1)>' in text
    assert "{{7*7}}" in text
    assert "宁波幻方量化投资管理合伙企业" in text
    words = {
        "en": ("Privacy audit report", "CONTAINS UNREDACTED PERSONAL DATA", "The regulators' questions",
               "not observable from traffic", "Cross-border transfers", "National Intelligence Law",
               "Chain of custody", "pinned.deepseek.com"),
        "ko": ("개인정보 보호 점검 보고서", "비식별 처리되지 않은 개인정보 포함", "규제기관의 질문",
               "통신으로 관찰할 수 없음", "개인정보의 국외 이전", "National Intelligence Law",
               "증거 보관 연속성", "pinned.deepseek.com"),
    }[lang]
    for word in words:
        assert word in text, word

    shot = tmp_path / f"report-{lang}.png"
    result = _run(browser, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2000",
                  report.as_uri())
    assert _console(result.stderr) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000, "a blank page compresses far smaller"


def test_the_demo_report_in_chromium(tmp_path):
    """The report of a real pipeline run (privaudit demo), printed to PDF by
    Chromium too: the print stylesheet works outside WeasyPrint."""
    browser = _chromium()
    from privaudit.demo import run_demo

    res = run_demo(tmp_path / "demo")
    doc = json.loads(Path(res.findings).read_text(encoding="utf-8"))
    report = tmp_path / "demo.html"
    render_report(doc, "html", "ko", report, home_country="KR")
    result = _run(browser, tmp_path / "profile", "--dump-dom", report.as_uri())
    assert _console(result.stderr) == []
    assert "chat.deepseek.com" in result.stdout and "<svg" in result.stdout
    pdf = tmp_path / "demo-print.pdf"
    result = _run(browser, tmp_path / "profile-pdf", f"--print-to-pdf={pdf}", "--no-pdf-header-footer",
                  report.as_uri())
    assert _console(result.stderr) == []
    assert pdf.read_bytes().startswith(b"%PDF-")
