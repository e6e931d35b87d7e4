"""The bundled policies' CPU-vulnerability item on Debian's real 6.1, 6.12 and 7.2 configs (the
bundled models): one `vulnerabilities.* = true` item over every vulnerabilities file resolve
declares for the version and arch, so `mitigations=off` is one failure naming the bugs it leaves
open, not seventeen; and the items written on the states resolve learned (IOMMU, EFI, LSMs,
proc_mem, bdev_allow_write_mounted, hash_pointers) judged the same way on every version.
About a second of CPU per check."""

from __future__ import annotations

import json
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from conftest import _missing, real_configs

from kpolicy.cli import main

X86_BUGS = {
    "gather_data_sampling", "indirect_target_selection", "itlb_multihit", "l1tf", "mds",
    "meltdown", "mmio_stale_data", "reg_file_data_sampling", "retbleed", "spec_rstack_overflow",
    "spec_store_bypass", "spectre_v1", "spectre_v2", "srbds", "tsa", "tsx_async_abort",
    "vmscape",
}


def _config(version: str, arch: str = "x86_64") -> Path:
    name = "config.amd64_none_cloud-amd64" if arch == "x86_64" else "config.arm64_none_arm64"
    path = real_configs(version, arch) / name
    if not path.is_file():
        _missing(f"Debian config {path}")
    return path


def _check(policy: str, config: Path, cmdline: str) -> dict[str, dict[str, Any]]:
    out = StringIO()
    with redirect_stdout(out):
        main(["check", "--policy", policy, "--config", str(config), "--cmdline", cmdline,
              "--format", "json"])
    return {r["id"]: r for r in json.loads(out.getvalue())["results"]}


@pytest.mark.real
@pytest.mark.parametrize("policy", ["kspp", "baseline"])
@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2"])
def test_mitigations_off_is_one_finding_on_every_version(version: str, policy: str) -> None:
    config = _config(version)
    clean = _check(policy, config, "")["cpu-vulnerabilities"]
    assert clean["status"] == "pass"
    assert clean["actual"] == f"all {len(X86_BUGS)} met"  # no since limit: 6.1 has all of them
    off = _check(policy, config, "mitigations=off")
    failing = [r for r in off.values() if r["status"] == "fail" and r["id"].startswith("cpu-")]
    assert [r["id"] for r in failing] == ["cpu-vulnerabilities"]
    # l1tf's PTE inversion is not switched off by anything on the command line
    assert set(failing[0]["affects"]) == X86_BUGS - {"l1tf"}
    assert "mitigations" in failing[0]["why"]


@pytest.mark.real
@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2"])
def test_one_bugs_own_off_word_names_that_bug(version: str) -> None:
    got = _check("kspp", _config(version), "spectre_v2=off")["cpu-vulnerabilities"]
    # Spectre v2 off takes Indirect Target Selection's mitigation with it (its_update_mitigation)
    assert got["status"] == "fail"
    assert got["affects"] == ["indirect_target_selection", "spectre_v2"]
    assert got["fix"] is None and got["no_fix"]


@pytest.mark.real
def test_old_microcode_is_left_out_on_7_2() -> None:
    got = _check("kspp", _config("7.2"), "")["cpu-vulnerabilities"]
    assert got["status"] == "pass" and "old_microcode" not in got["actual"]


@pytest.mark.real
@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2"])
def test_arm64_judges_what_the_command_line_decides(version: str) -> None:
    config = _config(version, "arm64")
    clean = _check("kspp", config, "")["cpu-vulnerabilities"]
    # each of arm64's three files rests on the CPU (E0PD, SSBS, CSV2) without a command line
    assert clean["status"] == "pass"
    assert clean["actual"] == ("all 0 met; 3 depend on the machine: "
                               "meltdown, spec_store_bypass, spectre_v2")
    off = _check("kspp", config, "kpti=0 ssbd=force-off")["cpu-vulnerabilities"]
    assert off["status"] == "fail"
    assert off["affects"] == ["meltdown", "spec_store_bypass"]


@pytest.mark.real
@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2"])
def test_state_items_on_every_version(version: str) -> None:
    config = _config(version)
    plain = _check("kspp", config, "")
    assert plain["iommu-dma-strict"]["status"] == "fail"  # Debian: IOMMU_DEFAULT_DMA_LAZY
    assert plain["iommu-dma-strict"]["fix"]["cmdline"] == ["iommu.strict=1"]
    assert plain["security-yama"]["status"] == "pass"
    assert plain["hash-pointers"]["status"] == "pass"
    fixed = _check("kspp", config, "iommu.strict=1 proc_mem.force_override=never "
                                   "efi=disable_early_pci_dma")
    for item in ("iommu-dma-strict", "proc-mem-no-force", "efi-disable-pci-dma"):
        assert fixed[item]["status"] == "pass", fixed[item]
    # a later iommu.strict=0 undoes it; no_hash_pointers and lsm= without yama fail their items
    worse = _check("kspp", config, "iommu.strict=1 iommu.strict=0 no_hash_pointers "
                                   "lsm=landlock,apparmor")
    assert worse["iommu-dma-strict"]["status"] == "fail"
    assert worse["hash-pointers"]["status"] == "fail"
    assert worse["security-yama"]["status"] == "fail"
    # the fix keeps the LSMs in force, in their order, and appends Yama (proven to pass)
    assert worse["security-yama"]["fix"]["cmdline"] == [
        "lsm=" + worse["security-yama"]["actual"] + ",yama"]
    assert worse["security-yama"]["fix"]["breaks"] == []
    assert worse["security-landlock"]["status"] == "pass"
    base = _check("baseline", config, "")
    # Debian's 6.1 and 6.12 let any writer force through /proc/PID/mem; 7.2 only a ptracer
    assert base["proc-mem-force-override"]["status"] == ("pass" if version == "7.2" else "fail")
    if version != "7.2":
        assert base["proc-mem-force-override"]["fix"]["cmdline"] == [
            "proc_mem.force_override=ptrace"]
    assert plain["bdev-write-mounted-off"]["status"] == (
        "not-applicable" if version == "6.1" else "fail")
