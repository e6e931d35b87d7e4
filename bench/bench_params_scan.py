#!/usr/bin/env python3
"""Whole-tree C registration scan: cold (no cache) and warm (cache hit), on the newest tree.

Prints wall and CPU seconds and the cold wall time's ratio to the 20 s target. CPU time is
what the scan costs; wall time also shows how busy the machine is.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 20.0
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kpolicy.cache import Cache  # noqa: E402
from kpolicy.params.registrations import scan_registrations  # noqa: E402
from kpolicy.tree import open_tree  # noqa: E402


def newest_tree() -> Path:
    root = Path(os.environ.get("KPOLICY_TREES", Path.home() / ".cache" / "kpolicy-trees"))
    trees = [p for p in root.glob("linux-*") if (p / "Makefile").is_file()]
    if not trees:
        sys.exit("no kernel tree: run scripts/fetch-trees, or pass a tree")
    return max(trees, key=lambda p: tuple(int(x) for x in re.findall(r"\d+", p.name)))


def timed(label: str, fn: object) -> float:
    wall, cpu = time.perf_counter(), time.process_time()
    regs, keys = fn()  # type: ignore[operator]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<6} wall {wall:6.2f} s  cpu {cpu:6.2f} s  "
          f"({len(regs)} registrations, {len(keys)} static keys)")
    return wall


def main() -> int:
    tree = open_tree(sys.argv[1] if len(sys.argv) > 1 else newest_tree())
    print(f"Linux {tree.version}: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Cache(Path(tmp))
        cold = timed("cold", lambda: scan_registrations(tree, cache))
        warm = timed("warm", lambda: scan_registrations(tree, cache))
    print(f"cold / target ({TARGET_SECONDS:.0f} s): {cold / TARGET_SECONDS:.2f}")
    print(f"warm / cold: {warm / cold:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
