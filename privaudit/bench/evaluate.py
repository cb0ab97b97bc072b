"""Measures the detector against a labelled capture.

``python -m privaudit.bench.evaluate [--mitm F --labels L --canaries C]``
reads the capture through :func:`privaudit.source.read_exchanges`, runs the
detector on every exchange, and compares what it found with the ground truth
written by :mod:`privaudit.bench.generate` at ``(flow_index, side, category)``
granularity: one unit per category per side per flow, whatever the number of
locations. Labels marked ``"required": false`` are don't-cares (see
:mod:`privaudit.bench.generate`): finding them is not a true positive,
missing them is not a false negative.

Prints precision, recall and F1 per category and overall (micro-averaged),
then every false positive and false negative with the flow's scenario, rule
and location, and exits 1 if the figures are below the bars given.

Defaults to the committed evaluation set ``tests/data/evalset`` when run from
a source checkout. Rules tuned while looking at that set's misses are
measured in-sample there; ``--seed N --flows M`` scores a freshly generated
set instead (new values, same payload shapes), which is the fairer figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..model import CATEGORIES

Unit = tuple[int, str, str]
"""(flow_index, side, category)."""

EVALSET = Path(__file__).resolve().parents[2] / "tests" / "data" / "evalset"


@dataclass(frozen=True, slots=True)
class Score:
    """Counts and ratios for one category (or all of them)."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        """1.0 when nothing was claimed: no claim is wrong."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """1.0 when there was nothing to find."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def support(self) -> int:
        """Labelled units."""
        return self.tp + self.fn


@dataclass(frozen=True, slots=True)
class Miss:
    """One false positive or false negative, with what is needed to debug it."""

    flow_index: int
    side: str
    category: str
    scenario: str
    host: str
    rules: tuple[str, ...]
    """The rules that fired (false positives); empty for false negatives."""
    locations: tuple[str, ...]
    """Where the detector found it (FP) or where the label says it is (FN)."""


@dataclass(frozen=True, slots=True)
class Result:
    per_category: dict[str, Score]
    overall: Score
    false_positives: tuple[Miss, ...]
    false_negatives: tuple[Miss, ...]
    flows: int
    ignored: int
    """Predicted units that hit a don't-care label."""

    def failures(self, min_precision: float, min_recall: float, min_category: float) -> list[str]:
        """Why the result is below the bars (empty if it is not)."""
        out = []
        if self.overall.precision < min_precision:
            out.append(f"overall precision {self.overall.precision:.3f} < {min_precision}")
        if self.overall.recall < min_recall:
            out.append(f"overall recall {self.overall.recall:.3f} < {min_recall}")
        for cat, s in self.per_category.items():
            if s.precision < min_category:
                out.append(f"{cat} precision {s.precision:.3f} < {min_category}")
            if s.recall < min_category:
                out.append(f"{cat} recall {s.recall:.3f} < {min_category}")
        return out


@dataclass(slots=True)
class _Found:
    rules: dict[str, None] = field(default_factory=dict)
    locations: dict[str, None] = field(default_factory=dict)
    host: str = ""


def _get(f, key: str, default=None):
    """A field of a Finding or of a finding's JSON dict."""
    if isinstance(f, dict):
        return f.get(key, default) if default is not None else f[key]
    return getattr(f, key, default) if default is not None else getattr(f, key)


