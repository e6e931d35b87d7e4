"""Kconfig evaluation with the semantics of the kernel's own scripts/kconfig (Linux 7.2).

`eval_expr` is the pure tristate evaluation of one expression over a value map (what resolve uses
without a tree). `evaluate` computes every symbol of a model the way `make olddefconfig` does:
user values from a .config where the symbol is visible, otherwise defaults, `select` and `imply`,
choices, ranges. Where kconfiglib drifted from C conf, C wins; the differences that matter:

- an int/hex symbol without a value is "0"/"0x0", not "" (so `FOO = 0` is true for it);
- comparisons parse both sides as C's strtoll/strtoull do (base by type; base 0 for literals)
  and fall back to strcmp only when either side is not a number;
- choices pick the first visible member the user set to y, the last such line of the .config
  winning, then the choice default, then the first visible unset member (Linux >= 6.11);
  before 6.11 (`legacy`), the last member set to y if visible, else the choice default, and an
  int/hex value from the .config outside the active range is dropped instead of clamped;
- transitional symbols are always visible (their old .config value counts) and never written.
"""

from __future__ import annotations

import string
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Callable, Optional

from kpolicy.kconfig.model import Choice, Default, Expr, Reverse, Symbol

TRISTATE_NAMES = ("n", "m", "y")
_TRI = {"n": 0, "m": 1, "y": 2}
_U64 = 1 << 64
_TYPE_INITIAL = {"int": "0", "hex": "0x0", "string": "", "bool": "n", "tristate": "n"}

# (type, string value) of a name: how C's sym_get_string_value sees a symbol.
Lookup = Callable[[str], tuple[str, str]]


def initial_value(type_: str) -> str:
    """The value C conf gives a symbol of TYPE_ before anything sets it ("0" for int, ...)."""
    return _TYPE_INITIAL.get(type_, "")


_MAX_DIGITS = {8: 22, 10: 20, 16: 16}  # digits of a 64-bit value in each base


def _c_strtol(text: str, base: int) -> Optional[int]:
    """C strtoll/strtoull on TEXT, or None when expr_parse_string would call it a string."""
    unsigned = base == 16  # S_HEX: strtoull
    s = text.lstrip(" \t\n\r\f\v")
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if base in (0, 16) and s[:2].lower() == "0x" and s[2:3] and s[2] in string.hexdigits:
        s, base = s[2:], 16
    elif base == 0:
        base = 8 if s.startswith("0") and len(s) > 1 else 10
    digits = "0123456789abcdef"[:base]
    if not s or any(c.lower() not in digits for c in s):
        return None
    # beyond 64 bits strtoll/strtoull set ERANGE, and expr_parse_string calls it a string
    if len(s.lstrip("0")) > _MAX_DIGITS[base]:
        return None
    value = sign * int(s, base)
    low, high = (-(2**64) + 1, 2**64 - 1) if unsigned else (-(2**63), 2**63 - 1)
    return value if low <= value <= high else None


def _parse_string(text: str, type_: str) -> Optional[tuple[bool, int]]:
    """expr_parse_string: (unsigned?, value) or None for k_string."""
    if type_ in ("bool", "tristate"):
        return (False, _TRI.get(text, -1))
    base = {"int": 10, "hex": 16}.get(type_, 0)
    value = _c_strtol(text, base)
    if value is None:
        return None
    if type_ == "hex":
        if not -_U64 < value < _U64:
            return None  # ERANGE
        return (True, value % _U64)
    if not -(1 << 63) <= value < (1 << 63):
        return None
    return (False, value)


