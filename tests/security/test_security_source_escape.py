"""Nothing outside the tree is read: Kconfig `source` escapes (absolute paths, `..`, macros, globs,
symlinked files and directories) are refused with `path:line: error`, exit 2; source cycles and
depth are bounded; symlinks in the catalog's inputs (kernel-parameters.txt, C files, Makefiles,
directories) are not followed out. Every run carries an audit hook that reports any file opened
or directory listed outside the tree, so "refused" cannot mean "read, then complained"."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from security_harness import (
    KPARAMS,
    TINY_TREE,
    Run,
    error_location,
    names_file,
    outside_reads,
    run_kpolicy,
    write_files,
)

OUTSIDE_FILES = {
    "Kconfig": "config LEAKED_FROM_OUTSIDE\n\tbool \"leaked\"\n\tdefault y\n",
    "x86/Kconfig": "config X86\n\tdef_bool y\n\nconfig LEAKED_FROM_OUTSIDE\n\tdef_bool y\n",
    "leak.c": ("static int __init leak_setup(char *s)\n{\n\treturn 1;\n}\n"
               '__setup("leaked_param=", leak_setup);\n'),
    "Makefile": "obj-y += main.o leak.o\n",
    "kernel-parameters.txt": "\tleaked_param=\t[KNL] Read from outside the tree.\n",
    "drivers/Makefile": "obj-y += leak.o\n",
    "drivers/leak.c": 'early_param("leaked_param", leak_setup);\n',
}


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(tree, outside): a tiny tree and, beside it, a directory it must never read."""
    outside = write_files(tmp_path / "outside", OUTSIDE_FILES)
    tree = write_files(tmp_path / "tree", TINY_TREE)
    return tree, outside


def _olddefconfig(tree: Path, out: Path) -> list[str]:
    return ["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
            "-o", str(out / "out.config"), "--no-cache"]


def _lint(tree: Path, out: Path) -> list[str]:
    return ["lint", "--tree", str(tree), "--no-cache"]


def _families(tree: Path, out: Path) -> list[str]:
    return ["families", "--tree", str(tree), "--format", "json", "--no-cache"]


def _params(tree: Path, out: Path) -> list[str]:
    return ["params", "--tree", str(tree), "--format", "json", "--no-cache"]


def _model(tree: Path, out: Path) -> list[str]:
    return ["model", "build", "--tree", str(tree), "-o", str(out / "model.json"), "--no-cache"]


COMMAND_MODULES = {
    _olddefconfig: "kpolicy.kconfig.command",
    _lint: "kpolicy.lint.command",
    _families: "kpolicy.families.command",
    _params: "kpolicy.params.command",
    _model: "kpolicy.resolve.command",
}


def _run(command, tree: Path, outside: Path, tmp_path: Path) -> Run:  # type: ignore[no-untyped-def]
    module = COMMAND_MODULES[command]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} has not landed")
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    run = run_kpolicy(command(tree, out), cwd=tmp_path, forbidden=outside)
    assert outside_reads(run) == [], run.describe()
    assert "Traceback" not in run.stderr, run.describe()
    return run


def _append(path: Path, text: str) -> int:
    """Append TEXT as one line to PATH; return its line number."""
    lines = path.read_text().splitlines()
    lines.append(text)
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def _replace_with_link(link: Path, target: Path) -> None:
    if link.is_dir() and not link.is_symlink():
        import shutil

        shutil.rmtree(link)
    elif link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(target)


# name -> edit(tree, outside) returning (file, line) the error must name
def _absolute(tree: Path, outside: Path) -> tuple[Path, int]:
    return tree / "Kconfig", _append(tree / "Kconfig", f'source "{outside}/Kconfig"')


def _absolute_osource(tree: Path, outside: Path) -> tuple[Path, int]:
    return tree / "Kconfig", _append(tree / "Kconfig", f'osource "{outside}/Kconfig"')


def _dotdot(tree: Path, outside: Path) -> tuple[Path, int]:
    return tree / "Kconfig", _append(tree / "Kconfig", 'source "../outside/Kconfig"')


def _dotdot_through_inside(tree: Path, outside: Path) -> tuple[Path, int]:
    return tree / "Kconfig", _append(tree / "Kconfig", 'source "init/../../outside/Kconfig"')


