"""The C side of boot parameters: early_param, __setup, core_param, module_param and static keys.

No compiler runs. Each C file that mentions a registration macro is masked (kpolicy.params.ctokens:
comments and literal contents blanked, offsets kept), its directives are walked in order to
follow `#ifdef` nesting, `MODULE_PARAM_PREFIX` redefinitions and local `#include "x.h"` files,
and each macro call's arguments are read back. Function-like macros that wrap a registration
(a file's own, or one of an included include/ header such as torture_param) are expanded at
their calls. Names are the ones the kernel matches:
`KBUILD_MODNAME.` (from the Makefiles, kpolicy.params.kbuild) or MODULE_PARAM_PREFIX before a
module parameter, no prefix for core_param, and the literal for early_param/__setup.

Cache key: the (path, size, mtime_ns) of every C file, header and Makefile, not their
contents. Hashing 730 MB of C on every run would cost more than the scan saves; the stat
triple changes whenever a file is written by any ordinary means (an edit keeping both the size
and the nanosecond mtime is the one change this misses).
"""

from __future__ import annotations

import bisect
import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kpolicy.cache import Cache, content_key
from kpolicy.errors import KpolicyError
from kpolicy.forked import map_in_parts
from kpolicy.kconfig.model import Location
from kpolicy.params import ctokens
from kpolicy.params.kbuild import BuildInfo, KbuildMap
from kpolicy.params.model import Registration, StaticKey
from kpolicy.textio import read_bytes, read_text
from kpolicy.tree import KernelTree


