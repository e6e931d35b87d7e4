#!/usr/bin/env python3
"""Warm `kpolicy resolve` (bundled model) from a shell, beside `make olddefconfig` on one config.

usage: bench/bench_resolve.py [-n RUNS] [--version 7.2]
With the tree fetched, also warm `resolve --tree` against the bundled path (target <= 1.2x).
Prints medians of wall time including interpreter start, the ratio to the 150 ms target, and
the ratio to `make ARCH=x86_64 olddefconfig` run in an O= directory of the real tree. On a
shared machine wall time also counts other processes: the CPU time (user+sys) of each child
is printed too, beside the interpreter's own start (`python -c pass`, `python -S -c pass`:
-S skips site, i.e. every .pth file of the environment). "warm" means a warm page cache, a
warm kpolicy cache (the decoded model) and, in the "bytecode" row, compiled bytecode: with
PYTHONDONTWRITEBYTECODE set (as in some containers) an editable install recompiles every
module on every run, which no installed wheel does.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 150.0
CMDLINE = "quiet init_on_free=1 lockdown=integrity transparent_hugepage=madvise -- single"


def trees_root() -> Path:
    return Path(os.environ.get("KPOLICY_TREES", Path.home() / ".cache" / "kpolicy-trees"))


def median_ms(argv: list[str], runs: int, **kw: object) -> float:
    """Median wall time of ARGV in ms (after one warming run)."""
    return measure(argv, runs, **kw)[0]


def measure(argv: list[str], runs: int, **kw: object) -> tuple[float, float]:
    """Median wall time and median CPU time (user+sys of the child) of ARGV, in ms."""
    subprocess.run(argv, check=True, capture_output=True, **kw)  # warm the page cache
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, **kw)
        walls.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(
            (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
        )
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=15)
    ap.add_argument("--version", default="7.2")
    args = ap.parse_args()
    config = trees_root() / "configs" / args.version / "config.amd64_none_cloud-amd64"
    tree = trees_root() / f"linux-{args.version}"
    if not config.is_file():
        print(f"bench_resolve: {config} is missing: run scripts/fetch-trees", file=sys.stderr)
        return 2
    kpolicy = [
        sys.executable,
        "-m",
        "kpolicy",
        "resolve",
        "--config",
        str(config),
        "--cmdline",
        CMDLINE,
        "--format",
        "json",
    ]
    probe = [
        sys.executable,
        "-c",
        "import sys; from kpolicy.cli import main; main(sys.argv[1:]); "
        "print('heavy:', sorted(m for m in ('lark', 'kconfiglib') if m in sys.modules), "
        "file=sys.stderr)",
        *kpolicy[3:],
    ]
    heavy = subprocess.run(probe, capture_output=True, text=True, check=True).stderr.strip()
    with tempfile.TemporaryDirectory(prefix="kpolicy-pyc-") as pyc:
        compiled = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        compiled["PYTHONPYCACHEPREFIX"] = pyc
        rows = [
            ("python -c pass (interpreter start)", [sys.executable, "-c", "pass"], None),
            ("python -S -c pass (no site/.pth)", [sys.executable, "-S", "-c", "pass"], None),
            ("kpolicy resolve (json), this environment", kpolicy, None),
            ("kpolicy resolve (json), warm bytecode", kpolicy, compiled),
        ]
        with_tree = (tree / "Makefile").is_file()
        if with_tree:  # the tree's model and the config's evaluation cached by the warming run
            rows.append(("kpolicy resolve --tree (json), warm bytecode",
                         [*kpolicy, "--tree", str(tree), "--arch", "x86_64"], compiled))
        results = {name: measure(argv, args.runs, env=env) for name, argv, env in rows}
    for name, (wall, cpu) in results.items():
        print(f"{name}: wall median {wall:.0f} ms, cpu (user+sys) median {cpu:.0f} ms")
    # the normal case: bytecode compiled once and reused, as from any installed wheel
    resolve_ms = results[rows[3][0]][0]
    print(
        f"kpolicy resolve (bundled model, json, bytecode cached): median {resolve_ms:.0f} ms, "
        f"{args.runs} runs; "
        f"target {TARGET_MS:.0f} ms -> ratio {resolve_ms / TARGET_MS:.2f} "
        f"({heavy.splitlines()[-1]})"
    )
    if with_tree:
        (tree_wall, tree_cpu), (wall, cpu) = results[rows[4][0]], results[rows[3][0]]
        print(f"warm --tree vs bundled model: wall {tree_wall:.0f} / {wall:.0f} ms = "
              f"{tree_wall / wall:.2f}x, cpu {tree_cpu:.0f} / {cpu:.0f} ms = "
              f"{tree_cpu / cpu:.2f}x (target <= 1.2x)")
    if not with_tree or shutil.which("make") is None:
        print("make olddefconfig: skipped (no tree or no make)")
        return 0
    with tempfile.TemporaryDirectory(prefix="kpolicy-bench-") as out:
        shutil.copy(config, Path(out) / ".config")
        make = ["make", "-s", "-C", str(tree), f"O={out}", "ARCH=x86_64", "olddefconfig"]
        subprocess.run(make, check=True, capture_output=True)  # builds scripts/kconfig/conf once
        runs = max(3, args.runs // 3)
        make_ms = median_ms(make, runs)
    print(
        f"make olddefconfig (same config, warm O= dir): median {make_ms:.0f} ms over {runs} runs; "
        f"resolve/make ratio {resolve_ms / make_ms:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
