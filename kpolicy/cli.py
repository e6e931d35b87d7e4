"""The `kpolicy` command: parses arguments and hands them to one subcommand; nothing else.

Each subcommand lives beside the code it drives, as a pair of functions
`configure_<name>(parser)` and `run_<name>(args) -> int` in the module named below (the arguments
several commands share are in kpolicy.cliargs). Only the
module of the command being run is imported, so `kpolicy resolve` does not pay for lark or
kconfiglib when a cached model answers it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional

from kpolicy import __version__
from kpolicy.errors import KpolicyError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "kconfig": ("kpolicy.kconfig.command", "evaluate a tree's Kconfig as the kernel does"),
    "params": ("kpolicy.params.command", "list boot parameters: docs, registrations, cross-checks"),
    "families": ("kpolicy.families.command",
                 "map feature families: capability, option, default, parameter"),
    "lint": ("kpolicy.lint.command", "check feature families against the pattern rules"),
    "rules": ("kpolicy.lint.command", "list the lint rules"),
    "rule": ("kpolicy.lint.command", "explain one lint rule"),
    "resolve": ("kpolicy.resolve.command", "what a .config plus command line enables, and why"),
    "diff": ("kpolicy.resolve.command", "compare the effective policy of two configs"),
    "report": ("kpolicy.resolve.command", "a policy matrix of several configs"),
    "model": ("kpolicy.resolve.command", "build a compact model of a tree for resolve"),
    "check": ("kpolicy.policy.command",
              "check a config and command line against a hardening policy"),
}


def _command_functions(
    name: str,
) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    module = importlib.import_module(COMMANDS[name][0])
    py_name = name.replace("-", "_")
    return getattr(module, f"configure_{py_name}"), getattr(module, f"run_{py_name}")


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The argument parser; only subcommand ONLY is configured (and imported), if any."""
    parser = argparse.ArgumentParser(
        prog="kpolicy",
        description="Kconfig and boot-parameter policy linter for the Linux kernel.",
    )
    parser.add_argument("--version", action="version", version=f"kpolicy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # With the command known, the others' parsers are not made: each costs argparse's message
    # lookups (gettext), a tenth of a warm `kpolicy check`.
    for name, (_module, help_text) in COMMANDS.items():
        if only is not None and name != only:
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == only:
            configure, _run = _command_functions(name)
            configure(p)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run kpolicy; returns 0 clean, 1 findings, 2 errors."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    only = args_list[0] if args_list and args_list[0] in COMMANDS else None
    code_cache = _code_cache_root(args_list)
    if code_cache is not None:  # before any command module defines its dataclasses
        from kpolicy import codecache

        codecache.install(code_cache)
    try:
        return _parse_and_run(args_list, only)
    finally:
        if code_cache is not None:
            codecache.save()


def _code_cache_root(args: list[str]) -> Optional[Path]:
    """The cache directory the arguments name (--cache-dir, else the default), or None with
    --no-cache: where kpolicy.codecache keeps compiled dataclass methods. Read before argparse
    runs, since the command's modules are imported to configure its parser."""
    if "--no-cache" in args:
        return None
    from kpolicy.cache import default_cache_dir

    for i, arg in enumerate(args):
        if arg == "--cache-dir" and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--cache-dir="):
            return Path(arg[len("--cache-dir="):])
    return default_cache_dir()


def _parse_and_run(args_list: list[str], only: Optional[str]) -> int:
    from kpolicy.longlived import long_lived

    with long_lived():  # the command's modules: kept to the end, kept off the cyclic collector
        parser = build_parser(only)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _configure, run = _command_functions(args.command)
    try:
        return run(args)
    except KpolicyError as err:
        print(err.report(), file=sys.stderr)
        return 2
    except RecursionError:  # input nested deeper than any kernel's (the why-chain of 900 ifs)
        print("kpolicy: error: input nests too deeply", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head): not an error worth a traceback
        return 0
