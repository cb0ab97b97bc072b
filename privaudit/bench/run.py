"""The benchmark: prints how fast ``analyze`` and ``report`` are on generated captures.

``python -m privaudit.bench [--sizes 10000,100000] [--repeat N] [--quick] [--keep DIR]``

For each size it generates a capture with :mod:`privaudit.bench.generate`,
then runs, each in a fresh subprocess (so start-up, imports and rule loading
count, as they do for a user):

- ``privaudit analyze CAPTURE -o doc.json`` on one core (``-j1``) without
  and with a 10-value canary file, then on every core with canaries: wall
  time, flows/s, MB/s of body bytes (request and response bodies after
  content decoding, plus WebSocket payloads), the child's peak RSS
  (``os.wait4`` rusage, so every run is measured alone), and the speed-up;
- ``privaudit report doc.json`` as HTML and PDF: wall time, peak RSS, size.

A one-flow ``analyze`` is timed first so the figures can be read with and
without start-up cost. In each round, two copies of the one-core run with
canaries also run side by side (:func:`pair_capacity`): on a shared virtual
machine two cores do not do twice the work of one, and this says how much
they did, on this very work, while the speed-up was measured; the pool's
speed-up is then also given as a share of it. After the figures it lists
the performance targets next to what was measured (met / not met), for the
sizes that were run.
``--quick`` runs one small size (500 flows) so CI can check the command works.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import generate as G

#: Ten canary values (CONTRACT.md format) for the "with canaries" runs.
TEN_CANARIES = """\
email: [tester.one@example.org, tester.two@example.org]
phone: "+82 10-1234-5678"
name: ["Hong Gildong", "홍길동"]
advertising_id: 38400000-8cf0-11bd-b23e-10b96e40000d
device_id: ["f0e1d2c3b4a59687", "356938035643809"]
location: {lat: 37.5665, lon: 126.9780}
chat_content: "Find me a quiet cafe near Gwanghwamun that opens before 7"
"""


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    peak_rss_mb: float
    returncode: int
    stderr: str


def run_child(cmd: list[str]) -> Run:
    """Runs ``cmd`` and returns its wall time and its own peak RSS."""
    return run_side_by_side([cmd])[0]


def machine() -> str:
    try:
        from mitmproxy.version import VERSION as mitm
    except Exception:  # pragma: no cover - mitmproxy is a dependency
        mitm = "?"
    from .. import __version__

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # asked of a child: loading Hyperscan here would raise every child's
    # peak RSS (a forked child's ru_maxrss starts at its parent's)
    probe = subprocess.run(
        [sys.executable, "-c", "from privaudit.detect.canaries import canaries_from_mapping as c; "
         "from privaudit.detect.decode import WALKER; from privaudit.source.fast import READER; "
         "print(READER, WALKER, c({'email': 'bench@example.org'}).engine)"],
        capture_output=True, text=True,
    )
    READER, WALKER, engine = (probe.stdout.split() + ["?", "?", "?"])[:3]
    return (
        f"machine: {cpu}; {cores} cores available; {platform.system()} {platform.release()}; "
        f"python {platform.python_version()}; mitmproxy {mitm}; privaudit {__version__}; "
        f"flow record reader: {READER}; decoder walk: {WALKER}; canary matcher: {engine}"
    )


def startup_seconds(work: Path, seed: int = 7, out=print) -> float | None:
    """Wall time of ``analyze`` on a one-flow capture: interpreter, imports, rule loading."""
    cap = work / "bench-1.mitm"
    G.write_capture(G.iter_flows(seed, 1), cap)
    r = run_child([sys.executable, "-m", "privaudit", "analyze", str(cap), "-o", str(work / "doc-1.json")])
    if r.returncode != 0:
        out(f"startup: analyze FAILED (exit {r.returncode}): {r.stderr.strip()}")
        return None
    out(f"startup (analyze of 1 flow): {r.seconds:.2f}s, peak RSS {r.peak_rss_mb:.0f} MB")
    return r.seconds


def generator_digest() -> str:
    """Identifies the generator's code, so a kept capture is reused only if it would be the same."""
    import hashlib

    from . import values

    h = hashlib.sha256()
    for mod in (G, values):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:16]


