"""/proc/cpuinfo read into Machine CPU facts (kpolicy.resolve.cpuinfo), on real cpuinfo text: the
"Features" lines the arm64 boots recorded (tests/boot/observed-arm64.json: Debian's 7.2
cloud-arm64 kernel on qemu's -cpu max and cortex-a57) and this machine's own /proc/cpuinfo."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from kpolicy.resolve.cpuinfo import ARM64_HWCAP_FACTS, cpu_facts, first_cpu_fields
from kpolicy.resolve.features import Machine
from kpolicy.resolve.inputs import running_machine

OBSERVED = Path(__file__).resolve().parents[1] / "boot" / "observed-arm64.json"
DOC: dict[str, Any] = json.loads(OBSERVED.read_text("utf-8")) if OBSERVED.is_file() else {}
# the boots with no override on the command line: what each emulated CPU has (the hwcap facts)
PLAIN = {"baseline": {"bti", "pauth", "sve", "sme"}, "baseline-mte": {"bti", "pauth", "sve",
                                                                      "sme", "mte"},
         "baseline-a57": set()}


def _features_line(case: dict[str, Any]) -> str:
    """The boot's /proc/cpuinfo Features line, as the oracle recorded its words."""
    return "Features\t: " + " ".join(case["hwcaps"]) + "\n"


def _case(case_id: str) -> dict[str, Any]:
    if not DOC:
        pytest.skip(f"{OBSERVED} is missing")
    return next(c for c in DOC["cases"] if c["id"] == case_id)


@pytest.mark.parametrize("case_id", sorted(PLAIN))
def test_arm64_hwcaps_are_the_cpu_facts(case_id: str) -> None:
    facts = cpu_facts(_features_line(_case(case_id)))
    assert facts is not None
    assert facts.present == PLAIN[case_id]
    # what hwcaps cannot tell stays unknown: E0PD and Meltdown are no hwcaps
    assert facts.known == frozenset(ARM64_HWCAP_FACTS.values())
    machine = Machine(cpu_features=facts.present, cpu_known=facts.known)
    assert machine.cpu_lacks("e0pd") is None and machine.cpu_lacks("meltdown_safe") is None
    assert machine.cpu_lacks("bti") is ("bti" not in PLAIN[case_id])


def test_an_override_hides_the_hwcap_the_running_kernel_shows() -> None:
    """arm64.nopauth on -cpu max: the running kernel shows no paca (what it made of its CPU)."""
    facts = cpu_facts(_features_line(_case("nopauth")))
    assert facts is not None and "pauth" not in facts.present and "bti" in facts.present


def test_no_processor_fields_no_facts() -> None:
    assert cpu_facts("") is None and first_cpu_fields("") == {}


def test_this_machines_cpuinfo() -> None:
    """The running machine's own /proc/cpuinfo, read as running_machine() reads it."""
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        pytest.skip("no /proc/cpuinfo")
    text = path.read_text()
    fields = first_cpu_fields(text)
    assert fields.get("processor") == "0"  # the first block's, though every CPU has one
    machine = running_machine()
    if os.uname().machine == "x86_64":
        assert "flags" in fields and "bugs" in fields
        affected = "cpu_meltdown" in fields["bugs"].split()
        assert machine.cpu_lacks("meltdown_safe") is affected
        assert machine.cpu_lacks("bti") is None and machine.cpu_lacks("e0pd") is None
    elif os.uname().machine == "aarch64":
        hwcaps = fields["Features"].split()
        assert machine.cpu_lacks("bti") is ("bti" not in hwcaps)
        assert machine.cpu_lacks("meltdown_safe") is None
