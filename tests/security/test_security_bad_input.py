"""Every kind of input x every way it can be bad -> one line naming the file (and line), exit 2.

A table: KINDS says where each input lives in a small workspace (a tiny kernel tree plus the
files given on the command line) and which commands read it; VARIANTS says how to spoil it
(missing, a directory, unreadable, binary garbage, a NUL byte, invalid UTF-8, 100 MB). Each case
copies the workspace, spoils one input and runs each command that reads it in its own process
(address space capped at 2 GB, a timeout); the run must exit 2 with exactly one `FILE[:LINE]:
error:` line naming the spoiled file (at the spoiled line when the problem has one) and no
traceback. ACCEPTED lists odd input the kernel itself takes: kpolicy takes it too and warns.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import pytest
from security_harness import (
    KPARAMS,
    TINY_CONFIG,
    Run,
    error_location,
    names_file,
    run_kpolicy,
    world_readable_tmpdir,
    write_tiny_tree,
)

REPO = Path(__file__).resolve().parents[2]
HUGE = 100 * 1024 * 1024


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def tree(self) -> Path:
        return self.root / "tree"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def __truediv__(self, rel: str) -> Path:
        return self.root / rel


# command name -> (module that must have landed, argv builder)
_NC = "--no-cache"


def _tree(ws: Workspace) -> list[str]:
    return ["--tree", str(ws.tree)]


COMMANDS: dict[str, tuple[str, Callable[[Workspace], list[str]]]] = {
    "olddefconfig": ("kpolicy.kconfig.command", lambda ws: [
        "kconfig", "olddefconfig", *_tree(ws), "--arch", "x86_64", "--config",
        str(ws / "in.config"), "-o", str(ws.out / "olddef.config"), _NC]),
    "olddefconfig-toolchain": ("kpolicy.kconfig.command", lambda ws: [
        "kconfig", "olddefconfig", *_tree(ws), "--arch", "x86_64", "--toolchain-from",
        str(ws / "in.config"), "-o", str(ws.out / "olddef.config"), _NC]),
    "why": ("kpolicy.kconfig.command", lambda ws: [
        "kconfig", "why", "RANDOMIZE_KSTACK_OFFSET", *_tree(ws), "--arch", "x86_64",
        "--config", str(ws / "in.config"), _NC]),
    "params": ("kpolicy.params.command", lambda ws: ["params", *_tree(ws), _NC]),
    "families": ("kpolicy.families.command", lambda ws: ["families", *_tree(ws), _NC]),
    "lint": ("kpolicy.lint.command", lambda ws: [
        "lint", *_tree(ws), "--config", str(ws / "waivers.toml"), "--baseline",
        str(ws / "baseline.json"), "--rules-dir", str(ws / "rules"), _NC]),
    "lint-tree-config": ("kpolicy.lint.command", lambda ws: ["lint", *_tree(ws), _NC]),
    "rules": ("kpolicy.lint.command", lambda ws: ["rules", "--rules-dir", str(ws / "rules")]),
    "resolve-tree": ("kpolicy.resolve.command", lambda ws: [
        "resolve", *_tree(ws), "--arch", "x86_64", "--config", str(ws / "in.config"),
        "--cmdline-file", str(ws / "cmdline.txt"), "--bootconfig", str(ws / "bootconfig"), _NC]),
    "resolve-model": ("kpolicy.resolve.command", lambda ws: [
        "resolve", "--model", str(ws / "model.json"), "--config", str(ws / "in.config"),
        "--cmdline-file", str(ws / "cmdline.txt"), "--bootconfig", str(ws / "bootconfig"),
        "--format", "json"]),
    "resolve-batch": ("kpolicy.resolve.command", lambda ws: [
        "resolve", "--model", str(ws / "model.json"), "--config", str(ws / "in.config"),
        "--cmdlines", str(ws / "cmdlines.jsonl")]),
    "model": ("kpolicy.resolve.command", lambda ws: [
        "model", "build", *_tree(ws), "-o", str(ws.out / "model.json"), _NC]),
    "model-show": ("kpolicy.resolve.command",
                   lambda ws: ["model", "show", str(ws / "model.json")]),
    "diff": ("kpolicy.resolve.command", lambda ws: [
        "diff", "--model", str(ws / "model.json"), f"{ws / 'in.config'}:{ws / 'cmdline.txt'}",
        str(ws / "in.config")]),
    "report": ("kpolicy.resolve.command", lambda ws: [
        "report", "--model", str(ws / "model.json"), "-o", str(ws.out / "report.html"),
        f"{ws / 'in.config'}:{ws / 'cmdline.txt'}"]),
}

TREE_COMMANDS = ("olddefconfig", "why", "params", "families", "lint", "resolve-tree", "model")


@dataclass(frozen=True)
class Kind:
    """One kind of input: where it lives in the workspace and which commands read it."""

    target: str  # relative to the workspace
    commands: tuple[str, ...]
    # For variants that change content: the file to spoil (the tree's top Makefile for "tree").
    content_target: Optional[str] = None
    # What "missing" removes when losing the target itself is not an error (a rules file).
    missing_target: Optional[str] = None
    # Files an error about a missing target may name instead (the file that sources it).
    missing_named_by: tuple[str, ...] = ()
    json: bool = False
    binary: bool = False  # gzip'd: a spoiled byte has no line
    optional: bool = False  # absent is fine (the tree's own .kpolicy.toml)
    # Kind-specific bad content: variant -> (bytes or a maker of them, line the error names).
    extra: dict[str, tuple[Union[bytes, Callable[[], bytes]], Optional[int]]] = field(
        default_factory=dict)


@functools.cache
def _gzip_bomb(fill: bytes) -> bytes:
    """~4 MB of gzip that inflates to 4 GiB of FILL: 64 members of 64 MiB each."""
    member = gzip.compress(fill * (64 * 1024 * 1024), compresslevel=9, mtime=0)
    return member * 64


# Nesting that exhausts a recursive parser's stack (json, tomllib) rather than memory.
DEEP_JSON = b"[" * 200_000 + b"\n"
DEEP_TOML = b"# deep\na = " + b"[" * 200_000 + b"\n"

KINDS: dict[str, Kind] = {
    "tree": Kind("tree", TREE_COMMANDS, content_target="tree/Makefile"),
    "kconfig": Kind(
        "tree/init/Kconfig",
        ("olddefconfig", "why", "families", "lint", "resolve-tree", "model"),
        missing_named_by=("tree/Kconfig",),
        extra={"syntax": (b"config EXPERT\n\tbool \"x\"\n\tdepends on (A &&\n", 3)},
    ),
    "kernel-parameters.txt": Kind(f"tree/{KPARAMS}", ("params", "families", "lint")),
    "dotconfig": Kind(
        "in.config",
        ("olddefconfig", "olddefconfig-toolchain", "why", "resolve-tree", "resolve-model", "diff",
         "report"),
        extra={
            # /proc/config.gz is gzip'd: a bomb and a torn stream must stay bounded and clean.
            "gzip-bomb": (lambda: _gzip_bomb(b"#"), None),
            "gzip-torn": (gzip.compress(TINY_CONFIG.encode() * 50)[:60], None),
        },
    ),
    "cmdline-file": Kind("cmdline.txt", ("resolve-model", "diff", "report")),
    "cmdlines-jsonl": Kind(
        "cmdlines.jsonl", ("resolve-batch",), json=True,
        extra={"json-syntax": (b'"quiet"\n{"cmdline": "a"}\n{"cmdline": \n', 3),
               "json-shape": (b'"quiet"\n{"cmdline": 5}\n', 2),
               "deep-nesting": (b'"quiet"\n' + DEEP_JSON, 2)},
    ),
    "bootconfig": Kind(
        "bootconfig", ("resolve-model",),
        # lib/bootconfig.c reports an unclosed quote where the data ends
        extra={"syntax": (b"kernel.quiet\ninit {\n  foo = \"bar\n}\n", 5)},
    ),
    "rules": Kind(
        "rules/boot-default-missing.toml", ("lint", "rules"), missing_target="rules",
        extra={"toml-syntax": (b"# rule\ncode = \"KP999\"\nname = = 3\nseverity = \"note\"\n", 3),
               "schema": (b"# rule\n# rule\ncode = 7\n", 3),
               "deep-nesting": (DEEP_TOML, None)},
    ),
    "waivers": Kind(
        "waivers.toml", ("lint",),
        extra={"toml-syntax": (b"# w\n# w\n[[waiver]\n", 3),
               "schema": (b"# w\n# w\nsurprise = 1\n", 3),
               "deep-nesting": (DEEP_TOML, None)},
    ),
    "tree-waivers": Kind(
        "tree/.kpolicy.toml", ("lint-tree-config",), optional=True,
        extra={"toml-syntax": (b"# w\n# w\n[[waiver]\n", 3)},
    ),
    "baseline": Kind(
        "baseline.json", ("lint",), json=True,
        extra={"json-syntax": (b'{\n  "schema_version": 1,\n  "findings": [,\n', 3),
               "json-shape": (b'{"schema_version": 1, "findings": 5}\n', None),
               "deep-nesting": (DEEP_JSON, None)},
    ),
    "model": Kind(
        "model.json", ("resolve-model", "model-show"), json=True, binary=True,
        extra={"json-shape": (b'{"schema": "kpolicy-resolve-model", "hello": 1}\n', None),
               "gzip-bomb": (lambda: _gzip_bomb(b" "), None),
               "deep-nesting": (DEEP_JSON, None)},
    ),
}

VARIANTS = ("missing", "directory", "unreadable", "garbage", "nul", "invalid-utf8", "huge")


def _insert_bad_line(original: bytes, bad: bytes) -> tuple[bytes, int]:
    """ORIGINAL with the line BAD inserted as its third line (or last, if shorter)."""
    lines = original.splitlines(keepends=True)
    head = lines[:2]
    if head and not head[-1].endswith(b"\n"):
        head[-1] += b"\n"
    return b"".join([*head, bad + b"\n", *lines[2:]]), len(head) + 1


def _write_huge(path: Path, kind: Kind) -> None:
    block = (b" " * 1023 + b"\n") if kind.json else (b"#" * 1023 + b"\n")
    with open(path, "wb") as f:
        for _ in range(HUGE // len(block) + 1):
            f.write(block)


def _spoil(ws: Workspace, kind_name: str, variant: str) -> tuple[Path, Optional[int], bool]:
    """Spoil the input; return (file the error must name, its line or None, run unprivileged)."""
    kind = KINDS[kind_name]
    target = ws / kind.target
    if variant == "missing":
        gone = ws / (kind.missing_target or kind.target)
        shutil.rmtree(gone) if gone.is_dir() else gone.unlink()
        return gone, None, False
    if variant == "directory":
        if target.is_dir():  # a tree given as a file
            shutil.rmtree(target)
            target.write_text("not a tree\n")
        else:
            target.unlink()
            target.mkdir()
        return target, None, False
    if variant == "unreadable":
        target.chmod(0)
        return target, None, True
    content_target = ws / (kind.content_target or kind.target)
    original = content_target.read_bytes()
    line: Optional[int] = None
    if variant == "garbage":
        data = random.Random(f"{kind_name}-garbage").randbytes(64 * 1024)
    elif variant == "nul":
        data, line = _insert_bad_line(original, b"a NUL \0 byte")
    elif variant == "invalid-utf8":
        data, line = _insert_bad_line(original, b"latin-1 \xe9t\xe9 \xff")
    elif variant == "huge":
        _write_huge(content_target, kind)
        return content_target, None, False
    else:
        made, line = kind.extra[variant]
        data = made() if callable(made) else made
    content_target.write_bytes(data)
    return content_target, None if kind.binary else line, False


@pytest.fixture(scope="session")
def template() -> Iterator[Path]:
    """A workspace with every input valid, and a resolve model built from its tree."""
    root = world_readable_tmpdir("kpolicy-bad-input-template-")
    write_tiny_tree(root / "tree")
    (root / "in.config").write_text(TINY_CONFIG)
    (root / "cmdline.txt").write_text("quiet bootconfig randomize_kstack_offset=1\n")
    (root / "cmdlines.jsonl").write_text('"quiet"\n{"cmdline": "randomize_kstack_offset=0", '
                                         '"id": "off"}\n')
    (root / "bootconfig").write_text("# bootconfig\nkernel.quiet\ninit.foo = bar\n")
    shutil.copytree(REPO / "rules", root / "rules")
    waivers = ('# kpolicy settings\n# reviewed\n[[waiver]]\nrule = "boot-default-missing"\n'
               'symbol = "NOT_IN_THE_TREE"\nreason = "fixture"\n')
    (root / "waivers.toml").write_text(waivers)
    (root / "tree" / ".kpolicy.toml").write_text(waivers)
    (root / "baseline.json").write_text(
        json.dumps({"schema_version": 1, "tool": "kpolicy", "findings": []}, indent=2) + "\n")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def model_file(template: Path) -> Path:
    """A resolve model built from the template's tree by `kpolicy model build`."""
    path = template.parent / f"{template.name}-model.json"
    built = run_kpolicy(["model", "build", "--tree", str(template / "tree"), "-o", str(path),
                         _NC])
    if built.returncode != 0:
        pytest.fail(f"cannot build the fixture model:\n{built.describe()}")
    return path


