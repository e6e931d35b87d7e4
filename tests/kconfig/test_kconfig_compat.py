"""The Kconfig engine on the hand-written fixture tree tests/fixtures/kconfig/compat.

Each expectation below follows from scripts/kconfig's C code (Linux 7.2), noted per test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kpolicy.cache import Cache
from kpolicy.errors import KpolicyError
from kpolicy.kconfig import (
    default_toolchain,
    eval_expr,
    explain,
    format_why,
    load_model,
    load_models,
    read_dotconfig,
    shell_toolchain,
    toolchain_from_config,
    write_dotconfig,
)
from kpolicy.kconfig.model import Expr, KconfigModel
from kpolicy.tree import open_tree

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "kconfig" / "compat"


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "tree"
    shutil.copytree(FIXTURE, dest)
    return dest


def load(tmp_path: Path, config: str | None = None, *, arch: str = "x86_64", **kw: object):
    path = None
    if config is not None:
        path = tmp_path / "in.config"
        path.write_text(config)
    return load_model(open_tree(FIXTURE), arch, config=path, **kw)  # type: ignore[arg-type]


def test_modules_attribute_marks_the_modules_symbol(tmp_path: Path) -> None:
    # `modules` makes MODULES the symbol whose n turns tristates into bools (sym_get_type).
    off = load(tmp_path)
    assert off.symbols["MODULES"].is_modules
    assert off.value("MODULES") == "n" and off.value("DRIVER") == "y"  # default m -> y
    on = load(tmp_path, "CONFIG_MODULES=y\n")
    assert on.value("DRIVER") == "m"


def test_transitional_symbol_feeds_defaults_and_is_never_written(tmp_path: Path) -> None:
    # SYMBOL_TRANS: always visible, so the old .config value counts; conf_write skips it.
    without = load(tmp_path)
    assert without.value("NEW_NAME") == "n"
    model = load(tmp_path, "CONFIG_OLD_NAME=y\n")
    assert model.symbols["OLD_NAME"].transitional
    assert model.value("OLD_NAME") == "y" and model.value("NEW_NAME") == "y"
    out = tmp_path / "out.config"
    write_dotconfig(model, out)
    written = read_dotconfig(out).values
    assert "OLD_NAME" not in written and written["NEW_NAME"] == "y"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("", "y"),  # BAR=n: the dependency does not apply
        ("CONFIG_MODULES=y\nCONFIG_BAR=m\n", "n"),  # BAR=m: (BAR = n) is n, FOO=n blocks
        ("CONFIG_BAR=y\n", "n"),
        ("CONFIG_BAR=y\nCONFIG_FOO=y\n", "y"),
    ],
)
def test_depends_on_if(tmp_path: Path, config: str, expected: str) -> None:
    # menu_add_dep: `depends on FOO if BAR` is `FOO || (BAR = n)`; FOO is free on arm64.
    model = load(tmp_path, config, arch="arm64")
    assert model.value("CONDDEP") == expected
    dep = model.symbols["CONDDEP"].direct_dep
    assert dep is not None and dep.symbols() == {"FOO", "BAR"}


def test_int_without_value_compares_as_zero(tmp_path: Path) -> None:
    # An int with no prompt and no default is "0" in C (kconfiglib: ""), so `FORCE_ORDER = 0`
    # holds and BLOCK_ORDER takes `default 10` (PAGE_BLOCK_MAX_ORDER on 7.2 x86_64).
    model = load(tmp_path)
    assert model.value("FORCE_ORDER") == "0"
    assert "FORCE_ORDER" not in model.written
    assert model.value("BLOCK_ORDER") == "10"
    # The same from a .config alone, as resolve does without a tree: missing int -> 0.
    cmp = Expr("=", (Expr.sym("FORCE_ORDER"), Expr.const("0")))
    assert eval_expr(cmp, {}, {"FORCE_ORDER": "int"}) == "y"
    assert eval_expr(cmp, {"FORCE_ORDER": "11"}, {"FORCE_ORDER": "int"}) == "n"


def test_c_comparison_semantics() -> None:
    types = {"H": "hex", "S": "string", "B": "tristate", "I": "int"}
    values = {"H": "0x10", "S": "abc", "B": "m", "I": "-3"}

    def rel(op: str, a: Expr, b: Expr) -> str:
        return eval_expr(Expr(op, (a, b)), values, types)

    assert rel(">", Expr.sym("H"), Expr.const("9")) == "y"  # hex parsed base 16: 16 > 9
    assert rel("<", Expr.sym("I"), Expr.const("0")) == "y"  # signed
    assert rel("=", Expr.sym("B"), Expr.const("m")) == "y"
    assert rel(">", Expr.sym("B"), Expr.const("n")) == "y"  # tristates compare as 0/1/2
    assert rel("<", Expr.sym("S"), Expr.const("abd")) == "y"  # strcmp
    # An undefined symbol's value is its own name (not a number: strcmp).
    assert rel("=", Expr.sym("UNDEFINED"), Expr.const("UNDEFINED")) == "y"
    assert eval_expr(Expr("not", (Expr.sym("B"),)), values, types) == "m"


def test_choice_default_and_last_assignment_wins(tmp_path: Path) -> None:
    assert load(tmp_path).value("MODE_B") == "y"
    picked = load(tmp_path, "CONFIG_MODE_A=y\n")
    assert (picked.value("MODE_A"), picked.value("MODE_B")) == ("y", "n")
    both = load(tmp_path, "CONFIG_MODE_A=y\nCONFIG_MODE_B=y\n")
    assert (both.value("MODE_A"), both.value("MODE_B")) == ("n", "y")


def test_default_profile_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a process was started")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(os, "system", refuse)
    model = load(tmp_path, toolchain=default_toolchain())
    assert model.toolchain == "gcc-14-default"
    assert model.value("CC_IS_GCC") == "y" and model.value("GCC_VERSION") == "140200"
    assert model.value("SHELL_ECHO") == ""  # `echo` was not run
    assert {"CC_IS_GCC", "GCC_VERSION", "CC_HAS_FANCY", "CC_VERSION_TEXT"} <= model.tool_derived
    assert "FOO" not in model.tool_derived


def test_toolchain_from_config_takes_tool_derived_values(tmp_path: Path) -> None:
    built = tmp_path / "built.config"
    built.write_text('CONFIG_CC_IS_GCC=y\nCONFIG_GCC_VERSION=120200\n'
                     'CONFIG_CC_VERSION_TEXT="gcc (X) 12.2.0"\nCONFIG_FOO=n\n')
    model = load(tmp_path, toolchain=toolchain_from_config(built))
    assert model.value("GCC_VERSION") == "120200"
    assert model.value("CC_HAS_FANCY") == "n"  # absent from the file: the probe failed
    assert model.value("CC_VERSION_TEXT") == "gcc (X) 12.2.0"
    assert model.value("FOO") == "y"  # not tool-derived: the file does not touch it


def test_allow_shell_runs_the_commands(tmp_path: Path) -> None:
    model = load(tmp_path, toolchain=shell_toolchain())
    assert model.value("SHELL_ECHO") == "from-a-shell"
    assert model.value("GCC_VERSION") == "99999"  # from the fixture's scripts/cc-version.sh


def test_write_dotconfig_format(tmp_path: Path) -> None:
    model = load(tmp_path)
    out = tmp_path / "out.config"
    write_dotconfig(model, out)
    text = out.read_text()
    assert text.startswith("#\n# Automatically generated file; DO NOT EDIT.\n"
                           "# Linux/x86_64 7.2.13 Kernel Configuration\n#\n")
    assert "\n#\n# Compat\n#\n" in text and "# end of Compat\n\n" in text
    assert 'CONFIG_SECRET="say \\"hi\\""\n' in text
    assert "# CONFIG_BAR is not set\n" in text
    assert read_dotconfig(out).values["SECRET"] == 'say "hi"'
    # Reading our own output back changes nothing.
    again = load_model(open_tree(FIXTURE), "x86_64", config=out)
    assert again.values == model.values


def test_explain_names_the_blocking_dependency(tmp_path: Path) -> None:
    model = load(tmp_path, "CONFIG_BAR=y\n", arch="arm64")
    why = explain(model, "CONDDEP")
    assert why.value == "n"
    deps = [c for c in why.clauses if c.kind == "depends on"]
    assert len(deps) == 1 and deps[0].blocking and deps[0].location.line > 1
    assert dict(deps[0].terms) == {"FOO": "n", "BAR": "y"}
    text = format_why(why)
    assert "CONDDEP=n" in text and "<- blocks" in text and "Kconfig:" in text
    with pytest.raises(KpolicyError):
        explain(model, "NO_SUCH_SYMBOL")


def test_cache_warm_run_does_not_parse(tmp_path: Path, tree_copy: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import kpolicy.kconfig.load as load_mod

    cache = Cache(tmp_path / "cache")
    tree = open_tree(tree_copy)
    cold = load_model(tree, "x86_64", cache=cache)

    def no_parse(*_a: object, **_k: object) -> None:
        raise AssertionError("parsed again")

    real_parse = load_mod.parse_kconfig
    monkeypatch.setattr(load_mod, "parse_kconfig", no_parse)
    warm = load_model(tree, "x86_64", cache=cache)
    assert warm.values == cold.values and warm.written == cold.written
    assert warm.symbols["BLOCK_ORDER"] == cold.symbols["BLOCK_ORDER"]
    # Editing a Kconfig file that was read invalidates the entry.
    monkeypatch.setattr(load_mod, "parse_kconfig", real_parse)
    kconfig = tree_copy / "arch" / "x86" / "Kconfig"
    kconfig.write_text(kconfig.read_text().replace("select FOO if 64BIT", ""))
    assert load_model(tree, "x86_64", cache=cache).value("FOO") == "n"


def _error(tree: Path, arch: str = "x86_64") -> KpolicyError:
    with pytest.raises(KpolicyError) as info:
        load_model(open_tree(tree), arch)
    return info.value


def test_source_escapes_are_refused(tree_copy: Path, tmp_path: Path) -> None:
    kconfig = tree_copy / "Kconfig"
    base = kconfig.read_text()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Kconfig").write_text("config EVIL\n\tbool\n")

    kconfig.write_text(base + f'\nsource "{outside}/Kconfig"\n')
    err = _error(tree_copy)
    assert err.file == str(tree_copy / "Kconfig") and err.line == base.count("\n") + 2
    assert "absolute" in err.message

    kconfig.write_text(base + '\nsource "../outside/Kconfig"\n')
    assert "outside the tree" in _error(tree_copy).message

    (tree_copy / "link").symlink_to(outside)
    kconfig.write_text(base + '\nsource "link/Kconfig"\n')
    err = _error(tree_copy)
    assert "outside the tree" in err.message and err.line == base.count("\n") + 2


def test_source_cycle_is_an_error(tree_copy: Path) -> None:
    (tree_copy / "arch" / "x86" / "Kconfig").write_text('source "Kconfig"\n')
    err = _error(tree_copy)
    assert err.file is not None and err.line is not None and "recursive" in err.message.lower()


def test_syntax_error_names_file_and_line(tree_copy: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    from kpolicy.cli import main

    (tree_copy / "arch" / "x86" / "Kconfig").write_text("config X86\n\tdef_bool y\n\tfrobnicate\n")
    err = _error(tree_copy)
    assert err.file == str(tree_copy / "arch" / "x86" / "Kconfig") and err.line == 3
    code = main(["kconfig", "why", "X86", "--tree", str(tree_copy), "--arch", "x86_64",
                 "--no-cache"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"{tree_copy}/arch/x86/Kconfig:3: error: ")


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(KpolicyError, match=r"valid: .*arm64.*x86_64"):
        load_model(open_tree(FIXTURE), "sparc")
    with pytest.raises(KpolicyError, match="not found"):
        load_model(open_tree(FIXTURE), "x86_64", config=tmp_path / "missing")
    binary = tmp_path / "bin.config"
    binary.write_bytes(b"CONFIG_A=y\nCONFIG_B=\x00\n")
    with pytest.raises(KpolicyError) as info:
        load_model(open_tree(FIXTURE), "x86_64", config=binary)
    assert info.value.line == 2


def test_cli_olddefconfig_and_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kpolicy.cli import main

    out = tmp_path / "out.config"
    base = ["--tree", str(FIXTURE), "--arch", "x86_64", "--cache-dir", str(tmp_path / "c")]
    assert main(["kconfig", "olddefconfig", *base, "-o", str(out)]) == 0
    assert read_dotconfig(out).values["BLOCK_ORDER"] == "10"
    assert main(["kconfig", "why", "CONFIG_BLOCK_ORDER", *base]) == 0
    text = capsys.readouterr().out
    assert text.startswith("BLOCK_ORDER=10") and "range" in text and "default" in text


def _model_facts(model: KconfigModel) -> tuple[object, ...]:
    return (model.arch, model.values, model.written, sorted(model.symbols), model.warnings)


@pytest.mark.parametrize("cached", [True, False])
def test_worker_processes_give_the_models_one_process_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    import kpolicy.kconfig.load as load_module

    arches = ("x86_64", "i386", "arm64")
    alone = load_models(open_tree(FIXTURE), arches, cache=Cache(enabled=False))
    parsers = tmp_path / "parsed-by"
    real_parse = load_module.parse_kconfig

    def recording_parse(*args: object) -> object:
        with parsers.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return real_parse(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(load_module, "parse_kconfig", recording_parse)
    cache = Cache(tmp_path / "cache", enabled=cached)  # disabled: handed over through a temp one
    forked = load_models(open_tree(FIXTURE), arches, cache=cache, jobs=2)
    assert list(forked) == list(arches)
    assert [_model_facts(m) for m in forked.values()] == [_model_facts(m) for m in alone.values()]
    pids = parsers.read_text().split()
    assert len(pids) == len(arches) and str(os.getpid()) not in pids  # workers parsed, once each


def test_an_error_in_a_worker_is_reported_by_the_caller(tree_copy: Path, tmp_path: Path) -> None:
    (tree_copy / "arch" / "x86" / "Kconfig").write_text("config X86\n\tdef_bool y\n\tfrobnicate\n")
    with pytest.raises(KpolicyError) as info:
        load_models(open_tree(tree_copy), ("x86_64", "i386", "arm64"),
                    cache=Cache(tmp_path / "cache"), jobs=2)
    assert info.value.file == str(tree_copy / "arch" / "x86" / "Kconfig")
    assert info.value.line == 3