def run_side_by_side(cmds: list[list[str]]) -> list[Run]:
    """Starts the commands together and returns each one's wall time (until
    it alone ended) and its own peak RSS."""
    t0 = time.perf_counter()
    errs = [tempfile.TemporaryFile() for _ in cmds]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=e) for cmd, e in zip(cmds, errs)]
    ended: dict[int, tuple[float, int, float]] = {}
    mine = {p.pid for p in procs}
    while len(ended) < len(procs):
        pid, status, usage = os.wait4(-1, 0)  # whichever ends first, timed when it ends
        if pid not in mine:  # (not one of these)
            continue
        # ru_maxrss is in KiB on Linux, bytes on macOS
        rss = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
        ended[pid] = (time.perf_counter() - t0, os.waitstatus_to_exitcode(status), rss)
    runs = []
    for p, e in zip(procs, errs):
        seconds, code, rss = ended[p.pid]
        p.returncode = code  # (reaped above: Popen must not wait for it again)
        e.seek(0)
        runs.append(Run(seconds, rss, code, e.read().decode("utf-8", "replace")[-2000:]))
        e.close()
    return runs


def pair_capacity(alone: float, side_by_side: list[float]) -> float:
    """How much work two cores did in one core's time, when two copies of a
    run that takes ``alone`` seconds by itself ran side by side and took
    ``side_by_side`` seconds: 2.0 where the cores are a machine's own, less on
    a virtual machine whose cores share a physical one or a busy host. No
    program splitting that run over the two cores could have been faster
    than this many times at that moment."""
    return sum(alone / s for s in side_by_side)


