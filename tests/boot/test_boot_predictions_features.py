"""kpolicy resolve's feature states against what Debian's real kernels reported under qemu.

For every case of tests/boot/observed.json (x86_64) and observed-arm64.json (cloud-arm64) that
records features, resolve with the real 7.2 tree for that arch (6.1 or 6.12 for a case booting
that version's cloud kernel), the kernel's own config and the case's command line must give the
observed state of every feature it supports (init_on_alloc, init_on_free, lockdown,
transparent_hugepage, zswap.enabled, module.sig_enforce, page_alloc.shuffle, kaslr, ...) — and
so must the bundled 7.2 model of that arch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import arm64_boot_machine, in_ci, real_configs, real_tree_resolve_side

from kpolicy.params.semantics import FeatureSpec, load_param_rules
from kpolicy.resolve.api import Resolution, resolve
from kpolicy.resolve.bundle import pick_bundled, read_model
from kpolicy.resolve.features import Machine
from kpolicy.resolve.inputs import ConfigInput, read_config
from kpolicy.resolve.model import ResolveModel

BOOT_DIR = Path(__file__).resolve().parent
OBSERVED = {"x86_64": BOOT_DIR / "observed.json", "arm64": BOOT_DIR / "observed-arm64.json"}
DOCS: dict[str, dict[str, Any]] = {
    arch: json.loads(path.read_text(encoding="utf-8"))
    for arch, path in OBSERVED.items()
    if path.is_file()
}
DOC = DOCS.get("x86_64", {})
CASES = [c for c in DOC.get("cases", []) if c.get("features")]
ARM64_CASES = [c for c in DOCS.get("arm64", {}).get("cases", []) if c.get("features")]
# (arch, case) of every arch
ALL_CASES = [("x86_64", c) for c in CASES] + [("arm64", c) for c in ARM64_CASES]
IDS = [c["id"] if a == "x86_64" else f"{a}-{c['id']}" for a, c in ALL_CASES]
REQUIRED = (
    "init_on_alloc",
    "init_on_free",
    "lockdown",
    "transparent_hugepage",
    "zswap.enabled",
    "module.sig_enforce",
)

pytestmark = pytest.mark.real


@pytest.fixture(scope="session")
def specs() -> tuple[FeatureSpec, ...]:
    return load_param_rules().features


# the config each x86 kernel flavour of the record is built from ("cloud-amd64-<version>": an
# older version's cloud kernel, built from that version's cloud-amd64 config)
FLAVOUR_CONFIGS = {"cloud-amd64": DOC.get("config", ""), "amd64": "config.amd64_none_amd64"}
CLOUD_CONFIG = "config.amd64_none_cloud-amd64"
_SIDES: dict[tuple[str, str, str, str], tuple[ResolveModel, ConfigInput]] = {}


def _version(case: dict[str, Any]) -> str:
    """The Linux version of the kernel CASE booted: 7.2 but for an older cloud-amd64 flavour."""
    flavour = str(case.get("flavour", "cloud-amd64"))
    return flavour.removeprefix("cloud-amd64-") if flavour.startswith("cloud-amd64-") else "7.2"


def _config_name(arch: str, case: dict[str, Any]) -> str:
    """The config the booted kernel was built from: per flavour on x86, the record's on arm64."""
    if arch == "x86_64":
        return FLAVOUR_CONFIGS.get(str(case.get("flavour", "cloud-amd64")), CLOUD_CONFIG)
    return str(DOCS[arch]["config"])


def tree_side(
    arch: str, case: dict[str, Any], specs: tuple[FeatureSpec, ...]
) -> tuple[ResolveModel, ConfigInput]:
    """The real tree's model (of the booted version) for ARCH, and CASE's kernel config
    evaluated in it (once)."""
    name, version = _config_name(arch, case), _version(case)
    if (arch, version, name, "tree") not in _SIDES:
        path = real_configs(version, arch) / name
        _SIDES[arch, version, name, "tree"] = real_tree_resolve_side(version, arch, path, specs)
    return _SIDES[arch, version, name, "tree"]


