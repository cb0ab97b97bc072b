"""The labelled traffic generator, the evaluation scoring and the benchmark command."""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote_plus

import phonenumbers
import pytest
from stdnum import imei as std_imei
from stdnum import luhn
from stdnum.cn import ric
from stdnum.kr import rrn

from privaudit.bench import evaluate as E
from privaudit.bench import generate as G
from privaudit.bench import values as V
from privaudit.model import CATEGORIES, Finding
from privaudit.source import read_exchanges

EVALSET = Path(__file__).parent / "data" / "evalset"


@pytest.fixture(scope="module")
def small():
    return G.generate(3, 300)


@pytest.fixture(scope="module")
def evalset_exchanges():
    return list(read_exchanges([EVALSET / "evalset.mitm"]))


# ------------------------------------------------------------- determinism

def _fingerprint(flows):
    return [
        (g.scenario, g.flow.request.method, g.flow.request.url, g.flow.request.get_content(),
         [m.content for m in (g.flow.websocket.messages if g.flow.websocket else [])], g.labels)
        for g in flows
    ]


def test_same_seed_same_traffic(small):
    assert _fingerprint(G.generate(3, 300)) == _fingerprint(small)


def test_other_seed_other_traffic(small):
    assert _fingerprint(G.generate(4, 300)) != _fingerprint(small)


def test_capture_file_is_byte_identical_per_seed_and_private(tmp_path):
    a, b = tmp_path / "a.mitm", tmp_path / "b.mitm"
    G.write_capture(G.generate(5, 60), a)
    G.write_capture(G.generate(5, 60), b)
    assert a.read_bytes() == b.read_bytes()
    assert a.stat().st_mode & 0o777 == 0o600


# ------------------------------------------------------------- label consistency

_B64 = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX = re.compile(rb"(?:[0-9a-f]{2}){12,}")


def _expand(blobs: list[bytes]) -> list[str]:
    """The haystack plus one level of URL, JSON, base64 and hex decoding of what is in it."""
    out: list[bytes] = []
    for b in blobs:
        out.append(b)
        out.append(unquote_plus(b.decode("utf-8", "replace")).encode())
        for line in b.splitlines() or [b]:
            try:
                out.append(json.dumps(json.loads(line), ensure_ascii=False).encode())
            except ValueError:
                pass
        for tok in _B64.findall(b):
            t = tok.replace(b"-", b"+").replace(b"_", b"/")
            try:
                out.append(base64.b64decode(t + b"=" * (-len(t) % 4)))
            except binascii.Error:
                pass
        for tok in _HEX.findall(b):
            out.append(bytes.fromhex(tok.decode()))
    return [x.decode("utf-8", "replace") for x in out]


def _haystack(ex, side: str) -> list[str]:
    if side == "request":
        blobs = [ex.url.encode(), ex.request.body]
        blobs += [f"{k}: {v}".encode() for k, v in ex.request.headers]
        blobs += [m.content for m in ex.websocket if m.from_client]
    else:
        blobs = [ex.response.body] + [f"{k}: {v}".encode() for k, v in ex.response.headers]
    return _expand(blobs)


def _forms(value: str, encoding: str | None) -> list[str]:
    if encoding and encoding.split("+")[0] in ("md5", "sha1", "sha256"):
        return [hashlib.new(encoding.split("+")[0], value.encode()).hexdigest()]
    return [value]


def test_every_label_value_occurs_in_its_flow(evalset_exchanges):
    doc = json.loads((EVALSET / "labels.json").read_text(encoding="utf-8"))
    assert doc["labels"], "no labels"
    for lab in doc["labels"]:
        ex = evalset_exchanges[lab["flow_index"]]
        hay = _haystack(ex, lab["side"])
        value = lab["value"]
        parts = value.split(",") if lab["category"] == "location" else [value]
        for part in parts:
            assert any(f in h for f in _forms(part, lab["encoding"]) for h in hay), (lab, ex.url)


def test_labels_use_contract_categories_and_sides(small):
    for g in small:
        for lab in g.labels:
            assert lab.category in CATEGORIES
            assert lab.side in ("request", "response")
            assert lab.flow_index == g.index


