"""Audit stage: runs source -> detect -> jurisdiction and builds the findings document.

:class:`Audit` accumulates exchanges one at a time (so the live capture and
the offline reader share it) and :meth:`Audit.document` produces the findings
document of CONTRACT.md, plus the extras the report uses:

- ``generated_at``, ``capture`` (first and last flow time), ``coverage``
  (flows by kind, errors, cleartext flows, websocket messages, bodies whose
  Content-Encoding could not be removed), ``warnings``, ``demo``, ``redacted``,
  ``phases``;
- per finding ``timestamp`` and ``tls``; per endpoint ``confidence``,
  ``confidence_reasons``, ``first_seen``, ``demo_address``.

Endpoints are the hosts of HTTP, TCP and UDP flows. DNS flows are not
endpoints (their "host" is the name asked about, not the server); their
answers feed CNAME evidence instead.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import NamedTuple

from . import __version__, rxcache
from .errors import InputError
from .model import CertInfo, EndpointInfo, Exchange, Finding
from .source import InputInfo

SCHEMA_VERSION = 1

# A request that carries credentials or an e-mail/phone to a path like these is
# a login; its host is taken as the app's own (first party) unless the user
# names the app's domains.
_LOGIN_PATH = re.compile(r"/(?:[\w.-]*/)*(?:log-?in|sign-?in|sign_in|auth|oauth2?|token|session|register|signup|users?/login)\b", re.I)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FlowFacts(NamedTuple):
    """What the audit keeps of one flow besides its findings."""

    index: int
    kind: str
    host: str
    tls: bool
    error: bool
    timestamp: float | None
    server_ip: str | None
    cert: CertInfo | None
    tls_version: str | None
    login_path: bool
    """The request went to a login-like path (see _LOGIN_PATH)."""
    ws_messages: int
    undecodable: int
    cnames: tuple[tuple[str, str], ...]
    """(name, target) of the CNAME answers of a DNS flow."""


def flow_facts(ex: Exchange) -> FlowFacts:
    req, resp = ex.request, ex.response
    # positional, in FlowFacts' field order (keywords cost twice as much, once a flow)
    return FlowFacts(
        ex.index,
        ex.kind,
        ex.host,
        ex.tls,
        bool(ex.error),
        ex.timestamp_start,
        ex.server_ip,
        ex.cert,
        ex.tls_version,
        req is not None and _LOGIN_PATH.search(ex.url) is not None,
        len(ex.websocket),
        (req is not None and bool(req.body_decode_error)) + (resp is not None and bool(resp.body_decode_error)),
        tuple([(r.name, r.value) for r in ex.dns if r.type == "CNAME"]) if ex.dns else (),
    )


def finding_dicts(ex: Exchange, found: Sequence[Finding]) -> list[dict]:
    """Findings as the document's dicts, with the flow's time and transport."""
    ts = iso(ex.timestamp_start)
    out = []
    for f in found:
        d = f.to_json()
        d["timestamp"] = ts
        d["tls"] = ex.tls
        out.append(d)
    return out


from json.encoder import encode_basestring as _json_str  # noqa: E402 - json's C string encoder (ensure_ascii=False)


class Encoded(NamedTuple):
    """A flow's findings as the document's JSON lines, plus what the audit's
    counters need of them. Worker processes send these: strings pickle and
    unpickle far faster than dicts, and the JSON is written once, where the
    work is spread over cores."""

    lines: list[str]
    request_categories: list[str]
    """The category of each request-side finding, in order."""


def encode_findings(ex: Exchange, found: Sequence[Finding]) -> Encoded:
    """The findings as the document's JSON lines: exactly
    ``json.dumps(finding_dicts(...)[i], ensure_ascii=False)``, written with
    json's own C string encoder and no dict in between (3x faster)."""
    if not found:
        return Encoded([], [])
    try:
        return _encode_fast(ex, found)
    except (TypeError, AttributeError):  # a field of an unexpected type: the general road
        dumps = json.dumps
        ds = finding_dicts(ex, found)
        return Encoded(
            [dumps(d, ensure_ascii=False) for d in ds],
            [d["category"] for d in ds if d["side"] == "request"],
        )


