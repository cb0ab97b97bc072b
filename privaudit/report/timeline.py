"""When personal data left the device, relative to the start of the capture
and to the test phases the tester marked.

The rule for "before the user did anything" (stated in the report's method
section, ``timeline.rule_*``):

- if a phase whose name contains "consent" (or Korean "동의") was marked, the
  *boundary* is the first such phase: data sent before it was sent before the
  user could consent;
- otherwise, if two or more phases were marked, the boundary is the second
  phase: the first phase is the app starting on its own (e.g. "start-up"),
  the second is the tester's first action;
- with fewer phases there is no boundary, and the report says it cannot tell.

Timestamps are the flow start times the findings carry (ISO 8601); untrusted
and possibly missing, so every parse may fail and is then left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

#: Timeline rows shown; the rest are counted.
MAX_EVENTS = 80

_CONSENT = re.compile(r"consent|동의", re.IGNORECASE)


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (UTC when no zone), or None."""
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def offset_seconds(t: datetime | None, start: datetime | None) -> float | None:
    if t is None or start is None:
        return None
    return (t - start).total_seconds()


@dataclass(frozen=True)
class Boundary:
    """The moment before which data counts as sent before the user acted."""

    kind: str  # "consent" | "first_action"
    name: str  # the phase's name as marked (untrusted)
    time: datetime


def boundary(phases: Iterable[tuple[str, datetime | None]]) -> Boundary | None:
    """See the module docstring; ``phases`` in the document's order."""
    timed = [(n, t) for n, t in phases if t is not None]
    timed.sort(key=lambda p: p[1])
    for name, t in timed:
        if _CONSENT.search(name):
            return Boundary("consent", name, t)
    if len(timed) >= 2:
        return Boundary("first_action", timed[1][0], timed[1][1])
    return None


@dataclass(frozen=True)
class FirstSend:
    """The first time one category went to one host (request side only)."""

    host: str
    category: str
    time: datetime | None
    tls: bool | None
    findings: int


_UNPARSED = object()


class FirstSends:
    """:func:`first_sends`, fed one finding at a time (a report streams them)."""

    def __init__(self, clean) -> None:
        self.clean = clean
        self.seen: dict[tuple[str, str], dict] = {}
        self.keys: dict[tuple[str, str], tuple[str, str]] = {}  # (host, category) as found -> cleaned
        self.parsed: dict[str, datetime | None] = {}  # a flow's findings share its timestamp

    def time_of(self, f: Mapping) -> datetime | None:
        """The finding's parsed timestamp (memoised per timestamp text)."""
        ts = f.get("timestamp")
        if type(ts) is str:
            t = self.parsed.get(ts, _UNPARSED)
            if t is _UNPARSED:
                if len(self.parsed) >= 100_000:
                    self.parsed.clear()
                t = self.parsed[ts] = parse_time(ts)
            return t
        return parse_time(ts)

    def add(self, f: Mapping, t: datetime | None = _UNPARSED) -> None:
        if f.get("side") != "request":
            return
        host, category = f.get("host"), f.get("category")
        if type(host) is str and type(category) is str:
            key = self.keys.get((host, category))
            if key is None:
                key = self.keys[host, category] = (self.clean(host), self.clean(category))
        else:
            key = (self.clean(host), self.clean(category))
        if t is _UNPARSED:
            t = self.time_of(f)
        entry = self.seen.get(key)
        if entry is None:
            entry = self.seen[key] = {"time": None, "tls": None, "n": 0}
        entry["n"] += 1
        if t is not None and (entry["time"] is None or t < entry["time"]):
            entry["time"] = t
            entry["tls"] = f.get("tls") if isinstance(f.get("tls"), bool) else None
        elif entry["time"] is None and entry["tls"] is None and isinstance(f.get("tls"), bool):
            entry["tls"] = f.get("tls")

    def result(self) -> list[FirstSend]:
        out = [FirstSend(h, c, e["time"], e["tls"], e["n"]) for (h, c), e in self.seen.items()]
        far = datetime.max.replace(tzinfo=timezone.utc)
        out.sort(key=lambda s: (s.time or far, s.host, s.category))
        return out


def first_sends(findings: Iterable[Mapping], clean) -> list[FirstSend]:
    """One entry per (host, category) of request-side findings, earliest
    timestamp first (undated ones last); ``clean`` turns an untrusted value
    (a finding's host or category) into a bounded string."""
    acc = FirstSends(clean)
    for f in findings:
        acc.add(f)
    return acc.result()