def compare(op: str, left: tuple[str, str], right: tuple[str, str]) -> int:
    """C's relation between two (type, value) operands, as a tristate 0 or 2."""
    (t1, s1), (t2, s2) = left, right
    p1 = p2 = None
    if t1 != "string" or t2 != "string":
        p1, p2 = _parse_string(s1, t1), _parse_string(s2, t2)
    if p1 is None or p2 is None:
        res = (s1 > s2) - (s1 < s2)
    elif p1[0] or p2[0]:
        u1, u2 = p1[1] % _U64, p2[1] % _U64
        res = (u1 > u2) - (u1 < u2)
    else:
        res = (p1[1] > p2[1]) - (p1[1] < p2[1])
    outcome = {
        "=": res == 0, "!=": res != 0, "<": res < 0, "<=": res <= 0, ">": res > 0, ">=": res >= 0,
    }[op]
    return 2 if outcome else 0


def _operand(e: object, lookup: Lookup) -> tuple[str, str]:
    assert isinstance(e, Expr)
    if e.op == "const":
        value = str(e.args[0])
        return ("tristate" if value in _TRI else "unknown", value)
    return lookup(str(e.args[0]))


def tri_of(expr: Optional[Expr], lookup: Lookup) -> int:
    """Tristate value 0/1/2 of EXPR (None is y) with symbols read through LOOKUP."""
    if expr is None:
        return 2
    op = expr.op
    if op in ("sym", "const"):
        type_, value = _operand(expr, lookup)
        return _TRI.get(value, 0) if type_ in ("bool", "tristate") else 0
    if op == "not":
        return 2 - tri_of(expr.args[0], lookup)  # type: ignore[arg-type]
    if op == "and":
        a = tri_of(expr.args[0], lookup)  # type: ignore[arg-type]
        return 0 if a == 0 else min(a, tri_of(expr.args[1], lookup))  # type: ignore[arg-type]
    if op == "or":
        a = tri_of(expr.args[0], lookup)  # type: ignore[arg-type]
        return 2 if a == 2 else max(a, tri_of(expr.args[1], lookup))  # type: ignore[arg-type]
    return compare(op, _operand(expr.args[0], lookup), _operand(expr.args[1], lookup))


def value_lookup(values: Mapping[str, str], types: Mapping[str, str]) -> Lookup:
    """A Lookup over plain maps: unknown names are undefined symbols (their value is their name)."""

    def lookup(name: str) -> tuple[str, str]:
        type_ = types.get(name)
        if type_ is None or type_ == "unknown":
            return ("unknown", name)
        value = values.get(name)
        return (type_, initial_value(type_) if value is None else value)

    return lookup


def eval_expr(expr: Expr, values: Mapping[str, str], types: Mapping[str, str]) -> str:
    """The tristate ("n"/"m"/"y") of EXPR over VALUES (missing: C's initial value) and TYPES."""
    return TRISTATE_NAMES[tri_of(expr, value_lookup(values, types))]


@dataclass(frozen=True)
class UserValue:
    """One .config assignment as C conf_set_sym_val accepted it for the symbol's type."""

    value: str  # "y"/"m"/"n" for bool/tristate, the unescaped text otherwise
    order: int  # position of the (last) assignment: later lines take priority in a choice


def user_values(
    raw: Mapping[str, str], types: Mapping[str, str], warn: Callable[[str], None]
) -> dict[str, UserValue]:
    """Interpret raw .config values (text after `=`; "n" for `is not set`) per symbol type."""
    out: dict[str, UserValue] = {}
    for order, (name, text) in enumerate(raw.items()):
        type_ = types.get(name)
        if type_ is None:  # C conf skips it too (and warns with KCONFIG_WARN_UNKNOWN_SYMBOLS)
            warn(f"unknown symbol: {name}")
            continue
        if type_ == "unknown":
            continue
        value: Optional[str] = None
        if type_ in ("bool", "tristate"):
            first = text[:1]
            if first == "m" and type_ == "tristate":
                value = "m"
            elif first in ("y", "n"):
                value = first
        elif type_ == "string":
            if not text.startswith('"'):
                continue  # C ignores an unquoted string without a word
            value = unquote(text)
            if value is None:
                warn(f"invalid string found for {name}")
                continue
        elif valid_number(text, type_):
            value = text
        if value is None:
            warn(f"symbol value '{text}' invalid for {name}")
            continue
        out[name] = UserValue(value, order)
    return out


