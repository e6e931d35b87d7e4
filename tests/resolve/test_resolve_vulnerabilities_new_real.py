"""Issue #12: the vulnerabilities files added after MDS (spec_rstack_overflow, tsa,
indirect_target_selection, reg_file_data_sampling, vmscape, itlb_multihit, old_microcode) on
Debian's real 6.1, 6.12 and 7.2 cloud-amd64 configs with the bundled models.

The 7.2 rows are also boot cases (tests/boot/cases.toml: EPYC-Milan for SRSO and TSA,
Skylake-Client-v4 for ITS and VMSCAPE, Skylake with Gracemont's model number for RFDS); these
pin what the 7.2 kernel cannot show: 6.1 and 6.12 turn every one of them off on mitigations=off
even after an explicit word, 7.2 keeps the explicit word and reads its attack vectors instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import bundled_x86_states, real_configs, real_tree_resolve_side

from kpolicy.params.semantics import FeatureSpec, load_param_rules
from kpolicy.resolve.api import resolve
from kpolicy.resolve.features import Machine

pytestmark = pytest.mark.real

VERSIONS = ("6.1", "6.12", "7.2")
BUGS = ("spec_rstack_overflow", "tsa", "indirect_target_selection", "reg_file_data_sampling",
        "vmscape")


@pytest.fixture(scope="module")
def specs() -> tuple[FeatureSpec, ...]:
    return load_param_rules().features


def _vulns(states: dict[str, object]) -> tuple[object, ...]:
    return tuple(states[f"vulnerabilities.{b}"] for b in BUGS)


ALL_ON = (True,) * len(BUGS)
ALL_OFF = (False,) * len(BUGS)
EXPLICIT = ("spec_rstack_overflow=safe-ret tsa=on indirect_target_selection=on "
            "reg_file_data_sampling=on vmscape=ibpb")

# (command line, 6.1 and 6.12's states, 7.2's states), in BUGS order
CASES = [
    ("", ALL_ON, ALL_ON),
    ("mitigations=off", ALL_OFF, ALL_OFF),
    # an explicit word: off in 6.1/6.12; kept in 7.2, except ITS, which follows Spectre v2 (off)
    (f"mitigations=off {EXPLICIT}", ALL_OFF, (True, True, False, True, True)),
    (f"{EXPLICIT} mitigations=off", ALL_OFF, (True, True, False, True, True)),
    ("spec_rstack_overflow=off tsa=off indirect_target_selection=off "
     "reg_file_data_sampling=off vmscape=off", ALL_OFF, ALL_OFF),
    ("spec_rstack_overflow=microcode", (False, True, True, True, True),
     (False, True, True, True, True)),
    # unknown words are ignored, bare words are malformed: nothing changes
    ("spec_rstack_overflow=bogus tsa=bogus indirect_target_selection=bogus "
     "reg_file_data_sampling=bogus vmscape=bogus", ALL_ON, ALL_ON),
    ("spec_rstack_overflow tsa indirect_target_selection reg_file_data_sampling vmscape",
     ALL_ON, ALL_ON),
    # 7.2's attack vectors: SRSO and ITS need user-to-kernel or guest-to-host, VMSCAPE
    # guest-to-host; TSA and RFDS any vector
    ("mitigations=auto,no_user_kernel,no_guest_host", ALL_ON, (False, True, False, True, False)),
    ("mitigations=auto,no_guest_host", ALL_ON, (True, True, True, True, False)),
    ("mitigations=auto,no_user_kernel,no_user_user,no_guest_host,no_guest_guest",
     ALL_ON, ALL_OFF),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("cmdline", "old", "new"), CASES)
def test_new_vulnerabilities(specs: tuple[FeatureSpec, ...],
                             version: str, cmdline: str, old: tuple[bool, ...],
                             new: tuple[bool, ...]) -> None:
    states = bundled_x86_states(version, cmdline, specs)
    assert _vulns(states) == (new if version == "7.2" else old), cmdline


# (version, command line, the modes the kernel selects before the CPU checks)
MODES = [
    ("6.12", "", ("auto", "auto", "auto", "auto", "auto")),
    ("7.2", "", ("auto", "auto", "auto", "auto", "auto")),
    ("6.12", f"mitigations=off {EXPLICIT}", ("off", "off", "off", "off", "off")),
    ("7.2", f"mitigations=off {EXPLICIT}", ("safe-ret", "on", "on", "on", "ibpb")),
    ("7.2", "mitigations=off", ("off", "off", "off", "off", "off")),
    # only user-to-user or guest-to-guest mitigated: SRSO's microcode mode
    ("7.2", "mitigations=auto,no_user_kernel,no_guest_host", ("microcode", "auto", "off", "auto",
                                                              "off")),
    ("7.2", "indirect_target_selection=force vmscape=force", ("auto", "auto", "on", "auto",
                                                              "auto")),
    # ITS's stuff is a word from 6.12; 6.1 ignores it
    ("6.12", "indirect_target_selection=stuff", ("auto", "auto", "stuff", "auto", "auto")),
    ("6.1", "indirect_target_selection=stuff", ("auto", "auto", "auto", "auto", "auto")),
]


@pytest.mark.parametrize(("version", "cmdline", "modes"), MODES)
def test_new_vulnerability_modes(specs: tuple[FeatureSpec, ...], version: str, cmdline: str,
                                 modes: tuple[str, ...]) -> None:
    states = bundled_x86_states(version, cmdline, specs)
    assert tuple(states[b] for b in BUGS) == modes, cmdline


def test_its_follows_spectre_v2_lfence(specs: tuple[FeatureSpec, ...]) -> None:
    """7.2 turns ITS off with Spectre v2's LFENCE mitigation (its_update_mitigation); the 7.2
    kernel under TCG never reaches /init with that word, so this is pinned here only. (6.1 and
    6.12 do the same in its_select_mitigation, but kpolicy models their spectre_v2 command
    line from 6.17 only.)"""
    states = bundled_x86_states("7.2", "spectre_v2=retpoline,lfence", specs)
    assert states["vulnerabilities.indirect_target_selection"] is False
    assert bundled_x86_states("7.2", "spectre_v2=retpoline", specs)[
        "vulnerabilities.indirect_target_selection"] is True


@pytest.mark.parametrize("version", VERSIONS)
def test_retbleed_ibpb_mitigates_vmscape(specs: tuple[FeatureSpec, ...], version: str) -> None:
    """Retbleed's IBPB makes VMSCAPE IBPB on VMEXIT even after vmscape=off, in every version."""
    states = bundled_x86_states(version, "vmscape=off retbleed=ibpb", specs)
    assert states["vulnerabilities.vmscape"] is True
    assert bundled_x86_states(version, "vmscape=off", specs)["vulnerabilities.vmscape"] is False


