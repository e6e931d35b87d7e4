"""The smallest change that makes a failing item pass, proven by resolving again with it applied.

A config fix assigns the item's symbol, then, round by round, the dependencies Kconfig says
block it (a `depends on X` term sets X, a `!X` term clears X, a symbol selected on by Y clears
Y); the config is re-evaluated as `make olddefconfig` would, and the symbols that change with
it are listed. A command-line fix appends the parameter word the kernel's handler accepts. Every
fix is applied and the whole policy judged again: a fix that does not make its item pass is
not offered, and the items a fix makes fail are named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Optional

from kpolicy.kconfig.evaluate import eval_expr
from kpolicy.kconfig.model import Expr, KconfigModel
from kpolicy.policy.evaluate import Subject, fixed_symbol
from kpolicy.policy.schema import Item, value_text

MAX_ROUNDS = 6


@dataclass(frozen=True)
class Change:
    """A proposed change: config assignments and command-line words (either may be empty)."""

    config: tuple[tuple[str, str], ...] = ()  # (symbol, value) as a .config line would set it
    cmdline: tuple[str, ...] = ()
    sysctl: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Fix:
    """A change proven to make its item pass, with what else it does."""

    change: Change
    drags: tuple[str, ...]  # "SYMBOL: old -> new" that follow from the change
    breaks: tuple[str, ...]  # ids of items that pass without the change and fail with it

    def text(self) -> str:
        parts = [config_line(s, v) for s, v in self.change.config]
        if self.change.cmdline:
            parts.append("command line: add " + " ".join(self.change.cmdline))
        parts += [f"sysctl: {k} = {v}" for k, v in self.change.sysctl]
        return "; ".join(parts)

    def as_json(self) -> dict[str, object]:
        return {
            "config": {f"CONFIG_{s}": v for s, v in self.change.config},
            "cmdline": list(self.change.cmdline),
            "sysctl": dict(self.change.sysctl),
            "drags": list(self.drags),
            "breaks": list(self.breaks),
            "text": self.text(),
        }


def config_line(symbol: str, value: str) -> str:
    """SYMBOL=VALUE as a .config line."""
    return f"# CONFIG_{symbol} is not set" if value == "n" else f"CONFIG_{symbol}={value}"


# Re-resolve with a change applied: the new Subject and the config symbols that changed.
Apply = Callable[[Change], tuple[Subject, dict[str, tuple[str, str]]]]
Passes = Callable[[Item, Subject], bool]


def _target(item: Item, actual: str) -> Optional[str]:
    """The value to give the item's symbol."""
    wanted = value_text(item.value)
    if item.op in ("=", ">=", "<="):
        return wanted
    if item.op == "!=":
        return "n" if wanted in ("y", "m") else None
    if item.op == "contains":
        words = [w for w in actual.split(",") if w and w != "n"]
        return '"' + ",".join([*words, wanted]) + '"'
    return None


def _blockers(kconfig: KconfigModel, values: Mapping[str, str], name: str,
              want_on: bool) -> dict[str, str]:
    """Assignments that lift what keeps NAME from its wanted state (on, or off)."""
    sym = kconfig.symbols.get(name)
    out: dict[str, str] = {}
    if sym is None:
        return out
    if not want_on:  # selected on: clear whoever selects it
        for rev in sym.selected_by:
            if (values.get(rev.source, "n") != "n" and not fixed_symbol(kconfig, rev.source)
                    and (rev.condition is None or _true(kconfig, values, rev.condition))):
                out[rev.source] = "n"
        return out
    if sym.direct_dep is None:
        return out
    for term in sym.direct_dep.conjuncts():
        if _true(kconfig, values, term):
            continue
        out.update(_make_true(kconfig, values, term))
    return out


def _true(kconfig: KconfigModel, values: Mapping[str, str], expr: Expr) -> bool:
    types = {n: kconfig.symbols[n].type for n in expr.symbols() if n in kconfig.symbols}
    return eval_expr(expr, values, types) != "n"


def _make_true(kconfig: KconfigModel, values: Mapping[str, str], term: Expr) -> dict[str, str]:
    """Assignments of settable symbols that make TERM true (empty: none found)."""
    if term.op == "sym":
        name = str(term.args[0])
        return {} if fixed_symbol(kconfig, name) else {name: "y"}
    if term.op == "not":
        inner = term.args[0]
        if isinstance(inner, Expr) and inner.op == "sym" and not fixed_symbol(kconfig,
                                                                            str(inner.args[0])):
            return {str(inner.args[0]): "n"}
        return {}
    if term.op == "and":
        out: dict[str, str] = {}
        for part in term.operands():
            if not _true(kconfig, values, part):
                out.update(_make_true(kconfig, values, part))
        return out
    if term.op == "or":
        for part in term.operands():
            got = _make_true(kconfig, values, part)
            if got:
                return got
    if term.op == "=" and len(term.args) == 2:
        left, right = term.args
        if (isinstance(left, Expr) and left.op == "sym" and isinstance(right, Expr)
                and right.op == "const" and not fixed_symbol(kconfig, str(left.args[0]))):
            return {str(left.args[0]): str(right.args[0])}
    return {}


Applied = tuple[Change, Subject, dict[str, tuple[str, str]]]


def config_fix(item: Item, symbol: str, actual: str, subject: Subject, apply: Apply,
               passes: Passes, target: Optional[str] = None) -> Optional[Applied]:
    """The config change making ITEM pass by setting SYMBOL, with its dependencies; None if
    Kconfig will not let it."""
    kconfig = subject.kconfig
    if symbol not in kconfig.symbols:
        return None
    value = target if target is not None else _target(item, actual)
    if value is None:
        return None
    assign: dict[str, str] = {symbol: value}
    for _ in range(MAX_ROUNDS):
        change = Change(config=tuple(assign.items()))
        new, changed = apply(change)
        if passes(item, new):
            return change, new, changed
        more: dict[str, str] = {}
        for name, wanted in assign.items():
            got = new.values.get(name, "n")
            if got == wanted:
                continue
            more.update(_blockers(kconfig, new.values, name, want_on=wanted != "n"))
        more = {k: v for k, v in more.items() if k not in assign}
        if not more:
            return None
        assign.update(more)
    return None
