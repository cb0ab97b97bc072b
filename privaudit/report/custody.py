"""Chain of custody: the hashes that tie a report to its evidence.

A file cannot contain its own SHA-256, so the scheme is (and the report's
method section says so, ``custody.scheme``):

1. every input capture's SHA-256 is in the findings document (``inputs``);
2. the findings document's SHA-256 is computed over its *canonical JSON*:
   ``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
   encoded as UTF-8 — the document exactly as rendered (after options such as
   ``--home-country`` were applied), independent of how a saved copy is
   indented — and printed in the report;
3. the report file's own SHA-256 is written *detached*, next to it, as
   ``<report>.sha256`` in the ``sha256sum`` format (``<hex>  <name>``), so
   ``sha256sum -c report.html.sha256`` checks it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata


def canonical_json(doc: Mapping) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def document_sha256(doc: Mapping) -> str:
    """SHA-256 (hex) of the document's canonical JSON (module docstring).

    Hashed piece by piece, each top-level list item on its own, with exactly
    :func:`canonical_json`'s bytes: a 100k-flow document's canonical JSON is
    a few hundred MB as one string, which this never holds."""
    if not isinstance(doc, dict) or not all(type(k) is str for k in doc):
        return hashlib.sha256(canonical_json(doc)).hexdigest()  # keys json.dumps would convert: its ordering
    return DocumentHasher(doc).hexdigest()


class DocumentHasher:
    """:func:`document_sha256` of a dict whose findings (a stream: read from
    disk, or the audit's spool) are :meth:`feed`-ed by whoever reads them
    anyway, so a report parses them once, not once more for the hash.

    Without :meth:`feed`, :meth:`hexdigest` reads the stream itself."""

    def __init__(self, doc: dict, stream_key: str | None = None):
        self.h = hashlib.sha256()
        self.encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
        self.doc = doc
        keys = sorted(doc)
        self.stream_key = stream_key if stream_key in doc and _is_stream(doc.get(stream_key)) else None
        self.fed = False
        self.chunk: list = []
        self.first = True
        self.h.update(b"{")
        self.rest = keys
        if self.stream_key is not None:
            i = keys.index(self.stream_key)
            self._keys(keys[:i], 0)
            self.h.update((b"," if i else b"") + self.encode(self.stream_key).encode("utf-8") + b":[")
            self.rest = keys[i + 1:]
            self._after = i + 1

    def feed(self, item) -> None:
        self.fed = True
        self.chunk.append(item)
        if len(self.chunk) == _CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.chunk:
            self.h.update((b"" if self.first else b",") + self.encode(self.chunk)[1:-1].encode("utf-8"))
            self.first, self.chunk = False, []

    def _keys(self, keys: list[str], start: int) -> None:
        h, encode = self.h, self.encode
        for i, key in enumerate(keys, start):
            value = self.doc[key]
            h.update((b"," if i else b"") + encode(key).encode("utf-8") + b":")
            if type(value) is list or _is_stream(value):
                h.update(b"[")
                for j, chunk in enumerate(_chunks(value)):
                    # A chunk encodes as "[a,b,...]": the items exactly as in the whole list.
                    h.update((b"," if j else b"") + encode(chunk)[1:-1].encode("utf-8"))
                h.update(b"]")
            else:
                h.update(encode(value).encode("utf-8"))

    def hexdigest(self) -> str:
        if self.stream_key is None:
            self._keys(self.rest, 0)
        else:
            if not self.fed:
                for item in self.doc[self.stream_key]:
                    self.feed(item)
            self._flush()
            self.h.update(b"]")
            self._keys(self.rest, self._after)
        self.h.update(b"}")
        return self.h.hexdigest()


_CHUNK = 2000


def _chunks(items):
    """``items`` (a list, or a stream of them) as lists of up to ``_CHUNK``."""
    if type(items) is list:
        for j in range(0, len(items), _CHUNK):
            yield items[j:j + _CHUNK]
        return
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _is_stream(value: object) -> bool:
    """A stream of findings standing for a list (see viewmodel._findings_of)."""
    return not isinstance(value, (str, bytes, dict, list, tuple)) and hasattr(value, "lines") and hasattr(value, "__iter__")


def sidecar_text(report_name: str, data: bytes) -> bytes:
    """The ``sha256sum`` line for a report file."""
    return f"{hashlib.sha256(data).hexdigest()}  {report_name}\n".encode("utf-8")


def rendered_at() -> str:
    """Now, in UTC (ISO 8601, seconds); ``SOURCE_DATE_EPOCH`` fixes it for
    reproducible builds (https://reproducible-builds.org/specs/source-date-epoch/)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    now = (datetime.fromtimestamp(int(epoch), timezone.utc) if epoch.isdigit()
           else datetime.now(timezone.utc))
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def environment(fmt: str) -> list[tuple[str, str]]:
    """What rendered this report: (component, version)."""
    rows = [
        ("privaudit", _version("privaudit")),
        ("Python", platform.python_version()),
        ("Jinja2", _version("jinja2")),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
    ]
    if fmt == "pdf":
        rows.append(("WeasyPrint", _version("weasyprint")))
    if "mitmproxy" in sys.modules or _version("mitmproxy"):
        rows.append(("mitmproxy", _version("mitmproxy")))
    return [(k, v) for k, v in rows if v]
