"""The features resolve reports: rules/params/'s declared ones, plus those inferred from the
discovered families, and what resolve knows about the machine that boots."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

from kpolicy.families.model import Family
from kpolicy.kernel import fold_param
from kpolicy.params.model import Registration
from kpolicy.params.semantics import (
    Declaration,
    FeatureSpec,
    infer_semantics,
    registration_kind,
)


@dataclass(frozen=True)
class Machine:
    """What resolve knows about the machine that boots; None: unknown."""

    ram_mib: Optional[int] = None  # memory the kernel can use (MemTotal), or installed RAM
    secure_boot: Optional[bool] = None
    # whether the boot finds a KASLR seed (arm64: /chosen/kaslr-seed or the CPU's RNDR)
    kaslr_seed: Optional[bool] = None


NO_MACHINE = Machine()  # nothing known about the machine


def _plain_bool(reg: Registration) -> bool:
    """Whether REG's value is a plain bool its handler stores as it reads it."""
    if reg.kind in ("module_param", "core_param"):
        return reg.param_type == "bool"
    return reg.parser == "kstrtobool" and reg.kind in ("early_param", "__setup")


def inferred_features(
    families: Iterable[Family],
    registrations: Iterable[Registration],
    declared: Iterable[FeatureSpec],
) -> tuple[FeatureSpec, ...]:
    """Specs for discovered families no declaration covers: build-only ones, and bool switches
    whose parameter the command-line engine reads with the registration's inferred semantics."""
    declared = tuple(declared)
    covered = {fold_param(p) for s in declared for p in s.params}
    names = {s.name for s in declared} | {s.build for s in declared if s.build}
    regs = {fold_param(r.name): r for r in registrations}
    out = []
    for fam in families:
        if fam.option in names or any(fold_param(p) in covered for p in fam.params):
            continue
        if not fam.params:  # build-only: the build option is the feature
            out.append(_inferred(fam.option, (), fam.option, None))
            continue
        reg = regs.get(fold_param(fam.params[0]))
        if reg is None or not _plain_bool(reg) or fam.companion_kind == "choice":
            continue  # a value domain discovery cannot know: declare it in rules/params/
        companion = fam.default_companion if fam.companion_kind == "bool" else None
        handler = Declaration(fam.params[0], registration_kind(reg), infer_semantics(reg),
                              "inferred", "discovered")
        out.append(_inferred(fam.params[0], (handler,), fam.option, companion))
    return tuple(sorted(out, key=lambda s: s.name))


def _inferred(name: str, handlers: tuple[Declaration, ...], option: str,
              companion: Optional[str]) -> FeatureSpec:
    """A bool feature discovery found: on by default unless a companion symbol decides."""
    return FeatureSpec(
        name=name, handlers=handlers, value_type="bool", domain=(), merge="last-wins",
        build=option, arches=(), default_symbol=companion, default_invert=False,
        default_choice=(), default_value=None if companion or not handlers else True,
        unbuilt=False, lsm=None, lsm_early=None, machine=(), file="discovered", inferred=True,
    )
