#!/usr/bin/env python3
"""Whole-tree C registration scan: cold (no cache) in one process and in one per CPU (as
`kpolicy lint` runs it), and warm (cache hit), on the newest tree.

Prints wall and CPU seconds (workers included) and the cold wall times' ratio to the 20 s target.
CPU time is what the scan costs; wall time also shows how busy the machine is.
"""

from __future__ import annotations

import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 20.0
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kpolicy.cache import Cache  # noqa: E402
from kpolicy.params.scan import scan_all  # noqa: E402
from kpolicy.tree import open_tree  # noqa: E402


def newest_tree() -> Path:
    root = Path(os.environ.get("KPOLICY_TREES", Path.home() / ".cache" / "kpolicy-trees"))
    trees = [p for p in root.glob("linux-*") if (p / "Makefile").is_file()]
    if not trees:
        sys.exit("no kernel tree: run scripts/fetch-trees, or pass a tree")
    return max(trees, key=lambda p: tuple(int(x) for x in re.findall(r"\d+", p.name)))


def cpu_seconds() -> float:
    own, workers = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                        resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def timed(label: str, fn: object) -> float:
    wall, cpu = time.perf_counter(), cpu_seconds()
    regs, keys, _reads = fn()  # type: ignore[operator]
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    print(f"{label:<18} wall {wall:6.2f} s  cpu {cpu:6.2f} s  "
          f"({len(regs)} registrations, {len(keys)} static keys)")
    return wall


def main() -> int:
    tree = open_tree(sys.argv[1] if len(sys.argv) > 1 else newest_tree())
    print(f"Linux {tree.version}: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    jobs = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        cache = Cache(Path(tmp))
        cold = timed("cold", lambda: scan_all(tree, cache))
        warm = timed("warm", lambda: scan_all(tree, cache))
        cold_jobs = timed(f"cold, {jobs} processes", lambda: scan_all(tree, None, jobs))
    print(f"cold / target ({TARGET_SECONDS:.0f} s): {cold / TARGET_SECONDS:.2f}; "
          f"with {jobs} processes {cold_jobs / TARGET_SECONDS:.2f}")
    print(f"warm / cold: {warm / cold:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
