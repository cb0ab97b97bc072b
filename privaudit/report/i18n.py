"""User-visible words of the report, from report_templates/i18n/*.yaml.

Every string a reader sees comes from these data files, never from Python or
the templates, so a translation is one file. Keys are nested in YAML and used
dotted (``summary.title``); ``countries.yaml`` maps ISO 3166-1 alpha-2 codes to
names in each language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from privaudit import resources
from privaudit.errors import ConfigError, yaml_location

LANGS: tuple[str, ...] = ("en", "ko")

_COUNTRY_CODE = re.compile(r"[A-Z]{2}")


def i18n_dir() -> Path:
    return resources.templates_dir() / "i18n"


def _load_yaml(path: Path) -> object:
    try:
        with path.open(encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{yaml_location(str(path), exc)}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the report's translations: {exc}") from exc


def flatten(tree: Mapping, prefix: str = "") -> dict[str, str]:
    """{"a": {"b": "x"}} -> {"a.b": "x"}; leaves must be strings."""
    out: dict[str, str] = {}
    for key, value in tree.items():
        if not isinstance(key, str):
            # YAML 1.1 reads a bare yes/no/on/off key as a boolean: quote it.
            raise ConfigError(f"translation key {prefix}{key!r} is not a string; quote it in the YAML file")
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        elif isinstance(value, str):
            out[name] = value
        else:
            raise ConfigError(f"translation {name!r} is {type(value).__name__}, expected a string")
    return out


@cache
def messages(lang: str) -> dict[str, str]:
    path = i18n_dir() / f"{lang}.yaml"
    tree = _load_yaml(path)
    if not isinstance(tree, Mapping):
        raise ConfigError(f"{path}: expected a mapping of message keys")
    return flatten(tree)


@cache
def country_names() -> dict[str, dict[str, str]]:
    path = i18n_dir() / "countries.yaml"
    tree = _load_yaml(path)
    if not isinstance(tree, Mapping):
        raise ConfigError(f"{path}: expected a mapping of ISO country codes")
    return {str(code): dict(names) for code, names in tree.items()}


@dataclass(frozen=True)
class Translator:
    """``t(key, **params)`` for one language; list params are joined."""

    lang: str

    def __call__(self, key: str, **params: object) -> str:
        try:
            text = messages(self.lang)[key]
        except KeyError:
            # A missing key is a bug in privaudit's own data, not the user's input.
            raise KeyError(f"no {self.lang} translation for {key!r}") from None
        if not params:
            return text
        sep = messages(self.lang)["list_separator"]
        values = {
            name: sep.join(map(str, v)) if isinstance(v, (list, tuple)) else v
            for name, v in params.items()
        }
        for name, v in values.items():
            # "…Intercom, Inc." at the end of a sentence: one full stop, not two.
            if isinstance(v, str) and v.endswith(".") and "{" + name + "}." in text:
                text = text.replace("{" + name + "}.", "{" + name + "}")
        return text.format(**values)

    def has(self, key: str) -> bool:
        return key in messages(self.lang)

    def optional(self, key: str, default: str) -> str:
        return messages(self.lang).get(key, default)

    def country(self, code: object) -> str:
        """"China (CN)"; the raw value for anything that is not a known code."""
        if code is None or code == "":
            return self("common.unknown")
        text = str(code)
        if _COUNTRY_CODE.fullmatch(text):
            name = country_names().get(text, {}).get(self.lang)
            if name:
                return self("common.country_with_code", name=name, code=text)
        return text

    def countries(self, codes: Iterable[object]) -> list[str]:
        return [self.country(c) for c in codes]

    def category(self, name: object) -> str:
        # A project may add categories; unknown ones are shown by their id.
        return self.optional(f"category.{name}", str(name))

    # Labels for fixed vocabularies; an unexpected value is shown as it is.

    def join(self, items: Iterable[object]) -> str:
        items = [str(i) for i in items]
        return self("list_separator").join(items) if items else self("common.none")

    def severity(self, value: object) -> str:
        return self.optional(f"severity.{value}", str(value))

    def side(self, value: object) -> str:
        return self.optional(f"side.{value}", str(value))

    def tls(self, value: object) -> str:
        return self("tls.yes") if value is True else self("tls.no") if value is False else self("tls.unknown")
