"""What resolve reports beside the declared features (rules/params/): the options family
discovery found, which no semantics cover, and what resolve knows about the machine that boots.
Nothing is inferred from a symbol's name: an undeclared option shows its Kconfig value only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Optional

from kpolicy.families.model import Family
from kpolicy.kernel import fold_param
from kpolicy.params.semantics import FeatureSpec


@dataclass(frozen=True)
class Machine:
    """What resolve knows about the machine that boots; None: unknown."""

    ram_mib: Optional[int] = None  # memory the kernel can use (MemTotal), or installed RAM
    secure_boot: Optional[bool] = None
    # whether the boot finds a KASLR seed (arm64: /chosen/kaslr-seed or the CPU's RNDR)
    kaslr_seed: Optional[bool] = None
    # the CPU's features, as kpolicy names them (arm64: "bti", "pauth", "mte", "sve", "sme",
    # "e0pd", "meltdown_safe"); None: unknown, so a CPU-dependent outcome stays "depends on CPU"
    cpu_features: Optional[frozenset[str]] = None
    # the facts cpu_features speaks for (one of them not in it: the CPU lacks it); None: all
    cpu_known: Optional[frozenset[str]] = None

    def cpu_lacks(self, fact: str) -> Optional[bool]:
        """Whether the CPU lacks FACT (None: unknown)."""
        if self.cpu_features is None or (self.cpu_known is not None
                                         and fact not in self.cpu_known):
            return None
        return fact not in self.cpu_features


NO_MACHINE = Machine()  # nothing known about the machine


@dataclass(frozen=True)
class DiscoveredOption:
    """A Kconfig option family discovery found and rules/params/ does not declare: what it does
    at boot is unknown to kpolicy, so only its Kconfig value is reported, never an on/off."""

    option: str
    value: str  # the config's value ("n" when unset)
    params: tuple[str, ...]  # the boot parameters discovery tied to it (semantics unknown)
    companion: Optional[str]  # its *_DEFAULT companion symbol, if discovery found one

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"value": self.value, "semantics": "unknown"}
        if self.params:
            out["params"] = list(self.params)
        if self.companion:
            out["default_companion"] = self.companion
        return out


def discovered_options(
    families: Iterable[Family], declared: Iterable[FeatureSpec], values: Mapping[str, str]
) -> tuple[DiscoveredOption, ...]:
    """The discovered families no declaration covers, each with VALUES' value of its option."""
    declared = tuple(declared)
    covered = {fold_param(p) for s in declared for p in s.params}
    names = {s.name for s in declared} | {s.build for s in declared if s.build}
    out = {}
    for fam in families:
        if fam.option in names or any(fold_param(p) in covered for p in fam.params):
            continue
        companion = fam.default_companion if fam.companion_kind else None
        out[fam.option] = DiscoveredOption(fam.option, values.get(fam.option, "n"),
                                           tuple(fam.params), companion)
    return tuple(sorted(out.values(), key=lambda o: o.option))
