"""The PDF report through the real renderer (WeasyPrint), read back with
poppler's pdftotext/pdffonts/pdftoppm.

Needs: pip install 'privaudit[pdf]'; apt packages libpango-1.0-0
libpangoft2-1.0-0 fonts-nanum fonts-noto-cjk poppler-utils. Outside CI a missing piece
skips these tests; under CI=true it fails them.
"""

from __future__ import annotations

import json
import os
import re
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


def _has_font(family: str) -> bool:
    if shutil.which("fc-list") is None:
        return False
    return bool(subprocess.run(["fc-list", family], capture_output=True, text=True).stdout.strip())


def test_korean_text_uses_a_cjk_font(pdfs):
    fonts = subprocess.run(["pdffonts", str(pdfs[("ko", True)])], check=True, capture_output=True, text=True).stdout
    # NanumGothic (fonts-nanum) first: a 4.7 MB face instead of a 20 MB Noto
    # CJK collection, which WeasyPrint copies whole for every face it uses.
    assert "NanumGothic" in fonts or "CJK" in fonts, fonts
    if not _has_font("NanumGothic"):
        _missing("NanumGothic (apt-get install fonts-nanum)")
    assert "NanumGothic" in fonts, fonts
    text = " ".join(_pages(pdfs[("ko", True)]))
    for word in ("개인정보", "국외", "수신자", "중국 (CN)"):
        assert word in text, word


def test_hostile_values_are_text_in_the_pdf(pdfs):
    text = " ".join(_pages(pdfs[("en", True)]))
    assert "<script>alert(1)</script>" in text
    assert "{{7*7}}" in text
    assert "Kim <script>alert(1)</script>" in text, "auditor fields"
    assert "pin<script>alert(1)</script>.example" in text, "TLS failures"


def test_chinese_text_renders(pdfs):
    for key in (("en", True), ("ko", True)):
        text = " ".join(_pages(pdfs[key]))
        assert "宁波幻方量化投资管理合伙企业" in text


SECTIONS = {
    "en": ["Executive summary", "The regulators' questions", "Cross-border transfers", "Recipients and third parties",
           "Transmission security", "Evidence appendix", "Method, coverage and chain of custody"],
    "ko": ["요약", "규제기관의 질문", "개인정보의 국외 이전", "수신자 및 제3자", "전송 보안", "증거 부록",
           "방법, 분석 범위 및 증거 보관 연속성"],
}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_table_of_contents_points_at_the_right_pages(pdfs, lang):
    """The contents list each section with the page it starts on (CSS
    target-counter), and every page after the cover carries its section in the
    running header (string-set)."""
    pages = _pages(pdfs[(lang, True)])
    toc = pages[0]
    for number, title in enumerate(SECTIONS[lang], start=1):
        match = re.search(re.escape(f"{number}. {title}") + r"\s*\.*\s*(\d+)", toc)
        assert match, (title, toc)
        page = int(match.group(1))
        assert f"{number}. {title}" in pages[page - 1], (title, page)
        # The running header names the section on the page it starts.
        header = pages[page - 1][:200]
        assert f"{number}. {title}" in header, (title, header)


def test_the_sections_appear_in_order(pdfs):
    text = " ".join(_pages(pdfs[("en", True)]))
    positions = [text.find(f"{n}. {title}", text.find("Contents") + 1500) for n, title in
                 enumerate(SECTIONS["en"], start=1)]
    assert -1 not in positions and positions == sorted(positions)


def test_pages_render_to_images(pdfs, tmp_path):
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdfs[("ko", True)]), str(tmp_path / "page")], check=True)
    pngs = sorted(tmp_path.glob("page*.png"))
    assert len(pngs) == len(_pages(pdfs[("ko", True)]))
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 8_000, png.name


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


def test_only_the_pdf_prefers_nanum_gothic():
    """The PDF's stylesheet puts NanumGothic before Noto Sans CJK (memory: see
    _report.css.j2); the HTML report keeps its own font list."""
    from privaudit.report import _render_template

    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    pdf_html = _render_template(doc, "pdf", "ko", False, "KR", "r.pdf")
    html = _render_template(doc, "html", "ko", False, "KR", "r.html")
    assert 'html { font-family: "NanumGothic", "Noto Sans CJK KR"' in pdf_html
    assert 'font-family="NanumGothic, Noto Sans CJK KR' in pdf_html  # the flow map
    assert "NanumGothic" not in html


def test_user_agent_stylesheet_is_scoped_and_lists_keep_their_markers(weasyprint, poppler, tmp_path):
    """WeasyPrint's stylesheet gives every element ::marker and footnote/note
    pseudo-element rules and keeps a computed style for each (a third of the
    PDF's peak memory); the report scopes them. Should a WeasyPrint upgrade
    change that stylesheet, _html_class falls back to the stock one and this
    test says so. List markers must still be drawn."""
    from privaudit.report import _html_class

    cls = _html_class(weasyprint)
    assert cls is not weasyprint.HTML, "the scoped user-agent stylesheet is not in use"
    html = cls(string="<ol><li>alpha</li><li>beta</li></ol><ul><li>gamma</li></ul>", base_url=None,
               url_fetcher=_refusing_fetcher())
    out = tmp_path / "list.pdf"
    out.write_bytes(html.write_pdf())
    text = " ".join(_pages(out))
    assert "1. alpha" in text and "2. beta" in text, text
    assert "• gamma" in text, text
