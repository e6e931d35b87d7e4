"""Issue #11: hostile trees, commits and caches. Every reader of a tree goes through
kpolicy.treefs; symlink layouts are generated (directory links followed by `..`, chains, absolute
links, loops, devices, FIFOs) for each kind of file kpolicy reads, and every run carries the audit
hook; the file that would leak holds a marker that must appear nowhere in the output."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from security_harness import (
    KPARAMS,
    TINY_CONFIG,
    TINY_TREE,
    error_location,
    outside_reads,
    run_kpolicy,
    write_files,
    write_tiny_tree,
)

from kpolicy.cache import MAGIC
from kpolicy.lint import gitbase

MARKER = "LEAKED_FROM_OUTSIDE"
SECRET_ENV = "KPOLICY_TEST_SECRET=hunter2-" + MARKER + "\n"


def _outside(tmp: Path) -> Path:
    """A directory beside the tree holding a CI `.env` and Kconfig/C/doc files with MARKER."""
    return write_files(tmp / "outside", {
        ".env": SECRET_ENV,
        "Kconfig": f"config {MARKER}\n\tdef_bool y\n",
        "main.c": f'early_param("{MARKER.lower()}", leak_setup);\n',
        "Makefile": "obj-y += main.o\n",
        "kernel-parameters.txt": f"\t{MARKER.lower()}=\t[KNL] leaked.\n",
        "kpolicy.toml": 'fail-on = "note"\n',
    })


# Symlink shapes, each (links to create relative to the tree, the path that uses them). OUT is
# the outside directory, DEPTH the number of `..` from the tree root to `/`.
Shape = Callable[[Path, Path, str], tuple[dict[str, str], str]]


def _ups(tree: Path) -> str:
    return "/".join([".."] * len(tree.resolve().parts[1:]))


def _dir_to_root_then_dotdot(tree: Path, out: Path, name: str) -> tuple[dict[str, str], str]:
    # the example: x/d -> /, then x/d/../../<path of OUT from />
    return {"x/d": "/"}, "x/d/../.." + str(out / name)


def _dir_to_root(tree: Path, out: Path, name: str) -> tuple[dict[str, str], str]:
    return {"x/d": "/"}, "x/d" + str(out / name)


def _relative_dir_link(tree: Path, out: Path, name: str) -> tuple[dict[str, str], str]:
    return {"x/o": os.path.relpath(out, tree / "x")}, f"x/o/{name}"


def _chain(tree: Path, out: Path, name: str) -> tuple[dict[str, str], str]:
    # three in-tree hops, the last one climbing out
    return {"a/l1": "../b/l2", "b/l2": "../c/l3", "c/l3": os.path.relpath(out / name, tree / "c")
            }, "a/l1"


def _dotdot_over_in_tree_link(tree: Path, out: Path, name: str) -> tuple[dict[str, str], str]:
    # x/deep -> y/z/w (inside): x/deep/../../.. climbs from y/z/w, textually from x
    return {"x/deep": "../y/z/w", "y/z/w/.keep": ""}, \
        "x/deep/../../../" + _ups(tree) + str(out / name)


def _absolute_file_link(tree: Path, out: Path, name: str) -> tuple[dict[str, str], str]:
    return {"f": str(out / name)}, "f"


SHAPES: dict[str, Shape] = {
    "dir-to-root-dotdot": _dir_to_root_then_dotdot,
    "dir-to-root": _dir_to_root,
    "relative-dir-link": _relative_dir_link,
    "chain": _chain,
    "dotdot-over-in-tree-link": _dotdot_over_in_tree_link,
    "absolute-file-link": _absolute_file_link,
}


def _make(tree: Path, links: dict[str, str]) -> None:
    for rel, target in links.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".keep"):
            path.write_text("")
        else:
            os.symlink(target, path)


def _assert_confined(run, out_file: Path | None = None) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in run.stderr, run.describe()
    assert run.returncode in (0, 1, 2), run.describe()
    assert outside_reads(run) == [], run.describe()
    text = run.stdout.decode(errors="replace") + run.stderr
    if out_file is not None and out_file.exists():
        text += out_file.read_text(errors="replace")
    assert MARKER not in text and MARKER.lower() not in text and "hunter2" not in text, \
        run.describe()


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("statement", ["source", "rsource", "osource"])
def test_kconfig_source_through_symlinks_never_reads_outside(
    tmp_path: Path, shape: str, statement: str
) -> None:
    out = _outside(tmp_path)
    tree = write_files(tmp_path / "tree", TINY_TREE)
    for name in ("Kconfig", ".env"):
        links, used = SHAPES[shape](tree, out, name)
        for p in tree.glob("[abcfxy]"):
            subprocess.run(["rm", "-rf", str(p)], check=True)
        _make(tree, links)
        # (rsource: relative to the top Kconfig's directory, the root, so the same text)
        (tree / "Kconfig").write_text(
            TINY_TREE["Kconfig"] + f'{statement} "{used}"\n'
            'config SHOW\n\tstring "show"\n\tdefault "$(KPOLICY_TEST_SECRET)"\n')
        cfg = tmp_path / "out.config"
        run = run_kpolicy(["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
                           "-o", str(cfg), "--no-cache"], forbidden=out)
        _assert_confined(run, cfg)
        if statement != "osource":
            assert run.returncode == 2, run.describe()
            assert "outside the tree" in run.stderr or "symbolic links" in run.stderr, \
                run.describe()


@pytest.mark.parametrize("shape", ["dir-to-root", "relative-dir-link", "chain"])
def test_osource_glob_lists_nothing_outside(tmp_path: Path, shape: str) -> None:
    out = _outside(tmp_path)
    tree = write_files(tmp_path / "tree", TINY_TREE)
    links, used = SHAPES[shape](tree, out, "Kconfig")
    _make(tree, links)
    pattern = used.rsplit("/", 1)[0] + "/*" if "/" in used else "*"
    (tree / "Kconfig").write_text(TINY_TREE["Kconfig"] + f'osource "{pattern}"\n')
    run = run_kpolicy(["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
                       "-o", str(tmp_path / "o.config"), "--no-cache"], forbidden=out)
    _assert_confined(run, tmp_path / "o.config")


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("what", ["kparams", "c-file", "makefile", "include", "lint-config"])
def test_other_tree_readers_never_read_outside(tmp_path: Path, shape: str, what: str) -> None:
    out = _outside(tmp_path)
    tree = write_files(tmp_path / "tree", TINY_TREE)
    target = {"kparams": "kernel-parameters.txt", "c-file": "main.c", "makefile": "Makefile",
              "include": "main.c", "lint-config": "kpolicy.toml"}[what]
    links, used = SHAPES[shape](tree, out, target)
    _make(tree, links)
    if what == "kparams":
        (tree / KPARAMS).unlink()
        os.symlink(os.path.relpath(tree / used, (tree / KPARAMS).parent), tree / KPARAMS)
    elif what == "c-file":
        os.symlink(os.path.relpath(tree / used, tree / "init"), tree / "init" / "leak.c")
    elif what == "makefile":
        (tree / "drivers").mkdir()
        os.symlink(os.path.relpath(tree / used, tree / "drivers"), tree / "drivers" / "Makefile")
    elif what == "include":
        with open(tree / "init" / "main.c", "a") as f:
            f.write(f'#include "{os.path.relpath(tree / used, tree / "init")}"\n'
                    f'#include "../{used}"\n')
    else:
        os.symlink(used, tree / ".kpolicy.toml")
    cmd = ["lint", "--tree", str(tree), "--no-cache"] if what == "lint-config" else \
        ["params", "--tree", str(tree), "--format", "json", "--no-cache"]
    run = run_kpolicy(cmd, forbidden=out)
    _assert_confined(run)


def test_option_env_is_refused_at_its_line(tmp_path: Path) -> None:
    tree = write_files(tmp_path / "tree", TINY_TREE)
    kconfig = TINY_TREE["Kconfig"] + 'config SECRET\n\tstring\n\toption env="KPOLICY_TEST_SECRET"\n'
    (tree / "Kconfig").write_text(kconfig)
    run = run_kpolicy(["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
                       "-o", str(tmp_path / "o.config"), "--no-cache"],
                      env={"KPOLICY_TEST_SECRET": "hunter2"})
    assert run.returncode == 2, run.describe()
    assert f"Kconfig:{kconfig.count(chr(10))}: error: 'option env' is not supported" \
        in run.stderr, run.describe()
    assert "hunter2" not in run.stderr + run.stdout.decode()


def _warm(tree: Path, cache: Path, out: Path) -> list[str]:
    return ["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
            "-o", str(out), "--cache-dir", str(cache)]


@pytest.mark.parametrize("swap", ["dev-zero", "fifo", "outside-link", "dir-link-dotdot"])
def test_warm_cache_reads_tree_files_confined(tmp_path: Path, swap: str) -> None:
    out = _outside(tmp_path)
    tree = write_files(tmp_path / "tree", TINY_TREE)
    cache = tmp_path / "cache"
    first = run_kpolicy(_warm(tree, cache, tmp_path / "a.config"))
    assert first.returncode == 0, first.describe()
    init = tree / "init" / "Kconfig"
    init.unlink()
    if swap == "dev-zero":
        os.symlink("/dev/zero", init)
    elif swap == "fifo":
        os.mkfifo(init)
    elif swap == "outside-link":
        os.symlink(out / "Kconfig", init)
    else:
        (tree / "x").mkdir()
        os.symlink("/", tree / "x" / "d")
        os.symlink("../x/d/.." + str(out / "Kconfig"), init)
    run = run_kpolicy(_warm(tree, cache, tmp_path / "b.config"), forbidden=out, timeout=60)
    _assert_confined(run, tmp_path / "b.config")
    assert run.returncode == 2, run.describe()


@pytest.mark.parametrize("swap", ["glob-dir-link", "absent-osource-link"])
def test_warm_cache_relists_source_patterns_confined(tmp_path: Path, swap: str) -> None:
    """A cached model records its `source` globs and absent `osource` files; the warm check
    lists them again. A directory a glob walks, or the absent file, turned into a symlink out
    of the tree afterwards is refused there, as by the parse, never read."""
    out = _outside(tmp_path)
    (out / "sub").mkdir()
    (out / "sub" / "Kconfig").write_text(f"config {MARKER}_SUB\n\tdef_bool y\n")
    tree = write_files(tmp_path / "tree", {**TINY_TREE, "drivers/a/Kconfig": "config A\n\tbool\n"})
    (tree / "Kconfig").write_text(TINY_TREE["Kconfig"] + 'osource "drivers/*/Kconfig"\n'
                                  'osource "local/Kconfig"\n')
    cache = tmp_path / "cache"
    first = run_kpolicy(_warm(tree, cache, tmp_path / "a.config"))
    assert first.returncode == 0, first.describe()
    if swap == "glob-dir-link":
        os.symlink(out, tree / "drivers" / "b")  # drivers/b/sub/Kconfig is outside
        os.symlink(out / "sub", tree / "drivers" / "c")  # drivers/c/Kconfig is outside
    else:
        os.symlink(out / "sub", tree / "local")
    run = run_kpolicy(_warm(tree, cache, tmp_path / "b.config"), forbidden=out, timeout=60)
    _assert_confined(run, tmp_path / "b.config")
    # the cached model is not served: the parse it falls back to names the line
    assert run.returncode == 2, run.describe()
    assert "error: source leads outside the tree" in run.stderr, run.describe()


def test_a_forged_cache_entry_never_runs_code(tmp_path: Path) -> None:
    tree = write_files(tmp_path / "tree", TINY_TREE)
    cache = tmp_path / "cache"
    config = tmp_path / "in.config"
    config.write_text(TINY_CONFIG)
    first = run_kpolicy(_warm(tree, cache, tmp_path / "a.config"))
    assert first.returncode == 0, first.describe()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    import hashlib
    payload = pickle.dumps(Evil())
    entries = [p for p in cache.rglob("*.pickle")]
    assert entries
    for entry in entries:  # the old format (unkeyed SHA-256) and the current magic
        entry.write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
    run = run_kpolicy(_warm(tree, cache, tmp_path / "b.config"))
    assert run.returncode == 0, run.describe()
    assert not marker.exists()
    assert (tmp_path / "b.config").read_bytes() == (tmp_path / "a.config").read_bytes()


def test_a_cache_key_others_can_read_turns_the_cache_off(tmp_path: Path) -> None:
    from kpolicy.cache import Cache, key_path, secret_key

    cache = Cache(tmp_path / "c")
    cache.store("ns", "k", ("v",))
    assert cache.load("ns", "k") == ("v",)
    key = key_path(tmp_path / "c")
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    secret_key.cache_clear()
    assert cache.load("ns", "k") is None
    secret_key.cache_clear()


def test_info_never_reaches_stdout_and_cannot_forge_a_workflow_command(tmp_path: Path) -> None:
    tree = write_files(tmp_path / "tree", TINY_TREE)
    (tree / "Kconfig").write_text(
        "$(info,::error file=x::forged)\n$(info,\x1b[2J)\n" + TINY_TREE["Kconfig"])
    run = run_kpolicy(["lint", "--tree", str(tree), "--no-cache", "--format", "github"])
    assert b"forged" not in run.stdout and b"\x1b" not in run.stdout, run.describe()
    assert "\x1b" not in run.stderr
    assert all(not ln.startswith("::") for ln in run.stderr.splitlines()), run.describe()


def test_python_m_kpolicy_imports_nothing_from_the_current_directory(tmp_path: Path) -> None:
    tree = write_files(tmp_path / "tree", TINY_TREE)
    marker = tmp_path / "imported"
    for module in ("kconfigfunctions", "kpolicy_no_kconfig_functions", "lark", "tomllib",
                   "kconfiglib"):
        (tree / f"{module}.py").write_text(
            f"open({str(marker)!r}, 'w').close()\nfunctions = {{}}\n")
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for args in (["kconfig", "olddefconfig", "--tree", ".", "--arch", "x86_64", "-o",
                  str(tmp_path / "o.config"), "--no-cache"],
                 ["lint", "--tree", ".", "--no-cache"]):
        proc = subprocess.run([sys.executable, "-m", "kpolicy", *args], cwd=tree, env={
            **os.environ, **env}, capture_output=True, timeout=240)
        assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert not marker.exists()


# -- lint --base on malformed commits -------------------------------------------------------

def _git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], input=stdin, check=True,
                          capture_output=True).stdout.decode().strip()


def _malformed_commit(repo: Path, victim: Path) -> str:
    """A commit whose root tree lists `x` as a symlink climbing out through another link, and
    `x/` as a directory holding a file: a naive writer writes that file through the link."""
    _git(repo, "init", "-q")
    blob = _git(repo, "hash-object", "-w", "--stdin", stdin=b"pwned\n")
    up = _git(repo, "hash-object", "-w", "--stdin", stdin=b"/")
    link = _git(repo, "hash-object", "-w", "--stdin",
                stdin=("l/.." + str(victim)).encode())
    sub = _git(repo, "mktree", stdin=f"100644 blob {blob}\tplanted\n".encode())
    root = _git(repo, "mktree", "--missing", stdin=(
        f"120000 blob {up}\tl\n120000 blob {link}\tx\n040000 tree {sub}\tx\n").encode())
    return _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit-tree", root,
                "-m", "hostile")


def _victim_beside_malformed_commit(tmp_path: Path) -> tuple[Path, Path, str]:
    """A victim directory holding `keep`, and a repository whose commit (_malformed_commit)
    aims a write at it."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("keep\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    return victim, repo, _malformed_commit(repo, victim)


