"""Feature-family discovery: capability -> build option -> default companion -> parameter -> key.

Discovery reads only kpolicy's own models (KconfigModel, Catalog) plus a cheap text scan of
arch/*/Kconfig* for `select CAPABILITY`; what it cannot infer is declared in rules/families/*.toml.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Optional

from kpolicy.errors import KpolicyError
from kpolicy.families.model import Family, Link
from kpolicy.kconfig.model import (
    Choice,
    KconfigModel,
    Location,
    Symbol,
    merged_choices,
    merged_symbols,
    positive_symbols,
)
from kpolicy.kconfig.scan import arch_selections
from kpolicy.params.catalog import switch_params
from kpolicy.params.model import Catalog, Registration
from kpolicy.tree import KernelTree

CAPABILITY_PREFIXES = ("HAVE_ARCH_", "ARCH_HAS_", "ARCH_SUPPORTS_")
# Suffixes naming the boot-default companion of option STEM (STEM + suffix), longest first.
COMPANION_SUFFIXES = (
    "_DEFAULT_DISABLED", "_DEFAULT_ENABLED", "_ENABLE_DEFAULT", "_DEFAULT_OFF", "_DEFAULT_ON",
    "_DISABLED", "_ENFORCED", "_DEFAULT",
)
# HAVE_<OPTION> gates OPTION the way HAVE_ARCH_* does (HAVE_STACKPROTECTOR); other HAVE_*
# symbols (HAVE_KVM, HAVE_PERF_EVENTS) are toolchain or platform facts, not capabilities.
NAMED_CAPABILITY_PREFIX = "HAVE_"
COMPANION_PREFIX = "BOOTPARAM_"
# Help texts name a parameter as `name=value` ("randomize_kstack_offset=on/off"); a bare quoted
# name is often a comparison with a sibling feature ("Similar to "init_on_alloc"").
_HELP_PARAM = re.compile(r"(?<![\w.-])([A-Za-z0-9_.\-]+)=")


def is_capability(name: str) -> bool:
    """True for the pattern's arch capability symbols: HAVE_ARCH_*, ARCH_HAS_*, ARCH_SUPPORTS_*."""
    return name.startswith(CAPABILITY_PREFIXES)


def named_capability(option: str) -> str:
    """The HAVE_<OPTION> symbol that is OPTION's capability when OPTION depends on it."""
    return NAMED_CAPABILITY_PREFIX + option


def _arch_only(sym: Symbol) -> bool:
    """SYM has no prompt and is selected, only from arch/ (HAVE_STACKPROTECTOR; not HAVE_PCI,
    which FORCE_PCI selects from drivers/pci)."""
    return not sym.has_prompt and bool(sym.selected_by) and all(
        r.location.file.startswith("arch/") for r in sym.selected_by)


def companion_stem(name: str) -> Optional[str]:
    """The option name a companion-shaped symbol NAME is the boot default of, or None."""
    if name.startswith(COMPANION_PREFIX):
        return name[len(COMPANION_PREFIX):]
    for suffix in COMPANION_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def _choice_prefix(choice: Choice) -> str:
    members = choice.members
    if len(members) < 2:
        return ""
    first = members[0]
    n = 0
    while all(len(m) > n and m[n] == first[n] for m in members):
        n += 1
    prefix = first[:n]
    return prefix[: prefix.rfind("_") + 1] if "_" in prefix else ""


def _related(option: str, stem: str) -> bool:
    """OPTION and a companion's STEM start with the same two words, or one long word
    (BOOTPARAM_SOFTLOCKUP_PANIC belongs to SOFTLOCKUP_DETECTOR, NET_SCH_DEFAULT not to NET)."""
    a, b = option.split("_"), stem.split("_")
    return a[:2] == b[:2] or (a[0] == b[0] and len(a[0]) >= 6)


def _owner_through(deps: Iterable[str], stem: str, syms: Mapping[str, Symbol],
                   depth: int = 3) -> Optional[tuple[str, str]]:
    """(OPTION, VIA): a prompted OPTION that STEM extends by whole words (CFI for CFI_AUTO),
    reached through the unprompted symbols DEPS depend on (CFI_AUTO_DEFAULT -> FINEIBT -> CFI)."""
    seen: set[str] = set()
    frontier = [(d, d) for d in sorted(deps) if d in syms and not syms[d].has_prompt]
    for _ in range(depth):
        nxt: list[tuple[str, str]] = []
        for name, via in frontier:
            if name in seen:
                continue
            seen.add(name)
            for d in sorted(positive_symbols(syms[name].direct_dep)):
                dsym = syms.get(d)
                if dsym is None or is_capability(d):
                    continue
                if dsym.has_prompt and stem.startswith(d + "_"):
                    return d, via
                if not dsym.has_prompt:
                    nxt.append((d, via))
        frontier = nxt
    return None


