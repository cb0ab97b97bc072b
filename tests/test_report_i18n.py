"""The report's words: both languages complete, every key the templates use
exists, placeholders match, country names for both languages."""

from __future__ import annotations

import re
import string

import pytest

from privaudit import resources
from privaudit.errors import ConfigError
from privaudit.model import CATEGORIES, SEVERITIES
from privaudit.report.i18n import LANGS, Translator, country_names, flatten, messages
from privaudit.report.viewmodel import AUDITOR_FIELDS, RATINGS

TEMPLATES = sorted(resources.templates_dir().glob("*.j2"))
KEY_IN_TEMPLATE = re.compile(r"""\bt\(\s*["']([a-z_.]*[a-z_])["']""")
DYNAMIC_KEY = re.compile(r"""\bt\(\s*["']([a-z_]+\.)["']\s*~""")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_keys():
    en, ko = set(messages("en")), set(messages("ko"))
    assert en - ko == set(), "missing in ko.yaml"
    assert ko - en == set(), "missing in en.yaml"


@pytest.mark.parametrize("key", sorted(messages("en")))
def test_placeholders_match(key):
    assert _placeholders(messages("en")[key]) == _placeholders(messages("ko")[key])


def test_korean_is_korean():
    ko = messages("ko")
    hangul = [k for k, v in ko.items() if re.search(r"[\uac00-\ud7a3]", v)]
    assert len(hangul) > 0.8 * len(ko)
    for word in ("개인정보", "국외 이전", "수신자"):
        assert any(word in v for v in ko.values()), word


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_every_key_a_template_names_exists(template):
    text = template.read_text(encoding="utf-8")
    keys = set(KEY_IN_TEMPLATE.findall(text))
    for lang in LANGS:
        assert keys - set(messages(lang)) == set(), (template.name, lang)


def test_dynamic_key_families_are_complete():
    families = {p for t in TEMPLATES for p in DYNAMIC_KEY.findall(t.read_text(encoding="utf-8"))}
    expected = {
        "rating.": RATINGS, "rating_text.": RATINGS, "severity.": SEVERITIES,
        "confidence.": ("high", "medium", "low"), "side.": ("request", "response"),
        "kind.": ("http", "tcp", "udp", "dns", "other"),
        "question.": ("data", "sources", "purposes", "basis", "storage", "recipients", "security"),
        "status.": ("observed", "partial", "not_observable"),
        "party.": ("first", "third"),
        "auditor.": AUDITOR_FIELDS,
        "timeline_source.": ("capture", "first_flow"),
        "timeline_boundary.": ("consent", "first_action"),
    }
    assert families <= set(expected), families - set(expected)
    for lang in LANGS:
        for prefix, values in expected.items():
            for v in values:
                assert prefix + v in messages(lang)
        for c in CATEGORIES:
            assert f"category.{c}" in messages(lang)
        for level in RATINGS:
            assert f"rating.{level}" in messages(lang)


def test_reason_keys_exist():
    from privaudit.report import viewmodel

    for key in viewmodel._REASON_ORDER:
        for lang in LANGS:
            assert key in messages(lang)


@pytest.mark.parametrize(
    ("code", "en", "ko"),
    [
        ("CN", "China (CN)", "중국 (CN)"),
        ("KR", "Republic of Korea (KR)", "대한민국 (KR)"),
        ("NO", "Norway (NO)", "노르웨이 (NO)"),
        ("XX", "XX", "XX"),
        ("cn", "cn", "cn"),
        (None, "unknown", "알 수 없음"),
        ("<b>", "<b>", "<b>"),
    ],
)
def test_country_names(code, en, ko):
    assert Translator("en").country(code) == en
    assert Translator("ko").country(code) == ko


def test_every_country_has_both_names():
    for code, names in country_names().items():
        assert re.fullmatch(r"[A-Z]{2}", code), code
        assert set(names) == set(LANGS), code
    for code in ("CN", "US", "KR", "SG", "JP", "HK", "TW", "DE", "IE", "NL", "GB", "FR", "IL", "RU", "IN"):
        assert code in country_names()


def test_unknown_category_shows_its_id():
    assert Translator("ko").category("voice_print") == "voice_print"
    assert Translator("ko").category("chat_content") == "대화 내용"


def test_translator_joins_lists():
    t = Translator("en")
    assert t("ep.more_in_appendix", n=3) == "3 more finding(s) for this endpoint are listed in the appendix."
    assert t.join([]) == "—" and t.join(["a", "b"]) == "a, b"


def test_boolean_yaml_keys_are_refused():
    with pytest.raises(ConfigError, match="quote it"):
        flatten({"tls": {True: "yes"}})


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_hold_no_words_of_their_own(template):
    """What a template writes outside {{ }} is markup and punctuation only;
    every word comes from the translations."""
    text = template.read_text(encoding="utf-8")
    text = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", text, flags=re.S)
    if template.name.endswith(".css.j2"):
        return  # a stylesheet: property names, no visible text (its content: strings come from t())
    text = re.sub(r"<style>.*?</style>|<!DOCTYPE html>|<[^>]*>", " ", text, flags=re.S)
    words = set(re.findall(r"[^\W\d_]{2,}", text)) - {"AS"}  # "AS" prefixes an AS number
    assert words == set(), words


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["Intercom, Inc."], "Other: Intercom, Inc."),
        (["Intercom, Inc", "B Co."], "Other: Intercom, Inc, B Co."),
        (["ACME"], "Other: ACME."),
        ([], "Other: ."),
    ],
)
def test_a_value_ending_a_sentence_gets_one_full_stop(value, expected):
    assert Translator("en")("answer.source_other", categories=value) == expected
