"""Same inputs, byte-identical output: every command and report format, run three times (cold
cache, warm cache, no cache) under different hash seeds, time zones and locales, prints the
same bytes, and no report carries a timestamp or the temporary directory the inputs live in."""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Optional

import pytest
from security_harness import TINY_CONFIG, run_kpolicy, world_readable_tmpdir, write_tiny_tree

_TIMESTAMP = re.compile(rb"\b20\d\d-[01]\d-[0-3]\d[T ][0-2]\d:[0-5]\d")

# The environments the runs differ in: ordering by hash, local time, language.
ENVIRONMENTS = (
    {"PYTHONHASHSEED": "1", "TZ": "UTC", "LC_ALL": "C.UTF-8"},
    {"PYTHONHASHSEED": "2", "TZ": "Asia/Kolkata", "LC_ALL": "C"},
    {"PYTHONHASHSEED": "3", "TZ": "America/St_Johns", "LANG": "de_DE.UTF-8"},
)


class Inputs:
    """The input files, named relative to ROOT (the runs' working directory): a path that shows
    up absolute in a report was made absolute by kpolicy."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tree = Path("tree")
        self.config = Path("in.config")
        self.config_b = Path("b.config")
        self.cmdline = Path("cmdline.txt")
        self.cmdlines = Path("cmdlines.jsonl")
        self.model = Path("model.json")


@pytest.fixture(scope="module")
def inputs() -> Iterator[Inputs]:
    root = world_readable_tmpdir("kpolicy-determinism-")
    ins = Inputs(root)
    write_tiny_tree(root / ins.tree)
    (root / ins.config).write_text(TINY_CONFIG)
    (root / ins.config_b).write_text(TINY_CONFIG + "CONFIG_RANDOMIZE_KSTACK_OFFSET_DEFAULT=y\n")
    (root / ins.cmdline).write_text("quiet randomize_kstack_offset=0 unknown_thing=1 "
                                    "init=/bin/sh\n")
    (root / ins.cmdlines).write_text('"quiet"\n{"cmdline": "randomize_kstack_offset=1", '
                                     '"id": "on"}\n')
    if importlib.util.find_spec("kpolicy.resolve.command") is not None:
        run_kpolicy(["model", "build", "--tree", str(ins.tree), "-o", str(ins.model),
                     "--no-cache"], cwd=root)
    yield ins
    shutil.rmtree(root, ignore_errors=True)


# name -> (module, argv builder given (inputs, output file), writes to the output file?)
Builder = Callable[[Inputs, Path], list[str]]
T = "--tree"


def _tree(i: Inputs) -> list[str]:
    return [T, str(i.tree)]


def _lint(fmt: str) -> Builder:
    return lambda i, o: ["lint", *_tree(i), "--all-arches", "--format", fmt, "-o", str(o)]


CASES: dict[str, tuple[str, Builder, bool]] = {
    "kconfig-olddefconfig": ("kpolicy.kconfig.command", lambda i, o: [
        "kconfig", "olddefconfig", *_tree(i), "--arch", "x86_64", "--config", str(i.config),
        "-o", str(o)], True),
    "kconfig-why": ("kpolicy.kconfig.command", lambda i, o: [
        "kconfig", "why", "RANDOMIZE_KSTACK_OFFSET_DEFAULT", *_tree(i), "--arch", "x86_64",
        "--config", str(i.config)], False),
    "params-text": ("kpolicy.params.command", lambda i, o: ["params", *_tree(i)], False),
    "params-json": ("kpolicy.params.command", lambda i, o: [
        "params", *_tree(i), "--format", "json"], False),
    "families-text": ("kpolicy.families.command", lambda i, o: ["families", *_tree(i)], False),
    "families-json": ("kpolicy.families.command", lambda i, o: [
        "families", *_tree(i), "--format", "json", "--arch", "x86_64", "--arch", "arm64"], False),
    **{f"lint-{fmt}": ("kpolicy.lint.command", _lint(fmt), True)
       for fmt in ("text", "json", "sarif", "github")},
    "rules": ("kpolicy.lint.command", lambda i, o: ["rules"], False),
    "rule": ("kpolicy.lint.command", lambda i, o: ["rule", "boot-default-missing"], False),
    "resolve-tree-text": ("kpolicy.resolve.command", lambda i, o: [
        "resolve", *_tree(i), "--config", str(i.config), "--cmdline-file", str(i.cmdline),
        "-v"], False),
    "resolve-tree-json": ("kpolicy.resolve.command", lambda i, o: [
        "resolve", *_tree(i), "--config", str(i.config), "--cmdline-file", str(i.cmdline),
        "--format", "json"], False),
    "resolve-model-json": ("kpolicy.resolve.command", lambda i, o: [
        "resolve", "--model", str(i.model), "--config", str(i.config), "--cmdline-file",
        str(i.cmdline), "--format", "json"], False),
    "resolve-batch": ("kpolicy.resolve.command", lambda i, o: [
        "resolve", "--model", str(i.model), "--config", str(i.config), "--cmdlines",
        str(i.cmdlines)], False),
    "diff-json": ("kpolicy.resolve.command", lambda i, o: [
        "diff", "--model", str(i.model), "--format", "json", f"{i.config}:{i.cmdline}",
        str(i.config_b)], False),
    "report-html": ("kpolicy.resolve.command", lambda i, o: [
        "report", "--model", str(i.model), "--format", "html", "-o", str(o),
        f"{i.config}:{i.cmdline}", str(i.config_b)], True),
    "model-build": ("kpolicy.resolve.command", lambda i, o: [
        "model", "build", *_tree(i), "-o", str(o)], True),
    "model-show": ("kpolicy.resolve.command", lambda i, o: ["model", "show", str(i.model)], False),
}


def _uses_cache(argv: list[str]) -> bool:
    return argv[0] in ("kconfig", "params", "families", "lint") or T in argv


@pytest.mark.parametrize("case", list(CASES))
def test_output_is_byte_identical_and_free_of_temp_paths(inputs: Inputs, case: str) -> None:
    module, build, to_file = CASES[case]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} has not landed")
    if "--model" in build(inputs, Path("x")) and not (inputs.root / inputs.model).is_file():
        pytest.fail("the fixture model could not be built")
    cache = inputs.root / f"cache-{case}"
    outputs: list[bytes] = []
    for n, env in enumerate(ENVIRONMENTS):
        out = Path(f"{case}.out{n}")
        argv = build(inputs, out)
        if _uses_cache(argv):
            argv += ["--no-cache"] if n == 2 else ["--cache-dir", str(cache)]
        run = run_kpolicy(argv, cwd=inputs.root, env=env)
        assert run.returncode in (0, 1), run.describe()
        outputs.append((inputs.root / out).read_bytes() if to_file else run.stdout)
    assert outputs[0], f"{case} printed nothing"
    first: Optional[bytes] = outputs[0]
    for n, other in enumerate(outputs[1:], 1):
        assert other == first, f"{case}: run {n} differs from run 0 (env {ENVIRONMENTS[n]})"
    assert str(inputs.root).encode() not in first, f"{case}: the temporary directory leaks"
    assert not _TIMESTAMP.search(first), f"{case}: a timestamp: {_TIMESTAMP.search(first)}"


@pytest.mark.real
def test_real_tree_lint_report_is_byte_identical_across_hash_seeds() -> None:
    """On Linux 7.2 (warm shared cache after the first run), SARIF from two hash seeds."""
    from conftest import real_tree

    tree = real_tree("7.2")
    outputs = []
    for env in ENVIRONMENTS[:2]:
        run = run_kpolicy(["lint", "--tree", str(tree), "--format", "sarif"], env=env)
        assert run.returncode in (0, 1), run.describe()
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert str(tree).encode() not in outputs[0], "the tree's absolute path leaks"
