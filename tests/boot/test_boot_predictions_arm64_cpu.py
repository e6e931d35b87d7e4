"""The CPU-dependent arm64 outcomes kpolicy predicts, against Debian's 7.2 cloud-arm64 kernel
booted under qemu (tests/boot/observed-arm64.json): KPTI in force (resolve's "kpti" feature:
kpti=, KASLR on a CPU without E0PD, mitigations=off, Meltdown) and the hwcaps the id-register
override switches hide (arm64.nobti, arm64.nopauth and its fields, arm64.nomte, arm64.nosve,
arm64.nosme), with the emulated CPU's features as Machine facts. Unknown CPU facts give None
("depends on the CPU"), never a guess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import arm64_boot_machine, in_ci, real_configs, real_tree_resolve_side

from kpolicy.params.semantics import FeatureSpec, load_param_rules
from kpolicy.resolve.api import resolve
from kpolicy.resolve.cpuinfo import cpu_facts
from kpolicy.resolve.features import Machine
from kpolicy.resolve.inputs import ConfigInput
from kpolicy.resolve.model import ResolveModel

OBSERVED = Path(__file__).resolve().parent / "observed-arm64.json"
DOC: dict[str, Any] = json.loads(OBSERVED.read_text("utf-8")) if OBSERVED.is_file() else {}
CASES = [c for c in DOC.get("cases", []) if c.get("completed")]
KPTI_FEATURE = "Kernel page table isolation (KPTI)"
# the vulnerabilities files and resolve's feature for each: true is "Mitigation: ..."
# (arm64's own declarations of the names x86 uses: rules/params/vulnerabilities.*.arm64.toml)
VULNERABILITIES = {f: "vulnerabilities." + f for f in ("meltdown", "spec_store_bypass",
                                                        "spectre_v2")}
# the hwcap (/proc/cpuinfo Features) each idreg-override feature shows as
HWCAPS = {"arm64.bti": "bti", "arm64.pauth": "paca", "arm64.mte": "mte", "arm64.sve": "sve",
          "arm64.sme": "sme", "arm64.gcs": "gcs"}

# the id-register fields of the three address-authentication algorithms
PAUTH_FIELDS = {"id_aa64isar1.apa=0", "id_aa64isar2.apa3=0", "id_aa64isar1.api=0"}

pytestmark = pytest.mark.real
_SIDE: dict[str, tuple[ResolveModel, ConfigInput]] = {}


@pytest.fixture(scope="module")
def specs() -> tuple[FeatureSpec, ...]:
    return load_param_rules().features


def _side(specs: tuple[FeatureSpec, ...]) -> tuple[ResolveModel, ConfigInput]:
    if "7.2" not in _SIDE:
        path = real_configs("7.2", "arm64") / str(DOC["config"])
        _SIDE["7.2"] = real_tree_resolve_side("7.2", "arm64", path, specs)
    return _SIDE["7.2"]


def _machine(case: dict[str, Any], known_cpu: bool = True) -> Machine:
    """CASE's machine, with the emulated CPU's features (conftest.ARM64_QEMU_CPU_FACTS)."""
    machine: Machine = arm64_boot_machine(case, DOC, known_cpu)
    return machine


def _cmdline(case: dict[str, Any]) -> str:
    return str(case["cmdline"])


def test_the_record_sees_kpti_both_ways() -> None:
    """The agreement below is not vacuous: KPTI is seen on and off, on both CPU models."""
    if not CASES:
        msg = f"{OBSERVED} is missing: run scripts/boot-oracle --arch arm64"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    seen = {(c.get("cpu", "max"), KPTI_FEATURE in c["cpu_features"]) for c in CASES}
    assert {("max", True), ("max", False), ("cortex-a57", True), ("cortex-a57", False)} <= seen


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_cpu_dependent_predictions_match_the_boot(
    specs: tuple[FeatureSpec, ...], case: dict[str, Any]
) -> None:
    model, config = _side(specs)
    machine = _machine(case)
    res = resolve(model, config, _cmdline(case), specs=specs, machine=machine)
    states = {f.name: f for f in res.features}
    predicted: dict[str, Any] = {"kpti": states["kpti"].effective}
    observed: dict[str, Any] = {"kpti": KPTI_FEATURE in case["cpu_features"]}
    for name, hwcap in HWCAPS.items():
        predicted[name] = states[name].effective
        observed[name] = hwcap in case["hwcaps"]
    assert predicted == observed


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_vulnerabilities_files_match_the_boot(
    specs: tuple[FeatureSpec, ...], case: dict[str, Any]
) -> None:
    """Each boot's meltdown, spec_store_bypass and spectre_v2 files: "Mitigation: ..." where
    resolve says the feature is in force, "Vulnerable" where it says not; "Not affected" (a
    Meltdown-safe CPU) only where the machine fact says the CPU is safe."""
    model, config = _side(specs)
    machine = _machine(case)
    res = resolve(model, config, _cmdline(case), specs=specs, machine=machine)
    states = {f.name: f for f in res.features}
    for file, name in VULNERABILITIES.items():
        text = case["features"]["vulnerabilities." + file]
        safe = file == "meltdown" and machine.cpu_lacks("meltdown_safe") is False
        if safe or text == "Not affected":
            assert safe and text == "Not affected", file
            continue
        assert text.startswith("Mitigation: ") or text == "Vulnerable", (file, text)
        assert states[name].effective is text.startswith("Mitigation: "), (file, text)


def test_the_record_sees_the_vulnerabilities_both_ways() -> None:
    """The agreement above is not vacuous: spec_store_bypass and spectre_v2 are seen mitigated
    and vulnerable, spec_store_bypass both ways on one CPU model."""
    if not CASES:
        pytest.skip(f"{OBSERVED} is missing")
    seen = {(c.get("cpu", "max"), f, c["features"]["vulnerabilities." + f][:4])
            for c in CASES for f in ("spec_store_bypass", "spectre_v2")}
    assert {("max", "spec_store_bypass", "Miti"), ("max", "spec_store_bypass", "Vuln"),
            ("cortex-a57", "spectre_v2", "Vuln"), ("max", "spectre_v2", "Miti")} <= seen


def test_without_cpu_facts_vulnerabilities_depend_on_the_cpu(
    specs: tuple[FeatureSpec, ...]
) -> None:
    """No CPU facts: the three files depend on the CPU (None), except where the command line
    alone decides (ssbd=force-off, mitigations=off: spec_store_bypass vulnerable; KPTI forced
    by kpti=)."""
    if not CASES:
        pytest.skip(f"{OBSERVED} is missing")
    model, config = _side(specs)
    base = _machine(CASES[0], known_cpu=False)
    for cmdline, want in (("", (None, None, None)), ("kpti=1", (True, None, None)),
                          ("ssbd=force-off", (None, False, None)),
                          ("nokaslr mitigations=off", (False, False, None))):
        res = resolve(model, config, cmdline, specs=specs, machine=base)
        states = {f.name: f.effective for f in res.features}
        assert tuple(states[n] for n in VULNERABILITIES.values()) == want, cmdline


def test_without_cpu_facts_kpti_depends_on_the_cpu(specs: tuple[FeatureSpec, ...]) -> None:
    """No CPU facts: KPTI with KASLR on is "depends on CPU" (None); kpti= still decides, and
    the hwcaps stay at what config and command line say (true unless a switch hides them)."""
    if not CASES:
        pytest.skip(f"{OBSERVED} is missing")
    model, config = _side(specs)
    base = _machine(CASES[0], known_cpu=False)
    for cmdline, want in (("", None), ("kpti=0", False), ("kpti=1", True),
                          ("nokaslr mitigations=off", False), ("nokaslr", None)):
        res = resolve(model, config, cmdline, specs=specs, machine=base)
        kpti = next(f for f in res.features if f.name == "kpti")
        assert kpti.effective is want, cmdline
        if want is None:  # the reason names what is unknown
            assert "depends on the CPU" in kpti.why and kpti.as_json()["effective"] is None
    res = resolve(model, config, "arm64.nobti", specs=specs, machine=base)
    states = {f.name: f for f in res.features}
    assert states["arm64.bti"].effective is False and states["arm64.pauth"].effective is True


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_facts_from_the_boots_own_cpuinfo_never_guess(
    specs: tuple[FeatureSpec, ...], case: dict[str, Any]
) -> None:
    """The CPU facts read from each boot's own /proc/cpuinfo Features line (what the running
    kernel made of its CPU): the hwcaps are predicted as seen, and KPTI, which needs E0PD and
    Meltdown (no hwcaps), is either predicted right or left "depends on the CPU"; so is
    address authentication when only some algorithm fields are zeroed (the CPU's algorithm is
    no hwcap)."""
    model, config = _side(specs)
    facts = cpu_facts("Features\t: " + " ".join(case["hwcaps"]) + "\n")
    assert facts is not None
    machine = Machine(ram_mib=case.get("mem"), secure_boot=False,
                      kaslr_seed=_machine(case).kaslr_seed, cpu_features=facts.present,
                      cpu_known=facts.known)
    res = resolve(model, config, _cmdline(case), specs=specs, machine=machine)
    states = {f.name: f for f in res.features}
    words = set(_cmdline(case).partition(" -- ")[0].split())
    some_fields = 0 < len(words & PAUTH_FIELDS) < len(PAUTH_FIELDS)
    for name, hwcap in HWCAPS.items():
        if name == "arm64.pauth" and some_fields and states[name].effective is None:
            assert "pauth_" in states[name].why, states[name].why
            continue
        assert states[name].effective is (hwcap in case["hwcaps"]), name
    kpti = states["kpti"].effective
    assert kpti is None or kpti is (KPTI_FEATURE in case["cpu_features"])