def _source_digest() -> str:
    """A digest of the scanner's own code, read once at import: part of the cache key, so
    results are never read back by (or stored for) a different scanner than the one running."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in ("registrations.py", "ctokens.py", "kbuild.py", "model.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()


_SOURCE_DIGEST = _source_digest()

# Directories that are not part of a kernel build.
_PRUNE = frozenset({".git", "Documentation", "tools", "LICENSES"})
# A file is worth masking only if it contains one of these.
# "_param(" catches wrappers such as torture_param(.
_KEYWORDS = (b"module_param", b"_param(", b"__setup", b"early_param", b"core_param",
             b"DEFINE_STATIC_KEY", b"MODULE_PARAM_PREFIX")
_MAX_INCLUDE_DEPTH = 4
# The largest C file of Linux 7.2 is under 3 MiB; a bigger one is an error. Headers that big
# are generated register tables (24 MiB in amdgpu): they are skipped, not read.
MAX_C_FILE = 8 * 1024 * 1024
# Linux 7.2's busiest file makes a few hundred registration calls; far more is hostile input.
MAX_CALLS_PER_FILE = 20_000

# The calls worth reading, found by cheap substring search for these anchors then matched here.
_ANCHORS = (b"early_param", b"__setup", b"_param", b"DEFINE_STATIC_KEY_")
# (macro name starts at most this many bytes before its anchor: "__core" before "_param")
_ANCHOR_LEAD = 8
_CALL = re.compile(
    rb"(?<![\w#])(early_param_on_off|early_param|__setup_param|__setup|__core_param_cb|core_param_cb|"
    rb"core_param_unsafe|core_param|__module_param_call|module_param\w*|"
    rb"DEFINE_STATIC_KEY_(?:MAYBE_RO|MAYBE|TRUE_RO|FALSE_RO|TRUE|FALSE))\s*\("
)
_IS_ENABLED_INIT = re.compile(rb"IS_ENABLED\s*\(\s*CONFIG_(\w+)\s*\)\s*;")
_DECL_WORD = re.compile(rb"[A-Za-z_]\w*")
_INCLUDE = re.compile(r'^"([^"]+)"')
_C_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]+"([^"\n]+\.c)"', re.M)

# Parsers in the order that best describes the values a handler accepts: the first one the
# handler's body calls wins.
_PARSERS = (
    "kstrtobool", "lookup_constant", "match_string", "sysfs_match_string", "parse_option_str",
    "get_options", "get_option", "memparse", "kstrtoint", "kstrtouint", "kstrtoul", "kstrtoull",
    "kstrtol", "kstrtoll", "kstrtou8", "kstrtou16", "kstrtou32", "kstrtou64", "kstrtos32",
    "simple_strtoul", "simple_strtoull", "simple_strtol", "cmdline_find_option_bool",
    "sysfs_streq", "strcmp", "strncmp", "str_has_prefix", "strstr", "param_set_bool",
    "param_set_bool_enable_only", "param_set_invbool", "param_set_int", "param_set_uint",
    "param_set_uint_minmax", "param_set_long", "param_set_ulong", "param_set_ullong",
    "param_set_byte", "param_set_short", "param_set_ushort", "param_set_hexint",
    "param_set_charp", "param_set_copystring",
)
_PARSER_CALL = re.compile(rb"\b(" + b"|".join(p.encode() for p in _PARSERS) + rb")\s*\(")
_PARSER_RANK = {p: i for i, p in enumerate(_PARSERS)}

# module_param types and the kernel_param_ops behind them: the parser that reads the value.
_TYPE_PARSER = {
    "bool": "kstrtobool", "invbool": "kstrtobool", "bool_enable_only": "kstrtobool",
    "byte": "kstrtou8", "short": "kstrtos16", "ushort": "kstrtou16", "int": "kstrtoint",
    "uint": "kstrtouint", "long": "kstrtol", "ulong": "kstrtoul", "ullong": "kstrtoull",
    "hexint": "kstrtouint", "charp": "string", "string": "string", "copystring": "string",
    "uint_minmax": "kstrtouint",
}

# Positions of (name, type) arguments per module_param flavour; type None: ops/setter given.
_MODULE_PARAM_ARGS: dict[str, tuple[int, Optional[int]]] = {
    "module_param": (0, 1), "module_param_unsafe": (0, 1),
    "module_param_named": (0, 2), "module_param_named_unsafe": (0, 2),
    "module_param_cb": (0, None), "module_param_cb_unsafe": (0, None),
    "module_param_call": (0, None), "module_param_array": (0, 1),
    "module_param_array_named": (0, 2), "module_param_string": (0, None),
    "module_param_hw": (0, 1), "module_param_hw_named": (0, 2), "module_param_hw_array": (0, 1),
}


@dataclass(frozen=True)
class _SourceFile:
    rel: str
    path: str
    size: int
    mtime_ns: int


def _walk(
    root: Path,
) -> tuple[list[_SourceFile], dict[str, list[str]], list[tuple[str, int, int]]]:
    """Regular (non-symlink) C files, each directory's kbuild file names, and the stat triples
    of every header (a registration or a wrapper macro there reaches the files including it)."""
    c_files: list[_SourceFile] = []
    makefiles: dict[str, list[str]] = {}
    headers: list[tuple[str, int, int]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _PRUNE and not d.startswith("."))
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        # like C files, a symlinked kbuild file is not read: it may lead outside the tree
        names: list[str] = [n for n in ("Kbuild", "Makefile") if n in filenames
                            and stat.S_ISREG(os.lstat(os.path.join(dirpath, n)).st_mode)]
        if names:
            makefiles[rel_dir] = names
        for name in sorted(filenames):
            is_c = name.endswith(".c")
            if not is_c and not name.endswith(".h"):
                continue
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):  # symlinks and special files are not read
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if is_c:
                c_files.append(_SourceFile(rel, full, st.st_size, st.st_mtime_ns))
            else:
                headers.append((rel, st.st_size, st.st_mtime_ns))
    return c_files, makefiles, headers


def _stat_key(root: Path, rel: str) -> tuple[str, int, int]:
    st = os.lstat(root / rel)
    return (rel, st.st_size, st.st_mtime_ns)


_Scan = tuple[tuple[Registration, ...], tuple[StaticKey, ...], frozenset[str]]


def _cached_scan(tree: KernelTree, cache: Optional[Cache], jobs: int = 1) -> _Scan:
    c_files, makefiles, headers = _walk(tree.root)
    if cache is None:
        return _scan(tree.root, c_files, makefiles, jobs)
    key_parts: list[tuple[str, int, int]] = [(f.rel, f.size, f.mtime_ns) for f in c_files]
    for d, names in sorted(makefiles.items()):
        key_parts.extend(_stat_key(tree.root, posixpath.join(d, n) if d else n) for n in names)
    key = content_key(_SOURCE_DIGEST, tree.version, tuple(key_parts), tuple(headers))
    return cache.get_or_build(
        "params-registrations", key, lambda: _scan(tree.root, c_files, makefiles, jobs), tuple
    )


def scan_registrations(
    tree: KernelTree, cache: Optional[Cache] = None
) -> tuple[tuple[Registration, ...], tuple[StaticKey, ...]]:
    """Every boot-parameter registration and static key in the tree's C files, sorted by place."""
    regs, keys, _reads = _cached_scan(tree, cache)
    return regs, keys


