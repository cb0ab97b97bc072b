"""Detection rules: YAML data, validated by a JSON Schema that is data too.

One rule per file, ``rules/detect/<area>/<id>.yaml``; the schema is
``rules/schema/rule.schema.json``. A rule is a few declared attributes, not
code:

* ``kind: pattern`` - ``pattern`` (a regex) is searched in every value; each
  candidate goes to the ``validator`` (Luhn, a checksum, phonenumbers...).
* ``kind: key`` - the key name must fully match ``key`` (after
  :func:`~privaudit.detect.decode.normalize_key`) AND the value must match
  ``value``: a telling key alone is not enough, a plausible value alone is not
  enough.

A validator may answer "no opinion" (see :mod:`privaudit.detect.validators`);
then the rule's ``context`` regex must match the key, the location or the text
just before the candidate. Every rule carries its own ``tests`` (cases that
must and must not match), run by ``privaudit rules test`` and the test suite.

Errors name the file and line (from the YAML node marks) and show a correct
rule, so people writing their own rules can fix them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from privaudit.errors import RuleError, yaml_location
from privaudit.resources import rules_dir

from .. import rxcache, validated
from . import redos
from .redos import backtracking_risk
from .decode import MEMO_LIMIT, Field
from .validators import VALIDATORS, Validator

__all__ = ["Rule", "RuleSet", "load_rules", "check_rule_files", "rule_files", "EXAMPLE_RULE", "builtin_dirs"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

EXAMPLE_RULE = """\
id: device.android_id
category: device_id
severity: medium
rationale: Android ID (Settings.Secure.ANDROID_ID) is a persistent per-device identifier.
references: [https://developer.android.com/reference/android/provider/Settings.Secure#ANDROID_ID]
kind: key                      # or: pattern (then give `pattern:` instead of key/value)
key: '(android_?id|ssaid)'     # full match on the key lower-cased, separators removed
value: '^[0-9a-fA-F]{16}$'     # searched in the value
validator: not_zero_id         # optional; one of privaudit.detect.validators.VALIDATORS
tests:
  match: [{key: android_id, value: f0e1d2c3b4a59687}]
  no_match: [{key: request_id, value: f0e1d2c3b4a59687}]"""


def builtin_dirs() -> tuple[Path, ...]:
    """The shipped rule folder(s)."""
    return (rules_dir() / "detect",)


@lru_cache(maxsize=1)
def _schema_validator():
    import jsonschema  # only when a rule file is not known to pass (see privaudit.validated)

    path = rules_dir() / "schema" / "rule.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    """One compiled rule. See the module docstring and the schema for fields."""

    id: str
    category: str
    severity: str
    kind: str
    rationale: str
    references: tuple[str, ...]
    path: str
    """The file the rule came from."""
    pattern: re.Pattern | None = None
    key: re.Pattern | None = None
    value: re.Pattern | None = None
    keypath: re.Pattern | None = None
    unless_keypath: re.Pattern | None = None
    endpoint: re.Pattern | None = None
    unless_endpoint: re.Pattern | None = None
    sibling: re.Pattern | None = None
    unless_sibling: re.Pattern | None = None
    location: re.Pattern | None = None
    context: re.Pattern | None = None
    context_required: bool = False
    validator_name: str | None = None
    validator: Validator | None = None
    shape: str = "scalar"
    separated: bool = True
    """shape list: also read a separated string, not only a JSON list."""
    min_items: int = 2
    record_keys: tuple[re.Pattern, ...] = ()
    req_substr: tuple[str, ...] = ()
    req_min_digits: int = 0
    req_min_length: int = 0
    tests: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    """The rule as written (for the digest and for tools)."""
    _memo: dict = field(default_factory=lambda: {"shapes": {}, "first_value": {}, "item": {}, "value": {}, "sibling": {}, "unless_sibling": {}, "validate": {}}, repr=False)
    """Per-rule caches of value-only verdicts (a rule is pure, so they hold)."""

    def drop_memos(self) -> None:
        for memo in self._memo.values():
            memo.clear()

    @property
    def context_free(self) -> bool:
        """Whether the rule's verdict depends on the value alone (so it may be
        memoised per value)."""
        return all(
            x is None
            for x in (self.context, self.endpoint, self.unless_endpoint, self.keypath, self.unless_keypath, self.location, self.sibling, self.unless_sibling)
        )

    # ---------------------------------------------------------------- matching

    def match(self, f: Field, url: str = "", digits: int | None = None) -> str | None:
        """The candidate text if this rule fires on field ``f``, else None.

        ``digits`` is the number of digits in ``f.value`` if the caller has
        already counted them (they are counted once per field, for every
        pattern rule's ``min_digits`` pre-check).
        """
        if self.endpoint is not None and not self.endpoint.search(url):
            return None
        if self.unless_endpoint is not None and self.unless_endpoint.search(url):
            return None
        if self.keypath is not None and not self.keypath.search(f.keypath):
            return None
        if self.unless_keypath is not None and self.unless_keypath.search(f.keypath):
            return None
        if self.location is not None and not self.location.search(f.location):
            return None
        if self.unless_sibling is not None and self._sibling_named(self.unless_sibling, "unless_sibling", f):
            return None
        if self.kind == "key":
            return self._match_key(f)
        return self._match_pattern(f, digits)

    def _context_ok(self, f: Field, before: str = "") -> bool:
        return self.context is not None and bool(
            self.context.search(f.key) or self.context.search(f.location) or (before and self.context.search(before))
        )

    def _verdict(self, candidate: str, f: Field, before: str = "") -> bool:
        verdict = self._validate(candidate) if self.validator is not None else True
        if verdict is False:
            return False
        if verdict is None or self.context_required:
            return self._context_ok(f, before)
        return True

    def _sibling_named(self, rx: re.Pattern, which: str, f: Field) -> bool:
        """Whether a key beside ``f`` (not its own) fully matches ``rx``;
        memoised per (key, sibling set): one object's fields share the set,
        and the same objects come back in every flow."""
        memo = self._memo[which]
        k = (f.nkey, f.siblings)
        hit = memo.get(k)
        if hit is None:
            hit = any(s != f.nkey and rx.fullmatch(s) for s in f.siblings)
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[k] = hit
        return hit

    def _validate(self, candidate: str) -> bool | None:
        """The validator's verdict, memoised per candidate (validators are
        pure; checksum libraries and phonenumbers are not cheap)."""
        memo = self._memo["validate"]
        hit = memo.get(candidate, _MISSING)
        if hit is _MISSING:
            hit = self.validator(candidate)
            if len(candidate) <= 256:
                if len(memo) >= MEMO_LIMIT:
                    memo.clear()
                memo[candidate] = hit
        return hit

    def _value_verdict(self, v: str) -> bool | None:
        """``value`` searched in ``v``, then the validator: False, True or
        None ("no opinion"); memoised per value (both are pure)."""
        memo = self._memo["value"]
        hit = memo.get(v, _MISSING)
        if hit is _MISSING:
            if not self.value.search(v):
                hit = False
            else:
                hit = self.validator(v) if self.validator is not None else True
            if len(v) <= 256:
                if len(memo) >= MEMO_LIMIT:
                    memo.clear()
                memo[v] = hit
        return hit

    def _match_key(self, f: Field) -> str | None:
        if self.sibling is not None and not self._sibling_named(self.sibling, "sibling", f):
            return None
        if self.shape == "scalar":
            if f.items is not None:
                return None
            # = not value.search -> None; else _verdict(f.value, f)
            verdict = self._value_verdict(f.value)
            if verdict is False:
                return None
            if verdict is None or self.context_required:
                return f.value if self._context_ok(f) else None
            return f.value
        if self.shape == "records":
            if not f.items:
                return None
            # every record key must be there with a value; the first one's
            # value must also match ``value`` (e.g. a package name). Which
            # record keys a key name fills, and whether a first-key value
            # passes, are memoised per rule: records repeat a few key names
            # and event names.
            n = 0
            need = self.min_items
            for it in f.items:
                if isinstance(it, dict) and self._is_record(it):
                    n += 1
                    if n >= need:
                        return f.value
            return None
        # shape == "list": a JSON list, or a separated string of items
        if f.items is not None:
            items = _item_texts(f.items)
        else:
            items = [p for p in _SEPARATORS.split(f.value) if p]
        n = 0
        need = self.min_items
        ok = self._item_ok
        for it in items:
            if ok(it):
                n += 1
                if n >= need:
                    return f.value
        return None

    def _is_record(self, it: dict) -> bool:
        shape = tuple(it)
        shapes = self._memo["shapes"]
        known = shapes.get(shape)
        if known is None:
            # per key: which record keys it names; and whether the keys
            # together name every record key (else no values can help)
            flags = tuple(tuple(bool(rk.fullmatch(k)) for rk in self.record_keys) for k in shape)
            covered = all(any(fl[i] for fl in flags) for i in range(len(self.record_keys)))
            if len(shapes) >= MEMO_LIMIT:
                shapes.clear()
            known = shapes[shape] = (covered, flags)
        covered, flags = known
        if not covered:
            return False
        filled = [False] * len(self.record_keys)
        first_ok = False
        for fl, v in zip(flags, it.values()):
            if v:
                for i, on in enumerate(fl):
                    if on:
                        filled[i] = True
            if fl[0] and not first_ok and self._first_value_ok(v):
                first_ok = True
        return first_ok and all(filled)

    def _first_value_ok(self, v: str) -> bool:
        memo = self._memo["first_value"]
        hit = memo.get(v)
        if hit is None:
            hit = self.value.search(v) is not None
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[v] = hit
        return hit

    def _item_ok(self, it: str) -> bool:
        memo = self._memo["item"]
        hit = memo.get(it)
        if hit is None:
            hit = bool(self.value.search(it)) and (self.validator is None or self.validator(it) is not False)
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[it] = hit
        return hit

    def _match_pattern(self, f: Field, digits: int | None) -> str | None:
        if f.items is not None:
            return None
        v = f.value
        if len(v) < self.req_min_length:
            return None
        if self.req_substr and not any(s in v for s in self.req_substr):
            return None
        if self.req_min_digits:
            if digits is None:
                digits = count_digits(v)
            if digits < self.req_min_digits:
                return None
        has_v = "v" in self.pattern.groupindex
        for i, m in enumerate(self.pattern.finditer(v)):
            if i >= 20:
                break
            cand = m.group("v") if has_v else m.group(0)
            if cand and self._verdict(cand, f, v[max(0, m.start() - 40) : m.start()]):
                return cand
        return None


_MISSING = object()
_JSON_TEXT = json.JSONEncoder(ensure_ascii=False).encode  # = json.dumps(x, ensure_ascii=False)
# The last list's item texts: every list rule of one field reads the same
# items, one after another. One (items, texts) pair swapped as a whole, so
# threads never see a mix; holding ``items`` keeps ``is`` safe.
_last_items: list = [((), [])]


def _item_texts(items: tuple) -> list[str]:
    last = _last_items[0]
    if last[0] is items:
        return last[1]
    texts = [it if isinstance(it, str) else _JSON_TEXT(it) for it in items]
    _last_items[0] = (items, texts)
    return texts


_NOT_DIGIT = rxcache.compile(r"\D+")
_SEPARATORS = rxcache.compile(r"[,;|\s]+")


def count_digits(text: str) -> int:
    return len(_NOT_DIGIT.sub("", text))


# A list rule also reads a separated string ("com.a,com.b"); records need a list.
_SHAPES_FOR = {False: ("scalar", "list"), True: ("list", "records")}


class RuleSet:
    """A compiled set of rules; cheap lookups for the detector."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(sorted(rules, key=lambda r: r.id))
        self.by_id = {r.id: r for r in self.rules}
        self.key_rules = tuple(r for r in self.rules if r.kind == "key")
        self.pattern_rules = tuple(r for r in self.rules if r.kind == "pattern")
        h = hashlib.sha256()
        for r in self.rules:
            h.update(json.dumps(r.source, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
            h.update(b"\n")
        self.digest: str = h.hexdigest()
        """sha256 hex of the rules' content (not their paths), in id order."""
        self._key_index: dict[tuple[str, bool], tuple[Rule, ...]] = {}

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    def key_rules_for(self, nkey: str, is_list: bool = False) -> tuple[Rule, ...]:
        """The key rules whose key regex matches ``nkey`` and that apply to a
        scalar (or, with ``is_list``, to a list) - memoised: traffic repeats
        a small vocabulary of keys, so each is tested against every key regex
        once, not once per field."""
        k = (nkey, is_list)
        hit = self._key_index.get(k)
        if hit is None:
            if len(self._key_index) > 100_000:
                self._key_index.clear()
            hit = tuple(
                r
                for r in self.key_rules
                if r.shape in _SHAPES_FOR[is_list] and (is_list or r.separated) and r.key.fullmatch(nkey)
            )
            self._key_index[k] = hit
        return hit

    def subset(self, ids: Iterable[str]) -> RuleSet:
        return RuleSet([self.by_id[i] for i in ids])


# -------------------------------------------------------------------- loading


def rule_files(dirs: Iterable[str | Path]) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` below the given folders (or the files given), sorted."""
    out: list[Path] = []
    for d in dirs:
        p = Path(d)
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(x for x in p.rglob("*") if x.suffix in (".yaml", ".yml") and x.is_file()))
        else:
            raise RuleError(f"{p}: no such rule file or folder")
    return out


class _LazyRoot:
    """The YAML node tree of a rule file, composed only when an error needs a
    line number (composing every file again costs ~15% of loading the rules)."""

    __slots__ = ("_text", "_node")

    def __init__(self, text: str) -> None:
        self._text = text
        self._node: yaml.Node | None = None

    @property
    def node(self) -> yaml.Node | None:
        if self._node is None:
            self._node = yaml.compose(self._text, Loader=_Loader)
        return self._node


def _node_line(root: yaml.Node | _LazyRoot | None, parts: Sequence) -> int | None:
    node = root.node if isinstance(root, _LazyRoot) else root
    line = node.start_mark.line + 1 if node is not None else None
    for part in parts:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == part:
                    nxt = v
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


def _err(path: Path, line: int | None, msg: str) -> str:
    where = f"{path}:{line}" if line else str(path)
    return f"{where}: {msg}"


def _with_example(errors: list[str]) -> list[str]:
    """The file's errors, the last one followed by a correct rule (once per file)."""
    if not errors:
        return errors
    example = "\n  a correct rule looks like:\n" + "\n".join("    " + ln for ln in EXAMPLE_RULE.splitlines())
    return errors[:-1] + [errors[-1] + example]


def _compile(path: Path, root, data: dict, name: str, errors: list[str], trusted: bool = False) -> re.Pattern | None:
    src = data.get(name)
    if src is None:
        return None
    try:
        rx = rxcache.compile(src)
    except re.error as e:
        errors.append(_err(path, _node_line(root, [name]), f"'{name}' is not a valid regular expression: {e}"))
        return None
    why = None if trusted else backtracking_risk(src)
    if why:
        errors.append(_err(path, _node_line(root, [name]), f"'{name}' can take exponential time on hostile input ({why}): {redos.ADVICE}"))
        return None
    return rx


def _check_one(path: Path) -> tuple[Rule | None, list[str]]:
    rule, errors = _check_one_plain(path)
    return rule, _with_example(errors)


def _check_one_plain(path: Path) -> tuple[Rule | None, list[str]]:
    errors: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, [f"{path}: cannot read: {e}"]
    data = validated.parsed_rule(text)  # a listed shipped file: its YAML's content, kept as JSON
    if data is None:
        try:
            data = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e)
            return None, [_err(Path(yaml_location(str(path), e)), None, f"not valid YAML: {problem}")]
    if not isinstance(data, dict):
        return None, [_err(path, 1, "a rule file must hold one mapping (a YAML object)")]
    root = _LazyRoot(text)
    # a listed file passed every check below when it was listed (privaudit.validated)
    trusted = validated.known_valid(text)
    schema_errors = () if trusted else _schema_validator().iter_errors(data)
    for e in sorted(schema_errors, key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(map(str, e.absolute_path)) or "(top level)"
        msg = e.message
        if e.validator == "oneOf" and e.absolute_path and e.absolute_path[0] == "tests":
            msg = "a test case is a string or a mapping with key+value (or json), optional where/url"
        errors.append(_err(path, _node_line(root, list(e.absolute_path)), f"{where}: {msg}"))
    if errors:
        return None, errors
    if path.stem != data["id"]:
        errors.append(_err(path, _node_line(root, ["id"]), f"id '{data['id']}' must equal the file name '{path.stem}'"))
    vname = data.get("validator")
    if vname is not None and vname not in VALIDATORS:
        errors.append(
            _err(path, _node_line(root, ["validator"]), f"unknown validator '{vname}' (known: {', '.join(sorted(VALIDATORS))})")
        )
    regexes = {
        n: _compile(path, root, data, n, errors, trusted)
        for n in ("pattern", "key", "value", "path", "unless_path", "endpoint", "unless_endpoint", "sibling", "unless_sibling", "location", "context")
    }
    record_keys = []
    for i, rk in enumerate(data.get("record_keys", [])):
        try:
            record_keys.append(rxcache.compile(rk))
        except re.error as e:
            errors.append(_err(path, _node_line(root, ["record_keys", i]), f"record_keys[{i}] is not a valid regex: {e}"))
            continue
        why = None if trusted else backtracking_risk(rk)
        if why:
            errors.append(_err(path, _node_line(root, ["record_keys", i]),
                               f"record_keys[{i}] can take exponential time on hostile input ({why}): {redos.ADVICE}"))
    shape = data.get("shape", "scalar")
    if shape == "records" and not record_keys:
        errors.append(_err(path, _node_line(root, ["shape"]), "shape 'records' needs 'record_keys'"))
    if data.get("kind") == "pattern" and shape != "scalar":
        errors.append(_err(path, _node_line(root, ["shape"]), "only key rules take a shape"))
    if errors:
        return None, errors
    req = data.get("requires", {})
    rule = Rule(
        id=data["id"],
        category=data["category"],
        severity=data["severity"],
        kind=data["kind"],
        rationale=data["rationale"],
        references=tuple(data["references"]),
        path=str(path),
        pattern=regexes["pattern"],
        key=regexes["key"],
        value=regexes["value"],
        keypath=regexes["path"],
        unless_keypath=regexes["unless_path"],
        endpoint=regexes["endpoint"],
        unless_endpoint=regexes["unless_endpoint"],
        sibling=regexes["sibling"],
        unless_sibling=regexes["unless_sibling"],
        location=regexes["location"],
        context=regexes["context"],
        context_required=bool(data.get("context_required", False)),
        validator_name=vname,
        validator=VALIDATORS.get(vname) if vname else None,
        shape=shape,
        separated=bool(data.get("separated", True)),
        min_items=int(data.get("min_items", 2 if shape != "scalar" else 1)),
        record_keys=tuple(record_keys),
        req_substr=tuple(req.get("substr", ())),
        req_min_digits=int(req.get("min_digits", 0)),
        req_min_length=int(req.get("min_length", 0)),
        tests=data["tests"],
        source={k: v for k, v in data.items()},
    )
    return rule, []


def check_rule_files(paths: Iterable[Path]) -> tuple[list[Rule], list[str]]:
    """Compile every file; return the good rules and every error (file:line)."""
    rules: list[Rule] = []
    errors: list[str] = []
    seen: dict[str, str] = {}
    for p in paths:
        rule, errs = _check_one(p)
        errors.extend(errs)
        if rule is None:
            continue
        if rule.id in seen:
            errors.append(f"{p}:1: duplicate rule id '{rule.id}' (also in {seen[rule.id]})")
            continue
        seen[rule.id] = str(p)
        rules.append(rule)
    return rules, errors


def load_rules(extra_dirs: Iterable[str | Path] = (), *, builtin: bool = True) -> RuleSet:
    """The shipped rules plus those in ``extra_dirs``.

    A rule in an extra folder with the id of a shipped rule replaces it (that
    is how a user tunes a shipped rule); ids must be unique within each group.
    Raises :class:`RuleError` listing every problem, each with file:line.
    """
    merged: dict[str, Rule] = {}
    all_errors: list[str] = []
    groups = ([builtin_dirs()] if builtin else []) + [(d,) for d in extra_dirs]
    for group in groups:
        rules, errors = check_rule_files(rule_files(group))
        all_errors.extend(errors)
        for r in rules:
            merged[r.id] = r
    if all_errors:
        raise RuleError(f"{len(all_errors)} problem(s) in the rules:\n" + "\n".join(all_errors))
    ruleset = RuleSet(list(merged.values()))
    rxcache.save()  # the patterns compiled afresh, for the next start (see privaudit.rxcache)
    return ruleset

