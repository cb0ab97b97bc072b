"""The report stage: a findings document rendered as HTML, Markdown, PDF or JSON.

The report reads nothing but the findings document (a dict, as
:func:`privaudit.audit.analyze` returns it or as loaded from a saved JSON
file), so a report can be made again later without the captures.

Output is written atomically with mode 0600: the file holds captured personal
data (redacted by default), and a failed render leaves no file behind.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from privaudit import resources
from privaudit.errors import ConfigError
from privaudit.fsutil import atomic_write
from privaudit.report import custody, escape
from privaudit.report.i18n import LANGS, Translator
from privaudit.report.viewmodel import build_view, check_document

__all__ = ["FORMATS", "LANGS", "render_report", "render_bytes", "sidecar_path"]

FORMATS: tuple[str, ...] = ("html", "json", "md", "pdf")

PDF_INSTALL_HINT = (
    "PDF reports need WeasyPrint: pip install 'privaudit[pdf]' "
    "(it also needs the Pango library, e.g. apt-get install libpango-1.0-0 libpangoft2-1.0-0, "
    "and fonts for Korean and Chinese text, e.g. apt-get install fonts-nanum fonts-noto-cjk)"
)


def _environment(fmt: str) -> Environment:
    loader = FileSystemLoader(str(resources.templates_dir()))
    if fmt == "md":
        env = Environment(
            loader=loader,
            autoescape=False,
            undefined=StrictUndefined,
            finalize=escape.md_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
    else:
        env = Environment(
            loader=loader,
            # Everything the HTML environment loads (the page, its macros, its
            # stylesheet) is escaped; nothing there is meant to emit raw data.
            autoescape=select_autoescape(enabled_extensions=("html.j2", "css.j2"), default=True),
            undefined=StrictUndefined,
            finalize=escape.html_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    env.filters["css_string"] = escape.css_string
    return env


def _render_template(doc: Mapping, fmt: str, lang: str, show_values: bool, home_country: str | None,
                     report_name: str) -> str:
    view = build_view(doc, lang, show_values=show_values, home_country=home_country, fmt=fmt,
                      report_name=report_name, rendered_at=custody.rendered_at())
    env = _environment(fmt)
    template = env.get_template("report.md.j2" if fmt == "md" else "report.html.j2")
    return template.render(view=view, t=Translator(lang))


def _weasyprint():
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: WeasyPrint found, Pango not
        raise ConfigError(f"{PDF_INSTALL_HINT} ({type(exc).__name__}: {exc})") from exc
    return weasyprint


# WeasyPrint's user-agent stylesheet gives every element ``::marker``,
# ``::footnote-call``, ``::footnote-marker``, ``::note-call``, ``::note-marker``
# and ``::note-callback`` rules, and WeasyPrint keeps a computed style for each
# pseudo-element that has rules, drawn or not: six per element, about 74,000
# for a 12,000-element report, which was a third of the PDF's peak memory.
# The report has no footnotes or notes, and only ``li`` (and ``summary``) are
# list items that draw a marker, so those rules are scoped to what they can
# apply to; the pages come out the same.
_UA_NOTES_RULE = re.compile(r"^::(?:footnote|note)-[a-z]+ \{[^}]*\}[ \t]*$", re.M)


@functools.lru_cache(maxsize=None)
def _html_class(weasyprint):
    """``weasyprint.HTML`` with the scoped user-agent stylesheet, or plain
    ``weasyprint.HTML`` where this WeasyPrint's stylesheet is not the one
    expected (the PDF is then the same, only laid out with more memory)."""
    try:
        from weasyprint import html as wp_html

        stock = wp_html.UA_STYLESHEET
        stock_sheets = weasyprint.HTML._ua_stylesheets
        text = wp_html.UA
    except (ImportError, AttributeError):
        return weasyprint.HTML
    lean = text.replace("\n::marker {", "\nli::marker, summary::marker {", 1)
    lean = _UA_NOTES_RULE.sub("", lean)
    if lean == text or re.search(r"^::(?:marker|footnote|note)", lean, re.M):
        return weasyprint.HTML
    try:
        sheet = weasyprint.CSS(string=lean, counter_style=wp_html.UA_COUNTER_STYLE)
    except Exception:  # noqa: BLE001 - any trouble: the stock stylesheet
        return weasyprint.HTML

    class _HTML(weasyprint.HTML):
        def _ua_stylesheets(self, *args, **kwargs):
            return [sheet if s is stock else s for s in stock_sheets(self, *args, **kwargs)]

    return _HTML


def _refusing_fetcher():
    """A WeasyPrint URL fetcher that loads nothing: the report is self-contained,
    and a URL in it could only come from hostile data."""

    def refuse(url, *args, **kwargs):
        raise ValueError(f"privaudit reports load no external resources (refused {url[:80]!r})")

    try:  # WeasyPrint >= 66 takes a URLFetcher object
        from weasyprint.urls import URLFetcher
    except ImportError:
        return refuse

    class _Refusing(URLFetcher):
        def fetch(self, url, headers=None):
            refuse(url)

    return _Refusing()


def render_bytes(
    doc: Mapping,
    fmt: str,
    lang: str,
    show_values: bool = False,
    *,
    home_country: str | None = None,
    report_name: str = "",
) -> bytes:
    """The report as bytes, without writing anything; ``report_name`` is the
    file name the chain-of-custody block refers to (its ``.sha256`` file)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if lang not in LANGS:
        raise ConfigError(f"unknown report language {lang!r}; choose one of {', '.join(LANGS)}")
    check_document(doc)
    if fmt == "json":
        # The document itself, in its own key order.
        return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    weasyprint = _weasyprint() if fmt == "pdf" else None  # fail before the work
    text = _render_template(doc, fmt, lang, show_values, home_country, report_name)
    if weasyprint is not None:
        # The PDF is the HTML report laid out for print (@page rules in its CSS).
        html = _html_class(weasyprint)(string=text, base_url=None, url_fetcher=_refusing_fetcher())
        del text
        return html.write_pdf()
    return text.encode("utf-8")