def scan_all(tree: KernelTree, cache: Optional[Cache] = None, jobs: int = 1) -> _Scan:
    """scan_registrations plus command_line_reads, from one scan (by JOBS processes)."""
    return _cached_scan(tree, cache, jobs)


def command_line_reads(tree: KernelTree, cache: Optional[Cache] = None) -> frozenset[str]:
    """Names the kernel looks up in the raw command line without registering them: string
    arguments of cmdline_find_option()/cmdline_find_option_bool(), and the names of alias
    tables (fs/proc/proc_sysctl.c sysctl_aliases[], arm64 idreg-override aliases[])."""
    return _cached_scan(tree, cache)[2]


def _read_kbuild(root: Path, makefiles: dict[str, list[str]]) -> KbuildMap:
    texts: dict[str, str] = {}
    for d, names in makefiles.items():
        # Kbuild wins over Makefile for obj- lists; the root and arch/<a> Makefiles also carry
        # the core-y/drivers-y/libs-y lists the top Makefile reads, so read both there.
        both = d == "" or (d.startswith("arch/") and d.count("/") == 1)
        chosen = names if both else names[:1]
        texts[d] = "\n".join(
            read_text(root / d / n, what="kbuild file") for n in chosen
        )
    return KbuildMap(texts)


def _scan(
    root: Path, c_files: list[_SourceFile], makefiles: dict[str, list[str]], jobs: int = 1
) -> _Scan:
    """The registrations, static keys and raw command-line reads of C_FILES. With JOBS > 1,
    forked workers share the files, each reading every JOBS-th one (the result is the same)."""
    kbuild = _read_kbuild(root, makefiles)
    jobs = max(1, min(jobs, len(c_files)))
    numbered = list(enumerate(c_files))
    sifted = map_in_parts(_sift, [numbered[i::jobs] for i in range(jobs)])
    # A .c file #included by other .c files builds as its first includer, in walk order.
    first_includer: dict[str, tuple[int, str]] = {}
    reads: set[str] = set()
    candidates: list[tuple[int, _SourceFile]] = []
    for part_includes, part_reads, part_candidates in sifted:
        for target, (index, rel) in part_includes.items():
            if target not in first_includer or index < first_includer[target][0]:
                first_includer[target] = (index, rel)
        reads |= part_reads
        candidates += part_candidates
    included_by = {target: rel for target, (_index, rel) in first_includer.items()}
    candidates.sort(key=lambda c: c[0])
    files = [f for _index, f in candidates]

    def scan_part(part: list[_SourceFile]) -> tuple[list[Registration], list[StaticKey]]:
        return _scan_candidates(root, kbuild, included_by, part)

    regs: list[Registration] = []
    keys: list[StaticKey] = []
    for part_regs, part_keys in map_in_parts(scan_part, [files[i::jobs] for i in range(jobs)]):
        regs += part_regs
        keys += part_keys
    regs.sort(key=lambda r: (r.location.file, r.location.line, r.kind, r.name))
    keys.sort(key=lambda k: (k.location.file, k.location.line, k.name))
    return tuple(regs), tuple(keys), frozenset(reads)