def bench_size(n: int, work: Path, seed: int = 7, out=print, startup: float | None = None, pdf: bool = True,
               repeat: int = 1) -> dict:
    cap = work / f"bench-{n}.mitm"
    meta = work / f"bench-{n}.json"
    try:
        # A capture kept by an earlier --keep run with the same seed is reused.
        known = json.loads(meta.read_text(encoding="utf-8")) if cap.exists() else None
    except (OSError, ValueError):
        known = None
    if known and known.get("seed") == seed and known.get("generator") == generator_digest():
        body = known["body_bytes"]
        out(f"[{n} flows] reusing {cap}")
    else:
        t0 = time.perf_counter()
        body = 0

        def counted():
            nonlocal body
            for g in G.iter_flows(seed, n):
                body += g.body_bytes
                yield g

        G.write_capture(counted(), cap)
        gen_s = time.perf_counter() - t0
        meta.write_text(json.dumps({"seed": seed, "body_bytes": body, "generator": generator_digest()}), encoding="utf-8")
        out(f"[{n} flows] generated in {gen_s:.1f}s")
    size_mb = cap.stat().st_size / 1e6
    out(f"[{n} flows] capture {size_mb:.1f} MB, body bytes {body / 1e6:.1f} MB")
    canaries = work / "canaries-10.yaml"
    canaries.write_text(TEN_CANARIES, encoding="utf-8")
    py = sys.executable
    figures: dict = {"flows": n, "capture_mb": size_mb, "body_mb": body / 1e6}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    runs = [
        ("analyze -j1", ["-j", "1"]),
        ("analyze -j1 +10 canaries", ["-j", "1", "--canaries", str(canaries)]),
    ]
    if cores > 1:
        runs.append((f"analyze -j{cores} +10 canaries", ["-j", str(cores), "--canaries", str(canaries)]))
    # Each configuration ``repeat`` times, interleaved (1, 2, 3, 1, 2, 3, ...),
    # so a slow spell of a shared machine hits all of them alike; the median
    # run is reported, with the range.
    results: dict[str, list[Run]] = {label: [] for label, _ in runs}
    # (one-core time, [two one-core copies' times side by side]) per round
    pairs: list[tuple[float, list[float]]] = []
    for _ in range(max(1, repeat)):
        for i, (label, extra) in enumerate(runs):
            if results[label] is None:
                continue
            doc = work / f"doc-{n}-{i}.json"
            r = run_child([py, "-m", "privaudit", "analyze", str(cap), *extra, "-o", str(doc)])
            if r.returncode != 0:
                out(f"[{n} flows] {label}: FAILED (exit {r.returncode}): {r.stderr.strip()}")
                results[label] = None
                continue
            results[label].append(r)
        one_run = results[runs[1][0]]
        if cores > 1 and one_run:
            # in every round, right after the runs it is compared with: the host's load changes
            extra = runs[1][1]
            both = run_side_by_side([[py, "-m", "privaudit", "analyze", str(cap), *extra, "-o",
                                      str(work / f"doc-{n}-pair{k}.json")] for k in (0, 1)])
            if all(b.returncode == 0 for b in both):
                pairs.append((one_run[-1].seconds, [b.seconds for b in both]))
    for label, rs in results.items():
        if not rs:
            figures[label] = None
            continue
        rs = sorted(rs, key=lambda r: r.seconds)
        r = rs[len(rs) // 2]
        net = ""
        if startup is not None and r.seconds > startup:
            net = f" (excluding {startup:.2f}s startup: {n / (r.seconds - startup):,.0f} flows/s)"
        spread = ""
        if len(rs) > 1:
            spread = f" [median of {len(rs)}: {n / rs[-1].seconds:,.0f}-{n / rs[0].seconds:,.0f} flows/s]"
        out(
            f"[{n} flows] {label}: {r.seconds:.2f}s, {n / r.seconds:,.0f} flows/s, "
            f"{body / 1e6 / r.seconds:.2f} MB/s body, peak RSS {max(x.peak_rss_mb for x in rs):.0f} MB{net}{spread}"
        )
        figures[label] = {"seconds": r.seconds, "rss_mb": max(x.peak_rss_mb for x in rs),
                          "all_seconds": [x.seconds for x in rs]}
    one, many = figures.get(runs[1][0]), figures.get(runs[-1][0]) if cores > 1 else None
    rounds: list[float] = []
    if one and many:
        ratio = one["seconds"] / many["seconds"]
        ones, manys = results[runs[1][0]], results[runs[-1][0]]
        if len(ones) == len(manys):
            rounds = [a.seconds / b.seconds for a, b in zip(ones, manys)]
            # the median of the rounds' ratios (the runs of one round ran side by side)
            ratio = sorted(rounds)[len(rounds) // 2]
        out(f"[{n} flows] speed-up on {cores} cores (with canaries): {ratio:.2f}x")
        figures["speedup"] = ratio
    if pairs:
        caps = [pair_capacity(alone, both) for alone, both in pairs]
        slow = sorted(max(both) / alone for alone, both in pairs)
        mid = sorted(caps)[len(caps) // 2]
        line = (f"[{n} flows] two cores' capacity: two copies of 'analyze -j1 +10 canaries' side by side did "
                f"{mid:.2f}x the work of one alone (median of {len(caps)} rounds, {min(caps):.2f}-{max(caps):.2f}; "
                f"the slower copy took {slow[len(slow) // 2]:.2f}x as long as alone)")
        if len(rounds) == len(caps):
            share = sorted(r / c for r, c in zip(rounds, caps))
            line += f"; the pool's speed-up was {share[len(share) // 2]:.0%} of it (median of rounds)"
            figures["speedup_of_capacity"] = share[len(share) // 2]
        out(line)
        figures["capacity"] = mid
    figures["analyze"] = figures.get("analyze -j1")
    doc = work / f"doc-{n}-0.json"
    if doc.exists():
        for fmt in ("html", "pdf") if pdf else ("html",):
            rep = work / f"report-{n}.{fmt}"
            r = run_child([py, "-m", "privaudit", "report", str(doc), "--format", fmt, "-o", str(rep)])
            if r.returncode != 0:
                out(f"[{n} flows] report {fmt}: FAILED (exit {r.returncode}): {r.stderr.strip()}")
                continue
            kb = rep.stat().st_size / 1024
            out(f"[{n} flows] report {fmt}: {r.seconds:.2f}s, {kb:,.0f} KiB, peak RSS {r.peak_rss_mb:.0f} MB")
            figures["report" if fmt == "html" else "report_pdf"] = {"seconds": r.seconds, "rss_mb": r.peak_rss_mb, "kib": kb}
    return figures


def targets(results: dict[int, dict]) -> list[str]:
    """The performance issue's targets beside the figures measured for them."""
    out = ["targets (this machine):"]

    def line(what: str, figure: str, ok: bool | None) -> None:
        verdict = "n/a" if ok is None else ("met" if ok else "NOT met")
        out.append(f"  {what}: {figure} -> {verdict}")

    for n, f in sorted(results.items()):
        one = f.get("analyze -j1 +10 canaries")
        if one:
            rate = n / one["seconds"]
            line(f"analyze {n} flows, 1 core, +10 canaries >= 3,000 flows/s", f"{rate:,.0f} flows/s", rate >= 3000)
        many = next((v for k, v in f.items() if k.startswith("analyze -j") and k != "analyze -j1 +10 canaries"
                     and k.endswith("+10 canaries") and v), None)
        if one and many:
            ratio = f.get("speedup") or one["seconds"] / many["seconds"]
            cap = f.get("capacity")
            context = f" (two one-core copies side by side: {cap:.2f}x)" if cap else ""
            line(f"analyze {n} flows, 2 cores >= 1.7x of 1 core", f"{ratio:.2f}x{context}", ratio >= 1.7)
        rss = max((v["rss_mb"] for k, v in f.items() if k.startswith("analyze") and isinstance(v, dict) and "rss_mb" in v), default=None)
        if rss is not None:
            line(f"analyze {n} flows, peak RSS <= 300 MB", f"{rss:.0f} MB", rss <= 300)
    if 10000 in results and 100000 in results:
        a = results[10000].get("analyze -j1 +10 canaries")
        b = results[100000].get("analyze -j1 +10 canaries")
        if a and b:
            r = b["rss_mb"] / a["rss_mb"]
            line("peak RSS 100k / 10k (1 core, canaries) <= 1.2x", f"{r:.2f}x", r <= 1.2)
    big = results.get(100000)
    if big:
        h = big.get("report")
        if h:
            line("report HTML of 100k flows <= 10 s and <= 5 MB", f"{h['seconds']:.1f} s, {h['kib'] / 1024:.1f} MiB",
                 h["seconds"] <= 10 and h["kib"] <= 5 * 1000 * 1000 / 1024)
        p = big.get("report_pdf")
        if p:
            line("report PDF of 100k flows <= 60 s", f"{p['seconds']:.1f} s", p["seconds"] <= 60)
        for label, r in (("HTML", h), ("PDF", p)):
            if r:
                line(f"report {label} of 100k flows, peak RSS <= 300 MB", f"{r['rss_mb']:.0f} MB", r["rss_mb"] <= 300)
    if len(out) == 1:
        out.append("  (run --sizes 10000,100000 for the sizes the targets name)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m privaudit.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated flow counts (default 10000,100000)")
    ap.add_argument("--quick", action="store_true", help="one small size (500 flows), for CI")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", help="keep the generated captures and outputs in this folder")
    ap.add_argument("--no-pdf", action="store_true", help="skip the PDF report runs")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each analyze configuration this many times, interleaved; report the median (default 1)")
    args = ap.parse_args(argv)
    try:
        sizes = [500] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    if any(n <= 0 for n in sizes):
        ap.error("--sizes: flow counts must be positive")
    print(machine(), flush=True)
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="privaudit-bench-"))
    failed = False
    say = lambda s: print(s, flush=True)  # noqa: E731
    results: dict[int, dict] = {}
    try:
        startup = startup_seconds(work, args.seed, say)
        for n in sizes:
            figs = bench_size(n, work, args.seed, out=say, startup=startup, pdf=not args.no_pdf, repeat=args.repeat)
            results[n] = figs
            failed |= figs.get("analyze") is None or "report" not in figs
        for line in targets(results):
            say(line)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
