"""Rule tooling behind ``privaudit rules list|validate|test [DIR]``.

With no folder given, the shipped rules are used. Every rule's own test cases
are run through the real pipeline (decode + detect) on a synthetic exchange,
with a rule set holding only that rule: a case "matches" when that rule
produces a finding.

Case forms (see ``$defs/case`` in the schema):

* ``"text"`` - sent as a ``text/plain`` request body (no key);
* ``{key: k, value: v}`` - a JSON body ``{k: v}``; ``where:`` may put it in a
  ``header``, the ``query``, a ``cookie``, a ``form`` body or a client
  ``websocket`` message (as JSON) instead;
* ``{json: {...}}`` - that JSON document as the body (siblings, lists, nesting);
* ``{body: "...", content_type: "..."}`` - a raw body; characters up to
  U+00FF are bytes (``"\\xNN"`` in YAML double quotes), for protobuf, gRPC-web
  frames and multipart uploads;
* ``url:`` - the request URL (for rules limited to some endpoints).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote, urlencode

from privaudit.model import Exchange, Message, WsMessage

from .detector import Detector
from .rules import Rule, RuleSet, builtin_dirs, check_rule_files, rule_files

__all__ = ["list_rules", "validate", "run_rule_tests", "case_exchange", "rule_case_matches"]

DEFAULT_URL = "https://api.example.com/v1/collect"


def _dirs(dirs: Sequence[str | Path] | None) -> Sequence[str | Path]:
    return tuple(dirs) if dirs else builtin_dirs()


def list_rules(dirs: Sequence[str | Path] | None = None) -> list[tuple[str, str, str, str]]:
    """(id, category, severity, path) of every valid rule, sorted by id."""
    rules, _ = check_rule_files(rule_files(_dirs(dirs)))
    return sorted((r.id, r.category, r.severity, r.path) for r in rules)


def validate(dirs: Sequence[str | Path] | None = None) -> list[str]:
    """Every problem in the rule files, each "file:line: message" plus an example.

    Checks every file against the schema, shipped ones included (it does not
    trust :mod:`privaudit.validated`'s list)."""
    from .. import validated

    saved, validated.TRUST = validated.TRUST, False
    try:
        _, errors = check_rule_files(rule_files(_dirs(dirs)))
    finally:
        validated.TRUST = saved
    return errors


def case_exchange(case, index: int = 0) -> Exchange:
    """The synthetic exchange a rule test case describes."""
    url = DEFAULT_URL
    headers: list[tuple[str, str]] = [("User-Agent", "okhttp/4.12.0")]
    body, ctype = b"", ""
    ws: tuple[WsMessage, ...] = ()
    if isinstance(case, str):
        body, ctype = case.encode("utf-8"), "text/plain; charset=utf-8"
    else:
        url = case.get("url", url)
        if "body" in case:
            # characters U+0000-U+00FF stand for bytes (write "\xNN" in a YAML
            # double-quoted string), so binary bodies can be written as text
            text = case["body"]
            body = text.encode("latin-1") if all(ord(c) < 256 for c in text) else text.encode("utf-8")
            ctype = case["content_type"]
        elif "json" in case:
            body, ctype = json.dumps(case["json"], ensure_ascii=False).encode("utf-8"), "application/json"
        else:
            key, value = case["key"], case["value"]
            where = case.get("where", "json")
            sval = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            if where == "header":
                headers.append((key, sval))
            elif where == "cookie":
                headers.append(("Cookie", f"{key}={sval}"))
            elif where == "query":
                url += ("&" if "?" in url else "?") + f"{quote(key)}={quote(sval, safe='')}"
            elif where == "form":
                body, ctype = urlencode({key: sval}).encode("ascii"), "application/x-www-form-urlencoded"
            elif where == "websocket":
                ws = (WsMessage(True, True, json.dumps({key: value}, ensure_ascii=False).encode("utf-8")),)
            else:
                body, ctype = json.dumps({key: value}, ensure_ascii=False).encode("utf-8"), "application/json"
    if ctype:
        headers.append(("Content-Type", ctype))
    host = url.split("/")[2].split(":")[0] if "://" in url else "api.example.com"
    return Exchange(
        index=index, kind="http", host=host, scheme=url.split(":", 1)[0], method="POST", url=url,
        request=Message(headers=tuple(headers), body=body, content_type=ctype), tls=True, websocket=ws,
    )


def rule_case_matches(rule: Rule, case) -> bool:
    det = Detector(RuleSet([rule]))
    return any(f.rule == rule.id for f in det.scan(case_exchange(case)))


def _describe(case) -> str:
    return json.dumps(case, ensure_ascii=False) if not isinstance(case, str) else repr(case)


def run_rule_tests(dirs: Sequence[str | Path] | None = None) -> tuple[int, list[str]]:
    """Run every rule's own cases: (number passed, failure messages).

    Invalid rule files count as failures (their validation errors are listed).
    """
    rules, errors = check_rule_files(rule_files(_dirs(dirs)))
    failures = list(errors)
    passed = 0
    for rule in sorted(rules, key=lambda r: r.id):
        for expect, cases in (("match", rule.tests.get("match", [])), ("no_match", rule.tests.get("no_match", []))):
            for case in cases:
                got = rule_case_matches(rule, case)
                if got == (expect == "match"):
                    passed += 1
                else:
                    verb = "should match but did not" if expect == "match" else "should not match but did"
                    failures.append(f"{rule.path}: {rule.id}: {expect} case {_describe(case)} {verb}")
    return passed, failures


def iter_rule_cases(dirs: Iterable[str | Path] | None = None):
    """(rule, expect_match, case) for every case of every valid rule (for pytest)."""
    rules, _ = check_rule_files(rule_files(_dirs(tuple(dirs) if dirs else None)))
    for rule in sorted(rules, key=lambda r: r.id):
        for case in rule.tests.get("match", []):
            yield rule, True, case
        for case in rule.tests.get("no_match", []):
            yield rule, False, case