def unquote(text: str) -> Optional[str]:
    """The content of a .config string value `"..."` with `\\` escapes removed; None if unclosed."""
    out: list[str] = []
    i = 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return "".join(out)
        if c == "\\":
            i += 1
            if i >= len(text):
                break
            c = text[i]
        out.append(c)
        i += 1
    return None


def valid_number(text: str, type_: str) -> bool:
    """sym_string_valid for int and hex."""
    if type_ == "int":
        body = text[1:] if text.startswith("-") else text
        return body.isdigit() and body.isascii() and not (body.startswith("0") and len(body) > 1)
    body = text[2:] if text[:2] in ("0x", "0X") else text
    return bool(body) and all(c in "0123456789abcdefABCDEF" for c in body)


@dataclass(frozen=True)
class Evaluation:
    """Every symbol's value (C's curr, written or not) and which ones conf_write would write."""

    values: dict[str, str]
    written: frozenset[str]


class _Evaluator:
    """sym_calc_value over kpolicy's model: recursive, memoised, cycles cut as C cuts them."""

    def __init__(
        self,
        symbols: Mapping[str, Symbol],
        choices: tuple[Choice, ...],
        user: Mapping[str, UserValue],
        legacy: bool,
    ) -> None:
        self.symbols = symbols
        self.legacy = legacy
        self.user = user
        self.choice_of = {c.name: c for c in choices}
        self.values: dict[str, str] = {}
        self.written: set[str] = set()
        self.visible: dict[str, int] = {}
        self.choice_pick: dict[str, Optional[str]] = {}
        self.modules_val = 2
        modules = next((s for s in symbols.values() if s.is_modules), None)
        if modules is not None:
            self.modules_val = 0  # while MODULES itself is computed, tristates act as bools
            self.modules_val = _TRI.get(self.value(modules.name), 0)

    def lookup(self, name: str) -> tuple[str, str]:
        sym = self.symbols.get(name)
        if sym is None or sym.type == "unknown":
            return ("unknown", name)
        return (sym.type, self.value(name))

    def tri(self, expr: Optional[Expr]) -> int:
        return tri_of(expr, self.lookup)

    def effective_type(self, sym: Symbol) -> str:
        if sym.type == "tristate" and self.modules_val == 0:
            return "bool"
        return sym.type

    def visibility(self, sym: Symbol) -> int:
        if sym.name in self.visible:
            return self.visible[sym.name]
        if sym.transitional:
            vis = 2
        else:
            vis = 0
            for p in sym.prompts:
                vis = max(vis, self.tri(p.condition))
            if vis == 1 and (sym.type != "tristate" or self.modules_val == 0):
                vis = 2
        self.visible[sym.name] = vis
        return vis

    def _bool_clamp(self, sym: Symbol, tri: int) -> int:
        return 2 if tri == 1 and self.effective_type(sym) == "bool" else tri

    def value(self, name: str) -> str:
        done = self.values.get(name)
        if done is not None:
            return done
        sym = self.symbols[name]
        self.values[name] = initial_value(sym.type)  # what a recursive reference sees
        self.values[name] = result = self._calc(sym)
        if sym.transitional:
            self.written.discard(name)
        return result

    def _calc(self, sym: Symbol) -> str:
        vis = self.visibility(sym)
        if vis:
            self.written.add(sym.name)
        if sym.type in ("bool", "tristate"):
            return TRISTATE_NAMES[self._calc_tristate(sym, vis)]
        return self._calc_string(sym, vis)

    def _calc_tristate(self, sym: Symbol, vis: int) -> int:
        if sym.choice is not None:
            pick = self._choice(self.choice_of[sym.choice])
            return 2 if vis and pick == sym.name else 0
        dir_dep = self._bool_clamp(sym, self.tri(sym.direct_dep))
        rev_dep = self._bool_clamp(sym, self._reverse(sym.selected_by))
        user = self.user.get(sym.name)
        if vis and user is not None:
            new = min(_TRI[user.value], vis)
        else:
            if rev_dep:
                self.written.add(sym.name)
            new = 0
            default = self._default(sym)
            if default is not None:
                new = min(self.tri(default.value), self.tri(default.condition))
                if new:
                    self.written.add(sym.name)
            implied = self._bool_clamp(sym, self._reverse(sym.implied_by))
            if implied:
                self.written.add(sym.name)
                new = min(max(new, implied), dir_dep)
        new = max(new, rev_dep)
        return self._bool_clamp(sym, new)

    def _reverse(self, edges: tuple[Reverse, ...]) -> int:
        best = 0
        for r in edges:
            best = max(best, min(self.tri(Expr.sym(r.source)), self.tri(r.condition)))
            if best == 2:
                break
        return best

    def _default(self, sym: Symbol) -> Optional[Default]:
        for d in sym.defaults:
            if self.tri(d.condition):
                return d
        return None

    def _calc_string(self, sym: Symbol, vis: int) -> str:
        user = self.user.get(sym.name)
        if user is not None and self.legacy and sym.type in ("int", "hex") \
                and self._clamp_range(sym, user.value) != user.value:
            user = None  # conf_read before 6.11 dropped out-of-range values
        if vis and user is not None:
            new = user.value
        else:
            new = initial_value(sym.type)
            default = self._default(sym)
            if default is not None and default.value.op in ("sym", "const"):
                self.written.add(sym.name)
                new = _operand(default.value, self.lookup)[1]
        if sym.type in ("int", "hex"):
            new = self._clamp_range(sym, new)
        return new

    def _clamp_range(self, sym: Symbol, value: str) -> str:
        base = 10 if sym.type == "int" else 16
        for r in sym.ranges:
            if not self.tri(r.condition):
                continue
            val = _lenient_strtoll(value, base)
            low = _operand(r.low, self.lookup)
            if val >= _range_number(low, base):
                high = _operand(r.high, self.lookup)
                if val <= _range_number(high, base):
                    return value
                return high[1]
            return low[1]
        return value

    def _choice(self, choice: Choice) -> Optional[str]:
        if choice.name in self.choice_pick:
            return self.choice_pick[choice.name]
        self.choice_pick[choice.name] = None  # a member asked again while we decide
        members = [self.symbols[m] for m in choice.members]
        visible = [m for m in members if self.visibility(m)]
        if self.legacy:
            pick = self._legacy_choice(choice, visible)
            for m in visible:
                self.written.add(m.name)
            self.choice_pick[choice.name] = pick
            return pick
        # conf_read moves every member it reads to the front: the last line has priority.
        by_priority = sorted(
            visible, key=lambda m: -self.user[m.name].order if m.name in self.user else 1
        )
        pick = next((m.name for m in by_priority
                     if m.name in self.user and self.user[m.name].value == "y"), None)
        if pick is None:
            pick = self._choice_default(choice, visible)
            if pick is not None and pick in self.user and self.user[pick].value == "n":
                pick = None
        if pick is None:
            pick = next((m.name for m in visible if m.name not in self.user), None)
        if pick is None and by_priority:
            pick = by_priority[-1].name
        for m in visible:
            self.written.add(m.name)
        self.choice_pick[choice.name] = pick
        return pick

    def _legacy_choice(self, choice: Choice, visible: list[Symbol]) -> Optional[str]:
        chosen = [n for n in choice.members if n in self.user and self.user[n].value == "y"]
        if chosen:
            last = max(chosen, key=lambda n: self.user[n].order)
            if self.visibility(self.symbols[last]):
                return last
        elif choice.optional:
            return None
        return self._choice_default(choice, visible)

    def _choice_default(self, choice: Choice, visible: list[Symbol]) -> Optional[str]:
        names = {m.name for m in visible}
        for d in choice.defaults:
            if not self.tri(d.condition):
                continue
            target = str(d.value.args[0]) if d.value.op == "sym" else None
            if target in names:
                return target
        return visible[0].name if visible else None


    def rev_dep(self, sym: Symbol) -> int:
        return self._bool_clamp(sym, self._reverse(sym.selected_by))

    def changeable(self, sym: Symbol) -> bool:
        """sym_is_changeable: the prompt offers more than what selects force."""
        return self.visibility(sym) > self.rev_dep(sym)

    def string_default(self, sym: Symbol) -> str:
        """sym_get_string_default: the value SYM would take without a user value."""
        default = self._default(sym)
        if sym.type not in ("bool", "tristate"):
            text = _operand(default.value, self.lookup)[1] if default is not None and \
                default.value.op in ("sym", "const") else ""
            return text or initial_value(sym.type)
        val = min(self.tri(default.value), self.tri(default.condition)) if default else 0
        val = max(val, self.rev_dep(sym))
        if val == 1 and (sym.type == "bool" or (self.modules_val == 0 and sym.choice is None)):
            val = 2
        return TRISTATE_NAMES[max(val, self._bool_clamp(sym, self._reverse(sym.implied_by)))]

    def has_user_value(self, sym: Symbol) -> bool:
        """sym_has_value, including what sym_calc_value adds since 7.x: a symbol whose default
        is a transitional symbol the .config sets counts as set by the user."""
        if sym.name in self.user:
            return True
        default = self._default(sym) if sym.choice is None else None
        if default is None or default.value.op != "sym":
            return False
        source = self.symbols.get(str(default.value.args[0]))
        return source is not None and source.transitional and source.name in self.user

    def choice_default(self, name: str) -> Optional[str]:
        choice = self.choice_of[name]
        visible = [self.symbols[m] for m in choice.members if self.visibility(self.symbols[m])]
        return self._choice_default(choice, visible)


