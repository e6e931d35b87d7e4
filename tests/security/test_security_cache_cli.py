"""The cache at the CLI level: kpolicy processes racing on one --cache-dir all succeed with the
same output; a damaged, truncated or replaced entry is rebuilt transparently (same output, and
the entry is whole again afterwards); an unusable cache directory is not an error."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from security_harness import TINY_CONFIG, run_kpolicy, write_tiny_tree

from kpolicy.cache import MAGIC, unseal

PARALLEL = 4


def _commands(tree: Path, config: Path, out: Path) -> dict[str, tuple[str, list[str], Path]]:
    """name -> (module, argv without --cache-dir, file the output goes to or the stdout file)."""
    return {
        "params": ("kpolicy.params.command",
                   ["params", "--tree", str(tree), "--format", "json"], out / "params.json"),
        "families": ("kpolicy.families.command",
                     ["families", "--tree", str(tree), "--format", "json"], out / "families.json"),
        "olddefconfig": ("kpolicy.kconfig.command",
                         ["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
                          "--config", str(config), "-o", str(out / "olddef.config")],
                         out / "olddef.config"),
    }


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    tree = write_tiny_tree(tmp_path / "tree")
    config = tmp_path / "in.config"
    config.write_text(TINY_CONFIG)
    return tree, config


def _race(argvs: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess[bytes]]:
    """Start every ARGV at once and wait for all."""
    procs = [subprocess.Popen([sys.executable, "-m", "kpolicy", *a], cwd=cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for a in argvs]
    done = []
    for p, a in zip(procs, argvs):
        out, err = p.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(a, p.returncode, out, err))
    return done


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file())


def _whole(entry: Path, cache: Path) -> bool:
    """Whether ENTRY of the cache at CACHE carries a valid HMAC under the cache's key."""
    return unseal(cache, entry.read_bytes()) is not None


@pytest.mark.parametrize("name", ["params", "families", "olddefconfig"])
def test_concurrent_runs_share_a_cache_without_harm(
    tiny: tuple[Path, Path], tmp_path: Path, name: str
) -> None:
    tree, config = tiny
    module, argv, _target = _commands(tree, config, tmp_path)[name]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} has not landed")
    cache = tmp_path / "cache"
    argvs = []
    for i in range(PARALLEL):
        a = [*argv, "--cache-dir", str(cache)]
        if "-o" in a:  # each racer writes its own output file
            a[a.index("-o") + 1] = str(tmp_path / f"out{i}")
        argvs.append(a)
    outputs = []
    for rnd in range(2):  # round 0 races to build, round 1 races to read
        for p in _race(argvs, tmp_path):
            assert p.returncode in (0, 1), (rnd, p.args, p.stderr.decode())
            assert b"Traceback" not in p.stderr
            outputs.append(p.stdout if "-o" not in p.args
                           else Path(p.args[p.args.index("-o") + 1]).read_bytes())
    assert len(set(outputs)) == 1, "racing runs disagreed"
    assert _entries(cache), "nothing was cached"
    assert all(_whole(e, cache) for e in _entries(cache))
    assert not [p for p in cache.rglob("*.tmp")], "a temporary file was left behind"
    fresh = run_kpolicy([*argvs[0][:-2], "--no-cache"], cwd=tmp_path)
    expected = fresh.stdout if "-o" not in argv else Path(argvs[0][argvs[0].index("-o") + 1])\
        .read_bytes()
    assert outputs[0] == expected


_STALE = b"\x80\x04cno_such_module\nThing\n)\x81."


def _flip(entry: Path) -> None:
    data = bytearray(entry.read_bytes())
    for i in range(len(MAGIC) + 40, len(data), max(1, len(data) // 16)):
        data[i] ^= 0xFF
    entry.write_bytes(bytes(data))


DAMAGE = {
    "flipped-bytes": _flip,
    "truncated": lambda e: e.write_bytes(e.read_bytes()[: len(e.read_bytes()) // 2]),
    "empty": lambda e: e.write_bytes(b""),
    # whole, but naming a class that no longer exists (an entry from another kpolicy version)
    "stale-class": lambda e: e.write_bytes(MAGIC + hashlib.sha256(_STALE).digest() + _STALE),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("name", ["params", "families", "olddefconfig"])
def test_damaged_cache_entries_are_rebuilt(
    tiny: tuple[Path, Path], tmp_path: Path, name: str, damage: str
) -> None:
    tree, config = tiny
    module, argv, target = _commands(tree, config, tmp_path)[name]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} has not landed")
    cache = tmp_path / "cache"
    args = [*argv, "--cache-dir", str(cache)]

    def output() -> bytes:
        run = run_kpolicy(args, cwd=tmp_path)
        assert run.returncode in (0, 1), run.describe()
        assert "Traceback" not in run.stderr, run.describe()
        return target.read_bytes() if "-o" in args else run.stdout

    clean = output()
    entries = _entries(cache)
    assert entries, "nothing was cached"
    for entry in entries:
        DAMAGE[damage](entry)
    assert output() == clean
    # A damaged entry that the run needed is whole again (one it never read may stay damaged,
    # e.g. a model entry when the evaluated one was enough: then the rerun is also clean).
    assert output() == clean
    rebuilt = [e for e in _entries(cache) if _whole(e, cache)]
    assert rebuilt, "no entry was rebuilt"


def test_unusable_cache_directory_is_not_an_error(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    tree, config = tiny
    module, argv, target = _commands(tree, config, tmp_path)["olddefconfig"]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} has not landed")
    reference = run_kpolicy([*argv, "--no-cache"], cwd=tmp_path)
    assert reference.returncode == 0, reference.describe()
    expected = target.read_bytes()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be\n")
    for cache_dir in (blocker, blocker / "below-a-file"):
        os.remove(target)
        run = run_kpolicy([*argv, "--cache-dir", str(cache_dir)], cwd=tmp_path)
        assert run.returncode == 0, run.describe()
        assert target.read_bytes() == expected
