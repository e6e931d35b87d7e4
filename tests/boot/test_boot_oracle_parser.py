"""The boot oracle's harness without booting: serial-log parsing, the initramfs, and the
agreement between cases.toml and the recorded observed.json."""

from __future__ import annotations

import gzip
from pathlib import Path

import oracle
import pytest

DATA = Path(__file__).resolve().parent / "data"


def od(data: bytes) -> list[str]:
    """What busybox `od -An -tx1 -v` prints for DATA."""
    return [" " + " ".join(f"{b:02x}" for b in data[i : i + 16]) for i in range(0, len(data), 16)]


def synthetic_log(argv: bytes, envp: bytes, cmdline: bytes) -> str:
    lines = ["[    0.071113] Kernel command line: whatever", "noise before /init"]
    for name, data in (("argv", argv), ("envp", envp), ("proc_cmdline", cmdline)):
        lines += [f"@@KP-BEGIN {name}", *od(data), "@@KP-END"]
    lines += [
        "@@KP-BEGIN dmesg",
        "[    0.1] Malformed early option 'init_on_free'",
        "[    0.2] mem auto-init: stack:all(zero), heap alloc:off, heap free:on",
        "[    0.3] Booting kernel: `' invalid for parameter `pause_on_oops'",
        "@@KP-END",
        "@@KP-BEGIN files",
        "/sys/kernel/security/lockdown:none [integrity] confidentiality",
        "/sys/kernel/mm/transparent_hugepage/enabled:always madvise [never]",
        "/proc/sys/kernel/randomize_va_space:0",
        "@@KP-END",
        "@@KP-BEGIN params",
        "/sys/module/zswap/parameters/enabled:Y",
        "/sys/module/module/parameters/sig_enforce:N",
        "/sys/module/kernel/parameters/module_blacklist:",
        "@@KP-END",
        "@@KP-BEGIN sysctl",
        "/proc/sys/kernel/watchdog:0",
        "/proc/sys/vm/swappiness:60",
        "@@KP-END",
        "@@KP-DONE",
    ]
    return "\n".join(lines) + "\n"


def test_hex_sections_keep_empty_strings_spaces_and_quotes() -> None:
    log = synthetic_log(
        b"/bin/sh\0/init\0\0a b\0--\0", b'HOME=/\0TERM=linux\0x="q" r\0', b"console=ttyS0  a\tb \n"
    )
    obs = oracle.parse_serial(
        log, params=["kernel.module_blacklist", "sysctl.kernel.watchdog", "no.such"]
    )
    assert obs["argv"] == ["", "a b", "--"]
    assert obs["envp"] == ['x="q" r']
    assert obs["proc_cmdline"] == "console=ttyS0  a\tb "
    assert obs["completed"] is True
    assert obs["malformed_early"] == ["init_on_free"]
    assert obs["invalid"] == [{"param": "pause_on_oops", "value": ""}]
    assert obs["features"] == {
        "init_on_alloc": False,
        "init_on_free": True,
        "lockdown": "integrity",
        "transparent_hugepage": "never",
        "randomize_va_space": 0,
        "zswap.enabled": True,
        "module.sig_enforce": False,
        "kernel.module_blacklist": "",
        "sysctl.kernel.watchdog": "0",
    }


def test_bad_sysfs_bool_is_an_error_not_a_guess() -> None:
    log = synthetic_log(b"/bin/sh\0/init\0", b"", b"\n").replace("enabled:Y", "enabled:1")
    with pytest.raises(ValueError, match="sysfs bool"):
        oracle.parse_serial(log)


def test_captured_boot_log() -> None:
    """A real serial log (see data/README) parses to what its command line asked for."""
    log = (DATA / "serial-mixed.log").read_text(encoding="utf-8")
    obs = oracle.parse_serial(log, params=["zswap.max_pool_percent"])
    cmdline = obs["proc_cmdline"]
    assert f"Kernel command line: {cmdline}" in log
    # The invalid zswap value makes the kernel drop everything after "--" (init/main.c).
    assert obs["argv"] == ["a b"]
    assert obs["envp"] == ["x=c d", "FOO=2"]
    assert obs["unknown_raw"] == "a b x=c d FOO=2"
    assert obs["malformed_early"] == ["init_on_alloc"]
    assert obs["invalid"] == [{"param": "zswap.max_pool_percent", "value": "lots"}]
    assert obs["panic"] is None and obs["completed"] is True
    assert obs["features"]["init_on_free"] is True
    assert obs["features"]["init_on_alloc"] is True  # the malformed value left the default
    assert obs["features"]["lockdown"] == "integrity"
    assert obs["features"]["transparent_hugepage"] == "madvise"
    assert obs["features"]["module.sig_enforce"] is True
    assert obs["features"]["zswap.max_pool_percent"] == "20"