def bundled_side(arch: str, case: dict[str, Any]) -> tuple[ResolveModel, ConfigInput]:
    """The bundled 7.2 model CASE's kernel config picks, and that config (once)."""
    name = _config_name(arch, case)
    if (arch, "7.2", name, "bundled") not in _SIDES:
        config = read_config(real_configs("7.2", arch) / name)
        path, _warning = pick_bundled(config.version, arch)
        _SIDES[arch, "7.2", name, "bundled"] = (read_model(path), config)
    return _SIDES[arch, "7.2", name, "bundled"]


def test_the_record_has_features() -> None:
    if not CASES:
        msg = f"{OBSERVED} is missing or records no features: run scripts/boot-oracle"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    seen = {k for c in CASES for k in c["features"]}
    assert set(REQUIRED) <= seen


# What the kernel finds in the x86 CPUs qemu 7.2's TCG emulates (kpolicy's names for the facts
# rules/params/ asks about): TCG has no spec-ctrl, so Skylake-Client-v4 lacks Enhanced IBRS and
# SSBD; on EPYC (AMD family 0x17) the kernel makes SSBD from the LS_CFG MSR, which TCG reads.
# Neither has VMX or IBPB under TCG ("KVM: Mitigation: VMX unsupported"; VMSCAPE left
# vulnerable by vmscape=force). The Skylake that reports Atom Gracemont's model number (0xBE)
# makes the kernel see RFDS as well. EPYC-Milan (family 0x19) gets no SSBD: the LS_CFG MSR is
# Zen 1/2's.
X86_CPU_FACTS = {
    "Skylake-Client-v4": frozenset({"intel"}),
    "Skylake-Client-v4,model=190": frozenset({"intel"}),
    "EPYC": frozenset({"amd", "ssbd"}),
    "EPYC-Milan": frozenset({"amd"}),
}


def _machine(case: dict[str, Any], arch: str = "x86_64") -> Machine:
    """The qemu machine of CASE: its RAM when the case sets one (-m), else unknown (768 MiB);
    the x86 CPU's facts where kpolicy knows them; on arm64, whether the boot has a KASLR seed
    (qemu's virt board puts one in the device tree unless dtb-kaslr-seed=off, and -cpu max has
    RNDR) and the emulated CPU's facts, which arm64's vulnerabilities files need."""
    if arch == "arm64":
        machine: Machine = arm64_boot_machine(case, DOCS["arm64"])
        return machine
    return Machine(ram_mib=case.get("mem"), secure_boot=False, kaslr_seed=True,
                   cpu_features=X86_CPU_FACTS.get(str(case.get("cpu"))))


def test_the_arm64_record_has_kaslr_and_vulnerabilities() -> None:
    """Every arm64 case recorded KASLR and the vulnerabilities files, and KASLR is seen both
    ways (nokaslr, a seedless boot)."""
    if not ARM64_CASES:
        msg = f"{OBSERVED['arm64']} is missing: run scripts/boot-oracle --arch arm64"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    assert len(ARM64_CASES) >= 40
    for case in ARM64_CASES:
        assert "kaslr" in case["features"] and "vulnerabilities.meltdown" in case["features"]
    assert {c["features"]["kaslr"] for c in ARM64_CASES} == {True, False}


# what the hardening cases observe (issue #12), each a feature of resolve's answer
HARDENING = ("kaslr", "psi", "kfence", "kfence.sample_interval", "ia32_emulation", "debugfs_mount")


def test_the_record_has_hardening_observations() -> None:
    """Every hardening case recorded every hardening observation (so none is silently skipped)."""
    cases = [c for c in CASES if "kaslr" in c["features"] or "psi" in c["features"]]
    assert len(cases) >= 40
    for case in cases:
        # Debian's 6.1 cloud kernel builds no KFENCE: no kfence.sample_interval to read
        unbuilt = {"kfence", "kfence.sample_interval"} if _version(case) == "6.1" else set()
        assert set(HARDENING) - unbuilt <= set(case["features"]), case["id"]