def test_base_copy_of_a_malformed_tree_writes_nothing_outside(tmp_path: Path) -> None:
    victim, repo, commit = _victim_beside_malformed_commit(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(Exception) as err:
        gitbase.sync_tree(repo, commit, dest)
    assert "both as a file and as a directory" in str(err.value)
    assert sorted(p.name for p in victim.iterdir()) == ["keep"]


def test_base_copy_follows_no_symlink_left_in_the_copy(tmp_path: Path) -> None:
    """An earlier copy holding `x` as a symlink out: the next sync replaces it, never writes
    through it, and never deletes through it."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "f").write_text("keep\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "x").mkdir()
    (repo / "x" / "f").write_text("new\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(victim, dest / "x")
    manifest = {"x/f": ("0" * 40, "100644", 5, 0), "x/gone": ("0" * 40, "100644", 5, 0)}
    os.symlink(victim, dest / "y")
    manifest["y/f"] = ("0" * 40, "100644", 5, 0)
    gitbase.sync_tree(repo, "HEAD", dest, manifest)
    assert (victim / "f").read_text() == "keep\n"
    assert (dest / "x" / "f").read_text() == "new\n" and not (dest / "x").is_symlink()


def test_base_copy_refuses_an_oversized_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             ) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "big").write_bytes(b"x" * 4096)
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    monkeypatch.setattr(gitbase, "MAX_BLOB", 1024)
    monkeypatch.setattr(gitbase, "_read_blobs", lambda *a: pytest.fail("blob was read"))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(Exception, match="blob too large"):
        gitbase.sync_tree(repo, "HEAD", dest)


def test_case_collisions_are_refused_only_on_case_insensitive_disks() -> None:
    entries = {"include/xt_DSCP.h": ("100644", "a"), "include/xt_dscp.h": ("100644", "b")}
    gitbase._check_collisions(entries, casefold=False)
    with pytest.raises(Exception, match="differing only in case"):
        gitbase._check_collisions(entries, casefold=True)


# -- bounded time on hostile input: exit 0/1, or exit 2 with one error line, never a traceback --

DOS_SECONDS = 30  # each case takes ~1-4 s; generous for a loaded CI machine


def _kconfig_case(extra: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        tree = write_files(tmp / "tree", TINY_TREE)
        (tree / "init" / "Kconfig").write_text(TINY_TREE["init/Kconfig"] + extra)
        return ["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
                "-o", str(tmp / "o.config"), "--no-cache"]
    return make


def _deep_if(n: int, command: str, cache: bool) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        tree = write_files(tmp / "tree", TINY_TREE)
        body = "if X86\n" * n + 'config DEEP\n\tbool "deep"\n' + "endif\n" * n
        (tree / "init" / "Kconfig").write_text(TINY_TREE["init/Kconfig"] + body)
        cache_args = ["--cache-dir", str(tmp / "cache")] if cache else ["--no-cache"]
        if command == "why":
            return ["kconfig", "why", "--tree", str(tree), "--arch", "x86_64", "DEEP",
                    *cache_args]
        return ["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
                "-o", str(tmp / "o.config"), *cache_args]
    return make


def _long_config_int(tmp: Path) -> list[str]:
    tree = write_files(tmp / "tree", TINY_TREE)
    (tree / "init" / "Kconfig").write_text(
        TINY_TREE["init/Kconfig"] + 'config N\n\tint "n"\n\trange 0 10\n\tdefault 1\n')
    config = tmp / "in.config"
    config.write_text(TINY_CONFIG + "CONFIG_N=" + "9" * 400_000 + "\n")
    return ["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
            "--config", str(config), "-o", str(tmp / "o.config"), "--no-cache"]


def _wrapper_c_file(tmp: Path) -> list[str]:
    tree = write_files(tmp / "tree", TINY_TREE)
    body = ("#define W(x) early_param(x, f)\n"
            + "".join(f"#define D{i} {i}\n" for i in range(100_000)) + 'W("a");\n' * 300_000)
    (tree / "init" / "big.c").write_text(body[: 8 * 1024 * 1024 - 16])
    (tree / "init" / "Makefile").write_text("obj-y += main.o big.o\n")
    return ["params", "--tree", str(tree), "--format", "json", "--no-cache"]


def _baseline_digits(tmp: Path) -> list[str]:
    tree = write_files(tmp / "tree", TINY_TREE)
    (tmp / "b.json").write_text('{"schema_version": ' + "1" * 5000 + "}")
    return ["lint", "--tree", str(tree), "--no-cache", "--baseline", str(tmp / "b.json")]


# many of both separators and no closing quote: a backtracking match tries every pair
SHELL_LINE = "{ " + '; } >/dev/null 2>&1 && echo "' * 800 + '" || echo "' * 800 + "x"

DOS_CASES: dict[str, Callable[[Path], list[str]]] = {
    "shell-emulation-33k-line": _kconfig_case(
        f"config SH\n\tdef_bool $(shell,{SHELL_LINE})\n"),
    "expr-huge-operands": _kconfig_case(
        "config E1\n\tint\n\tdefault $(shell,expr " + "9" * 5000 + " * 9)\n"
        "config E2\n\tint\n\tdefault $(shell,expr " + "9" * 400 + " / 1)\n"),
    "macro-calls-before-a-huge-line": _kconfig_case(
        "E :=\nX := " + "$(E)" * 10_000 + "a" * (10 * 1024 * 1024) + "\n"),
    "long-kconfig-int": _kconfig_case(
        "config L\n\tint \"l\"\n\trange 0 " + "9" * 400_000 + "\n\tdefault 1\n"),
    "long-config-int": _long_config_int,
    "deep-if-cached": _deep_if(300, "olddefconfig", cache=True),
    "deep-if-why": _deep_if(900, "why", cache=False),
    "wrapper-macros-8mb": _wrapper_c_file,
    "baseline-5000-digits": _baseline_digits,
}


@pytest.mark.parametrize("case", list(DOS_CASES))
def test_hostile_input_ends_in_bounded_time(tmp_path: Path, case: str) -> None:
    import time

    args = DOS_CASES[case](tmp_path)
    start = time.monotonic()
    run = run_kpolicy(args, timeout=DOS_SECONDS * 4)
    elapsed = time.monotonic() - start
    assert "Traceback" not in run.stderr, run.describe()
    assert run.returncode in (0, 1, 2), run.describe()
    if run.returncode == 2:
        assert len([ln for ln in run.stderr.splitlines() if "error:" in ln]) == 1, run.describe()
    assert elapsed < DOS_SECONDS, (elapsed, run.describe())


# -- the same escapes on a copy of the real Linux 7.2 tree -----------------------------------

@pytest.fixture(scope="module")
def tree_7_2_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hard-linked copy of the real 7.2 tree (files edited below are replaced, never written
    in place, so the original stays untouched)."""
    from conftest import real_tree

    src = real_tree("7.2")
    dest = tmp_path_factory.mktemp("linux-7.2-copy") / "tree"
    done = subprocess.run(["cp", "-al", str(src), str(dest)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot hard-link a copy of {src}: {done.stderr.decode()[-200:]}")
    return dest


def _replace(path: Path, text: str) -> None:
    path.unlink()
    path.write_text(text)


@pytest.mark.real
def test_escapes_on_a_copy_of_linux_7_2(tree_7_2_copy: Path, tmp_path: Path) -> None:
    tree = tree_7_2_copy
    out = _outside(tmp_path)
    kconfig = tree / "Kconfig"
    original = kconfig.read_text()
    (tree / "x").mkdir(exist_ok=True)
    if not (tree / "x" / "d").is_symlink():
        os.symlink("/", tree / "x" / "d")
    try:
        _replace(kconfig, original + f'source "x/d/../..{out}/.env"\n')
        cfg = tmp_path / "o.config"
        args = ["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
                "-o", str(cfg), "--cache-dir", str(tmp_path / "cache")]
        run = run_kpolicy(args, forbidden=out)
        _assert_confined(run, cfg)
        assert run.returncode == 2 and \
            f"Kconfig:{original.count(chr(10)) + 1}: error: source leads outside" in run.stderr, \
            run.describe()
        # warm cache, then init/Kconfig becomes a FIFO: refused at once, no hang
        _replace(kconfig, original)
        assert run_kpolicy(args).returncode == 0
        init = tree / "init" / "Kconfig"
        saved = init.read_bytes()
        init.unlink()
        os.mkfifo(init)
        try:
            run = run_kpolicy(args, forbidden=out, timeout=120)
            _assert_confined(run, cfg)
            assert run.returncode == 2 and "not a regular file" in run.stderr, run.describe()
        finally:
            init.unlink()
            init.write_bytes(saved)
    finally:
        _replace(kconfig, original)
        subprocess.run(["rm", "-rf", str(tree / "x")], check=True)


def test_base_copy_refuses_a_tree_listing_a_name_twice(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    one = _git(repo, "hash-object", "-w", "--stdin", stdin=b"one\n")
    two = _git(repo, "hash-object", "-w", "--stdin", stdin=b"two\n")
    root = _git(repo, "mktree", stdin=f"100644 blob {one}\tf\n100644 blob {two}\tf\n".encode())
    commit = _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit-tree", root,
                  "-m", "dup")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(Exception, match="twice"):
        gitbase.sync_tree(repo, commit, dest)


def test_lint_base_on_a_malformed_commit_is_one_error_under_the_audit_hook(
        tmp_path: Path) -> None:
    """The CLI path of item 3: `lint --base` naming the malformed commit, run with the audit hook
    watching the victim directory, ends in one error line, reads nothing there, writes nothing."""
    victim, repo, commit = _victim_beside_malformed_commit(tmp_path)
    write_tiny_tree(repo)
    run = run_kpolicy(["lint", "--tree", str(repo), "--base", commit],
                      cwd=tmp_path, forbidden=victim,
                      env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    _where, _line, message = error_location(run)
    assert "both as a file and as a directory" in message, run.describe()
    assert outside_reads(run) == [], run.describe()
    assert sorted(p.name for p in victim.iterdir()) == ["keep"]