@pytest.fixture
def workspace(template: Path) -> Iterator[Workspace]:
    root = world_readable_tmpdir()
    shutil.copytree(template, root, dirs_exist_ok=True)
    (root / "out").mkdir()
    (root / "out").chmod(0o777)
    yield Workspace(root)
    for p in root.rglob("*"):  # undo chmod 0 so the tree can be removed
        if not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)


def _prepare(request: pytest.FixtureRequest, ws: Workspace, command: str) -> None:
    """Skip a command that has not landed yet; give resolve --model its model."""
    module = COMMANDS[command][0]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} has not landed")
    if str(ws / "model.json") in COMMANDS[command][1](ws):
        shutil.copyfile(request.getfixturevalue("model_file"), ws / "model.json")


def _cases() -> Iterator[object]:
    for kind_name, kind in KINDS.items():
        for variant in (*VARIANTS, *kind.extra):
            if variant == "missing" and kind.optional:
                continue
            for command in kind.commands:
                yield pytest.param(kind_name, variant, command,
                                   id=f"{kind_name}-{variant}-{command}")


def _assert_clean_error(run: Run, ws: Workspace, kind: Kind, variant: str, bad: Path,
                        line: Optional[int]) -> None:
    where, got_line, message = error_location(run)
    named = names_file(where, bad, ws.tree, message)
    if not named and variant == "missing":
        named = any(names_file(where, ws / alt, ws.tree, message) for alt in kind.missing_named_by)
    assert named, f"the error does not name {bad}:\n{run.describe()}"
    if line is not None and variant != "missing":
        assert got_line == line, f"expected line {line}:\n{run.describe()}"