def _predicted(res: Resolution) -> dict[str, Any]:
    """RES's effective states, with what the boot can observe of some: debugfs mounts only when
    it is "on"; a process force-writes its own read-only page only under proc_mem "always";
    the lsm feature's text is securityfs' comma-separated list; the sysctls as
    /proc/sys prints them (randomize_va_space, recorded on every boot, as a number)."""
    predicted: dict[str, Any] = {f.name: f.effective for f in res.features}
    predicted.update({s.name: s.effective for s in res.sysctls})
    if predicted.get("sysctl.kernel.randomize_va_space") is not None:
        predicted["randomize_va_space"] = int(predicted["sysctl.kernel.randomize_va_space"])
    if "proc_mem.force_override" in predicted:  # only "always" overrides for an unptraced writer
        predicted["proc_mem.self_force_write"] = predicted["proc_mem.force_override"] == "always"
    if isinstance(predicted.get("lsm"), str):
        predicted["lsm"] = predicted["lsm"].split(",") if predicted["lsm"] else []
    if "debugfs" in predicted:
        predicted["debugfs_mount"] = predicted["debugfs"] == "on"
    if "smt" in predicted:
        predicted["smt.active"] = predicted["smt"] == "on"
    return predicted


def _observed(case: dict[str, Any]) -> dict[str, Any]:
    """CASE's observed features, each vulnerabilities file read as resolve states it: is the
    mitigation applied ("Mitigation: ...", or a "... attempted, no microcode" state) on the
    affected CPU qemu emulates; files of a bug the emulated CPU lacks are left out, and so are
    the states that do not say what the kernel selected ("Unknown: Dependent on hypervisor
    status", and "Vulnerable: No microcode", which GDS and SRBDS print for off and on alike)."""
    out = {}
    for name, value in case["features"].items():
        if not name.startswith("vulnerabilities."):
            out[name] = value
        elif value in MACHINE_STATES.get(name, ()):
            continue
        elif value.startswith(MITIGATED) or "attempted, no microcode" in value:
            out[name] = True
        elif value.startswith("Vulnerable") and not value.startswith("Vulnerable: No microcode"):
            out[name] = False
    return out


# states that say the mitigation is in place: "Mitigation: ...", KVM's iTLB multihit states,
# SRSO's safe RET without the microcode (the return thunk is installed)
MITIGATED = ("Mitigation:", "KVM: Mitigation:", "Vulnerable: Safe RET, no microcode")
# states the machine makes whatever the line says: SRSO on a Zen 1/2 that cannot run SMT (7.2
# reads spec_rstack_overflow=off before that check and still prints it)
MACHINE_STATES = {"vulnerabilities.spec_rstack_overflow": ("Mitigation: SMT disabled",)}


def test_the_generic_kernel_shows_page_poisoning_precedence() -> None:
    """The generic amd64 cases prove page_poison's precedence: init_on_alloc, on by default,
    turns off under page_poison=1 (and only there)."""
    generic = {c["id"]: c["features"] for c in CASES if c.get("flavour") == "amd64"}
    assert generic["generic-baseline"]["init_on_alloc"] is True
    assert generic["generic-page-poison"]["init_on_alloc"] is False


def test_the_emulated_intel_cpu_is_affected_by_meltdown() -> None:
    """The Skylake cases can prove the PTI predictions: the kernel there sees Meltdown."""
    skylake = [c for c in CASES if c.get("cpu") == "Skylake-Client-v4"]
    assert len(skylake) >= 10
    assert all(c["features"]["vulnerabilities.meltdown"] != "Not affected" for c in skylake)


