"""One lint context per real tree and arch for the whole test session (the real-tree lint tests
share it: reading 7.2 costs seconds even warm)."""

from __future__ import annotations

from functools import cache

from conftest import real_tree

from kpolicy.analysis import analyse
from kpolicy.cache import Cache
from kpolicy.lint.engine import LintResult, run_lint
from kpolicy.lint.rules_loader import load_rules
from kpolicy.lint.types import LintContext
from kpolicy.tree import open_tree


@cache
def real_context(version: str, arch: str = "x86_64") -> LintContext:
    """The lint context of the real VERSION tree for ARCH (skips or fails when it is missing)."""
    return LintContext.of(analyse(open_tree(real_tree(version)), (arch,), Cache()))


@cache
def real_lint(version: str, arch: str = "x86_64") -> LintResult:
    """`kpolicy lint` of the real VERSION tree for ARCH with every shipped rule."""
    ctx = real_context(version, arch)
    return run_lint(ctx.tree.root, context=ctx)


@cache
def real_lint_changes(version: str, arch: str = "x86_64") -> LintResult:
    """real_lint with every rule selected by name: those judging only changes (param-namespace,
    as on one side of a --base run) and those off by default (param-module-undocumented) too."""
    ctx = real_context(version, arch)
    return run_lint(ctx.tree.root, context=ctx, changes=True,
                    select=[r.name for r in load_rules()])
