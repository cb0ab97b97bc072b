"""Legal notes per country or bloc, as data in ``rules/jurisdictions/*.yaml``.

One file per regime (a country, or a bloc such as the EU/EEA): the regime's
name, what it means for data sent there, the articles that matter and links to
the texts. The report stage looks notes up by the country codes in an
endpoint's ``jurisdictions``.

These are orientation for a reader, not legal advice; every note names the
articles so a reader can check the text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path

from privaudit import resources
from privaudit.errors import RuleError
from privaudit.jurisdiction._yaml import load_valid, plain
from privaudit.jurisdiction.countries import is_country

_EXAMPLE = """a legal note looks like:
    id: KR
    regime: Republic of Korea
    countries: [KR]
    summary: ...
    transfers: ...        # what the law means for data sent there
    laws:
      - name: Personal Information Protection Act (PIPA)
        articles: [Art. 28-8]
        effect: ...
        link: https://www.law.go.kr/..."""


def _dir() -> Path:
    return resources.rules_dir() / "jurisdictions"


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    return json.loads((_dir() / "jurisdictions.schema.json").read_text(encoding="utf-8"))


def load_legal_note_files(paths: Iterable[Path]) -> dict[str, dict]:
    """Notes keyed by ISO country code; a bloc's note appears under each member."""
    by_country: dict[str, dict] = {}
    origin: dict[str, str] = {}
    ids: dict[str, str] = {}
    for path in paths:
        data = load_valid(path, _schema(), _EXAMPLE)
        if data["id"] in ids:
            raise RuleError(f"{path}:{data.key_lines['id']}: id {data['id']} is already used in {ids[data['id']]}")
        ids[data["id"]] = str(path)
        for i, code in enumerate(data["countries"]):
            line = data["countries"].item_lines[i]
            if not is_country(code):
                raise RuleError(f"{path}:{line}: {code!r} is not an ISO 3166-1 alpha-2 country code")
            if code in by_country:
                raise RuleError(f"{path}:{line}: {code} already has a legal note in {origin[code]}")
            origin[code] = str(path)
        note = plain(data)
        note["file"] = path.name
        for code in data["countries"]:
            by_country[code] = note
    return by_country


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, dict]:
    return load_legal_note_files(sorted(_dir().glob("*.yaml")))


def load_legal_notes() -> dict[str, dict]:
    """The shipped legal notes, keyed by ISO 3166-1 alpha-2 country code.

    Members of a bloc (the 27 EU states plus IS, LI, NO) map to the same note
    dict, whose ``id`` is the bloc's ("EU"). Returned dicts are copies of the
    top level; treat them as read-only.
    """
    return dict(_shipped())


def notes_for(countries: Iterable[str]) -> list[dict]:
    """The distinct notes for a list of country codes (e.g. an endpoint's
    ``jurisdictions``), in first-seen order; countries without a note are skipped."""
    notes = _shipped()
    out: list[dict] = []
    seen: set[str] = set()
    for code in countries:
        note = notes.get(code)
        if note is not None and note["id"] not in seen:
            seen.add(note["id"])
            out.append(note)
    return out