class _Builder:
    """Accumulates one family's members and their evidence."""

    def __init__(self, name: str, option: str) -> None:
        self.name = name
        self.option = option
        self.capability: Optional[str] = None
        self.companion: Optional[str] = None
        self.companion_kind: Optional[str] = None
        self.params: dict[str, None] = {}
        self.keys: dict[str, None] = {}
        self.links: list[Link] = []
        self.declared = False

    def link(self, member: str, role: str, evidence: str, location: Optional[Location]) -> None:
        if not any(lk.member == member and lk.role == role and lk.evidence == evidence
                   for lk in self.links):
            self.links.append(Link(member, role, evidence, location))

    def keyset(self, choices: Mapping[str, Choice]) -> set[str]:
        out = {self.option}
        if self.companion:
            out.add(self.companion)
            if self.companion in choices:
                out.update(choices[self.companion].members)
        return out


def _pick_capability(option: str, caps: Iterable[str]) -> str:
    def score(cap: str) -> tuple[int, str]:
        stem = next(cap[len(p):] for p in (*CAPABILITY_PREFIXES, NAMED_CAPABILITY_PREFIX)
                    if cap.startswith(p))
        return (0 if stem == option else 1 if stem in option or option in stem else 2, cap)

    return min(caps, key=score)


def discover_families(
    models: Mapping[str, KconfigModel],
    catalog: Catalog,
    declarations: Mapping[str, Any],
    *,
    tree: Optional[KernelTree] = None,
) -> tuple[Family, ...]:
    """The feature families of a tree, each member tied to the family by recorded evidence."""
    syms = merged_symbols(models)
    choices = merged_choices(models)
    caps = {n for n in syms if is_capability(n)}
    builders: dict[str, _Builder] = {}

    def family_for(name: str, option: str) -> _Builder:
        if option not in builders:
            builders[option] = _Builder(name, option)
        return builders[option]

    # Companions first: a companion-shaped bool tied to its option by name or by dependency.
    companions: dict[str, str] = {}  # companion -> option
    for name, sym in syms.items():
        stem = companion_stem(name)
        if stem is None or sym.type != "bool" or sym.choice is not None:
            continue
        deps = positive_symbols(sym.direct_dep)
        if stem in syms and stem != name and not is_capability(stem):
            option, why = stem, f"named {name} after {stem}"
        else:
            prompted = [d for d in sorted(deps) if d in syms and syms[d].has_prompt
                        and not is_capability(d) and _related(d, stem)]
            owner = _owner_through(deps, stem, syms)
            if prompted:
                option, why = prompted[0], f"{name} depends on {prompted[0]}"
            elif owner is not None:
                option, why = owner[0], f"{name} depends on {owner[0]} through {owner[1]}"
            elif not sym.has_prompt:
                continue  # an arch-internal default (e.g. ARCH_OPTIONAL_KERNEL_RWX_DEFAULT)
            else:
                option, why = name, f"{name} is the boot default of an always-built feature"
        fam = family_for(stem if option == name else option, option)
        fam.companion, fam.companion_kind = name, "bool"
        fam.link(name, "default", why, sym.location)
        companions[name] = option

    for choice in choices.values():
        prefix = _choice_prefix(choice)
        if not prefix:
            continue
        deps = positive_symbols(choice.direct_dep)
        base = prefix[:-1]
        documented = any(set(choice.members) & set(d.config_symbols) for d in catalog.docs)
        says_default = choice.prompt is not None and "default" in choice.prompt.text.lower()
        if base in deps and (says_default or documented):  # not a build-mode choice (KASAN)
            option = base
        elif prefix.endswith(("_DEFAULT_", "_FORCE_")):
            prompted = sorted(d for d in deps if d in syms and syms[d].has_prompt)
            option = prompted[0] if prompted else choice.name
        else:
            continue
        fam = family_for(base if option == choice.name else option, option)
        fam.companion, fam.companion_kind = choice.name, "choice"
        fam.link(choice.name, "default", f"choice of {prefix}* selects the boot default",
                 choice.location)

    # Build options: prompted bools gated by a capability, unless they refine another such option.
    gated: dict[str, set[str]] = {}
    for name, sym in syms.items():
        if is_capability(name) or name in companions or sym.type not in ("bool", "tristate"):
            continue
        if not sym.has_prompt or sym.choice is not None:
            continue
        deps = positive_symbols(sym.direct_dep)
        found = set(deps & caps)
        named = syms.get(named_capability(name))
        if named is not None and named.name in deps and _arch_only(named):
            found.add(named.name)
        if found:
            gated[name] = found
    for name, found in gated.items():
        option_deps = positive_symbols(syms[name].direct_dep)
        if any(o in option_deps and gated[o] & found for o in gated if o != name):
            continue
        cap = _pick_capability(name, found)
        fam = family_for(name, name)
        fam.capability = cap
        fam.link(cap, "capability", f"{name} depends on {cap}", syms[cap].location)
        fam.link(name, "option", f"prompted option gated by {cap}", syms[name].location)

    # Capabilities paired by name with an option that does not depend on them.
    for cap in sorted(caps):
        stem = next(cap[len(p):] for p in CAPABILITY_PREFIXES if cap.startswith(p))
        if stem in syms and syms[stem].has_prompt and stem not in gated and not is_capability(stem):
            fam = family_for(stem, stem)
            if fam.capability is None:
                fam.capability = cap
                fam.link(cap, "capability", f"named {cap} after {stem}", syms[cap].location)

    _boot_default_variables(builders, catalog, syms, family_for)
    _apply_declarations(builders, declarations, syms, choices)
    index = _ParamIndex(catalog)
    for fam in builders.values():
        _attach_params(fam, index, syms, choices)

    selections = arch_selections(tree) if tree is not None else {}
    out = []
    for fam in sorted(builders.values(), key=lambda b: b.name):
        arches: tuple[str, ...] = ()
        if fam.capability:
            where = selections.get(fam.capability)
            if where is None:
                where = {_srcarch_of(r.location.file): r.location
                         for r in syms[fam.capability].selected_by
                         if fam.capability in syms and r.location.file.startswith("arch/")}
            arches = tuple(sorted(a for a in where if a))
            for arch in arches:
                fam.link(arch, "arch", f"arch/{arch} selects {fam.capability}", where[arch])
        out.append(Family(
            name=fam.name, option=fam.option, capability=fam.capability,
            default_companion=fam.companion, companion_kind=fam.companion_kind,
            params=tuple(fam.params), static_keys=tuple(fam.keys), arches=arches,
            links=tuple(fam.links), declared=fam.declared,
        ))
    return tuple(out)