def test_captured_panic_log() -> None:
    """After a Too-many-args panic nothing from /init exists; the panic line is kept."""
    log = (DATA / "serial-panic.log").read_text(encoding="utf-8")
    obs = oracle.parse_serial(log)
    assert obs["completed"] is False
    assert obs["argv"] is None and obs["envp"] is None and obs["proc_cmdline"] is None
    assert obs["panic"] is not None
    assert obs["panic"].startswith("Kernel panic - not syncing: Too many boot init vars")
    assert "lockdown" not in obs["features"]


def test_initramfs_is_deterministic_and_has_init() -> None:
    data = oracle.initramfs_bytes()
    assert data == oracle.initramfs_bytes()
    raw = gzip.decompress(data)
    for name in (b"init\0", b"bin/busybox\0", b"dev/console\0", b"TRAILER!!!\0"):
        assert name in raw
    assert b"poweroff -f" in raw and b"/proc/1/cmdline" in raw


def test_load_cases_rejects_duplicates_and_unknown_keys(tmp_path: Path) -> None:
    dup = tmp_path / "dup.toml"
    dup.write_text('[[case]]\nid="a"\ncmdline=""\npurpose="p"\n' * 2)
    with pytest.raises(ValueError, match="duplicate"):
        oracle.load_cases(dup)
    typo = tmp_path / "typo.toml"
    typo.write_text('[[case]]\nid="a"\ncmdline=""\npurpose="p"\nmemory=1\n')
    with pytest.raises(ValueError, match="unknown keys"):
        oracle.load_cases(typo)


@pytest.mark.parametrize(
    ("target", "at_least"), [(oracle.X86_64, 50), (oracle.ARM64, 40)], ids=["x86_64", "arm64"]
)
def test_record_matches_cases_and_is_canonical(target: oracle.Target, at_least: int) -> None:
    """A target's observed*.json covers its cases file exactly, in order, and is written
    canonically."""
    cases = oracle.load_cases(target=target)
    doc = oracle.load_observed(target.observed_file)
    records = doc["cases"]
    assert len(cases) >= at_least
    assert [r["id"] for r in records] == [c.id for c in cases]
    for case, rec in zip(cases, records):
        assert rec["cmdline"] == case.full_cmdline
        assert rec.get("mem", oracle.DEFAULT_MEM_MIB) == case.mem
        assert rec.get("machine") == case.machine and rec.get("cpu") == case.cpu
        assert rec.get("devices", []) == list(case.devices)
        assert not rec["timed_out"] and (rec["completed"] or rec["panic"]), case.id
    text = target.observed_file.read_text(encoding="utf-8")
    assert oracle.document(records, Path(doc["kernel"]), target) == text


