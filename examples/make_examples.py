"""Regenerates the sample reports in this folder from one run of the demo.

    python examples/make_examples.py        # from the repository root

The demo (``privaudit demo``) runs an imitation chat app against imitation
servers on this machine, captures its traffic and analyses it; this script
then renders that one findings document in every format and language, as a
Korean user's audit (``home_country`` KR), with the auditor fields left blank
to fill in. Each report gets its ``.sha256`` file, as ``privaudit report``
writes it. The demo's server addresses are demo-only stand-ins, and every
report says so.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    from privaudit.demo import run_demo
    from privaudit.report import FORMATS, LANGS, render_report

    with tempfile.TemporaryDirectory(prefix="privaudit-examples-") as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)  # so the document names its input as "demo/flows.mitm", not a temporary path
        try:
            result = run_demo(Path("demo"))
            doc = json.loads(Path(result.findings).read_text(encoding="utf-8"))
        finally:
            os.chdir(cwd)
    doc["home_country"] = "KR"
    for lang in LANGS:
        for fmt in FORMATS:
            out = HERE / f"demo-report.{lang}.{fmt}"
            render_report(doc, fmt, lang, out)
            out.chmod(0o644)  # samples for the repository, not a real audit
            out.with_name(out.name + ".sha256").chmod(0o644)
            print(f"wrote {out.relative_to(HERE.parent)} ({out.stat().st_size // 1024} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
