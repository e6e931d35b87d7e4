"""What rules, checks and findings are; the engine and every check share these."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Optional

from kpolicy.analysis import Analysis
from kpolicy.kconfig.model import (
    Choice,
    Location,
    Symbol,
    merged_choices,
    merged_symbols,
)
from kpolicy.kconfig.scan import arch_selections

if TYPE_CHECKING:
    from kpolicy.params.crosscheck import CatalogIssue

SEVERITIES = ("note", "warning", "error")  # ascending


@dataclass(frozen=True)
class RuleDocs:
    what: str
    why: str
    bad: str
    good: str
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """One rules/<name>.toml: a stable code, a kebab-case name, and the check that implements it."""

    code: str  # "KP104"
    name: str  # "boot-default-missing"
    severity: str  # one of SEVERITIES
    summary: str
    check: str  # "module:function" under kpolicy.lint.checks, e.g. "pattern:boot_default_missing"
    docs: RuleDocs
    options: Mapping[str, Any] = field(default_factory=dict)  # the TOML's [options] table
    default: bool = True  # False: runs only when --select or the config file names it
    changes_only: bool = False  # True: runs only when a change is judged (--base)


@dataclass(frozen=True)
class Finding:
    rule: str  # the rule's name
    code: str
    severity: str
    message: str
    file: Optional[str] = None  # relative to the tree root
    line: Optional[int] = None
    family: Optional[str] = None
    symbol: Optional[str] = None
    param: Optional[str] = None

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.file or "", self.line or 0, self.code, self.message)


def finding(rule: Rule, message: str, where: Optional[Location], *,
            severity: Optional[str] = None, **about: Optional[str]) -> Finding:
    """A Finding of RULE at WHERE (family=, symbol=, param= as keywords), at the rule's severity
    unless the check knows the finding is milder (a note where a declaration explains it)."""
    return Finding(rule=rule.name, code=rule.code, severity=severity or rule.severity,
                   message=message,
                   file=where.file if where else None, line=where.line if where else None,
                   **about)


@dataclass(frozen=True)
class LintContext(Analysis):
    """Everything a check may read: the tree's analysis, built once per lint run."""

    @classmethod
    def of(cls, analysis: Analysis) -> LintContext:
        """ANALYSIS as the checks read it."""
        return cls(analysis.tree, analysis.models, analysis.catalog, analysis.families,
                   analysis.declarations)

    # Views several checks share, each computed on first use and kept for the context's life
    # (cached_property writes the instance __dict__, which a frozen dataclass allows).

    @cached_property
    def merged_symbols(self) -> Mapping[str, Symbol]:
        """Every arch's symbols in one map, as kpolicy.kconfig.model.merged_symbols."""
        return merged_symbols(self.models)

    @cached_property
    def merged_choices(self) -> Mapping[str, Choice]:
        """Every arch's choices by name, as kpolicy.kconfig.model.merged_choices."""
        return merged_choices(self.models)

    @cached_property
    def arch_selections(self) -> Mapping[str, Mapping[str, Location]]:
        """kpolicy.kconfig.scan.arch_selections of the tree."""
        return arch_selections(self.tree)

    @cached_property
    def catalog_issues(self) -> tuple[CatalogIssue, ...]:
        """kpolicy.params.crosscheck.cross_check of the catalog against every arch's Kconfig,
        leaving out what only the arches not linted register."""
        from kpolicy.params.crosscheck import cross_check
        from kpolicy.params.semantics import load_param_rules

        # resolve's rules/params/ declare the words the kernel reads itself (kind "direct"):
        # read from the command line, so documenting them is no orphan
        version = self.tree.version_tuple
        direct = [d.name.split("=", 1)[0] for d in load_param_rules().declarations
                  if d.kind == "direct" and d.applies(version)]
        return cross_check(self.catalog, self.models,
                           srcarches={m.srcarch for m in self.models.values()},
                           direct_reads=direct)


# A check yields findings for one rule; it builds them with the rule's code, name and severity.
CheckFunction = Callable[[LintContext, Rule], Iterable[Finding]]