@pytest.mark.parametrize("version", VERSIONS)
def test_itlb_multihit_and_old_microcode(specs: tuple[FeatureSpec, ...], version: str) -> None:
    """iTLB multihit is KVM's: mitigated unless mitigations=off (every version); old_microcode
    exists from 6.15 and is never mitigated."""
    assert bundled_x86_states(version, "", specs)["vulnerabilities.itlb_multihit"] is True
    off = bundled_x86_states(version, "mitigations=off", specs)
    assert off["vulnerabilities.itlb_multihit"] is False
    assert ("vulnerabilities.old_microcode" in off) is (version == "7.2")
    if version == "7.2":
        assert off["vulnerabilities.old_microcode"] is False


@pytest.mark.parametrize("version", VERSIONS)
def test_its_stuff_makes_retbleed_stuff(specs: tuple[FeatureSpec, ...], version: str) -> None:
    """indirect_target_selection=stuff turns Retbleed's command to stuffing from 6.12 (6.1 has
    no stuff word: the ITS word is ignored and Retbleed keeps auto)."""
    states = bundled_x86_states(version, "indirect_target_selection=stuff", specs)
    assert states["retbleed"] == ("auto" if version == "6.1" else "stuff")


# --- cross-effects that need no microcode (SRSO <- Retbleed's IBPB, VMSCAPE <- SRSO) ---------

