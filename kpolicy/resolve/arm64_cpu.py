"""arm64 outcomes that hang on the CPU beyond one [[machine]] fact: whether KPTI is in force at
boot (rules/params/kpti.toml: the command line, then KASLR on a CPU without E0PD, then
mitigations=off, then Meltdown). None when the CPU facts it needs are unknown: "depends on CPU"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

from kpolicy.resolve.engine import FeatureState
from kpolicy.resolve.features import Machine


def kpti_forced_by_cmdline(kpti: FeatureState) -> bool:
    """Whether a kpti= word was accepted (then the last one decides, whatever the CPU)."""
    return any(s.kind == "cmdline" and s.state is not None for s in kpti.sources)


def kpti_at_boot(
    features: Mapping[str, FeatureState], machine: Machine, values: Mapping[str, str]
) -> Optional[bool]:
    """Whether arm64 KPTI is in force after boot, from resolve's FEATURES (kpti, kaslr,
    mitigations), the config's VALUES (E0PD counts only with ARM64_E0PD=y) and MACHINE's CPU
    facts "e0pd" and "meltdown_safe"; None: depends on the CPU."""
    kpti = features["kpti"]
    if not kpti.built:
        return False
    if kpti_forced_by_cmdline(kpti):
        return bool(kpti.effective)
    cpu = machine.cpu_features
    kaslr = features.get("kaslr")
    if kaslr is not None and kaslr.effective is True:
        if cpu is None:
            return None
        if "e0pd" not in cpu or values.get("ARM64_E0PD") != "y":
            return True
    mitigations = features.get("mitigations")
    if mitigations is not None and mitigations.effective == "off":
        return False
    if cpu is None:
        return None
    return "meltdown_safe" not in cpu