def _sift(files: list[tuple[int, _SourceFile]]) -> tuple[
    dict[str, tuple[int, str]], set[str], list[tuple[int, _SourceFile]]
]:
    """Of FILES (each with its index in walk order): which .c files each #includes (target ->
    the first includer's index and path), the raw command-line reads, and the files that may
    register something."""
    includes: dict[str, tuple[int, str]] = {}
    reads: set[str] = set()
    candidates: list[tuple[int, _SourceFile]] = []
    for index, f in files:
        data = read_bytes(f.path, what="C file", limit=MAX_C_FILE)
        if b'.c"' in data:
            base = posixpath.dirname(f.rel)
            for m in _C_INCLUDE.finditer(data):
                target = posixpath.normpath(posixpath.join(base, m.group(1).decode("latin-1")))
                includes.setdefault(target, (index, f.rel))
        if any(k in data for k in _KEYWORDS):
            candidates.append((index, f))
        if b"cmdline_find_option" in data or b"aliases[]" in data:
            reads.update(_raw_reads(data))
    return includes, reads, candidates


def _scan_candidates(root: Path, kbuild: KbuildMap, included_by: dict[str, str],
                     files: list[_SourceFile]) -> tuple[list[Registration], list[StaticKey]]:
    """The registrations and static keys of FILES, in no particular order."""

    def build_info(rel: str) -> BuildInfo:
        seen: set[str] = set()
        cur = rel
        while cur not in seen:
            seen.add(cur)
            info = kbuild.build_info(cur)
            if info is not None:
                return info
            if cur not in included_by:
                break
            cur = included_by[cur]
        return kbuild.fallback(rel)

    regs: list[Registration] = []
    keys: list[StaticKey] = []
    header_wrappers: dict[str, dict[str, list[_Wrapper]]] = {}
    for f in files:
        data = read_bytes(f.path, what="C file", limit=MAX_C_FILE)
        scanner = _FileScanner(root, build_info(f.rel), regs, keys, header_wrappers)
        scanner.scan_file(f.rel, data, depth=0)
    return regs, keys


_BRACES = re.compile(rb"[{}]")
_FUNCTION_DEF = re.compile(rb"\b(\w+)\s*\([^;{}()]*\)\s*\{")
_OPS_DEF = re.compile(rb"kernel_param_ops\s+(\w+)\s*(?:__\w+\s*)*=\s*\{")
_FIND_OPTION = re.compile(rb"\bcmdline_find_option(?:_bool)?\s*\(")
_ALIAS_TABLE = re.compile(rb"aliases\[\]\s*(?:__\w+\s*)*=\s*\{")
_ALIAS_PAIR = re.compile(rb'\{\s*"([^"\n]+)"\s*,\s*"')


def _raw_reads(data: bytes) -> set[str]:
    """Names a file looks up in the raw command line (see command_line_reads)."""
    masked = ctokens.mask(data)
    names: set[str] = set()
    for m in _FIND_OPTION.finditer(masked):
        parsed = ctokens.call_arguments(masked, m.end() - 1)
        for span in (parsed[0][:2] if parsed else ()):
            value = ctokens.string_value(data, masked, *span)
            if value:
                names.add(value.split("=", 1)[0])
                break
    for m in _ALIAS_TABLE.finditer(masked):
        end = masked.find(b"};", m.end())  # alias tables are flat: no nested braces to skip
        for pair in _ALIAS_PAIR.finditer(data, m.end(), end if end >= 0 else m.end()):
            names.add(pair.group(1).decode("latin-1").split("=", 1)[0])
    return names