def sidecar_path(out: Path) -> Path:
    """Where the report's detached SHA-256 goes: ``<report>.sha256``."""
    out = Path(out)
    return out.with_name(out.name + ".sha256")


def write_report(out: Path, data: bytes) -> None:
    """Write ``data`` to ``out`` with mode 0600, all or nothing
    (:func:`privaudit.fsutil.atomic_write`), then its SHA-256 to
    ``<out>.sha256`` (:mod:`privaudit.report.custody`); a path that cannot be
    written is the user's to fix, so it is a :class:`ConfigError` naming it."""
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"{out}: is a directory; give a file name for the report")
    for path, content in ((out, data), (sidecar_path(out), custody.sidecar_text(out.name, data))):
        try:
            atomic_write(path, content)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write the report: {exc.strerror or exc}") from exc


def render_report(
    doc: dict,
    fmt: str,
    lang: str,
    out: Path,
    show_values: bool = False,
    *,
    home_country: str | None = None,
) -> None:
    """Render the findings document ``doc`` as ``fmt`` (html|json|md|pdf) in
    ``lang`` (en|ko) to ``out``.

    ``show_values`` marks every page as holding unredacted personal data (the
    report shows evidence exactly as the document has it; a document made with
    ``redacted: false`` is marked the same way). ``home_country`` is the
    user's own country (ISO code) for judging cross-border transfers.

    Raises :class:`~privaudit.errors.ConfigError` for an unknown format or
    language, a missing PDF renderer or an unwritable ``out``, and
    :class:`~privaudit.errors.InputError` for a document this version cannot
    read. Nothing is written unless the whole report rendered. The report's
    SHA-256 is written beside it as ``<out>.sha256`` (``sha256sum -c``).
    """
    data = render_bytes(doc, fmt, lang, show_values, home_country=home_country, report_name=Path(out).name)
    write_report(Path(out), data)
