"""Stock Linux 7.2 (x86_64): the families issue #16 named as missed are discovered, and the
pattern rules report the departures checked by hand in the tree (each listed with why)."""

from __future__ import annotations

import pytest
from lint_real_context import real_context, real_lint

from kpolicy.families.discover import discover_families
from kpolicy.families.model import Family
from kpolicy.lint.checks import pattern
from kpolicy.lint.rules_loader import load_rules
from kpolicy.lint.types import LintContext

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
    ("option-not-default-y", "CFI"): (
        "true", "arch/Kconfig: CFI is `default CFI_CLANG` though ARCH_SUPPORTS_CFI gates it and "
        "cfi= switches it at boot on x86; the kcfi compiler is already a `depends on`"),
    ("runtime-control-missing", "MSEAL_SYSTEM_MAPPINGS"): (
        "true", "security/Kconfig: build-time only, no parameter or key (the v4 review)"),
}

# Departures upstream made on purpose: (rule, symbol) -> the rules/families table stating why.
DECLARED_REASONS = {
    ("boot-default-shape", "CFI_AUTO_DEFAULT"): ("CFI", "default_on_reason"),
    ("runtime-control-missing", "IMA_KEXEC"): ("IMA_KEXEC", "runtime_control"),
}


def test_pattern_rules_report_the_hand_checked_departures() -> None:
    found = pattern_findings()
    # runtime-control-missing no longer claims STRICT_KERNEL_RWX has no boot switch (rodata=)
    assert ("runtime-control-missing", "STRICT_KERNEL_RWX") not in found
    pattern = {k for k in found if not k[0].startswith("capability-code")}
    assert pattern == set(HAND_CHECKED)
    assert all(verdict == "true" for verdict, _ in HAND_CHECKED.values())


def test_the_stated_reasons_are_what_keeps_the_deliberate_departures_quiet() -> None:
    ctx = real_context("7.2")
    families = ctx.declarations["families"]["hardening"]["family"]
    for (_rule, _symbol), (family, key) in DECLARED_REASONS.items():
        assert str(families[family][key]).strip(), (family, key)
    # the same tree with those two tables left out of rules/families
    dropped = {name for name, _key in DECLARED_REASONS.values()}
    kept = {n: t for n, t in families.items() if n not in dropped}
    decl = {**ctx.declarations, "families": {"hardening": {"family": kept}}}
    bare = LintContext(ctx.tree, ctx.models, ctx.catalog,
                       discover_families(ctx.models, ctx.catalog, decl), decl)
    rules = {r.name: r for r in load_rules()}
    checks = {"boot-default-shape": pattern.boot_default_shape,
              "runtime-control-missing": pattern.runtime_control_missing}
    found = {(rule, f.symbol) for rule, check in checks.items()
             for f in check(bare, rules[rule])}
    assert set(DECLARED_REASONS) <= found
    assert not set(DECLARED_REASONS) & pattern_findings()


def test_fixed_defaults_that_a_mitigation_option_decides_are_reported() -> None:
    found = {(f.param, f.symbol) for f in real_lint("7.2").findings
             if f.rule == "param-doc-default"}
    assert {("mds", "MITIGATION_MDS"), ("retbleed", "MITIGATION_RETBLEED"),
            ("tsx_async_abort", "MITIGATION_TAA"), ("mmio_stale_data",
                                                   "MITIGATION_MMIO_STALE_DATA"),
            ("spec_store_bypass_disable", "MITIGATION_SSB"),
            ("spectre_v2_user", "MITIGATION_SPECTRE_V2")} <= found