def test_arm64_sections_are_parsed() -> None:
    """The arm64 /init's extra sections: vulnerabilities and kaslr as features, hwcaps and the
    log's "CPU features: detected" names beside them; the x86 parse ignores them."""
    log = (
        synthetic_log(b"/init\0", b"HOME=/\0", b"x\n")
        .replace(
            "@@KP-DONE",
            "\n".join(
                [
                    "@@KP-BEGIN vulnerabilities",
                    "/sys/devices/system/cpu/vulnerabilities/meltdown:Not affected",
                    "/sys/devices/system/cpu/vulnerabilities/spectre_v2:Mitigation: CSV2, BHB",
                    "@@KP-END",
                    "@@KP-BEGIN kallsyms",
                    "ffff800080000000 T _text",
                    "@@KP-END",
                    "@@KP-BEGIN cpuinfo",
                    "Features\t: fp asimd paca pacg bti",
                    "@@KP-END",
                    "@@KP-DONE",
                ]
            ),
        )
        .replace(
            "[    0.3] Booting",
            "[    0.25] CPU features: detected: Branch Target Identification\n[0.3] Booting",
        )
    )
    obs = oracle.parse_serial(log, target=oracle.ARM64)
    assert obs["features"]["vulnerabilities.meltdown"] == "Not affected"
    assert obs["features"]["vulnerabilities.spectre_v2"] == "Mitigation: CSV2, BHB"
    assert obs["features"]["kaslr"] is False
    assert obs["hwcaps"] == ["asimd", "bti", "fp", "paca", "pacg"]
    assert obs["cpu_features"] == ["Branch Target Identification"]
    moved = oracle.parse_serial(
        log.replace("ffff800080000000 T", "ffffa0c1b2a00000 T"), target=oracle.ARM64
    )
    assert moved["features"]["kaslr"] is True
    x86 = oracle.parse_serial(log)
    assert "hwcaps" not in x86 and "kaslr" not in x86["features"]


def test_arm64_initramfs_has_the_extra_sections_and_its_busybox(tmp_path: Path) -> None:
    fake = tmp_path / "busybox"
    fake.write_bytes(b"\x7fELF-aarch64-busybox")
    data = gzip.decompress(oracle.initramfs_bytes(fake, oracle.ARM64))
    assert b"\x7fELF-aarch64-busybox" in data
    assert b"section kallsyms" in data and b"section cpuinfo" in data
    assert b"section cpuinfo" not in gzip.decompress(oracle.initramfs_bytes(fake))


def test_arm64_cases_cover_both_cpus_and_the_arm64_options() -> None:
    """The arm64 cases boot both CPU models and name every arm64 option the issue lists."""
    cases = oracle.load_cases(target=oracle.ARM64)
    assert {c.cpu for c in cases} >= {None, "cortex-a57"}
    assert any(c.machine and "mte=on" in c.machine for c in cases)
    text = " ".join(c.cmdline for c in cases)
    for word in (
        "kpti=",
        "ssbd=",
        "nospectre_v2",
        "nospectre_bhb",
        "rodata=",
        "arm64.nobti",
        "arm64.nopauth",
        "arm64.nomte",
        "arm64.nogcs",
        "arm64.nosve",
        "id_aa64",
        "nokaslr",
        "kaslr.disabled",
        "randomize_kstack_offset",
        "kasan",
    ):
        assert word in text, word


def test_feature_cases_are_many() -> None:
    """At least 40 cases exercise the recorded features on the command line."""
    words = (
        "init_on",
        "init-on",
        "lockdown",
        "transparent",
        "zswap",
        "sig_enforce",
        "sig-enforce",
        "shuffle",
        "randomize_va_space",
        "norandmaps",
    )
    assert sum(any(w in c.cmdline.lower() for w in words) for c in oracle.load_cases()) >= 40


def test_host_flakes_are_retried_not_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TCG timer-check panic is the host's fault: observe() boots again and keeps the retry."""
    good = synthetic_log(b"/bin/sh\0/init\0", b"HOME=/\0TERM=linux\0", b"x\n")
    flake = "Kernel panic - not syncing: IO-APIC + timer doesn't work!  Boot with apic=debug\n"
    serials = [flake, good]
    monkeypatch.setattr(
        oracle, "boot", lambda *a, **k: oracle.BootResult(serials.pop(0), 1.0, False)
    )
    record, result = oracle.observe(oracle.Case("c", "", "p"), Path("v"), Path("i"))
    assert result.attempts == 2 and not serials
    assert record["panic"] is None and record["completed"] is True


def test_lsm_probe_is_opt_in_and_keeps_order() -> None:
    log = synthetic_log(b"/bin/sh\0/init\0", b"", b"\n").replace(
        "@@KP-DONE",
        "@@KP-BEGIN lsm\ncapability,landlock,lockdown,yama,apparmor\n@@KP-END\n@@KP-DONE",
    )
    assert "lsm" not in oracle.parse_serial(log)["features"]
    probed = oracle.parse_serial(log, probes=["lsm"])
    assert probed["features"]["lsm"] == ["capability", "landlock", "lockdown", "yama", "apparmor"]