def test_the_record_shows_both_states_of_the_new_vulnerabilities() -> None:
    """spectre_v2, mds and mmio_stale_data are each seen mitigated and vulnerable on the emulated
    Intel CPU (so the agreement below is not vacuous), and the shared VERW shows: mds=full under
    mitigations=off keeps MMIO Stale Data mitigated too."""
    skylake = {c["id"]: _observed(c) for c in CASES if c.get("cpu") == "Skylake-Client-v4"}
    for name in ("spectre_v2", "mds", "mmio_stale_data"):
        seen = {obs.get(f"vulnerabilities.{name}") for obs in skylake.values()}
        assert {True, False} <= seen, name
    assert skylake["skylake-nospectre-v2"]["vulnerabilities.spectre_v2"] is False
    verw = skylake["skylake-mds-full-mitigations-off"]
    assert verw["vulnerabilities.mds"] is True and verw["vulnerabilities.mmio_stale_data"] is True
    assert skylake["skylake-mitigations-off"]["vulnerabilities.l1tf"] is True  # PTE inversion


def test_the_record_shows_retbleed_ssb_and_smt_both_ways() -> None:
    """Retbleed and Speculative Store Bypass are each seen mitigated and vulnerable (EPYC), SMT
    on, off and forceoff, and the cases that tell the versions' rules apart agree with 7.2:
    a later mitigations=auto keeps SMT mitigations on, no_cross_thread turns them off, and
    Retbleed's nosmt disables SMT on AMD only."""
    observed = {c["id"]: _observed(c) for c in CASES}
    for name in ("vulnerabilities.retbleed", "vulnerabilities.spec_store_bypass"):
        seen = {obs.get(name) for i, obs in observed.items()
                if i.startswith(("epyc", "generic-epyc"))}
        assert {True, False} <= seen, name
    assert {obs.get("smt") for obs in observed.values()} >= {"on", "off", "forceoff"}
    assert observed["skylake-smt-auto-nosmt-then-auto"]["smt"] == "off"
    assert observed["skylake-smt-auto-nosmt-no-cross-thread"]["smt"] == "on"
    assert observed["skylake-smt-retbleed-nosmt"]["smt"] == "on"
    assert observed["epyc-smt-retbleed-nosmt"]["smt"] == "off"
    assert observed["skylake-mitigations-off"]["vulnerabilities.srbds"] is False


def test_the_record_shows_vdso32_shstk_and_stuffing() -> None:
    """The 32-bit vDSO is seen mapped and not (vdso32=0, values above 1, 7.2's saturated
    overflow, no ia32 emulation; vdso= is the 64-bit one), no emulated CPU offers user shadow
    stacks, and Retbleed on the emulated Intel CPU is mitigated only by retbleed=stuff on
    retpolines (spectre_v2=ibrs has no IBRS to use)."""
    observed = {c["id"]: _observed(c) for c in CASES}
    vdso = {i: o["vdso32"] for i, o in observed.items() if "vdso32" in o}
    assert vdso["skylake-vdso32-default"] is True and vdso["skylake-vdso64-off"] is True
    assert vdso["skylake-vdso32-wraps-to-one"] is True
    for off in ("skylake-vdso32-off", "skylake-vdso32-two", "skylake-vdso32-overflow",
                "skylake-vdso32-ia32-off"):
        assert vdso[off] is False, off
    assert not any(o["user_shstk"] for o in observed.values() if "user_shstk" in o)
    retbleed = {i: o.get("vulnerabilities.retbleed") for i, o in observed.items()}
    assert retbleed["skylake-retbleed-stuff"] is True
    assert retbleed["skylake-retbleed-stuff-nospectre-v2"] is False
    assert retbleed["skylake-spectre-v2-ibrs"] is False