def _boot_default_variables(
    builders: dict[str, _Builder], catalog: Catalog, syms: Mapping[str, Symbol],
    family_for: Callable[[str, str], _Builder],
) -> None:
    """A prompted bool S that initializes a key or variable a parameter's handler writes
    (`x = IS_ENABLED(CONFIG_S) ? AUTO : OFF`, set by `mds=`) is that parameter's boot default:
    a family of its own when no family has S yet (x86's CONFIG_MITIGATION_*)."""
    members = {m for b in builders.values() for m in (b.option, b.companion) if m}
    for key in catalog.static_keys:
        sym = syms.get(key.symbol or "")
        if sym is None or not key.params or key.symbol in members:
            continue
        if sym.type != "bool" or not sym.has_prompt or sym.choice is not None:
            continue
        fam = family_for(sym.name, sym.name)
        fam.companion, fam.companion_kind = sym.name, "bool"
        fam.link(sym.name, "default", f"{key.name} starts as CONFIG_{sym.name} and "
                 f"{', '.join(p + '=' for p in key.params)} sets it", key.location)
        members.add(sym.name)


def _srcarch_of(path: str) -> str:
    parts = path.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "arch" else ""


def _apply_declarations(
    builders: dict[str, _Builder], declarations: Mapping[str, Any], syms: Mapping[str, Symbol],
    choices: Mapping[str, Choice],
) -> None:
    for name, table, where in declared_families(declarations):
        option = table.get("option", name)
        if not isinstance(option, str) or not isinstance(table.get("default", ""), str):
            raise KpolicyError(f"[family.{name}] option and default must be strings", file=where)
        params = _names(table, "params", name, where)
        keys = _names(table, "static_keys", name, where)
        if option not in builders and option not in syms:
            continue  # declared for trees that have the symbol; this one does not
        fam = builders.get(option) or builders.setdefault(option, _Builder(name, option))
        fam.declared = True
        fam.link(option, "option", f"declared in {where}",
                 syms[option].location if option in syms else None)
        if table.get("capability") in syms:
            fam.capability = str(table["capability"])
            fam.link(fam.capability, "capability", f"declared in {where}", None)
        if table.get("default") in syms or table.get("default") in choices:
            fam.companion = str(table["default"])
            fam.companion_kind = str(table.get("default_kind", "bool"))
            fam.link(fam.companion, "default", f"declared in {where}", None)
        for param in params:
            fam.params.setdefault(param)
            fam.link(param, "param", f"declared in {where}", None)
        for key in keys:
            fam.keys.setdefault(key)
            fam.link(key, "static_key", f"declared in {where}", None)


