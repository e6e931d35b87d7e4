#!/usr/bin/env python3
"""Time parsing a real kernel-parameters.txt against the 0.5 s target.

Usage: bench/bench_params_docs.py [TREE]   (default: $KPOLICY_TREES/linux-7.2)
Prints the cold time (grammars compiled in this process) and the best warm time of several runs,
each with its ratio to the target (below 1.0 meets it); CPU time too, as the machine is shared.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from kpolicy.params.docs import DOC_FILE, parse_kernel_parameters
from kpolicy.textio import read_text

TARGET_SECONDS = 0.5
RUNS = 5


def main() -> int:
    default = Path(os.environ.get("KPOLICY_TREES", Path.home() / ".cache" / "kpolicy-trees"))
    tree = Path(sys.argv[1]) if len(sys.argv) > 1 else default / "linux-7.2"
    text = read_text(tree / DOC_FILE)
    start, cpu = time.perf_counter(), time.process_time()
    entries = parse_kernel_parameters(text)
    cold, cold_cpu = time.perf_counter() - start, time.process_time() - cpu
    warm = []
    for _ in range(RUNS):
        start, cpu = time.perf_counter(), time.process_time()
        parse_kernel_parameters(text)
        warm.append((time.perf_counter() - start, time.process_time() - cpu))
    best, best_cpu = min(warm)
    print(f"{tree / DOC_FILE}: {len(entries)} entries, {text.count(chr(10))} lines")
    for label, seconds, cpu in (("cold", cold, cold_cpu),
                                (f"warm (best of {RUNS})", best, best_cpu)):
        print(f"{label} parse {seconds:.3f} s wall ({cpu:.3f} s CPU), ratio to the "
              f"{TARGET_SECONDS} s target: {seconds / TARGET_SECONDS:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
