"""YAML loading that keeps line numbers, so a bad entry is reported as file:line.

PyYAML's ``safe_load`` throws positions away; this loader builds plain dicts,
lists and scalars (subclasses, so every consumer can treat them as such) that
remember where they started, and refuses duplicate keys, which ``safe_load``
would silently collapse to the last one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from privaudit.errors import RuleError, yaml_location


class LineDict(dict):
    """A mapping that knows its own line and the line of each key."""

    line: int = 0
    key_lines: dict


class LineList(list):
    """A sequence that knows its own line and the line of each item."""

    line: int = 0
    item_lines: list


class LineStr(str):
    line: int = 0


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser when present: ~5x faster
    pass


# YAML 1.1 reads yes/no/on/off as booleans, which turns Norway's country code
# NO into False. Only true/false are booleans here (as in YAML 1.2).
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise RuleError(
                f"{loader.name}:{key_node.start_mark.line + 1}: duplicate key {key!r} "
                f"(first at line {out.key_lines[key]})"
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


def _construct_str(loader: _Loader, node: yaml.ScalarNode) -> LineStr:
    out = LineStr(loader.construct_scalar(node))
    out.line = node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def load_valid(path: Path, schema: dict, example: str) -> Any:
    """Parse one YAML file, then :func:`validate` it; any failure is a
    :class:`RuleError` naming file:line. The file is read once, and the
    schema check is skipped for content listed as passing the current schemas
    (:mod:`privaudit.validated`: the shipped files, checked when committed)."""
    from privaudit import validated

    text = _read(path)
    data = _parse(text, path)
    if not validated.known_valid(text):
        validate(path, data, schema, example)
    return data


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot read: {exc}") from exc


def _parse(text: str, path: Path) -> Any:
    loader = _Loader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise RuleError(f"{yaml_location(str(path), exc)}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


def line_of(root: Any, path: tuple) -> int | None:
    """The line of the deepest node along ``path`` (keys / indexes) that has one.

    Used to turn a JSON-Schema error's ``absolute_path`` into a line number.
    """
    line = getattr(root, "line", None)
    node = root
    for step in path:
        if isinstance(node, LineDict) and step in node:
            line = node.key_lines.get(step, line)
            node = node[step]
        elif isinstance(node, LineList) and isinstance(step, int) and step < len(node):
            line = node.item_lines[step]
            node = node[step]
        else:
            break
        line = getattr(node, "line", None) or line
    return line


def validate(path: Path, data: Any, schema: dict, example: str) -> None:
    """JSON-Schema validation whose error names file:line and shows ``example``."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    err = errors[0]
    # oneOf failures say little; the most relevant sub-error says what is wrong.
    best = jsonschema.exceptions.best_match(err.context) if err.context else err
    line = line_of(data, tuple(best.absolute_path))
    where = f"{path}:{line}" if line else str(path)
    field = "/".join(str(p) for p in best.absolute_path) or "(top level)"
    raise RuleError(f"{where}: {field}: {best.message}\n  {example.strip()}")


def plain(value: Any) -> Any:
    """Line-tracking containers back to plain dict/list/str (for JSON, Jinja)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value
