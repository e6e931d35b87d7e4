"""The start-up budget: which modules `kpolicy resolve` (bundled model) and `kpolicy check`
import is pinned here, so a new import on the hot path is a reviewed change (each import costs
every run its load time; see the README speed table)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The probe runs the command in a fresh interpreter, then lists what it imported: kpolicy's own
# modules, and the top-level names of every non-standard-library package it loaded (what the
# environment's .pth files load at interpreter start is not kpolicy's and is left out).
PROBE = (
    "import sys, json; start = set(sys.modules); "
    "from kpolicy.cli import main; code = main(sys.argv[1:]); "
    "mods = sorted(m for m in sys.modules if m.startswith('kpolicy.') or m == 'kpolicy'); "
    "other = sorted({m.split('.')[0] for m in set(sys.modules) - start} "
    "- set(sys.stdlib_module_names) "
    "- {'kpolicy', '__main__'} - set(sys.builtin_module_names)); "
    "parsers = sorted(m for m in ('tomllib', 'tomli', 'lark', 'kconfiglib') if m in sys.modules); "
    "sys.stderr.write('\\nIMPORTS ' + json.dumps(mods + other) + '\\n'); "
    "sys.stderr.write('PARSERS ' + json.dumps(parsers) + '\\n'); sys.exit(code)"
)

COMMON = (
    "kpolicy", "kpolicy.cache", "kpolicy.cli", "kpolicy.cliargs", "kpolicy.cmdline",
    "kpolicy.codecache",
    "kpolicy.cmdline.bootconfig", "kpolicy.cmdline.builtin", "kpolicy.cmdline.lsm",
    "kpolicy.cmdline.output", "kpolicy.cmdline.passes", "kpolicy.cmdline.tokens",
    "kpolicy.errors", "kpolicy.families", "kpolicy.families.model", "kpolicy.kconfig",
    "kpolicy.longlived",
    "kpolicy.kconfig.dotconfig", "kpolicy.kconfig.evaluate", "kpolicy.kconfig.model",
    "kpolicy.kernel", "kpolicy.params", "kpolicy.params.model", "kpolicy.params.semantics",
    "kpolicy.params.valueparsers", "kpolicy.resolve", "kpolicy.resolve.api",
    "kpolicy.resolve.bundle", "kpolicy.resolve.codec", "kpolicy.resolve.engine",
    "kpolicy.resolve.features", "kpolicy.resolve.inputs", "kpolicy.resolve.lazy",
    "kpolicy.resolve.lsm",
    "kpolicy.resolve.model", "kpolicy.resources", "kpolicy.sysctl", "kpolicy.sysctl.boot",
    "kpolicy.sysctl.spec", "kpolicy.sysctl.write",
    "kpolicy.textio",
)

PINNED = {
    # the sysctl.d reader and the /proc/sys comparison only with --sysctl / on the running system
    "resolve": sorted({*COMMON, "kpolicy.resolve.batch", "kpolicy.resolve.command",
                       "kpolicy.resolve.output"}),
    "check": sorted({*COMMON, "kpolicy.policy", "kpolicy.policy.check",
                     "kpolicy.policy.command", "kpolicy.policy.evaluate", "kpolicy.policy.fix",
                     "kpolicy.policy.output", "kpolicy.policy.schema",
                     "kpolicy.sysctl.sysctld"}),
}

CONFIG = (
    "# Linux/x86 7.2.13 Kernel Configuration\n"
    "CONFIG_64BIT=y\nCONFIG_X86_64=y\nCONFIG_SECURITY=y\nCONFIG_RANDOMIZE_BASE=y\n"
)

ARGV = {
    "resolve": ["resolve", "--config", "{config}", "--cmdline", "init_on_free=1",
                "--format", "json"],
    "check": ["check", "--policy", "kspp", "--config", "{config}", "--format", "json"],
}


def imported(command: str, config: Path, cache: Path, what: str = "IMPORTS") -> list[str]:
    """The modules `kpolicy COMMAND` imported (WHAT "IMPORTS"), or the parsers among them
    ("PARSERS": tomllib, tomli, lark, kconfiglib), with CACHE as its cache."""
    argv = [a.replace("{config}", str(config)) for a in ARGV[command]]
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120,
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
    )
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith(f"{what} ")]
    assert lines, f"`kpolicy {command}` failed (exit {run.returncode}): {run.stderr[-2000:]}"
    result: list[str] = json.loads(lines[-1][len(what) + 1:])
    return result


@pytest.mark.parametrize("command", sorted(PINNED))
def test_hot_path_imports_are_pinned(command: str, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(CONFIG)
    got = imported(command, config, tmp_path / "cache")
    added = sorted(set(got) - set(PINNED[command]))
    gone = sorted(set(PINNED[command]) - set(got))
    assert not added and not gone, (
        f"`kpolicy {command}` (bundled model) now imports {added or 'nothing new'} and no longer "
        f"imports {gone or 'nothing dropped'}. Every import costs each run its start-up time: "
        f"import it lazily inside the function that needs it, or, if it belongs on the hot path, "
        f"update PINNED['{command}'] in {Path(__file__).name} (and re-run bench/bench_resolve.py "
        f"/ bench/bench_check.py to show the cost)."
    )


@pytest.mark.parametrize("command", sorted(PINNED))
def test_a_warm_run_parses_nothing(command: str, tmp_path: Path) -> None:
    """Once the cache is warm, every table the command reads (rules, LSMs, sysctls, policies,
    the model) comes from the cache: no TOML, grammar or Kconfig parser is even imported."""
    config = tmp_path / "config"
    config.write_text(CONFIG)
    assert imported(command, config, tmp_path / "cache", "PARSERS"), "the cold run parsed nothing"
    assert imported(command, config, tmp_path / "cache", "PARSERS") == []
