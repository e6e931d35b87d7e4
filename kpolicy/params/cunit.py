"""One C translation unit as the registration scanner reads it: masked text with its line
table, top-level blocks, the parser a handler calls, the setter of a kernel_param_ops, the
function-like macros that wrap a registration, and the registration calls themselves.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kpolicy import treefs
from kpolicy.errors import KpolicyError
from kpolicy.params import ctokens

# The largest C file of Linux 7.2 is under 3 MiB; a bigger one is an error. Headers that big
# are generated register tables (24 MiB in amdgpu): they are skipped, not read.
MAX_C_FILE = 8 * 1024 * 1024
# A file is worth masking only if it contains one of these.
# "_param(" catches wrappers such as torture_param(; "_param_cb(" the level callbacks
# (drivers/virtio/virtio_mmio.c has device_param_cb(device, ...) and no other keyword).
KEYWORDS = (b"module_param", b"_param(", b"_param_cb(", b"__setup", b"early_param", b"core_param",
             b"DEFINE_STATIC_KEY", b"MODULE_PARAM_PREFIX", b"__uml_help")

# module_param types and the kernel_param_ops behind them: the parser that reads the value.
TYPE_PARSER = {
    "bool": "kstrtobool", "invbool": "kstrtobool", "bool_enable_only": "kstrtobool",
    "byte": "kstrtou8", "short": "kstrtos16", "ushort": "kstrtou16", "int": "kstrtoint",
    "uint": "kstrtouint", "long": "kstrtol", "ulong": "kstrtoul", "ullong": "kstrtoull",
    "hexint": "kstrtouint", "charp": "string", "string": "string", "copystring": "string",
    "uint_minmax": "kstrtouint",
}

# The calls worth reading, found by cheap substring search for these anchors then matched here.
_ANCHORS = (b"early_param", b"__setup", b"_param", b"DEFINE_STATIC_KEY_", b"__uml_help")


# (macro name starts at most this many bytes before its anchor: "__core" before "_param")
_ANCHOR_LEAD = 8


CALL = re.compile(
    rb"(?<![\w#])(early_param_on_off|early_param|__setup_param|__setup|__core_param_cb|core_param_cb|"
    rb"__uml_help|"
    rb"core_param_unsafe|core_param|__module_param_call|module_param\w*|"
    rb"(?:postcore|arch|subsys|fs|device|late)_param_cb|"
    rb"DEFINE_STATIC_KEY_(?:MAYBE_RO|MAYBE|TRUE_RO|FALSE_RO|TRUE|FALSE))\s*\("
)


# `= IS_ENABLED(CONFIG_X);` or `= IS_ENABLED(CONFIG_X) ? ON : OFF;` (x86's mitigation defaults).
_IS_ENABLED_INIT = re.compile(rb"IS_ENABLED\s*\(\s*CONFIG_(\w+)\s*\)\s*(?:;|\?[^;{}()]*;)")


# Parsers in the order that best describes the values a handler accepts: the first one the
# handler's body calls wins.
_PARSERS = (
    "kstrtobool", "strtobool", "lookup_constant", "match_string", "sysfs_match_string",
    "parse_option_str", "get_options", "get_option", "memparse", "kstrtoint", "kstrtouint",
    "kstrtoul", "kstrtoull",
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
# Older names of a parser: up to 6.1, strtobool() is an inline wrapper of kstrtobool()
# (arm64's kpti= handler calls it).
_PARSER_ALIASES = {"strtobool": "kstrtobool"}


_BRACES = re.compile(rb"[{}]")


# What a handler that only warns may contain (elevator=: "does not have any effect anymore";
# swapaccount=0: deprecated): calls that print or parse into its own locals, `if`, and
# `return <number>`. Any other call, an assignment or `&` of a non-local makes it a handler
# with effect.
_CALL = re.compile(rb"\b([A-Za-z_]\w*)\s*\(")
_NOT_CALLS = frozenset({b"if", b"return", b"sizeof", b"unlikely", b"likely"})
_PRINT_CALL = re.compile(rb"pr_\w+|printk\w*|WARN(?:_ONCE)?")
_LOCAL_PARSE_CALL = re.compile(rb"kstrto\w+")
_ASSIGNMENT = re.compile(rb"(?<![=!<>])=(?!=)|\+\+|--")
_LOCAL_DECL = re.compile(rb"^\s*(?:bool|int|unsigned(?:\s+int|\s+long)?|long|u8|u16|u32|u64)"
                         rb"\s+(\w+)\s*;", re.M)
_ADDRESS_OF = re.compile(rb"&\s*(\w+)")
_RETURN = re.compile(rb"\breturn\b\s*([^;]*);")


_FUNCTION_DEF = re.compile(rb"\b(\w+)\s*\([^;{}()]*\)\s*\{")


_OPS_DEF = re.compile(rb"kernel_param_ops\s+(\w+)\s*(?:__\w+\s*)*=\s*\{")


_FIND_OPTION = re.compile(rb"\bcmdline_find_option(?:_bool)?\s*\(")


# strstr(boot_command_line, "udbg-immortal"): a word looked for anywhere in the command line,
# also in the arches' own copies read before it is set up: powerpc's prom_init.c
# (prom_strstr(prom_cmd_line, "svm=")), MIPS's arcs_cmdline, the built-in line MIPS and
# LoongArch relocate.c search for "nokaslr" (builtin_cmdline), microblaze's cmd_line, and the
# line Xen hands a PV guest (strstr(xen_start_info->cmd_line, "xen_512gb_limit")).
_STRSTR = re.compile(rb"\b(?:prom_)?strstr\s*\(\s*(?:xen_start_info\s*->\s*)?"
                     rb"(?:boot_command_line|saved_command_line|prom_cmd_line|arcs_cmdline|"
                     rb"builtin_cmdline|cmd_line)\s*,")
# A file can make one of those reads only if it contains one of these.
RAW_READ_HINTS = (b"cmdline_find_option", b"aliases[]", b"_command_line", b"cmd_line",
                  b"arcs_cmdline", b"builtin_cmdline")


_ALIAS_TABLE = re.compile(rb"aliases\[\]\s*(?:__\w+\s*)*=\s*\{")


_ALIAS_PAIR = re.compile(rb'\{\s*"([^"\n]+)"\s*,\s*"')


def raw_reads(data: bytes) -> set[str]:
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
    for m in _STRSTR.finditer(masked):
        parsed = ctokens.call_arguments(masked, masked.index(b"(", m.start()))
        value = ctokens.string_value(data, masked, *parsed[0][1]) \
            if parsed and len(parsed[0]) == 2 else None
        if value:
            names.add(value.split("=", 1)[0])
    for m in _ALIAS_TABLE.finditer(masked):
        end = masked.find(b"};", m.end())  # alias tables are flat: no nested braces to skip
        for pair in _ALIAS_PAIR.finditer(data, m.end(), end if end >= 0 else m.end()):
            names.add(pair.group(1).decode("latin-1").split("=", 1)[0])
    return names


def read_header(root: Path, rel: str) -> Optional[bytes]:
    """The bytes of header REL of the tree at ROOT (kpolicy.treefs); None when it is missing,
    special, leads outside the tree, or is too big to matter."""
    try:
        return treefs.read_bytes(root, rel, what="C header", limit=MAX_C_FILE)
    except KpolicyError:
        return None


def condition(kind: str, text: str) -> Optional[str]:
    """How an #if/#ifdef/#ifndef line is recorded, or None for conditions that name neither
    a CONFIG_ symbol nor MODULE (include guards, compiler checks)."""
    if "CONFIG_" not in text and not re.search(r"\bMODULE\b", text):
        return None
    if kind == "ifdef":
        return text.split()[0] if text.split() else None
    if kind == "ifndef":
        return "!" + text.split()[0] if text.split() else None
    return text


class Unit:
    """One file being scanned: original bytes, masked bytes, line index, function lookups."""

    def __init__(self, rel: str, original: bytes, masked: bytes, lines: ctokens.Lines,
                 parent: Optional[Unit] = None) -> None:
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

    def writes(self, func: str, name: str) -> bool:
        """FUNC's body (in this file) assigns NAME or flips it as a static key."""
        body = self.body(func)
        if body is None:
            return False
        n = re.escape(name.encode())
        return re.search(rb"(?<![\w.>])" + n + rb"\s*=(?!=)|\b(?:static_branch|static_key)_\w+\("
                         rb"\s*&\s*" + n + rb"\b", self.masked[body[0]:body[1]]) is not None

    def body(self, func: str) -> Optional[tuple[int, int]]:
        if self.parent is not None:
            return self.parent.body(func)
        return self._body(func)

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
        best = _PARSER_ALIASES.get(best, best) if best else None
        # A setter that hands the value on to param_set_<type> parses it as <type> does.
        return TYPE_PARSER.get(best[len("param_set_"):], best) if best else None

    def only_warns(self, func: str) -> bool:
        """FUNC's body, if defined in this file, does nothing but print (at least once): a
        parameter kept so that its word still gets a warning, not a setting to document."""
        if self.parent is not None:
            return self.parent.only_warns(func)
        span = self._body(func)
        if span is None:
            return False
        body = self.masked[span[0] + 1:span[1]]
        calls = [c for c in _CALL.findall(body) if c not in _NOT_CALLS]
        locals_ = set(_LOCAL_DECL.findall(body))
        return (any(_PRINT_CALL.fullmatch(c) for c in calls)
                and all(_PRINT_CALL.fullmatch(c) or _LOCAL_PARSE_CALL.fullmatch(c) for c in calls)
                and not _ASSIGNMENT.search(body)
                and set(_ADDRESS_OF.findall(body)) <= locals_
                and all(r.strip().isdigit() for r in _RETURN.findall(body)))

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
class Wrapper:
    """A function-like macro whose body makes one registration call."""

    params: tuple[str, ...]
    call: str  # the registration call as written in the body, e.g. `module_param(n, t, 0444)`

    def substitute(self, actual: list[str]) -> Optional[str]:
        """The call with ACTUAL put for the parameters, `#` and `##` left for a later
        expansion (a wrapper defined through another wrapper); None on arity."""
        if len(actual) != len(self.params):
            return None
        values = dict(zip(self.params, actual))
        return re.sub(r"\b\w+\b", lambda m: values.get(m.group(), m.group()), self.call)

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