def _read_header(path: Path) -> Optional[bytes]:
    """A header's bytes; None when it is missing, a symlink, special, or too big to matter."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_C_FILE:
        return None
    return read_bytes(path, what="C header", limit=MAX_C_FILE)


class _FileScanner:
    """Reads one translation unit: a C file and the local headers it includes."""

    def __init__(self, root: Path, info: BuildInfo, regs: list[Registration],
                 keys: list[StaticKey], header_wrappers: dict[str, dict[str, list[_Wrapper]]]
                 ) -> None:
        self.root = root
        self.header_wrappers = header_wrappers  # shared by every file of one scan
        self.info = info
        self.regs = regs
        self.keys = keys
        self.prefix: Optional[str] = info.modname + "."  # MODULE_PARAM_PREFIX now in force
        self.strings: dict[str, str] = {}  # `#define NAME "literal"` seen so far
        # Macros of this file or of headers it includes that wrap a registration
        # (torture_param, hugetlb_early_param): name -> their expansions.
        self.wrappers: dict[str, list[_Wrapper]] = {}
        self.visited: set[str] = set()

    def scan_file(self, rel: str, data: bytes, depth: int) -> None:
        self.visited.add(rel)
        masked = ctokens.mask(data)
        lines = ctokens.Lines(data)
        unit = _Unit(rel, data, masked, lines)
        conds: list[Optional[str]] = []  # one per open #if; None when it names no CONFIG_/MODULE
        define_spans: list[tuple[int, int]] = []
        events: list[tuple[int, int, object]] = []  # (offset, order, directive or call match)
        found = _calls(masked)
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
            spans = [(d.start, d.end) for d in defines]
            for m in pat.finditer(masked):
                if not any(s <= m.start() < e for s, e in spans):
                    events.append((m.start(), 1, m))
        for m in _is_enabled_inits(masked):
            events.append((m.start(), 2, m))
        events.sort(key=lambda e: (e[0], e[1]))
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

    def _collect_wrappers(self, unit: _Unit, defines: list[ctokens.Directive],
                          found: list[re.Match[bytes]]) -> None:
        """Learn the wrappers this file defines and those of the headers it includes."""
        self.wrappers.update(_wrappers_in(unit, defines, found))
        for m in re.finditer(rb'^[ \t]*#[ \t]*include[ \t]*<([^>\n]+\.h)>', unit.original, re.M):
            rel = posixpath.normpath("include/" + m.group(1).decode("latin-1"))
            if rel.startswith("include/") and rel not in self.header_wrappers:
                self.header_wrappers[rel] = self._header_wrappers(rel)
            self.wrappers.update(self.header_wrappers.get(rel, {}))

    def _header_wrappers(self, rel: str) -> dict[str, list[_Wrapper]]:
        data = _read_header(self.root / rel)
        if data is None or not any(k in data for k in _KEYWORDS):
            return {}
        masked = ctokens.mask(data)
        unit = _Unit(rel, data, masked, ctokens.Lines(data))
        defines = [d for d in ctokens.directives(masked) if d.name == "define"]
        return _wrappers_in(unit, defines, _calls(masked))

    def _initial_value(self, unit: _Unit, m: re.Match[bytes]) -> None:
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
                   define_spans: list[tuple[int, int]], unit: _Unit, depth: int) -> None:
        if d.name in ("if", "ifdef", "ifndef"):
            conds.append(_condition(d.name, d.text(unit.original)))
        elif d.name in ("elif", "elifdef", "elifndef") and conds:
            conds[-1] = _condition(d.name[2:] if d.name != "elif" else "if",
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
                out.append(self.info.modname)
            elif tok in self.strings:
                out.append(self.strings[tok])
            else:
                return None
        return "".join(out)

    def _include(self, unit: _Unit, d: ctokens.Directive, depth: int) -> None:
        m = _INCLUDE.match(d.text(unit.original))
        if not m or not m.group(1).endswith(".h"):
            return
        rel = posixpath.normpath(posixpath.join(posixpath.dirname(unit.rel), m.group(1)))
        if rel.startswith("../") or rel in self.visited or "/include/" in f"/{rel}":
            return
        data = _read_header(self.root / rel)
        if data is not None and any(k in data for k in _KEYWORDS):
            self.scan_file(rel, data, depth + 1)
        else:
            self.visited.add(rel)

    def _call(self, unit: _Unit, m: re.Match[bytes], where: tuple[str, ...],
              loc: Optional[Location] = None) -> None:
        macro = m.group(1).decode("latin-1")
        parsed = ctokens.call_arguments(unit.masked, m.end() - 1)
        if parsed is None:
            return
        args = parsed[0]
        loc = loc or Location(unit.rel, unit.lines.line(m.start()))
        if macro.startswith("DEFINE_STATIC_KEY_"):
            self._static_key(unit, macro, args, loc)
        elif macro in ("early_param", "__setup", "__setup_param"):
            self._setup(unit, macro, args, loc, where)
        elif macro == "early_param_on_off":
            self._on_off(unit, args, loc, where)
        elif macro in self.wrappers:
            actual = [unit.original_text(span) for span in args]
            for wrapper in self.wrappers[macro]:
                text = wrapper.expand(actual)
                if text is None:
                    continue
                data = text.encode("latin-1", "replace")
                sub = _Unit(unit.rel, data, ctokens.mask(data), ctokens.Lines(data), parent=unit)
                inner = _CALL.match(sub.masked)
                if inner is not None:
                    self._call(sub, inner, where, loc)
        else:
            self._module_param(unit, macro, args, loc, where)

    def _reg(self, **fields: object) -> None:
        self.regs.append(Registration(
            built_if=self.info.chain[-1] if self.info.chain else None,
            built_if_chain=self.info.chain, module_only=self.info.module_only,
            **fields))  # type: ignore[arg-type]

    def _string_arg(self, unit: _Unit, span: tuple[int, int]) -> Optional[str]:
        value = ctokens.string_value(unit.original, unit.masked, *span)
        if value is None:
            ident = ctokens.identifier(unit.masked, *span)
            value = self.strings.get(ident) if ident else None
        return value

    def _setup(self, unit: _Unit, macro: str, args: list[tuple[int, int]], loc: Location,
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
                  setup_has_equals=literal.endswith("="), cpp_conditions=where)

    def _on_off(self, unit: _Unit, args: list[tuple[int, int]], loc: Location,
                where: tuple[str, ...]) -> None:
        if len(args) != 4:
            return
        for span in args[:2]:
            name = self._string_arg(unit, span)
            if name:
                self._reg(kind="early_param", name=name.rstrip("="), location=loc,
                          parser="early_param_on_off", cpp_conditions=where)
        var = ctokens.identifier(unit.masked, *args[2])
        sym = ctokens.identifier(unit.masked, *args[3])
        if var and sym and sym.startswith("CONFIG_"):
            self.keys.append(StaticKey(var, sym[len("CONFIG_"):], "config", loc, kind="variable"))

    def _module_param(self, unit: _Unit, macro: str, args: list[tuple[int, int]],
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
        if macro.startswith(("core_param", "__core_param")):
            if len(args) != 4:
                return
            name = ctokens.identifier(unit.masked, *args[0])
            if macro.endswith("core_param_cb"):
                self._param(unit, "core_param", "", name, None, unit.text(args[1]), loc, where)
            else:
                self._param(unit, "core_param", "", name, unit.text(args[2]), None, loc, where)
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

    def _param(self, unit: _Unit, kind: str, prefix: Optional[str], name: Optional[str],
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
                if ops_name.startswith("param_ops_") and ops_name[10:] in _TYPE_PARSER:
                    ptype = ops_name[len("param_ops_"):]
                else:
                    handler = unit.ops_setter(ops_name)
        if handler is not None and not re.fullmatch(r"\w+", handler):
            handler = None
        parser = _TYPE_PARSER.get(ptype or "") if handler is None else unit.parser_of(handler)
        self._reg(kind=kind, name=prefix + name, location=loc, handler=handler, parser=parser,
                  param_type=ptype, cpp_conditions=where)

    def _static_key(self, unit: _Unit, macro: str, args: list[tuple[int, int]],
                    loc: Location) -> None:
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
        if name:
            self.keys.append(StaticKey(name, None, "true" if "TRUE" in macro else "false", loc))


def _condition(kind: str, text: str) -> Optional[str]:
    """How an #if/#ifdef/#ifndef line is recorded, or None for conditions that name neither
    a CONFIG_ symbol nor MODULE (include guards, compiler checks)."""
    if "CONFIG_" not in text and not re.search(r"\bMODULE\b", text):
        return None
    if kind == "ifdef":
        return text.split()[0] if text.split() else None
    if kind == "ifndef":
        return "!" + text.split()[0] if text.split() else None
    return text


class _Unit:
    """One file being scanned: original bytes, masked bytes, line index, function lookups."""

    def __init__(self, rel: str, original: bytes, masked: bytes, lines: ctokens.Lines,
                 parent: Optional[_Unit] = None) -> None:
        self.rel = rel
        self.original = original
        self.masked = masked
        self.lines = lines
        # A macro expansion: handlers and ops structs are looked up in the file it came from.
        self.parent = parent
        self._parsers: dict[str, Optional[str]] = {}
        self._blocks: Optional[tuple[list[int], list[int]]] = None
        self._functions: Optional[dict[str, tuple[int, int]]] = None
        self._ops: Optional[dict[str, tuple[int, int]]] = None

    def text(self, span: tuple[int, int]) -> str:
        return " ".join(self.masked[span[0]:span[1]].decode("latin-1").split())

    def original_text(self, span: tuple[int, int]) -> str:
        """The argument at SPAN as written, comments removed, whitespace collapsed."""
        raw = self.original[span[0]:span[1]]
        kept = bytes(o if m != 0x20 or o in b" \t\n" else 0x20
                     for o, m in zip(raw, self.masked[span[0]:span[1]]))
        return " ".join(kept.decode("latin-1").split())

    def parser_of(self, func: str) -> Optional[str]:
        """The value parser FUNC's body calls (best-ranked), or None if unseen here."""
        if self.parent is not None:
            return self.parent.parser_of(func)
        if func not in self._parsers:
            self._parsers[func] = self._find_parser(func)
        return self._parsers[func]

    def _top_blocks(self) -> tuple[list[int], list[int]]:
        """Offsets of the `{` and `}` of every top-level block (function bodies, initializers),
        found in one pass so that every lookup after it is a bisection."""
        if self._blocks is None:
            opens: list[int] = []
            closes: list[int] = []
            depth = 0
            for m in _BRACES.finditer(self.masked):
                if m.group() == b"{":
                    if depth == 0:
                        opens.append(m.start())
                    depth += 1
                elif depth > 0:
                    depth -= 1
                    if depth == 0:
                        closes.append(m.start())
            if len(closes) < len(opens):  # an unclosed block runs to the end of the file
                closes.append(len(self.masked))
            self._blocks = (opens, closes)
        return self._blocks

    def block_end(self, open_at: int) -> Optional[int]:
        """The `}` closing the top-level block whose `{` is at OPEN_AT, else None."""
        opens, closes = self._top_blocks()
        i = bisect.bisect_left(opens, open_at)
        return closes[i] if i < len(opens) and opens[i] == open_at else None

    def at_file_scope(self, offset: int) -> bool:
        """OFFSET lies outside every top-level block."""
        opens, closes = self._top_blocks()
        i = bisect.bisect_right(opens, offset) - 1
        return i < 0 or closes[i] < offset

    def _named_blocks(self, pattern: re.Pattern[bytes]) -> dict[str, tuple[int, int]]:
        """First top-level block of each name PATTERN's group 1 introduces (its `{` ends it)."""
        out: dict[str, tuple[int, int]] = {}
        for m in pattern.finditer(self.masked):
            end = self.block_end(m.end() - 1)
            name = m.group(1).decode("latin-1")
            if end is not None and name not in out:
                out[name] = (m.end(), end)
        return out

    def _body(self, func: str) -> Optional[tuple[int, int]]:
        if self._functions is None:
            self._functions = self._named_blocks(_FUNCTION_DEF)
        return self._functions.get(func)

    def _find_parser(self, func: str) -> Optional[str]:
        body = self._body(func)
        if body is None:
            return None
        found = {m.group(1).decode() for m in _PARSER_CALL.finditer(self.masked, *body)}
        best = min(found, key=_PARSER_RANK.__getitem__) if found else None
        # A setter that hands the value on to param_set_<type> parses it as <type> does.
        return _TYPE_PARSER.get(best[len("param_set_"):], best) if best else None

    def ops_setter(self, ops: str) -> Optional[str]:
        """The `.set` function of the kernel_param_ops named OPS, if defined in this file."""
        if self.parent is not None:
            return self.parent.ops_setter(ops)
        if self._ops is None:
            self._ops = self._named_blocks(_OPS_DEF)
        block = self._ops.get(ops)
        if block is None:
            return None
        s = re.search(rb"\.set\s*=\s*&?\s*(\w+)", self.masked[block[0]:block[1]])
        return s.group(1).decode("latin-1") if s else None


