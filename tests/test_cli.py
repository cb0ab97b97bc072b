"""The command line: outputs, exit codes, and nothing half-written on error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from privaudit import cli

CORPUS = Path(__file__).parent / "data" / "mitmproxy-testdata"
CHROME = CORPUS / "har_files" / "chrome.har"
BROKEN = CORPUS / "corrupted_har" / "brokenfile.har"

CONTRACT_TOP = ["schema_version", "tool", "inputs", "flows_analyzed", "findings", "endpoints"]
CONTRACT_ENDPOINT = [
    "host", "ips", "hosting_country", "asn", "as_org", "operator", "jurisdictions",
    "evidence", "tls", "flow_count", "categories",
]


def _login_har(tmp_path: Path) -> Path:
    """A HAR of one login POST carrying an e-mail address and a phone number."""
    har = {
        "log": {
            "version": "1.2",
            "creator": {"name": "test", "version": "1"},
            "entries": [
                {
                    "startedDateTime": "2025-02-01T10:00:00.000Z",
                    "time": 12,
                    "request": {
                        "method": "POST",
                        "url": "https://chat.deepseek.com/api/v0/users/login",
                        "httpVersion": "HTTP/1.1",
                        "headers": [{"name": "Content-Type", "value": "application/json"}],
                        "postData": {
                            "mimeType": "application/json",
                            "text": json.dumps({"email": "tester.one@example.org", "mobile": "+82 10-1234-5678", "password": "hunter2hunter2"}),
                        },
                    },
                    "response": {"status": 200, "httpVersion": "HTTP/1.1", "headers": [], "content": {"text": "{}"}},
                    "serverIPAddress": "1.2.4.8",
                }
            ],
        }
    }
    p = tmp_path / "login.har"
    p.write_text(json.dumps(har))
    return p


def test_analyze_writes_the_contract_document_to_stdout(capsysbinary):
    assert cli.main(["analyze", str(CHROME)]) == 0
    doc = json.loads(capsysbinary.readouterr().out)
    assert list(doc)[: len(CONTRACT_TOP)] == CONTRACT_TOP
    assert doc["schema_version"] == 1
    assert doc["flows_analyzed"] == 3
    assert doc["inputs"][0]["format"] == "har" and len(doc["inputs"][0]["sha256"]) == 64
    assert len(doc["tool"]["rules_digest"]) == 64
    for e in doc["endpoints"]:
        assert all(k in e for k in CONTRACT_ENDPOINT)


def test_analyze_output_file_is_owner_only(tmp_path):
    out = tmp_path / "f.json"
    assert cli.main(["analyze", str(_login_har(tmp_path)), "-o", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    doc = json.loads(out.read_text())
    cats = {f["category"] for f in doc["findings"]}
    assert {"email", "phone", "credentials"} <= cats
    assert all("tester.one@example.org" not in f["evidence"] for f in doc["findings"])
    (ep,) = doc["endpoints"]
    assert ep["host"] == "chat.deepseek.com" and ep["ips"] == ["1.2.4.8"]
    assert "CN" in ep["jurisdictions"] and ep["hosting_country"] == "CN"


@pytest.mark.parametrize(
    "args,needle",
    [
        (["analyze", str(BROKEN)], "brokenfile.har:5:"),
        (["analyze", "/nonexistent/x.har"], "no such file"),
        (["report", str(CHROME), "-o", "{out}/r.docx"], "cannot tell the report format"),
    ],
)
def test_bad_input_exits_2_naming_what_and_leaves_nothing(tmp_path, capsys, args, needle):
    args = [a.replace("{out}", str(tmp_path)) for a in args] + (["-o", str(tmp_path / "f.json")] if args[0] == "analyze" else [])
    assert cli.main(args) == 2
    assert needle in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_bad_canary_file_exits_2_with_file_and_line(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("email: [unclosed\n")
    assert cli.main(["analyze", str(CHROME), "--canaries", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err


def test_fail_on_policy_exits_3(tmp_path):
    har = _login_har(tmp_path)
    assert cli.main(["analyze", str(har), "-o", str(tmp_path / "a.json"), "--fail-on", "medium"]) == 3
    assert (tmp_path / "a.json").exists()  # the document is still written
    assert cli.main(["analyze", str(CHROME), "-o", str(tmp_path / "b.json"), "--fail-on", "critical"]) == 0


def test_report_from_captures_and_from_a_findings_document(tmp_path):
    har = _login_har(tmp_path)
    doc = tmp_path / "f.json"
    assert cli.main(["analyze", str(har), "-o", str(doc)]) == 0
    assert cli.main(["report", str(har), "-o", str(tmp_path / "a.html")]) == 0
    assert cli.main(["report", str(doc), "-o", str(tmp_path / "b.html")]) == 0
    assert cli.main(["report", str(doc), "--format", "json", "-o", str(tmp_path / "c.out")]) == 0
    assert json.loads((tmp_path / "c.out").read_text())["findings"] == json.loads(doc.read_text())["findings"]
    for name in ("a.html", "b.html"):
        html = (tmp_path / name).read_text()
        assert "chat.deepseek.com" in html and "tester.one@example.org" not in html


def test_internal_error_exits_1(monkeypatch, capsys):
    import privaudit.audit

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(privaudit.audit, "analyze", boom)
    assert cli.main(["analyze", str(CHROME)]) == 1
    assert "internal error" in capsys.readouterr().err


def test_usage_error_exits_2_in_a_real_process():
    r = subprocess.run([sys.executable, "-m", "privaudit", "analyze"], capture_output=True, text=True)
    assert r.returncode == 2 and "INPUT" in r.stderr
    r = subprocess.run([sys.executable, "-m", "privaudit", "analyze", str(BROKEN)], capture_output=True, text=True)
    assert r.returncode == 2 and "brokenfile.har" in r.stderr and r.stdout == ""


def test_the_command_skips_teardown_but_not_its_output(tmp_path):
    """`privaudit analyze` ends with os._exit once done (cli.run): whatever
    was printed is still flushed, to a pipe and to a file, and a reader that
    stops early gets no traceback."""
    cmd = [sys.executable, "-m", "privaudit", "analyze", str(CHROME)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.strip().startswith("privaudit:") and "flows" in r.stderr
    assert json.loads(r.stdout)["flows_analyzed"] > 0
    out = tmp_path / "doc.json"
    r = subprocess.run(cmd + ["-o", str(out), "--fail-on", "low"], capture_output=True, text=True)
    assert json.loads(out.read_text("utf-8"))["findings"] and r.returncode == cli.EXIT_POLICY and "policy" in r.stderr
    # a document far bigger than a pipe's buffer: the writer meets the closed end
    evalset = Path(__file__).parent / "data" / "evalset" / "evalset.mitm"
    p = subprocess.Popen(cmd[:-1] + [str(evalset)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.read(10) == b'{\n  "schem'
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait() == 0 and "Traceback" not in err


def test_rules_commands_on_the_built_in_rules(capsys):
    assert cli.main(["rules", "validate"]) == 0
    assert cli.main(["rules", "test"]) == 0
    assert cli.main(["rules", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) >= 15


def test_rules_validate_reports_a_broken_rule_with_file_and_line(tmp_path, capsys):
    d = tmp_path / "myrules"
    d.mkdir()
    (d / "bad.yaml").write_text("id: my.rule\ncategory: not_a_category\nseverity: high\n")
    assert cli.main(["rules", "validate", str(d)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err


@pytest.mark.parametrize("fmt", ["json", "md", "html"])
def test_report_from_a_capture_whose_findings_spilled_to_disk_has_them_all(tmp_path, monkeypatch, fmt):
    """A large capture's findings live in a FindingSpool, not a list; every
    report format must still see all of them (it once crashed or showed none)."""
    from privaudit import audit

    evalset = Path(__file__).parent / "data" / "evalset" / "evalset.mitm"
    expected = len(audit.analyze([evalset], jobs=1)["findings"])
    monkeypatch.setattr(audit.FindingSpool.__init__, "__defaults__", (10,))
    out = tmp_path / f"r.{fmt}"
    assert cli.main(["report", str(evalset), "-j", "1", "-o", str(out)]) == 0
    text = out.read_text("utf-8")
    if fmt == "json":
        assert len(json.loads(text)["findings"]) == expected
    else:
        assert str(expected) in text
