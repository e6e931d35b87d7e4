"""Fuzz targets shared by the in-suite property tests (tests/security/test_security_fuzz.py) and
the long campaign (bench/fuzz_campaign.py): for each input kpolicy parses, a Hypothesis strategy
of hostile input and a function that feeds it through kpolicy. The property is always the same:
the function returns, or raises KpolicyError; any other exception is a bug.

Real material (the Linux 7.2 tree's Kconfig files and kernel-parameters.txt) is mutated line by
line (delete, duplicate, swap, insert a hostile token line, truncate), so the fuzzing starts from
what kpolicy really reads instead of from noise.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from hypothesis import strategies as st
from security_harness import TINY_CONFIG, write_tiny_tree

from kpolicy.errors import KpolicyError

# --- mutating real files --------------------------------------------------------------------

KCONFIG_TOKENS = (
    "config", "menuconfig", "choice", "endchoice", "menu \"m\"", "endmenu", "if", "if X86",
    "endif", "comment \"c\"", "mainmenu \"x\"", "\tbool", "\ttristate \"t\"", "\tint", "\thex",
    "\tstring", "\tdepends on", "\tdepends on A if B", "\tdepends on (A && (B || !C)",
    "\tselect FOO if BAR", "\timply X", "\tdefault y if", "\tdefault \"unterminated",
    "\trange 10 1", "\trange 0x x", "\tdef_bool $(shell,echo y)", "\tdef_bool $(success,false)",
    "\tdefault $(cc-option,-fhostile)", "\tmodules", "\ttransitional", "\thelp", "---help---",
    "\toption env=\"HOME\"", "\toption defconfig_list", "\tvisible if", "\toptional",
    "X := $(X)$(X)", "R = $(R)", "$(error-if,y,boom)", "$(warning-if,y,w)", "$(info,i)",
    "$(filename) $(lineno)", "$(", ")", "\\", "\"", "'", "source \"/etc/passwd\"",
    "source \"../../outside/Kconfig\"", "rsource \"../x\"", "osource \"**/Kconfig\"",
    "source \"init/Kconfig\"", "source \"Kconfig\"", "\x0c", "\r", "\t\t\tété", "#",
    "config " + "A" * 300, "\tdefault " + "(" * 200 + "y" + ")" * 200,
)

DOC_TOKENS = (
    "\tname=\t[KNL]", "\tname=[KNL,EARLY]", "\tname = [KNL]", "\tx.y=\t[HW, ACPI] text",
    "\t\t\tFormat: <bool>", "\t\t\tFormat: { no | yes }", "\t\t\tFormat: <int>[KMG]",
    "\t\t\tDefault is CONFIG_FOO.", "\t\t\tThis option has no effect if CONFIG_64BIT=n",
    "\trcu_nocbs[=cpu-list]", "\tgamecon.map[2|3]=", "\t[KNL]", "[", "]", "\t", "\t\t\t",
    "", "\x0c", "\r", "Format:", "\tname=\t[", "\tname=\t[KNL", "\t\t\t\t\t\t\t\tdeep",
)


@dataclass(frozen=True)
class Mutation:
    op: str
    at: int
    other: int
    token: str


def mutations(tokens: Sequence[str]) -> st.SearchStrategy[list[Mutation]]:
    """Up to a dozen line edits; positions are taken modulo the text's length when applied."""
    one = st.builds(
        Mutation,
        st.sampled_from(("delete", "duplicate", "swap", "insert", "insert-in-line", "truncate")),
        st.integers(0, 10_000), st.integers(0, 10_000),
        st.one_of(st.sampled_from(tokens), st.text(max_size=20)),
    )
    return st.lists(one, max_size=12)


def apply_mutations(lines: list[str], edits: Sequence[Mutation]) -> str:
    """LINES after EDITS, joined into a text."""
    out = list(lines)
    for m in edits:
        n = len(out)
        if m.op == "insert":
            out.insert(m.at % (n + 1), m.token)
        elif n == 0:
            continue
        elif m.op == "delete":
            del out[m.at % n]
        elif m.op == "duplicate":
            out.insert(m.at % n, out[m.at % n])
        elif m.op == "swap":
            i, j = m.at % n, m.other % n
            out[i], out[j] = out[j], out[i]
        elif m.op == "insert-in-line":
            i = m.at % n
            k = m.other % (len(out[i]) + 1)
            out[i] = out[i][:k] + m.token + out[i][k:]
        elif m.op == "truncate":
            out = out[: m.at % n]
            if out:
                out[-1] = out[-1][: m.other % (len(out[-1]) + 1)]
    return "\n".join(out) + "\n"


