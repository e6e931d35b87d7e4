#!/usr/bin/env python3
"""Warm `kpolicy check --policy kspp` (bundled model) beside kernel-hardening-checker on the same
config, in the same run.

usage: bench/bench_check.py [-n RUNS] [--config FILE]
The issue's target: no slower than kernel-hardening-checker (Debian's package: installed by
`scripts/fetch-trees khc-install`, run with the system python3 it is packaged for; else
unpacked by `scripts/fetch-trees khc` and run with this interpreter). Rows: kpolicy with and
without the fix search (--no-fix), and with --tree (the tree's whole Kconfig; not the target's
configuration). Medians of wall time
including interpreter start, and CPU time (user+sys) of the child, which a shared machine
disturbs less.

Both sides run as installed: their modules are byte-compiled first (pip and Debian's
py3compile do that at install time), so PYTHONDONTWRITEBYTECODE=1 in the environment does not
make either side compile its source on every run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_resolve import trees_root

REPO = Path(__file__).resolve().parent.parent
INSTALLED_KHC = Path("/usr/bin/kernel-hardening-checker")  # `scripts/fetch-trees khc-install`


def measure(argv: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall and CPU ms of ARGV (exit status 1, failures found, is expected)."""
    import resource
    import statistics
    import time

    subprocess.run(argv, capture_output=True, env=env)  # warm caches
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env)
        walls.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{argv[:3]} failed: {done.stderr.decode()[-500:]}")
        cpus.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=7)
    ap.add_argument("--config", type=Path,
                    default=trees_root() / "configs" / "7.2" / "config.amd64_none_cloud-amd64")
    ap.add_argument("--tree", type=Path, default=trees_root() / "linux-7.2")
    args = ap.parse_args()
    khc = trees_root() / "khc" / "usr"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    khc_env = {**os.environ, "PYTHONPATH": str(khc / "lib" / "python3" / "dist-packages")}
    khc_argv = [sys.executable, str(khc / "bin" / "kernel-hardening-checker")]
    if INSTALLED_KHC.is_file():  # Debian's package as installed (byte-compiled by py3compile)
        # nor PYTHONPYCACHEPREFIX: it would hide the bytecode py3compile left beside the
        # package (and the system interpreter's own), measured at ~3x its time
        khc_env = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONPATH", "PYTHONPYCACHEPREFIX")}
        khc_argv = [str(INSTALLED_KHC)]
    kp = [sys.executable, "-m", "kpolicy", "check", "--policy", "kspp", "--config",
          str(args.config), "--format", "json"]
    rows = [
        ("kernel-hardening-checker -m json", [*khc_argv, "-c", str(args.config), "-m", "json"],
         khc_env),
        ("kpolicy check --no-fix", [*kp, "--no-fix"], env),
        ("kpolicy check (fixes)", kp, env),
        ("kpolicy check --tree --no-fix", [*kp, "--tree", str(args.tree), "--no-fix"], env),
    ]
    import compileall

    for where in (REPO / "kpolicy", khc / "lib" / "python3" / "dist-packages"):
        if where.is_dir():
            compileall.compile_dir(where, quiet=1)
    results = {}
    for name, argv, e in rows:
        results[name] = measure(argv, args.runs, e)
    base_wall, base_cpu = results[rows[0][0]]
    print(f"{'':34}{'wall ms':>10}{'cpu ms':>10}{'wall x khc':>12}{'cpu x khc':>11}")
    for name, (wall, cpu) in results.items():
        print(f"{name:34}{wall:10.0f}{cpu:10.0f}{wall / base_wall:12.2f}{cpu / base_cpu:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
