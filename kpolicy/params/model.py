"""The boot-parameter catalog's model: documented entries, C registrations, static keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from kpolicy.kconfig.model import Location


@dataclass(frozen=True)
class ParamFormat:
    """A parsed `Format:` line."""

    raw: str
    kind: str  # "bool", "enum", "int", "size", "list", "string", "union", "unknown", ...
    choices: tuple[str, ...] = ()  # enum words, e.g. ("no", "yes"); size suffixes, e.g. ("K", "M")
    default: Optional[str] = None  # the enum word marked "(default)"
    element: Optional[ParamFormat] = None  # a list's element format
    alternatives: tuple[ParamFormat, ...] = ()  # a union's members ("nn[KMG] | nn%")


@dataclass(frozen=True)
class DocCondition:
    """A stated condition for a parameter to have effect, e.g. "no effect if CONFIG_64BIT=n"."""

    symbol: str  # without CONFIG_
    value: str  # the value the symbol must have for the parameter to matter: "y" or "n"
    sentence: str  # the sentence that states it, whitespace collapsed


@dataclass(frozen=True)
class Irregularity:
    """A layout problem in a documentation entry: accepted, and reported by the linter."""

    kind: str  # e.g. "spaces-around-equals", "tags-on-wrong-line", "unknown-tag"
    message: str
    location: Location


@dataclass(frozen=True)
class DocEntry:
    """One entry of Documentation/admin-guide/kernel-parameters.txt."""

    names: tuple[str, ...]  # without the trailing "="; stacked entries give several
    takes_value: bool
    tags: tuple[str, ...]
    body: str
    format: Optional[ParamFormat]
    default_symbols: tuple[str, ...]  # CONFIG_ symbols (without CONFIG_) the default names
    config_symbols: tuple[str, ...]  # every CONFIG_ symbol the entry names (without CONFIG_)
    location: Location
    end_line: int
    irregularities: tuple[Irregularity, ...] = ()
    conditions: tuple[DocCondition, ...] = ()
    spellings: tuple[str, ...] = ()  # each name line's name as written ("gamecon.map[2|3]=")
    value_optional: bool = False  # "name[=value]": the parameter is also valid bare
    topic: str = ""  # words after the name that make the title a topic ("watchdog timers")

    @property
    def name(self) -> str:
        return self.names[0]


@dataclass(frozen=True)
class Registration:
    """One C registration of a boot parameter."""

    kind: str  # "early_param", "__setup", "module_param", "core_param"
    name: str  # the name the kernel matches, without a trailing "=" (dotted for module params)
    location: Location
    handler: Optional[str] = None  # C function for early_param/__setup/module_param_cb
    built_if: Optional[str] = None  # Kconfig symbol (without CONFIG_) that builds the file
    parser: Optional[str] = None  # "kstrtobool", "lookup_constant", "strcmp", "kstrtoint", ...
    param_type: Optional[str] = None  # module_param type: "bool", "int", "charp", "invbool", ...
    setup_has_equals: bool = False  # __setup("name=") rather than __setup("name")
    # Every symbol the Makefiles require to compile the file, outermost directory first;
    # built_if is the last one.
    built_if_chain: tuple[str, ...] = ()
    # Preprocessor conditions around the registration that name CONFIG_ or MODULE, outermost
    # first, as written: "CONFIG_X", "!CONFIG_X", "IS_ENABLED(CONFIG_X) && ...".
    cpp_conditions: tuple[str, ...] = ()
    module_only: bool = False  # the file is listed only in obj-m: never built in
    # Where the C documents it instead of kernel-parameters.txt: UML's __uml_help(handler,
    # "text") next to the registration (`linux --help` prints it).
    help_at: Optional[Location] = None
    # The handler only prints (elevator=: "does not have any effect anymore"): the word is
    # consumed with a warning, there is nothing to document.
    only_warns: bool = False

    @property
    def built_with(self) -> tuple[str, ...]:
        """The symbols the file is compiled with (kbuild's obj-$(CONFIG_...) chain)."""
        return self.built_if_chain or ((self.built_if,) if self.built_if else ())


@dataclass(frozen=True)
class StaticKey:
    """A static key whose initial state is bound to a Kconfig symbol."""

    name: str
    symbol: Optional[str]  # without CONFIG_; None when the key is a plain true/false key
    initial: str  # "config" (follows the symbol), "inverted" (its negation), "true" or "false"
    location: Location
    # "static_key" (DEFINE_STATIC_KEY_*), or "variable" for a plain `x = IS_ENABLED(CONFIG_X)`
    # initial value at file scope (early_param_on_off makes those too).
    kind: str = "static_key"
    # The early_param/__setup/core_param parameters of the same file whose handler writes this
    # key or variable (`var = ...`, `static_branch_enable(&key)`): the boot switches whose
    # default it holds.
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """Everything a tree says about its boot parameters."""

    version: str
    docs: tuple[DocEntry, ...]
    registrations: Sequence[Registration]  # a tuple; a resolve model decodes it lazily
    static_keys: tuple[StaticKey, ...]
    # Every symbol a `config`/`menuconfig` line defines in any Kconfig file, on any arch.
    kconfig_symbols: frozenset[str] = frozenset()
    # Names read straight from the command line with no registration (cmdline_find_option,
    # sysctl and arm64 alias tables): real parameters all the same.
    command_line_reads: frozenset[str] = frozenset()
    # Entries of the other documents in kernel-parameters.txt's layout that it points to
    # (Documentation/scsi/scsi-parameters.rst): they document a parameter too, but only
    # kernel-parameters.txt's own entries are checked for layout, tags and orphans.
    other_docs: tuple[DocEntry, ...] = ()
    # Boot parameters (early_param, __setup, core_param) a subsystem document under
    # Documentation/ describes, fold_param(name) -> where (kpolicy.params.mentions: stmmaceth=
    # in stmmac.rst); documented, like other_docs.
    doc_mentions: tuple[tuple[str, Location], ...] = ()
