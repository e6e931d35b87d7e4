"""capability-code-evidence: the code of every arch that selects a capability does what the
capability promises, as declared in rules/evidence/*.toml (a call that must pass a flag)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kpolicy import treefs
from kpolicy.errors import KpolicyError
from kpolicy.kconfig.model import Location
from kpolicy.lint.types import Finding, LintContext, Rule, finding
from kpolicy.params.ctokens import Lines, call_arguments, mask

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _declared_list(table: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = table.get(key, [])
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        raise KpolicyError(f"'{key}' must be a list", file=where)
    return value


def _calls(root: Path, rel: str, function: str, flag: str) -> Iterator[tuple[Location, bool]]:
    """(location, passes FLAG) of each call of FUNCTION in the C file REL of the tree."""
    data = treefs.read_bytes(root, rel, what="C source")
    if function.encode() not in data:
        return
    masked, lines = mask(data), Lines(data)
    flag_re = re.compile(rb"\b" + re.escape(flag.encode()) + rb"\b")
    for m in re.finditer(rb"\b" + re.escape(function.encode()) + rb"\s*\(", masked):
        before = masked[max(0, m.start() - 64):m.start()]
        if re.search(rb"\b(?:struct\s+\w+\s*\*|int|void)\s*$", before):
            continue  # a declaration or definition, not a call
        args = call_arguments(masked, m.end() - 1)
        if args is None:
            continue
        spans, _end = args
        passes = any(flag_re.search(masked[a:b]) for a, b in spans)
        yield Location(rel, lines.line(m.start())), passes


def _site(root: Path, rel: str, pattern: re.Pattern[bytes],
          flag: str) -> Iterator[tuple[Location, bool]]:
    """(location, sets FLAG) of each match of PATTERN in REL, up to the end of its statement."""
    data = treefs.read_bytes(root, rel, what="C source")
    masked, lines = mask(data), Lines(data)
    flag_re = re.compile(rb"\b" + re.escape(flag.encode()) + rb"\b")
    for m in pattern.finditer(masked):
        end = re.compile(rb"[,;}]").search(masked, m.end())
        stop = end.start() if end else len(masked)
        yield Location(rel, lines.line(m.start())), bool(flag_re.search(masked[m.end():stop]))


def _c_files(root: Path, top: str) -> Iterator[str]:
    """The regular *.c files under TOP of the tree (treefs.walk: no symlink followed)."""
    for directory, _subdirs, names in treefs.walk(root, top):
        yield from (f"{directory}/{n}" for n in names if n.endswith(".c"))


def capability_code_evidence(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """Calls of the declared function under arches selecting the capability lack the flag."""
    syms = ctx.merged_symbols
    selections = ctx.arch_selections
    root = ctx.tree.root
    for name, table in sorted(ctx.declarations.get("evidence", {}).items()):
        where = f"rules/evidence/{name}.toml"
        function, flag = str(table.get("function", "")), str(table.get("flag", ""))
        if not (_NAME.match(function) and _NAME.match(flag)):
            raise KpolicyError("'function' and 'flag' must be C identifiers", file=where)
        caps = [str(c) for c in _declared_list(table, "capability", where)]
        cap = next((c for c in caps if c in syms or c in selections), None)
        if cap is None:
            continue
        arches = sorted(selections.get(cap, {}))
        if not arches:
            continue
        excluded = tuple(str(e.get("path", "")) if isinstance(e, dict) else str(e)
                         for e in _declared_list(table, "exclude", where))
        files: list[str] = []
        for arch in arches:
            files.extend(_c_files(root, f"arch/{arch}"))
        files.extend(str(f) for f in _declared_list(table, "generic_files", where))
        for rel in files:
            if (excluded and rel.startswith(excluded)) or not treefs.is_file(root, rel):
                continue
            for loc, passes in _calls(root, rel, function, flag):
                if not passes:
                    yield finding(rule, f"{function}() here does not pass {flag}, yet this arch "
                                  f"selects {cap} ({name})", loc, symbol=cap)
        for site in _declared_list(table, "sites", where):
            if not isinstance(site, dict) or site.get("arch") not in arches:
                continue
            rel = str(site.get("file", ""))
            if not treefs.is_file(root, rel):
                continue
            what = str(site.get("what", "declared site"))
            # a site userspace cannot reach needs no flag: said as a note, not a gap
            unreachable = site.get("unreachable")
            try:
                pattern = re.compile(str(site.get("pattern", "")).encode())
            except re.error as exc:
                raise KpolicyError(f"bad site pattern: {exc}", file=where) from None
            for loc, passes in _site(root, rel, pattern, flag):
                if passes:
                    continue
                if unreachable:
                    yield finding(rule, f"{what} lacks {flag}, which leaves no gap: "
                                  f"{unreachable} ({name})", loc, severity="note", symbol=cap)
                else:
                    yield finding(rule, f"{what} is not covered: its flags lack {flag}, yet "
                                  f"{site['arch']} selects {cap} ({name})", loc, symbol=cap)