# Wrappers of wrappers (drivers/net/can/grcan.c: GRCAN_CONFIG_ATTR calls GRCAN_MODULE_PARAM,
# which calls module_param_named): followed this many levels deep, and at most this many
# expansions per file, whatever a hostile file nests or repeats.
_WRAPPER_DEPTH = 4
MAX_WRAPPERS = 2_000


def _define_head(unit: Unit, d: ctokens.Directive) -> Optional[tuple[str, tuple[str, ...]]]:
    """The name and parameters of a function-like #define; None for an object-like one."""
    head = re.match(rb"[ \t]*(\w+)\(([\w\s,]*)\)", unit.masked[d.rest:d.end])
    if head is None:
        return None
    params = tuple(p.strip().decode("latin-1") for p in head.group(2).split(b","))
    return head.group(1).decode("latin-1"), params


def wrappers_in(unit: Unit, defines: list[ctokens.Directive],
                 found: list[re.Match[bytes]],
                 known: Optional[dict[str, list[Wrapper]]] = None) -> dict[str, list[Wrapper]]:
    """Function-like #defines of UNIT whose bodies call a registration macro, directly or
    through another such macro of UNIT or of KNOWN (the included headers' wrappers), each
    expansion flattened to the registration call it makes."""
    out: dict[str, list[Wrapper]] = {}
    starts = [d.start for d in defines]
    for m in found:
        i = bisect.bisect_right(starts, m.start()) - 1
        if i < 0 or not defines[i].start <= m.start() < defines[i].end:
            continue
        d = defines[i]
        head = _define_head(unit, d)
        parsed = ctokens.call_arguments(unit.masked, m.end() - 1)
        if head is None or parsed is None or CALL.fullmatch(head[0].encode() + b"("):
            continue  # not function-like, or one of the macros read directly
        call = unit.original_text((m.start(), parsed[1])).replace("\\", " ")
        out.setdefault(head[0], []).append(Wrapper(head[1], call))
    _nested_wrappers(unit, defines, out, dict(known or {}))
    return out