def evaluator(symbols: Mapping[str, Symbol], choices: tuple[Choice, ...],
              user: Mapping[str, UserValue], *, legacy: bool = False) -> _Evaluator:
    """Every symbol evaluated as `make olddefconfig` does, kept for the questions the config
    targets ask (visibility, defaults, what selects force)."""
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 100_000))
    try:
        ev = _Evaluator(symbols, choices, user, legacy)
        for name in symbols:
            ev.value(name)
    finally:
        sys.setrecursionlimit(old_limit)
    return ev


def new_symbols(ev: _Evaluator, order: list[str]) -> list[str]:
    """The symbols `make listnewconfig` lists (check_conf), of ORDER: without a value in the
    .config, visible, and changeable. EV: from evaluator()."""
    return [n for n in order if not ev.has_user_value(ev.symbols[n])
            and not ev.symbols[n].transitional
            and ev.symbols[n].type != "unknown" and ev.visibility(ev.symbols[n])
            and ev.changeable(ev.symbols[n])]


def defconfig_symbols(ev: _Evaluator, order: list[str]) -> list[str]:
    """The symbols `make savedefconfig` writes (conf_write_defconfig), of ORDER (menu order):
    written, changeable, and not at their default value (a choice's default member at y
    counts as default). EV: from evaluator()."""
    out = []
    for name in order:
        sym = ev.symbols[name]
        if name not in ev.written or sym.transitional or sym.type == "unknown" \
                or not ev.changeable(sym) or ev.value(name) == ev.string_default(sym):
            continue
        if sym.choice is not None and ev.value(name) == "y" \
                and ev.choice_default(sym.choice) == name:
            continue
        out.append(name)
    return out