@pytest.mark.parametrize(("kind_name", "variant", "command"), list(_cases()))
def test_bad_input_is_one_clean_error(request: pytest.FixtureRequest, workspace: Workspace,
                                      kind_name: str, variant: str, command: str) -> None:
    _prepare(request, workspace, command)
    kind = KINDS[kind_name]
    bad, line, unprivileged = _spoil(workspace, kind_name, variant)
    args = COMMANDS[command][1](workspace)
    run = run_kpolicy(args, cwd=workspace.root, unprivileged=unprivileged)
    _assert_clean_error(run, workspace, kind, variant, bad, line)


# --- odd input the kernel accepts ---------------------------------------------------------

@dataclass(frozen=True)
class Accepted:
    target: str
    content: bytes
    commands: tuple[str, ...]
    warning: str  # a regex-free fragment the warning must contain


ACCEPTED: dict[str, Accepted] = {
    # conf_read_simple: an unknown symbol is skipped with a warning, the rest still applies.
    "dotconfig-unknown-symbol": Accepted(
        "in.config", TINY_CONFIG.encode() + b"CONFIG_NOT_A_REAL_SYMBOL=y\n",
        ("olddefconfig", "resolve-tree"), "NOT_A_REAL_SYMBOL"),
    # ... and so is a line it cannot read.
    "dotconfig-unexpected-data": Accepted(
        "in.config", TINY_CONFIG.encode() + b"this is no config line\n",
        ("olddefconfig", "resolve-model"), f"in.config:{TINY_CONFIG.count(chr(10)) + 1}"),
    # The kernel passes control bytes through; kpolicy warns about them.
    "cmdline-control-byte": Accepted(
        "cmdline.txt", b"quiet \x01odd=\x07 randomize_kstack_offset=1\n", ("resolve-model",),
        "control"),
    # osource of a missing file is silently nothing, as in C conf.
    "kconfig-osource-missing": Accepted(
        "tree/Kconfig", b'mainmenu "m"\nsource "arch/$(SRCARCH)/Kconfig"\n'
                        b'source "init/Kconfig"\nosource "nowhere/Kconfig"\n',
        ("olddefconfig",), ""),
}


