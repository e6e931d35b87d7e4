"""Issue #12: the vulnerabilities files added after MDS (spec_rstack_overflow, tsa,
indirect_target_selection, reg_file_data_sampling, vmscape, itlb_multihit, old_microcode) on
Debian's real 6.1, 6.12 and 7.2 cloud-amd64 configs with the bundled models.

The 7.2 rows are also boot cases (tests/boot/cases.toml: EPYC-Milan for SRSO and TSA,
Skylake-Client-v4 for ITS and VMSCAPE, Skylake with Gracemont's model number for RFDS); these
pin what the 7.2 kernel cannot show: 6.1 and 6.12 turn every one of them off on mitigations=off
even after an explicit word, 7.2 keeps the explicit word and reads its attack vectors instead.
"""

from __future__ import annotations

import pytest
from conftest import bundled_x86_states

from kpolicy.params.semantics import FeatureSpec, load_param_rules

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