# ------------------------------------------------------------- value validity

def _values(flows, category):
    return [lab for g in flows for lab in g.labels if lab.category == category and lab.required]


def test_generated_identifiers_are_valid():
    rng = __import__("random").Random(11)
    for _ in range(500):
        assert std_imei.is_valid(V.imei(rng))
        assert luhn.is_valid(V.card(rng))
        assert ric.is_valid(V.cn_ric(rng))
        assert rrn.is_valid(V.kr_rrn(rng))  # pre-2020: check digit holds
        assert not luhn.is_valid(V.not_luhn(rng, 15))
        p = V.phone_forms(V.kr_mobile(rng))
        assert phonenumbers.is_valid_number(phonenumbers.parse(p["e164"]))
        assert phonenumbers.is_valid_number(phonenumbers.parse(p["national"], "KR"))
        c = V.phone_forms(V.cn_mobile(rng))
        assert phonenumbers.is_valid_number(phonenumbers.parse(c["e164"]))
        post = V.kr_rrn(rng, post2020=True)
        assert re.fullmatch(r"2[0-4]\d{4}-[34]\d{6}", post)


def _parse_phone(value: str):
    digits = re.sub(r"\D", "", value)
    if value.startswith("+"):
        return phonenumbers.parse(value)
    if digits.startswith(("82", "86")) and len(digits) >= 12:
        return phonenumbers.parse("+" + digits)
    return phonenumbers.parse(value, "CN" if digits.startswith("1") else "KR")


def test_labelled_values_are_valid_in_the_evalset():
    flows = G.generate(1, 400)
    for lab in _values(flows, "payment_card"):
        assert luhn.is_valid(re.sub(r"\D", "", lab.value)), lab
    for lab in _values(flows, "national_id"):
        if "kr_rrn)" in lab.location:
            assert rrn.is_valid(lab.value), lab
        if "idCard" in lab.location:
            assert ric.is_valid(lab.value), lab
    for lab in _values(flows, "phone"):
        if lab.encoding is None:
            assert phonenumbers.is_valid_number(_parse_phone(lab.value)), lab
    imeis = [lab.value for lab in _values(flows, "device_id") if lab.location.endswith(("$.header.udid", "$.imei"))]
    assert imeis and all(std_imei.is_valid(v) for v in imeis)


# ------------------------------------------------------------- the committed evalset

def test_committed_evalset_matches_the_generator(evalset_exchanges):
    doc = json.loads((EVALSET / "labels.json").read_text(encoding="utf-8"))
    flows = G.generate(doc["seed"], doc["flows"], doc["canary_share"])
    assert doc == json.loads(json.dumps(G.labels_document(doc["seed"], flows, doc["canary_share"]), ensure_ascii=False))
    assert len(evalset_exchanges) == doc["flows"] == 400
    for g, ex in zip(flows, evalset_exchanges):
        assert ex.request.body == g.flow.request.get_content()
        assert ex.url == g.flow.request.pretty_url


def test_committed_evalset_coverage():
    doc = json.loads((EVALSET / "labels.json").read_text(encoding="utf-8"))
    required = [lab for lab in doc["labels"] if lab["required"]]
    positive = {lab["flow_index"] for lab in required}
    assert (doc["flows"] - len(positive)) / doc["flows"] >= 0.40
    for cat in CATEGORIES:
        units = {lab["flow_index"] for lab in required if lab["category"] == cat}
        shapes = {doc["scenarios"][i] for i in units}
        assert len(units) >= 5, cat
        assert len(shapes) >= 2, (cat, shapes)
    assert any(lab["encoding"] and "sha256" in lab["encoding"] for lab in required)
    assert any(lab["encoding"] == "base64+json" for lab in required)
    assert any(s.startswith("chat.websocket") for s in doc["scenarios"])


def test_canary_file_is_the_generator_identity():
    import yaml

    assert yaml.safe_load((EVALSET / "canaries.yaml").read_text(encoding="utf-8")) == V.CANARY


