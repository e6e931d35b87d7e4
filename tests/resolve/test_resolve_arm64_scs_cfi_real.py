"""arm64 shadow call stack and kCFI resolved with the real 6.1, 6.12 and 7.2 trees: Debian's
cloud-arm64 config (gcc: neither built, resolve says off) and that config rewritten as a clang
build (its toolchain lines say clang, which the tree's Kconfig evaluation takes from the config)
with SHADOW_CALL_STACK, UNWIND_PATCH_PAC_INTO_SCS (dynamic SCS, 6.12 and 7.2 only) and kCFI.
No scs= or arm64 cfi= parameter exists: only the build, the CPU and arm64.nopauth/nobti decide."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import real_arm64_side, real_arm64_states, real_configs

from kpolicy.params.semantics import FeatureSpec, load_param_rules
from kpolicy.resolve.features import Machine

pytestmark = pytest.mark.real
CONFIG = "config.arm64_none_cloud-arm64"
CLANG = ("CONFIG_SHADOW_CALL_STACK=y\nCONFIG_UNWIND_PATCH_PAC_INTO_SCS=y\nCONFIG_CFI_CLANG=y\n"
         "CONFIG_CFI=y\nCONFIG_ARM64_BTI_KERNEL=y\n")
# the same without ARM64_BTI_KERNEL and with CFI_PERMISSIVE (7.2 only)
NO_BTI_KERNEL = CLANG.replace("CONFIG_ARM64_BTI_KERNEL=y\n",
                              "# CONFIG_ARM64_BTI_KERNEL is not set\nCONFIG_CFI_PERMISSIVE=y\n")
_SIDES: dict[tuple[str, str | None], Any] = {}
BOTH = Machine(cpu_features=frozenset({"pauth", "bti"}))
PAUTH = Machine(cpu_features=frozenset({"pauth"}))
BTI = Machine(cpu_features=frozenset({"bti"}))
NONE = Machine(cpu_features=frozenset())
UNKNOWN = Machine()

# (cmdline, machine) -> shadow_call_stack with dynamic SCS and ARM64_BTI_KERNEL=y (6.12, 7.2)
DYNAMIC: tuple[tuple[str, Machine, Any], ...] = (
    ("", NONE, True),  # neither PAC nor BTI: patched in
    ("", PAUTH, False),
    ("", BTI, False),  # BTI landing pads are PACIASP: not patched
    ("", BOTH, False),
    ("", UNKNOWN, None),  # depends on the CPU
    ("arm64.nopauth", PAUTH, True),  # cpu_has_pac honours the override
    ("arm64.nopauth", BOTH, False),  # BTI still stops it
    ("arm64.nopauth arm64.nobti", BOTH, True),  # cpu_has_bti honours the override too
    ("arm64.nopauth", UNKNOWN, None),  # BTI unknown
    ("arm64.nopauth arm64.nobti", UNKNOWN, True),
    ("arm64.nobti", BTI, True),
    ("arm64.nobti", UNKNOWN, None),  # PAC unknown
    ("scs=off", NONE, True),  # no scs= parameter
)
# without ARM64_BTI_KERNEL (7.2): only PAC decides
NO_BTI_CASES: tuple[tuple[str, Machine, Any], ...] = (
    ("", BTI, True),
    ("", BOTH, False),
    ("arm64.nopauth", BOTH, True),
    ("", UNKNOWN, None),
    ("arm64.nopauth", UNKNOWN, True),
)


@pytest.fixture(scope="module")
def specs() -> tuple[FeatureSpec, ...]:
    return load_param_rules().features


def _clang(text: str) -> str:
    """TEXT with its toolchain lines saying clang 19 instead of gcc."""
    text = re.sub(r"CONFIG_CC_VERSION_TEXT=.*", 'CONFIG_CC_VERSION_TEXT="Debian clang version '
                  '19.1.7"', text)
    text = re.sub(r"CONFIG_GCC_VERSION=\d+", "CONFIG_GCC_VERSION=0", text)
    return (text.replace("CONFIG_CC_IS_GCC=y", "CONFIG_CC_IS_CLANG=y")
            .replace("CONFIG_CLANG_VERSION=0", "CONFIG_CLANG_VERSION=190107"))


def _text(version: str, fragment: str) -> str | None:
    """Debian's config (None: FRAGMENT empty), or its clang rewrite with FRAGMENT added."""
    if not fragment:
        return None
    return _clang((real_configs(version, "arm64") / CONFIG).read_text(encoding="utf-8")) + fragment


def _side(version: str, fragment: str, specs: tuple[FeatureSpec, ...], tmp: Path) -> Any:
    return real_arm64_side(version, _text(version, fragment), specs, tmp, _SIDES)


