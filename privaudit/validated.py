"""Shipped data files already known to pass their schemas.

Every run loads ~100 shipped YAML files (detection rules, the operator and
ASN maps, legal notes) and used to check each against its JSON Schema with
``jsonschema``: about a third of a second of start-up, spent proving again
what the tests proved when the files were committed. ``rules/validated.sha256``
lists the SHA-256 of every shipped data file that passed, under the digest of
the schemas it passed; a file whose content is listed (and whose schemas are
unchanged) skips the schema check (and, for rules, the exponential-backtracking
check of :mod:`privaudit.detect.redos`, which the test of this list reruns). Everything else is checked as before — a
user's own files, and a shipped file edited in place (it no longer matches).
The other checks (ids equal file names, regexes compile, duplicate keys) run
every time. ``privaudit rules validate`` never trusts the list.

The detection rules' parsed content is also kept, as JSON
(``rules/validated-rules.jsonl``, one ``<sha256> <json>`` line per rule
file): a listed rule file's YAML is not parsed again either, which was
~20 ms of every start-up. Only files whose YAML comes back unchanged
through JSON are kept; the others, and every file of a user's, are parsed
as YAML as before.

Regenerate after changing shipped data (a test fails until you do)::

    python -m privaudit.validated
"""

from __future__ import annotations

import hashlib
import sys
from functools import lru_cache
from pathlib import Path

from .resources import rules_dir

MANIFEST = "validated.sha256"
PARSED = "validated-rules.jsonl"

#: Set to False to check every file against its schema (``rules validate``).
TRUST = True


def digest(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def schemas_digest(root: Path | None = None) -> str:
    root = root or rules_dir()
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.schema.json")):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    root = rules_dir()
    try:
        lines = (root / MANIFEST).read_text(encoding="utf-8").splitlines()
    except OSError:
        return frozenset()
    if not lines or lines[0] != f"schemas {schemas_digest(root)}":
        return frozenset()  # the schemas changed: nothing is known to pass them
    return frozenset(ln.split()[0] for ln in lines[1:] if ln.strip())


def known_valid(text: bytes | str) -> bool:
    """Whether a file with this content is listed as passing the current schemas."""
    return TRUST and digest(text) in _known()


@lru_cache(maxsize=1)
def _parsed() -> dict[str, str]:
    try:
        text = (rules_dir() / PARSED).read_text(encoding="utf-8")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, data = line.partition(" ")
        out[key] = data
    return out


def parsed_rule(text: str):
    """A listed rule file's content as its YAML parses, from the JSON kept
    for it (fresh objects each call), or None: not listed, or not trusted."""
    if not known_valid(text):
        return None
    data = _parsed().get(digest(text))
    if data is None:
        return None
    import json

    return json.loads(data)


def expected_parsed() -> str:
    """The ``<sha256> <json>`` lines of every shipped rule file whose YAML
    comes back unchanged through JSON."""
    import json

    import yaml

    from .detect.rules import _Loader, builtin_dirs, rule_files

    lines = []
    for p in rule_files(builtin_dirs()):
        text = p.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=_Loader)
        try:
            js = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):  # a date, a set...: stays YAML
            continue
        if _same(json.loads(js), data):
            lines.append(f"{digest(text)} {js}")
    return "".join(f"{ln}\n" for ln in sorted(lines))


def _same(a, b) -> bool:
    """Equal, with the same types all the way down (1 == True == 1.0 otherwise)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def shipped_files(root: Path | None = None) -> list[Path]:
    root = root or rules_dir()
    return sorted(p for p in root.rglob("*.yaml") if not any(part.startswith(".") for part in p.parts))


def expected_manifest() -> str:
    """The manifest for the shipped files as they are now, after checking every one in full."""
    global TRUST
    from .detect.rules import load_rules
    from .jurisdiction.asn import AsnMap
    from .jurisdiction.legal import _shipped
    from .jurisdiction.operators import OperatorMap

    saved, TRUST = TRUST, False
    try:
        load_rules()
        OperatorMap.default()
        AsnMap.default()
        _shipped.cache_clear()  # (a memoised load would not be checked again)
        _shipped()
    finally:
        TRUST = saved
    root = rules_dir()
    lines = [f"schemas {schemas_digest(root)}"]
    lines += [f"{digest(p.read_bytes())}  {p.relative_to(root).as_posix()}" for p in shipped_files(root)]
    return "\n".join(lines) + "\n"


def main() -> int:
    path = rules_dir() / MANIFEST
    path.write_text(expected_manifest(), encoding="utf-8")
    print(f"wrote {path}")
    path = rules_dir() / PARSED
    path.write_text(expected_parsed(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
