"""The list of shipped data files known to pass their schemas (privaudit.validated)."""

from __future__ import annotations

import shutil

import pytest

from privaudit import validated
from privaudit.errors import RuleError
from privaudit.resources import rules_dir


def test_the_list_matches_the_shipped_files():
    """Fails after shipped data or a schema changes: run ``python -m privaudit.validated``."""
    current = (rules_dir() / validated.MANIFEST).read_text(encoding="utf-8")
    assert current == validated.expected_manifest(), "run: python -m privaudit.validated"


def test_the_kept_rule_content_matches_the_shipped_rules():
    """Fails after a shipped rule changes: run ``python -m privaudit.validated``.
    (expected_parsed parses every rule's YAML and keeps only what comes back
    from JSON with the same types.)"""
    current = (rules_dir() / validated.PARSED).read_text(encoding="utf-8")
    assert current == validated.expected_parsed(), "run: python -m privaudit.validated"
    assert len(current.splitlines()) == len(list((rules_dir() / "detect").rglob("*.yaml")))


def test_kept_content_is_used_only_for_listed_unchanged_files(monkeypatch):
    import yaml

    from privaudit.detect.rules import _Loader

    src = next(p for p in validated.shipped_files() if "detect" in p.parts)
    text = src.read_text(encoding="utf-8")
    kept = validated.parsed_rule(text)
    assert kept == yaml.load(text, Loader=_Loader) and kept is not validated.parsed_rule(text)  # fresh each time
    assert validated.parsed_rule(text + "\n# edited\n") is None
    monkeypatch.setattr(validated, "TRUST", False)  # rules validate: YAML, every check
    assert validated.parsed_rule(text) is None


def test_the_same_types_all_the_way_down():
    assert validated._same({"a": [1, "x", None]}, {"a": [1, "x", None]})
    assert not validated._same({"a": 1}, {"a": True}) and not validated._same([1.0], [1])
    assert not validated._same({"a": 1}, {"a": 1, "b": 2})


def test_listed_content_skips_the_schema_check_and_other_content_does_not(tmp_path):
    shipped = next(p for p in validated.shipped_files() if p.parent.name == "operators")
    assert validated.known_valid(shipped.read_bytes())
    assert not validated.known_valid(shipped.read_bytes() + b"\n# edited\n")
    saved = validated.TRUST
    validated.TRUST = False
    try:
        assert not validated.known_valid(shipped.read_bytes())
    finally:
        validated.TRUST = saved


def test_an_edited_rule_is_checked_against_the_schema_again(tmp_path):
    from privaudit.detect.rules import load_rules

    src = next(p for p in validated.shipped_files() if "detect" in p.parts)
    bad = tmp_path / src.name
    # a listed rule with one schema violation appended: no longer listed, so checked
    bad.write_text(src.read_text(encoding="utf-8") + "\nnot_a_field: 1\n", encoding="utf-8")
    with pytest.raises(RuleError, match="not_a_field"):
        load_rules([tmp_path], builtin=False)
    # the unchanged copy is listed and loads
    shutil.copy(src, bad)
    assert len(load_rules([tmp_path], builtin=False)) == 1


def test_rules_validate_never_trusts_the_list(monkeypatch):
    from privaudit.detect import ruletool

    seen = []
    monkeypatch.setattr(validated, "known_valid", lambda text: seen.append(validated.TRUST) or False)
    assert ruletool.validate() == []
    assert seen and not any(seen)
