"""The boot-parameter catalog's model: documented entries, C registrations, static keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from kpolicy.kconfig.model import Location


@dataclass(frozen=True)
class ParamFormat:
    """A parsed `Format:` line."""

    raw: str
    kind: str  # "bool", "enum", "int", "size", "list", "string", "unknown", ...
    choices: tuple[str, ...] = ()  # enum words, e.g. ("no", "yes")


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


@dataclass(frozen=True)
class StaticKey:
    """A static key whose initial state is bound to a Kconfig symbol."""

    name: str
    symbol: Optional[str]  # without CONFIG_; None when the key is a plain true/false key
    initial: str  # "config" (follows the symbol), "true" or "false"
    location: Location


@dataclass(frozen=True)
class Catalog:
    """Everything a tree says about its boot parameters."""

    version: str
    docs: tuple[DocEntry, ...]
    registrations: tuple[Registration, ...]
    static_keys: tuple[StaticKey, ...]