def _lenient_strtoll(text: str, base: int) -> int:
    """strtoll(text, NULL, base): the longest numeric prefix, 0 when there is none."""
    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    if base == 16 and s[:2].lower() == "0x":
        s = s[2:]
    digits = "0123456789abcdef"[:base]
    end = 0
    while end < len(s) and s[end].lower() in digits:
        end += 1
    prefix = s[:end].lstrip("0")
    if not prefix:
        return 0
    if len(prefix) > _MAX_DIGITS[base]:  # strtoll saturates (ERANGE)
        return 2**63 - 1 if sign > 0 else -(2**63)
    return max(-(2**63), min(2**63 - 1, sign * int(prefix, base)))


def _range_number(operand: tuple[str, str], base: int) -> int:
    type_, text = operand
    return _lenient_strtoll(text, {"int": 10, "hex": 16}.get(type_, base))


def evaluate(
    symbols: Mapping[str, Symbol],
    choices: tuple[Choice, ...],
    user: Mapping[str, UserValue],
    *,
    legacy: bool = False,
) -> Evaluation:
    """Every symbol's value as `make olddefconfig` computes it from USER (LEGACY: before 6.11)."""
    ev = evaluator(symbols, choices, user, legacy=legacy)
    written = frozenset(n for n in ev.written
                        if not symbols[n].transitional and symbols[n].type != "unknown")
    return Evaluation(values=ev.values, written=written)