def test_the_record_shows_lsms_hashing_and_sysrq_both_ways() -> None:
    """The probed cases (issue #12) see the LSM list change with lsm=, security= and apparmor=,
    pointers hashed and not (slab debugging, hash_pointers=always beating it), SysRq forced on
    and randomize_va_space 0, on both flavours (so their agreement below is not vacuous)."""
    probed = {c["id"]: c["features"] for c in CASES if "lsm" in c["features"]}
    assert len(probed) >= 15
    assert len({tuple(f["lsm"]) for f in probed.values()}) >= 8
    assert {f["hash_pointers"] for f in probed.values()} == {True, False}
    assert probed["hash-slub-debug"]["hash_pointers"] is False
    assert probed["hash-always-beats-slub-debug"]["hash_pointers"] is True
    assert {f["sysctl.kernel.sysrq"] for f in probed.values()} == {"1", "438"}
    assert {f["randomize_va_space"] for f in probed.values()} == {0, 2}
    assert "apparmor" not in probed["lsm-apparmor-0"]["lsm"]
    assert {c.get("flavour") for c in CASES if c["id"] in probed} == {None, "amd64"}
    procmem = {c["id"]: c["features"]["proc_mem.self_force_write"] for c in CASES
               if "proc_mem.self_force_write" in c["features"]}
    assert procmem["procmem-default"] is False and procmem["procmem-always"] is True


def test_the_record_shows_the_version_differences() -> None:
    """The 6.1 and 6.12 cloud kernels disagree with 7.2 on the same command line, as each
    version's source says (so predicting them from the right tree is not vacuous): pti=on
    survives mitigations=off in 6.1 and 7.2, not in 6.12; an exact pti= word beats nopti only in
    6.1; an explicit spectre_v2= survives mitigations=off only in 7.2."""
    observed = {c["id"]: _observed(c) for c in CASES}

    def seen(case: str, name: str) -> Any:
        return observed[case][f"vulnerabilities.{name}"]

    assert seen("skylake-pti-on-mitigations-off", "meltdown") is True
    assert seen("v61-skylake-pti-on-mitigations-off", "meltdown") is True
    assert seen("v612-skylake-pti-on-mitigations-off", "meltdown") is False
    assert seen("v61-skylake-pti-auto-then-nopti", "meltdown") is True
    assert seen("v612-skylake-pti-auto-then-nopti", "meltdown") is False
    assert seen("skylake-spectre-v2-retpoline-mitigations-off", "spectre_v2") is True
    for v in ("v61", "v612"):
        assert seen(f"{v}-skylake-spectre-v2-retpoline-mitigations-off", "spectre_v2") is False
    assert observed["v61-skylake-smt-mds-nosmt"]["smt"] == "off"
    assert observed["v612-skylake-smt-mmio-nosmt"]["smt"] == "off"


def test_the_record_shows_the_iommu_choices_both_ways() -> None:
    """The IOMMU cases see each state of the core's default domain and TLB policy and of the
    Intel driver, and the precedence the source has: the deprecated intel_iommu=strict and
    amd_iommu=fullflush (generic only: cloud lacks AMD_IOMMU) beat an earlier-parsed
    iommu.strict=0, and iommu=off beats intel_iommu=on."""
    observed = {c["id"]: c["features"] for c in CASES if "iommu.group_types" in c["features"]}
    assert len(observed) >= 12
    for name in ("iommu.passthrough", "iommu.strict", "intel_iommu", "amd_iommu"):
        assert {obs.get(name) for obs in observed.values()} >= {True, False}, name
    assert observed["iommu-intel-strict-beats-strict-0"]["iommu.strict"] is True
    assert observed["generic-iommu-amd-fullflush"]["iommu.strict"] is True
    assert observed["iommu-amd-fullflush-cloud"]["iommu.strict"] is False
    assert observed["q35-iommu-off-beats-intel-on"]["intel_iommu"] is False
    assert {t for obs in observed.values() for t in obs["iommu.group_types"]} == {
        "DMA", "DMA-FQ", "identity"}


# qemu IOMMUs whose driver forces strict invalidation after the core logged its policy: the AMD
# IOMMU's NPCACHE capability ("AMD-Vi: Using strict mode due to virtualization") and an Intel
# IOMMU in caching mode ("IOMMU batching disallowed due to virtualization"). The machine decides
# that; resolve's iommu.strict is the policy the core chose, which the log line shows.
FORCES_STRICT = ("amd-iommu", "caching-mode=on")