def trees_root() -> Path:
    return Path(os.environ.get("KPOLICY_TREES", Path.home() / ".cache" / "kpolicy-trees"))


# Leaf-ish Kconfig files of Linux 7.2, of every flavour (choices, menus, ifs, macros, help).
KCONFIG_CORPUS = ("init/Kconfig", "mm/Kconfig", "security/Kconfig.hardening", "kernel/Kconfig.hz",
                  "lib/Kconfig.kasan", "kernel/Kconfig.preempt", "security/Kconfig",
                  "drivers/char/Kconfig", "arch/Kconfig", "arch/x86/Kconfig")
_SOURCE = re.compile(r"^\s*[or]*source\b")
WINDOW = 250


@functools.cache
def kconfig_corpus(tree: Path) -> tuple[tuple[str, ...], ...]:
    """The corpus files' lines, with their own `source` lines commented out (the files they
    name are not in the fuzzing tree; hostile `source` lines come from the mutations)."""
    out = []
    for rel in KCONFIG_CORPUS:
        text = (tree / rel).read_text()
        out.append(tuple("# " + ln if _SOURCE.match(ln) else ln for ln in text.splitlines()))
    return tuple(out)


@functools.cache
def doc_corpus(tree: Path) -> tuple[str, ...]:
    return tuple((tree / "Documentation/admin-guide/kernel-parameters.txt").read_text()
                 .splitlines())


@functools.cache
def format_corpus(tree: Path) -> tuple[str, ...]:
    """Every `Format:` spec of the real kernel-parameters.txt."""
    specs = {ln.split("Format:", 1)[1].strip() for ln in doc_corpus(tree) if "Format:" in ln}
    return tuple(sorted(specs))


def window(lines: Sequence[str], start: int, size: int) -> list[str]:
    if not lines:
        return []
    start %= len(lines)
    return list(lines[start:start + size])


# --- scratch space ------------------------------------------------------------------------

@functools.cache
def scratch() -> Path:
    """A per-process directory for targets that must read files (removed by the OS's tmp)."""
    return Path(tempfile.mkdtemp(prefix="kpolicy-fuzz-"))


@functools.cache
def fuzz_tree() -> Any:
    """The tiny tree, opened; its Kconfig is what the Kconfig target overwrites."""
    from kpolicy.tree import open_tree

    root = write_tiny_tree(scratch() / "tree")
    return open_tree(root)


@functools.cache
def tiny_parsed() -> Any:
    from kpolicy.kconfig.parse import parse_kconfig
    from kpolicy.kconfig.toolchain import default_toolchain

    tree = fuzz_tree()
    return parse_kconfig(tree, "x86_64", default_toolchain())


@functools.cache
def tiny_kernel_params() -> Any:
    from kpolicy.cmdline import kernel_params
    from kpolicy.params.catalog import build_catalog

    tree = fuzz_tree()
    config = dict(line.split("=", 1) for line in TINY_CONFIG.split())
    config = {k[len("CONFIG_"):]: v for k, v in config.items()}
    return kernel_params(build_catalog(tree), config, tree.version_tuple, "x86")


# --- the targets ----------------------------------------------------------------------------

def _each(*calls: Callable[[], object]) -> None:
    """Run every call, even after one raised KpolicyError; then raise the first such error."""
    first: Optional[KpolicyError] = None
    for call in calls:
        try:
            call()
        except KpolicyError as err:
            first = first or err
    if first is not None:
        raise first


def _bytes_as_cmdline(data: bytes) -> str:
    return data.decode("latin-1")


CMDLINE_PIECES = ('"', "=", " ", "\t", "\n", "\xa0", "--", "init=", "quiet", "bootconfig",
                  "randomize_kstack_offset=", "seal_foo=", "undocumented_knob=", "on", "0",
                  "x.y=", "\x00", "\x01", "\xff", "é", "rdinit=/bin/sh", "a" * 3000)