def test_generated_capture_has_realistic_connection_facts(evalset_exchanges):
    ex = evalset_exchanges[0]
    assert ex.tls and ex.server_ip and not ex.server_ip.startswith(("10.", "127.", "192.168."))
    assert any(e.request.header("content-encoding") == "gzip" for e in evalset_exchanges)
    assert any(e.websocket for e in evalset_exchanges)
    assert any(not e.tls and e.url.startswith("http://") for e in evalset_exchanges)
    assert any(e.error and e.response is None for e in evalset_exchanges)
    assert any(e.response and e.response.header("content-encoding") == "br" and e.response.body.startswith(b"!function")
               for e in evalset_exchanges)


# ------------------------------------------------------------- scoring

def _f(i, cat, side="request", rule="r.x", loc="request.body"):
    return Finding(i, "h", side, cat, rule, "pattern", None, loc, "high", "…")


LABELS = {
    "flows": 4,
    "scenarios": ["a", "b", "neg", "c"],
    "labels": [
        {"flow_index": 0, "side": "request", "category": "email", "location": "l1", "value": "x", "required": True},
        {"flow_index": 0, "side": "request", "category": "email", "location": "l2", "value": "y", "required": True},
        {"flow_index": 0, "side": "request", "category": "device_id", "location": "l3", "value": "z", "required": True},
        {"flow_index": 1, "side": "request", "category": "device_id", "location": "l4", "value": "z", "required": True},
        {"flow_index": 1, "side": "request", "category": "device_info", "location": "ua", "value": "m", "required": False},
        {"flow_index": 3, "side": "response", "category": "credentials", "location": "l5", "value": "t", "required": True},
    ],
}


@pytest.mark.parametrize(
    "findings, overall, per_cat",
    [
        # perfect: two email findings in one flow are one unit
        ([_f(0, "email"), _f(0, "email", loc="other"), _f(0, "device_id"), _f(1, "device_id"), _f(3, "credentials", "response")],
         (4, 0, 0), {"email": (1, 0, 0), "device_id": (2, 0, 0)}),
        # nothing found
        ([], (0, 0, 4), {"email": (0, 0, 1), "credentials": (0, 0, 1)}),
        # right category, wrong side / flow -> FP + FN; don't-care hit is ignored
        ([_f(3, "credentials"), _f(2, "email"), _f(1, "device_info"), _f(0, "email")],
         (1, 2, 3), {"credentials": (0, 1, 1), "email": (1, 1, 0), "device_id": (0, 0, 2)}),
    ],
)
def test_score_counts_units(findings, overall, per_cat):
    res = E.score(findings, LABELS)
    o = res.overall
    assert (o.tp, o.fp, o.fn) == overall
    for cat, want in per_cat.items():
        s = res.per_category[cat]
        assert (s.tp, s.fp, s.fn) == want


def test_score_ratios_and_misses():
    res = E.score([_f(3, "credentials"), _f(2, "email", rule="email.plain"), _f(1, "device_info"), _f(0, "email")], LABELS)
    assert res.overall.precision == pytest.approx(1 / 3)
    assert res.overall.recall == pytest.approx(1 / 4)
    assert res.overall.f1 == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))
    assert res.ignored == 1
    fp = {(m.flow_index, m.category): m for m in res.false_positives}
    assert fp[(2, "email")].rules == ("email.plain",) and fp[(2, "email")].scenario == "neg"
    fn = {(m.flow_index, m.side, m.category) for m in res.false_negatives}
    assert fn == {(0, "request", "device_id"), (1, "request", "device_id"), (3, "response", "credentials")}
    assert res.failures(0.3, 0.2, 0.0) == []
    assert "overall recall 0.250 < 0.5" in res.failures(0.0, 0.5, 0.0)
    assert any(f.startswith("device_id recall") for f in res.failures(0.0, 0.0, 0.9))
    text = E.format_result(res)
    assert "overall (micro)" in text and "false negatives (3)" in text
    assert E.patterns(res.false_negatives) == [(1, "credentials", "c", ""), (1, "device_id", "a", ""), (1, "device_id", "b", "")]
    assert E.patterns(res.false_positives)[0] == (1, "credentials", "c", "r.x")
    doc = E.to_json(res)
    assert doc["overall"]["tp"] == 1 and len(doc["false_negatives"]) == 3