@pytest.mark.parametrize(
    ("case", "command"),
    [pytest.param(c, cmd, id=f"{c}-{cmd}") for c, a in ACCEPTED.items() for cmd in a.commands],
)
def test_odd_input_the_kernel_accepts_is_accepted_with_a_warning(
    request: pytest.FixtureRequest, workspace: Workspace, case: str, command: str
) -> None:
    _prepare(request, workspace, command)
    accepted = ACCEPTED[case]
    (workspace / accepted.target).write_bytes(accepted.content)
    run = run_kpolicy(COMMANDS[command][1](workspace), cwd=workspace.root)
    assert "Traceback" not in run.stderr, run.describe()
    assert run.returncode in (0, 1), run.describe()
    assert ": error: " not in run.stderr, run.describe()
    if accepted.warning:  # on stderr, or in the report's own warnings
        said = run.stderr + run.stdout.decode("utf-8", "replace")
        warnings = [ln for ln in said.splitlines() if "warning" in ln]
        assert any(accepted.warning in ln for ln in warnings), run.describe()


def test_control_byte_given_as_an_argument_is_accepted_with_a_warning(
    request: pytest.FixtureRequest, workspace: Workspace
) -> None:
    _prepare(request, workspace, "resolve-model")
    args = ["resolve", "--model", str(workspace / "model.json"), "--config",
            str(workspace / "in.config"), "--cmdline", "quiet \x1b[31mred=1"]
    run = run_kpolicy(args, cwd=workspace.root)
    assert run.returncode == 0, run.describe()
    said = run.stderr + run.stdout.decode("utf-8", "replace")
    assert any("control" in ln for ln in said.splitlines() if "warning" in ln), run.describe()