CMDLINE = st.one_of(
    st.binary(max_size=400).map(_bytes_as_cmdline),
    st.lists(st.sampled_from(CMDLINE_PIECES), max_size=80).map("".join),
)


def run_cmdline(line: str) -> None:
    from kpolicy.cmdline import process_cmdline
    from kpolicy.cmdline.tokens import tokenize

    toks = tokenize(line.replace("\0", ""))
    assert all(t.raw and line.replace("\0", "")[t.offset:].startswith(t.raw) for t in toks)
    process_cmdline(tiny_kernel_params(), line)


BOOTCONFIG_PIECES = ("kernel", "init", ".", "=", "+=", ":=", "{", "}", ";", ",", "\n", " ",
                     "#", "\"", "'", "foo", "bar-baz", "quiet", "\x01", "é", "\t", "a" * 300)
BOOTCONFIG = st.one_of(st.text(max_size=300),
                       st.lists(st.sampled_from(BOOTCONFIG_PIECES), max_size=100).map("".join))


def run_bootconfig(text: str) -> None:
    from kpolicy.cmdline import process_cmdline
    from kpolicy.cmdline.bootconfig import bootconfig_cmdline

    bootconfig_cmdline(text, (7, 2, 0))
    process_cmdline(tiny_kernel_params(), "bootconfig quiet", bootconfig=text)


def kparams_strategy(tree: Path) -> st.SearchStrategy[str]:
    lines = doc_corpus(tree)
    return st.builds(
        lambda start, size, edits: apply_mutations(window(lines, start, size), edits),
        st.integers(0, len(lines)), st.integers(1, WINDOW), mutations(DOC_TOKENS))


def run_kparams(text: str) -> None:
    from kpolicy.params.docs import parse_kernel_parameters

    for entry in parse_kernel_parameters(text):
        assert entry.names and entry.location.line >= 1


def format_strategy(tree: Path) -> st.SearchStrategy[tuple[str, str]]:
    specs = format_corpus(tree)
    pieces = ("<", ">", "{", "}", "[", "]", "|", ",", "...", "<int>", "<bool>", "KMG", " ", "(",
              ")", "\"", "=", ":")
    raw = st.one_of(
        st.builds(lambda s, at, ins: s[: at % (len(s) + 1)] + ins + s[at % (len(s) + 1):],
                  st.sampled_from(specs), st.integers(0, 200),
                  st.lists(st.sampled_from(pieces), max_size=6).map("".join)),
        st.text(max_size=80),
    )
    return st.tuples(raw, st.text(max_size=30))


def run_format(case: tuple[str, str]) -> None:
    from kpolicy.params.formats import format_accepts, parse_format

    raw, value = case
    fmt = parse_format(raw)
    assert fmt.raw == raw
    assert format_accepts(fmt, value) in (True, False, None)


DOTCONFIG_PIECES = ("CONFIG_", "X86", "64BIT", "RANDOMIZE_KSTACK_OFFSET", "SEAL_FOO", "CMDLINE",
                    "CMDLINE_BOOL", "EXPERT", "=", "y", "m", "n", "\"", "\\", "0x", "-1", "12",
                    "# ", " is not set", "\n", "\r\n", "#", " ", "é", "\x01", "UNKNOWN_SYM")
DOTCONFIG = st.tuples(
    st.one_of(st.binary(max_size=300),
              st.lists(st.sampled_from(DOTCONFIG_PIECES), max_size=120)
              .map(lambda p: "".join(p).encode())),
    st.booleans(),
)


def run_dotconfig(case: tuple[bytes, bool]) -> None:
    from kpolicy.kconfig.dotconfig import parse_dotconfig
    from kpolicy.kconfig.evaluate import evaluate, user_values
    from kpolicy.textio import decode_text, gunzip

    data, zipped = case
    if zipped:  # /proc/config.gz: a random stream, or the text gzip'd and then torn
        packed = gzip.compress(data, mtime=0)
        data = gunzip(packed[: len(packed) - len(data) % 7], file="fuzz.config.gz")
    dot = parse_dotconfig(decode_text(data, file="fuzz.config"), "fuzz.config")
    parsed = tiny_parsed()
    user = user_values(dot.raw, parsed.types, lambda _w: None)
    evaluate(parsed.symbols, parsed.choices, user)


