"""A feature family: capability -> option -> default companion -> boot parameter -> static key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from kpolicy.kconfig.model import Location


@dataclass(frozen=True)
class Link:
    """Why discovery tied one member to the family (shown by `kpolicy families`)."""

    member: str  # symbol, parameter or static key name
    role: str  # "capability", "option", "default", "param", "static_key"
    evidence: str  # e.g. "docs: Default is CONFIG_X", "depends on HAVE_ARCH_X"
    location: Optional[Location] = None


@dataclass(frozen=True)
class Family:
    name: str  # the build option's name, e.g. "RANDOMIZE_KSTACK_OFFSET"
    option: str  # the build option symbol
    capability: Optional[str] = None  # HAVE_ARCH_* / ARCH_HAS_* / ARCH_SUPPORTS_*
    default_companion: Optional[str] = None  # symbol, or choice name when companion_kind="choice"
    companion_kind: Optional[str] = None  # "bool", "choice" or None
    params: tuple[str, ...] = ()  # boot parameter names, without "="
    static_keys: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()  # SRCARCHes whose Kconfig selects the capability
    links: tuple[Link, ...] = ()
    declared: bool = False  # declared in rules/families/*.toml rather than discovered