def _encode_fast(ex: Exchange, found: Sequence[Finding]) -> Encoded:
    if type(ex.tls) is not bool:
        raise TypeError("unexpected field type")
    q = _json_str
    ts = iso(ex.timestamp_start)
    tail = f', "timestamp": {"null" if ts is None else q(ts)}, "tls": {"true" if ex.tls else "false"}}}'
    lines: list[str] = []
    cats: list[str] = []
    for f in found:
        if type(f.flow_index) is not int:
            raise TypeError("unexpected field type")
        enc = "null" if f.encoding is None else q(f.encoding)
        lines.append(
            f'{{"flow_index": {f.flow_index}, "host": {q(f.host)}, "side": {q(f.side)}, '
            f'"category": {q(f.category)}, "rule": {q(f.rule)}, "method": {q(f.method)}, "encoding": {enc}, '
            f'"location": {q(f.location)}, "severity": {q(f.severity)}, "evidence": {q(f.evidence)}' + tail
        )
        if f.side == "request":
            cats.append(f.category)
    return Encoded(lines, cats)


#: Flows whose failed analysis is named in a warning each; the rest are counted in one.
MAX_FAILURE_WARNINGS = 100


def _failure(index: int, host: str, error: str | None) -> str:
    """The warning for a flow whose analysis failed."""
    return f"flow {index} ({host}): analysis failed: {error}"


def _shifted(lines: bytes, shift: int) -> bytes:
    """Findings' JSON lines (UTF-8, each ended by a newline) with ``shift``
    added to each ``flow_index``."""
    out = []
    for line in lines.decode("utf-8").split("\n")[:-1]:
        d = json.loads(line)
        d["flow_index"] += shift
        out.append(json.dumps(d, ensure_ascii=False) + "\n")
    return "".join(out).encode("utf-8")


class FindingSpool:
    """Findings in memory up to ``limit``, then in an owner-only temporary file.

    A day-long capture has millions of findings; holding them as dicts would
    grow memory with the capture. Past the limit they are written as JSON lines
    to a temp file (mode 0600, deleted when the spool is) and read back in
    order when the document is written. The lines are the very text
    :func:`dump_document` writes, so it copies them without parsing them again
    (as UTF-8 bytes straight into a UTF-8 output file).

    The limit is small on purpose: a finding dict costs about 1 KB, and the
    memory an audit needs should not depend on how big the capture is.
    """

    def __init__(self, limit: int = 2000):
        self.limit = limit
        self.mem: list[dict] = []
        self.file = None
        self.spilled = 0

    def append(self, d: dict | str) -> None:
        """Adds a finding: its dict, or its JSON line (see :class:`Encoded`)."""
        self.mem.append(d)
        if len(self.mem) >= self.limit:
            self._spill()

    def extend(self, items: Iterable[dict | str]) -> None:
        """Adds findings (dicts or JSON lines), in order."""
        self.mem.extend(items)
        if len(self.mem) >= self.limit:
            self._spill()

    def append_lines(self, text: bytes, count: int) -> None:
        """Adds ``count`` findings given as their JSON lines in UTF-8, each
        ended by a newline: the form worker processes send (see
        :func:`~privaudit.parallel.analyze_batch`). Past the limit they go
        to the file as they are, with no decoding and encoding again."""
        if self.file is None and len(self.mem) + count < self.limit:
            # (split on "\n" only: a JSON line holds no raw newline, but may hold U+2028)
            self.mem.extend(text.decode("utf-8").split("\n")[:count])
            return
        self._spill()  # what is held comes first
        self.file.write(text)
        self.spilled += count

    def _spill(self) -> None:
        import tempfile

        if self.file is None:
            self.file = tempfile.TemporaryFile(mode="w+b", prefix="privaudit-findings-")
        if not self.mem:
            return
        dumps = json.dumps
        text = "".join([(d if d.__class__ is str else dumps(d, ensure_ascii=False)) + "\n" for d in self.mem])
        self.file.write(text.encode("utf-8"))
        self.spilled += len(self.mem)
        self.mem = []

    def __len__(self) -> int:
        return self.spilled + len(self.mem)

    def __iter__(self):
        loads = json.loads
        for line in self.lines():
            yield loads(line)

    def lines(self):
        """Each finding as one line of JSON (no newline), in order."""
        if self.file is not None:
            self.file.flush()
            self.file.seek(0)
            for _ in range(self.spilled):
                yield self.file.readline()[:-1].decode("utf-8")
            self.file.seek(0, 2)
        dumps = json.dumps
        for d in self.mem:
            yield d if d.__class__ is str else dumps(d, ensure_ascii=False)

    def joined_bytes(self, sep: bytes, block: int = 1 << 16):
        """The UTF-8 of ``sep.join(self.lines())``, in consecutive pieces of
        about ``block`` bytes: the spilled part is copied in blocks, not line
        by line (a JSON line holds no raw newline, and a newline byte is never
        part of a longer UTF-8 character, so each is a line end and becomes
        ``sep``)."""
        if self.file is not None and self.spilled:
            f = self.file
            f.flush()
            f.seek(0)
            held = f.read(block)
            while held:
                nxt = f.read(block)
                if not nxt and not self.mem:
                    held = held[:-1]  # the last line's newline: nothing follows it
                yield held.replace(b"\n", sep)
                held = nxt
            f.seek(0, 2)
        if self.mem:
            dumps = json.dumps
            text = sep.decode("utf-8").join([d if d.__class__ is str else dumps(d, ensure_ascii=False) for d in self.mem])
            yield text.encode("utf-8")

    def joined(self, sep: str, block: int = 1 << 16):
        """:meth:`joined_bytes` as text (a piece may end inside a character:
        its rest starts the next piece)."""
        import codecs

        decode = codecs.getincrementaldecoder("utf-8")().decode
        for piece in self.joined_bytes(sep.encode("utf-8"), block):
            text = decode(piece)
            if text:
                yield text
        text = decode(b"", True)
        if text:
            yield text

    def value(self):
        """A plain list when everything fits in memory, else the spool itself (iterable, sized)."""
        if self.file is None:
            return [d if d.__class__ is dict else json.loads(d) for d in self.mem]
        return self