@dataclass(frozen=True)
class _Wrapper:
    """A function-like macro whose body makes one registration call."""

    params: tuple[str, ...]
    call: str  # the registration call as written in the body, e.g. `module_param(n, t, 0444)`

    def expand(self, actual: list[str]) -> Optional[str]:
        """The call with ACTUAL substituted (#x stringified, a ## b pasted); None on arity."""
        if len(actual) != len(self.params):
            return None
        values = dict(zip(self.params, actual))

        def stringify(m: re.Match[str]) -> str:
            return '"' + values[m.group(1)].replace('"', '\\"') + '"'

        text = re.sub(r"(?<!#)#\s*(\w+)", lambda m: stringify(m) if m.group(1) in values
                      else m.group(), self.call)
        text = re.sub(r"\b\w+\b", lambda m: values.get(m.group(), m.group()), text)
        text = re.sub(r"\s*##\s*", "", text)
        # include/linux/stringify.h: __stringify(x) is "x" once x is substituted
        return re.sub(r"\b__stringify\(\s*(\w+)\s*\)", r'"\1"', text)


def _wrappers_in(unit: _Unit, defines: list[ctokens.Directive],
                 found: list[re.Match[bytes]]) -> dict[str, list[_Wrapper]]:
    """Function-like #defines of UNIT whose bodies call a registration macro."""
    out: dict[str, list[_Wrapper]] = {}
    starts = [d.start for d in defines]
    for m in found:
        i = bisect.bisect_right(starts, m.start()) - 1
        if i < 0 or not defines[i].start <= m.start() < defines[i].end:
            continue
        d = defines[i]
        head = re.match(rb"[ \t]*(\w+)\(([\w\s,]*)\)", unit.masked[d.rest:d.end])
        parsed = ctokens.call_arguments(unit.masked, m.end() - 1)
        if head is None or parsed is None or _CALL.fullmatch(head.group(1) + b"("):
            continue  # not function-like, or one of the macros read directly
        params = tuple(p.strip().decode("latin-1") for p in head.group(2).split(b","))
        call = unit.original_text((m.start(), parsed[1])).replace("\\", " ")
        out.setdefault(head.group(1).decode("latin-1"), []).append(_Wrapper(params, call))
    return out


def _calls(masked: bytes) -> list[re.Match[bytes]]:
    """Registration and static-key macro calls in a masked file, in order."""
    found: dict[int, re.Match[bytes]] = {}
    for anchor in _ANCHORS:
        pos = masked.find(anchor)
        while pos >= 0:
            # The macro name starts at most a few bytes before its anchor.
            for begin in range(max(0, pos - _ANCHOR_LEAD), pos + 1):
                m = _CALL.match(masked, begin)
                if m and m.end(1) >= pos + len(anchor):
                    found[m.start()] = m
                    break
            pos = masked.find(anchor, pos + len(anchor))
    return [found[k] for k in sorted(found)]


def _is_enabled_inits(masked: bytes) -> list[re.Match[bytes]]:
    out: list[re.Match[bytes]] = []
    pos = masked.find(b"IS_ENABLED")
    while pos >= 0:
        m = _IS_ENABLED_INIT.match(masked, pos)
        if m:
            out.append(m)
        pos = masked.find(b"IS_ENABLED", pos + 10)
    return out
