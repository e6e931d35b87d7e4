"""kpolicy's own model of a Kconfig tree: small, frozen, picklable; kconfiglib never leaks out.

Everything outside kpolicy.kconfig (families, lint, resolve, bundled models) reads these types.
Locations are relative to the tree root.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Union

# Expression operators: "sym" (args: name), "const" (args: literal), "not" (1 arg),
# "and"/"or" (2 args), comparisons "=", "!=", "<", "<=", ">", ">=" (2 args).
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Location:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Message:
    """What the Kconfig preprocessor printed: `$(info,...)`, `$(warning-if,y,...)`, and C conf's
    parse warnings, with the file (relative to the tree) and line it came from."""

    kind: str  # "info" | "warning-if" | "warning" (a parse warning of C conf's menu_warn)
    file: str
    line: int
    text: str

    def __str__(self) -> str:
        """As C conf prints it, with control characters escaped. conf prints an info bare on
        stdout; kpolicy writes it to stderr with its origin, so that tree text cannot pass for
        kpolicy's own output."""
        from kpolicy.textio import printable

        sep = ":warning: " if self.kind == "warning" else ": "
        return f"{self.file}:{self.line}{sep}{printable(self.text)}"


@dataclass(frozen=True)
class Expr:
    """A Kconfig expression tree."""

    op: str
    args: tuple[Union[Expr, str], ...]

    @staticmethod
    def sym(name: str) -> Expr:
        return Expr("sym", (name,))

    @staticmethod
    def const(value: str) -> Expr:
        return Expr("const", (value,))

    def operands(self) -> Iterator[Expr]:
        for a in self.args:
            if isinstance(a, Expr):
                yield a

    def symbols(self) -> frozenset[str]:
        """Every symbol name the expression refers to."""
        if self.op == "sym":
            return frozenset({str(self.args[0])})
        out: frozenset[str] = frozenset()
        for a in self.operands():
            out |= a.symbols()
        return out

    def conjuncts(self) -> tuple[Expr, ...]:
        """The terms of a top-level `A && B && ...` (the expression itself otherwise)."""
        if self.op == "and":
            return tuple(t for a in self.operands() for t in a.conjuncts())
        return (self,)

    def requires(self, name: str) -> bool:
        """True when the expression can only be true if symbol NAME is (a plain `&& NAME` term)."""
        return any(t.op == "sym" and t.args[0] == name for t in self.conjuncts())

    def __str__(self) -> str:
        if self.op == "sym":
            return str(self.args[0])
        if self.op == "const":
            value = str(self.args[0])
            plain = value in ("y", "m", "n") or value.lstrip("-").isdigit()
            return value if plain else f'"{value}"'
        parts = [str(a) for a in self.args]
        if self.op == "not":
            inner = self.args[0]
            text = parts[0]
            if isinstance(inner, Expr) and inner.op not in ("sym", "const"):
                text = f"({text})"
            return f"!{text}"
        if self.op in COMPARISONS:
            return f"{parts[0]} {self.op} {parts[1]}"
        joiner = " && " if self.op == "and" else " || "
        wrapped = []
        for a, text in zip(self.args, parts):
            if isinstance(a, Expr) and a.op in ("and", "or") and a.op != self.op:
                text = f"({text})"
            wrapped.append(text)
        return joiner.join(wrapped)


@dataclass(frozen=True)
class Prompt:
    text: str
    condition: Optional[Expr]
    location: Location


@dataclass(frozen=True)
class Default:
    value: Expr
    condition: Optional[Expr]
    location: Location


@dataclass(frozen=True)
class Reverse:
    """One `select`/`imply` edge: SOURCE selects/implies TARGET if CONDITION."""

    source: str
    target: str
    condition: Optional[Expr]
    location: Location


@dataclass(frozen=True)
class Range:
    low: Expr
    high: Expr
    condition: Optional[Expr]
    location: Location


@dataclass(frozen=True)
class Dependency:
    """One `depends on` line as written (with `A if B` already expanded to `A || B = n`)."""

    expr: Expr
    location: Location


@dataclass(frozen=True)
class Definition:
    """One `config NAME` block: where it is, what it depends on there, its help text."""

    location: Location
    depends_on: Optional[Expr]  # `depends on` lines plus enclosing if/menu dependencies
    help: str = ""
    depends: tuple[Dependency, ...] = ()  # the block's own `depends on` lines


@dataclass(frozen=True)
class Symbol:
    name: str
    type: str  # "bool", "tristate", "int", "hex", "string" or "unknown"
    definitions: tuple[Definition, ...]
    prompts: tuple[Prompt, ...] = ()
    defaults: tuple[Default, ...] = ()
    selects: tuple[Reverse, ...] = ()
    implies: tuple[Reverse, ...] = ()
    selected_by: tuple[Reverse, ...] = ()
    implied_by: tuple[Reverse, ...] = ()
    ranges: tuple[Range, ...] = ()
    direct_dep: Optional[Expr] = None  # all definitions' dependencies, OR-ed as Kconfig does
    choice: Optional[str] = None  # name of the choice this symbol is a member of
    transitional: bool = False
    is_modules: bool = False  # the symbol carrying the `modules` attribute (MODULES)

    @property
    def location(self) -> Location:
        """Where the symbol is first defined."""
        return self.definitions[0].location

    @property
    def help(self) -> str:
        return next((d.help for d in self.definitions if d.help), "")

    @property
    def has_prompt(self) -> bool:
        return bool(self.prompts)