class FindingsFile:
    """The findings of a document written by :func:`dump_document`, read from
    the file one line at a time each time they are iterated (sized, re-iterable,
    like a :class:`FindingSpool`). A 100k-flow audit has ~330k findings: as
    dicts they take ~550 MB, as lines on disk nothing."""

    def __init__(self, path: Path, offset: int, count: int, first_line: int):
        self.path, self.offset, self.count, self.first_line = path, offset, count, first_line

    def __len__(self) -> int:
        return self.count

    def lines(self):
        with open(self.path, "rb", buffering=1 << 20) as f:
            f.seek(self.offset)
            for line in islice(f, self.count):
                line = line.strip()
                yield (line[:-1] if line.endswith(b",") else line).decode("utf-8")

    def __iter__(self):
        # Parsed a thousand lines at a time as one JSON array: json shares the
        # key strings within one parse (one line at a time, each finding would
        # carry its own copies: +35% memory), and it is faster.
        batch: list[str] = []
        done = 0
        for line in self.lines():
            batch.append(line)
            if len(batch) == 1000:
                items = self._parse(batch)
                if items is None:
                    break
                yield from items
                done += len(batch)
                batch = []
        else:
            items = self._parse(batch) if batch else []
            if items is not None:
                yield from items
                return
        # The lines were not one finding each after all (a hand-edited or
        # foreign layout that looked like ours): read the document whole.
        try:
            whole = json.loads(self.path.read_text("utf-8")).get("findings")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError) as e:
            raise InputError(f"{self.path}: not a readable findings document: {e}") from e
        if not isinstance(whole, list):
            raise InputError(f"{self.path}: 'findings' is not a list")
        for d in whole[done:]:
            if not isinstance(d, dict):
                raise InputError(f"{self.path}: a finding must be a JSON object")
            yield d

    @staticmethod
    def _parse(batch: list[str]) -> list | None:
        try:
            items = json.loads("[" + ",".join(batch) + "]")
        except ValueError:
            return None
        if len(items) != len(batch) or not all(isinstance(d, dict) for d in items):
            return None
        return items


_FINDINGS_OPEN = b'  "findings": ['


