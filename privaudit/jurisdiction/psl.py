"""Registrable domains ("eTLD+1") from the Public Suffix List shipped in rules/psl/.

The list's ICANN section only: private-section suffixes (``cloudfront.net``,
``workers.dev``) are not treated as suffixes, because the company that owns
``cloudfront.net`` is what jurisdiction cares about, not the customer's
sub-domain. Matching follows the list's rules (``*.ck`` wildcards, ``!www.ck``
exceptions) the way tldextract does, including tldextract's choice not to
apply the list's implicit ``*`` rule: a host under no listed suffix has no
registrable domain. Labels in punycode (``xn--``) are matched in Unicode, as
the list writes them.

This replaced tldextract, whose import (it pulls in requests) cost a tenth of
a second of every run's start-up; a test checks both agree.
"""

from __future__ import annotations

import functools
import re

from privaudit.resources import rules_dir

#: Label separators browsers accept besides "." (as tldextract splits them).
_DOTS = re.compile("[.\u3002\uff0e\uff61]")


@functools.lru_cache(maxsize=1)
def _trie() -> dict:
    text = (rules_dir() / "psl" / "public_suffix_list.dat").read_text(encoding="utf-8")
    icann = text.split("// ===END ICANN DOMAINS===", 1)[0]
    root: dict = {}
    for line in icann.splitlines():
        rule = line.strip().split(maxsplit=1)[0] if line.strip() else ""
        if not rule or rule.startswith("//"):
            continue
        node = root
        for label in reversed(rule.lower().split(".")):
            node = node.setdefault(label, {})
        node[None] = True  # end of a rule (None: no label can collide with it)
    return root


def _decode(label: str) -> str:
    low = label.lower()
    if low.startswith("xn--"):
        try:
            import idna

            return idna.decode(low)
        except Exception:  # malformed punycode: match it as written
            try:
                return low.encode("ascii").decode("idna")
            except Exception:
                return low
    return low


@functools.lru_cache(maxsize=4096)
def registrable_domain(host: str) -> str | None:
    """The registrable domain of ``host`` (lower case), or None for IP
    literals, single labels, bare public suffixes and unlisted TLDs."""
    host = host.strip().rstrip(".").lower()
    if not host:
        return None
    labels = _DOTS.split(host)
    node = _trie()
    suffix = n = len(labels)
    idx = n
    for label in reversed(labels):
        d = _decode(label)
        nxt = node.get(d)
        if nxt is not None:
            idx -= 1
            node = nxt
            if None in node:
                suffix = idx
            continue
        if "*" in node:
            suffix = idx if ("!" + d) in node else idx - 1
        break
    if suffix >= n or suffix <= 0 or not labels[suffix - 1]:
        return None
    return ".".join(labels[suffix - 1:])