@dataclass(frozen=True)
class Choice:
    name: str  # the choice's own name, or a stable synthetic one ("<choice@file:line>")
    type: str
    prompt: Optional[Prompt]
    members: tuple[str, ...]
    defaults: tuple[Default, ...]
    direct_dep: Optional[Expr]
    location: Location
    optional: bool = False  # `optional` (before Linux 6.11): every member may be n


class LazySymbols(Mapping[str, "Symbol"]):
    """Symbols kept pickled one by one and decoded on first access.

    A cached model is read back in a few milliseconds this way: `kpolicy resolve` or
    `kconfig why` look at a handful of the ~19000 symbols and never pay for the others.
    """

    def __init__(self, blobs: Mapping[str, bytes]) -> None:
        self._blobs = dict(blobs)
        self._decoded: dict[str, Symbol] = {}

    @classmethod
    def of(cls, symbols: Mapping[str, Symbol]) -> LazySymbols:
        """Pickle every symbol of SYMBOLS separately."""
        protocol = pickle.HIGHEST_PROTOCOL
        return cls({n: pickle.dumps(s, protocol=protocol) for n, s in symbols.items()})

    def __getitem__(self, name: str) -> Symbol:
        sym = self._decoded.get(name)
        if sym is None:
            sym = pickle.loads(self._blobs[name])  # KeyError for an unknown name, as a dict
            self._decoded[name] = sym
        return sym

    def __contains__(self, name: object) -> bool:
        return name in self._blobs

    def __iter__(self) -> Iterator[str]:
        return iter(self._blobs)

    def __len__(self) -> int:
        return len(self._blobs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (LazySymbols, (self._blobs,))


@dataclass(frozen=True)
class MenuEntry:
    """One entry of the menu tree, in Kconfig order (what conf_write walks to write a .config)."""

    kind: str  # "symbol", "choice", "menu" or "comment"
    name: str  # the symbol's or choice's name; the prompt text of a menu or comment
    visible: Optional[Expr] = None  # menus and comments: prompt visibility incl. `visible if`
    children: tuple[MenuEntry, ...] = ()


@dataclass(frozen=True)
class KconfigModel:
    """A (tree, arch, toolchain, input config) evaluated the way `make olddefconfig` would."""

    version: str  # KERNELVERSION, e.g. "7.2.13"
    arch: str  # ARCH as given (x86_64)
    srcarch: str  # arch/ directory (x86)
    toolchain: str  # name of the toolchain profile that answered $(shell,...) and friends
    symbols: Mapping[str, Symbol]
    choices: tuple[Choice, ...]
    values: Mapping[str, str] = field(default_factory=dict)  # "y"/"m"/"n", numbers, strings
    written: frozenset[str] = frozenset()  # the symbols `make olddefconfig` writes to .config
    menu: tuple[MenuEntry, ...] = ()  # the menu tree, for writing .config in C conf's order
    mainmenu: str = ""  # e.g. "Linux/x86 7.2.13 Kernel Configuration"
    tool_derived: frozenset[str] = frozenset()  # symbols whose definition asks the toolchain
    types: Mapping[str, str] = field(default_factory=dict)  # name -> type, for eval_expr
    user: Mapping[str, str] = field(default_factory=dict)  # input .config values C conf accepted
    warnings: tuple[str, ...] = ()  # what reading the input .config warned about
    messages: tuple[Message, ...] = ()  # what the Kconfig files printed while being read

    def value(self, name: str) -> str:
        """Evaluated value of NAME ("n" for a bool/tristate that is off or unknown)."""
        return self.values.get(name, "n")


def positive_symbols(expr: Optional[Expr]) -> frozenset[str]:
    """Symbols EXPR can only be true with, looking through && and || but not through `!`."""
    if expr is None:
        return frozenset()
    if expr.op == "sym":
        return frozenset({str(expr.args[0])})
    if expr.op in ("and", "or"):
        out: frozenset[str] = frozenset()
        for a in expr.operands():
            out |= positive_symbols(a)
        return out
    if expr.op == "=" and any(a.op == "const" and a.args[0] in ("y", "m")
                              for a in expr.operands()):
        return frozenset(str(a.args[0]) for a in expr.operands() if a.op == "sym")
    return frozenset()


def merged_symbols(models: Mapping[str, KconfigModel]) -> dict[str, Symbol]:
    """Every symbol of every model; a name on several arches keeps its first model's view."""
    out: dict[str, Symbol] = {}
    for arch in sorted(models):
        symbols = models[arch].symbols
        for name in symbols:
            if name not in out:
                out[name] = symbols[name]  # a LazySymbols decodes only the views kept
    return out


def merged_choices(models: Mapping[str, KconfigModel]) -> dict[str, Choice]:
    """Every choice of every model by name."""
    out: dict[str, Choice] = {}
    for arch in sorted(models):
        for choice in models[arch].choices:
            out.setdefault(choice.name, choice)
    return out
