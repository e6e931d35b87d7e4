"""Making a compact ResolveModel from a tree's analysis: the symbols the features and families
involve with their dependency closure, the registrations built for the arch, the families."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Optional

from kpolicy.families.model import Family
from kpolicy.kconfig.model import Definition, Expr, KconfigModel
from kpolicy.params.model import Catalog
from kpolicy.resolve.model import ResolveModel

# Symbols the command-line side needs beyond the features' own: the built-in command line
# and init's argument limit.
CMDLINE_SYMBOLS = (
    "CMDLINE_BOOL",
    "CMDLINE",
    "CMDLINE_OVERRIDE",
    "CMDLINE_EXTEND",
    "CMDLINE_FORCE",
    "CMDLINE_FROM_BOOTLOADER",
    "INIT_ENV_ARG_LIMIT",
    "LSM",
    "MODULES",
    "64BIT",
)


def symbol_closure(kconfig: KconfigModel, roots: Iterable[str]) -> frozenset[str]:
    """ROOTS plus, transitively, every symbol their dependencies, defaults and selects refer to."""
    seen: set[str] = set()
    work = [r for r in roots if r in kconfig.symbols]
    choices_of = {c.name: c for c in kconfig.choices}
    while work:
        name = work.pop()
        if name in seen:
            continue
        seen.add(name)
        sym = kconfig.symbols[name]
        exprs: list[Optional[Expr]] = [sym.direct_dep]
        exprs += [d.depends_on for d in sym.definitions]
        exprs += [p.condition for p in sym.prompts]
        exprs += [e for d in sym.defaults for e in (d.value, d.condition)]
        exprs += [r.condition for r in sym.selected_by + sym.implied_by]
        refs = {n for e in exprs if e is not None for n in e.symbols()}
        refs |= {r.source for r in sym.selected_by + sym.implied_by}
        if sym.choice and sym.choice in choices_of:
            refs |= set(choices_of[sym.choice].members)
            if choices_of[sym.choice].direct_dep is not None:
                refs |= choices_of[sym.choice].direct_dep.symbols()  # type: ignore[union-attr]
        work.extend(n for n in refs if n in kconfig.symbols and n not in seen)
    return frozenset(seen)


def compact_model(
    kconfig: KconfigModel,
    catalog: Catalog,
    families: tuple[Family, ...],
    roots: Iterable[str],
    command_line_size: int,
) -> ResolveModel:
    """A ResolveModel keeping only the symbols reachable from ROOTS and the families' members."""
    roots = set(roots) | set(CMDLINE_SYMBOLS)
    for fam in families:
        roots |= {fam.option, *(s for s in (fam.capability, fam.default_companion) if s)}
    for c in kconfig.choices:
        if c.name in roots:
            roots |= set(c.members)
    keep = symbol_closure(kconfig, roots)
    choices = tuple(c for c in kconfig.choices if set(c.members) & keep)
    # Values of every symbol the parameter registrations are built under, too: the command-line
    # side needs them to know which parameters exist when no config is given.
    wanted_values = keep | {r.built_if for r in catalog.registrations if r.built_if}
    values = {n: v for n, v in kconfig.values.items() if n in wanted_values and v != "n"}
    # Only what explains a value: no help texts, menus or forward select/imply lists (the
    # reverse edges, selected_by/implied_by, are what decide a symbol's value).
    symbols = {}
    for n in sorted(keep):
        sym = kconfig.symbols[n]
        defs = tuple(Definition(d.location, d.depends_on) for d in sym.definitions)
        symbols[n] = dataclasses.replace(sym, definitions=defs, selects=(), implies=())
    small = KconfigModel(
        version=kconfig.version,
        arch=kconfig.arch,
        srcarch=kconfig.srcarch,
        toolchain=kconfig.toolchain,
        symbols=symbols,
        choices=choices,
        values=values,
    )
    # Registrations under another arch's directory are never built for this one.
    other_arch = tuple(f"arch/{a}/" for a in _arch_dirs(catalog) if a != kconfig.srcarch)
    registrations = tuple(
        r for r in catalog.registrations if not r.location.file.startswith(other_arch)
    )
    docs_wanted = {p for fam in families for p in fam.params}
    small_catalog = dataclasses.replace(
        catalog,
        registrations=registrations,
        docs=tuple(d for d in catalog.docs if set(d.names) & docs_wanted),
        # which parameter writes a key explains discovery; resolve does not read it
        static_keys=tuple(dataclasses.replace(k, params=()) for k in catalog.static_keys
                          if k.symbol is None or k.symbol in keep),
    )
    # The evidence links explain discovery (`kpolicy families`); resolve needs only the members.
    families = tuple(dataclasses.replace(f, links=()) for f in families)
    return ResolveModel(
        small.version, small.arch, small.srcarch, command_line_size, small, small_catalog, families
    )


def _arch_dirs(catalog: Catalog) -> set[str]:
    """The arch/<dir> names the catalog's registrations live under."""
    return {
        r.location.file.split("/")[1]
        for r in catalog.registrations
        if r.location.file.startswith("arch/") and r.location.file.count("/") >= 2
    }