def _toml_value() -> st.SearchStrategy[Any]:
    scalar = st.one_of(st.text(max_size=20), st.integers(), st.booleans(),
                       st.sampled_from(["KP104", "KP1", "warning", "note", "error", "nope",
                                        "pattern:boot_default_missing", "no:such", "a-b",
                                        ""]))
    return st.recursive(scalar, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
            ["what", "why", "bad", "good", "references", "x"]), inner, max_size=4)),
        max_leaves=8)


def _toml_text(table: dict[str, Any]) -> str:
    """A small TOML writer (tomllib only reads): inline values, one key per line."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
    return "".join(f"{json.dumps(k)} = {value(v)}\n" for k, v in table.items())


RULE_KEYS = ("code", "name", "severity", "summary", "check", "docs", "options", "extra")
RULES = st.one_of(
    st.dictionaries(st.sampled_from(RULE_KEYS), _toml_value(), max_size=8).map(_toml_text),
    st.text(max_size=200),
)


def run_rules(text: str) -> None:
    from kpolicy.analysis import load_declarations
    from kpolicy.lint.rules_loader import load_rules

    rules_dir = scratch() / "rules"
    (rules_dir / "families").mkdir(parents=True, exist_ok=True)
    (rules_dir / "fuzz.toml").write_text(text, encoding="utf-8", errors="surrogatepass")
    (rules_dir / "families" / "fuzz.toml").write_text(text, encoding="utf-8",
                                                     errors="surrogatepass")
    _each(lambda: load_rules(rules_dir), lambda: load_declarations(rules_dir))


WAIVER_KEYS = ("select", "ignore", "fail-on", "waiver", "rule", "symbol", "family", "param",
               "reason", "tool")
LINT_CONFIG = st.tuples(
    st.one_of(
        st.dictionaries(st.sampled_from(WAIVER_KEYS), st.one_of(
            _toml_value(), st.lists(st.dictionaries(st.sampled_from(WAIVER_KEYS), _toml_value(),
                                                    max_size=4), max_size=3)),
            max_size=5).map(_toml_text),
        st.text(max_size=200)),
    st.one_of(st.text(max_size=200), st.recursive(
        st.one_of(st.none(), st.integers(), st.text(max_size=10)),
        lambda inner: st.one_of(st.lists(inner, max_size=3),
                                st.dictionaries(st.sampled_from(["schema_version", "findings",
                                                                 "fingerprint", "tool"]),
                                                inner, max_size=4)),
        max_leaves=8).map(json.dumps)),
)


def run_lint_config(case: tuple[str, str]) -> None:
    from kpolicy.lint.baseline import read_baseline
    from kpolicy.lint.waivers import parse_config

    waivers, baseline = case
    w = scratch() / ".kpolicy.toml"
    w.write_text(waivers, encoding="utf-8", errors="surrogatepass")
    b = scratch() / "baseline.json"
    b.write_text(baseline, encoding="utf-8", errors="surrogatepass")
    _each(lambda: parse_config(w), lambda: read_baseline(b))


def kconfig_strategy(tree: Path) -> st.SearchStrategy[str]:
    corpus = kconfig_corpus(tree)
    return st.builds(
        lambda f, start, size, edits: apply_mutations(window(corpus[f], start, size), edits),
        st.integers(0, len(corpus) - 1), st.integers(0, 4000), st.integers(1, WINDOW),
        mutations(KCONFIG_TOKENS))


def run_kconfig(text: str) -> None:
    from kpolicy.kconfig.parse import parse_kconfig
    from kpolicy.kconfig.toolchain import default_toolchain

    tree = fuzz_tree()
    head = 'mainmenu "fuzz"\nsource "arch/$(SRCARCH)/Kconfig"\n'
    (tree.root / "init" / "Kconfig").write_text(head + text, encoding="utf-8",
                                               errors="surrogatepass")
    parse_kconfig(tree, "x86_64", default_toolchain())


# --- tree layouts with symlinks (issue #11): treefs never opens anything outside the root ----

_NAMES = ("a", "b", "d", "Kconfig")
_LINK_TARGETS = ("..", "../..", "../../..", "/", "a", "b/..", "../outside", "../outside/secret",
                 "d/../..", "/dev/zero", "l", ".", "a/../../outside", "b/d", "Kconfig")


def _rel_path() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from((*_NAMES, "..", ".", "l", "m", "outside", "secret")),
                    min_size=1, max_size=6).map("/".join)


TREE_LAYOUT = st.tuples(
    st.lists(st.tuples(_rel_path(), st.sampled_from(("dir", "file", "link", "fifo")),
                       st.sampled_from(_LINK_TARGETS) | _rel_path()), max_size=12),
    st.lists(_rel_path(), min_size=1, max_size=4),
)
_SECRET = b"OUTSIDE-SECRET"


def _build_layout(root: Path, entries: list[tuple[str, str, str]]) -> None:
    for rel, kind, target in entries:
        path = root / rel
        try:
            if os.path.realpath(path.parent) != str(root) and \
                    not os.path.realpath(path.parent).startswith(str(root) + "/"):
                continue  # building through a link out would write outside: not a layout
            if os.path.lexists(path):
                continue  # (writing into an earlier FIFO would block)
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "dir":
                path.mkdir()
            elif kind == "file":
                # O_EXCL: never open what is already there (an earlier FIFO reached through `..`
                # would block this writer forever)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW)
                with os.fdopen(fd, "wb") as out:
                    out.write(b"inside " + rel.encode())
            elif kind == "fifo":
                os.mkfifo(path)
            elif target.startswith("/") and target not in ("/", "/dev/zero"):
                os.symlink(str(root) + target, path)
            else:
                os.symlink(target, path)
        except OSError:
            continue


def run_tree_layout(case: tuple[list[tuple[str, str, str]], list[str]]) -> None:
    """Build the layout in a fresh tree beside an `outside` directory holding a secret, then read,
    glob and walk it through treefs with every descriptor treefs opens checked: it must lie
    inside the tree, and no read may return the secret."""
    from kpolicy import treefs

    entries, queries = case
    with tempfile.TemporaryDirectory(prefix="kpolicy-fuzz-layout-") as tmp:
        base = Path(os.path.realpath(tmp))
        root = base / "tree"
        root.mkdir()
        (base / "outside").mkdir()
        (base / "outside" / "secret").write_bytes(_SECRET)
        (base / "outside" / "Kconfig").write_bytes(_SECRET)
        _build_layout(root, entries)
        real_open = os.open

        def checked_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: Any = None) -> int:
            fd = real_open(path, flags, mode, dir_fd=dir_fd)
            where = os.readlink(f"/proc/self/fd/{fd}")
            if where != str(root) and not where.startswith(str(root) + "/"):
                os.close(fd)
                raise AssertionError(f"treefs opened {where} outside {root} for {path!r}")
            return fd

        treefs.os.open = checked_open  # type: ignore[attr-defined]
        try:
            for q in queries:
                for call in (lambda q=q: treefs.read_bytes(root, q, limit=4096),
                             lambda q=q: treefs.glob(root, q.rsplit("/", 1)[0] + "/*"),
                             lambda q=q: list(treefs.walk(root, q)),
                             lambda q=q: treefs.kind(root, q)):
                    try:
                        out = call()
                    except KpolicyError:
                        continue
                    assert not (isinstance(out, bytes) and _SECRET in out), (q, out)
        finally:
            treefs.os.open = real_open  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Target:
    """A fuzz target: STRATEGY(real tree or None) gives inputs, RUN feeds one to kpolicy."""

    strategy: Callable[[Path], st.SearchStrategy[Any]]
    run: Callable[[Any], None]
    needs_real_tree: bool = False
    in_suite: bool = True  # False: another area's own property test already covers it


TARGETS: dict[str, Target] = {
    "cmdline": Target(lambda _t: CMDLINE, run_cmdline, in_suite=False),
    "bootconfig": Target(lambda _t: BOOTCONFIG, run_bootconfig),
    "kernel-parameters": Target(kparams_strategy, run_kparams, needs_real_tree=True),
    "format": Target(format_strategy, run_format, needs_real_tree=True),
    "dotconfig": Target(lambda _t: DOTCONFIG, run_dotconfig),
    "rules": Target(lambda _t: RULES, run_rules),
    "lint-config": Target(lambda _t: LINT_CONFIG, run_lint_config),
    "kconfig": Target(kconfig_strategy, run_kconfig, needs_real_tree=True),
    "tree-layout": Target(lambda _t: TREE_LAYOUT, run_tree_layout),
}
