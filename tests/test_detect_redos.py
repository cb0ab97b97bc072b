"""Rule patterns that can backtrack exponentially are refused at load time."""

from __future__ import annotations

import re
import time

import pytest

from privaudit.detect.redos import backtracking_risk
from privaudit.detect.rules import load_rules
from privaudit.errors import RuleError


@pytest.mark.parametrize(
    "pattern",
    [r"(a+)+$", r"(\w+\s?)+$", r"(\d*,?)*x", r"((ab)*)+c", r"^(?:[a-z0-9]+-?)+\.example$", r"(?i)(?:x|[a-z]+)*!",
     r"(.*,)*z", r"(?:\s*\S+)+;"],
)
def test_exponential_shapes_are_flagged(pattern):
    assert backtracking_risk(pattern)


@pytest.mark.parametrize(
    "pattern",
    [r"([a-z]+\.)+[a-z]{2,}", r"(?:\s*,\s*\w+)*", r"(\w++\s?)+$", r"(?>\w+\s?)+$", r"(?:[0-9a-f]{2}:){5}[0-9a-f]{2}",
     r"^(?:[0-9a-fA-F]{2}){8,}$", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", r"(?i)^(?:imei|meid|device_?imei)$",
     r"(?<![\d])1[3-9]\d{9}(?![\d])", r"(x{1,3}){1,10}"],
)
def test_safe_shapes_pass(pattern):
    assert backtracking_risk(pattern) is None


def test_a_flagged_shape_really_is_exponential_in_python_re():
    """The classic case, timed at two sizes: each 4 more characters cost ~16x.
    (Small sizes, so the test stays fast; the ratio is what shows the blow-up.)"""
    rx = re.compile(r"(\w+\s?)+$")
    assert backtracking_risk(rx.pattern)

    def cost(n: int) -> float:
        t = time.perf_counter()
        rx.match("a" * n + "!")
        return time.perf_counter() - t

    small, big = min(cost(12) for _ in range(3)), min(cost(16) for _ in range(3))
    assert big > 4 * small


def test_every_shipped_rule_pattern_passes():
    from privaudit import validated

    saved, validated.TRUST = validated.TRUST, False  # run every check, not the listed shortcut
    try:
        assert len(load_rules()) > 50
    finally:
        validated.TRUST = saved


def test_a_user_rule_with_an_exponential_pattern_is_refused_with_file_line_and_advice(tmp_path):
    (tmp_path / "mine.nested.yaml").write_text(
        "id: mine.nested\n"
        "category: device_id\n"
        "severity: medium\n"
        "rationale: A test rule whose value pattern nests repetitions.\n"
        "references: [https://example.org]\n"
        "kind: key\n"
        "key: 'deviceid'\n"
        "value: '^(\\w+\\s?)+$'\n"
        "tests:\n"
        "  match: [{key: deviceid, value: abc}]\n"
        "  no_match: [{key: other, value: abc}]\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleError) as e:
        load_rules([tmp_path], builtin=False)
    msg = str(e.value)
    assert f"{tmp_path / 'mine.nested.yaml'}:8:" in msg
    assert "exponential time" in msg and "possessive" in msg
