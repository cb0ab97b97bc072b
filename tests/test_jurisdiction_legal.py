"""Legal notes (rules/jurisdictions/*.yaml) for the report stage."""

from __future__ import annotations

import json
import textwrap

import pytest

from privaudit.errors import RuleError
from privaudit.jurisdiction import load_legal_notes, notes_for
from privaudit.jurisdiction.countries import is_country
from privaudit.jurisdiction.legal import load_legal_note_files

EU_EEA = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO".split()


@pytest.fixture(scope="module")
def notes() -> dict[str, dict]:
    return load_legal_notes()


@pytest.mark.parametrize(
    "country, regime_id, article",
    [
        ("CN", "CN", "Art. 7"),  # National Intelligence Law
        ("CN", "CN", "Art. 38"),  # PIPL
        ("CN", "CN", "Art. 39"),
        ("KR", "KR", "Art. 28-8"),
        ("US", "US", "15 U.S.C. 9901"),  # PADFA 2024
        ("DE", "EU", "Art. 46"),
        ("NO", "EU", "Art. 49"),
        ("GB", "GB", "Art. 46"),
        ("SG", "SG", "s. 26"),
        ("JP", "JP", "Art. 28"),
        ("RU", "RU", "Art. 18(5)"),
        ("IN", "IN", "s. 16"),
        ("HK", "HK", "s. 33"),
    ],
)
def test_note_for_country(notes, country, regime_id, article):
    note = notes[country]
    assert note["id"] == regime_id
    assert any(article in law["articles"] for law in note["laws"])
    for law in note["laws"]:
        assert law["link"].startswith("https://")
    assert note["regime"] and note["transfers"] and note["summary"]


def test_eu_bloc_covers_eea(notes):
    assert {c for c, n in notes.items() if n["id"] == "EU"} == set(EU_EEA)
    assert "KR" in notes["DE"]["adequacy"]["countries"]


def test_notes_are_plain_json(notes):
    json.dumps(notes)
    for code, note in notes.items():
        assert is_country(code)
        assert type(note["regime"]) is str


def test_notes_for_dedupes_blocs_and_skips_unknown():
    assert [n["id"] for n in notes_for(["FR", "DE", "CN", "ZZ", "BR", "US"])] == ["EU", "CN", "US"]


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("id: XX\nregime: R\ncountries: [XX]\nsummary: s\ntransfers: t\n"
         "laws: [{name: n, articles: [a], effect: e, link: 'https://x.example/'}]\n", 3, "not an ISO 3166-1"),
        ("id: KR\nregime: R\ncountries: [KR]\nsummary: s\ntransfers: t\n"
         "laws:\n  - name: n\n    articles: [a]\n    effect: e\n    link: http://insecure.example/\n", 10, "link"),
        ("id: KR\nregime: R\ncountries: [KR]\nsummary: s\nlaws: []\n", 1, "transfers"),
    ],
)
def test_malformed_note_names_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "note.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(RuleError) as info:
        load_legal_note_files([path])
    assert str(info.value).startswith(f"{path}:{line}"), str(info.value)
    assert message in str(info.value)


def test_country_in_two_notes_is_an_error(tmp_path):
    body = "regime: R\ncountries: [KR]\nsummary: s\ntransfers: t\nlaws: [{name: n, articles: [a], effect: e, link: 'https://x.example/'}]\n"
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("id: AA\n" + body)
    b.write_text("id: BB\n" + body)
    with pytest.raises(RuleError, match=r"b\.yaml:3: KR already has a legal note in .*a\.yaml"):
        load_legal_note_files([a, b])
