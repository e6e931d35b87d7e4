"""The boot-parameter catalog: documentation entries and C registrations of one tree, joined by
the name the kernel matches (`-` and `_` are the same letter to the kernel's parameq)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from kpolicy.cache import Cache
from kpolicy.kconfig.model import Location
from kpolicy.kernel import fold_param
from kpolicy.params.docs import legacy_names
from kpolicy.params.model import Catalog, DocEntry, Registration
from kpolicy.tree import KernelTree

# Registrations of boot parameters (module parameters are documented by modinfo).
BOOT_KINDS = ("early_param", "__setup", "core_param")
# Parameter parsers and formats that make a parameter an on/off switch of a feature.
SWITCH_PARSERS = frozenset({"kstrtobool", "strtobool", "lookup_constant", "strcmp", "match_string"})
SWITCH_FORMATS = frozenset({"bool", "enum"})


@dataclass(frozen=True)
class ParamInfo:
    """One parameter name with its documentation (if any) and every registration of it."""

    name: str  # the documented spelling when there is one, else the registered one
    doc: Optional[DocEntry]
    registrations: tuple[Registration, ...]
    # Where it is documented outside its own kernel-parameters.txt entry: the entry that names
    # it as its legacy name (docs.legacy_names: slub_debug under slab_debug), an entry of
    # catalog.other_docs (Documentation/scsi/scsi-parameters.rst), a registration's __uml_help,
    # else a subsystem document under Documentation/ (catalog.doc_mentions: stmmaceth=).
    elsewhere: Optional[Location] = None


def build_catalog(tree: KernelTree, cache: Optional[Cache] = None, jobs: int = 1) -> Catalog:
    """The catalog of TREE: kernel-parameters.txt entries, C registrations, static keys, names
    read straight from the command line, and the Kconfig symbols defined anywhere in the tree.
    JOBS: processes that scan the C files when the cache lacks them."""
    from kpolicy.kconfig.scan import defined_symbols
    from kpolicy.params.docs import load_docs, load_other_docs
    from kpolicy.params.scan import scan_all

    docs = load_docs(tree, cache)
    regs, keys, reads = scan_all(tree, cache, jobs)
    return Catalog(version=tree.version, docs=docs, registrations=regs, static_keys=keys,
                   kconfig_symbols=defined_symbols(tree, cache), command_line_reads=reads,
                   other_docs=load_other_docs(tree),
                   doc_mentions=_documented_in_docs(tree, regs, cache))


def _documented_in_docs(tree: KernelTree, regs: Sequence[Registration],
                        cache: Optional[Cache]) -> tuple[tuple[str, Location], ...]:
    """The boot registrations of REGS a document under Documentation/ describes (mentions)."""
    from kpolicy.params.mentions import document_mentions, documented_in

    names: dict[str, bool] = {}
    for reg in regs:
        if reg.kind in BOOT_KINDS and reg.name:
            key = fold_param(reg.name.split("=", 1)[0])
            # __setup("name=") takes only `name=`; a name registered both ways too
            names[key] = names.get(key, False) or (reg.kind == "__setup" and reg.setup_has_equals)
    found = documented_in(document_mentions(tree, cache), names)
    return tuple(sorted(found.items()))


def catalog_lookup(catalog: Catalog) -> Mapping[str, ParamInfo]:
    """Every parameter name of CATALOG, keyed by fold_param(name), in sorted key order.

    A name documented twice keeps its first entry; a stacked entry gives each of its names;
    a __setup string with a value written in ("powersave=off") counts under its name.
    """
    docs: dict[str, DocEntry] = {}
    spelled: dict[str, str] = {}
    for entry in catalog.docs:
        for name in entry.names:
            key = fold_param(name)
            docs.setdefault(key, entry)
            spelled.setdefault(key, name)
    regs: dict[str, list[Registration]] = {}
    for reg in catalog.registrations:
        # __setup("powersave=off") is parameter powersave with its value written in (the
        # kernel matches __setup strings as prefixes of "name=value").
        name = reg.name.split("=", 1)[0] if reg.kind == "__setup" else reg.name
        key = fold_param(name)
        regs.setdefault(key, []).append(reg)
        spelled.setdefault(key, name)
    elsewhere: dict[str, Location] = {}
    for entry in catalog.docs:
        for legacy in legacy_names(entry):
            elsewhere.setdefault(fold_param(legacy), entry.location)
    for entry in catalog.other_docs:
        for name in entry.names:
            elsewhere.setdefault(fold_param(name), entry.location)
    for key, found in regs.items():
        helped = next((r.help_at for r in found if r.help_at is not None), None)
        if helped is not None:
            elsewhere.setdefault(key, helped)
    for key, where in catalog.doc_mentions:
        elsewhere.setdefault(key, where)
    for key, where in _documented_with_module_prefix(regs, docs):
        elsewhere.setdefault(key, where)
    return {
        key: ParamInfo(spelled[key], docs.get(key), tuple(regs.get(key, ())), elsewhere.get(key))
        for key in sorted(spelled)
    }


def _documented_with_module_prefix(regs: Mapping[str, list[Registration]],
                                   docs: Mapping[str, DocEntry]) -> Iterator[tuple[str, Location]]:
    """Boot registrations whose file registers the same name as a module parameter that is
    documented: one setting, two spellings. printk.c's early_param("debug_non_panic_cpus")
    sets what module_param(debug_non_panic_cpus) does, documented as
    printk.debug_non_panic_cpus=."""
    in_file = {(r.location.file, fold_param(r.name.split(".", 1)[1])): fold_param(r.name)
               for found in regs.values() for r in found
               if r.kind == "module_param" and "." in r.name}
    for key, found in regs.items():
        for r in found:
            doc = docs.get(in_file.get((r.location.file, key), "")) \
                if r.kind in BOOT_KINDS else None
            if doc is not None:
                yield key, doc.location
                break


def is_switch(catalog: Catalog, param: str) -> bool:
    """True when PARAM turns something on or off: a bool/enum Format, or a bool-style parser."""
    for doc in catalog.docs:
        if param in doc.names and doc.format is not None and doc.format.kind in SWITCH_FORMATS:
            return True
    for reg in catalog.registrations:
        if reg.name == param and (
            reg.parser in SWITCH_PARSERS or reg.param_type in ("bool", "invbool")
        ):
            return True
    return False


def switch_params(catalog: Catalog) -> frozenset[str]:
    """Every parameter is_switch is true for."""
    names = {n for doc in catalog.docs
             if doc.format is not None and doc.format.kind in SWITCH_FORMATS for n in doc.names}
    names.update(reg.name for reg in catalog.registrations
                 if reg.parser in SWITCH_PARSERS or reg.param_type in ("bool", "invbool"))
    return frozenset(names)


def docs_for(catalog: Catalog, param: str) -> tuple[DocEntry, ...]:
    """The documentation entries that describe PARAM."""
    return tuple(d for d in catalog.docs if param in d.names)
