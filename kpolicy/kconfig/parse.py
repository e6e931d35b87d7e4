"""Reading a tree's Kconfig with kconfiglib, taught what Linux 6.1-7.2 use, into kpolicy's model.

kconfiglib 14.1 (2020) stops at three constructs of current kernels. This module subclasses its
Kconfig class and rewrites tokens as lines are read, without copying its code:

- `modules` (the bare attribute, 5.x+): read as kconfiglib's `option modules`;
- `transitional` (7.x): the symbol is recorded as transitional (always visible, never written);
- `depends on A if B` (7.x): `A || (B = n)`, the expansion C's menu_add_dep makes.

It also confines the reader to the tree (no absolute `source`, nothing reached through `..` or a
symlink outside it, bounded nesting and file count), reads every file through kpolicy.textio,
answers `$(shell,...)` from a toolchain profile, takes environment variables from a private map
(os.environ is only touched for the names kconfiglib reads while constructing, and restored), and
turns kconfiglib's errors into KpolicyError with file and line.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import kconfiglib

from kpolicy import treefs
from kpolicy.errors import KconfigParseError, KpolicyError
from kpolicy.kconfig.kconfiglib_surface import (
    FUNCTIONS_MODULE,
    ITEM_END,
    ITEM_START,
    PROPERTY_KIND,
    T_CONFIG,
    T_DEPENDS,
    T_ENV,
    T_IF,
    T_MENUCONFIG,
    T_MODULES,
    T_OPTION,
    TYPE_TOKENS,
)
from kpolicy.kconfig.model import (
    Choice,
    Default,
    Definition,
    Dependency,
    Expr,
    Location,
    MenuEntry,
    Message,
    Prompt,
    Range,
    Reverse,
    Symbol,
)
from kpolicy.kconfig.toolchain import Toolchain
from kpolicy.longlived import garbage_left_to_exit, long_lived
from kpolicy.tree import KernelTree

MAX_SOURCE_DEPTH = 32
MAX_FILES = 20_000
# Marks a `source` pattern among ParsedKconfig.files: no relative path starts with "/".
SOURCE_PATTERN = "/source "
MAX_EXPANDED_CHARS = 64 * 1024 * 1024  # Linux 7.2 x86_64 spends ~100 KB of this budget
# Each macro call and each backslash in a string copies the rest of the line (kconfiglib's
# expansion): lines are bounded, and a call is charged the line's length as well.
MAX_LINE = 64 * 1024  # Linux 7.2's longest Kconfig line is well under 1 KB
# Variables that describe the tree and the arch, not the tools: using them is not a probe.
TREE_ENV = frozenset({"ARCH", "SRCARCH", "SUBARCH", "HEADER_ARCH", "KERNELVERSION", "srctree",
                      "CROSS_COMPILE_COMPAT"})
# What kconfiglib reads from os.environ while it constructs; set to neutral values for the load.
_KCONFIGLIB_ENV = ("srctree", "CONFIG_", "KCONFIG_FUNCTIONS", "KCONFIG_WARN_UNDEF",
                   "KCONFIG_STRICT", "KCONFIG_WARN_UNDEF_ASSIGN")

_T = kconfiglib  # its public expression constants (AND, OR, EQUAL, ...)
_RELATIONS = {_T.EQUAL: "=", _T.UNEQUAL: "!=", _T.LESS: "<", _T.LESS_EQUAL: "<=",
              _T.GREATER: ">", _T.GREATER_EQUAL: ">="}
_ERROR_AT = re.compile(r"^\s*(?:warning: )?([^\s:]+):(\d+):\s*(.*)$", re.S)
# A preprocessor variable name as C's lexer reads it: `$` not opening a reference is a letter.
_DOLLAR_ASSIGNMENT = re.compile(r"\s*((?:[A-Za-z0-9_-]|\$(?!\())+)\s*(=|:=|\+=)\s*(.*)")
# scripts/kconfig stops at a file sourced twice since Linux 6.13 (util.c, file_lookup).
REPEATED_SOURCE_IS_ERROR = (6, 13, 0)
_TRANSITIONAL_ERROR = "error: transitional symbols can only have help sections"


@dataclass(frozen=True)
class ParsedKconfig:
    """A tree's Kconfig for one arch and toolchain, before any .config is applied."""

    symbols: Mapping[str, Symbol]
    types: dict[str, str]
    choices: tuple[Choice, ...]
    menu: tuple[MenuEntry, ...]
    mainmenu: str
    tool_derived: frozenset[str]
    # (path relative to the tree, sha256) of every file read, and (SOURCE_PATTERN + pattern,
    # matches_digest) of every `source` glob and of every `osource` of an absent file
    files: tuple[tuple[str, str], ...]
    messages: tuple[Message, ...] = ()  # $(info), $(warning-if), conf's parse warnings