def _nested_wrappers(unit: Unit, defines: list[ctokens.Directive],
                     out: dict[str, list[Wrapper]], known: dict[str, list[Wrapper]]) -> None:
    """Add to OUT the #defines whose bodies call a wrapper of OUT or KNOWN, level by level."""
    # (define start, call start) -> how many of the callee's expansions are flattened already
    seen: dict[tuple[int, int], int] = {}
    total = sum(len(w) for w in out.values())
    for _ in range(_WRAPPER_DEPTH):
        names = {**known, **out}
        if not names:
            return
        pat = re.compile(rb"(?<![\w#])(" + b"|".join(
            re.escape(n.encode()) for n in sorted(names)) + rb")\s*\(")
        added: dict[str, list[Wrapper]] = {}
        for d in defines:
            head = _define_head(unit, d)
            if head is None:
                continue
            for m in pat.finditer(unit.masked, d.rest + len(head[0]), d.end):
                callee = m.group(1).decode("latin-1")
                parsed = ctokens.call_arguments(unit.masked, m.end() - 1)
                done = seen.get((d.start, m.start()), 0)
                if callee == head[0] or parsed is None or done == len(names[callee]):
                    continue
                seen[(d.start, m.start())] = len(names[callee])
                actual = [unit.original_text(span).replace("\\", " ") for span in parsed[0]]
                for inner in names[callee][done:]:
                    call = inner.substitute(actual)
                    if call is None:
                        continue
                    total += 1
                    if total > MAX_WRAPPERS:
                        raise KpolicyError(f"more than {MAX_WRAPPERS} registration macro "
                                           "expansions in one file: not a kernel source file",
                                           file=unit.rel)
                    wrapper = Wrapper(head[1], call)
                    if wrapper not in out.get(head[0], ()) and \
                            wrapper not in added.get(head[0], ()):
                        added.setdefault(head[0], []).append(wrapper)
        if not added:
            return
        for name, wrappers in added.items():
            out.setdefault(name, []).extend(wrappers)


def calls(masked: bytes) -> list[re.Match[bytes]]:
    """Registration and static-key macro calls in a masked file, in order."""
    found: dict[int, re.Match[bytes]] = {}
    for anchor in _ANCHORS:
        pos = masked.find(anchor)
        while pos >= 0:
            # The macro name starts at most a few bytes before its anchor.
            for begin in range(max(0, pos - _ANCHOR_LEAD), pos + 1):
                m = CALL.match(masked, begin)
                if m and m.end(1) >= pos + len(anchor):
                    found[m.start()] = m
                    break
            pos = masked.find(anchor, pos + len(anchor))
    return [found[k] for k in sorted(found)]


def is_enabled_inits(masked: bytes) -> list[re.Match[bytes]]:
    out: list[re.Match[bytes]] = []
    pos = masked.find(b"IS_ENABLED")
    while pos >= 0:
        m = _IS_ENABLED_INIT.match(masked, pos)
        if m:
            out.append(m)
        pos = masked.find(b"IS_ENABLED", pos + 10)
    return out
