"""`kpolicy families`: the map of feature families of a tree, one block per family."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any, TextIO

from kpolicy.cliargs import (
    add_cache_arguments,
    add_jobs_argument,
    add_tree_argument,
    cache_from_args,
)
from kpolicy.families.model import Family


def configure_families(parser: argparse.ArgumentParser) -> None:
    """Arguments of `kpolicy families`."""
    add_tree_argument(parser)
    parser.add_argument("--arch", action="append", default=[], metavar="ARCH",
                        help="ARCH to evaluate Kconfig for (repeatable; default x86_64)")
    parser.add_argument("--all-arches", action="store_true", help="evaluate every arch of the tree")
    add_jobs_argument(parser, "work out what the cache lacks (Kconfig of each arch, C scan)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--family", metavar="NAME",
                        help="show only families whose name or members contain NAME")
    parser.add_argument("--pattern", action="store_true",
                        help="show only pattern families (capability-gated or declared)")
    add_cache_arguments(parser)


def run_families(args: argparse.Namespace) -> int:
    """Print the families of --tree; 0 on success."""
    from kpolicy.analysis import analyse, select_arches
    from kpolicy.tree import open_tree

    tree = open_tree(args.tree)
    arches = select_arches(tree, args.arch or ["x86_64"], args.all_arches)
    families = analyse(tree, arches, cache_from_args(args), jobs=args.jobs).families
    if args.pattern:
        families = tuple(f for f in families if f.capability or f.declared)
    if args.family:
        want = args.family.upper().replace(".", "_")
        families = tuple(f for f in families if any(
            want in m.upper().replace(".", "_")
            for m in (f.name, f.option, f.default_companion or "", *f.params)))
    if args.format == "json":
        json.dump([family_json(f) for f in families], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_text(families, sys.stdout)
    return 0


def family_json(family: Family) -> dict[str, Any]:
    """FAMILY as plain JSON data."""
    data = asdict(family)
    for link in data["links"]:
        loc = link.pop("location")
        link["location"] = f"{loc['file']}:{loc['line']}" if loc else None
    return data


def write_text(families: tuple[Family, ...], out: TextIO) -> None:
    """One readable block per family: members first, then the evidence that tied them."""
    for fam in families:
        where = {(lk.member, lk.role): lk.location for lk in fam.links if lk.location}
        title = fam.name + ("  [declared]" if fam.declared else "")
        out.write(f"{title}\n")
        rows: list[tuple[str, str]] = [("option", fam.option)]
        if fam.capability:
            arches = ", ".join(fam.arches) or "no arch"
            rows.append(("capability", f"{fam.capability}  (selected by {arches})"))
        if fam.default_companion:
            rows.append(("boot default", f"{fam.default_companion}  ({fam.companion_kind})"))
        if fam.params:
            rows.append(("parameters", ", ".join(f"{p}=" for p in fam.params)))
        if fam.static_keys:
            rows.append(("static keys", ", ".join(fam.static_keys)))
        for label, value in rows:
            loc = where.get((value.split()[0], _ROLE.get(label, "")))
            out.write(f"  {label:<13}{value}" + (f"  {loc}" if loc else "") + "\n")
        out.write("  evidence\n")
        for lk in fam.links:
            at = f"  {lk.location}" if lk.location else ""
            out.write(f"    {lk.role:<11} {lk.member}: {lk.evidence}{at}\n")
        out.write("\n")


_ROLE = {"option": "option", "capability": "capability", "boot default": "default"}