def _rsource_dotdot(tree: Path, outside: Path) -> tuple[Path, int]:
    kconfig = tree / "init" / "Kconfig"
    return kconfig, _append(kconfig, 'rsource "../../outside/Kconfig"')


def _osource_glob(tree: Path, outside: Path) -> tuple[Path, int]:
    return tree / "Kconfig", _append(tree / "Kconfig", 'osource "../outside/*"')


def _macro(tree: Path, outside: Path) -> tuple[Path, int]:
    _append(tree / "Kconfig", f"ELSEWHERE := {outside}")
    return tree / "Kconfig", _append(tree / "Kconfig", 'source "$(ELSEWHERE)/Kconfig"')


def _symlinked_file(tree: Path, outside: Path) -> tuple[Path, int]:
    _replace_with_link(tree / "init" / "Kconfig", outside / "Kconfig")
    return tree / "Kconfig", 4  # the line that sources init/Kconfig


def _symlinked_dir(tree: Path, outside: Path) -> tuple[Path, int]:
    _replace_with_link(tree / "arch" / "x86", outside / "x86")
    return tree / "Kconfig", 3  # source "arch/$(SRCARCH)/Kconfig"


ESCAPES = {
    "absolute": _absolute,
    "absolute-osource": _absolute_osource,
    "dotdot": _dotdot,
    "dotdot-through-inside": _dotdot_through_inside,
    "rsource-dotdot": _rsource_dotdot,
    "osource-glob": _osource_glob,
    "macro": _macro,
    "symlinked-file": _symlinked_file,
    "symlinked-dir": _symlinked_dir,
}


@pytest.mark.parametrize("command", [_olddefconfig, _lint], ids=["olddefconfig", "lint"])
@pytest.mark.parametrize("escape", list(ESCAPES))
def test_kconfig_source_outside_the_tree_is_refused(
    layout: tuple[Path, Path], tmp_path: Path, escape: str, command: object
) -> None:
    tree, outside = layout
    file, line = ESCAPES[escape](tree, outside)
    run = _run(command, tree, outside, tmp_path)
    where, got_line, message = error_location(run)
    # The error may name the sourcing line, or the file that resolved outside.
    assert names_file(where, file, tree, message), run.describe()
    assert got_line == line, run.describe()


