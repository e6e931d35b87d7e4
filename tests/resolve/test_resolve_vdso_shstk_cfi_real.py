"""Issue #12: vdso32, the x86 user shadow stack, x86 CFI (with the kernel's IBT) and Retbleed's
call depth tracking on Intel, on the real 6.1, 6.12 and 7.2 trees with Debian's cloud-amd64
configs (gcc: no CFI) and those configs rewritten as clang builds with kCFI: the version
differences the 7.2 boots of tests/boot cannot show."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import real_configs, real_tree_resolve_side

from kpolicy.params.semantics import FeatureSpec, load_param_rules
from kpolicy.resolve.api import resolve
from kpolicy.resolve.features import Machine

pytestmark = pytest.mark.real

VERSIONS = ("6.1", "6.12", "7.2")
CONFIG = "config.amd64_none_cloud-amd64"
UNKNOWN = Machine()
INTEL = Machine(cpu_features=frozenset({"intel"}))  # qemu's Skylake-Client-v4: no CET
CET = Machine(cpu_features=frozenset({"intel", "shstk", "ibt", "eibrs"}))
NO_CET = Machine(cpu_features=frozenset({"intel", "eibrs"}))
_SIDES: dict[tuple[str, str], Any] = {}
_CONFIGS: dict[tuple[str, tuple[tuple[str, str], ...], bool], Path] = {}


@pytest.fixture(scope="module")
def specs() -> tuple[FeatureSpec, ...]:
    return load_param_rules().features


def _config(version: str, tmp: Path, changes: dict[str, str] | None = None,
            clang: bool = False) -> Path:
    """Debian's VERSION config, rewritten for clang 19 when CLANG, with each CONFIG_<name> of
    CHANGES set to its value ("n": not set), replacing the line where there is one."""
    path = real_configs(version) / CONFIG
    if not changes and not clang:
        return path
    key = (version, tuple(sorted((changes or {}).items())), clang)
    if key in _CONFIGS:  # one config text, one evaluated side
        return _CONFIGS[key]
    text = path.read_text(encoding="utf-8")
    if clang:
        text = re.sub(r"CONFIG_CC_VERSION_TEXT=.*",
                      'CONFIG_CC_VERSION_TEXT="Debian clang version 19.1.7"', text)
        text = re.sub(r"CONFIG_GCC_VERSION=\d+", "CONFIG_GCC_VERSION=0", text)
        text = (text.replace("CONFIG_CC_IS_GCC=y", "CONFIG_CC_IS_CLANG=y")
                .replace("CONFIG_CLANG_VERSION=0", "CONFIG_CLANG_VERSION=190107"))
    lines = text.splitlines()
    for name, value in (changes or {}).items():
        line = f"# CONFIG_{name} is not set" if value == "n" else f"CONFIG_{name}={value}"
        lines = [x for x in lines if not x.startswith((f"CONFIG_{name}=", f"# CONFIG_{name} is"))]
        lines.append(line)
    out = tmp / f"{version}-{'clang' if clang else 'gcc'}-{len(list(tmp.iterdir()))}.config"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _CONFIGS[key] = out
    return out


def _states(specs: tuple[FeatureSpec, ...], version: str, cmdline: str, config: Path,
            machine: Machine = UNKNOWN) -> tuple[dict[str, Any], Any]:
    key = (version, str(config))
    if key not in _SIDES:
        _SIDES[key] = real_tree_resolve_side(version, "x86_64", config, specs)
    model, given = _SIDES[key]
    res = resolve(model, given, cmdline, specs=specs, machine=machine)
    return {f.name: f.effective for f in res.features}, res


# --- vdso32 ---------------------------------------------------------------------------------

# (command line, {version: vdso32}): the same __setup in every version; simple_strtoul's
# overflow (2^64 + 1) wraps to 1 in 6.1 and 6.12 and saturates (off) in 7.2; 6.1 has no
# ia32_emulation= (an unknown word: 32-bit programs and their vDSO stay)
VDSO32 = [
    ("", {v: True for v in VERSIONS}),
    ("vdso32=0", {v: False for v in VERSIONS}),
    ("vdso32=2", {v: False for v in VERSIONS}),  # "no longer allowed; vdso disabled"
    ("vdso32=0x1", {v: True for v in VERSIONS}),
    ("vdso32=010", {v: False for v in VERSIONS}),  # octal 8
    ("vdso32=1abc", {v: True for v in VERSIONS}),  # digits up to the first non-digit
    ("vdso32=4294967297", {v: True for v in VERSIONS}),  # low 32 bits: 1
    ("vdso32=18446744073709551617", {"6.1": True, "6.12": True, "7.2": False}),
    ("vdso32=0 vdso", {v: False for v in VERSIONS}),  # x86_64's vdso= is the 64-bit one
    ("vdso32=0 vdso=1", {v: False for v in VERSIONS}),
    ("vdso32=0 vdso32", {v: False for v in VERSIONS}),  # the bare word goes to init
    ("ia32_emulation=0", {"6.1": True, "6.12": False, "7.2": False}),
]


@pytest.mark.parametrize(("cmdline", "want"), VDSO32, ids=[c or "default" for c, _ in VDSO32])
def test_vdso32_per_version(specs: tuple[FeatureSpec, ...], cmdline: str,
                            want: dict[str, bool]) -> None:
    got = {v: _states(specs, v, cmdline, _config(v, Path()))[0]["vdso32"] for v in VERSIONS}
    assert got == want


@pytest.mark.parametrize("version", VERSIONS)
def test_compat_vdso_turns_the_default_off(specs: tuple[FeatureSpec, ...], version: str,
                                          tmp_path: Path) -> None:
    config = _config(version, tmp_path, {"COMPAT_VDSO": "y"})
    assert _states(specs, version, "", config)[0]["vdso32"] is False
    assert _states(specs, version, "vdso32=1", config)[0]["vdso32"] is True
    # without IA32_EMULATION (COMPAT_32) there is no 32-bit vDSO and vdso32= is unknown
    no_ia32 = _config(version, tmp_path, {"IA32_EMULATION": "n"})
    states, res = _states(specs, version, "vdso32=1", no_ia32)
    assert states["vdso32"] is False
    assert not any("vdso32" in w for w in res.warnings)


# --- user_shstk -----------------------------------------------------------------------------


def test_61_has_no_user_shadow_stack(specs: tuple[FeatureSpec, ...]) -> None:
    states, res = _states(specs, "6.1", "nousershstk", _config("6.1", Path()), CET)
    assert "user_shstk" not in states
    assert not any("nousershstk" in w for w in res.warnings)


# (command line, machine, user_shstk): the direct read of nousershstk, anywhere in the line
SHSTK = [
    ("", CET, True),
    ("", NO_CET, False),
    ("", INTEL, False),
    ("", UNKNOWN, True),  # the CPU decides: not known, the kernel's choice is shown
    ("nousershstk", CET, False),
    ("nousershstk", UNKNOWN, False),
    ("-- nousershstk", CET, False),  # cmdline_find_option_bool also looks after "--"
    ("nousershstk=1", CET, True),  # not the exact word
    ("xnousershstk", CET, True),
]


@pytest.mark.parametrize("version", ("6.12", "7.2"))
def test_user_shadow_stack(specs: tuple[FeatureSpec, ...], version: str) -> None:
    config = _config(version, Path())
    for cmdline, machine, want in SHSTK:
        assert _states(specs, version, cmdline, config, machine)[0]["user_shstk"] is want, \
            (cmdline, machine)


@pytest.mark.parametrize("version", ("6.12", "7.2"))
def test_user_shadow_stack_not_built(specs: tuple[FeatureSpec, ...], version: str,
                                     tmp_path: Path) -> None:
    config = _config(version, tmp_path, {"X86_USER_SHADOW_STACK": "n"})
    assert _states(specs, version, "", config, CET)[0]["user_shstk"] is False


# --- cfi and ibt ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_debian_gcc_builds_no_cfi(specs: tuple[FeatureSpec, ...], version: str) -> None:
    """Debian builds with gcc: no kCFI, and cfi= is not registered (FINEIBT is off)."""
    config = _config(version, Path())
    for cmdline in ("", "cfi=kcfi", "cfi=fineibt", "cfi=auto"):
        states, res = _states(specs, version, cmdline, config, CET)
        assert states["cfi"] == "off", cmdline
        assert states["cfi.warn"] is False
    assert res.cmdline.init_envp == ("cfi=auto",)
    # the kernel's IBT: built in 6.12 and 7.2 (X86_KERNEL_IBT=y), not in 6.1's Debian config
    assert states["ibt"] is (version != "6.1")


CLANG = {"CFI_CLANG": "y", "CFI": "y"}
# (command line, machine) -> cfi with a clang build in 6.12 and 7.2 (FINEIBT and
# CFI_AUTO_DEFAULT on: the default is auto, FineIBT with the kernel's IBT, else kCFI)
CFI_CASES: list[tuple[str, Machine, Any]] = [
    ("", CET, "fineibt"),
    ("", NO_CET, "kcfi"),
    ("", UNKNOWN, "auto"),  # the CPU's IBT decides
    ("ibt=off", CET, "kcfi"),  # ibt=off clears X86_FEATURE_IBT: auto becomes kCFI
    ("ibt=warn", CET, "fineibt"),
    ("cfi=kcfi", CET, "kcfi"),
    ("cfi=off", CET, "off"),
    ("cfi=fineibt", NO_CET, "fineibt"),  # asked for: kept
    ("cfi=kcfi,auto", NO_CET, "kcfi"),
    ("cfi=kcfi,norand", CET, "kcfi"),
    ("cfi=kcfi,bogus,off", CET, "off"),  # an unknown item is logged and skipped
    ("cfi", CET, "fineibt"),  # -EINVAL: Malformed early option, the default stays
    ("cfi=off cfi=auto", CET, "fineibt"),
]


def test_61_clang_is_kcfi_without_cfi_param(specs: tuple[FeatureSpec, ...],
                                            tmp_path: Path) -> None:
    """6.1 has kCFI but no FineIBT and no cfi=: whatever the line says, kcfi."""
    config = _config("6.1", tmp_path, CLANG, clang=True)
    for cmdline in ("", "cfi=off", "cfi=fineibt"):
        states, res = _states(specs, "6.1", cmdline, config, CET)
        assert states["cfi"] == "kcfi", cmdline
    assert not any("'cfi'" in w for w in res.warnings)


@pytest.mark.parametrize("version", ("6.12", "7.2"))
def test_clang_cfi_modes(specs: tuple[FeatureSpec, ...], version: str, tmp_path: Path) -> None:
    config = _config(version, tmp_path, CLANG, clang=True)
    _states(specs, version, "", config)
    given = _SIDES[version, str(config)][1]
    assert given.values.get("FINEIBT") == "y" and given.values.get("CFI_AUTO_DEFAULT") == "y"
    for cmdline, machine, want in CFI_CASES:
        assert _states(specs, version, cmdline, config, machine)[0]["cfi"] == want, \
            (cmdline, machine)


# (version, command line, CFI_PERMISSIVE) -> cfi.warn with a clang build
CFI_WARN = [
    ("6.1", "", False, False), ("6.1", "", True, True),
    ("6.12", "cfi=warn", False, False),  # 6.12 has no "warn" item
    ("6.12", "", True, True),
    ("7.2", "", False, False), ("7.2", "cfi=warn", False, True),
    ("7.2", "cfi=kcfi,warn cfi=kcfi", False, True),  # never cleared
    ("7.2", "", True, True),
]


@pytest.mark.parametrize(("version", "cmdline", "permissive", "want"), CFI_WARN)
def test_cfi_warn_per_version(specs: tuple[FeatureSpec, ...], version: str, cmdline: str,
                              permissive: bool, want: bool, tmp_path: Path) -> None:
    config = _config(version, tmp_path, {**CLANG, "CFI_PERMISSIVE": "y" if permissive else "n"},
                     clang=True)
    assert _states(specs, version, cmdline, config, CET)[0]["cfi.warn"] is want


@pytest.mark.parametrize("version", ("6.12", "7.2"))
def test_clang_without_auto_default_is_kcfi(specs: tuple[FeatureSpec, ...], version: str,
                                           tmp_path: Path) -> None:
    config = _config(version, tmp_path, {**CLANG, "CFI_AUTO_DEFAULT": "n"}, clang=True)
    assert _states(specs, version, "", config, CET)[0]["cfi"] == "kcfi"
    assert _states(specs, version, "cfi=auto", config, CET)[0]["cfi"] == "fineibt"


FRED = Machine(cpu_features=frozenset({"intel", "shstk", "ibt", "eibrs", "fred"}))
ARITY = {**CLANG, "CC_HAS_KCFI_ARITY": "y"}  # a clang with -fsanitize-kcfi-arity: FINEIBT_BHI
# (command line, machine) -> (cfi, cfi.paranoid, cfi.bhi, cfi.rand) with 7.2's clang build
# (CFI_AUTO_DEFAULT, FINEIBT_BHI, X86_FRED): paranoid and bhi are taken only while the mode read
# so far is fineibt and never cleared; auto's FineIBT is paranoid unless the kernel uses FRED
CFI_MODIFIERS_72: list[tuple[str, Machine, tuple[Any, ...]]] = [
    ("", CET, ("fineibt", "on", False, True)),
    ("", FRED, ("fineibt", "off", False, True)),
    ("", NO_CET, ("kcfi", "off", False, True)),
    ("", UNKNOWN, ("auto", None, False, True)),  # IBT, then FRED, decide
    ("cfi=fineibt", CET, ("fineibt", "off", False, True)),  # asked for: no paranoid
    ("cfi=fineibt,paranoid", FRED, ("fineibt", "on", False, True)),
    ("cfi=paranoid,fineibt", CET, ("fineibt", "off", False, True)),  # "depends on fineibt"
    ("cfi=fineibt cfi=paranoid,bhi", CET, ("fineibt", "on", True, True)),  # across words
    ("cfi=bhi,fineibt", NO_CET, ("fineibt", "off", False, True)),
    ("cfi=fineibt,bhi", NO_CET, ("fineibt", "off", True, True)),
    ("cfi=fineibt,paranoid,bhi,kcfi", CET, ("kcfi", "off", False, True)),  # FineIBT only
    ("cfi=fineibt,paranoid cfi=auto", NO_CET, ("kcfi", "off", False, True)),
    ("cfi=fineibt,paranoid cfi=auto", FRED, ("fineibt", "on", False, True)),  # kept
    ("cfi=fineibt,bhi,auto", UNKNOWN, ("auto", None, None, True)),
    ("cfi=kcfi cfi=auto", CET, ("fineibt", "on", False, True)),
    ("cfi=norand", CET, ("fineibt", "on", False, False)),
    ("cfi=norand cfi=kcfi", CET, ("kcfi", "off", False, False)),
    ("cfi=off cfi=kcfi", CET, ("kcfi", "off", False, False)),  # off clears rand for good
    ("cfi=off", CET, ("off", "off", False, False)),
    ("cfi=fineibt,paranoid,bogus,debug", CET, ("fineibt", "on", False, True)),
    ("cfi", CET, ("fineibt", "on", False, True)),  # -EINVAL: the defaults stay
]
CFI_MODIFIER_NAMES = ("cfi", "cfi.paranoid", "cfi.bhi", "cfi.rand")


@pytest.mark.parametrize(("cmdline", "machine", "want"), CFI_MODIFIERS_72,
                         ids=[f"{c or 'default'}-{i}" for i, (c, _, _) in
                              enumerate(CFI_MODIFIERS_72)])
def test_72_cfi_modifiers(specs: tuple[FeatureSpec, ...], cmdline: str, machine: Machine,
                          want: tuple[Any, ...], tmp_path: Path) -> None:
    config = _config("7.2", tmp_path, ARITY, clang=True)
    states = _states(specs, "7.2", cmdline, config, machine)[0]
    assert tuple(states[n] for n in CFI_MODIFIER_NAMES) == want


def test_72_cfi_bhi_needs_kcfi_arity(specs: tuple[FeatureSpec, ...], tmp_path: Path) -> None:
    """Without FINEIBT_BHI (no CC_HAS_KCFI_ARITY) the bhi item is ignored ("depends on
    FINEIBT_BHI=y"); paranoid is not."""
    config = _config("7.2", tmp_path, CLANG, clang=True)
    states = _states(specs, "7.2", "cfi=fineibt,paranoid,bhi", config, CET)[0]
    assert (states["cfi.bhi"], states["cfi.paranoid"]) == (False, "on")


def test_72_cfi_paranoid_without_fred_support(specs: tuple[FeatureSpec, ...],
                                              tmp_path: Path) -> None:
    """X86_FRED=n: the kernel never uses FRED, so auto's FineIBT is paranoid on a FRED CPU.
    7.2's KVM_INTEL selects X86_FRED, so it goes too."""
    config = _config("7.2", tmp_path, {**ARITY, "X86_FRED": "n", "KVM_INTEL": "n"}, clang=True)
    states, _ = _states(specs, "7.2", "", config, FRED)
    assert _SIDES["7.2", str(config)][1].values.get("X86_FRED") != "y"
    assert states["cfi.paranoid"] == "on"


@pytest.mark.parametrize("version", ("6.1", "6.12"))
def test_cfi_modifiers_before_72(specs: tuple[FeatureSpec, ...], version: str,
                                 tmp_path: Path) -> None:
    """6.12 has cfi_rand ("norand", "off") but no paranoid or bhi (unknown items, skipped);
    6.1 has no FineIBT at all: none of the three."""
    config = _config(version, tmp_path, CLANG, clang=True)
    states = _states(specs, version, "cfi=fineibt,paranoid,bhi", config, CET)[0]
    assert "cfi.paranoid" not in states and "cfi.bhi" not in states
    if version == "6.1":
        assert "cfi.rand" not in states
        return
    assert (states["cfi"], states["cfi.rand"]) == ("fineibt", True)
    states = _states(specs, version, "cfi=norand cfi=kcfi", config, CET)[0]
    assert (states["cfi"], states["cfi.rand"]) == ("kcfi", False)


@pytest.mark.parametrize("version", VERSIONS)
def test_debian_gcc_has_no_cfi_modifiers(specs: tuple[FeatureSpec, ...], version: str) -> None:
    """Debian's gcc builds have no FINEIBT: rehashing, paranoid and BHI are all off."""
    states = _states(specs, version, "cfi=fineibt,paranoid,bhi", _config(version, Path()),
                     CET)[0]
    want = {"6.1": {}, "6.12": {"cfi.rand": False},
            "7.2": {"cfi.rand": False, "cfi.paranoid": "off", "cfi.bhi": False}}[version]
    assert {n: states[n] for n in CFI_MODIFIER_NAMES[1:] if n in states} == want


# --- Retbleed on Intel ----------------------------------------------------------------------

# (command line, vulnerabilities.retbleed) on 7.2, Intel without Enhanced IBRS and IBRS (the
# missing microcode): call depth tracking needs retbleed=stuff and Spectre v2 on retpolines
RETBLEED_INTEL_72 = [
    ("", False),
    ("retbleed=stuff", True),
    ("retbleed=stuff spectre_v2=retpoline", True),
    ("retbleed=stuff spectre_v2=retpoline,amd", False),  # LFENCE: no retpolines
    ("retbleed=stuff spectre_v2=retpoline,lfence", False),
    ("retbleed=stuff nospectre_v2", False),
    ("retbleed=stuff mitigations=off", False),  # stuff kept, Spectre v2 off
    ("retbleed=stuff retbleed=off", False),
    ("retbleed=ibrs", False),  # no such word: auto
    ("spectre_v2=ibrs", False),  # no IBRS: retpolines
]


@pytest.mark.parametrize(("cmdline", "want"), RETBLEED_INTEL_72,
                         ids=[c or "default" for c, _ in RETBLEED_INTEL_72])
def test_72_retbleed_on_intel(specs: tuple[FeatureSpec, ...], cmdline: str, want: bool) -> None:
    states, _res = _states(specs, "7.2", cmdline, _config("7.2", Path()), INTEL)
    assert states["vulnerabilities.retbleed"] is want


# 6.12: stuff on Intel without eIBRS stuffs the retpolines auto picks; 6.1 has no stuff (auto:
# vulnerable on retpolines)
@pytest.mark.parametrize(("version", "want"), [("6.1", False), ("6.12", True)])
def test_retbleed_stuff_on_intel_before_72(specs: tuple[FeatureSpec, ...], version: str,
                                           want: bool) -> None:
    config = _config(version, Path())
    assert _states(specs, version, "", config, INTEL)[0]["vulnerabilities.retbleed"] is False
    states, _res = _states(specs, version, "retbleed=stuff", config, INTEL)
    assert states["vulnerabilities.retbleed"] is want
    # 6.1 and 6.12 return before reading retbleed= under mitigations=off
    states, _res = _states(specs, version, "retbleed=stuff mitigations=off", config, INTEL)
    assert states["vulnerabilities.retbleed"] is False


def test_72_stuffing_needs_call_depth_tracking(specs: tuple[FeatureSpec, ...],
                                               tmp_path: Path) -> None:
    config = _config("7.2", tmp_path, {"MITIGATION_CALL_DEPTH_TRACKING": "n"})
    states, _res = _states(specs, "7.2", "retbleed=stuff", config, INTEL)
    assert states["vulnerabilities.retbleed"] is False
