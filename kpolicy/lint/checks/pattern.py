"""Checks of feature families against the RANDOMIZE_KSTACK_OFFSET pattern (arch/Kconfig).

The pattern: an arch capability (no prompt, selected from arch/ only) gates a build option that
is `default y`; a separate bool `<OPTION>_DEFAULT`, off unless chosen, sets the boot default that
a boot parameter overrides and a static key follows. Only pattern families are checked: those
whose option is gated by a capability, and those declared in rules/families/*.toml.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Optional

from kpolicy.families.discover import family_declaration
from kpolicy.families.model import Family
from kpolicy.kconfig.model import Expr, Symbol, positive_symbols
from kpolicy.lint.types import Finding, LintContext, Rule, finding
from kpolicy.params.catalog import docs_for, is_switch


def pattern_families(ctx: LintContext) -> Iterator[Family]:
    """Families the pattern applies to: capability-gated or declared."""
    return (f for f in ctx.families if f.capability is not None or f.declared)


def boot_switches(ctx: LintContext, family: Family) -> tuple[str, ...]:
    """The family's on/off parameters that switch the feature itself: named after the option or
    its companion, documented with one of them as default, named in their help, or declared."""
    members = {family.option, family.default_companion or family.option}
    strong = {lk.member for lk in family.links if lk.role == "param" and (
        lk.evidence.startswith(("help of ", "declared in ")))}
    out = []
    for param in family.params:
        if not is_switch(ctx.catalog, param):
            continue
        if param in strong or any(names_match(param, m) for m in members) or any(
                members & set(d.default_symbols) for d in docs_for(ctx.catalog, param)):
            out.append(param)
    return tuple(out)


def names_match(param: str, symbol: str) -> bool:
    """PARAM and SYMBOL name the same feature: equal once dots and dashes become underscores, or
    one extends the other by whole words (exec.seal_system_mappings ~ SEAL_SYSTEM_MAPPINGS)."""
    p = param.upper().replace(".", "_").replace("-", "_")
    return p == symbol or p.endswith("_" + symbol) or symbol.endswith("_" + p) or \
        symbol.startswith(p + "_")


# Help text that makes an option a security one wherever it lives (arch/Kconfig holds CFI,
# VMAP_STACK and STRICT_KERNEL_RWX; arch/x86/Kconfig the CPU bug mitigations).
_SECURITY_HELP = re.compile(
    r"\b(?:attack(?:er|s)?|exploit\w*|harden\w*|mitigat\w*|vulnerab\w*|security)\b", re.I)


def is_security(ctx: LintContext, family: Family, syms: Mapping[str, Symbol]) -> bool:
    """A security family: declared so, its option under security/, or the option's (or its
    boot default's) help speaks of attacks, exploits, hardening, mitigations or security."""
    if _declared(ctx, family).get("security"):
        return True
    opt = syms.get(family.option)
    if opt is not None and opt.location.file.startswith("security/"):
        return True
    return any(sym is not None and _SECURITY_HELP.search(sym.help)
               for sym in (opt, syms.get(family.default_companion or "")))


def in_scope(ctx: LintContext, rule: Rule, family: Family, syms: Mapping[str, Symbol]) -> bool:
    """Whether RULE's `scope` option ("security", the default, or "all") covers FAMILY."""
    if rule.options.get("scope", "security") == "all":
        return True
    return is_security(ctx, family, syms)


def scoped_families(ctx: LintContext, rule: Rule) -> Iterator[Family]:
    """The pattern families RULE's scope covers."""
    syms = ctx.merged_symbols
    return (f for f in pattern_families(ctx) if in_scope(ctx, rule, f, syms))


def _depends_on(sym: Symbol, option: str, syms: Mapping[str, Symbol], depth: int = 3) -> bool:
    """SYM depends on OPTION, directly or through symbols without a prompt (CFI_AUTO_DEFAULT
    depends on FINEIBT, a def_bool that depends on CFI)."""
    frontier = {sym.name}
    for _ in range(depth):
        deps = {d for n in frontier if n in syms for d in positive_symbols(syms[n].direct_dep)}
        if option in deps:
            return True
        frontier = {d for d in deps if d in syms and not syms[d].has_prompt}
    return False


