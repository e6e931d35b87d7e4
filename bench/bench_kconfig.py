#!/usr/bin/env python3
"""Kconfig engine speed and memory against the kernel's own `make olddefconfig`.

Usage: bench/bench_kconfig.py [--tree DIR] [--arch ARCH] [--config FILE] [--runs N]

Every measured run is a fresh process (wall time and peak RSS from wait4): kpolicy cold (empty
cache: parse + evaluate + store), kpolicy warm (cache filled), and make olddefconfig on the same
input in an O= directory (first run includes building scripts/kconfig/conf; later runs reuse
it). Targets: cold / make <= 1.0, warm / cold <= 0.15.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TREES = Path(os.environ.get("KPOLICY_TREES", Path.home() / ".cache" / "kpolicy-trees"))

KPOLICY_RUN = """
import sys
from pathlib import Path
from kpolicy.cache import Cache
from kpolicy.kconfig import load_model, write_dotconfig
from kpolicy.tree import open_tree
tree, arch, config, cache, out = sys.argv[1:6]
model = load_model(open_tree(tree), arch, config=Path(config), cache=Cache(Path(cache)))
write_dotconfig(model, Path(out))
"""


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one run of CMD in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    return elapsed, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--tree", type=Path, default=TREES / "linux-7.2")
    parser.add_argument("--arch", default="x86_64")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    config = args.config or args.tree / "arch" / "x86" / "configs" / "x86_64_defconfig"
    if not (args.tree / "Makefile").is_file() or not config.is_file():
        sys.exit(f"missing tree or config: {args.tree}, {config} (run scripts/fetch-trees)")

    with tempfile.TemporaryDirectory(prefix="bench-kconfig-") as tmp:
        work = Path(tmp)
        objdir = work / "O"
        objdir.mkdir()
        make = ["make", "-s", "-C", str(args.tree), f"O={objdir}", f"ARCH={args.arch}",
                "olddefconfig"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KCONFIG_")}

        def make_run() -> tuple[float, float]:
            shutil.copy(config, objdir / ".config")
            return measure(make, env)

        def kpolicy_run(cache: Path) -> tuple[float, float]:
            return measure([sys.executable, "-c", KPOLICY_RUN, str(args.tree), args.arch,
                            str(config), str(cache), str(work / "out.config")])

        make_first = make_run()
        make_runs = [make_run() for _ in range(args.runs)]
        cold_runs = []
        for i in range(args.runs):
            cold_runs.append(kpolicy_run(work / f"cache-{i}"))
        warm_runs = [kpolicy_run(work / "cache-0") for _ in range(args.runs)]

    def med(runs: list[tuple[float, float]], k: int) -> float:
        return statistics.median(r[k] for r in runs)

    make_t, cold_t, warm_t = med(make_runs, 0), med(cold_runs, 0), med(warm_runs, 0)
    rows = [
        ("make olddefconfig (first, builds conf)", make_first[0], make_first[1]),
        ("make olddefconfig (conf built)", make_t, med(make_runs, 1)),
        ("kpolicy cold (parse + evaluate + cache)", cold_t, med(cold_runs, 1)),
        ("kpolicy warm (cached)", warm_t, med(warm_runs, 1)),
    ]
    print(f"Kconfig engine: {args.tree.name} ARCH={args.arch} from {config.name}, "
          f"median of {args.runs}, {os.cpu_count()} CPUs")
    print(f"| {'run':<42} | {'wall s':>7} | {'peak RSS MiB':>12} |")
    print(f"|{'-' * 44}|{'-' * 9}|{'-' * 14}|")
    for name, secs, rss in rows:
        print(f"| {name:<42} | {secs:7.2f} | {rss:12.0f} |")
    print(f"cold / make (conf built) = {cold_t / make_t:.2f}  (target <= 1.0); "
          f"cold / make (first) = {cold_t / make_first[0]:.2f}")
    print(f"warm / cold = {warm_t / cold_t:.3f}  (target <= 0.15)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
