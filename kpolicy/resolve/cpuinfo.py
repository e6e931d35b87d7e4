"""The CPU facts /proc/cpuinfo tells, as Machine.cpu_features names them.

arm64: the hwcaps of the "Features" line (arch/arm64/kernel/cpuinfo.c hwcap_str). A hwcap is
shown when the CPU has the feature and the running kernel, with its config and command line,
uses it (an id-register override such as arm64.nobti hides it): so an absent hwcap is what the
running kernel made of its CPU, the right fact for resolving that kernel's own config and
command line, and not proof the silicon lacks it. E0PD and whether the CPU is safe from Meltdown
are no hwcaps: they stay unknown.
x86: the "bugs" line (X86_BUG_* the CPU detection found, whatever the mitigations) tells whether
the CPU is affected by Meltdown (cpu_meltdown). The "flags" line holds nothing the predictions
read: its pti is an outcome of this boot, not a fact of the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

# arm64 hwcap -> kpolicy's fact (rules/params/arm64.*.toml cpu_lacks)
ARM64_HWCAP_FACTS = {"bti": "bti", "paca": "pauth", "sve": "sve", "sme": "sme", "mte": "mte",
                     "gcs": "gcs"}


@dataclass(frozen=True)
class CpuFacts:
    """What /proc/cpuinfo says of the CPU: the facts it has, among those it speaks for."""

    present: frozenset[str]
    known: frozenset[str]  # the facts PRESENT speaks for: one not in PRESENT is absent


def first_cpu_fields(text: str) -> dict[str, str]:
    """The "key : value" fields of TEXT's first processor block (keys as written, stripped)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, colon, value = line.partition(":")
        if colon:
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_facts(text: str) -> Optional[CpuFacts]:
    """The facts /proc/cpuinfo TEXT tells (None: none: an unknown layout or arch)."""
    fields = first_cpu_fields(text)
    if "Features" in fields:  # arm64
        hwcaps = set(fields["Features"].split())
        present = frozenset(f for h, f in ARM64_HWCAP_FACTS.items() if h in hwcaps)
        return CpuFacts(present, frozenset(ARM64_HWCAP_FACTS.values()))
    if "bugs" in fields and "flags" in fields:  # x86
        safe = "cpu_meltdown" not in fields["bugs"].split()
        return CpuFacts(frozenset({"meltdown_safe"} if safe else ()), frozenset({"meltdown_safe"}))
    return None
