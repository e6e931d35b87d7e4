#!/usr/bin/env python3
"""A long fuzzing campaign over kpolicy's parsers; writes bench/fuzz-results.md.

Runs the targets of tests/security/security_fuzz_targets.py (the same ones the test suite runs
~200 examples of) for --examples each (default 100,000), in this one process, under a 2 GB
address-space limit and a per-example timeout. Unlike the in-suite tests it does not stop at the
first failure: every exception other than KpolicyError is recorded by where it was raised, with
the first input that raised it, and the campaign goes on.

    nice python3 bench/fuzz_campaign.py                      # everything, 100,000 each
    python3 bench/fuzz_campaign.py --examples 2000 --target dotconfig --target rules
    python3 bench/fuzz_campaign.py --max-seconds 1800        # cap each target's wall time
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "security"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from security_fuzz_targets import TARGETS, trees_root  # noqa: E402

from kpolicy.errors import KpolicyError  # noqa: E402

EXAMPLE_TIMEOUT = 30  # seconds; a slower example counts as a failure ("timeout")


class _Timeout(Exception):
    pass


class _OutOfTime(Exception):
    """Raised from inside a target to end its run once --max-seconds are spent."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise _Timeout


@dataclass
class Outcome:
    examples: int = 0
    kpolicy_errors: int = 0
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)  # where -> (count, input)
    seconds: float = 0.0
    stopped_early: bool = False


def _where(exc: BaseException) -> str:
    """Exception type and the innermost kpolicy frame (or the innermost frame) it came from."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/kpolicy/" in f.filename] or frames
    top = ours[-1] if ours else None
    place = f"{Path(top.filename).name}:{top.lineno} ({top.name})" if top else "?"
    return f"{type(exc).__name__} at {place}"


def run_target(name: str, examples: int, max_seconds: float, tree: Path,
               seed_value: int = 20260) -> Outcome:
    target = TARGETS[name]
    out = Outcome()
    start = time.monotonic()

    @seed(seed_value)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(target.strategy(tree))
    def campaign(case: Any) -> None:
        if time.monotonic() - start > max_seconds:
            out.stopped_early = True
            raise _OutOfTime  # generation only: Hypothesis stops without shrinking
        out.examples += 1
        signal.alarm(EXAMPLE_TIMEOUT)
        try:
            target.run(case)
        except KpolicyError:
            out.kpolicy_errors += 1
        except Exception as exc:  # the point: record every other exception and go on
            where = "timeout" if isinstance(exc, _Timeout) else _where(exc)
            count, first = out.failures.get(where, (0, repr(case)[:300]))
            out.failures[where] = (count + 1, first)
        finally:
            signal.alarm(0)

    with contextlib.suppress(_OutOfTime):
        campaign()
    out.seconds = time.monotonic() - start
    return out


def report(results: dict[str, Outcome], examples: int, max_seconds: float,
           seed_value: int) -> str:
    lines = [
        "# Fuzzing campaign: last recorded result",
        "",
        "Written by `bench/fuzz_campaign.py` (targets in tests/security/security_fuzz_targets.py).",
        "Each example is hostile input fed to one parser; the property is: a result or a",
        "KpolicyError, nothing else. Failures are grouped by exception type and the innermost",
        "kpolicy frame, with the first input that raised it.",
        "",
        f"Requested: {examples} examples per target, seed {seed_value}"
        + (f", at most {max_seconds:.0f} s each." if max_seconds < float("inf") else "."),
        "",
        "| target | examples run | KpolicyError | other failures | wall time (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, o in results.items():
        note = " (time cap reached)" if o.stopped_early else ""
        total = sum(c for c, _ in o.failures.values())
        lines.append(f"| {name}{note} | {o.examples} | {o.kpolicy_errors} | {total} | "
                     f"{o.seconds:.0f} |")
    lines.append("")
    failing = {n: o for n, o in results.items() if o.failures}
    if not failing:
        lines.append("No failures.")
    for name, o in failing.items():
        lines.append(f"## {name}")
        lines.append("")
        for where, (count, first) in sorted(o.failures.items()):
            lines.append(f"- {where}: {count} examples; first input: `{first}`")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--target", action="append", choices=sorted(TARGETS),
                        help="run only this target (repeatable; default: all)")
    parser.add_argument("--max-seconds", type=float, default=float("inf"),
                        help="stop a target after this much wall time")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "fuzz-results.md")
    parser.add_argument("--tree", type=Path, default=trees_root() / "linux-7.2",
                        help="real tree whose files are mutated (default: the fetched 7.2)")
    parser.add_argument("--seed", type=int, default=20260,
                        help="Hypothesis seed: campaigns with other seeds draw other examples "
                        "(a campaign split across cores runs one seed per process)")
    args = parser.parse_args()
    limit = 2 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    results: dict[str, Outcome] = {}
    for name in args.target or list(TARGETS):
        if TARGETS[name].needs_real_tree and not (args.tree / "Makefile").is_file():
            print(f"{name}: skipped, no tree at {args.tree} (run scripts/fetch-trees)")
            continue
        results[name] = run_target(name, args.examples, args.max_seconds, args.tree, args.seed)
        o = results[name]
        print(f"{name}: {o.examples} examples, {o.kpolicy_errors} KpolicyError, "
              f"{sum(c for c, _ in o.failures.values())} failures, {o.seconds:.0f} s", flush=True)
        args.output.write_text(report(results, args.examples, args.max_seconds, args.seed))
    return 1 if any(o.failures for o in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