def _on_by_default(ctx: LintContext, option: str) -> bool:
    """OPTION's default evaluates to y on a linted arch (STRICT_KERNEL_RWX's `default
    !ARCH_OPTIONAL_KERNEL_RWX || ...` is y wherever the arch does not make it optional)."""
    return any(m.values.get(option) == "y" for m in ctx.models.values())


# CONFIG_X in an #if condition, not negated: `defined(CONFIG_A) || defined(CONFIG_B)`.
_POSITIVE_CONFIG = re.compile(r"(?<![!\w])(?:defined\s*\(\s*|IS_ENABLED\s*\(\s*)?CONFIG_(\w+)")


def registered_under(ctx: LintContext, option: str) -> tuple[str, ...]:
    """Boot parameters (early_param/__setup) compiled only inside `#if ... CONFIG_<OPTION>`:
    init/main.c registers rodata= under STRICT_KERNEL_RWX || STRICT_MODULE_RWX."""
    return tuple(dict.fromkeys(
        r.name for r in ctx.catalog.registrations
        if r.kind in ("early_param", "__setup")
        and any(option in _POSITIVE_CONFIG.findall(c) for c in r.cpp_conditions)))


def _always_built(family: Family) -> bool:
    return family.option == family.default_companion


def _implied(cond: Optional[Expr], dep: Optional[Expr]) -> bool:
    """COND holds whenever DEP does (Kconfig folds `depends on` into each default's condition)."""
    if cond is None:
        return True
    have = {str(t) for t in dep.conjuncts()} if dep is not None else set()
    return all(str(t) in have for t in cond.conjuncts())


def _defaults_to_y(sym: Symbol, also: frozenset[str] = frozenset()) -> bool:
    """An unconditional `default y` (or a default naming one of ALSO, e.g. the capability)."""
    for d in sym.defaults:
        if not _implied(d.condition, sym.direct_dep):
            continue
        v = d.value
        if (v.op == "const" and v.args[0] == "y") or (v.op == "sym" and (
                v.args[0] == "y" or v.args[0] in also)):
            return True
    return False


def _defaults_on(sym: Symbol, option: str) -> bool:
    """Any default that can turn SYM on: `default y` (conditional or not) or `default OPTION`."""
    for d in sym.defaults:
        v: Expr = d.value
        if v.op in ("const", "sym") and v.args[0] in ("y", "m", option):
            return True
    return False


def _declared(ctx: LintContext, family: Family) -> Mapping[str, Any]:
    return family_declaration(ctx.declarations, family)