def test_symlink_that_stays_inside_the_tree_is_followed(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    tree, outside = layout
    (tree / "lib").mkdir()
    (tree / "lib" / "Kconfig").write_text("config INSIDE_LINKED\n\tdef_bool y\n")
    (tree / "init" / "Kconfig.linked").symlink_to("../lib/Kconfig")
    _append(tree / "Kconfig", 'source "init/Kconfig.linked"')
    run = _run(_olddefconfig, tree, outside, tmp_path)
    assert run.returncode == 0, run.describe()
    assert "CONFIG_INSIDE_LINKED=y" in (tmp_path / "out" / "out.config").read_text()


def test_srctree_in_the_environment_does_not_move_the_tree(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    tree, outside = layout
    (outside / "init").mkdir()
    (outside / "init" / "Kconfig").write_text(OUTSIDE_FILES["Kconfig"])
    if importlib.util.find_spec("kpolicy.kconfig.command") is None:
        pytest.skip("kpolicy.kconfig.command has not landed")
    out = tmp_path / "out"
    out.mkdir()
    run = run_kpolicy(_olddefconfig(tree, out), cwd=tmp_path, forbidden=outside,
                      env={"srctree": str(outside), "KCONFIG_CONFIG": str(outside / "Kconfig")})
    assert outside_reads(run) == [], run.describe()
    assert run.returncode == 0, run.describe()
    assert "LEAKED_FROM_OUTSIDE" not in (out / "out.config").read_text()


# --- cycles and depth ---------------------------------------------------------------------

def test_source_cycle_is_an_error_at_the_sourcing_line(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    tree, outside = layout
    (tree / "init" / "Kconfig.a").write_text('config A\n\tbool\nsource "init/Kconfig.b"\n')
    (tree / "init" / "Kconfig.b").write_text('config B\n\tbool\nsource "init/Kconfig.a"\n')
    _append(tree / "init" / "Kconfig", 'source "init/Kconfig.a"')
    run = _run(_olddefconfig, tree, outside, tmp_path)
    where, line, message = error_location(run)
    assert any(names_file(where, tree / "init" / n, tree, message)
               for n in ("Kconfig.a", "Kconfig.b")), run.describe()
    assert line == 3, run.describe()


def test_source_depth_is_bounded(layout: tuple[Path, Path], tmp_path: Path) -> None:
    tree, outside = layout
    depth = 200
    for i in range(depth):
        (tree / "deep").mkdir(exist_ok=True)
        (tree / "deep" / f"K{i}").write_text(f'config DEEP{i}\n\tbool\nsource "deep/K{i + 1}"\n')
    (tree / "deep" / f"K{depth}").write_text("config DEEPEST\n\tbool\n")
    _append(tree / "Kconfig", 'source "deep/K0"')
    run = _run(_olddefconfig, tree, outside, tmp_path)
    where, line, _message = error_location(run)
    assert where.startswith(("deep/K", str(tree / "deep" / "K"))), run.describe()
    assert line == 3, run.describe()


# --- the catalog's inputs -----------------------------------------------------------------

def _link_docs(tree: Path, outside: Path) -> None:
    _replace_with_link(tree / KPARAMS, outside / "kernel-parameters.txt")


def _link_c_file(tree: Path, outside: Path) -> None:
    (tree / "init" / "Makefile").write_text("obj-y += main.o leak.o\n")
    (tree / "init" / "leak.c").symlink_to(outside / "leak.c")


def _link_makefile(tree: Path, outside: Path) -> None:
    _replace_with_link(tree / "init" / "Makefile", outside / "Makefile")


def _link_directory(tree: Path, outside: Path) -> None:
    (tree / "Makefile").write_text(TINY_TREE["Makefile"] + "obj-y += init/ drivers/\n")
    (tree / "drivers").symlink_to(outside / "drivers", target_is_directory=True)


CATALOG_LINKS = {
    "kernel-parameters.txt": _link_docs,
    "c-file": _link_c_file,
    "makefile": _link_makefile,
    "directory": _link_directory,
}


@pytest.mark.parametrize("command", [_params, _families, _lint, _model],
                         ids=["params", "families", "lint", "model"])
@pytest.mark.parametrize("link", list(CATALOG_LINKS))
def test_catalog_does_not_follow_symlinks_out_of_the_tree(
    layout: tuple[Path, Path], tmp_path: Path, link: str, command: object
) -> None:
    tree, outside = layout
    CATALOG_LINKS[link](tree, outside)
    run = _run(command, tree, outside, tmp_path)
    assert b"leaked_param" not in run.stdout, run.describe()
    if run.returncode == 2:  # refusing is fine, as one clean error naming the link
        where, _line, message = error_location(run)
        link_path = {"kernel-parameters.txt": tree / KPARAMS, "c-file": tree / "init" / "leak.c",
                     "makefile": tree / "init" / "Makefile", "directory": tree / "drivers"}[link]
        assert names_file(where, link_path, tree, message), run.describe()
    else:
        assert run.returncode in (0, 1), run.describe()
        assert link != "kernel-parameters.txt" or command is _model, (
            "the tree's own kernel-parameters.txt leads outside: that is an error\n"
            + run.describe())


def test_audit_hook_sees_reads_outside(layout: tuple[Path, Path], tmp_path: Path) -> None:
    """The watcher works: pointing --config at a file outside the tree is reported as a read."""
    tree, outside = layout
    if importlib.util.find_spec("kpolicy.kconfig.command") is None:
        pytest.skip("kpolicy.kconfig.command has not landed")
    (outside / "x.config").write_text("CONFIG_X86=y\n")
    out = tmp_path / "out"
    out.mkdir()
    run = run_kpolicy([*_olddefconfig(tree, out), "--config", str(outside / "x.config")],
                      cwd=tmp_path, forbidden=outside)
    assert run.returncode == 0, run.describe()
    assert any(os.path.basename(r.split()[-1]) == "x.config" for r in outside_reads(run))
