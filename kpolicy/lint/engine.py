"""The lint engine: run each selected rule's check; order what they find."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from kpolicy.analysis import analyse, load_declarations, select_arches
from kpolicy.cache import Cache
from kpolicy.errors import KpolicyError
from kpolicy.lint.resultcache import cached_findings
from kpolicy.lint.rules_loader import load_rules, select_rules
from kpolicy.lint.types import SEVERITIES, CheckFunction, Finding, LintContext, Rule
from kpolicy.lint.waivers import LintConfig, Waiver, apply_waivers, check_waiver_rules, load_config
from kpolicy.longlived import long_lived
from kpolicy.tree import KernelTree, open_tree

CHECK_PACKAGE = "kpolicy.lint.checks"
DEFAULT_FAIL_ON = "error"  # a stock tree has warnings, none at error: CI passes it
# With --base or --baseline only what a change adds is reported: a new warning fails.
CHANGE_FAIL_ON = "warning"


@dataclass(frozen=True)
class LintResult:
    """What one lint run found: active findings (sorted), waived ones, and the exit threshold."""

    tree: KernelTree
    arches: tuple[str, ...]
    rules: tuple[Rule, ...]
    findings: tuple[Finding, ...]
    waived: tuple[tuple[Finding, Waiver], ...] = ()
    fail_on: str = DEFAULT_FAIL_ON
    baselined: int = 0  # findings hidden because a baseline or the --base revision has them
    config_file: Optional[str] = None

    def failing(self) -> tuple[Finding, ...]:
        """The findings at or above fail_on."""
        floor = SEVERITIES.index(self.fail_on)
        return tuple(f for f in self.findings if SEVERITIES.index(f.severity) >= floor)

    @property
    def exit_code(self) -> int:
        """1 when a finding is at or above fail_on, else 0."""
        return 1 if self.failing() else 0


def finding_key(f: Finding) -> tuple[str, int, str, str, str, str, str]:
    """The total order findings are reported in."""
    return (*f.sort_key(), f.family or "", f.symbol or "", f.param or "")


def resolve_check(rule: Rule, package: str = CHECK_PACKAGE) -> CheckFunction:
    """The function RULE.check names inside PACKAGE, or a KpolicyError saying what is missing."""
    module_name, _, func_name = rule.check.partition(":")
    try:
        module = importlib.import_module(f"{package}.{module_name}")
    except ModuleNotFoundError:
        raise KpolicyError(f"rule {rule.name}: no check module '{module_name}'") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise KpolicyError(f"rule {rule.name}: check module '{module_name}' has no '{func_name}'")
    return func  # type: ignore[no-any-return]


def run_checks(
    ctx: LintContext, rules: Sequence[Rule], *, check_package: str = CHECK_PACKAGE,
) -> tuple[Finding, ...]:
    """Every finding of RULES on CTX, deduplicated and in report order."""
    found: set[Finding] = set()
    for rule in rules:
        found.update(resolve_check(rule, check_package)(ctx, rule))
    return tuple(sorted(found, key=finding_key))


def run_lint(
    tree: Path,
    arches: Sequence[str] = ("x86_64",),
    *,
    all_arches: bool = False,
    rules: Optional[Sequence[Rule]] = None,
    select: Optional[Sequence[str]] = None,
    ignore: Optional[Sequence[str]] = None,
    fail_on: Optional[str] = None,
    cache: Optional[Cache] = None,
    config_file: Optional[Path] = None,
    rules_dir: Optional[Path] = None,
    context: Optional[LintContext] = None,
    check_package: Optional[str] = None,
    progress: Optional[Callable[[str], None]] = None,
    jobs: int = 1,
    changes: bool = False,
    default_fail_on: str = DEFAULT_FAIL_ON,
    keep_findings: bool = True,
) -> LintResult:
    """Lint the kernel tree at TREE: config file settings apply, command-line ones win over them.
    CHANGES: the run is one side of judging a change (--base), so the rules that judge only
    what a change adds (param-namespace: renaming a released parameter breaks command lines)
    run too; otherwise they run only when selected by name. KEEP_FINDINGS: the findings are
    kept in CACHE for the next run on the same tree (kpolicy.lint.resultcache), and so are
    the Kconfig models parsed; off for a scratch tree no later run sees again."""
    ktree = open_tree(tree) if context is None else context.tree
    config: LintConfig = load_config(ktree.root, config_file)
    every = tuple(rules) if rules is not None else load_rules(rules_dir)
    check_waiver_rules(config, every)
    selectors = list(select or config.select)
    chosen = select_rules(every, selectors or None, [*config.ignore, *(ignore or ())])
    if not changes:
        named = {s.strip().lower() for s in selectors}
        chosen = tuple(r for r in chosen if not r.changes_only
                       or {r.name, r.code.lower()} & named)
    if fail_on is not None and fail_on not in SEVERITIES:
        raise KpolicyError(f"--fail-on must be one of {', '.join(SEVERITIES)}")
    package = check_package or CHECK_PACKAGE
    if context is None:
        arch_list = select_arches(ktree, arches, all_arches)

        def compute() -> tuple[tuple[str, ...], tuple[Finding, ...]]:
            decl = load_declarations(rules_dir)
            ctx = LintContext.of(analyse(ktree, arch_list, cache, declarations=decl,
                                         progress=progress, jobs=jobs,
                                         keep_models=keep_findings))
            # the checks decode ~150,000 cached symbols of all arches (crosscheck's settable
            # symbols), kept with the models: the cyclic collector rescanned them all again and
            # again (two thirds of the checks' time)
            with long_lived():
                return tuple(ctx.models), run_checks(ctx, chosen, check_package=package)

        linted, findings = cached_findings(
            ktree, (arch_list, tuple(r.name for r in chosen), package), rules_dir,
            cache if keep_findings else None, compute)
    else:
        linted = tuple(context.models)
        findings = run_checks(context, chosen, check_package=package)
    active, waived = apply_waivers(findings, config.waivers)
    return LintResult(
        tree=ktree,
        arches=linted,
        rules=chosen,
        findings=active,
        waived=waived,
        fail_on=fail_on or config.fail_on or default_fail_on,
        config_file=config.file,
    )