def dependents(symbols: Mapping[str, Symbol], choices: tuple[Choice, ...]) -> dict[str, set[str]]:
    """For each symbol, the symbols whose value refers to it (dependencies, prompt conditions,
    defaults, ranges, select/imply edges, fellow members of a choice): what to recompute when
    it changes."""
    out: dict[str, set[str]] = {}
    members = {c.name: c for c in choices}
    for name, sym in symbols.items():
        exprs: list[Optional[Expr]] = [sym.direct_dep]
        exprs += [p.condition for p in sym.prompts]
        exprs += [e for d in sym.defaults for e in (d.value, d.condition)]
        exprs += [e for r in sym.ranges for e in (r.low, r.high, r.condition)]
        exprs += [r.condition for r in sym.selected_by + sym.implied_by]
        refs = {n for e in exprs if isinstance(e, Expr) for n in e.symbols()}
        refs |= {r.source for r in sym.selected_by + sym.implied_by}
        if sym.choice and sym.choice in members:
            choice = members[sym.choice]
            refs |= set(choice.members)
            for e in (choice.direct_dep, *(d.value for d in choice.defaults),
                      *(d.condition for d in choice.defaults)):
                if isinstance(e, Expr):
                    refs |= e.symbols()
        for ref in refs:
            out.setdefault(ref, set()).add(name)
    return out


def _modules_symbol(symbols: Mapping[str, Symbol]) -> str:
    """The name of the `modules` symbol ("" if none): MODULES in every kernel kpolicy reads,
    looked at first so that lazily decoded symbols are not all decoded to find it."""
    sym = symbols.get("MODULES")
    if sym is not None and sym.is_modules:
        return sym.name
    return next((s.name for s in symbols.values() if s.is_modules), "")


def reevaluate(
    symbols: Mapping[str, Symbol],
    choices: tuple[Choice, ...],
    user: Mapping[str, UserValue],
    base: Mapping[str, str],
    changed: Iterable[str],
    index: Mapping[str, set[str]],
    *,
    legacy: bool = False,
) -> dict[str, str]:
    """evaluate()'s values when only the user values of CHANGED differ from those BASE was
    evaluated from: the symbols that can depend on CHANGED (INDEX: dependents()) are computed
    again, the others keep BASE's values."""
    affected: set[str] = set()
    work = [n for n in changed if n in symbols]
    while work:
        name = work.pop()
        if name in affected:
            continue
        affected.add(name)
        work.extend(d for d in index.get(name, ()) if d not in affected)
    if any(symbols[n].is_modules for n in affected):  # every tristate may change
        return dict(evaluate(symbols, choices, user, legacy=legacy).values)
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 100_000))
    try:
        ev = _Evaluator({}, choices, user, legacy)
        ev.symbols = symbols
        ev.modules_val = _TRI.get(base.get(_modules_symbol(symbols), "y"), 2)
        ev.values = {n: v for n, v in base.items() if n not in affected}
        for name in affected:
            ev.value(name)
    finally:
        sys.setrecursionlimit(old_limit)
    return ev.values