def _names(table: Mapping[str, Any], key: str, family: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KpolicyError(f"[family.{family}] {key} must be a list of strings", file=where)
    return value


class _ParamIndex:
    """The catalog looked up by what _attach_params asks of it, built once for all families."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.docs_naming: dict[str, list[int]] = {}  # CONFIG_ symbol -> indexes of its docs
        for i, doc in enumerate(catalog.docs):
            for sym in set(doc.config_symbols):
                self.docs_naming.setdefault(sym, []).append(i)
        self.known = {d_name for d in catalog.docs for d_name in d.names}
        self.known |= {r.name for r in catalog.registrations}
        self.switches = switch_params(catalog)
        self.regs_named: dict[str, list[int]] = {}  # name -> indexes of its registrations
        self.built_by: dict[str, list[Registration]] = {}  # option -> its early_param/__setup
        for i, reg in enumerate(catalog.registrations):
            self.regs_named.setdefault(reg.name, []).append(i)
            if reg.built_if is not None and reg.kind in ("early_param", "__setup"):
                self.built_by.setdefault(reg.built_if, []).append(reg)



def _attach_params(
    fam: _Builder, index: _ParamIndex, syms: Mapping[str, Symbol], choices: Mapping[str, Choice]
) -> None:
    catalog = index.catalog
    keyset = fam.keyset(choices)
    for i in sorted({i for sym in keyset for i in index.docs_naming.get(sym, ())}):
        doc = catalog.docs[i]
        named = sorted(keyset & set(doc.config_symbols))
        for param in doc.names:
            fam.params.setdefault(param)
            fam.link(param, "param", f"docs name CONFIG_{named[0]}", doc.location)
    known = index.known
    for member in sorted(keyset):
        sym = syms.get(member)
        if sym is None:
            continue
        for m in _HELP_PARAM.finditer(sym.help):
            param = m.group(1)
            if param in known and not param.isdigit():
                fam.params.setdefault(param)
                fam.link(param, "param", f"help of {member} names {param}=", sym.location)
    for key in catalog.static_keys:
        if key.symbol in keyset:
            fam.keys.setdefault(key.name)
            fam.link(key.name, "static_key", f"initial state bound to CONFIG_{key.symbol}",
                     key.location)
            for param in key.params:
                fam.params.setdefault(param)
                fam.link(param, "param", f"its handler writes {key.name}", key.location)
    for reg in index.built_by.get(fam.option, ()):
        if reg.name in fam.params or reg.name in index.switches:
            fam.params.setdefault(reg.name)
            fam.link(reg.name, "param", f"{reg.kind} in a file built by CONFIG_{fam.option}",
                     reg.location)
    for i in sorted(i for param in fam.params for i in index.regs_named.get(param, ())):
        reg = catalog.registrations[i]
        fam.link(reg.name, "param", f"registered by {reg.kind}", reg.location)


def declared_families(
    declarations: Mapping[str, Any],
) -> Iterator[tuple[str, Mapping[str, Any], str]]:
    """(name, table, file) of every [family.NAME] in rules/families/*.toml."""
    for stem, data in sorted(declarations.get("families", {}).items()):
        for name, table in sorted(data.get("family", {}).items()):
            if isinstance(table, Mapping):
                yield name, table, f"rules/families/{stem}.toml"


def family_declaration(declarations: Mapping[str, Any], family: Family) -> Mapping[str, Any]:
    """The rules/families table declared for FAMILY (by name or option), or an empty one."""
    for name, table, _where in declared_families(declarations):
        if name in (family.name, family.option) or table.get("option") == family.option:
            return table
    return {}

