"""Which Kconfig symbols build a C file, and the KBUILD_MODNAME it is compiled with.

Read from the Makefile (or Kbuild) of every directory, as Kbuild would, without running make:
`obj-$(CONFIG_X) += foo.o` builds foo.c as module name "foo"; `bar-$(CONFIG_Y) += foo.o` with
`obj-y += bar.o` builds it into the composite "bar" (dashes become underscores, as Kbuild's
name-fix does); `obj-$(CONFIG_Z) += dir/` makes everything below dir/ depend on Z too;
`$(name-y)` inside an obj- list adds name's objects one by one (no composite); `ifdef CONFIG_X`,
`ifeq ($(CONFIG_X),y)` blocks add X. Only positive conditions are recorded: a symbol that
must be enabled (y or m) for the file to be compiled.

Make is not run, but a little of it is read: `include $(srctree)/...` lines (arch/x86/kvm's
Makefile includes virt/kvm/Makefile.kvm, so kvm_main.o is part of kvm.o), variables
(`KVM ?= ../../../virt/kvm`, then `$(KVM)/kvm_main.o`; `omapfb-objs := $(objs-yy)`), and a
`define` template called once per item of a list by `$(foreach ..., $(eval $(call T,...)))`
(drivers/platform/x86/intel builds vsec.o as module intel_vsec that way).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Optional

# Top-level and arch Makefiles name directories relative to the tree root with these lists.
_ROOT_LISTS = ("core", "drivers", "libs", "net", "virt", "head", "init")
_CONFIG = re.compile(r"CONFIG_(\w+)")
_ASSIGN = re.compile(r"^([A-Za-z0-9_.$()/,-]+?)\s*(\+=|:=|\?=|=)\s*(.*)$")
_LIST = re.compile(r"^(.+?)-(y|m|objs|\$\(.*\))$")
_VARREF = re.compile(r"^\$\(([A-Za-z0-9_.-]+)-(y|objs)\)$")
_REF = re.compile(r"\$\(([A-Za-z0-9_.-]+)\)")
# $(foreach t, LIST, $(eval $(call TEMPLATE,ARGS))) and $(eval $(foreach t,LIST,$(call ...)))
_FOREACH_CALL = re.compile(r"\$\(foreach\s+(\w+)\s*,\s*(.*?)\s*,\s*(\$\(eval\s+)?"
                           r"\$\(call\s+(\w+)\s*,((?:[^()]|\$\(\w+\))*)\)")
_MAX_INCLUDE_DEPTH = 4
_MAX_EXPANSION = 10_000  # tokens one list may expand to: far above any real Makefile
_MAX_LINES = 200_000  # included and template lines per directory (a real tree: a few hundred)


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


class _MakeState:
    """What one directory's Makefile (with the files it includes) has defined so far."""

    def __init__(self, d: str) -> None:
        self.d = d
        self.stack: list[tuple[Optional[str], Optional[str]]] = []  # (if taken, else taken)
        self.active: list[Optional[str]] = []
        # variable -> its words, each with the conditions it was added under; a list written
        # `name-$(CONFIG_X)` is kept as name-y (what make sees with X=y)
        self.vars: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        self.defines: dict[str, list[str]] = {}
        self.assigns: list[tuple[str, str, tuple[str, ...], list[str]]] = []
        self.budget = _MAX_LINES  # lines read from included files and template expansions

    def assign(self, name: str, op: str, rhs: list[str], outer: tuple[str, ...]) -> None:
        lm = _LIST.match(name)
        conds = outer
        if lm:
            stem, cond = lm.group(1), lm.group(2)
            self.assigns.append((stem, cond, outer, rhs))
            sym, module_only = _cond_symbol(cond)
            name = f"{stem}-m" if module_only else f"{stem}-{cond}" if cond == "objs" \
                else f"{stem}-y"
            conds = outer + ((sym,) if sym else ())
        items = [(tok, conds) for tok in rhs]
        if op == "+=":
            self.vars.setdefault(name, []).extend(items)
        elif op == "?=":
            self.vars.setdefault(name, items)
        else:
            self.vars[name] = items

    def expand(self, tokens: Iterable[str], depth: int = 0) -> list[tuple[str, tuple[str, ...]]]:
        """TOKENS with each whole `$(list)` replaced by its words (with their conditions), and
        `$(VAR)` inside a word by VAR's one word ($(KVM)/kvm_main.o, $(srctree)/...)."""
        out: list[tuple[str, tuple[str, ...]]] = []
        for tok in tokens:
            m = _REF.fullmatch(tok)
            if m and m.group(1) in self.vars and depth < 8:
                for word, conds in self.vars[m.group(1)]:
                    out.extend((w, conds + c) for w, c in self.expand([word], depth + 1))
            else:
                out.append((self.substitute(tok), ()))
            if len(out) > _MAX_EXPANSION:
                break
        return out[:_MAX_EXPANSION]

    def substitute(self, text: str) -> str:
        """TEXT with $(srctree), $(src), $(obj) and one-word variables written out; a path
        from the tree root comes out with a leading "/"."""
        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name == "srctree":
                return "/"
            if name in ("src", "obj"):
                return "/" + self.d
            words = self.vars.get(name)
            return words[0][0] if words and len(words) == 1 else m.group(0)

        for _ in range(4):
            new = _REF.sub(one, text)
            if new == text:
                break
            text = new
        return text


def _join(base: str, tok: str) -> str:
    """Path TOK of a Makefile in BASE, relative to the tree root (TOK starting with "/" is)."""
    if tok.startswith("/"):
        return posixpath.normpath(tok).lstrip("/")
    return posixpath.normpath(posixpath.join(base, tok)) if base else posixpath.normpath(tok)