def _states(version: str, fragment: str, cmdline: str, machine: Machine,
            specs: tuple[FeatureSpec, ...], tmp: Path) -> tuple[Any, Any]:
    states = real_arm64_states(version, _text(version, fragment), cmdline, machine, specs, tmp,
                               _SIDES)
    return states["shadow_call_stack"], states["arm64.cfi"]


@pytest.mark.parametrize("version", ("6.1", "6.12", "7.2"))
def test_debian_arm64_builds_neither(
    specs: tuple[FeatureSpec, ...], version: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("scs")
    for cmdline, machine in (("", NONE), ("arm64.nopauth arm64.nobti", UNKNOWN)):
        scs, cfi = _states(version, "", cmdline, machine, specs, tmp)
        assert (scs.built, scs.effective) == (False, False)
        assert (cfi.built, cfi.effective) == (False, "off")


def test_61_scs_is_static(specs: tuple[FeatureSpec, ...],
                          tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("scs")
    _model, config = _side("6.1", CLANG, specs, tmp)
    assert config.values.get("CC_IS_CLANG") == "y" and "UNWIND_PATCH_PAC_INTO_SCS" not in \
        config.values
    for cmdline, machine, _ in DYNAMIC:
        scs, cfi = _states("6.1", CLANG, cmdline, machine, specs, tmp)
        assert (scs.built, scs.effective, cfi.built, cfi.effective) == (True, True, True,
                                                                        "trap"), cmdline


@pytest.mark.parametrize("version", ("6.12", "7.2"))
def test_dynamic_scs_follows_pac_and_bti(
    specs: tuple[FeatureSpec, ...], version: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("scs")
    _model, config = _side(version, CLANG, specs, tmp)
    assert config.values.get("DYNAMIC_SCS") == "y"
    assert config.values.get("CFI" if version == "7.2" else "CFI_CLANG") == "y"
    got = {(c, m): _states(version, CLANG, c, m, specs, tmp)[0].effective for c, m, _ in DYNAMIC}
    assert got == {(c, m): want for c, m, want in DYNAMIC}
    cfi = _states(version, CLANG, "", NONE, specs, tmp)[1]
    assert (cfi.built, cfi.effective) == (True, "trap")


def test_72_without_bti_kernel_and_permissive_cfi(
    specs: tuple[FeatureSpec, ...], tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("scs")
    _model, config = _side("7.2", NO_BTI_KERNEL, specs, tmp)
    assert config.values.get("ARM64_BTI_KERNEL") != "y"
    got = {(c, m): _states("7.2", NO_BTI_KERNEL, c, m, specs, tmp)[0].effective
           for c, m, _ in NO_BTI_CASES}
    assert got == {(c, m): want for c, m, want in NO_BTI_CASES}
    cfi = _states("7.2", NO_BTI_KERNEL, "", NONE, specs, tmp)[1]
    assert (cfi.built, cfi.effective) == (True, "warn")


# kCFI's build option per version: CFI_CLANG in 6.1 and 6.12, CFI in 7.2 (renamed in 6.18;
# CFI_CLANG is then a transitional symbol CFI defaults to). Each line: (version, fragment added
# to the clang config, built, effective); CLANG and NO_BTI_KERNEL above cover the rest.
CFI_BUILDS: tuple[tuple[str, str, bool, str], ...] = (
    ("6.1", "CONFIG_CFI_CLANG=y\nCONFIG_CFI_PERMISSIVE=y\n", True, "warn"),
    ("6.12", "CONFIG_CFI=y\n", False, "off"),  # no CFI symbol before 6.18
    # CFI_CLANG, transitional in 7.2, is y in the evaluated values, but CFI is what builds it
    ("7.2", "# CONFIG_CFI is not set\nCONFIG_CFI_CLANG=y\n", False, "off"),
)


@pytest.mark.parametrize(("version", "fragment", "built", "effective"), CFI_BUILDS)
def test_cfi_is_built_by_the_versions_own_option(
    specs: tuple[FeatureSpec, ...], tmp_path_factory: pytest.TempPathFactory, version: str,
    fragment: str, built: bool, effective: str
) -> None:
    """cfi reports built only when the version's own option is y in the evaluated config (not
    always, as with no build option): one feature name, one declaration per version range."""
    tmp = tmp_path_factory.mktemp("cfi")
    _model, config = _side(version, fragment, specs, tmp)
    assert config.values.get("CFI_CLANG") == ("n" if version == "6.12" else "y")
    cfi = _states(version, fragment, "", NONE, specs, tmp)[1]
    assert (cfi.built, cfi.effective) == (built, effective)