# bare-metal AMD family 0x17 with IBPB: the kernel makes IBPB_BRTYPE from IBPB alone
ZEN2 = Machine(cpu_features=frozenset({"amd", "ibpb", "ibpb_brtype"}))
ZEN3 = Machine(cpu_features=frozenset({"amd", "ibpb"}))  # no SBPB microcode: no IBPB_BRTYPE
ZEN5 = Machine(cpu_features=frozenset({"amd", "ibpb", "ibpb_brtype", "srso_user_kernel_no"}))
ZEN5_BSR = Machine(cpu_features=frozenset({"amd", "ibpb", "ibpb_brtype", "srso_user_kernel_no",
                                           "bp_spec_reduce"}))
NOTHING = Machine()

# (machine, command line, {version: vulnerabilities.spec_rstack_overflow})
SRSO_FROM_RETBLEED = [
    # 6.1 reads Retbleed's IBPB before spec_rstack_overflow=, 7.2 after it; 6.12 returns on off
    (ZEN2, "spec_rstack_overflow=off retbleed=ibpb", {"6.1": True, "6.12": False, "7.2": True}),
    (ZEN2, "spec_rstack_overflow=microcode retbleed=ibpb", {"6.1": True, "6.12": True,
                                                            "7.2": True}),
    (ZEN2, "spec_rstack_overflow=microcode", {"6.1": False, "6.12": False, "7.2": False}),
    (ZEN3, "spec_rstack_overflow=off retbleed=ibpb", {"6.1": False, "6.12": False,
                                                      "7.2": False}),
    # an unknown CPU: the generic affected one (the step is a note)
    (NOTHING, "spec_rstack_overflow=off retbleed=ibpb", {"6.1": False, "6.12": False,
                                                         "7.2": False}),
]


@pytest.mark.parametrize(("machine", "cmdline", "want"), SRSO_FROM_RETBLEED)
def test_retbleed_ibpb_makes_srso_ibpb(specs: tuple[FeatureSpec, ...], machine: Machine,
                                       cmdline: str, want: dict[str, bool]) -> None:
    got = {v: bundled_x86_states(v, cmdline, specs, machine=machine)[
        "vulnerabilities.spec_rstack_overflow"] for v in VERSIONS}
    assert got == want


# (machine, command line, {version: vulnerabilities.vmscape})
VMSCAPE_FROM_SRSO = [
    (ZEN2, "vmscape=off spec_rstack_overflow=ibpb-vmexit", {v: True for v in VERSIONS}),
    (ZEN3, "vmscape=off spec_rstack_overflow=ibpb-vmexit", {v: False for v in VERSIONS}),
    # BpSpecReduce takes Reduced Speculation instead (6.12, 7.2; 6.1 does not know it)
    (ZEN5_BSR, "vmscape=off spec_rstack_overflow=ibpb-vmexit", {"6.1": True, "6.12": False,
                                                                "7.2": False}),
    (ZEN2, "vmscape=off", {v: False for v in VERSIONS}),
    # Zen 5's safe-RET is IBPB on VMEXIT (6.12 and 7.2; 6.1 has no SRSO_USER_KERNEL_NO)
    (ZEN5, "vmscape=off", {"6.1": False, "6.12": True, "7.2": True}),
    (ZEN5, "vmscape=off spec_rstack_overflow=safe-ret", {"6.1": False, "6.12": True,
                                                         "7.2": True}),
    (ZEN5_BSR, "vmscape=off", {v: False for v in VERSIONS}),
    (ZEN5, "vmscape=off spec_rstack_overflow=microcode", {v: False for v in VERSIONS}),
    (NOTHING, "vmscape=off spec_rstack_overflow=ibpb-vmexit", {v: False for v in VERSIONS}),
]


