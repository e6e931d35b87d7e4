"""The C side of boot parameters: early_param, __setup, core_param, module_param and static keys.

No compiler runs. Each C file that mentions a registration macro is masked (kpolicy.params.ctokens:
comments and literal contents blanked, offsets kept), its directives are walked in order to
follow `#ifdef` nesting, `MODULE_PARAM_PREFIX` redefinitions and local `#include "x.h"` files,
and each macro call's arguments are read back. Function-like macros that wrap a registration
(a file's own, or one of an included include/ header such as torture_param) are expanded at
their calls. Names are the ones the kernel matches:
`KBUILD_MODNAME.` (from the Makefiles, kpolicy.params.kbuild) or MODULE_PARAM_PREFIX before a
module parameter, no prefix for core_param, and the literal for early_param/__setup.

This module reads one file's registrations (FileScanner); kpolicy.params.cunit holds the C
unit it reads them from, kpolicy.params.scan walks the tree and caches the result.
"""

from __future__ import annotations

import bisect
import posixpath
import re
from dataclasses import replace
from pathlib import Path
from typing import Optional

from kpolicy.errors import KpolicyError
from kpolicy.kconfig.model import Location
from kpolicy.params import ctokens
from kpolicy.params.cunit import (
    CALL,
    KEYWORDS,
    TYPE_PARSER,
    Unit,
    Wrapper,
    calls,
    condition,
    is_enabled_inits,
    read_header,
    wrappers_in,
)
from kpolicy.params.kbuild import BuildInfo
from kpolicy.params.model import Registration, StaticKey

_MAX_INCLUDE_DEPTH = 4
# Linux 7.2's busiest file makes a few hundred registration calls; far more is hostile input.
MAX_CALLS_PER_FILE = 20_000

_DECL_WORD = re.compile(rb"[A-Za-z_]\w*")
_INCLUDE = re.compile(r'^"([^"]+)"')
# One #if condition on one symbol: CONFIG_X, !CONFIG_X, defined(CONFIG_X), !defined(CONFIG_X).
_IF_CONFIG = re.compile(r"(!?)\s*(?:defined\s*\(\s*)?CONFIG_(\w+)\s*\)?\s*")


# Positions of (name, type) arguments per module_param flavour; type None: ops/setter given.
_MODULE_PARAM_ARGS: dict[str, tuple[int, Optional[int]]] = {
    "module_param": (0, 1), "module_param_unsafe": (0, 1),
    "module_param_named": (0, 2), "module_param_named_unsafe": (0, 2),
    "module_param_cb": (0, None), "module_param_cb_unsafe": (0, None),
    "module_param_call": (0, None), "module_param_array": (0, 1),
    "module_param_array_named": (0, 2), "module_param_string": (0, None),
    "module_param_hw": (0, 1), "module_param_hw_named": (0, 2), "module_param_hw_array": (0, 1),
}


# Initcall-level callbacks (arch_param_cb(x32, &ops, NULL, 0444) makes syscall.x32). core_param_cb
# is one of them (include/linux/moduleparam.h: __level_param_cb, level 1), so it takes
# MODULE_PARAM_PREFIX like the others; only core_param, core_param_unsafe and __core_param_cb
# register without a prefix.
_LEVEL_PARAM_CB = frozenset(f"{level}_param_cb" for level in (
    "core", "postcore", "arch", "subsys", "fs", "device", "late"))


