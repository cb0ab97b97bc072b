"""The PDF report through the real renderer (WeasyPrint), read back with
poppler's pdftotext/pdffonts/pdftoppm.

Needs: pip install 'privaudit[pdf]'; apt packages libpango-1.0-0
libpangoft2-1.0-0 fonts-noto-cjk poppler-utils. Outside CI a missing piece
skips these tests; under CI=true it fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from privaudit.report import _refusing_fetcher, render_report

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "sample_findings.json"

UNREDACTED_MARK = {
    "en": "CONTAINS UNREDACTED PERSONAL DATA — internal use",
    "ko": "비식별 처리되지 않은 개인정보 포함 — 내부용",
}

pytestmark = pytest.mark.slow


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required under CI")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def weasyprint():
    try:
        import weasyprint
    except (ImportError, OSError):
        _missing("WeasyPrint (pip install 'privaudit[pdf]', apt-get install libpango-1.0-0 libpangoft2-1.0-0)")
    return weasyprint


@pytest.fixture(scope="module")
def poppler():
    for tool in ("pdftotext", "pdffonts", "pdftoppm"):
        if shutil.which(tool) is None:
            _missing(f"{tool} (apt-get install poppler-utils)")


@pytest.fixture(scope="module")
def pdfs(weasyprint, poppler, tmp_path_factory) -> dict[tuple[str, bool], Path]:
    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    out_dir = tmp_path_factory.mktemp("pdf")
    made = {}
    for lang, show_values in (("en", True), ("ko", True), ("ko", False)):
        out = out_dir / f"report-{lang}-{show_values}.pdf"
        render_report(doc, "pdf", lang, out, show_values=show_values, home_country="KR")
        made[(lang, show_values)] = out
    return made


def _pages(pdf: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", "-layout", str(pdf), "-"],
                          check=True, capture_output=True, text=True).stdout
    return [" ".join(page.split()) for page in text.split("\f") if page.strip()]


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_every_page_is_marked_and_numbered(pdfs, lang):
    pages = _pages(pdfs[(lang, True)])
    assert len(pages) > 3
    for number, page in enumerate(pages, start=1):
        assert UNREDACTED_MARK[lang] in page, f"page {number}"
        assert f"{number} / {len(pages)}" in page, f"page {number}"


def test_without_show_values_no_page_is_marked(pdfs):
    pages = _pages(pdfs[("ko", False)])
    assert pages and not any(UNREDACTED_MARK["ko"] in p for p in pages)
    assert "개인정보 보호 점검 보고서" in pages[0]
    assert "데모 전용 모조 주소" in pages[0]


def test_korean_text_uses_a_cjk_font(pdfs):
    fonts = subprocess.run(["pdffonts", str(pdfs[("ko", True)])], check=True, capture_output=True, text=True).stdout
    assert "CJK" in fonts, fonts
    text = " ".join(_pages(pdfs[("ko", True)]))
    for word in ("개인정보", "국외", "수신자", "중국 (CN)"):
        assert word in text, word


def test_hostile_values_are_text_in_the_pdf(pdfs):
    text = " ".join(_pages(pdfs[("en", True)]))
    assert "<script>alert(1)</script>" in text
    assert "{{7*7}}" in text


def test_pages_render_to_images(pdfs, tmp_path):
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(pdfs[("ko", True)]),
                    str(tmp_path / "page")], check=True)
    (png,) = tmp_path.glob("page*.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_pdf_file_is_private(pdfs):
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in pdfs.values())


def test_the_renderer_fetches_nothing(weasyprint):
    """Even HTML that asks for resources makes no connection: a loopback
    listener sees nobody knock."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        server.setblocking(False)
        port = server.getsockname()[1]
        html = (f'<html><head><style>@import url("http://127.0.0.1:{port}/a.css");'
                f'body {{ background: url("http://127.0.0.1:{port}/b.png") }}</style></head>'
                f'<body><img src="http://127.0.0.1:{port}/c.png"><p>x</p></body></html>')
        pdf = weasyprint.HTML(string=html, base_url=None, url_fetcher=_refusing_fetcher()).write_pdf()
        assert pdf.startswith(b"%PDF-")
        with pytest.raises(BlockingIOError):
            server.accept()
    with pytest.raises(ValueError, match="load no external resources"):
        _refusing_fetcher()("http://127.0.0.1/x")
