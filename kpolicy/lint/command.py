"""`kpolicy lint`, `kpolicy rules` and `kpolicy rule`."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from kpolicy.cliargs import (
    add_cache_arguments,
    add_jobs_argument,
    add_tree_argument,
    cache_from_args,
)
from kpolicy.errors import KpolicyError
from kpolicy.lint.rules_loader import find_rule, load_rules
from kpolicy.lint.types import SEVERITIES

if TYPE_CHECKING:
    from kpolicy.lint.engine import LintResult

FORMATS = ("text", "json", "sarif", "github")


def _rules_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules-dir", type=Path, metavar="DIR",
                        help="read rules from DIR instead of the shipped rules/")


def _list(value: str) -> list[str]:
    return [v for v in (s.strip() for s in value.split(",")) if v]


def configure_lint(parser: argparse.ArgumentParser) -> None:
    """Arguments of `kpolicy lint`."""
    add_tree_argument(parser)
    parser.add_argument("--arch", action="append", default=[], metavar="ARCH",
                        help="ARCH to evaluate (repeatable; default x86_64)")
    parser.add_argument("--all-arches", action="store_true", help="evaluate every arch of the tree")
    add_jobs_argument(parser, "work out what the cache lacks (Kconfig of each arch, C scan)")
    parser.add_argument("--format", choices=FORMATS, default="text", help="report format")
    parser.add_argument("--fail-on", choices=SEVERITIES,
                        help="lowest severity that makes the exit status 1 (default error; warning "
                             "with --base or --baseline, which report only new findings)")
    parser.add_argument("--select", action="extend", type=_list, default=[], metavar="RULES",
                        help="only these rules (names, codes or code prefixes, comma-separated)")
    parser.add_argument("--ignore", action="extend", type=_list, default=[], metavar="RULES",
                        help="skip these rules")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="settings and waivers (default: TREE/.kpolicy.toml)")
    parser.add_argument("--baseline", type=Path, metavar="FILE",
                        help="report only findings not recorded in FILE")
    parser.add_argument("--write-baseline", type=Path, metavar="FILE",
                        help="record the current findings in FILE")
    parser.add_argument("--base", metavar="REV",
                        help="report only findings the changes since git revision REV introduce")
    parser.add_argument("--patch", action="append", type=Path, default=[], metavar="FILE",
                        help="report only findings the patch FILE introduces (git format-patch "
                             "file or mbox series; repeatable, applied in order)")
    parser.add_argument("--show-waived", action="store_true", help="also list waived findings")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="write the report to FILE instead of standard output")
    _rules_dir_argument(parser)
    add_cache_arguments(parser)


def _progress() -> Optional[Callable[[str], None]]:
    if not sys.stderr.isatty():
        return None

    def say(msg: str) -> None:
        print(f"kpolicy: {msg}", file=sys.stderr, flush=True)

    return say


def _lint_patched(args: argparse.Namespace, lint: Callable[[Path, bool], LintResult],
                  cache_root: Optional[Path],
                  progress: Optional[Callable[[str], None]]) -> LintResult:
    """Lint TREE with the --patch files applied; only what they introduce is reported. A patch
    that does not apply stops the run before any lint."""
    from kpolicy.forked import start_forked
    from kpolicy.lint import baseline, scratch

    changes = scratch.patch_changes(args.tree, args.patch)

    def tree_fingerprints() -> list[str]:
        return [baseline.fingerprint(f) for f in lint(args.tree, True).findings]

    # The unpatched tree is linted by a second process, beside the patched copy's lint.
    before = start_forked(tree_fingerprints)
    try:
        if progress:
            progress(f"applying {len(args.patch)} patch file(s) to a scratch copy")
        with scratch.patched_tree(args.tree, changes, cache_root) as patched:
            result = lint(patched, False)  # a scratch tree: its findings are not kept
    except BaseException:
        before.cancel()
        raise
    fresh, known = baseline.new_findings(result.findings, before.result())
    return dataclasses.replace(result, findings=fresh, baselined=result.baselined + known)


def run_lint(args: argparse.Namespace) -> int:
    """Lint the tree, print the report, return 0 clean, 1 findings at or above --fail-on."""
    from kpolicy.lint import baseline, engine
    from kpolicy.textio import atomic_write_bytes

    cache = cache_from_args(args)
    progress = _progress()

    def lint(tree: Path, keep_findings: bool = True) -> engine.LintResult:
        return engine.run_lint(
            tree, tuple(args.arch) or ("x86_64",), all_arches=args.all_arches,
            select=args.select or None, ignore=args.ignore, fail_on=args.fail_on, cache=cache,
            config_file=args.config, rules_dir=args.rules_dir, progress=progress, jobs=args.jobs,
            changes=bool(args.base or args.patch), keep_findings=keep_findings,
            default_fail_on=engine.CHANGE_FAIL_ON if args.base or args.baseline or args.patch
            else engine.DEFAULT_FAIL_ON)

    if args.base and args.patch:
        raise KpolicyError("--base and --patch cannot be combined: --patch judges the patches "
                           "against the tree as it is")
    if args.patch:
        result = _lint_patched(args, lint, cache.root if cache.enabled else None, progress)
    elif args.base:
        from kpolicy.forked import start_forked
        from kpolicy.lint import gitbase

        def base_fingerprints() -> list[str]:
            if progress:
                progress(f"rebuilding the tree as of {args.base}")
            kept = cache.root if cache.enabled else None
            with gitbase.base_tree(args.tree, args.base, kept) as old:
                return [baseline.fingerprint(f) for f in lint(old).findings]

        # The base revision is linted by a second process, beside the working tree's lint.
        base = start_forked(base_fingerprints)
        try:
            result = lint(args.tree)
        except BaseException:
            base.cancel()
            raise
        fresh, known = baseline.new_findings(result.findings, base.result())
        result = dataclasses.replace(result, findings=fresh, baselined=result.baselined + known)
    else:
        result = lint(args.tree)
    if args.write_baseline:
        baseline.write_baseline(args.write_baseline, result.findings)
    if args.baseline:
        fresh, known = baseline.new_findings(result.findings, baseline.read_baseline(args.baseline))
        result = dataclasses.replace(result, findings=fresh, baselined=result.baselined + known)
    reporter = importlib.import_module(f"kpolicy.reporters.{args.format}")
    report: str = reporter.render(result, show_waived=args.show_waived)
    if args.output:
        atomic_write_bytes(args.output, report.encode())
    else:
        sys.stdout.write(report)
    return result.exit_code


def configure_rules(parser: argparse.ArgumentParser) -> None:
    """Arguments of `kpolicy rules`."""
    _rules_dir_argument(parser)


def run_rules(args: argparse.Namespace) -> int:
    """Print one line per rule: code, name, severity, summary."""
    rules = load_rules(args.rules_dir)
    width = max((len(r.name) for r in rules), default=4)
    print(f"{'CODE':<6} {'NAME':<{width}} {'SEVERITY':<8} SUMMARY")
    for r in rules:
        off = "" if r.default else " (off by default: --select it)"
        print(f"{r.code:<6} {r.name:<{width}} {r.severity:<8} {r.summary}{off}")
    return 0


def configure_rule(parser: argparse.ArgumentParser) -> None:
    """Arguments of `kpolicy rule`."""
    parser.add_argument("rule", metavar="NAME|CODE",
                        help="rule name (e.g. boot-default-missing) or code")
    _rules_dir_argument(parser)


def _block(text: str) -> str:
    return textwrap.indent(textwrap.dedent(text).strip("\n"), "    ")


def run_rule(args: argparse.Namespace) -> int:
    """Print a rule's documentation: what it does, why, a bad and a good example, references."""
    rule = find_rule(load_rules(args.rules_dir), args.rule)
    d = rule.docs
    parts = [
        f"# {rule.name} ({rule.code})",
        f"Severity: {rule.severity}",
        rule.summary,
        "## What it does",
        d.what.strip(),
        "## Why",
        d.why.strip(),
        "## Example",
        "Bad:",
        _block(d.bad),
        "Good:",
        _block(d.good),
    ]
    if d.references:
        parts += ["## References", "\n".join(f"- {r}" for r in d.references)]
    print("\n\n".join(parts))
    return 0