# --- a Kconfig built to exhaust memory or time ------------------------------------------------

def _chain(n: int) -> str:
    out = ['config S0\n\tbool "s"\n\tdefault y\n']
    out += [f'config S{i}\n\tbool "s"\n\tdefault y\n\tdepends on S{i - 1}\n' for i in range(1, n)]
    return "".join(out)


HOSTILE_KCONFIG: dict[str, str] = {
    # 2**40 characters if expanded: kconfiglib alone runs out of memory
    "macro-doubling": "F := x\n" + "F := $(F)$(F)\n" * 40 + 'config A\n\tstring "a"\n',
    # 2**40 expansions of nothing: no memory, all time
    "macro-fanout": "A0 =\n" + "".join(f"A{i} = $(A{i - 1})$(A{i - 1})\n" for i in range(1, 41))
    + 'config A\n\tstring "a"\n\tdefault "$(A40)"\n',
    "deep-expression": 'config A\n\tbool "a"\n\tdepends on ' + "(" * 20000 + "B" + ")" * 20000
    + "\n",
    "long-dependency-chain": _chain(30000),
    "error-if": 'config A\n\tbool\n$(error-if,y,stop here)\n',
}


@pytest.mark.parametrize("case", list(HOSTILE_KCONFIG))
def test_kconfig_built_to_exhaust_resources_is_one_clean_error(
    request: pytest.FixtureRequest, workspace: Workspace, case: str
) -> None:
    _prepare(request, workspace, "olddefconfig")
    kconfig = workspace.tree / "init" / "Kconfig"
    kconfig.write_text(HOSTILE_KCONFIG[case])
    run = run_kpolicy(COMMANDS["olddefconfig"][1](workspace), cwd=workspace.root, timeout=120)
    where, _line, message = error_location(run)
    assert names_file(where, kconfig, workspace.tree, message) or names_file(
        where, workspace.tree / "Kconfig", workspace.tree, message), run.describe()


# --- where the output goes ------------------------------------------------------------------

OUTPUT_COMMANDS: dict[str, tuple[str, Callable[[Workspace, Path], list[str]]]] = {
    "olddefconfig": ("olddefconfig", lambda ws, o: [
        "kconfig", "olddefconfig", *_tree(ws), "--arch", "x86_64", "-o", str(o), _NC]),
    "model": ("model", lambda ws, o: ["model", "build", *_tree(ws), "-o", str(o), _NC]),
    "lint": ("lint", lambda ws, o: ["lint", *_tree(ws), "-o", str(o), _NC]),
    "write-baseline": ("lint", lambda ws, o: ["lint", *_tree(ws), "--write-baseline", str(o),
                                              _NC]),
    "report": ("report", lambda ws, o: [
        "report", "--model", str(ws / "model.json"), "-o", str(o), str(ws / "in.config")]),
}


@pytest.mark.parametrize("where", ["a-directory", "under-a-file", "unwritable-directory"])
@pytest.mark.parametrize("name", list(OUTPUT_COMMANDS))
def test_output_that_cannot_be_written_is_one_clean_error(
    request: pytest.FixtureRequest, workspace: Workspace, name: str, where: str
) -> None:
    command, build = OUTPUT_COMMANDS[name]
    _prepare(request, workspace, command)
    locked = workspace / "locked"
    locked.mkdir(mode=0o555)
    target = {"a-directory": workspace.out,
              "under-a-file": workspace / "in.config" / "out",
              "unwritable-directory": locked / "out"}[where]
    run = run_kpolicy(build(workspace, target), cwd=workspace.root,
                      unprivileged=where == "unwritable-directory")
    where_named, _line, message = error_location(run)
    assert names_file(where_named, target, workspace.tree, message), run.describe()
