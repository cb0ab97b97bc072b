"""Hostile values in the findings document stay text in every report format.

The sample document has an endpoint whose host name, operator, evidence,
locations and rule ids carry script tags, attribute breakouts, template syntax,
quotes, a right-to-left override and control characters, as a malicious server
or a tampered findings file could.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from privaudit.report import LANGS, render_bytes
from privaudit.report.escape import css_string, md_escape, neutralize

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "sample_findings.json"

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
TEMPLATE = "{{7*7}}"
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

#: Every element the report template itself writes.
TEMPLATE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "nav", "section", "footer",
    "h1", "h2", "h3", "h4", "p", "ol", "ul", "li", "a", "div", "span", "strong", "br",
    "table", "thead", "tbody", "tr", "th", "td", "code",
    "figure", "figcaption", "svg", "title", "rect", "path", "text",
}
#: Every attribute the report template itself writes (SVG presentation attributes included).
TEMPLATE_ATTRIBUTES = {
    "lang", "charset", "http-equiv", "content", "name", "href", "class", "id", "role", "colspan",
    "xmlns", "aria-label", "viewbox", "width", "height", "preserveaspectratio", "font-family", "font-size",
    "font-weight", "x", "y", "rx", "fill", "stroke", "stroke-width", "stroke-opacity", "d",
}


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.style: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        (self.style if self._in_style else self.text).append(data)


def _parse(html: str) -> _Collect:
    p = _Collect()
    p.feed(html)
    p.close()
    return p


@pytest.fixture(scope="module", params=[(lang, sv) for lang in LANGS for sv in (False, True)],
                ids=lambda p: f"{p[0]}-{'values' if p[1] else 'redacted'}")
def parsed(doc, request) -> tuple[str, _Collect]:
    lang, show_values = request.param
    html = render_bytes(doc, "html", lang, show_values, home_country="KR").decode("utf-8")
    return html, _parse(html)


def test_no_element_or_attribute_comes_from_data(parsed):
    _, p = parsed
    tags = {t for t, _ in p.tags}
    assert tags <= TEMPLATE_TAGS, tags - TEMPLATE_TAGS
    for tag, attrs in p.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert "src" not in attrs and "srcdoc" not in attrs, (tag, attrs)
        assert set(attrs) <= TEMPLATE_ATTRIBUTES, attrs


def test_hostile_strings_are_shown_as_text(parsed):
    _, p = parsed
    text = "".join(p.text)
    for hostile in (SCRIPT, IMG, f"Evil {SCRIPT} Corp {TEMPLATE}", "javascript:alert(1)//"):
        assert hostile in text
    assert "example{{7*7}}" in text and "example49" not in text, "template syntax in data is never evaluated"
    assert "\u202e" not in text and "⟨U+202E⟩" in text, "bidi override shown, not applied"
    assert "\x00" not in text and "\x07" not in text


def test_nothing_is_loaded_from_anywhere(parsed):
    html, p = parsed
    metas = [a for t, a in p.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert [m["content"] for m in metas] == [CSP]
    assert not [t for t, _ in p.tags if t in ("script", "link", "img", "iframe", "object", "embed", "base", "form")]
    hrefs = [a["href"] for t, a in p.tags if "href" in a]
    assert hrefs and all(h.startswith("#ep-") or h[1:].isidentifier() for h in hrefs), hrefs
    style = "".join(p.style)
    for needle in ("url(", "@import", "http:", "https:", "//"):
        assert needle not in style.replace("/*", "").replace("*/", ""), needle
    assert "<script" not in html


def test_the_csp_meta_comes_before_anything_else_in_head(parsed):
    _, p = parsed
    order = [t for t, _ in p.tags]
    assert order[:4] == ["html", "head", "meta", "meta"]
    assert p.tags[3][1]["http-equiv"] == "Content-Security-Policy"


# ---------------------------------------------------------------------------
# Markdown


@pytest.mark.parametrize("lang", LANGS)
def test_markdown_has_no_raw_html_or_links_from_data(doc, lang):
    md = render_bytes(doc, "md", lang).decode("utf-8")
    assert SCRIPT not in md and "<img" not in md and "<" not in md.replace("&lt;", "")
    assert not re.search(r"(?<!\\)\]\(", md), "no unescaped ]( that could close a link"
    assert "{{7\\*7}}" in md


@pytest.mark.parametrize("lang", LANGS)
def test_markdown_renders_to_plain_text_and_whole_tables(doc, lang):
    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py comes with rich")
    md = render_bytes(doc, "md", lang).decode("utf-8")
    parser = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])
    tokens = parser.parse(md)
    kinds = {t.type for t in tokens}
    assert "html_block" not in kinds
    inline_kinds = {c.type for t in tokens if t.children for c in t.children}
    assert not inline_kinds & {"html_inline", "link_open", "image", "code_inline", "s_open"}, inline_kinds
    # Every row of every table has as many cells as its header.
    widths, row = [], None
    for t in tokens:
        if t.type == "table_open":
            widths.append(set())
        elif t.type == "tr_open":
            row = 0
        elif t.type in ("th_open", "td_open"):
            row += 1
        elif t.type == "tr_close":
            widths[-1].add(row)
    assert widths and all(len(w) == 1 for w in widths), widths
    html = parser.render(md)
    p = _parse(html)
    assert {t for t, _ in p.tags} <= {"h1", "h2", "h3", "h4", "p", "ul", "ol", "li", "strong", "blockquote", "table",
                                      "thead", "tbody", "tr", "th", "td", "hr", "br", "em"}
    text = "".join(p.text)
    assert SCRIPT in text and IMG in text and "[link](http://evil.example/)" in text


# ---------------------------------------------------------------------------
# The escaping functions


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain.example.com", "plain.example.com"),
        ("홍길동 數美", "홍길동 數美"),
        ("a\u202eb", "a⟨U+202E⟩b"),
        ("line\nbreak\ttab\x00", "line⟨U+000A⟩break⟨U+0009⟩tab⟨U+0000⟩"),
        ("zero\u200bwidth\ufeff", "zero⟨U+200B⟩width⟨U+FEFF⟩"),
        ("a\u2028b", "a⟨U+2028⟩b"),
        ("non\u00a0breaking", "non\u00a0breaking"),
    ],
)
def test_neutralize(raw, shown):
    assert neutralize(raw) == shown


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("chat.deepseek.com", "chat.deepseek.com"),
        ("a|b", "a\\|b"),
        ("`code`", "\\`code\\`"),
        ("[x](http://e.example)", "\\[x\\](http\\://e.example)"),
        ("![i](x)", "!\\[i\\](x)"),
        ("<script>", "&lt;script&gt;"),
        ("a & b", "a &amp; b"),
        ("*bold* _it_ ~~s~~", "\\*bold\\* \\_it\\_ \\~\\~s\\~\\~"),
        ("# heading", "\\# heading"),
        ("- item", "\\- item"),
        ("+ item", "\\+ item"),
        ("1. item", "1\\. item"),
        ("12) item", "12\\) item"),
        ("1.", "1\\."),
        ("101.126.0.10", "101.126.0.10"),
        ("2026-11-20", "2026-11-20"),
        ("a-b 1.5", "a-b 1.5"),
        ("www.evil.example", "www\\.evil.example"),
        ("mail@evil.example", "mail\\@evil.example"),
        ("back\\slash", "back\\\\slash"),
        ("two\nlines", "two⟨U+000A⟩lines"),
        ("{{7*7}}", "{{7\\*7}}"),
    ],
)
def test_md_escape(raw, escaped):
    assert md_escape(raw) == escaped


@pytest.mark.parametrize(
    ("raw", "css"),
    [
        ("abc", '"abc"'),
        ("a b", '"a\\000020b"'),
        ('"; } body { x', '"\\000022\\00003b\\000020\\00007d\\000020body\\000020\\00007b\\000020x"'),
        ("한", '"\\00d55c"'),
    ],
)
def test_css_string(raw, css):
    assert css_string(raw) == css


def test_new_sections_show_hostile_values_as_text(parsed):
    """Auditor fields, TLS failures, TLS versions, phase names, the capture
    environment and party reasons come from the document too."""
    _, p = parsed
    text = "".join(p.text)
    for hostile in (f"Kim {SCRIPT}", f"{IMG} Lab", f"pin{SCRIPT}.example", f"{IMG}{TEMPLATE}",
                    f"TLSv9{SCRIPT}", f"background {SCRIPT}", f"regular{SCRIPT}", f"third party {SCRIPT}{IMG}"):
        assert hostile in text, hostile


def test_the_svg_takes_only_numbers_and_colours_from_python(parsed):
    _, p = parsed
    svg = [(t, a) for t, a in p.tags if t in ("svg", "rect", "path", "text")]
    assert [t for t, _ in svg].count("svg") == 1
    for tag, attrs in svg:
        for name in ("x", "y", "width", "height", "rx", "font-size", "stroke-width"):
            if name in attrs and tag != "svg":
                assert re.fullmatch(r"[0-9.]+", attrs[name]), (tag, name, attrs[name])
        for name in ("fill", "stroke"):
            if name in attrs:
                assert re.fullmatch(r"#[0-9a-f]{6}|none", attrs[name]), (tag, name, attrs[name])
        if "d" in attrs:
            assert re.fullmatch(r"[MC0-9, -]+", attrs["d"]), attrs["d"]
