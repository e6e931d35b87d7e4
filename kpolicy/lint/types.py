"""What rules, checks and findings are; the engine and every check share these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

from kpolicy.families.model import Family
from kpolicy.kconfig.model import KconfigModel
from kpolicy.params.model import Catalog
from kpolicy.tree import KernelTree

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


@dataclass(frozen=True)
class LintContext:
    """Everything a check may read; built once per lint run."""

    tree: KernelTree
    models: Mapping[str, KconfigModel]  # ARCH -> all-defaults evaluation for that arch
    catalog: Catalog
    families: tuple[Family, ...]
    declarations: Mapping[str, Any] = field(default_factory=dict)  # rules/families/*.toml etc.


# A check yields findings for one rule; it builds them with the rule's code, name and severity.
CheckFunction = Callable[[LintContext, Rule], Iterable[Finding]]
