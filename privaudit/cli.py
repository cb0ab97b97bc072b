"""privaudit's command line: a thin layer over the stages.

Exit codes (CONTRACT.md): 0 done; 2 usage, input or configuration error (a
message says what and where; nothing half-written is left); 1 internal error;
3 the ``--fail-on`` policy matched a finding.

The document goes to stdout or ``-o``; a one-line summary goes to stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from pathlib import Path

from . import __version__
from .errors import ConfigError, InputError, PrivauditError
from .fsutil import atomic_text_writer
from .model import SEVERITIES

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_POLICY = 0, 1, 2, 3
REPORT_FORMATS = ("html", "pdf", "json", "md")
LANGS = ("en", "ko")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep its wording
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _common_analysis_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="mitmproxy flow file, HAR file, or a folder of them")
    p.add_argument("--canaries", metavar="FILE", help="YAML file with the tester's seeded test identity")
    p.add_argument("--rules", metavar="DIR", action="append", default=[], help="extra rules folder (repeatable)")
    p.add_argument("--geoip", metavar="FILE.mmdb", action="append", default=[], help="GeoIP/ASN MMDB (repeatable)")
    p.add_argument("-j", "--jobs", type=int, metavar="N", help="worker processes (default: one per CPU)")
    p.add_argument("--show-values", action="store_true", help="do not redact personal values (internal use only)")
    p.add_argument(
        "--own-domain",
        metavar="DOMAIN",
        action="append",
        default=[],
        help="a domain of the app's own maker (repeatable); otherwise first parties are inferred",
    )
    p.add_argument(
        "--resolve",
        metavar="NAMESERVER",
        help="also resolve each host's CNAME chain via this DNS server (ADDR[:PORT], or 'system')",
    )
    p.add_argument(
        "--resolve-best-effort",
        action="store_true",
        help="if the DNS server does not answer, warn and continue with the evidence there is",
    )
    for flag, key, what in (
        ("--auditor", "name", "the auditor's name"),
        ("--organisation", "organisation", "the auditing organisation"),
        ("--case-ref", "case_ref", "the case or file reference"),
        ("--device", "device", "the test device"),
        ("--app", "app", "the audited app"),
        ("--app-version", "app_version", "the audited app's version"),
    ):
        p.add_argument(flag, dest=f"auditor_{key}", metavar="TEXT", help=f"{what}, for the report's chain of custody")
    p.add_argument(
        "--home-country",
        metavar="CC",
        type=_country,
        help="the users' own country (ISO 3166-1 alpha-2, e.g. KR); transfers outside it are cross-border",
    )
    p.add_argument(
        "--fail-on",
        metavar="SEVERITY",
        choices=SEVERITIES,
        help="exit with code 3 if any finding has this severity or higher (for CI)",
    )


def _country(value: str) -> str:
    v = value.strip().upper()
    if len(v) != 2 or not v.isalpha():
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 3166-1 alpha-2 code such as KR")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="privaudit", description="Privacy-risk audit of an app's network traffic.")
    ap.add_argument("--version", action="version", version=f"privaudit {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    a = sub.add_parser("analyze", help="write the findings document (JSON)")
    _common_analysis_args(a)
    a.add_argument("-o", "--output", metavar="OUT.json", help="write here instead of stdout")

    r = sub.add_parser("report", help="render an audit report from captures or a findings document")
    _common_analysis_args(r)
    r.add_argument("--format", choices=REPORT_FORMATS, help="default: from -o's extension")
    r.add_argument("--lang", choices=LANGS, default="en")
    r.add_argument("-o", "--output", metavar="OUT", required=True)

    _capture_parser(sub)

    d = sub.add_parser("demo", help="run a scripted chat-app session through the real proxy and audit it")
    d.add_argument("-o", "--output", metavar="DIR", default="privaudit-demo")

    ru = sub.add_parser("rules", help="list, validate or test detection rules")
    ru.add_argument("action", choices=("list", "validate", "test"))
    ru.add_argument("dirs", nargs="*", metavar="DIR", help="rules folder (default: the built-in rules)")
    return ap


def _is_findings_document(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(256)
    return b'"schema_version"' in head and b'"log"' not in head


def _load_findings_document(path: Path) -> dict:
    from .audit import load_document

    doc = load_document(path)
    if not isinstance(doc, dict) or doc.get("schema_version") != 1 or "findings" not in doc:
        raise InputError(f"{path}: not a privaudit findings document of schema_version 1")
    return doc


def _analyze(args: argparse.Namespace) -> dict:
    from .audit import analyze

    doc = analyze(
        args.inputs,
        rules_dirs=args.rules,
        canaries_path=args.canaries,
        geoip_paths=args.geoip,
        show_values=args.show_values,
        own_domains=args.own_domain,
        nameserver=args.resolve,
        resolve_best_effort=args.resolve_best_effort,
        jobs=args.jobs,
        auditor=_auditor(args),
    )
    if args.home_country:
        doc["home_country"] = args.home_country
    return doc


def _auditor(args: argparse.Namespace) -> dict[str, str]:
    return {k[len("auditor_"):]: v for k, v in vars(args).items() if k.startswith("auditor_") and v}


def _policy_exit(doc: dict, fail_on: str | None) -> int:
    if not fail_on:
        return EXIT_OK
    bar = SEVERITIES.index(fail_on)
    hits = [f for f in doc["findings"] if SEVERITIES.index(f["severity"]) >= bar]
    if hits:
        print(f"privaudit: policy: {len(hits)} findings at severity {fail_on} or higher", file=sys.stderr)
        return EXIT_POLICY
    return EXIT_OK


def _summary(doc: dict) -> str:
    countries = sorted({c for e in doc["endpoints"] for c in e["jurisdictions"]})
    return (
        f"privaudit: {doc['flows_analyzed']} flows, {len(doc['findings'])} findings, "
        f"{len(doc['endpoints'])} endpoints, jurisdictions: {', '.join(countries) or 'none known'}"
    )


def cmd_analyze(args: argparse.Namespace) -> int:
    from .audit import dump_document

    doc = _analyze(args)
    if args.output:
        with atomic_text_writer(Path(args.output)) as f:
            dump_document(doc, f)
    else:
        out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", write_through=False)
        dump_document(doc, out)
        out.flush()
        out.detach()
    for w in doc["warnings"]:
        print(f"privaudit: warning: {w}", file=sys.stderr)
    print(_summary(doc), file=sys.stderr)
    return _policy_exit(doc, args.fail_on)


def _report_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    ext = Path(args.output).suffix.lower().lstrip(".")
    fmt = {"htm": "html", "markdown": "md"}.get(ext, ext)
    if fmt not in REPORT_FORMATS:
        raise ConfigError(f"{args.output}: cannot tell the report format from the extension; use --format {{{','.join(REPORT_FORMATS)}}}")
    return fmt


def cmd_report(args: argparse.Namespace) -> int:
    from .report import render_report

    fmt = _report_format(args)
    if len(args.inputs) == 1 and _is_findings_document(Path(args.inputs[0])):
        doc = _load_findings_document(Path(args.inputs[0]))
        if args.home_country:
            doc["home_country"] = args.home_country
        given = _auditor(args)
        if given:
            doc["auditor"] = {**(doc.get("auditor") or {}), **given}
    else:
        doc = _analyze(args)
    if fmt == "json":  # the document itself: written whole
        from .audit import with_findings_list

        doc = with_findings_list(doc)
    # Other formats stream the findings (from disk, or the audit's spool):
    # the view model keeps only what it shows.
    render_report(doc, fmt, args.lang, Path(args.output), show_values=args.show_values)
    print(_summary(doc), file=sys.stderr)
    print(f"privaudit: report written to {args.output}", file=sys.stderr)
    return _policy_exit(doc, args.fail_on)


def _capture_parser(sub) -> None:
    c = sub.add_parser("capture", help="run the proxy, show what personal data goes where live, and record an audit")
    c.add_argument("--mode", default="regular",
                   help="mitmproxy mode: regular (default), wireguard, local:APP, transparent, upstream:URL, reverse:URL")
    c.add_argument("--listen-host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 lets a phone on the same network connect")
    c.add_argument("--listen-port", type=int, default=8080)
    c.add_argument("--canaries", metavar="FILE", help="YAML file with the tester's seeded test identity")
    c.add_argument("--own-domain", metavar="DOMAIN", action="append", default=[],
                   help="a domain of the app's own maker (repeatable)")
    c.add_argument("--rules", metavar="DIR", action="append", default=[], help="extra rules folder (repeatable)")
    c.add_argument("--geoip", metavar="FILE.mmdb", action="append", default=[], help="GeoIP/ASN MMDB (repeatable)")
    c.add_argument("--tester", help="who ran the test (recorded in meta.json)")
    c.add_argument("--device", help="the device under test, e.g. 'Pixel 7, Android 14'")
    c.add_argument("--app", help="the app under test, e.g. DeepSeek")
    c.add_argument("--app-version", help="the app's version")
    c.add_argument("--phase-key", metavar="KEY=NAME", action="append", default=[],
                   help="bind a dashboard key to a phase, e.g. 6='logged out' (keys 1-5 are the standard phases, p any text)")
    c.add_argument("-q", "--quiet", action="store_true",
                   help="no onboarding or dashboard: only errors and a final summary (scripts, CI)")
    c.add_argument("--no-live", action="store_true", help="only record; analyse after the capture ends")
    c.add_argument("--lang", choices=LANGS, default="en")
    c.add_argument("-o", "--output", metavar="AUDIT_DIR", required=True)


def cmd_capture(args: argparse.Namespace) -> int:
    from .audit import dump_document
    from .capture.addon import parse_domains
    from .capture.console import capture_session, capture_summary, parse_phase_keys
    from .report import render_report

    out = Path(args.output)
    if args.canaries:
        from .detect import load_canaries

        load_canaries(Path(args.canaries))  # a bad canary file fails before the proxy starts
    try:
        own = parse_domains(args.own_domain)
    except ValueError as e:
        raise ConfigError(f"--own-domain: {e}") from e
    phase_keys = parse_phase_keys(args.phase_key)
    result = capture_session(
        out,
        mode=args.mode,
        listen_host=args.listen_host,
        listen_port=args.listen_port,
        canaries=Path(args.canaries) if args.canaries else None,
        own_domains=own,
        meta_fields={"tester": args.tester, "device": args.device, "app": args.app, "app_version": args.app_version},
        rules_dirs=args.rules,
        geoip_paths=args.geoip,
        quiet=args.quiet,
        phase_keys=phase_keys,
        live=not args.no_live,
    )
    print(capture_summary(result), file=sys.stderr)
    if result.flows_written == 0 and (not result.flows.exists() or result.flows.stat().st_size == 0):
        print(f"privaudit: no flows were captured; nothing to analyse (session facts in {result.meta})", file=sys.stderr)
        return EXIT_OK
    if result.findings is not None:  # analysed live: every flow of the flow file, deferred ones included
        from .audit import read_audit_meta

        from .audit import load_document

        doc = load_document(result.findings)  # findings left on disk until the report reads them
        meta = read_audit_meta([out])  # written when the proxy stopped, after the live document
        doc.setdefault("coverage", {})["tls_failures"] = meta["tls_failures"]
        doc["environment"] = {**doc.get("environment", {}), **meta["environment"]}
        doc["auditor"] = {**meta["auditor"], **doc.get("auditor", {})}
        doc["phases"] = doc.get("phases") or meta["phases"]
    else:
        from .audit import analyze

        doc = analyze(
            [out],
            canaries_path=args.canaries,
            rules_dirs=args.rules,
            geoip_paths=args.geoip,
            own_domains=[d.removeprefix("*.") for d in own],
        )
        with atomic_text_writer(out / "findings.json") as f:
            dump_document(doc, f)
    render_report(doc, "html", args.lang, out / "report.html")  # streams spilled findings
    print(_summary(doc), file=sys.stderr)
    if not args.quiet:
        print(f"privaudit: audit written to {out}/ (flows.mitm, meta.json, findings.json, report.html)", file=sys.stderr)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    res = run_demo(Path(args.output))
    print(f"findings: {res.findings}")
    print(f"report:   {res.report}")
    print(f"flows:    {res.flows}")
    return EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    from .detect import ruletool
    from .detect.rules import builtin_dirs

    dirs = [Path(d) for d in args.dirs] or list(builtin_dirs())
    if args.action == "list":
        for rid, category, severity, path in ruletool.list_rules(dirs):
            print(f"{rid}\t{category}\t{severity}\t{path}")
        return EXIT_OK
    if args.action == "validate":
        errors = ruletool.validate(dirs)
        if not args.dirs:
            # The built-in data beside the detection rules: operator map, ASN map, legal notes.
            from .jurisdiction import check_data_files
            from .resources import rules_dir

            errors += check_data_files(rules_dir())
        for e in errors:
            print(e, file=sys.stderr)
        print(f"privaudit: {len(errors)} errors", file=sys.stderr)
        return EXIT_USAGE if errors else EXIT_OK
    passed, failures = ruletool.run_rule_tests(dirs)
    for f in failures:
        print(f, file=sys.stderr)
    print(f"privaudit: {passed} rule cases passed, {len(failures)} failed", file=sys.stderr)
    return EXIT_USAGE if failures else EXIT_OK


COMMANDS = {
    "analyze": cmd_analyze,
    "report": cmd_report,
    "capture": cmd_capture,
    "demo": cmd_demo,
    "rules": cmd_rules,
}


#: Commands after which :func:`run` skips the interpreter's teardown: they
#: start no process or thread that outlives them and hold no file open.
QUICK_EXIT = frozenset({"analyze", "report", "rules"})
_command: str | None = None  # what main() ran last


def main(argv: list[str] | None = None) -> int:
    global _command
    args = build_parser().parse_args(argv)
    _command = args.command
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="privaudit: %(levelname)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except PrivauditError as e:
        print(f"privaudit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("privaudit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # an internal error: say so, with the traceback under -v
        logging.getLogger("privaudit").debug("internal error", exc_info=True)
        print(f"privaudit: internal error: {type(e).__name__}: {e} (run with -v for details)", file=sys.stderr)
        if args.verbose:
            import traceback

            traceback.print_exc()
        return EXIT_INTERNAL


def run() -> None:
    """The ``privaudit`` command: :func:`main`, then the process's exit.

    After a batch command (:data:`QUICK_EXIT`) the output is written and
    closed, so the interpreter's teardown (freeing every module and object,
    30-45 ms with the rules and a capture's state loaded, a tenth of a small
    analysis) does nothing the user needs: the streams are flushed and the
    process ends at once. Other commands, and ``main()`` called from Python,
    exit the ordinary way.
    """
    code = main()
    if _command not in QUICK_EXIT:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader that went away; a stream closed after one
            pass
        except OSError:
            sys.exit(code)  # e.g. a full disk: let the ordinary exit report it
    os._exit(code)


if __name__ == "__main__":
    run()
