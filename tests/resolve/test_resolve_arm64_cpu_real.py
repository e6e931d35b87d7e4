"""arm64 rodata=, kpti= and the id-register switches resolved with the real 6.1, 6.12 and 7.2
trees and Debian's cloud-arm64 configs: the version differences pinned (rodata's words changed
between 6.12 and 7.2: "on" went from noalias to full, "full" became an invalid word, "noalias"
appeared; SME is buildable only in 7.2, where arm64.nosve no longer hides it)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import real_configs, real_tree_resolve_side

from kpolicy.params.semantics import FeatureSpec, for_target, load_param_rules
from kpolicy.resolve.api import resolve
from kpolicy.resolve.features import Machine

pytestmark = pytest.mark.real
CONFIG = "config.arm64_none_cloud-arm64"
VERSIONS = ("6.1", "6.12", "7.2")
_SIDES: dict[str, Any] = {}

# (version, cmdline) -> rodata's state
RODATA = {
    ("6.1", ""): "full", ("6.1", "rodata=on"): "noalias", ("6.1", "rodata=full"): "full",
    ("6.1", "rodata=off"): "off", ("6.1", "rodata=noalias"): "full",
    ("6.12", ""): "full", ("6.12", "rodata=on"): "noalias", ("6.12", "rodata=full"): "full",
    ("6.12", "rodata=off"): "off", ("6.12", "rodata=noalias"): "full",
    ("7.2", ""): "full", ("7.2", "rodata=on"): "full", ("7.2", "rodata=full"): "full",
    ("7.2", "rodata=off"): "off", ("7.2", "rodata=noalias"): "noalias",
    ("7.2", "rodata=noalias rodata=full"): "noalias",  # "full" warns, changes nothing
    ("6.12", "rodata=on rodata=noalias"): "noalias",
}


SME_AFTER_NOSVE = {"6.1": (False, False), "6.12": (False, False), "7.2": (True, True)}


@pytest.fixture(scope="module")
def specs() -> tuple[FeatureSpec, ...]:
    return load_param_rules().features


def _side(version: str, specs: tuple[FeatureSpec, ...]) -> Any:
    if version not in _SIDES:
        path = real_configs(version, "arm64") / CONFIG
        _SIDES[version] = real_tree_resolve_side(version, "arm64", path, specs)
    return _SIDES[version]


NO_MACHINE = Machine()


def _states(version: str, cmdline: str, specs: tuple[FeatureSpec, ...],
            machine: Machine = NO_MACHINE) -> dict[str, Any]:
    model, config = _side(version, specs)
    res = resolve(model, config, cmdline, specs=specs, machine=machine)
    return {f.name: f for f in res.features}


@pytest.mark.parametrize(("version", "cmdline"), sorted(RODATA))
def test_rodata_words_per_version(
    specs: tuple[FeatureSpec, ...], version: str, cmdline: str
) -> None:
    assert _states(version, cmdline, specs)["rodata"].effective == RODATA[version, cmdline]


def test_rodata_full_is_refused_on_72_only(specs: tuple[FeatureSpec, ...]) -> None:
    """7.2 takes "rodata=full" to its handler but refuses the word (a warning, no state)."""
    for version, accepted in (("6.12", True), ("7.2", False)):
        rodata = _states(version, "rodata=off rodata=full", specs)["rodata"]
        steps = [s for s in rodata.sources if s.kind == "cmdline" and s.token == "rodata=full"]
        assert steps and (steps[0].state is not None) is accepted, version


@pytest.mark.parametrize("version", VERSIONS)
def test_kpti_and_kaslr_per_version(specs: tuple[FeatureSpec, ...], version: str) -> None:
    """The same KPTI order in every version: kpti= first, KASLR without E0PD next (even under
    mitigations=off), mitigations=off, Meltdown; unknown CPU: depends (None)."""
    old = Machine(kaslr_seed=True, cpu_features=frozenset({"meltdown_safe"}))
    new = Machine(kaslr_seed=True, cpu_features=frozenset({"meltdown_safe", "e0pd"}))
    affected = Machine(kaslr_seed=True, cpu_features=frozenset())
    for machine, cmdline, want in (
        (old, "", True), (old, "nokaslr", False), (old, "kpti=0", False),
        (old, "mitigations=off", True), (new, "", False), (new, "kpti=1", True),
        (affected, "nokaslr", True), (affected, "nokaslr mitigations=off", False),
        (Machine(), "", None), (Machine(), "kpti=off", False),
    ):
        kpti = _states(version, cmdline, specs, machine)["kpti"]
        assert kpti.effective is want, (cmdline, machine)


@pytest.mark.parametrize("version", VERSIONS)
def test_idreg_switches_per_version(specs: tuple[FeatureSpec, ...], version: str) -> None:
    cpu = Machine(cpu_features=frozenset({"bti", "pauth", "sve", "sme"}))
    states = _states(version, "arm64.nosve arm64.nobti", specs, cpu)
    assert states["arm64.sve"].effective is False and states["arm64.bti"].effective is False
    sme = states["arm64.sme"]
    # 6.1, 6.12: ARM64_SME depends on BROKEN (never built); 7.2: built, and nosve keeps it
    assert (sme.built, sme.effective) == SME_AFTER_NOSVE[version]
    assert _states(version, "", specs, cpu)["arm64.sme"].effective is sme.built
    assert states["arm64.mte"].effective is False  # the CPU lacks MTE: off whatever is asked
    assert states["arm64.pauth"].effective is True
    assert _states(version, "arm64.nomte", specs)["arm64.mte"].effective is False


# command line -> address authentication (hwcap paca) on a CPU whose algorithm is QARMA5
# (APA), QARMA3 (APA3), IMP DEF (API) or unknown (None: depends on the CPU). A CPU implements
# one algorithm: zeroing its field hides it, zeroing the others' does not.
PAUTH_FIELDS = {
    "id_aa64isar2.apa3=0 id_aa64isar1.api=0 id_aa64isar1.apa=0": (False, False, False, False),
    "id_aa64isar1.api=0 id_aa64isar1.apa=0 id_aa64isar2.apa3=0 -- x": (False, False, False,
                                                                       False),
    "id_aa64isar1.apa=0 id_aa64isar2.apa3=0": (False, False, True, None),
    "id_aa64isar1.apa=0": (False, True, True, None),
    "id_aa64isar1.api=0": (True, True, False, None),
    "-- id_aa64isar1.apa=0": (True, True, True, True),  # after "--": init's argument
    "id_aa64isar1.gpa=0 id_aa64isar1.gpi=0 id_aa64isar2.gpa3=0": (True, True, True, True),
    "id_aa64isar1.api=1 id_aa64isar1.apa=0 id_aa64isar2.apa3=0": (False, False, True, None),
}
PAUTH_CPUS = (Machine(cpu_features=frozenset({"pauth", "pauth_qarma5"})),
              Machine(cpu_features=frozenset({"pauth", "pauth_qarma3"})),
              Machine(cpu_features=frozenset({"pauth", "pauth_impdef"})),
              Machine(cpu_features=frozenset({"pauth"}), cpu_known=frozenset({"pauth"})))


@pytest.mark.parametrize("version", VERSIONS)
def test_pauth_fields_hide_it_on_the_cpus_algorithm(
    specs: tuple[FeatureSpec, ...], version: str
) -> None:
    got = {c: tuple(_states(version, c, specs, cpu)["arm64.pauth"].effective
                    for cpu in PAUTH_CPUS) for c in PAUTH_FIELDS}
    assert got == PAUTH_FIELDS


def test_tree_resolve_reads_the_arch_from_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    """`kpolicy resolve --tree linux-7.2 --config <arm64 config>` without --arch evaluates the
    tree for arm64 (the config's header says Linux/arm64): KPTI is an arm64 outcome."""
    import json

    from conftest import real_tree

    from kpolicy.cli import main

    config = real_configs("7.2", "arm64") / CONFIG
    code = main(["resolve", "--tree", str(real_tree("7.2")), "--config", str(config),
                 "--cmdline", "kpti=0", "--format", "json"])
    answer = json.loads(capsys.readouterr().out)
    assert code == 0
    assert answer["kernel"]["arch"] == "arm64"
    assert answer["features"]["kpti"]["effective"] is False


@pytest.mark.parametrize("version", VERSIONS)
def test_gcs_from_6_13(specs: tuple[FeatureSpec, ...], version: str) -> None:
    """arm64.gcs (hwcap gcs) exists from 6.13: not a feature of 6.1 or 6.12 (no ARM64_GCS, no
    arm64.nogcs alias); in 7.2 built by Debian's config, off under arm64.nogcs or its field
    before a lone "--", and off on a CPU without GCS whatever the line says."""
    gcs_cpu = Machine(cpu_features=frozenset({"gcs"}))
    if version != "7.2":
        assert "arm64.gcs" not in _states(version, "", specs, gcs_cpu)
        return
    got = {c: _states(version, c, specs, gcs_cpu)["arm64.gcs"].effective
           for c in ("", "arm64.nogcs", "id_aa64pfr1.gcs=0", "-- arm64.nogcs",
                     "arm64.nogcs=1")}
    assert got == {"": True, "arm64.nogcs": False, "id_aa64pfr1.gcs=0": False,
                   "-- arm64.nogcs": True, "arm64.nogcs=1": True}
    assert _states(version, "", specs, Machine(cpu_features=frozenset()))[
        "arm64.gcs"].effective is False


# -cpu max's and a Cortex-A57's facts (conftest.ARM64_QEMU_CPU_FACTS), and a CPU affected by
# everything whose firmware has both SMCCC workarounds
MAX = Machine(kaslr_seed=True, cpu_features=frozenset(
    {"e0pd", "meltdown_safe", "bti", "pauth", "ssbs", "spectre_v2_safe"}))
A57 = Machine(kaslr_seed=True, cpu_features=frozenset({"meltdown_safe"}))
FIRMWARE = Machine(kaslr_seed=True, cpu_features=frozenset({"ssbd_firmware",
                                                            "spectre_v2_firmware"}))
# (machine, cmdline) -> (vulnerabilities.meltdown, .spec_store_bypass, .spectre_v2) on arm64,
# the same in 6.1, 6.12 and 7.2 (cpufeature.c and proton-pack.c did not change what they report)
ARM64_VULNERABILITIES: tuple[tuple[Machine, str, tuple[Any, Any, Any]], ...] = (
    (MAX, "", (False, True, True)),  # meltdown: "Not affected" on the CPU, KPTI not in force
    (MAX, "kpti=1", (True, True, True)),
    (MAX, "ssbd=force-off", (False, False, True)),
    (MAX, "nospectre_v2 mitigations=off", (False, False, True)),  # CSV2: mitigated anyway
    (A57, "", (True, False, False)),  # KASLR without E0PD forces KPTI; no firmware help
    (A57, "nokaslr", (False, False, False)),
    (FIRMWARE, "", (True, True, True)),
    (FIRMWARE, "nospectre_v2", (True, True, False)),
    (FIRMWARE, "ssbd=force-off", (True, False, True)),
    (FIRMWARE, "nokaslr mitigations=off", (False, False, False)),
    (Machine(kaslr_seed=True), "", (None, None, None)),  # the CPU decides
)


@pytest.mark.parametrize("version", VERSIONS)
def test_vulnerabilities_files_per_version(specs: tuple[FeatureSpec, ...], version: str) -> None:
    """arm64's vulnerabilities.meltdown, .spec_store_bypass and .spectre_v2 (its own
    declarations of the names x86 uses) resolve alike in every version, and every arm64
    declaration names what the version registers (no stale-declaration warning)."""
    names = ("vulnerabilities.meltdown", "vulnerabilities.spec_store_bypass",
             "vulnerabilities.spectre_v2")
    files = {s.name: s.file for s in for_target(specs, "arm64", (7, 2, 0)) if s.name in names}
    assert all(files[n].endswith(f"{n}.arm64.toml") for n in names)
    got = {}
    for machine, cmdline, _want in ARM64_VULNERABILITIES:
        states = _states(version, cmdline, specs, machine)
        got[machine, cmdline] = tuple(states[n].effective for n in names)
    assert got == {(m, c): want for m, c, want in ARM64_VULNERABILITIES}
    model, config = _side(version, specs)
    res = resolve(model, config, "", specs=specs)
    assert not [w for w in res.warnings if "declares" in w], version