@contextlib.contextmanager
def _scoped_environ(values: Mapping[str, Optional[str]]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _KernelKconfig(kconfiglib.Kconfig):  # type: ignore[misc]
    """kconfiglib's reader with Linux 6.1-7.2 syntax, tree confinement and toolchain answers."""

    _tokens: Any  # kconfiglib's current line, as tokens, and the read position in it
    _tokens_i: int

    def __init__(self, root: Path, env: Mapping[str, str], toolchain: Toolchain,
                 version: tuple[int, int, int] = (0, 0, 0)) -> None:
        self.kp_root = root
        self.kp_version = version
        self.kp_messages: list[Message] = []
        self.kp_sourced: dict[str, tuple[str, int]] = {}  # file -> where it was first sourced
        self.kp_env = env
        self.kp_toolchain = toolchain
        self.kp_files: dict[str, str] = {}
        self.kp_patterns: dict[str, str] = {}  # see ParsedKconfig.files
        self.kp_physical: dict[str, str] = {}  # file name as sourced -> _physical's answer
        self.kp_probe = False  # set when the line being read asked the toolchain
        self.kp_expanded = 0  # what all macro expansions produced so far, see _fn_val
        self.kp_line_len = 0  # of the line being expanded, charged per call
        self.kp_tainted_vars: set[str] = set()
        self.kp_tool_syms: set[str] = set()
        self.kp_transitional: set[str] = set()
        self.kp_modules: Optional[str] = None
        self.kp_item: Optional[tuple[str, int]] = None
        self.kp_sym: Optional[str] = None
        self.kp_lines: dict[tuple[str, int], dict[str, list[int]]] = {}
        self.kp_dep_cond: Optional[list[Any]] = None
        self.kp_deps: dict[tuple[str, int], list[tuple[Any, int]]] = {}
        saved_iglob = kconfiglib.iglob  # `source` globs: listed only inside the tree
        kconfiglib.iglob = self._glob
        try:
            super().__init__("Kconfig", warn=False, warn_to_stderr=False)
        except AttributeError:
            # kconfiglib trips over a property where C conf reports a syntax error (a type or
            # `help` inside a `menu`, `visible if` in a config, ...)
            file, line = self._where()
            raise KpolicyError("syntax error: property not valid here", file=file,
                               line=line) from None
        finally:
            kconfiglib.iglob = saved_iglob
        self._check_entries()

    def _build_dep(self) -> None:
        """Not built: kconfiglib's index of what to recompute when a value is set (and of its
        own loop check, turned off while reading: _DependencyCheck). kpolicy sets no value in
        kconfiglib, kpolicy.kconfig.evaluate values the model; building it was 5% of a parse."""

    def _check_entries(self) -> None:
        """The checks C conf makes once every file is read: a symbol without a type is warned
        about (menu.c), a transitional symbol with anything but help is an error (parser.y)."""
        errors = []
        for node in self.node_iter():
            sym = node.item
            if sym.__class__ is not kconfiglib.Symbol:
                continue
            if sym.orig_type == kconfiglib.UNKNOWN:
                self.kp_messages.append(Message("warning", node.filename, node.linenr,
                                                "config symbol defined without type"))
            if sym.name not in self.kp_transitional:
                continue
            props = self.kp_lines.get((node.filename, node.linenr), {})
            lines = [n for kind, found in props.items() if kind != "depends" for n in found]
            if node.dep is not self.y:  # C reports a dependency at the entry itself
                errors.append(f"{node.filename}:{node.linenr}: {_TRANSITIONAL_ERROR}")
            elif lines:
                errors.append(f"{node.filename}:{min(lines)}: {_TRANSITIONAL_ERROR}")
        errors = _DependencyCheck(self).errors() + errors
        if errors:
            self._fail(tuple(errors))

    # -- files ------------------------------------------------------------------------------

    def _where(self) -> tuple[str, int]:
        return (str(self.kp_root / self.filename), self.linenr)

    def _physical(self, filename: str) -> str:
        """FILENAME's path in the tree once every symlink and `..` is applied where it leads
        (kpolicy.treefs); OutsideTree when it leaves the tree. Walked once per parse: `source`
        asks for it three times (whether it exists, where it leads, the name of what is read),
        and walks were a fifth of a parse."""
        found = self.kp_physical.get(filename)
        if found is None:
            found = self.kp_physical[filename] = treefs.physical(
                self.kp_root, treefs.rel_of(self.kp_root, filename), what="Kconfig file",
                display=filename)
        return found

    def _glob(self, pattern: str) -> list[str]:
        """kconfiglib's iglob for `source` patterns, listing only inside the tree."""
        file, line = self._where()
        shown = self._tokens[1] if len(self._tokens) > 1 else pattern
        if isinstance(shown, str) and os.path.isabs(shown):
            raise KpolicyError(f"source of an absolute path is refused: {shown}",
                               file=file, line=line)
        try:
            rel = treefs.rel_of(self.kp_root, pattern)
            if not any(c in rel for c in "*?["):
                try:
                    self._physical(pattern)
                except treefs.OutsideTree:
                    raise
                except KpolicyError:  # missing or unreadable: the model holds while it is
                    self.kp_patterns[SOURCE_PATTERN + rel] = matches_digest([])
                    return []
                return [pattern]
            matches = treefs.glob(self.kp_root, rel)
            self.kp_patterns[SOURCE_PATTERN + rel] = matches_digest(matches)
            return [str(self.kp_root / m) for m in matches]
        except treefs.OutsideTree:
            raise KpolicyError(f"source leads outside the tree: {shown}", file=file,
                               line=line) from None

    def _enter_file(self, filename: str) -> None:
        file, line = self._where()
        pattern = self._tokens[1] if len(self._tokens) > 1 else filename
        if isinstance(pattern, str) and os.path.isabs(pattern):
            raise KpolicyError(f"source of an absolute path is refused: {pattern}",
                               file=file, line=line)
        try:
            self._physical(filename)
        except treefs.OutsideTree:
            raise KpolicyError(f"source leads outside the tree: {pattern}", file=file,
                               line=line) from None
        except KpolicyError:
            pass  # missing or unreadable: _open says so, as C conf does
        if len(self._include_path) >= MAX_SOURCE_DEPTH:
            raise KpolicyError(f"source nested deeper than {MAX_SOURCE_DEPTH} files",
                               file=file, line=line)
        if len(self.kp_files) >= MAX_FILES:
            raise KpolicyError(f"more than {MAX_FILES} Kconfig files", file=file, line=line)
        self._check_source(filename)
        super()._enter_file(filename)

    def _check_source(self, filename: str) -> None:
        """C conf's errors for a file sourced while it is being read, or sourced before."""
        name = os.path.relpath(filename, self.kp_root) if os.path.isabs(filename) else filename
        chain = (*self._include_path, (self.filename, self.linenr))
        if any(parent == name for parent, _ in chain):
            self._fail(("Recursive inclusion detected.", "Inclusion path:",
                        f"  current file : {name}",
                        *(f"  included from: {f}:{n}" for f, n in reversed(chain))))
        first = self.kp_sourced.get(name)
        if first is not None and self.kp_version >= REPEATED_SOURCE_IS_ERROR:
            self._fail((f"{self.filename}:{self.linenr}: error: repeated inclusion of {name}",
                        f"{first[0]}:{first[1]}: note: location of first inclusion of {name}"))
        self.kp_sourced.setdefault(name, (self.filename, self.linenr))

    def _fail(self, lines: tuple[str, ...]) -> None:
        from kpolicy.textio import printable

        file, line = self._where()
        raise KconfigParseError(tuple(printable(x) for x in lines),
                                messages=tuple(str(m) for m in self.kp_messages),
                                file=file, line=line)

    def _open(self, filename: str, mode: str) -> io.StringIO:
        if mode != "r":
            raise KpolicyError("kpolicy never writes into a tree", file=filename)
        try:
            text = treefs.read_text(self.kp_root, treefs.rel_of(self.kp_root, filename),
                                    what="Kconfig file", display=filename)
            rel = self._physical(filename)
        except treefs.OutsideTree:
            raise KpolicyError("Kconfig file lies outside the tree", file=filename) from None
        self.kp_files[rel] = hashlib.sha256(text.encode()).hexdigest()
        return io.StringIO(text, newline=None)

    # -- preprocessor -----------------------------------------------------------------------

    def _fn_val(self, args: list[str]) -> str:
        # `F := $(F)$(F)` forty times, or forty recursive variables each naming the next twice,
        # would take exponential memory or time: bound what expansion may produce in all.
        value = self._fn_val_unbounded(args)
        # a call costs too (empty expansions can be a bomb), and copies the line it is in
        self.kp_expanded += len(value) + 64 + self.kp_line_len
        if self.kp_expanded > MAX_EXPANDED_CHARS:
            file, line = self._where()
            raise KpolicyError(f"macros expand to more than {MAX_EXPANDED_CHARS} characters "
                               f"(last: $({args[0]}...))", file=file, line=line)
        return value

    def _fn_val_unbounded(self, args: list[str]) -> str:
        fn = args[0]
        # `X := $(X)` while X is first defined: C expands the undefined X (no value yet)
        if fn in self.variables and hasattr(self.variables[fn], "value"):
            if fn in self.kp_tainted_vars:
                self.kp_probe = True
            if not self.variables[fn].is_recursive:  # C expands a `:=` value once, when set
                return str(self.variables[fn].value)
            if len(args) == 1 and self.variables[fn]._n_expansions:
                self._fail((f"{self.filename}:{self.linenr}: Recursive variable '{fn}' "
                            "references itself (eventually)",))
            return str(super()._fn_val(args))
        if fn in ("info", "warning-if", "error-if") and \
                self._functions[fn][1] <= len(args) - 1 <= self._functions[fn][2]:
            self._message(fn, args[1:])
            return ""
        if fn == "shell":
            if len(args) != 2:
                file, line = self._where()
                raise KpolicyError("shell takes one argument", file=file, line=line)
            self.kp_probe = True
            return self.kp_toolchain.shell(args[1], self.kp_root)
        if fn in self._functions:
            return str(super()._fn_val(args))
        if fn not in TREE_ENV:
            self.kp_probe = True
        value = self.kp_env.get(fn) if fn in TREE_ENV else \
            self.kp_toolchain.variable(fn, self.kp_root)
        if value is None:
            return ""
        self.env_vars.add(fn)
        return value

    def _message(self, fn: str, args: list[str]) -> None:
        """$(info,TEXT), $(warning-if,COND,TEXT), $(error-if,COND,TEXT) as C conf's
        preprocess.c does them: recorded for stderr, and error-if stops the parse."""
        if fn == "info":
            self.kp_messages.append(Message("info", self.filename, self.linenr, args[0]))
        elif args[0] == "y" and fn == "warning-if":
            self.kp_messages.append(Message("warning-if", self.filename, self.linenr, args[1]))
        elif args[0] == "y":
            self._fail((str(Message("error-if", self.filename, self.linenr, args[1])),))

    def _assign(self, name: str, op: str, value: str) -> None:
        """NAME OP VALUE for a name kconfiglib's reader refuses (one with a `$`), with the
        flavours of C's variable_add: `=` recursive, `:=` simple, `+=` appending (recursive
        when NAME is new)."""
        var = self.variables.get(name)
        if var is None:
            var = self.variables[name] = kconfiglib.Variable()
            var.kconfig, var.name, var._n_expansions = self, name, 0
            var.is_recursive, var.value = True, ""
            if op == "+=":
                op = "="
        if op == "+=":
            value = var.value + " " + (value if var.is_recursive else
                                       self._expand_whole(value, ()))
        else:
            var.is_recursive = op == "="
            if op == ":=":
                value = self._expand_whole(value, ())
        var.value = value

    def _check_line(self, s: str) -> None:
        if len(s) > MAX_LINE:
            file, line = self._where()
            raise KpolicyError(f"Kconfig line longer than {MAX_LINE} characters", file=file,
                               line=line)
        self.kp_line_len = len(s)

    def _parse_assignment(self, s: str) -> None:
        self._check_line(s)
        outer, self.kp_probe = self.kp_probe, False
        m = _DOLLAR_ASSIGNMENT.match(s)
        if m and "$" in m.group(1):
            self._assign(m.group(1), m.group(2), m.group(3))
        else:
            super()._parse_assignment(s)
        if self.kp_probe:
            m = re.match(r"\s*([A-Za-z0-9_-]+)\s*(?::=|\+=|=)", s)
            if m:
                self.kp_tainted_vars.add(m.group(1))
        self.kp_probe = outer

    # -- syntax compat ----------------------------------------------------------------------

    def _tokenize(self, s: str) -> Any:
        if s.strip() == "transitional":
            if self.kp_sym is None:
                file, line = self._where()
                raise KpolicyError("transitional outside a config entry", file=file, line=line)
            self.kp_transitional.add(self.kp_sym)
            return (None,)
        self.kp_probe = False
        self._check_line(s)
        tokens = super()._tokenize(s)
        t0 = tokens[0]
        if t0 is None:
            return tokens
        if t0 is T_OPTION and len(tokens) > 1 and tokens[1] is T_ENV:
            # Linux dropped `option env` in 4.18; kconfiglib would read kpolicy's own
            # environment (a CI secret) into a symbol's value
            file, line = self._where()
            raise KpolicyError("'option env' is not supported: Kconfig reads no environment "
                               "variables this way since Linux 4.18", file=file, line=line)
        key = (self.filename, self.linenr)
        if t0 in ITEM_START:
            self.kp_item = key
            self.kp_sym = (getattr(tokens[1], "name", None)
                           if t0 in (T_CONFIG, T_MENUCONFIG) else None)
        elif t0 in ITEM_END:
            self.kp_item = self.kp_sym = None
        elif self.kp_item is not None:
            kind = PROPERTY_KIND.get(t0)
            if kind is None and t0 in TYPE_TOKENS and isinstance(tokens[1], str):
                kind = "prompt"
            if kind is not None:
                self.kp_lines.setdefault(self.kp_item, {}).setdefault(kind, []).append(self.linenr)
        if self.kp_probe and self.kp_sym is not None:
            self.kp_tool_syms.add(self.kp_sym)
        if t0 is T_MODULES and tokens[1] is None:
            if self.kp_modules is not None and self.kp_modules != self.kp_sym:
                self._parse_error(f"symbol '{self.kp_sym}' redefines option 'modules' already "
                                  f"defined by symbol '{self.kp_modules}'")
            self.kp_modules = self.kp_sym
            return [T_OPTION, T_MODULES, None]
        if t0 is T_DEPENDS:
            split = next((i for i, t in enumerate(tokens) if i > 1 and t is T_IF), None)
            if split is not None:
                self.kp_dep_cond = list(tokens[split + 1:])
                return [*tokens[:split], None]
        return tokens

    def _expect_expr_and_eol(self) -> Any:
        expr = self._depends_expr()
        if self._tokens[0] is T_DEPENDS and self.kp_item is not None:
            self.kp_deps.setdefault(self.kp_item, []).append((expr, self.linenr))
        return expr

    def _depends_expr(self) -> Any:
        expr = super()._expect_expr_and_eol()
        cond, self.kp_dep_cond = self.kp_dep_cond, None
        if cond is None:
            return expr
        saved_tokens: Any = self._tokens
        saved_index: int = self._tokens_i
        self._tokens, self._tokens_i = cond, 0
        try:
            cond_expr = super()._expect_expr_and_eol()
        finally:
            self._tokens, self._tokens_i = saved_tokens, saved_index
        return self._make_or(expr, self._compare_tri(cond_expr, self.n))

    def _compare_tri(self, e: Any, target: Any) -> Any:
        """`E = n` or `E = y` pushed down to symbols, as C's expr_trans_compare does."""
        if e.__class__ is not tuple:
            return (_T.EQUAL, e, target)
        if e[0] is _T.NOT:
            return self._compare_tri(e[1], self.y if target is self.n else self.n)
        if e[0] in (_T.AND, _T.OR):
            # (A && B) = n  <=>  A = n || B = n;   (A && B) = y  <=>  A = y && B = y
            joins_or = (e[0] is _T.AND) == (target is self.n)
            left, right = self._compare_tri(e[1], target), self._compare_tri(e[2], target)
            return self._make_or(left, right) if joins_or else self._make_and(left, right)
        return e if target is self.y else (_T.NOT, e)  # a relation is only ever n or y


class _DependencyCheck:
    """scripts/kconfig/symbol.c's sym_check_deps over kconfiglib's objects, run on each menu
    entry's symbol in menu order as conf_parse does (6.11+): every dependency cycle is reported,
    in C conf's words, with each edge of it."""

    _RESOLUTION = ("For a resolution refer to Documentation/kbuild/kconfig-language.rst",
                   'subsection "Kconfig recursive dependency limitations"', "")

    def __init__(self, kconf: _KernelKconfig) -> None:
        self.k = kconf
        self.check: set[int] = set()
        self.checked: set[int] = set()
        # [item, why it leads on: "dir", "rev", "implied", "default", or a property kind]
        self.stack: list[list[Any]] = []
        self.out: list[str] = []

    def errors(self) -> list[str]:
        for node in self.k.node_iter():
            if node.item.__class__ in (kconfiglib.Symbol, kconfiglib.Choice):
                self.deps(node.item)
        return self.out

    def deps(self, item: Any) -> Any:
        if getattr(item, "is_constant", False):
            return None
        if id(item) in self.check:
            self.report(item)
            return item
        if id(item) in self.checked:
            return None
        if item.__class__ is kconfiglib.Symbol and item.choice is not None:
            self.stack.append([item, None])
            found = self.deps(item.choice)
            self.stack.pop()
            return found
        if item.__class__ is kconfiglib.Choice:
            return self.choice_deps(item)
        self.check.add(id(item))
        self.checked.add(id(item))
        found = self.sym_deps(item)
        self.check.discard(id(item))
        return found

    def expr_deps(self, e: Any) -> Any:
        if e.__class__ is not tuple:
            return self.deps(e)
        for operand in e[1:]:
            found = self.expr_deps(operand)
            if found is not None:
                return found
        return None

    def sym_deps(self, sym: Any) -> Any:
        entry: list[Any] = [sym, "dir"]
        self.stack.append(entry)
        try:
            for kind, e in (("dir", sym.direct_dep), ("rev", getattr(sym, "rev_dep", None)),
                            ("implied", getattr(sym, "weak_rev_dep", None))):
                entry[1] = kind
                found = self.expr_deps(e) if e is not None else None
                if found is not None:
                    return found
            for kind, visible, value in self.properties(sym):
                entry[1] = f"visible:{kind}"
                found = self.expr_deps(visible)
                if found is None and value is not None:
                    entry[1] = kind
                    found = self.expr_deps(value)
                if found is not None:
                    return found
            return None
        finally:
            self.stack.pop()

    def properties(self, item: Any) -> list[tuple[str, Any, Any]]:
        """(kind, condition, value) of ITEM's prompts, defaults and ranges, in source order."""
        props: list[tuple[tuple[int, int], str, Any, Any]] = []
        choice = item.__class__ is kconfiglib.Choice
        for n, node in enumerate(item.nodes):
            lines = self.k.kp_lines.get((node.filename, node.linenr), {})

            def at(kind: str, i: int, node: Any = node, lines: Any = lines) -> int:
                found: list[int] = lines.get(kind, [])
                return found[i] if -len(found) <= i < len(found) else int(node.linenr)

            if node.prompt:
                props.append(((n, at("prompt", -1)), "prompt", node.prompt[1], None))
            for i, (value, cond) in enumerate(node.defaults):
                props.append(((n, at("default", i)), "default", cond, None if choice else value))
            for i, (_, _, cond) in enumerate(getattr(node, "ranges", ())):
                props.append(((n, at("range", i)), "range", cond, None))
        return [(kind, cond, value) for _, kind, cond, value in sorted(props, key=lambda p: p[0])]

    def choice_deps(self, choice: Any) -> Any:
        self.stack.append([choice, None])
        members = list(choice.syms)
        for m in members:
            self.check.add(id(m))
            self.checked.add(id(m))
        self.check.add(id(choice))
        self.checked.add(id(choice))
        found = self.sym_deps(choice)
        self.check.discard(id(choice))
        if found is None:
            for m in members:
                found = self.sym_deps(m)
                if found is not None:
                    break
        for m in members:
            self.check.discard(id(m))
        if found is not None and getattr(found, "choice", None) is choice:
            found = choice
        self.stack.pop()
        return found

    def report(self, last: Any) -> None:
        if getattr(last, "choice", None) is not None:
            self.stack.append([last, None])
            last = last.choice
        start = next((i for i in range(len(self.stack) - 1, -1, -1)
                      if self.stack[i][0] is last), None)
        if start is None:
            self.out.append("unexpected recursive dependency error")
            return
        lines = ["error: recursive dependency detected!"]
        for i in range(start, len(self.stack)):
            item, why = self.stack[i]
            nxt = self.stack[i + 1][0] if i + 1 < len(self.stack) else last
            name = item.name or "<choice>"
            if nxt.__class__ is kconfiglib.Choice:
                node = nxt.nodes[0]
                lines.append(f"\tsymbol {name} is part of choice block at "
                             f"{node.filename}:{node.linenr}")
            elif why == "dir":
                lines.append(f"\tsymbol {name} depends on {nxt.name}")
            elif why == "rev":
                lines.append(f"\tsymbol {name} is selected by {nxt.name}")
            elif why == "implied":
                lines.append(f"\tsymbol {name} is implied by {nxt.name}")
            elif why is not None and not why.startswith("visible:"):
                lines.append(f"\tsymbol {name} {why} value contains {nxt.name}")
            else:
                kind = why[len("visible:"):] if why else "unknown"
                lines.append(f"\tsymbol {name} {kind} is visible depending on {nxt.name}")
        self.out += [*lines, *self._RESOLUTION]
        if self.stack and self.stack[-1][1] is None and self.stack[-1][0] is not last and \
                getattr(self.stack[-1][0], "choice", None) is last:
            self.stack.pop()


@contextlib.contextmanager
def _without_kconfiglib_loop_check() -> Iterator[None]:
    """kconfiglib stops at the first dependency loop in words of its own; _DependencyCheck
    reports them all as C conf does, once every file is read."""
    saved = kconfiglib._check_dep_loop_sym
    kconfiglib._check_dep_loop_sym = lambda sym, ignore_choice: None
    try:
        yield
    finally:
        kconfiglib._check_dep_loop_sym = saved


def _run_kconfiglib(tree: KernelTree, arch: str, toolchain: Toolchain) -> _KernelKconfig:
    srcarch = tree.srcarch(arch)
    # SUBARCH is the build host (x86 here); only ARCH=um reads it, as HEADER_ARCH.
    env = {"ARCH": arch, "SRCARCH": srcarch, "SUBARCH": "x86", "HEADER_ARCH": "x86",
           "KERNELVERSION": tree.version, "srctree": str(tree.root)}
    neutral: dict[str, Optional[str]] = {k: None for k in _KCONFIGLIB_ENV}
    neutral.update({"srctree": str(tree.root), "CONFIG_": "CONFIG_",
                    "KCONFIG_FUNCTIONS": FUNCTIONS_MODULE})
    with _scoped_environ(neutral), _without_kconfiglib_loop_check():
        try:
            return _KernelKconfig(tree.root, env, toolchain, tree.version_tuple)
        except kconfiglib.KconfigError as exc:
            raise _translate(exc, tree) from None
        except RecursionError:
            raise KpolicyError("Kconfig expressions or menus nest too deeply",
                               file=tree.root / "Kconfig") from None


def _translate(exc: Exception, tree: KernelTree) -> KpolicyError:
    text = str(exc).strip()
    m = _ERROR_AT.match(text)
    if m:
        file = m.group(1)
        path = file if os.path.isabs(file) else str(tree.root / file)
        message = " ".join(m.group(3).split()) or "Kconfig error"
        message = message[len("error: "):] if message.startswith("error: ") else message
        return KpolicyError(message[:300], file=path, line=int(m.group(2)))
    return KpolicyError(" ".join(text.split())[:300], file=tree.root / "Kconfig")


class _Converter:
    """kconfiglib objects to kpolicy's frozen model (expressions shared, so pickles stay small)."""

    def __init__(self, kconf: _KernelKconfig) -> None:
        self.k = kconf
        # id() -> (object, Expr): the object is kept so that its id is never reused meanwhile
        self.memo: dict[int, tuple[Any, Expr]] = {}
        self.choice_names: dict[int, str] = {}
        for choice in kconf.unique_choices:
            node = choice.nodes[0]
            self.choice_names[id(choice)] = choice.name or f"<choice@{node.filename}:{node.linenr}>"

    def expr(self, e: Any) -> Expr:
        key = id(e)
        hit = self.memo.get(key)
        if hit is not None and hit[0] is e:
            return hit[1]
        out: Expr
        if e.__class__ is kconfiglib.Symbol:
            out = Expr.const(e.name) if e.is_constant else Expr.sym(e.name)
        elif e.__class__ is kconfiglib.Choice:
            # Since Linux 6.11 a choice member depends on the choice's dependencies, not on a
            # choice "mode" symbol.
            out = self.cond(e.direct_dep) or Expr.const("y")
        elif e[0] is _T.AND:
            out = Expr("and", (self.expr(e[1]), self.expr(e[2])))
        elif e[0] is _T.OR:
            out = Expr("or", (self.expr(e[1]), self.expr(e[2])))
        elif e[0] is _T.NOT:
            out = Expr("not", (self.expr(e[1]),))
        else:
            out = Expr(_RELATIONS[e[0]], (self.expr(e[1]), self.expr(e[2])))
        self.memo[key] = (e, out)
        return out

    def cond(self, e: Any) -> Optional[Expr]:
        if e is self.k.y:
            return None
        return self.expr(e)

    def lines(self, node: Any, kind: str) -> list[int]:
        return self.k.kp_lines.get((node.filename, node.linenr), {}).get(kind, [])

    def loc(self, node: Any, kind: str, index: int) -> Location:
        found = self.lines(node, kind)
        line = found[index] if index < len(found) else node.linenr
        return Location(node.filename, line)

    def prompt(self, node: Any) -> Optional[Prompt]:
        if not node.prompt:
            return None
        found = self.lines(node, "prompt")
        line = found[-1] if found else node.linenr
        return Prompt(node.prompt[0], self.cond(node.prompt[1]), Location(node.filename, line))

    def defaults(self, node: Any) -> list[Default]:
        return [Default(self.expr(v), self.cond(c), self.loc(node, "default", i))
                for i, (v, c) in enumerate(node.defaults)]

    def symbol(self, sym: Any) -> Symbol:
        definitions, prompts, defaults, selects, implies, ranges = [], [], [], [], [], []
        for node in sym.nodes:
            own = self.k.kp_deps.get((node.filename, node.linenr), [])
            definitions.append(Definition(
                Location(node.filename, node.linenr), self.cond(node.dep), node.help or "",
                tuple(Dependency(self.expr(e), Location(node.filename, line)) for e, line in own)))
            p = self.prompt(node)
            if p is not None:
                prompts.append(p)
            defaults += self.defaults(node)
            for i, (target, c) in enumerate(node.selects):
                selects.append(Reverse(sym.name, target.name, self.cond(c),
                                       self.loc(node, "select", i)))
            for i, (target, c) in enumerate(node.implies):
                implies.append(Reverse(sym.name, target.name, self.cond(c),
                                       self.loc(node, "imply", i)))
            for i, (low, high, c) in enumerate(node.ranges):
                ranges.append(Range(self.expr(low), self.expr(high), self.cond(c),
                                    self.loc(node, "range", i)))
        direct = self.k.n
        for node in sym.nodes:
            direct = self.k._make_or(direct, node.dep)
        choice = self.choice_names.get(id(sym.choice)) if sym.choice is not None else None
        return Symbol(
            name=sym.name,
            type=kconfiglib.TYPE_TO_STR[sym.orig_type] or "unknown",
            definitions=tuple(definitions),
            prompts=tuple(prompts),
            defaults=tuple(defaults),
            selects=tuple(selects),
            implies=tuple(implies),
            ranges=tuple(ranges),
            direct_dep=self.cond(direct),
            choice=choice,
            transitional=sym.name in self.k.kp_transitional,
            is_modules=sym.name == self.k.kp_modules,
        )

    def choice(self, choice: Any) -> Choice:
        node = choice.nodes[0]
        defaults = [d for n in choice.nodes for d in self.defaults(n)]
        return Choice(
            name=self.choice_names[id(choice)],
            type=kconfiglib.TYPE_TO_STR[choice.orig_type] or "bool",
            prompt=self.prompt(node),
            members=tuple(s.name for s in choice.syms),
            defaults=tuple(defaults),
            direct_dep=self.cond(choice.direct_dep),
            location=Location(node.filename, node.linenr),
            optional=bool(choice.is_optional),
        )

    def menu(self, node: Any) -> tuple[MenuEntry, ...]:
        out = []
        while node is not None:
            item = node.item
            children = self.menu(node.list) if node.list is not None else ()
            if item.__class__ is kconfiglib.Symbol:
                out.append(MenuEntry("symbol", item.name, children=children))
            elif item.__class__ is kconfiglib.Choice:
                out.append(MenuEntry("choice", self.choice_names[id(item)], children=children))
            elif node.prompt:
                visible = node.prompt[1]
                if item is kconfiglib.MENU:
                    visible = self.k._make_and(visible, node.visibility)
                kind = "menu" if item is kconfiglib.MENU else "comment"
                out.append(MenuEntry(kind, node.prompt[0], self.cond(visible), children))
            node = node.next
        return tuple(out)


def _apply_toolchain_values(symbols: dict[str, Symbol], tool_derived: frozenset[str],
                            toolchain: Toolchain) -> None:
    """Promptless tool-derived symbols take the profile's values (from --toolchain-from)."""
    if not toolchain.symbols:
        return
    where = Location(f"<toolchain {toolchain.name}>", 0)
    for name in tool_derived:
        sym = symbols.get(name)
        if sym is None or sym.type == "unknown":
            continue
        value = toolchain.symbols.get(name)
        if sym.prompts:
            if value is None:  # never visible with that toolchain
                symbols[name] = replace(sym, prompts=(), defaults=())
            continue
        if value is None:
            symbols[name] = replace(sym, defaults=())
            continue
        cond = sym.direct_dep if sym.type in ("bool", "tristate") else None
        symbols[name] = replace(sym, defaults=(Default(Expr.const(value), cond, where),))


def parse_kconfig(tree: KernelTree, arch: str, toolchain: Toolchain) -> ParsedKconfig:
    """Read TREE's Kconfig for ARCH, answering tool probes from TOOLCHAIN, into kpolicy's model."""
    with long_lived():
        try:
            kconf = _run_kconfiglib(tree, arch, toolchain)
        except BaseException:
            gc.collect()  # the failed parse's objects, before long_lived freezes them
            raise
        try:
            return _convert(kconf, toolchain)
        finally:
            if not garbage_left_to_exit():
                _dismantle(kconf)


def _dismantle(kconf: _KernelKconfig) -> None:
    """Cut the references between kconfiglib's objects (a symbol and its menu nodes, its
    dependents, the Kconfig object), so that reference counting frees the ~450,000 of them
    once converted: collecting them as cyclic garbage cost ~0.4 s of every parse. What is
    left (a few closures of kconfiglib's warnings, ~100 objects) is frozen with the model."""
    objects: list[Any] = [*kconf.syms.values(), *kconf.const_syms.values(), *kconf.choices,
                          *kconf.variables.values(), *kconf.node_iter(), kconf.top_node,
                          *kconf.menus, *kconf.comments]
    for obj in objects:
        for slot in type(obj).__slots__:
            with contextlib.suppress(AttributeError):  # never set
                delattr(obj, slot)
    for slot in kconfiglib.Kconfig.__slots__:
        with contextlib.suppress(AttributeError):
            delattr(kconf, slot)
    kconf.__dict__.clear()


def _convert(kconf: _KernelKconfig, toolchain: Toolchain) -> ParsedKconfig:
    conv = _Converter(kconf)
    symbols: dict[str, Symbol] = {}
    for sym in kconf.unique_defined_syms:
        symbols[sym.name] = conv.symbol(sym)
    selected_by: dict[str, list[Reverse]] = {}
    implied_by: dict[str, list[Reverse]] = {}
    for sym in symbols.values():
        for r in sym.selects:
            selected_by.setdefault(r.target, []).append(r)
        for r in sym.implies:
            implied_by.setdefault(r.target, []).append(r)
    for name in list(symbols):
        if name in selected_by or name in implied_by:
            symbols[name] = replace(symbols[name],
                                    selected_by=tuple(selected_by.get(name, ())),
                                    implied_by=tuple(implied_by.get(name, ())))
    tool_derived = frozenset(kconf.kp_tool_syms)
    _apply_toolchain_values(symbols, tool_derived, toolchain)
    choices = tuple(conv.choice(c) for c in kconf.unique_choices)
    return ParsedKconfig(
        symbols=symbols,
        types={name: sym.type for name, sym in symbols.items()},
        choices=choices,
        menu=conv.menu(kconf.top_node.list),
        mainmenu=kconf.top_node.prompt[0] if kconf.top_node.prompt else "",
        tool_derived=tool_derived,
        files=tuple(sorted({**kconf.kp_files, **kconf.kp_patterns}.items())),
        messages=tuple(kconf.kp_messages),
    )


def files_digest(root: Path, files: tuple[tuple[str, str], ...],
                 seen: Optional[dict[str, str]] = None) -> Optional[str]:
    """A digest of the current content of FILES under ROOT, or None if any changed or vanished.

    SEEN (rel -> content hash) carries hashes over between calls on the same ROOT, so loading
    several arches, which share most Kconfig files, reads each file once."""
    seen = {} if seen is None else seen
    # The files whose status changed last are compared first: a file a patch wrote into the
    # scratch copy of `lint --patch`, or one just edited, is found changed before the ~1,700
    # others are read (0.17 s on Linux 7.2); a stat costs a fiftieth of a read.
    for rel, digest in sorted(files, key=lambda f: -_ctime(root, f[0])):
        current = seen.get(rel)
        if current is None and rel.startswith(SOURCE_PATTERN):
            try:
                current = seen[rel] = matches_digest(treefs.glob(root, rel[len(SOURCE_PATTERN):]))
            except KpolicyError:
                return None
        elif current is None:
            try:  # confined and bounded as the parse read it: a warm cache reads no more
                data = treefs.read_bytes(root, rel, what="Kconfig file")
            except KpolicyError:
                return None
            current = seen[rel] = hashlib.sha256(data).hexdigest()
        if current != digest:
            return None
    return listed_digest(files)


def matches_digest(matches: list[str]) -> str:
    """The digest of the files (relative paths, sorted) a `source` pattern matched."""
    return hashlib.sha256("\0".join(matches).encode()).hexdigest()


def listed_digest(files: tuple[tuple[str, str], ...]) -> str:
    """The digest files_digest gives FILES (rel, sha256) while none of them has changed."""
    h = hashlib.sha256()
    for rel, digest in files:
        h.update(rel.encode() + b"\0" + digest.encode() + b"\0")
    return h.hexdigest()


def _ctime(root: Path, rel: str) -> int:
    """REL's ctime (0 when it cannot be stat'ed: read_bytes then says why); only an order."""
    try:
        return os.lstat(f"{root}/{rel}").st_ctime_ns
    except OSError:
        return 0
