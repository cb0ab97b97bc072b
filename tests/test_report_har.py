"""The report from real inputs through the whole pipeline: a HAR file whose
paths, header names, JSON keys and values carry script tags and quotes (and
one entry whose host name no parser accepts, so the report shows the warning),
and the demo's mitmproxy capture; every format in both languages, through the
library and through the ``privaudit report`` command.

Hostile *host names* cannot get through mitmproxy's URL parsing (the entry is
skipped with a warning); tests/test_report_escape.py feeds them in through a
findings document instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from privaudit.audit import analyze
from privaudit.report import FORMATS, LANGS, render_report
from privaudit.report.custody import document_sha256

HERE = Path(__file__).parent / "fixtures" / "report"
HAR = HERE / "hostile.har"
CANARIES = HERE / "hostile.canaries.yaml"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'

pytestmark = pytest.mark.slow


def _need_pdf() -> None:
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError):
        if os.environ.get("CI") == "true":
            pytest.fail("WeasyPrint is required under CI")
        pytest.skip("WeasyPrint is not installed")
    if shutil.which("pdftotext") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pdftotext is required under CI (apt-get install poppler-utils)")
        pytest.skip("pdftotext is not installed")


@pytest.fixture(scope="module")
def har_doc() -> dict:
    doc = analyze([HAR], canaries_path=CANARIES)
    doc["home_country"] = "KR"
    return doc


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self._style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._style = tag == "style"

    def handle_endtag(self, tag):
        self._style = False

    def handle_data(self, data):
        if not self._style:
            self.text.append(data)


def test_the_har_pipeline_finds_the_hostile_locations(har_doc):
    locations = {f["location"] for f in har_doc["findings"]}
    assert f'request.header X-{IMG}' in locations
    assert f'request.body $["{SCRIPT}"]["\\"><img src=x onerror=alert(1)>"]' in locations
    assert "request.query <script>" in locations
    assert any("Invalid Host" in w for w in har_doc["warnings"])


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_from_a_har_file(har_doc, tmp_path, fmt, lang):
    if fmt == "pdf":
        _need_pdf()
    out = tmp_path / f"har.{fmt}"
    render_report(har_doc, fmt, lang, out, show_values=True)
    data = out.read_bytes()
    assert (tmp_path / f"har.{fmt}.sha256").read_text() == f"{hashlib.sha256(data).hexdigest()}  har.{fmt}\n"
    if fmt == "json":
        assert json.loads(data) == har_doc
        return
    if fmt == "pdf":
        # -raw: content-stream order, so a wrapped table cell reads as one run of text
        text = subprocess.run(["pdftotext", "-raw", "-enc", "UTF-8", str(out), "-"], check=True, capture_output=True,
                              text=True).stdout
        # A table cell may wrap anywhere (even inside "</script>"): compare without whitespace.
        text = "".join(text.split())
    elif fmt == "md":
        text = data.decode("utf-8")
        assert SCRIPT not in text and "<img" not in text
        text = text.replace("\\", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    else:
        parser = _Tags()
        parser.feed(data.decode("utf-8"))
        assert not set(parser.tags) & {"script", "img", "iframe", "object", "embed", "link", "base", "form"}
        text = " ".join("".join(parser.text).split())
    for hostile in (f"X-{IMG}", SCRIPT, "Invalid Host"):
        assert (hostile if fmt != "pdf" else "".join(hostile.split())) in text, (fmt, hostile)
    assert document_sha256(har_doc) in text, "the chain of custody names the document's hash"
    assert har_doc["inputs"][0]["sha256"] in text


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "privaudit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.mark.parametrize(
    ("source", "fmt", "lang"),
    [("har", "html", "ko"), ("har", "md", "en"), ("har", "json", "en"), ("demo", "pdf", "ko"), ("demo", "md", "ko"),
     ("findings", "html", "en")],
)
def test_the_report_command(tmp_path, source, fmt, lang):
    """``privaudit report`` from a HAR file, from the demo's capture, and from a
    saved findings document: the format follows the extension."""
    if fmt == "pdf":
        _need_pdf()
    if source == "har":
        inputs = [str(HAR), "--canaries", str(CANARIES)]
    else:
        demo = _cli("demo", "-o", str(tmp_path / "demo"), cwd=tmp_path)
        assert demo.returncode == 0, demo.stderr
        inputs = [str(tmp_path / "demo" / ("flows.mitm" if source == "demo" else "findings.json"))]
    out = tmp_path / f"report.{fmt}"
    result = _cli("report", *inputs, "--lang", lang, "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 1000
    assert (tmp_path / f"report.{fmt}.sha256").exists()
    if fmt in ("html", "md"):
        text = out.read_text(encoding="utf-8")
        assert ("개인정보 보호 점검 보고서" if lang == "ko" else "Privacy audit report") in text
        assert "chat.deepseek.com" in text