@pytest.mark.parametrize(("machine", "cmdline", "want"), VMSCAPE_FROM_SRSO)
def test_srso_ibpb_on_vmexit_mitigates_vmscape(specs: tuple[FeatureSpec, ...],
                                               machine: Machine, cmdline: str,
                                               want: dict[str, bool]) -> None:
    got = {v: bundled_x86_states(v, cmdline, specs, machine=machine)["vulnerabilities.vmscape"]
           for v in VERSIONS}
    assert got == want


def test_72_zen5_vmscape_needs_guest_host(specs: tuple[FeatureSpec, ...]) -> None:
    """7.2's auto reaches safe-RET (and with it IBPB on VMEXIT) on a Zen 5 only when
    guest-to-host is mitigated."""
    states = bundled_x86_states("7.2", "vmscape=off mitigations=auto,no_guest_host", specs,
                                machine=ZEN5)
    assert states["vulnerabilities.vmscape"] is False


# --- iTLB multihit: kvm.nx_huge_pages and KVM_INTEL -------------------------------------------

# (command line, {version: (kvm.nx_huge_pages, vulnerabilities.itlb_multihit)}) with Debian's
# KVM=m: modprobe hands kvm.nx_huge_pages= to kvm when it loads it
def _all(mode: str, mitigated: bool) -> dict[str, tuple[str, bool]]:
    return {v: (mode, mitigated) for v in VERSIONS}


NX_HUGE_PAGES = [
    ("", _all("auto", True)),
    ("mitigations=off", _all("auto", False)),
    ("kvm.nx_huge_pages=off", _all("off", False)),
    ("kvm.nx_huge_pages=never", _all("never", False)),
    ("kvm.nx_huge_pages=force mitigations=off", _all("force", True)),  # forced whatever
    ("kvm.nx_huge_pages=auto mitigations=off", _all("auto", False)),
    ("kvm.nx_huge_pages=y mitigations=off", _all("force", True)),  # kstrtobool: true is force
    ("kvm.nx_huge_pages=0", _all("off", False)),
    ("kvm.nx_huge_pages=bogus", _all("auto", True)),  # -EINVAL: kvm does not load
    ("kvm.nx_huge_pages", _all("auto", True)),  # no bare word
    ("kvm.nx_huge_pages=off kvm.nx_huge_pages=force", _all("force", True)),
    # kstrtobool's enable/disable from 6.16
    ("kvm.nx_huge_pages=enable mitigations=off", {"6.1": ("auto", False),
                                                  "6.12": ("auto", False),
                                                  "7.2": ("force", True)}),
]


@pytest.mark.parametrize(("cmdline", "want"), NX_HUGE_PAGES,
                         ids=[c or "default" for c, _ in NX_HUGE_PAGES])
def test_kvm_nx_huge_pages(specs: tuple[FeatureSpec, ...], cmdline: str,
                           want: dict[str, tuple[str, bool]]) -> None:
    got = {}
    for v in VERSIONS:
        states = bundled_x86_states(v, cmdline, specs)
        got[v] = (states["kvm.nx_huge_pages"], states["vulnerabilities.itlb_multihit"])
    assert got == want


def _changed(version: str, tmp: Path, changes: dict[str, str]) -> Path:
    """Debian's VERSION cloud-amd64 config with each CONFIG_<name> of CHANGES set ("n": unset)."""
    lines = (real_configs(version) / "config.amd64_none_cloud-amd64").read_text(
        encoding="utf-8").splitlines()
    for name, value in changes.items():
        lines = [x for x in lines if not x.startswith((f"CONFIG_{name}=", f"# CONFIG_{name} is"))]
        lines.append(f"# CONFIG_{name} is not set" if value == "n" else f"CONFIG_{name}={value}")
    out = tmp / f"{version}.config"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _tree_states(version: str, config: Path, cmdline: str,
                 machine: Machine = NOTHING) -> tuple[dict[str, Any], Any]:
    """The effective states with the real VERSION tree's model (KVM_INTEL is in it) for CONFIG."""
    model, given = real_tree_resolve_side(version, "x86_64", config, load_param_rules().features)
    res = resolve(model, given, cmdline, machine=machine)
    return {f.name: f.effective for f in res.features}, res


