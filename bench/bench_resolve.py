#!/usr/bin/env python3
"""Warm `kpolicy resolve` (bundled model) from a shell, beside kernel-hardening-checker and
`make olddefconfig` on one config.

usage: bench/bench_resolve.py [-n RUNS] [--version 7.2]
Issue #18's targets: warm resolve <= 0.8x kernel-hardening-checker's wall time on the same
config and command line (its Debian package, unpacked by `scripts/fetch-trees khc`; both
byte-compiled, as installed) and <= 25 MB peak RSS; with the tree fetched, warm `resolve
--tree` <= 1.2x the bundled path. Rows run interleaved (one run of each row per round), so
a load change on a shared machine hits every row alike; each prints medians of wall time
including interpreter start, of CPU time (user+sys of the child, which other processes
disturb less) and the child's peak RSS, beside the interpreter's own start (`python -c
pass`, `python -S -c pass`: -S skips site, i.e. every .pth file of the environment). "warm"
means a warm page cache, a warm kpolicy cache (the decoded model, the compiled dataclass
methods) and, in the "bytecode" rows, compiled bytecode: with PYTHONDONTWRITEBYTECODE set
(as in some containers) an editable install recompiles every module on every run, which no
installed wheel does. The last lines give the load average, since wall times on a shared
machine count other processes too.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

TARGET_MS = 150.0
KHC_RATIO = 0.8  # issue #18: <= 0.8x kernel-hardening-checker's wall time
TARGET_RSS_MB = 25.0
TREE_RATIO = 1.2
CMDLINE = "quiet init_on_free=1 lockdown=integrity transparent_hugepage=madvise -- single"


def trees_root() -> Path:
    return Path(os.environ.get("KPOLICY_TREES", Path.home() / ".cache" / "kpolicy-trees"))


def median_ms(argv: list[str], runs: int, **kw: Any) -> float:
    """Median wall time of ARGV in ms (after one warming run)."""
    return measure({"": (argv, kw.get("env"))}, runs)[""][0]


def run_once(argv: list[str], env: Optional[dict[str, str]]) -> tuple[float, float, float]:
    """Wall ms, CPU ms (user+sys) and peak RSS (MB) of one run of ARGV (exit 0 or 1)."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        raise SystemExit(f"{argv[:4]} failed with exit status {child.returncode}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, usage.ru_maxrss / 1024


def measure(rows: dict[str, tuple[list[str], Optional[dict[str, str]]]],
            runs: int) -> dict[str, tuple[float, float, float]]:
    """Median wall ms, median CPU ms and the largest peak RSS (MB) of each row's command; the
    rows run interleaved, each once first to warm the page cache and kpolicy's cache."""
    for argv, env in rows.values():
        run_once(argv, env)
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in rows}
    for _ in range(runs):
        for name, (argv, env) in rows.items():
            samples[name].append(run_once(argv, env))
    return {
        name: (statistics.median(s[0] for s in got), statistics.median(s[1] for s in got),
               max(s[2] for s in got))
        for name, got in samples.items()
    }


BUNDLED = "kpolicy resolve (json), warm bytecode"
KHC = "kernel-hardening-checker -c -l -m json, byte-compiled"
TREE = "kpolicy resolve --tree (json), warm bytecode"


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
    khc = trees_root() / "khc" / "usr"
    khc_lib = khc / "lib" / "python3" / "dist-packages"
    with tempfile.TemporaryDirectory(prefix="kpolicy-pyc-") as pyc:
        cmdline_file = Path(pyc) / "cmdline"
        cmdline_file.write_text(CMDLINE + "\n")
        kpolicy[kpolicy.index("--cmdline"):kpolicy.index("--cmdline") + 2] = [
            "--cmdline-file", str(cmdline_file)]  # as kernel-hardening-checker reads it
        compiled = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        compiled["PYTHONPYCACHEPREFIX"] = pyc
        rows: dict[str, tuple[list[str], Optional[dict[str, str]]]] = {
            "python -c pass (interpreter start)": ([sys.executable, "-c", "pass"], None),
            "python -S -c pass (no site/.pth)": ([sys.executable, "-S", "-c", "pass"], None),
            "kpolicy resolve (json), this environment": (kpolicy, None),
            BUNDLED: (kpolicy, compiled),
        }
        if (khc / "bin" / "kernel-hardening-checker").is_file():
            compileall.compile_dir(khc_lib, quiet=1)  # as Debian's py3compile leaves it
            rows[KHC] = ([sys.executable, str(khc / "bin" / "kernel-hardening-checker"), "-c",
                          str(config), "-l", str(cmdline_file), "-m", "json"],
                         {**os.environ, "PYTHONPATH": str(khc_lib)})
        with_tree = (tree / "Makefile").is_file()
        if with_tree:  # the tree's model and the config's evaluation cached by the warming run
            rows[TREE] = ([*kpolicy, "--tree", str(tree), "--arch", "x86_64"], compiled)
        results = measure(rows, args.runs)
    for name, (wall, cpu, rss) in results.items():
        print(f"{name}: wall median {wall:.0f} ms, cpu (user+sys) median {cpu:.0f} ms, "
              f"peak RSS {rss:.1f} MB")
    # the normal case: bytecode compiled once and reused, as from any installed wheel
    resolve_ms, resolve_cpu, resolve_rss = results[BUNDLED]
    print(
        f"kpolicy resolve (bundled model, json, bytecode cached): median {resolve_ms:.0f} ms, "
        f"{args.runs} runs; "
        f"target {TARGET_MS:.0f} ms -> ratio {resolve_ms / TARGET_MS:.2f}; peak RSS "
        f"{resolve_rss:.1f} MB (target <= {TARGET_RSS_MB:.0f}) ({heavy.splitlines()[-1]})"
    )
    if KHC in results:
        khc_wall, khc_cpu, khc_rss = results[KHC]
        print(f"vs kernel-hardening-checker: wall {resolve_ms:.0f} / {khc_wall:.0f} ms = "
              f"{resolve_ms / khc_wall:.2f}x, cpu {resolve_cpu:.0f} / {khc_cpu:.0f} ms = "
              f"{resolve_cpu / khc_cpu:.2f}x (target <= {KHC_RATIO}x); peak RSS "
              f"{resolve_rss:.1f} / {khc_rss:.1f} MB")
    if with_tree:
        tree_wall, tree_cpu, _rss = results[TREE]
        print(f"warm --tree vs bundled model: wall {tree_wall:.0f} / {resolve_ms:.0f} ms = "
              f"{tree_wall / resolve_ms:.2f}x, cpu {tree_cpu:.0f} / {resolve_cpu:.0f} ms = "
              f"{tree_cpu / resolve_cpu:.2f}x (target <= {TREE_RATIO}x)")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
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