def capability_not_depended(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """capability-not-depended: the build option does not depend on its family's capability."""
    syms = ctx.merged_symbols
    for fam in pattern_families(ctx):
        opt = syms.get(fam.option)
        if fam.capability is None or opt is None or _always_built(fam):
            continue
        used = {n for d in opt.defaults for e in (d.value, d.condition) if e for n in e.symbols()}
        if fam.capability not in positive_symbols(opt.direct_dep) | used:
            yield finding(rule, f"{fam.option} does not depend on its capability {fam.capability}"
                          f"; it can be enabled on arches that never select it",
                          opt.location, family=fam.name, symbol=fam.option)


def capability_has_prompt(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """capability-has-prompt: a capability has a prompt, or is selected from outside arch/."""
    syms = ctx.merged_symbols
    seen: set[str] = set()
    for fam in pattern_families(ctx):
        cap = syms.get(fam.capability or "")
        if cap is None or cap.name in seen:
            continue
        seen.add(cap.name)
        for prompt in cap.prompts:
            yield finding(rule, f"capability {cap.name} has a prompt (\"{prompt.text}\"); "
                          "only arches should decide it, by select", prompt.location,
                          family=fam.name, symbol=cap.name)
        for rev in cap.selected_by:
            if not rev.location.file.startswith("arch/"):
                yield finding(rule, f"capability {cap.name} is selected by {rev.source} outside "
                              "arch/", rev.location, family=fam.name, symbol=cap.name)


def option_not_default_y(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """option-not-default-y: a capability-gated option controllable at boot is not default y."""
    syms = ctx.merged_symbols
    for fam in scoped_families(ctx, rule):
        opt = syms.get(fam.option)
        if opt is None or fam.capability is None or _always_built(fam):
            continue
        switches = boot_switches(ctx, fam)
        if not (switches or fam.default_companion):
            continue
        if _defaults_to_y(opt, frozenset({fam.capability})) or _on_by_default(ctx, fam.option):
            continue
        how = f"boot parameter {switches[0]}=" if switches else f"{fam.default_companion}"
        yield finding(rule, f"{fam.option} is gated by {fam.capability} and controllable at boot "
                      f"({how}) but is not default y", opt.location, family=fam.name,
                      symbol=fam.option, param=switches[0] if switches else None)


def boot_default_missing(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """boot-default-missing: the boot parameter overrides the build option; no companion exists."""
    syms = ctx.merged_symbols
    for fam in scoped_families(ctx, rule):
        opt = syms.get(fam.option)
        if opt is None or fam.default_companion is not None:
            continue
        for param in boot_switches(ctx, fam):
            if any(fam.option in d.default_symbols for d in docs_for(ctx.catalog, param)) or any(
                    k.symbol == fam.option for k in ctx.catalog.static_keys
                    if k.name in fam.static_keys):
                yield finding(rule, f"boot parameter {param}= overrides {fam.option} itself; add "
                              f"a bool {fam.option}_DEFAULT depending on {fam.option} for the "
                              "boot default", opt.location, family=fam.name, symbol=fam.option,
                              param=param)
                break


def boot_default_shape(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """boot-default-shape: the companion is not a bool depending on the option, defaults on
    without a stated reason, or is not what the static key follows."""
    syms = ctx.merged_symbols
    for fam in scoped_families(ctx, rule):
        comp = syms.get(fam.default_companion or "")
        if comp is None or fam.companion_kind != "bool":
            continue
        about = {"family": fam.name, "symbol": comp.name}
        if comp.type != "bool":
            yield finding(rule, f"{comp.name} is a {comp.type}; the boot default should be a bool",
                          comp.location, **about)
        if not _always_built(fam) and not _depends_on(comp, fam.option, syms):
            yield finding(rule, f"{comp.name} does not depend on {fam.option}", comp.location,
                          **about)
        if _defaults_on(comp, fam.option) and not _declared(ctx, fam).get("default_on_reason"):
            yield finding(rule, f"{comp.name} defaults to on and rules/families states no reason "
                          "(default_on_reason)", comp.location, **about)
        for key in ctx.catalog.static_keys:
            if key.name in fam.static_keys and key.symbol == fam.option and not _always_built(fam):
                yield finding(rule, f"static key {key.name} follows CONFIG_{fam.option}, not the "
                              f"boot default CONFIG_{comp.name}", key.location, **about)


def runtime_control_missing(ctx: LintContext, rule: Rule) -> Iterator[Finding]:
    """runtime-control-missing: a capability-gated security option is chosen only at build time."""
    syms = ctx.merged_symbols
    for fam in pattern_families(ctx):
        opt = syms.get(fam.option)
        decl = _declared(ctx, fam)
        if opt is None or fam.capability is None or _always_built(fam):
            continue
        if not is_security(ctx, fam, syms):
            continue
        if fam.default_companion or fam.static_keys or boot_switches(ctx, fam):
            continue
        # rodata= for STRICT_KERNEL_RWX; cfi= for 6.12's CFI_CLANG, under FINEIBT, a def_bool
        # that depends on it
        followers = [n for n, sym in syms.items() if not sym.has_prompt
                     and fam.option in positive_symbols(sym.direct_dep)]
        if any(registered_under(ctx, n) for n in (fam.option, *followers)):
            continue
        if decl.get("runtime_control"):
            continue  # waived in rules/families with the reason stated there
        yield finding(rule, f"{fam.option} is a security option that can only be chosen at build "
                      "time: no boot parameter, no boot default, no static key", opt.location,
                      family=fam.name, symbol=fam.option)
