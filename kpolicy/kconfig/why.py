"""Why a symbol has its value: every prompt, dependency, default, select and imply, with where it
is written and the value of each term (the answer to "why can't I enable X").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from kpolicy.errors import KpolicyError
from kpolicy.kconfig.evaluate import TRISTATE_NAMES, tri_of, value_lookup
from kpolicy.kconfig.model import Expr, KconfigModel, Location

_NUMBER = re.compile(r"^-?(0x[0-9a-fA-F]+|[0-9]+)$")


@dataclass(frozen=True)
class Clause:
    """One property of the symbol: its kind, text, location, value and the values of its terms."""

    # "prompt", "depends on", "inherited", "default", "selected by", "implied by" or "range"
    kind: str
    text: str  # the expression (for a default: "VALUE if CONDITION")
    location: Location
    value: str  # "y"/"m"/"n": the condition's value (a default: whether it applies)
    terms: tuple[tuple[str, str], ...]  # (symbol, value) for every symbol the clause mentions
    blocking: bool = False  # a dependency that is n, or a condition that keeps a default off


@dataclass(frozen=True)
class Why:
    """The value of a symbol and everything that decided it."""

    name: str
    type: str
    value: str
    written: bool
    user_value: Optional[str]  # what the input .config asked for, if anything
    visible: str  # "y"/"m"/"n": whether a prompt is visible, so a user value counts
    location: Location
    clauses: tuple[Clause, ...]


def explain(model: KconfigModel, name: str) -> Why:
    """NAME's value in MODEL with each prompt, dependency, default, select and imply behind it."""
    sym = model.symbols.get(name)
    if sym is None:
        raise KpolicyError(f"no symbol {name} in the Kconfig of {model.srcarch} {model.version}")
    lookup = value_lookup(model.values, model.types)

    def value(expr: Optional[Expr]) -> str:
        return TRISTATE_NAMES[tri_of(expr, lookup)]

    def terms(*exprs: Optional[Expr]) -> tuple[tuple[str, str], ...]:
        names: list[str] = []
        for e in exprs:
            if e is not None:
                names += sorted(e.symbols() - set(names))
        # Unquoted numbers are symbols to Kconfig too (undefined ones, valued by their name).
        shown = [n for n in names if n in model.types or not _NUMBER.match(n)]
        return tuple((n, model.values.get(n, "(undefined)")) for n in shown)

    def clause(kind: str, text: str, where: Location, cond: Optional[Expr],
               *mentioned: Optional[Expr]) -> Clause:
        v = value(cond)
        return Clause(kind, text, where, v, terms(cond, *mentioned), blocking=v == "n")

    clauses: list[Clause] = []
    vis = "n"
    for p in sym.prompts:
        c = clause("prompt", f'"{p.text}"' + (f" if {p.condition}" if p.condition else ""),
                   p.location, p.condition)
        clauses.append(c)
        vis = max(vis, c.value, key=TRISTATE_NAMES.index)
    if sym.transitional:
        vis = "y"
    for d in sym.definitions:
        own: set[Expr] = set()
        for dep in d.depends:
            clauses.append(clause("depends on", str(dep.expr), dep.location, dep.expr))
            own.update(dep.expr.conjuncts())
        inherited = [t for t in (d.depends_on.conjuncts() if d.depends_on else ()) if t not in own]
        for t in inherited:
            clauses.append(clause("inherited", f"{t}  (enclosing if/menu/choice)", d.location, t))
    for df in sym.defaults:
        text = str(df.value) + (f" if {df.condition}" if df.condition else "")
        clauses.append(clause("default", text, df.location, df.condition, df.value))
    for r in sym.selected_by:
        cond = Expr("and", (Expr.sym(r.source), r.condition)) if r.condition else Expr.sym(r.source)
        text = r.source + (f" if {r.condition}" if r.condition else "")
        clauses.append(clause("selected by", text, r.location, cond))
    for r in sym.implied_by:
        cond = Expr("and", (Expr.sym(r.source), r.condition)) if r.condition else Expr.sym(r.source)
        text = r.source + (f" if {r.condition}" if r.condition else "")
        clauses.append(clause("implied by", text, r.location, cond))
    for rg in sym.ranges:
        text = f"{rg.low} {rg.high}" + (f" if {rg.condition}" if rg.condition else "")
        clauses.append(clause("range", text, rg.location, rg.condition, rg.low, rg.high))
    return Why(
        name=name,
        type=sym.type,
        value=model.values.get(name, "n"),
        written=name in model.written,
        user_value=model.user.get(name),
        visible=vis,
        location=sym.location,
        clauses=tuple(clauses),
    )


def format_why(why: Why) -> str:
    """WHY as text: the value, then one line per clause with location and term values."""
    out = [f"{why.name}={why.value}  ({why.type}, {why.location})"
           + ("" if why.written else "  [not written to .config]")]
    if why.user_value is not None:
        counted = why.visible != "n"
        out.append(f"  .config sets {why.user_value}"
                   + ("" if counted else "  (ignored: no visible prompt)"))
    for c in why.clauses:
        mark = ""
        if c.blocking and c.kind in ("depends on", "inherited", "prompt"):
            mark = "  <- blocks"
        out.append(f"  {c.kind} {c.text}  [{c.value}]  {c.location}{mark}")
        if c.terms:
            out.append("      " + ", ".join(f"{n}={v}" for n, v in c.terms))
    return "\n".join(out) + "\n"
