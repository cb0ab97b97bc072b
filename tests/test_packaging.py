"""A non-editable install finds its rules and templates from any working directory."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "data" / "mitmproxy-testdata"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """privaudit built as a wheel and installed (not editable) into a folder of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(REPO)],
        check=True,
    )
    (wheel,) = (tmp / "dist").glob("privaudit-*.whl")
    site = tmp / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True
    )
    return site


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_wheel_ships_rules_and_templates_inside_the_package(installed, tmp_path):
    r = _run(
        installed,
        tmp_path,
        "-c",
        "import privaudit, privaudit.resources as r; print(privaudit.__file__); print(r.rules_dir()); print(r.templates_dir())",
    )
    assert r.returncode == 0, r.stderr
    pkg, rules, templates = r.stdout.split()
    assert pkg.startswith(str(installed))
    assert rules == str(installed / "privaudit" / "_data" / "rules")
    assert templates == str(installed / "privaudit" / "_data" / "report_templates")
    assert any(Path(rules).rglob("*.yaml"))
    assert any(Path(templates).rglob("*.j2"))


def test_installed_command_analyzes_from_another_directory(installed, tmp_path):
    out = tmp_path / "f.json"
    r = _run(installed, tmp_path, "-m", "privaudit", "analyze", str(CORPUS / "har_files" / "chrome.har"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert '"flows_analyzed": 3' in out.read_text()
    r = _run(installed, tmp_path, "-m", "privaudit", "report", str(out), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r.html").stat().st_size > 1000


def test_installed_console_script_runs(installed, tmp_path):
    script = installed / "bin" / "privaudit"
    env = dict(os.environ, PYTHONPATH=str(installed))
    r = subprocess.run([str(script), "--version"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "privaudit" in r.stdout


@pytest.mark.parametrize(
    ("module", "flag", "what"),
    [("privaudit.source.fast", "READER", "C reader"), ("privaudit.detect.decode", "WALKER", "C decoder walk")],
)
def test_wheel_carries_each_compiled_module_where_it_was_built(installed, tmp_path, module, flag, what):
    if getattr(importlib.import_module(module), flag) != "C":
        pytest.skip(f"no {what} built in this environment (no compiler at install?)")
    r = _run(installed, tmp_path, "-c", f"import {module} as m; print(m.{flag}, m._C.__file__)")
    assert r.returncode == 0, r.stderr
    kind, path = r.stdout.split()
    assert kind == "C" and path.startswith(str(installed))
