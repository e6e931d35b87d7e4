"""Checks of boot parameters: documentation against registrations, Kconfig and the families."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from kpolicy.families.discover import is_capability
from kpolicy.kconfig.model import positive_symbols
from kpolicy.lint.checks.pattern import boot_switches, pattern_families
from kpolicy.lint.types import Finding, LintContext, Rule, finding
from kpolicy.params.catalog import docs_for

# Registrations whose dotted name the kernel builds itself (KBUILD_MODNAME.param).
_MODULE_KINDS = ("module_param", "core_param")


def catalog_issue(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """Findings for the kpolicy.params.crosscheck issues of the kind in rule.options["kind"]."""
    kinds = rule.options.get("kind", ())
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    for issue in ctx.catalog_issues:
        if issue.kind in kinds:
            yield finding(rule, issue.message, issue.location, param=issue.param,
                          symbol=issue.symbol)


def _defined(name: str, ctx: LintContext) -> bool:
    """NAME is a Kconfig symbol, the X_MODULE macro autoconf.h defines for a tristate X built as
    a module, or names several members of one choice by their common prefix ("the
    CONFIG_PROC_MEM_* choice"). A symbol with a longer name is not enough: CONFIG_X86_X32 is not
    CONFIG_X86_X32_ABI."""
    defined = ctx.catalog.kconfig_symbols
    if name in defined or (name.endswith("_MODULE") and name[: -len("_MODULE")] in defined):
        return True
    prefix = name + "_"
    return any(sum(1 for m in choice.members if m.startswith(prefix)) >= 2
               for choice in ctx.merged_choices.values())


def param_namespace(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """param-namespace: a dotted early_param/__setup name whose namespace groups nothing and is
    neither the module nor the object name of the file that registers it."""
    names = {n for d in ctx.catalog.docs for n in d.names}
    names |= {r.name for r in ctx.catalog.registrations}
    members: dict[str, set[str]] = {}
    for name in names:
        if "." in name:
            members.setdefault(name.split(".", 1)[0], set()).add(name)
    for reg in ctx.catalog.registrations:
        if reg.kind in _MODULE_KINDS or "." not in reg.name or reg.name.endswith("."):
            continue  # module names are Kbuild's; "memchunk." is a namespace by design
        space = reg.name.split(".", 1)[0]
        path = PurePosixPath(reg.location.file)
        if len(members.get(space, ())) > 1 or space.replace("-", "_") in (
                path.stem.replace("-", "_"), path.parent.name.replace("-", "_")):
            continue
        yield finding(rule, f"{reg.kind} '{reg.name}' puts a single parameter in namespace "
                      f"'{space}.', which groups nothing and is not the name of {path.name}; "
                      f"name it after the feature's module or syscall", reg.location,
                      param=reg.name)


def param_doc_default(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """param-doc-default: a doc names a default symbol that does not exist, or not the family's
    real boot default."""
    for doc in ctx.catalog.docs:
        for sym in doc.default_symbols:
            if not _defined(sym, ctx):
                yield finding(rule, f"{doc.name}= says its default is CONFIG_{sym}, which no "
                              "Kconfig file defines", doc.location, param=doc.name, symbol=sym)
    for fam in pattern_families(ctx):
        comp = fam.default_companion
        if fam.companion_kind != "bool" or comp is None or comp == fam.option:
            continue
        for param in boot_switches(ctx, fam):
            for doc in docs_for(ctx.catalog, param):
                if fam.option in doc.default_symbols and comp not in doc.default_symbols:
                    yield finding(rule, f"{param}= names CONFIG_{fam.option} as its default; "
                                  f"the boot default is CONFIG_{comp}", doc.location,
                                  family=fam.name, param=param, symbol=fam.option)
    yield from _fixed_default_stated(ctx, rule)


# "Not specifying this option is equivalent to mds=full." states a default that holds whatever
# the config says.
_FIXED_DEFAULT = re.compile(r"Not\s+specifying\s+this\s+option\s+is\s+equivalent\s+to\s+"
                            r"([\w.-]+=[\w,.-]*\w)")


def _fixed_default_stated(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """A doc states a fixed default for a parameter whose handler writes a variable or key that
    starts from a Kconfig symbol (x86's `mds_mitigation = IS_ENABLED(CONFIG_MITIGATION_MDS) ?
    ...`), and names no CONFIG_ symbol: with the symbol off, the stated default is wrong."""
    for key in ctx.catalog.static_keys:
        if key.symbol is None or key.initial not in ("config", "inverted"):
            continue
        for param in key.params:
            for doc in docs_for(ctx.catalog, param):
                m = _FIXED_DEFAULT.search(doc.body)
                if m is None or doc.config_symbols:
                    continue
                yield finding(rule, f"{param}= states a fixed default ({m.group(1)}), but "
                              f"{key.name} starts from CONFIG_{key.symbol} "
                              f"({key.location.file}:{key.location.line}): with it off the "
                              "default differs", doc.location, param=param, symbol=key.symbol)


def param_doc_conditions(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """param-doc-conditions: a condition the doc states contradicts Kconfig or the build."""
    syms = ctx.merged_symbols
    selected = ctx.arch_selections
    regs: dict[str, list[str]] = {}
    for reg in ctx.catalog.registrations:
        regs.setdefault(reg.name, []).extend(reg.built_with)
    for doc in ctx.catalog.docs:
        for cond in doc.conditions:
            sym = cond.symbol
            if not _defined(sym, ctx):
                yield finding(rule, f"{doc.name}= states a condition on CONFIG_{sym}, which no "
                              "Kconfig file defines", doc.location, param=doc.name, symbol=sym)
                continue
            if cond.value == "y" and is_capability(sym) and sym not in selected:
                yield finding(rule, f"{doc.name}= matters only with CONFIG_{sym}, which no arch "
                              "selects", doc.location, param=doc.name, symbol=sym)
                continue
            for name in doc.names:
                for built in regs.get(name, ()):
                    deps = syms[built].direct_dep if built in syms else None
                    needs_n = deps is not None and any(
                        t.op == "not" and str(t) == f"!{sym}" for t in deps.conjuncts())
                    if (cond.value == "n" and (built == sym or sym in positive_symbols(deps))) \
                            or (cond.value == "y" and needs_n):
                        state = "y" if cond.value == "n" else "n"
                        yield finding(rule, f"{name}= is said to matter only with CONFIG_{sym}="
                                      f"{cond.value}, but it is built only with CONFIG_{built}, "
                                      f"which needs CONFIG_{sym}={state}", doc.location,
                                      param=name, symbol=sym)
                        break


def doc_irregularities(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """Findings for the doc layout irregularities of the kinds in rule.options["irregularities"]."""
    kinds = frozenset(rule.options.get("irregularities", ()))
    for doc in ctx.catalog.docs:
        for irr in doc.irregularities:
            if irr.kind in kinds:
                yield finding(rule, irr.message, irr.location, param=doc.name)
