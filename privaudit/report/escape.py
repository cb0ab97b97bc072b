"""Making untrusted strings safe to show, per output format.

Host names, rule ids, locations and evidence come from captured traffic, so a
hostile app or server chooses them. HTML escaping is Jinja's autoescape; this
module adds what autoescape does not cover:

- :func:`neutralize`: control and invisible formatting characters (C0/C1
  controls, bidi overrides such as U+202E, zero-width characters) are shown as
  ``⟨U+202E⟩`` instead of silently reordering or hiding text in every format
  (the "Trojan Source" trick, CVE-2021-42574);
- :func:`md_escape`: Markdown has no autoescape, so text is escaped so that it
  cannot open a link, an image, HTML, a code span, a table cell or a block;
- :func:`css_string`: a quoted CSS string for ``@page`` margin boxes.
"""

from __future__ import annotations

import re
import unicodedata

from markupsafe import Markup

# Cc: C0/C1 controls (newline, tab, NUL, ESC, ...); Cf: format characters (bidi
# embeddings/overrides/isolates, zero-width space/joiners, BOM); Zl/Zp: the
# Unicode line and paragraph separators; Cs/Co: lone surrogates, private use.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})


def _is_invisible(ch: str) -> bool:
    return unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def neutralize(s: str) -> str:
    """Control/format characters shown as ``⟨U+XXXX⟩``; the rest unchanged."""
    if s.isprintable():  # fast path: str.isprintable() is False for all of them
        return s
    return "".join(f"⟨U+{ord(ch):04X}⟩" if _is_invisible(ch) else ch for ch in s)


# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones
# that start inline syntax: emphasis (* _), code spans (`), links and images
# ([ ] — without them "(" and "!" are plain text), headings (#), GFM tables (|),
# strikethrough (~) and e-mail autolinks (@). Raw HTML and <autolinks> are
# handled by the entities below.
_MD_INLINE = re.compile(r"([\\`*_\[\]#|~@])")
# Block syntax only matters at the start of a value that begins a list item or
# line: "-", "+", "=" (list items, setext underlines), "1. " or "1) " (ordered
# lists: digits, then . or ), then a space or the end), ">" (an entity anyway).
_MD_BLOCK_START = re.compile(r"^(\s*)([-+=]|\d{1,9}(?=[.)](?:\s|$)))")
# GFM extended autolinks: scheme://... and www. ; breaking the trigger keeps the
# text visible but inert.
_MD_AUTOLINK = re.compile(r"(:)(?=//)|(?<=www)(\.)", re.IGNORECASE)


def md_escape(s: str) -> str:
    """Untrusted text as inert Markdown (rendered, it reads as the input)."""
    s = neutralize(s)
    s = _MD_INLINE.sub(r"\\\1", s)
    s = _MD_AUTOLINK.sub(lambda m: "\\" + m.group(0), s)
    s = _MD_BLOCK_START.sub(lambda m: m.group(1) + m.group(2) + "\\" if m.group(2)[0].isdigit()
                            else m.group(1) + "\\" + m.group(2), s)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class MdRaw(str):
    """A string a Markdown template may emit unescaped (our own markup)."""


def css_string(s: object) -> Markup:
    """A double-quoted CSS string; every character but ASCII letters and digits
    escaped as six hex digits (spaces too: CSS swallows one space after a hex
    escape)."""
    body = "".join(ch if ch.isascii() and ch.isalnum() else f"\\{ord(ch):06x}" for ch in str(s))
    return Markup(f'"{body}"')


def html_finalize(value: object) -> object:
    if isinstance(value, str) and not isinstance(value, Markup):
        return neutralize(value)
    return value


def md_finalize(value: object) -> object:
    if isinstance(value, MdRaw):
        return value
    return md_escape(value if isinstance(value, str) else str(value))
