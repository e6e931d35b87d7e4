"""Stock Linux 7.2 (x86_64): the families issue #16 named as missed are discovered, and the
pattern rules report the departures checked by hand in the tree (each listed with why)."""

from __future__ import annotations

import pytest
from lint_real_context import real_context, real_lint

from kpolicy.families.model import Family

pytestmark = pytest.mark.real


def families() -> dict[str, Family]:
    return {f.name: f for f in real_context("7.2").families}


def test_x32_family_has_its_disabled_companion_parameter_and_key() -> None:
    fam = families()["X86_X32_ABI"]
    assert fam.default_companion == "X86_X32_DISABLED"
    assert fam.params == ("syscall.x32",)
    assert fam.static_keys == ("x32_enabled_skey",)
    key = next(k for k in real_context("7.2").catalog.static_keys if k.name == "x32_enabled_skey")
    # DEFINE_STATIC_KEY_FALSE under #if defined(CONFIG_X86_X32_DISABLED), TRUE in the #else
    assert (key.symbol, key.initial, key.params) == ("X86_X32_DISABLED", "inverted",
                                                     ("syscall.x32",))


def test_mitigation_options_are_the_boot_default_of_their_parameters() -> None:
    fams = families()
    expected = {"MITIGATION_MDS": "mds", "MITIGATION_TAA": "tsx_async_abort",
                "MITIGATION_RETBLEED": "retbleed", "MITIGATION_GDS": "gather_data_sampling",
                "MITIGATION_SPECTRE_BHI": "spectre_bhi"}
    for option, param in expected.items():
        fam = fams[option]
        assert fam.default_companion == option and param in fam.params, fam
        assert any(lk.role == "default" and "sets it" in lk.evidence for lk in fam.links)


def test_have_capability_cfi_companion_and_rodata() -> None:
    fams = families()
    assert fams["STACKPROTECTOR"].capability == "HAVE_STACKPROTECTOR"
    assert "x86" in fams["STACKPROTECTOR"].arches
    # HAVE_PCI is selected from drivers/pci (FORCE_PCI): not an arch capability
    assert "PCI" not in fams or fams["PCI"].capability != "HAVE_PCI"
    assert fams["CFI"].default_companion == "CFI_AUTO_DEFAULT"  # through FINEIBT
    assert "cfi" in fams["CFI"].params



def test_rodata_is_the_boot_switch_of_strict_kernel_rwx() -> None:
    from kpolicy.lint.checks.pattern import registered_under

    assert "rodata" in registered_under(real_context("7.2"), "STRICT_KERNEL_RWX")


def pattern_findings() -> set[tuple[str, str]]:
    return {(f.rule, f.symbol or "") for f in real_lint("7.2").findings if f.code < "KP200"}


# Verified by hand in linux-7.2 (verdict, reason).
HAND_CHECKED = {
    ("boot-default-shape", "CFI_AUTO_DEFAULT"): (
        "true", "arch/x86/Kconfig: CFI_AUTO_DEFAULT is `default y` (FineIBT at boot); the "
        "pattern wants the boot default off unless a reason is stated"),
    ("option-not-default-y", "CFI"): (
        "debatable", "CFI is `default CFI_CLANG` and needs a kcfi compiler; cfi= switches it "
        "at boot on x86, so by the pattern it should be default y where the compiler can"),
    ("runtime-control-missing", "MSEAL_SYSTEM_MAPPINGS"): (
        "true", "security/Kconfig: build-time only, no parameter or key (the v4 review)"),
    ("runtime-control-missing", "IMA_KEXEC"): (
        "debatable", "carrying the IMA list across kexec is build-time only; a boot switch "
        "is arguably not wanted"),
}


def test_pattern_rules_report_the_hand_checked_departures() -> None:
    found = pattern_findings()
    assert set(HAND_CHECKED) <= found
    # runtime-control-missing no longer claims STRICT_KERNEL_RWX has no boot switch (rodata=)
    assert ("runtime-control-missing", "STRICT_KERNEL_RWX") not in found
    pattern = {k for k in found if not k[0].startswith("capability-code")}
    assert pattern == set(HAND_CHECKED)
    strict = [v for v, _ in HAND_CHECKED.values()]
    assert strict.count("true") >= 2 and strict.count("false") == 0


def test_fixed_defaults_that_a_mitigation_option_decides_are_reported() -> None:
    found = {(f.param, f.symbol) for f in real_lint("7.2").findings
             if f.rule == "param-doc-default"}
    assert {("mds", "MITIGATION_MDS"), ("retbleed", "MITIGATION_RETBLEED"),
            ("tsx_async_abort", "MITIGATION_TAA"), ("mmio_stale_data",
                                                   "MITIGATION_MMIO_STALE_DATA"),
            ("spec_store_bypass_disable", "MITIGATION_SSB"),
            ("spectre_v2_user", "MITIGATION_SPECTRE_V2")} <= found