class FileScanner:
    """Reads one translation unit: a C file and the local headers it includes."""

    def __init__(self, root: Path, info: BuildInfo, regs: list[Registration],
                 keys: list[StaticKey], header_wrappers: dict[str, dict[str, list[Wrapper]]]
                 ) -> None:
        self.root = root
        self.header_wrappers = header_wrappers  # shared by every file of one scan
        self.info = info
        self.regs = regs
        self.keys = keys
        self.modname = info.modname  # KBUILD_MODNAME, unless the file #defines it anew
        self.prefix: Optional[str] = info.modname + "."  # MODULE_PARAM_PREFIX now in force
        self.strings: dict[str, str] = {}  # `#define NAME "literal"` seen so far
        # Macros of this file or of headers it includes that wrap a registration
        # (torture_param, hugetlb_early_param): name -> their expansions.
        self.wrappers: dict[str, list[Wrapper]] = {}
        self.visited: set[str] = set()
        # Every header whose bytes (or absence) the result depends on: local includes and the
        # include/ headers looked at for wrappers (kpolicy.params.scan keys its cache on them).
        self.headers: set[str] = set()
        self.uml_help: dict[str, Location] = {}  # handler -> its __uml_help(handler, "...")

    def scan_file(self, rel: str, data: bytes, depth: int) -> None:
        self.visited.add(rel)
        masked = ctokens.mask(data)
        lines = ctokens.Lines(data)
        unit = Unit(rel, data, masked, lines)
        conds: list[Optional[str]] = []  # one per open #if; None when it names no CONFIG_/MODULE
        define_spans: list[tuple[int, int]] = []
        events: list[tuple[int, int, object]] = []  # (offset, order, directive or call match)
        found = calls(masked)
        if len(found) > MAX_CALLS_PER_FILE:
            raise KpolicyError(f"{len(found)} registration macro calls in one file (limit "
                               f"{MAX_CALLS_PER_FILE}): not a kernel source file", file=rel)
        defines: list[ctokens.Directive] = []
        for d in ctokens.directives(masked):
            events.append((d.start, 0, d))
            if d.name == "define":
                defines.append(d)
        for m in found:
            events.append((m.start(), 1, m))
        self._collect_wrappers(unit, defines, found)
        if self.wrappers:
            pat = re.compile(rb"(?<![\w#])(" + b"|".join(
                re.escape(w.encode()) for w in sorted(self.wrappers)) + rb")\s*\(")
            starts = [d.start for d in defines]  # in file order, never overlapping
            wrapped = 0
            for m in pat.finditer(masked):
                i = bisect.bisect_right(starts, m.start()) - 1
                if i >= 0 and m.start() < defines[i].end:
                    continue  # inside a #define body
                wrapped += len(self.wrappers[m.group(1).decode("latin-1")])
                if len(found) + wrapped > MAX_CALLS_PER_FILE:
                    raise KpolicyError(f"more than {MAX_CALLS_PER_FILE} registration macro calls "
                                       "(wrapper calls included) in one file: not a kernel "
                                       "source file", file=rel)
                events.append((m.start(), 1, m))
        for m in is_enabled_inits(masked):
            events.append((m.start(), 2, m))
        events.sort(key=lambda e: (e[0], e[1]))
        keys_from, regs_from = len(self.keys), len(self.regs)
        for offset, order, item in events:
            if isinstance(item, ctokens.Directive):
                self._directive(item, conds, define_spans, unit, depth)
                continue
            if any(s <= offset < e for s, e in define_spans[-1:]):
                continue  # inside a #define body: a template, not a registration
            assert isinstance(item, re.Match)
            where = tuple(c for c in conds if c)
            if order == 1:
                self._call(unit, item, where)
            else:
                self._initial_value(unit, item)
        self._link_handlers(unit, keys_from, regs_from)

    def _link_handlers(self, unit: Unit, keys_from: int, regs_from: int) -> None:
        """Tie this file's keys and variables to the parameters whose handler writes them, and
        its registrations to the __uml_help text of their handler."""
        for i in range(regs_from, len(self.regs)):
            reg = self.regs[i]
            if reg.handler in self.uml_help and reg.location.file == unit.rel:
                self.regs[i] = replace(reg, help_at=self.uml_help[reg.handler])
        regs = [r for r in self.regs[regs_from:] if r.handler and r.location.file == unit.rel]
        if not regs:
            return
        for i in range(keys_from, len(self.keys)):
            key = self.keys[i]
            if key.location.file != unit.rel:
                continue
            names = tuple(dict.fromkeys(
                r.name for r in regs if r.handler and unit.writes(r.handler, key.name)))
            if names:
                self.keys[i] = replace(key, params=tuple(dict.fromkeys(key.params + names)))

    def _collect_wrappers(self, unit: Unit, defines: list[ctokens.Directive],
                          found: list[re.Match[bytes]]) -> None:
        """Learn the wrappers this file defines and those of the headers it includes."""
        for m in re.finditer(rb'^[ \t]*#[ \t]*include[ \t]*<([^>\n]+\.h)>', unit.original, re.M):
            rel = posixpath.normpath("include/" + m.group(1).decode("latin-1"))
            if not rel.startswith("include/"):
                continue
            self.headers.add(rel)
            if rel not in self.header_wrappers:
                self.header_wrappers[rel] = self._header_wrappers(rel)
            self.wrappers.update(self.header_wrappers.get(rel, {}))
        # after the headers': a macro of this file may wrap one of theirs
        self.wrappers.update(wrappers_in(unit, defines, found, self.wrappers))

    def _header_wrappers(self, rel: str) -> dict[str, list[Wrapper]]:
        data = read_header(self.root, rel)
        if data is None or not any(k in data for k in KEYWORDS):
            return {}
        masked = ctokens.mask(data)
        unit = Unit(rel, data, masked, ctokens.Lines(data))
        defines = [d for d in ctokens.directives(masked) if d.name == "define"]
        return wrappers_in(unit, defines, calls(masked))

    def _initial_value(self, unit: Unit, m: re.Match[bytes]) -> None:
        """Record a file-scope `type name [attrs] = IS_ENABLED(CONFIG_X);` declaration."""
        masked, at = unit.masked, m.start()
        eq = masked.rfind(b"=", 0, at)
        if eq < 0 or masked[eq + 1 : at].strip() or masked[eq - 1 : eq] in (b"=", b"!", b"<", b">"):
            return
        window = max(0, eq - 512)  # a declaration is short; never search back to the top
        start = max(window, masked.rfind(b";", window, eq), masked.rfind(b"{", window, eq),
                    masked.rfind(b"}", window, eq), masked.rfind(b"\n#", window, eq) + 1)
        words = [w for w in _DECL_WORD.findall(masked, start + 1, eq) if not w.startswith(b"__")]
        if len(words) < 2 or not unit.at_file_scope(at):
            return  # an assignment, or a declaration inside a function
        self.keys.append(StaticKey(
            name=words[-1].decode("latin-1"), symbol=m.group(1).decode("latin-1"),
            initial="config", location=Location(unit.rel, unit.lines.line(at)), kind="variable"))

    def _directive(self, d: ctokens.Directive, conds: list[Optional[str]],
                   define_spans: list[tuple[int, int]], unit: Unit, depth: int) -> None:
        if d.name in ("if", "ifdef", "ifndef"):
            conds.append(condition(d.name, d.text(unit.original)))
        elif d.name in ("elif", "elifdef", "elifndef") and conds:
            conds[-1] = condition(d.name[2:] if d.name != "elif" else "if",
                                   d.text(unit.original))
        elif d.name == "else" and conds:
            c = conds[-1]
            conds[-1] = None if c is None else (c[1:] if c.startswith("!") else f"!{c}")
        elif d.name == "endif" and conds:
            conds.pop()
        elif d.name == "define":
            define_spans.append((d.start, d.end))
            body = unit.masked[d.rest : d.end]
            if b'"' in body or b"MODULE_PARAM_PREFIX" in body:
                self._define(d.text(unit.original))
        elif d.name == "undef" and b"MODULE_PARAM_PREFIX" in unit.masked[d.rest:d.end]:
            self.prefix = None
        elif d.name == "include" and depth < _MAX_INCLUDE_DEPTH:
            self._include(unit, d, depth)

    def _define(self, text: str) -> None:
        parts = text.split(None, 1)
        if not parts:
            return
        name, body = parts[0], (parts[1] if len(parts) > 1 else "")
        if name == "MODULE_PARAM_PREFIX":
            self.prefix = self._expand_strings(body)
        elif name == "KBUILD_MODNAME":
            # security/ipe/eval.c: #undef KBUILD_MODNAME, #define KBUILD_MODNAME "ipe": the
            # module_params after it are ipe.*, not eval.*
            value = self._expand_strings(body)
            if value:
                if self.prefix == self.modname + ".":
                    self.prefix = value + "."
                self.modname = value
        elif re.fullmatch(r"\w+", name):
            value = self._expand_strings(body)
            if value is not None and body.strip():
                self.strings[name] = value

    def _expand_strings(self, body: str) -> Optional[str]:
        """A #define body of string literals, KBUILD_MODNAME and known string macros, else None."""
        out: list[str] = []
        for tok in re.findall(r'"(?:[^"\\]|\\.)*"|\S+', body):
            if tok.startswith('"'):
                out.append(tok[1:-1])
            elif tok == "KBUILD_MODNAME":
                out.append(self.modname)
            elif tok in self.strings:
                out.append(self.strings[tok])
            else:
                return None
        return "".join(out)

    def _include(self, unit: Unit, d: ctokens.Directive, depth: int) -> None:
        m = _INCLUDE.match(d.text(unit.original))
        if not m or not m.group(1).endswith(".h"):
            return
        rel = posixpath.normpath(posixpath.join(posixpath.dirname(unit.rel), m.group(1)))
        if rel.startswith("../") or rel in self.visited or "/include/" in f"/{rel}":
            return
        self.headers.add(rel)
        data = read_header(self.root, rel)
        if data is not None and any(k in data for k in KEYWORDS):
            self.scan_file(rel, data, depth + 1)
        else:
            self.visited.add(rel)

    def _call(self, unit: Unit, m: re.Match[bytes], where: tuple[str, ...],
              loc: Optional[Location] = None) -> None:
        macro = m.group(1).decode("latin-1")
        parsed = ctokens.call_arguments(unit.masked, m.end() - 1)
        if parsed is None:
            return
        args = parsed[0]
        loc = loc or Location(unit.rel, unit.lines.line(m.start()))
        if macro.startswith("DEFINE_STATIC_KEY_"):
            self._static_key(unit, macro, args, loc, where)
        elif macro in ("early_param", "__setup", "__setup_param"):
            self._setup(unit, macro, args, loc, where)
        elif macro == "__uml_help":
            handler = ctokens.identifier(unit.masked, *args[0]) if args else None
            if handler:
                self.uml_help[handler] = loc
        elif macro == "early_param_on_off":
            self._on_off(unit, args, loc, where)
        elif macro in self.wrappers:
            actual = [unit.original_text(span) for span in args]
            for wrapper in self.wrappers[macro]:
                text = wrapper.expand(actual)
                if text is None:
                    continue
                data = text.encode("latin-1", "replace")
                sub = Unit(unit.rel, data, ctokens.mask(data), ctokens.Lines(data), parent=unit)
                inner = CALL.match(sub.masked)
                if inner is not None:
                    self._call(sub, inner, where, loc)
        else:
            self._module_param(unit, macro, args, loc, where)

    def _reg(self, **fields: object) -> None:
        self.regs.append(Registration(
            built_if=self.info.chain[-1] if self.info.chain else None,
            built_if_chain=self.info.chain, module_only=self.info.module_only,
            **fields))  # type: ignore[arg-type]

    def _string_arg(self, unit: Unit, span: tuple[int, int]) -> Optional[str]:
        value = ctokens.string_value(unit.original, unit.masked, *span)
        if value is None:
            ident = ctokens.identifier(unit.masked, *span)
            value = self.strings.get(ident) if ident else None
        return value

    def _setup(self, unit: Unit, macro: str, args: list[tuple[int, int]], loc: Location,
               where: tuple[str, ...]) -> None:
        if len(args) < 2:
            return
        literal = self._string_arg(unit, args[0])
        if not literal:
            return
        kind = macro
        handler_span = args[1]
        if macro == "__setup_param":
            if len(args) < 4:
                return
            handler_span = args[2]
            early = unit.masked[args[3][0]:args[3][1]].strip()
            kind = "__setup" if early == b"0" else "early_param"
        handler = ctokens.identifier(unit.masked, *handler_span)
        self._reg(kind=kind, name=literal.rstrip("=") if literal != "=" else literal,
                  location=loc, handler=handler,
                  parser=unit.parser_of(handler) if handler else None,
                  setup_has_equals=literal.endswith("="), cpp_conditions=where,
                  only_warns=unit.only_warns(handler) if handler else False)

    def _on_off(self, unit: Unit, args: list[tuple[int, int]], loc: Location,
                where: tuple[str, ...]) -> None:
        if len(args) != 4:
            return
        for span in args[:2]:
            name = self._string_arg(unit, span)
            if name:
                self._reg(kind="early_param", name=name.rstrip("="), location=loc,
                          parser="early_param_on_off", cpp_conditions=where)
        names = tuple(n.rstrip("=") for n in (self._string_arg(unit, s) for s in args[:2]) if n)
        var = ctokens.identifier(unit.masked, *args[2])
        sym = ctokens.identifier(unit.masked, *args[3])
        if var and sym and sym.startswith("CONFIG_"):
            self.keys.append(StaticKey(var, sym[len("CONFIG_"):], "config", loc, kind="variable",
                                       params=names))

    def _module_param(self, unit: Unit, macro: str, args: list[tuple[int, int]],
                      loc: Location, where: tuple[str, ...]) -> None:
        if macro == "__module_param_call":
            if len(args) != 7:
                return
            prefix = self._string_arg(unit, args[0])
            if prefix is None:
                ident = ctokens.identifier(unit.masked, *args[0])
                if ident != "MODULE_PARAM_PREFIX":
                    return
                prefix = self.prefix
            name = ctokens.identifier(unit.masked, *args[1])
            kind = "core_param" if prefix == "" else "module_param"
            self._param(unit, kind, prefix, name, None, unit.text(args[2]), loc, where)
            return
        if macro.startswith(("core_param", "__core_param")) and macro not in _LEVEL_PARAM_CB:
            if len(args) != 4:
                return
            name = ctokens.identifier(unit.masked, *args[0])
            if macro.endswith("core_param_cb"):
                self._param(unit, "core_param", "", name, None, unit.text(args[1]), loc, where)
            else:
                self._param(unit, "core_param", "", name, unit.text(args[2]), None, loc, where)
            return
        if macro in _LEVEL_PARAM_CB:
            # include/linux/moduleparam.h: __level_param_cb, MODULE_PARAM_PREFIX + name
            if len(args) == 4:
                name = ctokens.identifier(unit.masked, *args[0])
                self._param(unit, "module_param", self.prefix, name, None, unit.text(args[1]),
                            loc, where)
            return
        shape = _MODULE_PARAM_ARGS.get(macro)
        if shape is None:
            return  # module_param_* helpers that do not register (e.g. a misspelt wrapper)
        name_at, type_at = shape
        if len(args) <= max(name_at, type_at or 0):
            return
        name = ctokens.identifier(unit.masked, *args[name_at])
        ptype = unit.text(args[type_at]) if type_at is not None else None
        ops: Optional[str] = None
        if macro.startswith("module_param_cb"):
            ops = unit.text(args[1])
        elif macro == "module_param_call":
            ops = "setter:" + unit.text(args[1])
        elif macro == "module_param_string":
            ptype = "string"
        self._param(unit, "module_param", self.prefix, name, ptype, ops, loc, where)

    def _param(self, unit: Unit, kind: str, prefix: Optional[str], name: Optional[str],
               ptype: Optional[str], ops: Optional[str], loc: Location,
               where: tuple[str, ...]) -> None:
        if not name or prefix is None:
            return
        handler: Optional[str] = None
        if ops is not None:
            if ops.startswith("setter:"):
                handler = ops[len("setter:"):]
            else:
                ops_name = ops.lstrip("&").strip()
                if ops_name.startswith("param_ops_") and ops_name[10:] in TYPE_PARSER:
                    ptype = ops_name[len("param_ops_"):]
                else:
                    handler = unit.ops_setter(ops_name)
        if handler is not None and not re.fullmatch(r"\w+", handler):
            handler = None
        parser = TYPE_PARSER.get(ptype or "") if handler is None else unit.parser_of(handler)
        self._reg(kind=kind, name=prefix + name, location=loc, handler=handler, parser=parser,
                  param_type=ptype, cpp_conditions=where)

    def _static_key(self, unit: Unit, macro: str, args: list[tuple[int, int]],
                    loc: Location, where: tuple[str, ...] = ()) -> None:
        if "MAYBE" in macro:
            if len(args) != 2:
                return
            cfg = ctokens.identifier(unit.masked, *args[0])
            name = ctokens.identifier(unit.masked, *args[1])
            if cfg and name and cfg.startswith("CONFIG_"):
                self.keys.append(StaticKey(name, cfg[len("CONFIG_"):], "config", loc))
            return
        if len(args) != 1:
            return
        name = ctokens.identifier(unit.masked, *args[0])
        if not name:
            return
        bound = _IF_CONFIG.fullmatch(where[-1]) if where else None
        arms = set(re.findall(rb"DEFINE_STATIC_KEY_(TRUE|FALSE)(?:_RO)?\s*\(\s*" +
                              re.escape(name.encode()) + rb"\s*\)", unit.masked))
        if bound is None or arms != {b"TRUE", b"FALSE"}:
            self.keys.append(StaticKey(name, None, "true" if "TRUE" in macro else "false", loc))
            return
        # `#ifdef CONFIG_X` picks TRUE or FALSE: the key's initial state follows X (or its
        # negation, x86's x32_enabled_skey under X86_X32_DISABLED); one entry for both arms.
        symbol = bound.group(2)
        initial = "config" if ("TRUE" in macro) != bool(bound.group(1)) else "inverted"
        if not any(k.name == name and k.symbol == symbol and k.location.file == loc.file
                   for k in self.keys):
            self.keys.append(StaticKey(name, symbol, initial, loc))


