"""Which Kconfig symbols build a C file, and the KBUILD_MODNAME it is compiled with.

Read from the Makefile (or Kbuild) of every directory, as Kbuild would, without running make:
`obj-$(CONFIG_X) += foo.o` builds foo.c as module name "foo"; `bar-$(CONFIG_Y) += foo.o` with
`obj-y += bar.o` builds it into the composite "bar" (dashes become underscores, as Kbuild's
name-fix does); `obj-$(CONFIG_Z) += dir/` makes everything below dir/ depend on Z too;
`$(name-y)` inside an obj- list adds name's objects one by one (no composite); `ifdef CONFIG_X`,
`ifeq ($(CONFIG_X),y)` blocks add X. Only positive conditions are recorded: a symbol that
must be enabled (y or m) for the file to be compiled.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Optional

# Top-level and arch Makefiles name directories relative to the tree root with these lists.
_ROOT_LISTS = ("core", "drivers", "libs", "net", "virt", "head", "init")
_CONFIG = re.compile(r"CONFIG_(\w+)")
_ASSIGN = re.compile(r"^([A-Za-z0-9_.$()/,-]+?)\s*(\+=|:=|\?=|=)\s*(.*)$")
_LIST = re.compile(r"^(.+?)-(y|m|objs|\$\(.*\))$")
_VARREF = re.compile(r"^\$\(([A-Za-z0-9_.-]+)-(y|objs)\)$")


@dataclass(frozen=True)
class BuildInfo:
    """How one C file is built."""

    modname: str  # KBUILD_MODNAME
    chain: tuple[str, ...]  # symbols (without CONFIG_) that must be enabled, outermost first
    module_only: bool = False  # listed only in obj-m: never built in


@dataclass(frozen=True)
class _Entry:
    makefile_dir: str
    conds: tuple[str, ...]
    module_only: bool


def _logical_lines(text: str) -> Iterable[str]:
    pending = ""
    for raw in text.split("\n"):
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = pending + raw
        pending = ""
        hash_at = line.find("#")
        if hash_at >= 0:
            line = line[:hash_at]
        if line.strip():
            yield line
    if pending.strip():
        yield pending


def _cond_symbol(cond: str) -> tuple[Optional[str], bool]:
    """(symbol, module_only) for the part after `obj-`: y, m, $(CONFIG_X), $(subst m,y,...)."""
    if cond == "m":
        return None, True
    m = _CONFIG.search(cond)
    return (m.group(1) if m else None), False


def _if_condition(keyword: str, rest: str) -> tuple[Optional[str], Optional[str]]:
    """(symbol when true, symbol when false) of an ifdef/ifndef/ifeq/ifneq line."""
    m = _CONFIG.search(rest)
    if not m:
        return None, None
    sym = m.group(1)
    if keyword == "ifdef":
        return sym, None
    if keyword == "ifndef":
        return None, sym
    # ifeq ($(CONFIG_X),y) / ifneq ($(CONFIG_X),) are positive; ifeq ($(CONFIG_X),) negative.
    args = rest.strip()
    empty_other = bool(re.search(r",\s*\)|\(\s*,|\"\"|''", args))
    positive = (keyword == "ifneq") == empty_other
    return (sym, None) if positive else (None, sym)


class KbuildMap:
    """The parsed Makefiles of a tree, answering `build_info(path_of_c_file)`."""

    def __init__(self, makefiles: Mapping[str, str]) -> None:
        """MAKEFILES maps a directory (relative to the tree root, "" for the root) to its text."""
        self._objs: dict[str, list[_Entry]] = {}
        self._dirs: dict[str, list[_Entry]] = {}
        # object path -> composites or lists naming it: (makefile dir, stem, conditions)
        self._member_of: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
        self._varrefs: dict[tuple[str, str], list[_Entry]] = {}
        self._dir_chain: dict[str, tuple[tuple[str, ...], bool]] = {}
        for d in sorted(makefiles):
            self._parse(d, makefiles[d])

    def _parse(self, d: str, text: str) -> None:
        # Each stack item: (symbol if taken, symbol if else-branch taken)
        stack: list[tuple[Optional[str], Optional[str]]] = []
        active: list[Optional[str]] = []
        is_root_list = d == "" or (d.startswith("arch/") and d.count("/") == 1)
        for line in _logical_lines(text):
            words = line.split(None, 1)
            keyword = words[0]
            if keyword in ("ifdef", "ifndef", "ifeq", "ifneq"):
                pos, neg = _if_condition(keyword, words[1] if len(words) > 1 else "")
                stack.append((pos, neg))
                active.append(pos)
                continue
            if keyword == "else" and stack:
                active[-1] = stack[-1][1]
                continue
            if keyword == "endif" and stack:
                stack.pop()
                active.pop()
                continue
            m = _ASSIGN.match(line.strip())
            if not m:
                continue
            lm = _LIST.match(m.group(1))
            if not lm:
                continue
            stem, cond = lm.group(1), lm.group(2)
            outer = tuple(s for s in active if s)
            if stem in ("obj", "lib") or (is_root_list and stem in _ROOT_LISTS):
                sym, module_only = _cond_symbol(cond)
                conds = outer + ((sym,) if sym else ())
                base = "" if stem != "obj" and stem != "lib" else d
                self._add_obj_line(d, base, m.group(3), _Entry(d, conds, module_only))
            else:
                sym, _ = _cond_symbol(cond)
                conds = outer + ((sym,) if sym else ())
                for tok in m.group(3).split():
                    if tok.endswith(".o"):
                        obj = posixpath.normpath(posixpath.join(d, tok)) if d else tok
                        self._member_of.setdefault(obj, []).append((d, stem, conds))

    def _add_obj_line(self, d: str, base: str, rhs: str, entry: _Entry) -> None:
        for tok in rhs.split():
            ref = _VARREF.match(tok)
            if ref:
                self._varrefs.setdefault((d, ref.group(1)), []).append(entry)
            elif "$" in tok:
                continue  # $(SRCARCH), $(addprefix ...): not worth expanding here
            elif tok.endswith("/"):
                path = posixpath.normpath(posixpath.join(base, tok)) if base else tok.rstrip("/")
                self._dirs.setdefault(path, []).append(entry)
            elif tok.endswith(".o"):
                path = posixpath.normpath(posixpath.join(base, tok)) if base else tok
                self._objs.setdefault(path, []).append(entry)

    def _chain_of_dir(self, d: str, depth: int = 0) -> tuple[tuple[str, ...], bool]:
        if d in ("", ".") or depth > 64:
            return (), False
        if d in self._dir_chain:
            return self._dir_chain[d]
        self._dir_chain[d] = ((), False)  # breaks reference cycles in hostile Makefiles
        refs = self._dirs.get(d)
        if refs:
            e = refs[0]
            outer, mod = self._chain_of_dir(e.makefile_dir, depth + 1)
            result = (outer + e.conds, mod or e.module_only)
        else:  # referenced in a way we do not read (or not at all): inherit the parent's
            result = self._chain_of_dir(posixpath.dirname(d), depth + 1)
        self._dir_chain[d] = result
        return result

    def _from_entry(self, e: _Entry, extra: tuple[str, ...], modname: str) -> BuildInfo:
        outer, mod = self._chain_of_dir(e.makefile_dir)
        return BuildInfo(_name_fix(modname), outer + e.conds + extra, mod or e.module_only)

    def build_info(self, c_path: str) -> Optional[BuildInfo]:
        """How C_PATH (relative to the root) is built, or None if no Makefile lists it."""
        obj = c_path[:-2] + ".o"
        stem = posixpath.basename(obj)[:-2]
        direct = self._objs.get(obj)
        if direct:
            return self._from_entry(direct[0], (), stem)
        for d, comp, conds in self._member_of.get(obj, ()):
            comp_obj = posixpath.join(d, comp + ".o") if d else comp + ".o"
            owners = self._objs.get(comp_obj)
            if owners:
                return self._from_entry(owners[0], conds, comp)
            refs = self._varrefs.get((d, comp))
            if refs:
                return self._from_entry(refs[0], conds, stem)
        return None

    def fallback(self, c_path: str) -> BuildInfo:
        """Build info for a file no Makefile lists: its own name, its directory's chain."""
        chain, mod = self._chain_of_dir(posixpath.dirname(c_path))
        return BuildInfo(_name_fix(posixpath.basename(c_path)[:-2]), chain, mod)


def _name_fix(name: str) -> str:
    return name.replace("-", "_").replace(",", "_")
