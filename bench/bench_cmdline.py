#!/usr/bin/env python3
"""Command lines per second through the batch paths, model already loaded.

1. kpolicy.cmdline's resolve_cmdlines_jsonl (the command line's fate only), in process, with
   the bundled 7.2 model and Debian's cloud-amd64 config when fetched, else a synthetic
   catalog of the same size.
2. `kpolicy resolve --config C --cmdlines FILE` (every feature resolved per line, the full
   resolve JSON, ~70 KB a line) on 100,000 distinct lines, with its default --jobs (the CPUs
   it may use) and with --jobs 1: the time of that run minus that of a 1-line run, so that
   start-up and loading the model are not counted. Wall time is what the target judges (lines
   a fleet gets answered per second); CPU time, workers included, is printed beside it.
Prints each rate and its ratio to the 20,000/s target.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 20_000
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kpolicy.cache import Cache  # noqa: E402
from kpolicy.cmdline import KernelParams, kernel_params, resolve_cmdlines_jsonl  # noqa: E402
from kpolicy.kconfig.model import Location  # noqa: E402
from kpolicy.params.model import Catalog, Registration  # noqa: E402

WORDS = ["console=ttyS0", "panic=-1", "quiet", "init_on_alloc=1", "init_on_free=0",
         "lockdown=integrity", "transparent_hugepage=madvise", "zswap.enabled=1", "ro",
         "root=/dev/vda1", "module.sig_enforce=1", "nokaslr", "FOO=bar", "mitigations=auto",
         "page_alloc.shuffle=1", 'x="a b"', "sysctl.kernel.panic=5", "loglevel=7", "foo.bar=1",
         "slab_nomerge", "randomize_kstack_offset=on", "vsyscall=none", "pti=on"]


def config_path() -> Path:
    trees = Path(os.environ.get("KPOLICY_TREES", Path.home() / ".cache" / "kpolicy-trees"))
    return trees / "configs" / "7.2" / "config.amd64_none_cloud-amd64"


def real_params() -> KernelParams | None:
    """The tables `kpolicy resolve --cmdlines` uses: bundled model x the cloud-amd64 config."""
    if not config_path().is_file():
        return None
    from kpolicy.resolve.api import kernel_params_for
    from kpolicy.resolve.inputs import choose_model, read_config

    config = read_config(config_path())
    model, _warnings = choose_model(config, None, Cache(None))
    return kernel_params_for(model, config)  # type: ignore[no-any-return]


def cli_rates(lines: list[str], jobs: int | None) -> tuple[float, float]:
    """`kpolicy resolve --cmdlines` (lines/s of wall time, lines/s of CPU time), start-up and
    loading the model excluded."""
    wall, cpu = [], []
    with tempfile.TemporaryDirectory(prefix="kpolicy-bench-") as tmp:
        for count in (1, len(lines)):
            batch = Path(tmp) / f"{count}.jsonl"
            batch.write_text("\n".join(lines[:count]) + "\n", encoding="utf-8")
            argv = [sys.executable, "-m", "kpolicy", "resolve", "--config", str(config_path()),
                    "--cmdlines", str(batch), *(["--jobs", str(jobs)] if jobs else [])]
            before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
            wall.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return (len(lines) - 1) / (wall[1] - wall[0]), (len(lines) - 1) / (cpu[1] - cpu[0])


def synthetic_params() -> KernelParams:
    regs = [Registration("early_param" if i % 3 == 0 else "__setup", f"p{i}", Location("x.c", i),
                         setup_has_equals=i % 2 == 0) for i in range(800)]
    regs += [Registration("module_param", f"m{i}.p", Location("y.c", i), param_type="bool")
             for i in range(7000)]
    return kernel_params(Catalog("7.2", (), tuple(regs), ()), {}, (7, 2, 0), "x86")


def main() -> int:
    t0 = time.perf_counter()
    kp = real_params()
    source = "bundled 7.2 model + cloud-amd64 config"
    if kp is None:
        kp, source = synthetic_params(), "synthetic catalog (real tree not fetched)"
    load = time.perf_counter() - t0
    rng = random.Random(1)
    distinct = [json.dumps(" ".join(rng.sample(WORDS, rng.randint(4, 14))))
                for _ in range(20_000)]
    fleet = [distinct[rng.randrange(500)] for _ in range(20_000)]  # 500 distinct lines, repeated
    print(f"model: {source}, loaded in {load:.2f} s")
    words = sum(len(json.loads(x).split()) for x in distinct) / len(distinct)
    for label, lines in (("all lines distinct", distinct), ("fleet: 500 distinct lines", fleet)):
        t1, c1 = time.perf_counter(), time.process_time()
        n = sum(1 for _ in resolve_cmdlines_jsonl(kp, lines))
        wall, cpu = time.perf_counter() - t1, time.process_time() - c1
        print(f"batch, {label}: {n} command lines of ~{words:.1f} words, JSON out")
        # On a shared machine wall time also counts other processes; CPU time is this one's work.
        for what, took in (("wall", wall), ("cpu", cpu)):
            rate = n / took
            print(f"  {what}: {took:.2f} s = {rate:,.0f} lines/s; target {TARGET:,}/s; "
                  f"ratio {rate / TARGET:.2f}x")
    if config_path().is_file():
        many = [json.dumps(" ".join(rng.sample(WORDS, rng.randint(4, 14))))
                for _ in range(100_000)]
        for jobs, label in ((None, f"default --jobs ({len(os.sched_getaffinity(0))} CPUs)"),
                            (1, "--jobs 1")):
            wall_rate, cpu_rate = cli_rates(many, jobs)
            print(f"kpolicy resolve --cmdlines, {label}, {len(many):,} distinct lines, all "
                  f"features per line: wall {wall_rate:,.0f} lines/s (ratio "
                  f"{wall_rate / TARGET:.2f}x of {TARGET:,}/s), cpu {cpu_rate:,.0f} lines/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