def test_score_accepts_findings_json_dicts():
    res = E.score([_f(0, "email").to_json()], LABELS)
    assert res.per_category["email"].tp == 1


def test_evaluate_runs_a_detector_over_the_capture():
    """evaluate() with a fake detector that reports exactly the required labels."""
    doc = json.loads((EVALSET / "labels.json").read_text(encoding="utf-8"))
    truth = {}
    for lab in doc["labels"]:
        if lab["required"]:
            truth.setdefault(lab["flow_index"], set()).add((lab["side"], lab["category"]))

    class Oracle:
        def scan(self, ex):
            return [_f(ex.index, cat, side) for side, cat in sorted(truth.get(ex.index, ()))]

    res = E.evaluate(EVALSET / "evalset.mitm", EVALSET / "labels.json", detector=Oracle())
    assert res.overall.fp == res.overall.fn == 0 and res.overall.tp > 300


# ------------------------------------------------------------- benchmark command

def _analyze_available() -> bool:
    try:
        from privaudit.detect import Detector, load_rules  # noqa: F401
    except ImportError:
        return False
    return True


def test_quick_benchmark_prints_figures(tmp_path):
    if not _analyze_available():
        pytest.skip("privaudit.detect has not landed yet: analyze cannot run")
    proc = subprocess.run([sys.executable, "-m", "privaudit.bench", "--quick", "--keep", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert out.startswith("machine: ") and "mitmproxy" in out
    assert re.search(r"startup \(analyze of 1 flow\): [\d.]+s", out)
    assert re.search(r"\[500 flows\] analyze -j1: [\d.]+s, [\d,]+ flows/s, [\d.]+ MB/s body, peak RSS \d+ MB", out)
    assert re.search(r"\[500 flows\] analyze -j1 \+10 canaries: [\d.]+s", out)
    assert re.search(r"\[500 flows\] report html: [\d.]+s, [\d,]+ KiB", out)
    assert re.search(r"\[500 flows\] report pdf: [\d.]+s, [\d,]+ KiB", out)
    assert re.search(r"analyze 500 flows, 1 core, \+10 canaries >= 3,000 flows/s: [\d,]+ flows/s -> (met|NOT met)", out)
    if (os.cpu_count() or 1) > 1 and len(os.sched_getaffinity(0)) > 1:
        assert re.search(r"\[500 flows\] two cores' capacity: two copies of .* side by side did [\d.]+x the work "
                         r"of one alone .*; the pool's speed-up was \d+% of it", out)
        assert re.search(r"2 cores >= 1.7x of 1 core: [\d.]+x \(two one-core copies side by side: [\d.]+x\)", out)


def test_pair_capacity_is_the_work_two_copies_did_in_one_copys_time():
    from privaudit.bench import run

    assert run.pair_capacity(2.0, [2.0, 2.0]) == pytest.approx(2.0)  # cores of its own
    assert run.pair_capacity(2.0, [2.0, 4.0]) == pytest.approx(1.5)  # one copy ran at half speed


def test_side_by_side_runs_are_timed_each_until_it_ends(tmp_path):
    from privaudit.bench import run

    slow, fast = run.run_side_by_side([
        [sys.executable, "-c", "import time, sys; time.sleep(0.6); sys.stderr.write('slow'); sys.exit(3)"],
        [sys.executable, "-c", "import time; time.sleep(0.1)"],
    ])
    assert slow.returncode == 3 and slow.stderr == "slow" and fast.returncode == 0
    assert fast.seconds < slow.seconds and slow.seconds >= 0.6 and slow.peak_rss_mb > 0


def test_target_lines_compare_figures_with_the_targets():
    from privaudit.bench.run import targets

    figs = {
        10000: {"analyze -j1 +10 canaries": {"seconds": 2.5, "rss_mb": 100.0},
                "analyze -j2 +10 canaries": {"seconds": 1.6, "rss_mb": 90.0}},
        100000: {"analyze -j1 +10 canaries": {"seconds": 40.0, "rss_mb": 130.0},
                 "report": {"seconds": 8.0, "kib": 2048.0, "rss_mb": 120.0},
                 "report_pdf": {"seconds": 75.0, "kib": 3000.0, "rss_mb": 450.0}},
    }
    text = "\n".join(targets(figs))
    assert "analyze 10000 flows, 1 core, +10 canaries >= 3,000 flows/s: 4,000 flows/s -> met" in text
    assert "analyze 100000 flows, 1 core, +10 canaries >= 3,000 flows/s: 2,500 flows/s -> NOT met" in text
    assert "2 cores >= 1.7x of 1 core: 1.56x -> NOT met" in text
    assert "peak RSS 100k / 10k (1 core, canaries) <= 1.2x: 1.30x -> NOT met" in text
    assert "report HTML of 100k flows <= 10 s and <= 5 MB: 8.0 s, 2.0 MiB -> met" in text
    assert "report PDF of 100k flows <= 60 s: 75.0 s -> NOT met" in text
    assert "report HTML of 100k flows, peak RSS <= 300 MB: 120 MB -> met" in text
    assert "report PDF of 100k flows, peak RSS <= 300 MB: 450 MB -> NOT met" in text


def test_benchmark_rejects_bad_sizes():
    proc = subprocess.run([sys.executable, "-m", "privaudit.bench", "--sizes", "ten"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--sizes" in proc.stderr


def test_gzip_bodies_are_deterministic():
    # write_capture must not embed the wall clock anywhere (gzip mtime included).
    flows = [g for g in G.generate(1, 200) if g.flow.request.headers.get("content-encoding") == "gzip"]
    assert flows and all(g.flow.request.raw_content[4:8] == b"\0\0\0\0" for g in flows)
    assert gzip.decompress(flows[0].flow.request.raw_content) == flows[0].flow.request.get_content()


def test_evaluate_cli_on_a_held_out_seed(capsys):
    if not _analyze_available():
        pytest.skip("privaudit.detect has not landed yet")
    rc = E.main(["--seed", "5", "--flows", "60", "--min-precision", "0", "--min-recall", "0", "--min-category", "0"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("held-out set: seed 5, 60 flows") and "overall (micro)" in out


def test_evaluate_cli_names_a_missing_file(capsys):
    with pytest.raises(SystemExit) as exc:
        E.main(["--mitm", "/nonexistent/x.mitm"])
    assert exc.value.code == 2 and "/nonexistent/x.mitm: no such file" in capsys.readouterr().err


def test_shipped_rules_meet_the_bars_on_the_evaluation_set():
    """The CI check of the detection issue: precision and recall >= 0.95, every category >= 0.90."""
    res = E.evaluate()
    failures = res.failures(0.95, 0.95, 0.90)
    assert not failures, "\n".join(failures)


def test_shipped_rules_meet_the_bars_on_a_fresh_seed():
    """Same payload shapes, new values and mixes: guards against rules fitted to the committed file."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        mitm, labels, canaries = Path(tmp) / "s.mitm", Path(tmp) / "s.json", Path(tmp) / "c.yaml"
        G.main(["--seed", "11", "--flows", "600", "-o", str(mitm), "--labels", str(labels), "--canaries", str(canaries)])
        res = E.evaluate(mitm, labels, canaries)
    failures = res.failures(0.95, 0.95, 0.90)
    assert not failures, "\n".join(failures)


def test_quick_live_benchmark_prints_figures(tmp_path):
    """The live-overhead benchmark at its smallest (CI runs it so it cannot rot):
    a real mitmdump with and without the addon under wrk on loopback."""
    import os
    import shutil

    if shutil.which("wrk") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("wrk is missing: scripts/system-deps.sh installs it")
        pytest.skip("wrk is not installed")
    out_json = tmp_path / "live.json"
    proc = subprocess.run([sys.executable, "-m", "privaudit.bench.live", "--quick", "--json", str(out_json)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"median without addon: [\d.]+ req/s, p99 [\d.]+ ms", out)
    assert re.search(r"median with addon: +[\d.]+ req/s, p99 [\d.]+ ms", out)
    assert re.search(r"throughput ratio \(with/without\): [\d.]+; p99 latency added: [+-][\d.]+ ms", out)
    figures = json.loads(out_json.read_text())
    assert figures
