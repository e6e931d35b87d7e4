"""The arguments several subcommands share (--tree, the cache, --jobs), for their configure_*()."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kpolicy.cache import Cache


def add_tree_argument(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """--tree DIR: the kernel source tree to read."""
    parser.add_argument("--tree", type=Path, required=required, metavar="DIR",
                        help="kernel source tree")


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """--no-cache and --cache-dir, shared by every command that reads a tree."""
    parser.add_argument("--no-cache", action="store_true",
                        help="neither read nor write the on-disk cache")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR",
                        help="cache directory (default: $XDG_CACHE_HOME/kpolicy)")


def _jobs(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("must be a whole number of at least 1")
    return int(value)


def usable_cpus() -> int:
    """The CPUs this process may run on (all of them where the OS cannot tell)."""
    if hasattr(os, "sched_getaffinity"):  # Linux; macOS has no affinity masks
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def add_jobs_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """--jobs/-j N: how many processes do WHAT (default: the CPUs kpolicy may use)."""
    parser.add_argument("--jobs", "-j", type=_jobs, default=usable_cpus(),
                        metavar="N", help=f"processes that {what} (default: the CPUs "
                        "kpolicy may use)")


def cache_from_args(args: argparse.Namespace) -> Cache:
    """The Cache the user asked for with --no-cache / --cache-dir."""
    return Cache(getattr(args, "cache_dir", None), enabled=not getattr(args, "no_cache", False))
