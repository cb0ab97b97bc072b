"""Refuses regular expressions that can take exponential time.

Rules match attacker-controlled text (keys, values, URLs the app sends), and
Python's ``re`` backtracks: a pattern like ``(\\w+\\s?)+$`` takes exponential
time on a crafted 40-character value, which would stall an audit (or the live
analysis) on one hostile flow. Linear-time engines (RE2, Hyperscan) avoid
that by construction but cost 3-12x more per call on the short strings rules
see, and cannot express the look-arounds rules use for boundaries. So
privaudit keeps ``re`` and checks every rule pattern when it is loaded,
shipped and user-written alike, for the shape behind exponential
backtracking: a repetition nested in an unbounded repetition, where nothing
mandatory between them tells one round of the outer repetition from the
next. ``([a-z]+\\.)+`` passes (every round ends in a ".", which the inner
part cannot match); ``(a+)+``, ``(\\w+\\s?)+`` and ``(\\d*,?)*`` do not.

A refused pattern can almost always be written safely with Python's
possessive quantifiers (``\\w++``) or atomic groups (``(?>...)``), which do not
backtrack into what they matched; the error says so. Polynomial cases
(``\\d+\\d+$``) are not refused: the values rules see are bounded
(:class:`~privaudit.detect.decode.Bounds`), which bounds their cost.
"""

from __future__ import annotations

from functools import lru_cache
from re import _constants as C
from re import _parser as P

#: Characters the set comparisons are evaluated on: Latin, punctuation,
#: whitespace, digits, and samples of the scripts apps send (CJK, Hangul, kana).
_UNIVERSE = [chr(c) for c in range(0, 0x250)] + list("中文字가나다アイウー一０１") + ["\u00a0", "\u3000"]

_OUTER_MIN = 16  # an outer repetition of at most this many rounds is not "unbounded"


def _cat(cat, ch: str) -> bool:
    if cat in (C.CATEGORY_DIGIT, C.CATEGORY_UNI_DIGIT):
        return ch.isdecimal()
    if cat in (C.CATEGORY_NOT_DIGIT, C.CATEGORY_UNI_NOT_DIGIT):
        return not ch.isdecimal()
    if cat in (C.CATEGORY_WORD, C.CATEGORY_UNI_WORD):
        return ch.isalnum() or ch == "_"
    if cat in (C.CATEGORY_NOT_WORD, C.CATEGORY_UNI_NOT_WORD):
        return not (ch.isalnum() or ch == "_")
    if cat in (C.CATEGORY_SPACE, C.CATEGORY_UNI_SPACE):
        return ch.isspace()
    if cat in (C.CATEGORY_NOT_SPACE, C.CATEGORY_UNI_NOT_SPACE):
        return not ch.isspace()
    return True  # unknown: assume it matches (conservative)


def _atom_matches(op, av, ch: str, icase: bool) -> bool:
    if op is C.LITERAL:
        return ch == chr(av) or (icase and ch.lower() == chr(av).lower())
    if op is C.NOT_LITERAL:
        return not (ch == chr(av) or (icase and ch.lower() == chr(av).lower()))
    if op is C.ANY:
        return ch != "\n"
    if op is C.IN:
        negate = False
        hit = False
        for iop, iav in av:
            if iop is C.NEGATE:
                negate = True
            elif iop is C.LITERAL:
                hit = hit or ch == chr(iav) or (icase and ch.lower() == chr(iav).lower())
            elif iop is C.RANGE:
                lo, hi = iav
                hit = hit or lo <= ord(ch) <= hi or (icase and any(len(c) == 1 and lo <= ord(c) <= hi for c in (ch.lower(), ch.upper())))
            elif iop is C.CATEGORY:
                hit = hit or _cat(iav, ch)
            else:
                hit = True
        return hit != negate
    return True


def _chars(items, icase: bool) -> frozenset[str]:
    """Every character of the universe that some atom inside ``items`` can match."""
    out: set[str] = set()
    for op, av in items:
        if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
            out.update(ch for ch in _UNIVERSE if _atom_matches(op, av, ch, icase))
        else:
            for sub in _children(op, av):
                out |= _chars(sub, icase)
    return frozenset(out)


def _children(op, av) -> list:
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        return [av[2]]
    if op is C.SUBPATTERN:
        return [av[-1]]
    if op is C.BRANCH:
        return list(av[1])
    if op is C.ATOMIC_GROUP:
        return [av]
    if op in (C.ASSERT, C.ASSERT_NOT):
        return [av[1]]
    return []


def _inner_repeats(items) -> list:
    """Backtracking repetitions (of a variable number of rounds) anywhere inside ``items``,
    except inside atomic groups and possessive repetitions."""
    out = []
    for op, av in items:
        if op in (C.ATOMIC_GROUP, C.POSSESSIVE_REPEAT, C.ASSERT, C.ASSERT_NOT):
            continue
        if op in (C.MAX_REPEAT, C.MIN_REPEAT) and av[1] >= 2 and av[0] != av[1]:
            out.append(av[2])  # (a fixed count, x{2}, matches one way only)
        for sub in _children(op, av):
            out.extend(_inner_repeats(sub))
    return out


def _mandatory_atoms(items) -> list:
    """Atoms every match of the sequence ``items`` must pass through (top level,
    and inside groups that are themselves mandatory)."""
    out = []
    for op, av in items:
        if op in (C.LITERAL, C.NOT_LITERAL, C.IN, C.ANY):
            out.append([(op, av)])
        elif op is C.SUBPATTERN:
            out.extend(_mandatory_atoms(av[-1]))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT) and av[0] >= 1:
            out.extend(_mandatory_atoms(av[2]))
    return out


def _problem(items, icase: bool) -> str | None:
    for op, av in items:
        if op in (C.MAX_REPEAT, C.MIN_REPEAT) and (av[1] is C.MAXREPEAT or av[1] >= _OUTER_MIN):
            body = av[2]
            inner = _inner_repeats(body)
            if inner:
                seps = [_chars(m, icase) for m in _mandatory_atoms(body)]
                for rep in inner:
                    rc = _chars(rep, icase)
                    if not any(rc.isdisjoint(s) for s in seps):
                        return "a repetition inside an unbounded repetition, with nothing mandatory between rounds that the inner one cannot match"
        for sub in _children(op, av):
            p = _problem(sub, icase)
            if p:
                return p
    return None


@lru_cache(maxsize=4096)
def backtracking_risk(pattern: str) -> str | None:
    """Why ``pattern`` can backtrack exponentially, or None. Invalid patterns
    return None (compiling them reports the error)."""
    try:
        tree = P.parse(pattern)
    except Exception:
        return None
    icase = bool(tree.state.flags & C.SRE_FLAG_IGNORECASE)
    return _problem(list(tree), icase)


ADVICE = "make the inner repetition possessive (\\w++, [^,]*+) or atomic ((?>...)), which never backtracks into what it matched"