class KbuildMap:
    """The parsed Makefiles of a tree, answering `build_info(path_of_c_file)`."""

    def __init__(self, makefiles: Mapping[str, str],
                 read: Optional[Callable[[str], Optional[str]]] = None) -> None:
        """MAKEFILES maps a directory (relative to the tree root, "" for the root) to its text.
        READ gives the text of a file an `include` line names (root-relative path), or None."""
        self._objs: dict[str, list[_Entry]] = {}
        self._dirs: dict[str, list[_Entry]] = {}
        # object path -> composites or lists naming it: (makefile dir, stem, conditions)
        self._member_of: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
        self._varrefs: dict[tuple[str, str], list[_Entry]] = {}
        self._dir_chain: dict[str, tuple[tuple[str, ...], bool]] = {}
        self._read = read
        for d in sorted(makefiles):
            self._parse(d, makefiles[d])

    def _parse(self, d: str, text: str) -> None:
        state = _MakeState(d)
        self._lines(state, text, ())
        is_root_list = d == "" or (d.startswith("arch/") and d.count("/") == 1)
        for stem, cond, outer, rhs in state.assigns:
            if stem in ("obj", "lib") or (is_root_list and stem in _ROOT_LISTS):
                sym, module_only = _cond_symbol(cond)
                conds = outer + ((sym,) if sym else ())
                base = "" if stem != "obj" and stem != "lib" else d
                for tok, extra in state.expand(rhs):
                    self._add_obj_token(d, base, tok, _Entry(d, conds + extra, module_only))
            else:
                sym, _ = _cond_symbol(cond)
                conds = outer + ((sym,) if sym else ())
                for tok, extra in state.expand(rhs):
                    if tok.endswith(".o") and "$" not in tok:
                        obj = _join(d, tok)
                        self._member_of.setdefault(obj, []).append((d, stem, conds + extra))

    def _lines(self, state: _MakeState, text: str, extra: tuple[str, ...], depth: int = 0) -> None:
        """Read TEXT's lines into STATE; EXTRA: conditions of the $(foreach) item they come from."""
        lines = iter(_logical_lines(text))
        for line in lines:
            if depth:  # an included file's or a template's line: the Makefile's own are read
                state.budget -= 1
                if state.budget < 0:
                    return  # hostile: far more than includes and templates of a real tree give
            words = line.split(None, 1)
            keyword = words[0]
            if keyword in ("ifdef", "ifndef", "ifeq", "ifneq"):
                pos, neg = _if_condition(keyword, words[1] if len(words) > 1 else "")
                state.stack.append((pos, neg))
                state.active.append(pos)
                continue
            if keyword == "else" and state.stack:
                state.active[-1] = state.stack[-1][1]
                continue
            if keyword == "endif" and state.stack:
                state.stack.pop()
                state.active.pop()
                continue
            if keyword == "define" and len(words) > 1:
                body: list[str] = []
                for inner in lines:
                    if inner.strip() == "endef":
                        break
                    body.append(inner)
                state.defines[words[1].strip()] = body
                continue
            if keyword in ("include", "-include", "sinclude") and len(words) > 1:
                if depth < _MAX_INCLUDE_DEPTH and self._read is not None:
                    for path in state.substitute(words[1]).split():
                        included = self._read(_join("", path)) if "$" not in path else None
                        if included is not None:
                            self._lines(state, included, extra, depth + 1)
                continue
            if "$(foreach" in line and "$(call" in line:
                self._foreach_call(state, line, extra, depth)
                continue
            m = _ASSIGN.match(line.strip())
            if not m:
                continue
            outer = tuple(s for s in state.active if s) + extra
            state.assign(m.group(1), m.group(2), m.group(3).split(), outer)

    def _foreach_call(self, state: _MakeState, line: str, extra: tuple[str, ...],
                      depth: int) -> None:
        """`$(foreach t, $(basename $(list-y)), $(eval $(call TEMPLATE,$(t),y)))`: TEMPLATE's
        lines once per item of list-y (drivers/platform/x86/intel/Makefile's intel-* modules)."""
        m = _FOREACH_CALL.search(line)
        if not m or m.group(4) not in state.defines or depth >= _MAX_INCLUDE_DEPTH:
            return  # (a template calling itself stops here)
        var, listexpr, template = m.group(1), m.group(2), m.group(4)
        args = [a.strip() for a in m.group(5).split(",")]
        body = "\n".join(state.defines[template])
        basename = listexpr.startswith("$(basename")
        words = (listexpr[len("$(basename"):-1] if basename else listexpr).split()
        for tok, conds in state.expand(words):
            value = posixpath.splitext(tok)[0] if basename else tok
            text = body.replace("$$", "$")
            for i, arg in enumerate(args, 1):
                text = text.replace(f"$({i})", arg.replace(f"$({var})", value))
            self._lines(state, text, extra + conds, depth + 1)

    def _add_obj_token(self, d: str, base: str, tok: str, entry: _Entry) -> None:
        ref = _VARREF.match(tok)
        if ref:
            self._varrefs.setdefault((d, ref.group(1)), []).append(entry)
        elif "$" in tok:
            return  # $(SRCARCH), $(addprefix ...): not worth expanding here
        elif tok.endswith("/"):
            path = _join(base, tok).rstrip("/")
            self._dirs.setdefault(path, []).append(entry)
        elif tok.endswith(".o"):
            self._objs.setdefault(_join(base, tok), []).append(entry)

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
        chain = tuple(dict.fromkeys(outer + e.conds + extra))  # a symbol required twice: once
        return BuildInfo(_name_fix(modname), chain, mod or e.module_only)

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
