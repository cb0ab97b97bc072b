"""The rule files: schema, every rule's own cases, loading errors, tooling."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from privaudit.detect import load_rules
from privaudit.detect.rules import builtin_dirs
from privaudit.detect.ruletool import iter_rule_cases, list_rules, rule_case_matches, run_rule_tests, validate
from privaudit.errors import RuleError
from privaudit.model import CATEGORIES, SEVERITIES
from privaudit.resources import rules_dir

CASES = list(iter_rule_cases())


@pytest.mark.parametrize(
    ("rule", "expect", "case"),
    CASES,
    ids=[f"{r.id}-{'match' if m else 'no_match'}-{i}" for i, (r, m, _) in enumerate(CASES)],
)
def test_rule_own_cases(rule, expect, case):
    assert rule_case_matches(rule, case) is expect


def test_shipped_rules_validate_and_cover_every_category():
    assert validate() == []
    rules = load_rules()
    assert {r.category for r in rules} == set(CATEGORIES)
    for r in rules:
        assert r.severity in SEVERITIES
        assert Path(r.path).stem == r.id
        assert Path(r.path).parent.parent == builtin_dirs()[0]
        assert r.tests["match"] and r.tests["no_match"]


def test_schema_category_enum_is_the_contract():
    schema = json.loads((rules_dir() / "schema" / "rule.schema.json").read_text())
    assert tuple(schema["properties"]["category"]["enum"]) == CATEGORIES
    assert tuple(schema["properties"]["severity"]["enum"]) == SEVERITIES


def test_digest_is_stable_and_content_based(tmp_path):
    a, b = load_rules(), load_rules()
    assert a.digest == b.digest and re.fullmatch(r"[0-9a-f]{64}", a.digest)
    _write(tmp_path, "mine.custom_id", GOOD)
    assert load_rules([tmp_path]).digest != a.digest


GOOD = """\
id: {id}
category: device_id
severity: medium
rationale: A vendor identifier used by one SDK.
references: [https://example.org/sdk]
kind: key
key: 'customid'
value: '^[0-9a-f]{{12}}$'
tests:
  match: [{{key: custom_id, value: 0123456789ab}}]
  no_match: [{{key: custom_id, value: short}}]
"""


def _write(d: Path, rid: str, text: str, sub: str = "x") -> Path:
    (d / sub).mkdir(parents=True, exist_ok=True)
    p = d / sub / f"{rid}.yaml"
    p.write_text(text.format(id=rid) if "{id}" in text else text)
    return p


def test_extra_rules_are_loaded_and_can_replace_shipped(tmp_path):
    _write(tmp_path, "mine.custom_id", GOOD)
    rules = load_rules([tmp_path])
    assert "mine.custom_id" in rules.by_id and "device.android_id" in rules.by_id
    _write(tmp_path, "device.android_id", GOOD, sub="y")
    replaced = load_rules([tmp_path]).by_id["device.android_id"]
    assert replaced.path.startswith(str(tmp_path))


# Bad files: the message names file:line and shows a correct rule.
BAD = [
    ("syntax", "id: a.b\ncategory: [email\n", 3, "not valid YAML"),
    ("category", GOOD.replace("category: device_id", "category: device_ids"), 2, "category"),
    ("severity", GOOD.replace("severity: medium", "severity: urgent"), 3, "severity"),
    ("missing", GOOD.replace("rationale: A vendor identifier used by one SDK.\n", ""), None, "'rationale' is a required property"),
    ("regex", GOOD.replace("key: 'customid'", "key: 'custom(id'"), 7, "not a valid regular expression"),
    ("validator", GOOD.replace("kind: key\n", "kind: key\nvalidator: nope\n"), 7, "unknown validator 'nope'"),
    ("pattern-without-pattern", GOOD.replace("kind: key", "kind: pattern"), None, "'pattern' is a required property"),
    ("bad-case", GOOD.replace("no_match: [{{key: custom_id, value: short}}]", "no_match: [{{nokey: 1}}]"), 11, "test case"),
    ("reference", GOOD.replace("https://example.org/sdk", "example.org"), 5, "does not match"),
]


@pytest.mark.parametrize(("name", "text", "line", "needle"), BAD, ids=[b[0] for b in BAD])
def test_bad_rule_file_names_file_and_line(tmp_path, name, text, line, needle):
    p = _write(tmp_path, "mine.custom_id", text.format(id="mine.custom_id"))
    with pytest.raises(RuleError) as ei:
        load_rules([tmp_path])
    msg = str(ei.value)
    assert needle in msg
    assert (f"{p}:{line}" if line else str(p)) in msg
    assert "a correct rule looks like" in msg and "id: device.android_id" in msg


def test_id_must_match_file_name(tmp_path):
    p = _write(tmp_path, "mine.other_name", GOOD.format(id="mine.custom_id"))
    errors = validate([tmp_path])
    assert len(errors) == 1 and errors[0].startswith(f"{p}:1:") and "must equal the file name" in errors[0]


def test_duplicate_ids_in_one_folder(tmp_path):
    _write(tmp_path, "mine.custom_id", GOOD, sub="a")
    _write(tmp_path, "mine.custom_id", GOOD, sub="b")
    assert any("duplicate rule id 'mine.custom_id'" in e for e in validate([tmp_path]))


def test_missing_folder_is_a_rule_error(tmp_path):
    with pytest.raises(RuleError, match="no such rule file or folder"):
        load_rules([tmp_path / "nope"])


def test_ruletool_list_validate_test(tmp_path):
    rows = list_rules()
    assert ("device.android_id", "device_id", "medium") == rows[[r[0] for r in rows].index("device.android_id")][:3]
    passed, failures = run_rule_tests()
    assert failures == [] and passed == len(CASES)

    _write(tmp_path, "mine.custom_id", GOOD.replace("value: short", "value: 0123456789ab"))
    passed, failures = run_rule_tests([tmp_path])
    assert passed == 1
    assert failures == [f"{tmp_path / 'x' / 'mine.custom_id.yaml'}: mine.custom_id: no_match case "
                        '{"key": "custom_id", "value": "0123456789ab"} should not match but did']


def test_example_in_error_is_itself_a_valid_rule(tmp_path):
    from privaudit.detect.rules import EXAMPLE_RULE

    _write(tmp_path, "device.android_id", textwrap.dedent(EXAMPLE_RULE) + "\n")
    assert validate([tmp_path]) == []
    assert run_rule_tests([tmp_path]) == (2, [])
