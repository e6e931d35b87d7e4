"""`kpolicy params`: the boot-parameter catalog of a tree, and its cross-checks.

Exit status: 0 when the listing (or --check) is clean, 1 when --check found issues, 2 on
errors, including a NAME that is neither documented nor registered ("no such parameter").
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional

from kpolicy.cliargs import (
    add_cache_arguments,
    add_jobs_argument,
    add_tree_argument,
    cache_from_args,
)
from kpolicy.errors import KpolicyError
from kpolicy.kernel import fold_param
from kpolicy.params.catalog import ParamInfo, build_catalog, catalog_lookup
from kpolicy.params.model import Registration
from kpolicy.tree import open_tree

SCHEMA_VERSION = 1


def configure_params(parser: argparse.ArgumentParser) -> None:
    """Arguments of `kpolicy params`."""
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="parameters to show (default: all); '-' and '_' are the same")
    add_tree_argument(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--check", action="store_true",
                        help="print the documentation/code/Kconfig cross-check issues instead; "
                        "exit 1 if there are any")
    add_jobs_argument(parser, "scan the C files when the cache lacks them")
    add_cache_arguments(parser)


def _selected(lookup: dict[str, ParamInfo], names: list[str]) -> list[ParamInfo]:
    if not names:
        return list(lookup.values())
    out: list[ParamInfo] = []
    for name in names:
        key = fold_param(name.rstrip("="))
        if key not in lookup:
            raise KpolicyError(f"no such parameter: {name} (neither documented nor registered)")
        out.append(lookup[key])
    return out


def _config(symbol: Optional[str]) -> Optional[str]:
    return None if symbol is None else f"CONFIG_{symbol}"


def _registration_json(reg: Registration) -> dict[str, Any]:
    return {"kind": reg.kind, "file": reg.location.file, "line": reg.location.line,
            "built_if": _config(reg.built_if), "parser": reg.parser}


def param_json(info: ParamInfo) -> dict[str, Any]:
    """The JSON object of one parameter, as `kpolicy params --format json` prints it."""
    doc = info.doc
    return {
        "name": info.name,
        "doc": None if doc is None else {
            "file": doc.location.file, "line": doc.location.line, "tags": list(doc.tags),
            "format": None if doc.format is None else " ".join(doc.format.raw.split()),
            "default_symbols": [f"CONFIG_{s}" for s in doc.default_symbols],
        },
        "registrations": [_registration_json(r) for r in info.registrations],
        "documented_elsewhere": None if info.elsewhere is None else {
            "file": info.elsewhere.file, "line": info.elsewhere.line},
    }


def _text(info: ParamInfo) -> str:
    doc = info.doc
    if doc is None and info.elsewhere is not None:
        head = f"{info.name}  (documented at {info.elsewhere})"
    elif doc is None:
        head = f"{info.name}  (undocumented)"
    else:
        head = f"{info.name}  [{','.join(doc.tags)}]  {doc.location}"
        if doc.format is not None:
            head += f"  Format: {' '.join(doc.format.raw.split())}"
        if doc.default_symbols:
            head += "  default: " + ", ".join(f"CONFIG_{s}" for s in doc.default_symbols)
    lines = [head]
    if not info.registrations:
        lines.append("    (registered nowhere)")
    for reg in info.registrations:
        parts = [f"    {reg.kind:<12} {reg.location}"]
        if reg.built_if:
            parts.append(f"built_if=CONFIG_{reg.built_if}")
        if reg.parser:
            parts.append(f"parser={reg.parser}")
        if reg.param_type:
            parts.append(f"type={reg.param_type}")
        lines.append("  ".join(parts))
    return "\n".join(lines)


def run_params(args: argparse.Namespace) -> int:
    """List the catalog (or, with --check, its cross-check issues) for the requested names."""
    tree = open_tree(args.tree)
    catalog = build_catalog(tree, cache_from_args(args), args.jobs)
    lookup = dict(catalog_lookup(catalog))
    chosen = _selected(lookup, list(args.names))
    if args.check:
        from kpolicy.params.crosscheck import cross_check

        wanted = {fold_param(i.name) for i in chosen}
        issues = [i for i in cross_check(catalog) if fold_param(i.param) in wanted]
        if args.format == "json":
            json.dump({"schema_version": SCHEMA_VERSION, "issues": [
                {"kind": i.kind, "param": i.param, "file": i.location.file,
                 "line": i.location.line, "symbol": _config(i.symbol), "message": i.message}
                for i in issues]}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            for i in issues:
                print(f"{i.location}: {i.kind}: {i.message}")
        return 1 if issues else 0
    if args.format == "json":
        json.dump({"schema_version": SCHEMA_VERSION, "params": [param_json(i) for i in chosen]},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for info in chosen:
            print(_text(info))
    return 0