def load_document(path: Path) -> dict:
    """A findings document from ``path``. One written by :func:`dump_document`
    (one finding per line) has its findings left on disk as a :class:`FindingsFile`;
    any other JSON layout is read whole. InputError if it is not JSON."""
    try:
        with open(path, "rb") as f:
            head: list[bytes] = []
            findings = None
            lineno = 0
            for line in f:
                lineno += 1
                if findings is None and line.rstrip(b"\r\n") == _FINDINGS_OPEN:
                    offset, first = f.tell(), lineno + 1
                    count = 0
                    for line in f:  # noqa: B020 - the same file, read on
                        lineno += 1
                        s = line.strip()
                        if s in (b"]", b"],"):
                            head.append(b'  "findings": []' + (b"," if s.endswith(b",") else b"") + b"\n")
                            findings = (offset, count, first)
                            break
                        if not (s.startswith(b"{") and (s.endswith(b"}") or s.endswith(b"},"))):
                            findings = False  # not our layout after all
                            break
                        count += 1
                    if findings is False:
                        break
                    continue
                head.append(line)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e}") from e
    if not findings:  # another layout: the plain way
        try:
            return json.loads(Path(path).read_text("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise InputError(f"{path}: not a readable findings document: {e}") from e
    try:
        doc = json.loads(b"".join(head).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: not a readable findings document: {e}") from e
    if isinstance(doc, dict):
        doc["findings"] = FindingsFile(Path(path), *findings)
    return doc


def with_findings_list(doc: dict) -> dict:
    """``doc`` with its findings as a plain list (read back from a spilled
    :class:`FindingSpool`), for consumers that need them all at once: the
    report's view model groups findings by host, phase and category."""
    f = doc.get("findings")
    if f is None or isinstance(f, list):
        return doc
    return {**doc, "findings": list(f)}


def _is_utf8(encoding: str | None) -> bool:
    import codecs

    try:
        return encoding is not None and codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def dump_document(doc: dict, fp) -> None:
    """Writes the findings document as indented UTF-8 JSON, streaming the findings.

    Like ``json.dump(doc, fp, ensure_ascii=False, indent=2)``, except that each
    finding is written on one line, and ``doc["findings"]`` may be any iterable
    (a :class:`FindingSpool`), written one finding at a time.
    """
    fp.write("{\n")
    keys = list(doc)
    for i, k in enumerate(keys):
        fp.write(f"  {json.dumps(k)}: ")
        v = doc[k]
        if k == "findings":
            # One finding per line: readable, diffable, and written by json's C
            # encoder (indent= falls back to the pure-Python one, 5x slower),
            # many lines per write (one write per line took ~60 ms at 10k flows).
            sep = ",\n    "
            fp.write("[")
            first = True
            if isinstance(v, FindingSpool):
                if len(v):
                    fp.write("\n    ")
                    first = False
                    raw = getattr(fp, "buffer", None)
                    if raw is not None and _is_utf8(getattr(fp, "encoding", None)):
                        fp.flush()  # the text layer's bytes first, then the spool's as they are
                        for piece in v.joined_bytes(sep.encode("utf-8")):
                            raw.write(piece)
                    else:
                        for text in v.joined(sep):  # pieces of one text
                            fp.write(text)
            else:
                it = iter(v)
                for part in iter(lambda: list(islice(it, 1000)), []):
                    fp.write("\n    " if first else sep)
                    fp.write(sep.join([json.dumps(f, ensure_ascii=False) for f in part]))
                    first = False
            fp.write("\n  ]" if not first else "]")
        elif isinstance(v, list) and v:
            # Item by item (a long capture has thousands of endpoints): the
            # same text as json.dumps(v, indent=2) indented once more, without
            # holding it all as one string.
            fp.write("[")
            for j, item in enumerate(v):
                fp.write(",\n    " if j else "\n    ")
                fp.write(json.dumps(item, ensure_ascii=False, indent=2).replace("\n", "\n    "))
            fp.write("\n  ]")
        else:
            fp.write(json.dumps(v, ensure_ascii=False, indent=2).replace("\n", "\n  "))
        fp.write(",\n" if i < len(keys) - 1 else "\n")
    fp.write("}\n")


class _HostAcc:
    """What one host's endpoint entry needs, kept while flows are read.

    A long capture has thousands of hosts, so this is small: slots, and
    lists for the few categories and TLS versions a host has (in first-seen
    order); only the addresses, which a CDN host can have hundreds of, are
    a dict (ordered, O(1) to test)."""

    __slots__ = ("ips", "flow_count", "all_tls", "categories", "first_seen", "cert", "tls_versions")

    def __init__(self) -> None:
        self.ips: dict[str, None] = {}
        self.flow_count = 0
        self.all_tls = True
        self.categories: list[str] = []
        self.first_seen: float | None = None
        self.cert: CertInfo | None = None
        self.tls_versions: list[str] = []


def endpoint_json(info: EndpointInfo, acc: _HostAcc, demo: bool) -> dict:
    op = None
    if info.operator is not None:
        op = {"name": info.operator.name, "country": info.operator.country}
        if info.operator.parent:
            op["parent"] = info.operator.parent
            op["parent_country"] = info.operator.parent_country
        if info.operator.source:
            op["source"] = info.operator.source
    return {
        "host": info.host,
        "ips": list(info.ips),
        "hosting_country": info.hosting_country,
        "asn": info.asn,
        "as_org": info.as_org,
        "operator": op,
        "jurisdictions": list(info.jurisdictions),
        "evidence": [e.to_json() for e in info.evidence],
        "tls": acc.all_tls,
        "flow_count": acc.flow_count,
        "categories": list(acc.categories),
        "confidence": info.confidence,
        "confidence_reasons": list(info.confidence_reasons),
        "first_seen": iso(acc.first_seen),
        "tls_versions": list(acc.tls_versions),
        "demo_address": demo and any(e.kind == "demo" for e in info.evidence),
    }


class Tally:
    """What the findings document needs of every flow besides its findings:
    the counters, the hosts' endpoint entries, CNAMEs, and the findings' lines
    in order (in ``findings``: a list, or the audit's :class:`FindingSpool`).

    An :class:`Audit` is one. A worker process also fills one for each run
    of consecutive flows it analyses, and the main process takes it in with
    :meth:`Audit.absorb`: the counting is then spread over the cores with
    the detection, and the main process, which also reads the capture and
    feeds the workers, does a few dozen merges per batch instead of
    thousands of additions.
    """

    def __init__(self, findings=None) -> None:
        self.findings = [] if findings is None else findings
        self.hosts: dict[str, _HostAcc] = {}
        self.cnames: dict[str, list[str]] = {}
        self.flows = 0
        self.by_kind: dict[str, int] = {"http": 0, "tcp": 0, "udp": 0, "dns": 0, "other": 0}
        self.errors = 0
        self.cleartext = 0
        self.ws_messages = 0
        self.undecodable = 0
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.analysis_errors = 0
        self.tls_versions: dict[str, int] = {}
        self.login_hosts: set[str] = set()
        self.failed: list[tuple[int, str, str | None]] = []
        """(flow index, host, error) of the first flows whose analysis failed
        (up to :data:`MAX_FAILURE_WARNINGS`)."""

    def _failed(self, index: int, host: str, error: str | None) -> None:
        if self.analysis_errors <= MAX_FAILURE_WARNINGS:
            self.failed.append((index, host, error))

    def add_facts(self, facts: FlowFacts, found: list[dict] | Encoded | None, scan_error: str | None = None) -> None:
        """Counts one flow from its facts and its findings (document dicts or :class:`Encoded`).

        These are what the audit keeps of a flow: a worker process adds them
        to its own Tally, the audit of a serial run adds them here.
        """
        self.flows += 1
        self.by_kind[facts.kind] = self.by_kind.get(facts.kind, 0) + 1
        if facts.error:
            self.errors += 1
        ts = facts.timestamp
        if ts is not None:
            self.t_first = ts if self.t_first is None else min(self.t_first, ts)
            self.t_last = ts if self.t_last is None else max(self.t_last, ts)
        if facts.kind == "dns":
            for name, value in facts.cnames:
                targets = self.cnames.setdefault(name, [])
                if value not in targets:
                    targets.append(value)
            return
        if facts.kind == "http" and not facts.tls:
            self.cleartext += 1
        self.ws_messages += facts.ws_messages
        self.undecodable += facts.undecodable
        acc = self.hosts.get(facts.host)
        if acc is None:
            acc = self.hosts[facts.host] = _HostAcc()
        acc.flow_count += 1
        acc.all_tls = acc.all_tls and facts.tls
        if facts.server_ip:
            acc.ips.setdefault(facts.server_ip, None)
        if ts is not None and (acc.first_seen is None or ts < acc.first_seen):
            acc.first_seen = ts
        if acc.cert is None and facts.cert is not None:
            acc.cert = facts.cert
        if facts.tls_version:
            if facts.tls_version not in acc.tls_versions:
                acc.tls_versions.append(facts.tls_version)
            self.tls_versions[facts.tls_version] = self.tls_versions.get(facts.tls_version, 0) + 1
        if scan_error is not None or found is None:
            self.analysis_errors += 1
            self._failed(facts.index, facts.host, scan_error)
            return
        if found.__class__ is Encoded:
            cats = found.request_categories
            items = found.lines
        else:
            cats = [d["category"] for d in found if d["side"] == "request"]
            items = found
        if facts.login_path and any(c in ("credentials", "email", "phone") for c in cats):
            self.login_hosts.add(facts.host)
        if cats:
            have = acc.categories
            for c in cats:
                if c not in have:
                    have.append(c)
        if items:
            self.findings.extend(items)


class Audit(Tally):
    """Accumulates exchanges and their findings into one findings document."""

    def __init__(self, detector, locator, *, rules_digest: str, show_values: bool = False, demo: bool = False):
        """``locator``: a Locator, or a function that makes one when it is
        first needed (see :func:`build`)."""
        super().__init__(FindingSpool())
        self.detector = detector
        self._locator = locator
        self.rules_digest = rules_digest
        self.show_values = show_values
        self.demo = demo
        self.warnings: list[str] = []
        self.phases: list[dict] = []
        self.own_domains: list[str] = []
        self.tls_failures: list[dict] = []
        self.environment: dict[str, str] = {}
        self.auditor: dict[str, str] = {}
        self.nameserver: str | None = None
        self.resolve_best_effort = False

    def _failed(self, index: int, host: str, error: str | None) -> None:
        if self.analysis_errors <= MAX_FAILURE_WARNINGS:
            self.warnings.append(_failure(index, host, error))

    @property
    def locator(self):
        if callable(self._locator):
            self._locator = self._locator()
        return self._locator

    def add(self, ex: Exchange, found: list[Finding] | None = None, scan_error: str | None = None) -> list[Finding]:
        """Counts one exchange and its findings (scanning it here unless ``found`` is given)."""
        if found is None and scan_error is None and ex.kind != "dns":
            try:
                found = self.detector.scan(ex)
            except Exception as e:  # one hostile flow must not end the audit
                scan_error = f"{type(e).__name__}: {e}"
        self.add_facts(flow_facts(ex), finding_dicts(ex, found) if found is not None else None, scan_error)
        return found or []

    def absorb(self, t: Tally, lines: bytes, count: int, shift: int = 0) -> None:
        """Takes in a run of flows counted elsewhere (see :class:`Tally`),
        and ``count`` findings as UTF-8 JSON lines, each ended by a newline.
        The result is the same as adding the run's flows here one by one, in
        order, with ``shift`` added to their flow indexes (where an unreadable
        HAR entry before them shifted the numbering)."""
        base = self.analysis_errors
        self.flows += t.flows
        by_kind = self.by_kind
        for k, n in t.by_kind.items():
            by_kind[k] = by_kind.get(k, 0) + n
        self.errors += t.errors
        if t.t_first is not None:
            self.t_first = t.t_first if self.t_first is None else min(self.t_first, t.t_first)
            self.t_last = t.t_last if self.t_last is None else max(self.t_last, t.t_last)
        for name, targets in t.cnames.items():
            mine = self.cnames.setdefault(name, [])
            mine.extend([v for v in targets if v not in mine])
        self.cleartext += t.cleartext
        self.ws_messages += t.ws_messages
        self.undecodable += t.undecodable
        hosts = self.hosts
        for host, acc in t.hosts.items():
            mine = hosts.get(host)
            if mine is None:
                hosts[host] = acc
                continue
            mine.flow_count += acc.flow_count
            mine.all_tls = mine.all_tls and acc.all_tls
            mine.ips.update(acc.ips)
            if acc.first_seen is not None and (mine.first_seen is None or acc.first_seen < mine.first_seen):
                mine.first_seen = acc.first_seen
            if mine.cert is None:
                mine.cert = acc.cert
            mine.tls_versions.extend([v for v in acc.tls_versions if v not in mine.tls_versions])
            mine.categories.extend([c for c in acc.categories if c not in mine.categories])
        for v, n in t.tls_versions.items():
            self.tls_versions[v] = self.tls_versions.get(v, 0) + n
        self.login_hosts |= t.login_hosts
        self.analysis_errors += t.analysis_errors
        for k, (index, host, error) in enumerate(t.failed, 1):
            if base + k > MAX_FAILURE_WARNINGS:
                break
            self.warnings.append(_failure(index + shift, host, error))
        if count:
            if shift:
                lines = _shifted(lines, shift)
            self.findings.append_lines(lines, count)

    def document(self, inputs: Sequence[dict] = ()) -> dict:
        from .jurisdiction import classify_parties, cname_chain, resolve_hosts

        # (a stand-in detector, e.g. a test's, may have no canaries at all)
        can = getattr(self.detector, "canaries", None)
        can_engine = {"canary matcher": can.engine} if can is not None else {}

        answers = {}
        if self.nameserver:
            answers = resolve_hosts(
                list(self.hosts), self.nameserver, best_effort=self.resolve_best_effort, warnings=self.warnings
            )
        endpoints = []
        for host, acc in self.hosts.items():
            info = self.locator.describe(
                host,
                list(acc.ips),
                cert=acc.cert,
                cnames=cname_chain(host, self.cnames),
                resolved=answers.get(host),
            )
            endpoints.append(endpoint_json(info, acc, self.demo))
        endpoints.sort(key=lambda e: (-e["flow_count"], e["host"]))
        endpoints = classify_parties(
            endpoints, self.own_domains, sorted(self.login_hosts), operators=self.locator.operators
        )
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "privaudit", "version": __version__, "rules_digest": self.rules_digest},
            "inputs": list(inputs),
            "flows_analyzed": self.flows,
            "findings": self.findings.value(),
            "endpoints": endpoints,
            "generated_at": iso(datetime.now(timezone.utc).timestamp()),
            "capture": {"start": iso(self.t_first), "end": iso(self.t_last)},
            "coverage": {
                "flows_by_kind": dict(self.by_kind),
                "flows_with_errors": self.errors,
                "cleartext_flows": self.cleartext,
                "websocket_messages": self.ws_messages,
                "undecodable_bodies": self.undecodable,
                "analysis_errors": self.analysis_errors,
                "tls_versions": dict(self.tls_versions),
                "tls_failures": list(self.tls_failures),
            },
            "warnings": list(self.warnings)
            + (
                [
                    f"{self.analysis_errors - MAX_FAILURE_WARNINGS} more flows failed analysis "
                    f"(only the first {MAX_FAILURE_WARNINGS} are listed)"
                ]
                if self.analysis_errors > MAX_FAILURE_WARNINGS
                else []
            ),
            "demo": self.demo,
            "redacted": not self.show_values,
            "phases": list(self.phases),
            # (with the canary engine that ran: the engines differ in speed only)
            "environment": {**_analysis_environment(), **can_engine, **self.environment},
            "auditor": dict(self.auditor),
        }


def _info(state, infos: dict, source: str):
    """The InputInfo of ``source`` (inputs are registered as reading reaches them)."""
    info = infos.get(source)
    if info is None:
        infos.update((i.path, i) for i in state.inputs)
        info = infos[source]
    return info


def _analysis_environment() -> dict[str, str]:
    import platform

    from mitmproxy import version as mversion

    from .detect.decode import WALKER
    from .source.fast import READER

    return {
        "privaudit": __version__,
        "python": platform.python_version(),
        "mitmproxy (analysis)": mversion.VERSION,
        "flow record reader": READER,
        "decoder walk": WALKER,
        "platform": platform.platform(terse=True),
    }


#: meta.json's audit fields (``privaudit capture``) -> the document's ``auditor`` keys.
_META_AUDITOR = {"tester": "name", "device": "device", "app": "app", "app_version": "app_version"}


def read_audit_meta(paths: Iterable[str | os.PathLike]) -> dict:
    """What ``privaudit capture`` recorded in the meta.json of audit directories among ``paths``:
    phases, TLS failures (hosts the proxy could not inspect), environment and auditor fields."""
    out: dict = {"phases": [], "tls_failures": [], "environment": {}, "auditor": {}}
    for p in paths:
        meta = Path(p) / "meta.json"
        if not (Path(p).is_dir() and meta.is_file()):
            continue
        try:
            data = json.loads(meta.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        for ph in data.get("phases") or []:
            if isinstance(ph, dict) and "name" in ph:
                out["phases"].append({"name": str(ph["name"]), "timestamp": ph.get("timestamp")})
        for f in data.get("tls_failures") or []:
            if isinstance(f, dict) and f.get("host"):
                out["tls_failures"].append({"host": str(f["host"]), "error": str(f.get("error") or "")})
        tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
        if tool.get("mitmproxy"):
            out["environment"]["mitmproxy (capture)"] = str(tool["mitmproxy"])
        if data.get("mode"):
            mode = data["mode"]
            out["environment"]["capture mode"] = ", ".join(map(str, mode)) if isinstance(mode, list) else str(mode)
        fields = data.get("audit") if isinstance(data.get("audit"), dict) else data
        for k, v in _META_AUDITOR.items():
            if fields.get(k):
                out["auditor"][v] = str(fields[k])
    return out


def build(
    *,
    rules_dirs: Sequence[str | os.PathLike] = (),
    canaries_path: str | os.PathLike | None = None,
    geoip_paths: Sequence[str | os.PathLike] = (),
    demo_addresses: Mapping[str, str] | None = None,
    show_values: bool = False,
    own_domains: Sequence[str] = (),
    nameserver: str | None = None,
    resolve_best_effort: bool = False,
) -> Audit:
    """Loads rules, canaries and databases (failing early on bad ones) into an empty Audit.

    GeoIP databases: the ``geoip_paths`` given, else those found the usual ways
    (``PRIVAUDIT_GEOIP``, the config file, ``/usr/share/GeoIP``, see
    :func:`privaudit.jurisdiction.find_geoip_databases`). The demo never looks
    for any: its addresses are its own table's.
    """
    from .detect import Detector, load_canaries, load_rules
    from .jurisdiction import Locator, find_geoip_databases, parse_nameserver, user_asn_files, user_operator_files

    warnings: list[str] = []
    rules = load_rules([Path(d) for d in rules_dirs])
    canaries = load_canaries(Path(canaries_path)) if canaries_path else None
    if nameserver:
        parse_nameserver(nameserver)  # a malformed server fails before any work
    if demo_addresses is None:
        geo = find_geoip_databases([Path(g) for g in geoip_paths], warnings=warnings)
    else:
        geo = [Path(g) for g in geoip_paths]
    operator_files, asn_files = user_operator_files(rules_dirs), user_asn_files(rules_dirs)

    def locator():
        return Locator(geoip_paths=geo, operator_files=operator_files, asn_files=asn_files, demo_addresses=demo_addresses)

    if geo or operator_files or asn_files:
        locator = locator()  # the user's own files: a bad one fails now, before any work
    # else only the shipped, already validated maps: loaded when first needed
    # (a parallel analysis loads them while the workers start on the flows)
    detector = Detector(rules, canaries=canaries, show_values=show_values)
    rxcache.save()  # (the detector's own combined pattern)
    audit = Audit(detector, locator, rules_digest=rules.digest, show_values=show_values, demo=demo_addresses is not None)
    audit.warnings.extend(warnings)
    audit.own_domains = list(own_domains)
    audit.nameserver = nameserver
    audit.resolve_best_effort = resolve_best_effort
    return audit


def analyze(
    paths: Sequence[str | os.PathLike],
    *,
    rules_dirs: Sequence[str | os.PathLike] = (),
    canaries_path: str | os.PathLike | None = None,
    geoip_paths: Sequence[str | os.PathLike] = (),
    demo_addresses: Mapping[str, str] | None = None,
    show_values: bool = False,
    own_domains: Sequence[str] = (),
    nameserver: str | None = None,
    resolve_best_effort: bool = False,
    jobs: int | None = None,
    auditor: Mapping[str, str] | None = None,
) -> dict:
    """Reads every input and returns the findings document.

    ``jobs``: worker processes for decoding and detection (default: one per
    CPU this process may use; inputs under a few MB are analysed in-process).
    """
    from .parallel import pool_jobs, run_batches
    from .source import ReadState, open_inputs
    from .source.flowfile import damaged

    opened = open_inputs(paths)  # fail on a bad input before loading anything heavy
    state = ReadState()
    if pool_jobs(opened, jobs) > 1:
        state.hash_ahead([p for p, _ in opened])  # on the other core, while this one loads the rules
    audit = build(
        rules_dirs=rules_dirs,
        canaries_path=canaries_path,
        geoip_paths=geoip_paths,
        demo_addresses=demo_addresses,
        show_values=show_values,
        own_domains=own_domains,
        nameserver=nameserver,
        resolve_best_effort=resolve_best_effort,
    )
    infos: dict[str, InputInfo] = {}
    damaged_sources: set[str] = set()
    skipped: dict[str, int] = {}
    next_index = 0
    for results in run_batches(
        opened,
        state,
        audit.detector,
        jobs=jobs,
        worker_args=([str(d) for d in rules_dirs], str(canaries_path) if canaries_path else None, show_values),
        while_waiting=lambda: audit.locator,
    ):
        for r in results:
            if r[0] == "skip":
                state.warnings.append(f"{r[1]}: {r[2]}")
                skipped[r[1]] = skipped.get(r[1], 0) + 1
                continue
            if r[0] == "damaged":
                if r[1] not in damaged_sources:
                    damaged_sources.add(r[1])
                    info = _info(state, infos, r[1])
                    damaged(Path(r[1]), info.flows, r[2], state.warnings)
                continue
            _, source, first, tally, lines, count = r
            if source in damaged_sources:
                continue
            # (an unreadable HAR entry before the run shifted the numbering)
            audit.absorb(tally, lines, count, next_index - first)
            _info(state, infos, source).flows += tally.flows
            next_index += tally.flows
    for src, n in skipped.items():
        if _info(state, infos, src).flows == 0:
            raise InputError(f"{src}: invalid HAR file: none of its {n} entries could be read")
    audit.warnings.extend(state.warnings)
    audit.detector.drop_memos()  # the flows are done: room for the endpoints
    meta = read_audit_meta(paths)
    audit.phases = meta["phases"]
    audit.tls_failures = meta["tls_failures"]
    audit.environment = meta["environment"]
    audit.auditor = {**meta["auditor"], **{k: v for k, v in (auditor or {}).items() if v}}
    return audit.document([i.to_json() for i in state.inputs])