def test_unknown_probe_is_refused(tmp_path: Path) -> None:
    cases = tmp_path / "cases.toml"
    cases.write_text('[[case]]\nid = "x"\ncmdline = ""\npurpose = "p"\nprobes = ["nosuch"]\n')
    with pytest.raises(ValueError, match="unknown probes"):
        oracle.load_cases(cases)


def test_hash_pointers_and_sysrq_probes() -> None:
    """hash_pointers is off exactly when the log has the kernel's unhashed-addresses notice;
    sysrq reads /proc/sys/kernel/sysrq; the lsm section keeps the markers on their own lines."""
    banner = "** This system shows unhashed kernel memory addresses   **"
    log = ("@@KP-BEGIN dmesg\n[    0.1] " + banner + "\n@@KP-END\n"
           "@@KP-BEGIN sysctl\n/proc/sys/kernel/sysrq:1\n@@KP-END\n@@KP-DONE")
    features = oracle.parse_serial(log, probes=["hash_pointers", "sysrq"])["features"]
    assert features == {"hash_pointers": False, "sysctl.kernel.sysrq": "1"}
    quiet = log.replace(banner, "Hash pointers mode set to always.")
    assert oracle.parse_serial(quiet, probes=["hash_pointers"])["features"]["hash_pointers"]
    assert "cat /sys/kernel/security/lsm; echo" in oracle.INIT_SCRIPT


def test_iommu_probes_read_the_core_lines_and_the_groups() -> None:
    """The iommu probe reads iommu_subsys_init's lines (the policy line only when translated)
    and the iommu_groups' types; the driver probes see their start lines."""
    log = synthetic_log(b"/bin/sh\0/init\0", b"", b"\n").replace(
        "@@KP-DONE",
        "@@KP-BEGIN iommu_groups\n/sys/kernel/iommu_groups/0/type:DMA\n"
        "/sys/kernel/iommu_groups/1/type:DMA\n@@KP-END\n@@KP-DONE",
    )
    log = log.replace(
        "@@KP-BEGIN dmesg\n",
        "@@KP-BEGIN dmesg\n[    2.4] iommu: Default domain type: Translated (set via kernel "
        "command line)\n[    2.4] iommu: DMA domain TLB invalidation policy: strict mode\n"
        "[    2.7] DMAR: Intel(R) Virtualization Technology for Directed I/O\n",
    )
    assert "iommu.passthrough" not in oracle.parse_serial(log)["features"]
    feats = oracle.parse_serial(log, probes=["iommu", "intel_iommu", "amd_iommu"])["features"]
    assert feats["iommu.passthrough"] is False and feats["iommu.strict"] is True
    assert feats["iommu.group_types"] == ["DMA"]
    assert feats["intel_iommu"] is True and feats["amd_iommu"] is False
    passthrough = log.replace("Translated (set via kernel command line)", "Passthrough").replace(
        "[    2.4] iommu: DMA domain TLB invalidation policy: strict mode\n", "")
    feats = oracle.parse_serial(passthrough, probes=["iommu"])["features"]
    assert feats["iommu.passthrough"] is True and "iommu.strict" not in feats


def test_a_section_without_a_final_newline_still_ends() -> None:
    """securityfs' lsm file has no final newline, so its end marker shares the last line: the
    section still closes there and the boot still counts as completed."""
    log = synthetic_log(b"/bin/sh\0/init\0", b"", b"\n").replace(
        "@@KP-DONE", "@@KP-BEGIN lsm\ncapability,yama@@KP-END\n@@KP-DONE")
    record = oracle.parse_serial(log, probes=["lsm"])
    assert record["completed"] is True
    assert record["features"]["lsm"] == ["capability", "yama"]


def test_proc_mem_probe_reads_the_write_status() -> None:
    log = "@@KP-BEGIN procmem\nrc=1\n@@KP-END\n@@KP-DONE"
    assert oracle.parse_serial(log, probes=["proc_mem"])["features"] == {
        "proc_mem.self_force_write": False}
    ok = log.replace("rc=1", "rc=0")
    assert oracle.parse_serial(ok, probes=["proc_mem"])["features"]["proc_mem.self_force_write"]
