"""Which bool/tristate symbols some configuration of one arch can set to y or m.

A structural over-approximation from the Kconfig model, independent of any .config: a symbol
left out can never be y/m on that arch, whatever the user chooses. `config LS_SCFG_MSI def_bool
y if SOC_LS1021A || ARCH_LAYERSCAPE` is never y on x86_64, where neither symbol is defined.

A symbol can be y/m when a `select` of it can fire (its source can be y/m and the select's
condition can hold: select ignores dependencies), or when its dependencies can hold and a prompt,
a default with a value that can be y/m, or an `imply` from a symbol that can be y/m can set it.
An expression "can hold" under the same over-approximation: `A && B` when both can, `A || B`
when either can, `!A` unless A is the constant y, `A = y`/`A = m`/`A != n` when A can be y/m,
other comparisons always. The least fixpoint of these rules is computed over the symbols the
roots transitively refer to.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Optional

from kpolicy.kconfig.model import Expr, Symbol


def _referenced(sym: Symbol) -> set[str]:
    """Every symbol SYM's value can depend on."""
    exprs: list[Optional[Expr]] = [sym.direct_dep]
    exprs += [p.condition for p in sym.prompts]
    for d in sym.defaults:
        exprs += [d.value, d.condition]
    out: set[str] = set()
    for r in (*sym.selected_by, *sym.implied_by):
        out.add(r.source)
        exprs.append(r.condition)
    # one walk into OUT (Expr.symbols builds a set per subexpression)
    stack = [e for e in exprs if e is not None]
    while stack:
        e = stack.pop()
        if e.op == "sym":
            out.add(str(e.args[0]))
        else:
            stack.extend(a for a in e.args if isinstance(a, Expr))
    return out


def _can_hold(expr: Optional[Expr], possible: Collection[str]) -> bool:
    if expr is None:
        return True
    op = expr.op
    if op == "sym":
        return str(expr.args[0]) in possible
    if op == "const":
        return str(expr.args[0]) in ("y", "m")
    if op == "not":
        inner = expr.args[0]
        return not (isinstance(inner, Expr) and inner.op == "const" and inner.args[0] == "y")
    # loops, not all()/any() over generators (a quarter slower): a lint runs this millions
    # of times
    if op == "and":
        for a in expr.args:  # noqa: SIM110
            if isinstance(a, Expr) and not _can_hold(a, possible):
                return False
        return True
    if op == "or":
        for a in expr.args:  # noqa: SIM110
            if isinstance(a, Expr) and _can_hold(a, possible):
                return True
        return False
    operands = [a for a in expr.args if isinstance(a, Expr)]
    if len(operands) == 2:
        consts = [str(a.args[0]) for a in operands if a.op == "const"]
        names = [str(a.args[0]) for a in operands if a.op == "sym"]
        if len(consts) == 1 and len(names) == 1 and (
                (op == "=" and consts[0] in ("y", "m")) or (op == "!=" and consts[0] == "n")):
            return names[0] in possible
    return True


def _can_be_set(sym: Symbol, possible: Collection[str]) -> bool:
    if sym.type not in ("bool", "tristate"):
        return True  # int/hex/string values: comparisons with them are taken to hold anyway
    for r in sym.selected_by:
        if r.source in possible and _can_hold(r.condition, possible):
            return True
    if not _can_hold(sym.direct_dep, possible):
        return False
    for p in sym.prompts:
        if _can_hold(p.condition, possible):
            return True
    for d in sym.defaults:
        if _can_hold(d.condition, possible) and _can_hold(d.value, possible):
            return True
    for r in sym.implied_by:  # noqa: SIM110 (as in _can_hold)
        if r.source in possible and _can_hold(r.condition, possible):
            return True
    return False


def possible_symbols(symbols: Mapping[str, Symbol], roots: Iterable[str],
                     tool_derived: Collection[str] = (),
                     held_off: Collection[str] = ()) -> frozenset[str]:
    """The symbols among ROOTS (and those they refer to) that can be y or m (or have any value,
    for int/hex/string) in some configuration of the model SYMBOLS; names SYMBOLS does not
    define never can. TOOL_DERIVED (KconfigModel.tool_derived) were answered by one toolchain
    profile: another compiler may answer y, so they count as settable when defined. HELD_OFF
    are taken as n whatever the model allows (COMPILE_TEST, for what an arch really runs)."""
    closure: dict[str, Symbol] = {}
    todo = [r for r in roots if r in symbols]
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure[name] = sym = symbols[name]
        todo.extend(n for n in _referenced(sym) if n not in closure and n in symbols)
    possible = {n for n in closure if n in tool_derived}
    changed = True
    while changed:
        changed = False
        for name, sym in closure.items():
            if name not in possible and name not in held_off and _can_be_set(sym, possible):
                possible.add(name)
                changed = True
    return frozenset(possible)
