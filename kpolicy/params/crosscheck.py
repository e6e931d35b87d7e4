"""Cross-checks of kernel-parameters.txt against the C registrations and Kconfig.

Each issue has a stable `kind`, which the linter wraps into one rule:
- "doc-orphan": a documented name no C code registers, nor reads from the raw command line,
  nor hands to the handler of a __setup("prefix") without "=" that it starts with; entries
  that only point to another document (`ALSA [HW,ALSA]`, _is_pointer) or whose title is a
  topic (`watchdog timers [HW,WDT]`, DocEntry.topic) are not parameters, those tagged BOOT
  are the boot loader's (`vga=`), and
  words documented as init's (`S [KNL] Run init in single mode`, _is_init_word) are passed to
  init on purpose: init/main.c unknown_bootoption hands every word no registration takes to
  init, as an argument (no "=") or an environment variable.
- "undocumented": an early_param, __setup or core_param that kernel-parameters.txt does not
  document, nor names as an entry's legacy name ("(slub_debug legacy name also accepted for
  now)" under slab_debug: docs.legacy_names), nor a document in its layout that it points to
  (Documentation/scsi/
  scsi-parameters.rst, catalog.other_docs), nor UML's __uml_help (Registration.help_at), nor
  a subsystem document under Documentation/ as `name=` or in a boot-parameter sentence
  (catalog.doc_mentions, kpolicy.params.mentions): ParamInfo.elsewhere. A registration whose
  handler only prints (Registration.only_warns: elevator= "does not have any effect anymore")
  needs no documentation.
- "module-undocumented": a module parameter of code that is only ever built in, that
  kernel-parameters.txt does not document (mostly runtime tunables under
  /sys/module/*/parameters). Module parameters of code that can be a loadable module are left
  out: `modinfo` documents those.
- "tags": EARLY missing on an early_param (or present on a parameter only registered some
  other way); arch tags naming none of the arches whose code registers the parameter.
- "doc-config-missing": the entry names a CONFIG_ symbol that no Kconfig file defines.
- "format-parser": the `Format:` accepts values the handler's parser rejects.
- "layout": the entry's layout irregularities, as kpolicy.params.docs recorded them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from kpolicy.kconfig.model import KconfigModel, Location
from kpolicy.kconfig.possible import possible_symbols
from kpolicy.kernel import fold_param, kstrtobool_everywhere
from kpolicy.params.catalog import BOOT_KINDS, ParamInfo, catalog_lookup
from kpolicy.params.model import Catalog, DocEntry, ParamFormat, Registration

KINDS = ("doc-orphan", "undocumented", "module-undocumented", "tags", "doc-config-missing",
         "format-parser", "layout")

# kernel-parameters.rst arch tags -> arch/ directory.
ARCH_TAGS = {
    "ALPHA": "alpha", "ARC": "arc", "ARM": "arm", "ARM64": "arm64", "CSKY": "csky",
    "HEXAGON": "hexagon", "LOONGARCH": "loongarch", "M68K": "m68k", "MICROBLAZE": "microblaze",
    "MIPS": "mips", "NIOS2": "nios2", "OPENRISC": "openrisc", "PARISC": "parisc",
    "PPC": "powerpc", "RISCV": "riscv", "S390": "s390", "SH": "sh", "SPARC": "sparc",
    "UM": "um", "X86": "x86", "X86-32": "x86", "X86-64": "x86", "X86_64": "x86",
    "XTENSA": "xtensa",
}
# Parsers that accept only the words the handler compares against.
_WORD_PARSERS = frozenset({"lookup_constant", "strcmp", "sysfs_streq", "match_string",
                           "sysfs_match_string", "strncmp"})
_INT_PARSERS = frozenset({"kstrtoint", "kstrtouint", "kstrtoul", "kstrtoull", "kstrtol",
                          "kstrtoll", "kstrtou8", "kstrtou16", "kstrtou32", "kstrtou64",
                          "kstrtos32", "kstrtos16"})


@dataclass(frozen=True)
class CatalogIssue:
    """One disagreement between the documentation, the C code and Kconfig."""

    kind: str  # one of KINDS
    message: str
    location: Location
    param: str
    symbol: Optional[str] = None  # without CONFIG_


def _symbol_types(kconfig: Collection[str]) -> tuple[frozenset[str], Mapping[str, str]]:
    """(names, name -> type) from a collection of names, a name -> type mapping, or the
    ARCH -> KconfigModel mapping the linter holds."""
    if isinstance(kconfig, Mapping):
        values = list(kconfig.values())
        if values and all(isinstance(v, KconfigModel) for v in values):
            types: dict[str, str] = {}
            for model in values:
                # model.types is a plain name -> type map; model.symbols decodes lazily
                known = model.types or {n: model.symbols[n].type for n in model.symbols}
                for name, type_ in known.items():
                    if types.get(name) != "tristate":
                        types[name] = type_
            return frozenset(types), types
        if all(isinstance(v, str) for v in values):
            return frozenset(kconfig), {str(k): str(v) for k, v in kconfig.items()}
    return frozenset(kconfig), {}


def cross_check(
    catalog: Catalog,
    kconfig_symbols: Collection[str] = (),
    arches_registering: Optional[Mapping[str, Collection[str]]] = None,
    srcarches: Optional[Collection[str]] = None,
    direct_reads: Collection[str] = (),
) -> tuple[CatalogIssue, ...]:
    """Every issue of every kind in KINDS, sorted by file, line, kind and parameter.

    KCONFIG_SYMBOLS: symbol names (a name -> type mapping, or ARCH -> KconfigModel, also works:
    types let module parameters of bool-only code count as built in). Symbols the catalog
    found in the tree's Kconfig files count as defined too. ARCHES_REGISTERING overrides, per
    canonical name, the arches taken to register a parameter (default: arch/<a>/ paths).
    SRCARCHES: the arch/ directories being linted; registrations under another arch's directory,
    or built only with a symbol no configuration of a linted arch can set (with KconfigModels:
    kpolicy.kconfig.possible), are never built here, so they are not reported undocumented or
    mis-tagged (an x86_64 lint says nothing of arm64's early_param for kfence.sample_interval,
    nor of lsmsi= under LS_SCFG_MSI). None: every arch.
    DIRECT_READS: words known to be read from the command line without a registration (resolve's
    "direct" declarations), besides the catalog's command_line_reads: never doc-orphans.
    """
    names, types = _symbol_types(kconfig_symbols)
    settable = _settable(kconfig_symbols, catalog.registrations)
    defined = names | catalog.kconfig_symbols
    issues: list[CatalogIssue] = []
    raw = {fold_param(n) for n in (*catalog.command_line_reads, *direct_reads)}
    prefixes = _setup_prefixes(catalog.registrations)
    near = NearNames.index(catalog.registrations, prefixes)
    for key, info in catalog_lookup(catalog).items():
        if info.doc is None and info.elsewhere is not None:
            continue  # a legacy name, scsi-parameters.rst, UML's __uml_help, a subsystem doc
        arches = arches_registering.get(key) if arches_registering is not None else None
        built_with = settable if settable is not None else names if types else None
        here = _built_here(info, frozenset(srcarches), built_with) \
            if srcarches is not None else info
        if here is not None:
            reached = key in raw or any(key.startswith(p) and key != p for p in prefixes)
            issues.extend(_check_param(here, types, arches, reached, info.registrations, near))
    seen_entries: set[int] = set()
    for entry in catalog.docs:
        if id(entry) in seen_entries:
            continue
        seen_entries.add(id(entry))
        if defined:
            for sym in sorted(set(entry.config_symbols)):
                if sym not in defined and not _names_a_family(entry.body, sym, defined):
                    issues.append(CatalogIssue(
                        "doc-config-missing",
                        f"{entry.name}: names CONFIG_{sym}, which no Kconfig file defines",
                        entry.location, entry.name, sym))
        for irr in entry.irregularities:
            issues.append(CatalogIssue("layout", f"{entry.name}: {irr.kind}: {irr.message}",
                                       irr.location, entry.name))
    issues.sort(key=lambda i: (i.location.file, i.location.line, i.kind, i.param, i.message))
    return tuple(issues)


def _settable(kconfig: Collection[str],
              regs: Collection[Registration]) -> Optional[frozenset[str]]:
    """With the linter's ARCH -> KconfigModel mapping: the symbols registrations are built with
    that some configuration of a linted arch can set to y/m (possible_symbols); None otherwise.
    6.12's LS_SCFG_MSI (`def_bool y if SOC_LS1021A || ARCH_LAYERSCAPE`) is defined on x86_64
    but never y there, so lsmsi= is not x86_64's parameter. COMPILE_TEST counts as off: it
    builds another platform's driver for build coverage only (PCI_VERSATILE, `depends on
    ARCH_VERSATILE || COMPILE_TEST`, does not make pci_slot_ignore= x86_64's parameter)."""
    if not isinstance(kconfig, Mapping):
        return None
    models = [m for m in kconfig.values() if isinstance(m, KconfigModel)]
    if not models or len(models) != len(kconfig):
        return None
    roots = {sym for r in regs for sym in r.built_with}
    out: set[str] = set()
    # A symbol settable on one arch needs no other arch's answer: each arch is asked only of
    # the roots none before it could set (possible_symbols answers each root alike whatever
    # other roots it is asked with), the arch with the most symbols first. Asking every arch
    # of every root decoded and judged each arch's whole closure (~7 s of a 22-arch lint).
    for model in sorted(models, key=lambda m: -len(m.symbols)):
        todo = roots - out
        if not todo:
            break
        out |= possible_symbols(model.symbols, todo, model.tool_derived, ("COMPILE_TEST",))
    return frozenset(out & roots)


def _setup_prefixes(regs: Collection[Registration]) -> frozenset[str]:
    """Names of __setup("name") without "=": init/main.c obsolete_checksetup matches them as a
    prefix of any word and hands the handler the rest (__setup("stacktrace") reads
    stacktrace_filter=), so a documented longer word reaches their handler."""
    return frozenset(fold_param(r.name) for r in regs
                     if r.kind == "__setup" and not r.setup_has_equals and r.name)


def _built_here(info: ParamInfo, srcarches: frozenset[str],
                symbols: Optional[frozenset[str]] = None) -> Optional[ParamInfo]:
    """INFO with only the registrations built for SRCARCHES; None when every registration is
    another arch's (the parameter does not exist here: nothing to report of it). SYMBOLS, the
    symbols some linted arch can set (_settable) or at least defines: code built only with a
    symbol outside them is another arch's too, wherever it lives (drivers/s390/ is built only
    with S390); None: no such filter."""
    def here(reg: Registration) -> bool:
        parts = reg.location.file.split("/")
        if parts[0] == "arch" and len(parts) >= 3 and parts[1] not in srcarches:
            return False
        chain = reg.built_with
        return symbols is None or all(sym in symbols for sym in chain)

    kept = tuple(r for r in info.registrations if here(r))
    if len(kept) == len(info.registrations):
        return info
    if not kept:
        return None
    return dataclasses.replace(info, registrations=kept)


def _names_a_family(body: str, sym: str, defined: frozenset[str]) -> bool:
    """The entry writes CONFIG_SYM_* or CONFIG_SYM_{A,B} for symbols that exist."""
    return bool(re.search(rf"CONFIG_{re.escape(sym)}_[*{{\[<]", body)) and any(
        d.startswith(sym + "_") for d in defined)


@dataclass(frozen=True)
class NearNames:
    """What the kernel reads that a doc-orphan's name may be mistaken for, each list sorted and
    keyed by the orphan's folded name."""

    prefixed: Mapping[str, Sequence[str]]  # nr_uarts: module parameters 8250.nr_uarts, ...
    of_module: Mapping[str, Sequence[str]]  # c101: the module's parameters c101.hw, ...
    dotted: Mapping[str, Sequence[str]]  # memchunk: __setup prefixes "memchunk.", ...

    @classmethod
    def index(cls, regs: Collection[Registration], setup_prefixes: Collection[str]) -> NearNames:
        """REGS' module parameters by their name without the module prefix and by their
        module, and SETUP_PREFIXES (_setup_prefixes) that continue with a "." by the word
        before it."""
        by_name: dict[str, set[str]] = {}
        by_module: dict[str, set[str]] = {}
        for r in regs:
            if r.kind == "module_param" and "." in r.name:
                module, bare = r.name.split(".", 1)
                by_name.setdefault(fold_param(bare), set()).add(r.name)
                by_module.setdefault(fold_param(module), set()).add(r.name)
        dotted: dict[str, set[str]] = {}
        for p in setup_prefixes:
            stem, dot, _ = p.partition(".")
            if dot:
                dotted.setdefault(stem, set()).add(p)
        return cls(*({k: sorted(v) for k, v in index.items()}
                     for index in (by_name, by_module, dotted)))


# names an orphan's message lists, at most (the rest counted)
_LISTED = 4


def _orphan_message(doc: DocEntry, name: str, near: Optional[NearNames]) -> str:
    """The doc-orphan message, naming what the kernel reads that the entry may have meant
    (NEAR), so that it stays literally true where one exists. Module parameters named NAME
    after their prefix are what the entry should say when it names their module (in its tags
    or text): `disable=` [IPV6] is read only as ipv6.disable; otherwise they are listed as what
    the kernel reads (`nr_uarts=` [SERIAL]: 8250.nr_uarts; `gamma=` [HW,DRM]: tcp_vegas.gamma,
    no relative). An entry named after a module (`c101=`) lists that module's parameters, and
    one whose word only a __setup prefix continues (`memchunk=`; __setup("memchunk.")) says
    so."""
    unregistered = f"{name}: documented, but no early_param, __setup, core_param or " \
                   "module_param registers it"
    if "." in name or near is None:
        return unregistered
    key = fold_param(name)
    prefixed = near.prefixed.get(key, ())
    if prefixed:
        words = {_bare_word(w)
                 for w in re.split(r"[^A-Za-z0-9_-]+", " ".join((*doc.tags, doc.body)))}
        read_as = [r for r in prefixed if _bare_word(r.split(".", 1)[0]) in words]
        if read_as:
            return f"{name}: documented without its module prefix: the kernel reads only " \
                   f"{', '.join(read_as)}"
        return f"{name}: documented, but nothing registers it without a module prefix; " \
               f"the kernel reads {_listed(prefixed)}"
    if key in near.of_module:
        return f"{unregistered}; {name} is a module, whose parameters are " \
               f"{_listed(near.of_module[key])}"
    if key in near.dotted:
        quoted = [f'"{p}"' for p in near.dotted[key]]
        return f"{unregistered}; a __setup takes only words that start with {_listed(quoted)}"
    return unregistered


def _listed(names: Sequence[str]) -> str:
    """NAMES joined for a message, at most _LISTED of them, the rest counted."""
    more = len(names) - _LISTED
    return ", ".join(names[:_LISTED]) + (f" and {more} more" if more > 0 else "")


def _bare_word(word: str) -> str:
    """WORD compared as a module name: case, '_' and '-' ignored (IP_VS_FTP ~ ip_vs_ftp)."""
    return word.lower().replace("_", "").replace("-", "")


def _check_param(info: ParamInfo, types: Mapping[str, str],
                 arches: Optional[Collection[str]], read_raw: bool,
                 every_reg: tuple[Registration, ...] = (),
                 near: Optional[NearNames] = None) -> list[CatalogIssue]:
    """INFO's issues; EVERY_REG, its registrations on every arch (INFO's may be only the
    linted arches'): an arch tag is judged against all of them, so a [HEXAGON] entry is not
    mis-tagged because an x86_64 lint leaves hexagon's registration out. NEAR: what the
    kernel reads that a doc-orphan's name may be mistaken for (_orphan_message)."""
    doc, regs = info.doc, info.registrations
    if doc is None:
        return [_undocumented(info.name, r) for r in regs if _needs_doc(r, types)][:1]
    if not regs:
        if (_is_pattern(info.name) or read_raw or doc.topic or _is_pointer(doc)
                or _BOOT_LOADER_TAG in doc.tags or _is_init_word(doc)):
            return []
        return [CatalogIssue("doc-orphan", _orphan_message(doc, info.name, near),
                             doc.location, info.name)]
    out = _tag_issues(info.name, doc, regs, arches, every_reg or regs)
    if doc.format is not None:
        out.extend(_format_issues(info.name, doc, doc.format, regs))
    return out


# "Parameters denoted with BOOT are actually interpreted by the boot loader, and have no
# meaning to the kernel directly" (kernel-parameters.rst): `vga= [BOOT,X86-32]` owes no
# registration.
_BOOT_LOADER_TAG = "BOOT"

# An entry whose text says init, not the kernel, takes the word: "Run init in single mode" (S,
# in 6.1-7.2 the only such entry), "passed to init", "handled by init".
_INIT_WORD = re.compile(r"\b(?:runs?|starts?|boots?)\s+init\b|"
                        r"\b(?:passed|handed|given)\s+(?:on\s+)?to\s+(?:the\s+)?init\b|"
                        r"\b(?:handled|read|interpreted|used)\s+by\s+(?:the\s+)?init\b",
                        re.IGNORECASE)


def _is_init_word(doc: DocEntry) -> bool:
    """DOC documents a word init consumes: the kernel registers none on purpose, and
    init/main.c unknown_bootoption passes it to init (argv without "=", else envp)."""
    return bool(_INIT_WORD.search(doc.body))


def _is_pattern(name: str) -> bool:
    """Names that stand for a family of parameters ("<module>.debug", "foo[0-9]")."""
    return any(c in name for c in "<>[]|*{}")


# "See Documentation/sound/alsa-configuration.rst [for details]." as the whole body.
_POINTER = re.compile(r"See (?:also )?Documentation/\S+\.(?:rst|txt)"
                      r"(?: for (?:more )?(?:details|info|information))?\.?")


def _is_pointer(doc: DocEntry) -> bool:
    """An entry that only points to another document (6.12/7.2 `ALSA [HW,ALSA]`): no "=", no
    description, and a body that is one "See Documentation/<file>" sentence. It names a topic,
    not a parameter, so no registration is owed. A pointer to a source file ("See
    drivers/net/irda/sa1100_ir.c.") does not count: those name parameters of that code."""
    return not doc.takes_value and _POINTER.fullmatch(" ".join(doc.body.split())) is not None


def _needs_doc(reg: Registration, types: Mapping[str, str]) -> bool:
    if reg.only_warns:  # kept to warn that the word does nothing now (elevator=)
        return False
    if reg.kind in BOOT_KINDS:
        return True
    if reg.module_only:
        return False
    chain = reg.built_with
    if not types:  # without types only plainly built-in code (obj-y all the way) is sure
        return not chain
    return all(types.get(sym) == "bool" for sym in chain)


def _undocumented(name: str, reg: Registration) -> CatalogIssue:
    kind = "undocumented" if reg.kind in BOOT_KINDS else "module-undocumented"
    return CatalogIssue(kind, f"{name}: {reg.kind} registered here is not in "
                        "kernel-parameters.txt", reg.location, name, reg.built_if)


def _reg_arches(regs: tuple[Registration, ...]) -> Optional[frozenset[str]]:
    """The arches whose arch/ code registers the parameter; None when generic code does."""
    arches: set[str] = set()
    for reg in regs:
        parts = reg.location.file.split("/")
        if parts[0] != "arch" or len(parts) < 3:
            return None
        arches.add(parts[1])
    return frozenset(arches)


def _tag_issues(name: str, doc: DocEntry, regs: tuple[Registration, ...],
                arches: Optional[Collection[str]],
                every_reg: tuple[Registration, ...]) -> list[CatalogIssue]:
    out: list[CatalogIssue] = []
    tags = {t.upper() for t in doc.tags}
    early = [r for r in regs if r.kind == "early_param"]
    if early and "EARLY" not in tags:
        out.append(CatalogIssue("tags", f"{name}: registered with early_param but not tagged "
                                f"EARLY (registered at {early[0].location})", doc.location, name))
    elif "EARLY" in tags and not any(r.kind == "early_param" for r in every_reg):
        # the tag is tree-wide: powerpc's early_param("video") needs it on an x86_64 lint too
        kinds = ", ".join(sorted({r.kind for r in regs}))
        out.append(CatalogIssue("tags", f"{name}: tagged EARLY but registered only as {kinds} "
                                f"(at {regs[0].location})", doc.location, name))
    # a subarch tag names its arch: PPC/PSERIES is PPC ("X86, Intel and AMD only" is prose)
    doc_arches = {ARCH_TAGS[a] for a in (t.split("/", 1)[0].strip() for t in tags)
                  if a in ARCH_TAGS}
    registering = frozenset(arches) if arches is not None else _reg_arches(every_reg)
    if doc_arches and registering and not doc_arches & registering:
        where = ", ".join(f"arch/{a}/" for a in sorted(registering))
        out.append(CatalogIssue(
            "tags", f"{name}: tagged for {', '.join(sorted(doc_arches))} but registered only by "
            f"{where} code", doc.location, name))
    return out


def _format_issues(name: str, doc: DocEntry, fmt: ParamFormat,
                   regs: tuple[Registration, ...]) -> list[CatalogIssue]:
    out: list[CatalogIssue] = []
    for reg in regs:
        problem = _contradiction(fmt, reg.parser)
        if problem:
            out.append(CatalogIssue(
                "format-parser", f"{name}: Format: {' '.join(fmt.raw.split())} but the "
                f"{reg.kind} at {reg.location} parses it with {reg.parser}: {problem}",
                doc.location, name))
    return out


def _contradiction(fmt: ParamFormat, parser: Optional[str]) -> Optional[str]:
    """Why a value FMT promises cannot reach PARSER, or None when they agree (or are unknown)."""
    if fmt.kind == "enum" and len(fmt.choices) < 2:
        return None  # "Format: n", "Format: seconds": a placeholder, not a list of words
    if parser == "kstrtobool":
        if fmt.kind == "enum":
            bad = [w for w in fmt.choices if kstrtobool_everywhere(w) is not True]
            if bad:
                return f"kstrtobool rejects {', '.join(repr(w) for w in bad)}"
        if fmt.kind in ("int", "size"):
            return "kstrtobool takes y/n/1/0/on/off, not a number"
    if parser in _INT_PARSERS and fmt.kind == "enum":
        bad = [w for w in fmt.choices if not w.lstrip("+-").isdigit()]
        if bad:
            return f"{parser} takes a number, not {', '.join(repr(w) for w in bad)}"
    if parser in _INT_PARSERS and fmt.kind == "bool":
        return f"{parser} takes a number, so y/n/on/off are rejected"
    if parser in _WORD_PARSERS and fmt.kind in ("int", "bool"):
        return "the handler compares the value with fixed words"
    return None