@pytest.mark.parametrize("version", VERSIONS)
def test_itlb_multihit_without_kvm_intel(version: str, tmp_path: Path) -> None:
    """Without KVM_INTEL the file reads "Processor vulnerable", whatever kvm.nx_huge_pages
    says (KVM=m with only KVM_AMD); KVM=y reads kvm.nx_huge_pages= at boot, where parse_args
    reports a refused value ("invalid for parameter") and the mode stays auto."""
    config = _changed(version, tmp_path, {"KVM_INTEL": "n"})
    for cmdline in ("", "kvm.nx_huge_pages=force"):
        states, _res = _tree_states(version, config, cmdline, NO_VMX)
        assert states["vulnerabilities.itlb_multihit"] is False, cmdline
        assert states["kvm.nx_huge_pages"] == ("force" if cmdline else "auto")
    config = _changed(version, tmp_path, {"KVM": "y", "KVM_INTEL": "y", "KVM_AMD": "y"})
    states, res = _tree_states(version, config, "kvm.nx_huge_pages=bogus")
    assert ("kvm.nx_huge_pages", "bogus") in res.cmdline.invalid
    assert (states["kvm.nx_huge_pages"], states["vulnerabilities.itlb_multihit"]) == \
        ("auto", True)
    states, res = _tree_states(version, config, "kvm.nx_huge_pages=never mitigations=off")
    assert (states["kvm.nx_huge_pages"], states["vulnerabilities.itlb_multihit"]) == \
        ("never", False)


@pytest.mark.parametrize("version", VERSIONS)
def test_its_words_ignored_without_mitigation_its(version: str, tmp_path: Path) -> None:
    """Without CONFIG_MITIGATION_ITS its_parse_cmdline logs "Mitigation disabled at compile
    time, ignoring option" for every word: ITS stays off (the file: vulnerable), on=force too."""
    config = _changed(version, tmp_path, {"MITIGATION_ITS": "n"})
    for cmdline in ("", "indirect_target_selection=on", "indirect_target_selection=force"):
        states, _res = _tree_states(version, config, cmdline)
        assert (states["indirect_target_selection"],
                states["vulnerabilities.indirect_target_selection"]) == ("off", False), cmdline
    states, _res = _tree_states(version, _changed(version, tmp_path, {}),
                                "indirect_target_selection=on")
    assert (states["indirect_target_selection"],
            states["vulnerabilities.indirect_target_selection"]) == ("on", True)


@pytest.mark.parametrize("version", VERSIONS)
def test_its_off_with_forced_64b_function_alignment(version: str, tmp_path: Path) -> None:
    """CONFIG_DEBUG_FORCE_FUNCTION_ALIGN_64B: "ITS mitigation is not compatible", whatever the
    command asks (the command itself stays as given)."""
    config = _changed(version, tmp_path, {"DEBUG_FORCE_FUNCTION_ALIGN_64B": "y"})
    for cmdline in ("", "indirect_target_selection=on", "indirect_target_selection=stuff"):
        states, _res = _tree_states(version, config, cmdline)
        assert states["vulnerabilities.indirect_target_selection"] is False, cmdline
    states, _res = _tree_states(version, _changed(version, tmp_path, {}), "")
    assert states["vulnerabilities.indirect_target_selection"] is True


def test_itlb_multihit_on_tcg(specs: tuple[FeatureSpec, ...]) -> None:
    """A CPU without VMX reads "KVM: Mitigation: VMX unsupported" whatever the line says (the
    boot cases itlb-*), but only where the file reads KVM's state."""
    for cmdline in ("kvm.nx_huge_pages=off", "mitigations=off kvm.nx_huge_pages=never"):
        assert bundled_x86_states("7.2", cmdline, specs, machine=NO_VMX)[
            "vulnerabilities.itlb_multihit"] is True


NO_VMX = Machine(cpu_features=frozenset({"intel"}))