def load_labels(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def score(findings: Iterable, labels_doc: dict, hosts: dict[int, str] | None = None) -> Result:
    """Compares findings (anything with flow_index, side, category, rule, location) to labels."""
    required: dict[Unit, list[str]] = defaultdict(list)
    optional: set[Unit] = set()
    for lab in labels_doc["labels"]:
        u = (lab["flow_index"], lab["side"], lab["category"])
        if lab.get("required", True):
            required[u].append(lab.get("location", ""))
        else:
            optional.add(u)
    optional -= required.keys()
    scenarios = labels_doc.get("scenarios") or []
    hosts = hosts or {}

    found: dict[Unit, _Found] = {}
    for f in findings:
        u = (_get(f, "flow_index"), _get(f, "side"), _get(f, "category"))
        acc = found.setdefault(u, _Found(host=_get(f, "host", "")))
        acc.rules[_get(f, "rule", "")] = None
        acc.locations[_get(f, "location", "")] = None

    def scen(i: int) -> str:
        return scenarios[i] if 0 <= i < len(scenarios) else ""

    cats = list(CATEGORIES) + sorted({u[2] for u in required} | {u[2] for u in found} - set(CATEGORIES))
    counts = {c: [0, 0, 0] for c in cats}
    fps, fns = [], []
    ignored = 0
    for u, acc in sorted(found.items()):
        if u in required:
            counts[u[2]][0] += 1
        elif u in optional:
            ignored += 1
        else:
            counts[u[2]][1] += 1
            fps.append(Miss(u[0], u[1], u[2], scen(u[0]), acc.host or hosts.get(u[0], ""), tuple(acc.rules), tuple(acc.locations)))
    for u, locs in sorted(required.items()):
        if u not in found:
            counts[u[2]][2] += 1
            fns.append(Miss(u[0], u[1], u[2], scen(u[0]), hosts.get(u[0], ""), (), tuple(dict.fromkeys(locs))))
    per = {c: Score(*v) for c, v in counts.items() if any(v)}
    overall = Score(*(sum(v[i] for v in counts.values()) for i in range(3)))
    return Result(per, overall, tuple(fps), tuple(fns), labels_doc.get("flows", 0), ignored)


def evaluate(
    mitm: str | Path = EVALSET / "evalset.mitm",
    labels: str | Path = EVALSET / "labels.json",
    canaries: str | Path | None = EVALSET / "canaries.yaml",
    *,
    detector=None,
    rules_dirs: Iterable[str | Path] = (),
) -> Result:
    """Runs ``detector`` (default: the shipped rules, with ``canaries``) over ``mitm`` and scores it."""
    from ..source import read_exchanges

    if detector is None:
        from ..detect import Detector, load_canaries, load_rules

        rules = load_rules(tuple(rules_dirs)) if rules_dirs else load_rules()
        detector = Detector(rules, load_canaries(canaries) if canaries else None)
    findings = []
    hosts: dict[int, str] = {}
    for ex in read_exchanges([mitm]):
        hosts[ex.index] = ex.host
        findings.extend(detector.scan(ex))
    return score(findings, load_labels(labels), hosts)


def patterns(misses: Iterable[Miss]) -> list[tuple[int, str, str, str]]:
    """Misses grouped by (category, scenario, rules), most frequent first: where to look."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for m in misses:
        counts[(m.category, m.scenario, ",".join(m.rules))] += 1
    return sorted(((n, *k) for k, n in counts.items()), key=lambda x: (-x[0], x[1:]))


def to_json(res: Result) -> dict:
    def miss(m: Miss) -> dict:
        return {"flow_index": m.flow_index, "side": m.side, "category": m.category, "scenario": m.scenario,
                "host": m.host, "rules": list(m.rules), "locations": list(m.locations)}

    def sc(s: Score) -> dict:
        return {"tp": s.tp, "fp": s.fp, "fn": s.fn, "precision": s.precision, "recall": s.recall, "f1": s.f1}

    return {
        "flows": res.flows,
        "overall": sc(res.overall),
        "per_category": {c: sc(s) for c, s in res.per_category.items()},
        "ignored": res.ignored,
        "false_positives": [miss(m) for m in res.false_positives],
        "false_negatives": [miss(m) for m in res.false_negatives],
    }


def format_result(res: Result, max_misses: int = 200) -> str:
    lines = [f"{'category':<16} {'support':>7} {'tp':>5} {'fp':>5} {'fn':>5} {'precision':>9} {'recall':>7} {'f1':>6}"]
    for cat, s in res.per_category.items():
        lines.append(f"{cat:<16} {s.support:>7} {s.tp:>5} {s.fp:>5} {s.fn:>5} {s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>6.3f}")
    o = res.overall
    lines.append(f"{'overall (micro)':<16} {o.support:>7} {o.tp:>5} {o.fp:>5} {o.fn:>5} {o.precision:>9.3f} {o.recall:>7.3f} {o.f1:>6.3f}")
    lines.append(f"flows: {res.flows}; detector hits on don't-care labels: {res.ignored}")
    for title, misses in (("false positives", res.false_positives), ("false negatives", res.false_negatives)):
        lines.append(f"\n{title} by pattern (count, category, scenario, rules):")
        for n, cat, scen, rules in patterns(misses):
            lines.append(f"  {n:>4} {cat:<15} {scen:<26} {rules}")
    for title, misses in (("false positives", res.false_positives), ("false negatives", res.false_negatives)):
        lines.append(f"\n{title} ({len(misses)}):")
        for m in misses[:max_misses]:
            rule = f" rule={','.join(m.rules)}" if m.rules else ""
            lines.append(f"  flow {m.flow_index:>5} {m.side:<8} {m.category:<15} [{m.scenario}] {m.host}{rule} at {' | '.join(m.locations)}")
        if len(misses) > max_misses:
            lines.append(f"  ... {len(misses) - max_misses} more")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m privaudit.bench.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("--mitm", default=str(EVALSET / "evalset.mitm"))
    ap.add_argument("--labels", default=str(EVALSET / "labels.json"))
    ap.add_argument("--canaries", default=str(EVALSET / "canaries.yaml"), help="canary file ('' for none)")
    ap.add_argument("--rules", action="append", default=[], help="extra rule folder (repeatable)")
    ap.add_argument("--min-precision", type=float, default=0.95)
    ap.add_argument("--min-recall", type=float, default=0.95)
    ap.add_argument("--min-category", type=float, default=0.90, help="bar for every category's precision and recall")
    ap.add_argument("--max-misses", type=int, default=200, help="false positives/negatives to list, per kind")
    ap.add_argument("--json", metavar="FILE", help="also write the figures and every miss as JSON")
    ap.add_argument("--seed", type=int, help="instead of --mitm/--labels, score a fresh set generated with this seed "
                    "(held out: rules tuned on the committed set are measured on values they have not seen)")
    ap.add_argument("--flows", type=int, default=1000, help="with --seed: how many flows (default 1000)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="privaudit-eval-") as tmp:
        if args.seed is not None:
            from . import generate as G

            flows = G.generate(args.seed, args.flows)
            args.mitm, args.labels = str(Path(tmp) / "set.mitm"), str(Path(tmp) / "labels.json")
            G.write_capture(flows, Path(args.mitm))
            Path(args.labels).write_text(json.dumps(G.labels_document(args.seed, flows, 0.3)), encoding="utf-8")
            if args.canaries:
                args.canaries = str(Path(tmp) / "canaries.yaml")
                Path(args.canaries).write_text(G.canaries_yaml(), encoding="utf-8")
            print(f"held-out set: seed {args.seed}, {args.flows} flows")
        for what in (args.mitm, args.labels, args.canaries):
            if what and not Path(what).is_file():
                ap.error(f"{what}: no such file (the default evaluation set lives in a source checkout's tests/data/evalset)")
        res = evaluate(args.mitm, args.labels, args.canaries or None, rules_dirs=args.rules)
    print(format_result(res, args.max_misses))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(res), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    bad = res.failures(args.min_precision, args.min_recall, args.min_category)
    for b in bad:
        print(f"BELOW BAR: {b}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
