"""privaudit.report.render_report: every format and language from the sample
findings document, safe output files, errors that leave nothing behind.

HTML safety against hostile data is in test_report_escape.py, the PDF renderer
in test_report_pdf.py, a real browser in test_report_browser.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from privaudit.errors import ConfigError, InputError
from privaudit.report import FORMATS, LANGS, render_report
from privaudit.report.escape import md_escape

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "sample_findings.json"
TEXT_FORMATS = ("html", "md", "json")

UNREDACTED_MARK = {
    "en": "CONTAINS UNREDACTED PERSONAL DATA — internal use",
    "ko": "비식별 처리되지 않은 개인정보 포함 — 내부용",
}
TITLE = {"en": "Privacy audit report", "ko": "개인정보 보호 점검 보고서"}
DEMO_MARK = {"en": "demo-only imitation addresses", "ko": "데모 전용 모조 주소"}


@pytest.fixture
def doc() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def _pdf_available() -> bool:
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def _formats():
    for fmt in FORMATS:
        marks = []
        if fmt == "pdf" and not _pdf_available() and os.environ.get("CI") != "true":
            marks.append(pytest.mark.skip(reason="WeasyPrint is not installed (pip install 'privaudit[pdf]')"))
        yield pytest.param(fmt, marks=marks)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("fmt", list(_formats()))
def test_every_format_and_language_renders_a_private_file(doc, tmp_path, fmt, lang):
    out = tmp_path / f"report.{fmt}"
    render_report(doc, fmt, lang, out)

    assert out.is_file() and out.stat().st_size > 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name, out.name + ".sha256"], "no temporary file left"
    data = out.read_bytes()
    sidecar = (tmp_path / (out.name + ".sha256")).read_text(encoding="utf-8")
    assert sidecar == f"{hashlib.sha256(data).hexdigest()}  {out.name}\n", "sha256sum -c format"
    assert stat.S_IMODE((tmp_path / (out.name + ".sha256")).stat().st_mode) == 0o600
    if fmt == "pdf":
        assert data.startswith(b"%PDF-")
    elif fmt == "json":
        assert json.loads(data) == doc
    else:
        text = data.decode("utf-8")
        assert TITLE[lang] in text
        assert "chat.deepseek.com" in text


@pytest.mark.parametrize("fmt", ["html", "md"])
@pytest.mark.parametrize("lang", LANGS)
def test_texts_follow_the_language(doc, tmp_path, fmt, lang):
    out = tmp_path / f"r.{fmt}"
    render_report(doc, fmt, lang, out, home_country="KR")
    text = out.read_text(encoding="utf-8")
    other = "ko" if lang == "en" else "en"
    assert TITLE[lang] in text and TITLE[other] not in text
    if lang == "ko":
        for word in ("개인정보", "국외", "수신자", "중국 (CN)", "대화 내용"):
            assert word in text, word
    else:
        for word in ("China (CN)", "Chat content", "Risk rating"):
            assert word in text, word


def test_json_is_the_document_itself_in_its_own_key_order(doc, tmp_path):
    out = tmp_path / "f.json"
    render_report(doc, "json", "en", out)
    text = out.read_text(encoding="utf-8")
    assert list(json.loads(text)) == list(doc)
    assert list(json.loads(text)["findings"][0]) == list(doc["findings"][0])
    assert "홍…동" in text, "UTF-8, not \\u escapes"


@pytest.mark.parametrize("fmt", ["html", "md"])
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("show_values", [False, True])
def test_show_values_marks_the_report_top_and_bottom(doc, tmp_path, fmt, lang, show_values):
    out = tmp_path / f"r.{fmt}"
    render_report(doc, fmt, lang, out, show_values=show_values)
    text = out.read_text(encoding="utf-8")
    assert text.count(UNREDACTED_MARK[lang]) == (2 if show_values else 0)
    if fmt == "html" and show_values:
        assert "@top-right" in text, "printed pages carry the mark in their margin"


def test_a_document_with_unredacted_values_is_marked_without_asking(doc, tmp_path):
    doc["redacted"] = False
    out = tmp_path / "r.html"
    render_report(doc, "html", "en", out)
    assert UNREDACTED_MARK["en"] in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["html", "md"])
@pytest.mark.parametrize("lang", LANGS)
def test_demo_documents_carry_a_banner(doc, tmp_path, fmt, lang):
    out = tmp_path / f"r.{fmt}"
    render_report(doc, fmt, lang, out)
    assert DEMO_MARK[lang] in out.read_text(encoding="utf-8")
    doc["demo"] = False
    for e in doc["endpoints"]:
        e["demo_address"] = False
    render_report(doc, fmt, lang, out)
    assert DEMO_MARK[lang] not in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_evidence_is_shown_as_the_document_has_it(doc, tmp_path, fmt):
    out = tmp_path / f"r.{fmt}"
    render_report(doc, fmt, "en", out)
    text = out.read_text(encoding="utf-8")
    plain = [f["evidence"] for f in doc["findings"] if f["evidence"].isprintable() and "<" not in f["evidence"]]
    assert len(plain) > 20
    for evidence in plain:
        # Markdown shows it escaped (test@x would otherwise become a mailto link).
        assert (md_escape(evidence) if fmt == "md" else evidence) in text


@pytest.mark.parametrize(
    ("fmt", "lang", "message"),
    [
        ("docx", "en", "unknown report format 'docx'"),
        ("HTML", "en", "unknown report format 'HTML'"),
        ("html", "fr", "unknown report language 'fr'"),
        ("md", "", "unknown report language ''"),
    ],
)
def test_unknown_format_or_language_is_a_config_error(doc, tmp_path, fmt, lang, message):
    out = tmp_path / "r.out"
    with pytest.raises(ConfigError, match=message):
        render_report(doc, fmt, lang, out)
    assert not out.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema_version=2), "schema_version 2"),
        (lambda d: d.pop("schema_version"), "schema_version None"),
    ],
)
def test_unreadable_documents_are_input_errors(doc, tmp_path, change, message):
    change(doc)
    out = tmp_path / "r.html"
    with pytest.raises(InputError, match=message):
        render_report(doc, "html", "en", out)
    assert not out.exists()


def test_a_list_is_not_a_document(tmp_path):
    with pytest.raises(InputError, match="JSON object"):
        render_report([], "json", "en", tmp_path / "r.json")


def test_a_minimal_document_renders(tmp_path):
    doc = {"schema_version": 1}
    for fmt in TEXT_FORMATS:
        render_report(doc, fmt, "ko", tmp_path / f"r.{fmt}")
    assert "개인정보가 발견되지 않았습니다" in (tmp_path / "r.html").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# Atomic, private writes


def _leftovers(directory: Path, keep: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in (keep, keep + ".sha256"))


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_a_failure_while_writing_leaves_no_file(doc, tmp_path, monkeypatch, fmt):
    out = tmp_path / f"r.{fmt}"

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(ConfigError, match="No space left on device"):
        render_report(doc, fmt, "en", out)
    assert list(tmp_path.iterdir()) == []


def test_a_failure_mid_render_leaves_the_old_file_untouched(doc, tmp_path, monkeypatch):
    out = tmp_path / "r.html"
    out.write_text("previous report", encoding="utf-8")

    import jinja2

    def explode(self, *args, **kwargs):
        raise RuntimeError("boom in the middle of rendering")

    monkeypatch.setattr(jinja2.Template, "render", explode)
    with pytest.raises(RuntimeError, match="boom"):
        render_report(doc, "html", "en", out)
    assert out.read_text(encoding="utf-8") == "previous report"
    assert _leftovers(tmp_path, out.name) == []


def test_an_interrupted_rename_leaves_no_temporary_file(doc, tmp_path, monkeypatch):
    out = tmp_path / "r.md"

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        render_report(doc, "md", "en", out)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_readable_file_is_replaced_by_a_private_one(doc, tmp_path):
    out = tmp_path / "r.html"
    out.write_text("old", encoding="utf-8")
    out.chmod(0o644)
    old_umask = os.umask(0)
    try:
        render_report(doc, "html", "en", out)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("make_out", "message"),
    [
        (lambda d: d, "is a directory"),
        (lambda d: d / "missing" / "r.html", "cannot write the report"),
    ],
)
def test_unwritable_outputs_are_config_errors(doc, tmp_path, make_out, message):
    with pytest.raises(ConfigError, match=message):
        render_report(doc, "html", "en", make_out(tmp_path))


def test_pdf_without_weasyprint_says_how_to_install(doc, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import raises ImportError
    out = tmp_path / "r.pdf"
    with pytest.raises(ConfigError, match=r"pip install 'privaudit\[pdf\]'"):
        render_report(doc, "pdf", "en", out)
    assert list(tmp_path.iterdir()) == []


def test_the_document_is_not_modified(doc, tmp_path):
    before = copy.deepcopy(doc)
    for fmt in TEXT_FORMATS:
        render_report(doc, fmt, "en", tmp_path / f"r.{fmt}", show_values=True)
    assert doc == before