def test_iommu_group_types_follow_the_predicted_domain(specs: tuple[FeatureSpec, ...]) -> None:
    """Where qemu's IOMMU gives the devices IOMMU groups, every group has the domain type
    resolve's two features name: identity when passthrough, else DMA (strict) or DMA-FQ (lazy),
    except that an emulated IOMMU which makes its driver force strict has DMA groups."""
    cases = [c for c in CASES if c["features"].get("iommu.group_types")]
    assert len(cases) >= 6
    forced = [c for c in cases if any(f in d for d in c["devices"] for f in FORCES_STRICT)]
    assert len(forced) >= 2
    for case in cases:
        model, config = tree_side("x86_64", case, specs)
        res = resolve(model, config, case["cmdline"], specs=specs, machine=_machine(case))
        states = {f.name: f.effective for f in res.features}
        if states["iommu.passthrough"]:
            wanted = "identity"
        else:
            wanted = "DMA" if states["iommu.strict"] or case in forced else "DMA-FQ"
        assert case["features"]["iommu.group_types"] == [wanted], case["id"]


def _disagreements(res: Resolution, observed: dict[str, Any]) -> dict[str, Any]:
    predicted = _predicted(res)
    return {
        k: (predicted[k], v) for k, v in observed.items() if k in predicted and predicted[k] != v
    }


@pytest.mark.parametrize(("arch", "case"), ALL_CASES, ids=IDS)
def test_tree_prediction_matches_the_boot(
    specs: tuple[FeatureSpec, ...], arch: str, case: dict[str, Any]
) -> None:
    model, config = tree_side(arch, case, specs)
    res = resolve(model, config, case["cmdline"], specs=specs, machine=_machine(case, arch))
    assert _disagreements(res, _observed(case)) == {}, case["cmdline"]


# the bundled-model check covers the 7.2 kernels (the older versions' cases are predicted from
# their real trees above)
BUNDLED = [(a, c) for a, c in ALL_CASES if _version(c) == "7.2"]


@pytest.mark.parametrize(("arch", "case"), BUNDLED,
                         ids=[i for i, (_a, c) in zip(IDS, ALL_CASES) if _version(c) == "7.2"])
def test_bundled_prediction_matches_the_boot(
    specs: tuple[FeatureSpec, ...], arch: str, case: dict[str, Any]
) -> None:
    model, config = bundled_side(arch, case)
    res = resolve(model, config, case["cmdline"], specs=specs, machine=_machine(case, arch))
    assert _disagreements(res, _observed(case)) == {}, case["cmdline"]


def test_the_record_shows_srso_tsa_its_rfds_and_vmscape() -> None:
    """SRSO and ITS are each seen mitigated and vulnerable, TSA and RFDS vulnerable (their
    other modes read "Vulnerable: No microcode" without the microcode), and the cases that
    tell the versions' rules apart agree with 7.2: an explicit safe-ret survives
    mitigations=off, an explicit ITS word does not (Spectre v2 is off), and on a single-thread
    Zen 1 spec_rstack_overflow=off still reads "SMT disabled"."""
    raw = {c["id"]: c["features"] for c in CASES}
    observed = {c["id"]: _observed(c) for c in CASES}
    for name in ("spec_rstack_overflow", "indirect_target_selection"):
        assert {obs.get(f"vulnerabilities.{name}") for obs in observed.values()} >= {True, False}
    assert observed["milan-mitigations-off-srso-safe-ret"]["vulnerabilities.spec_rstack_overflow"]
    assert observed["milan-tsa-off"]["vulnerabilities.tsa"] is False
    assert raw["milan-baseline"]["vulnerabilities.tsa"] == "Vulnerable: No microcode"
    assert observed["skylake-its-on-mitigations-off"][
        "vulnerabilities.indirect_target_selection"] is False
    assert observed["gracemont-rfds-off"]["vulnerabilities.reg_file_data_sampling"] is False
    assert raw["epyc-srso-off-nosmt"]["vulnerabilities.spec_rstack_overflow"] == \
        "Mitigation: SMT disabled"
    assert raw["skylake-vmscape-force"]["vulnerabilities.vmscape"] == "Vulnerable"
