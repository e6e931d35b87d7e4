"""`kpolicy check --policy kspp` on Debian's real configs (7.2 amd64, cloud-amd64, rt-amd64 and
arm64, 6.12 cloud-amd64), judged with the tree's whole Kconfig:

- every fix kpolicy prints is applied (config lines appended to the config, words added to the
  command line, sysctls to a sysctl file) and the item is shown to pass;
- kernel-hardening-checker (Debian's package, installed by `scripts/fetch-trees khc-install`)
  runs live on the same configs, and every item where its verdict differs from kpolicy's is
  listed in khc_disagreements.toml with who is right and why.

About 10 s of CPU per config (the check with its fixes, then the check of the fixed config).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import _missing, real_configs, real_tree, trees_root

from kpolicy.cli import main
from kpolicy.textio import parse_toml_text

HERE = Path(__file__).resolve().parent
CONFIGS = [
    "7.2/config.amd64_none_amd64",
    "7.2/config.amd64_none_cloud-amd64",
    "7.2/config.amd64_none_rt-amd64",
    "6.12/config.amd64_none_cloud-amd64",
    "7.2-arm64/config.arm64_none_arm64",
]
# kspp items whose question khc asks of a different option: the feature's boot default
FEATURE_OPTIONS = {
    "init-on-alloc": "CONFIG_INIT_ON_ALLOC_DEFAULT_ON",
    "init-on-free": "CONFIG_INIT_ON_FREE_DEFAULT_ON",
    "hardened-usercopy": "CONFIG_HARDENED_USERCOPY_DEFAULT_ON",
    "slab-nomerge": "CONFIG_SLAB_MERGE_DEFAULT",
    "page-alloc-shuffle": "CONFIG_SHUFFLE_PAGE_ALLOCATOR",
    "randomize-kstack-offset": "CONFIG_RANDOMIZE_KSTACK_OFFSET_DEFAULT",
    "lockdown": "CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY",
    "module-sig-enforce": "CONFIG_MODULE_SIG_FORCE",
    "vsyscall-none": "CONFIG_X86_VSYSCALL_EMULATION",
    "iommu-dma-strict": "CONFIG_IOMMU_DEFAULT_DMA_STRICT",
    "iommu-passthrough-off": "CONFIG_IOMMU_DEFAULT_PASSTHROUGH",
    "efi-disable-pci-dma": "CONFIG_EFI_DISABLE_PCI_DMA",
    "x86-user-shadow-stack": "CONFIG_X86_USER_SHADOW_STACK",
    "security-yama": "CONFIG_SECURITY_YAMA",
    "security-landlock": "CONFIG_SECURITY_LANDLOCK",
    "proc-mem-no-force": "CONFIG_PROC_MEM_NO_FORCE",
    "bdev-write-mounted-off": "CONFIG_BLK_DEV_WRITE_MOUNTED",
    "arm64-gcs": "CONFIG_ARM64_GCS",
}
# Not compared: cpu-vulnerabilities (khc's CONFIG_MITIGATION_* checks ask whether each
# mitigation is built, not whether the command line leaves it on: without a command line the
# two agree by construction), hash-pointers (no Kconfig option), cfi-permissive-off and
# arm64-cfi-trap (khc's CONFIG_CFI_PERMISSIVE check also requires CFI_CLANG, which kspp's
# cfi-clang item covers; these two apply only where kCFI is in force)


def _arch(config: str) -> str:
    """The kernel ARCH of CONFIG: `7.2-arm64/...` is arm64's, `7.2/...` amd64's."""
    return "arm64" if config.split("/")[0].endswith("-arm64") else "x86_64"


def _paths(config: str) -> tuple[Path, Path]:
    version, name = config.split("/")
    version = version.removesuffix("-arm64")
    path = real_configs(version, _arch(config)) / name
    if not path.is_file():
        _missing(f"Debian config {config}")
    return path, real_tree(version)


def _run(args: list[str]) -> dict[str, Any]:
    from contextlib import redirect_stdout
    from io import StringIO

    out = StringIO()
    with redirect_stdout(out):
        main(["check", "--policy", "kspp", "--format", "json", *args])
    data: dict[str, Any] = json.loads(out.getvalue())
    return data


@functools.cache
def kspp_result(config: str) -> dict[str, Any]:
    """kpolicy's kspp results for CONFIG (with fixes), once per test process."""
    path, tree = _paths(config)
    return _run(["--config", str(path), "--tree", str(tree), "--arch", _arch(config)])


@pytest.mark.real
@pytest.mark.parametrize("config", CONFIGS)
def test_every_fix_is_applied_and_passes(config: str, tmp_path: Path) -> None:
    path, tree = _paths(config)
    results = kspp_result(config)["results"]
    fixed = [r for r in results if r["fix"] is not None]
    assert len(fixed) >= 30, "Debian's configs fail many kspp items, each with a fix"
    assert all(r["status"] == "fail" for r in fixed)

    def apply(items: list[dict[str, Any]], name: str) -> dict[str, str]:
        lines = [f"CONFIG_{s[len('CONFIG_'):]}={v}" if v != "n" else f"# {s} is not set"
                 for r in items for s, v in r["fix"]["config"].items()]
        words = [w for r in items for w in r["fix"]["cmdline"]]
        sysctl = [f"{k} = {v}" for r in items for k, v in r["fix"]["sysctl"].items()]
        conf = tmp_path / f"{name}.config"
        conf.write_text(path.read_text() + "\n".join(lines) + "\n")
        args = ["--config", str(conf), "--tree", str(tree), "--arch", _arch(config),
                "--cmdline", " ".join(words), "--no-fix"]
        if sysctl:
            (tmp_path / f"{name}.sysctl").write_text("\n".join(sysctl) + "\n")
            args += ["--sysctl", str(tmp_path / f"{name}.sysctl")]
        return {r["id"]: r["status"] for r in _run(args)["results"]}

    together = apply(fixed, "all")
    alone = [r for r in fixed if together[r["id"]] != "pass"]
    # fixes that undo one another (DEVMEM off vs STRICT_DEVMEM) are applied one by one
    assert len(alone) <= 3, [r["id"] for r in alone]
    for r in alone:
        assert apply([r], r["id"])[r["id"]] == "pass", r
    # and a fix that breaks another item says so
    for r in fixed:
        for broken in r["fix"]["breaks"]:
            assert apply([r], f"{r['id']}-breaks")[broken] == "fail", (r["id"], broken)


@pytest.mark.real
def test_known_verdicts_on_debian_7_2_cloud() -> None:
    by_id = {r["id"]: r for r in kspp_result("7.2/config.amd64_none_cloud-amd64")["results"]}
    assert by_id["init-on-free"]["status"] == "fail"
    assert by_id["init-on-free"]["fix"]["cmdline"] == ["init_on_free=1"]
    # the strict IOMMU is one item on the state in force: the command line fixes it, no rebuild
    assert by_id["iommu-dma-strict"]["fix"]["cmdline"] == ["iommu.strict=1"]
    assert by_id["iommu-dma-strict"]["fix"]["config"] == {}
    assert by_id["proc-mem-no-force"]["fix"]["cmdline"] == ["proc_mem.force_override=never"]
    assert by_id["bdev-write-mounted-off"]["fix"]["cmdline"] == ["bdev_allow_write_mounted=0"]
    assert by_id["cpu-vulnerabilities"]["status"] == "pass"
    assert by_id["cpu-vulnerabilities"]["actual"] == "all 17 met"
    # STRICT_DEVMEM goes with DEVMEM, and the strict-devmem items apply only where DEVMEM=y
    assert "STRICT_DEVMEM: y -> n" in by_id["devmem-off"]["fix"]["drags"]
    assert by_id["devmem-off"]["fix"]["breaks"] == []
    assert by_id["page-table-check-enforced"]["fix"]["config"] == {
        "CONFIG_PAGE_TABLE_CHECK_ENFORCED": "y", "CONFIG_PAGE_TABLE_CHECK": "y"}
    assert by_id["randstruct-full"]["status"] == "not-applicable"
    assert "GCC_PLUGINS" in by_id["randstruct-full"]["why"]
    assert by_id["acpi-custom-method-off"]["status"] == "pass"  # gone from 7.2 altogether
    assert "does not exist" in by_id["acpi-custom-method-off"]["why"]
    assert by_id["mitigations-nosmt"]["affects"][:2] == ["l1tf", "mds"]


@pytest.mark.real
def test_a_fix_that_breaks_another_item_says_so(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text("""
[policy]
name = "devmem"
reference = "https://example.org"
[[item]]
id = "devmem-off"
require = "CONFIG_DEVMEM = n"
why = "no /dev/mem"
[[item]]
id = "strict-devmem"
require = "CONFIG_STRICT_DEVMEM = y"
why = "no RAM through /dev/mem"
""")
    path, tree = _paths("7.2/config.amd64_none_cloud-amd64")
    from contextlib import redirect_stdout
    from io import StringIO

    out = StringIO()
    with redirect_stdout(out):
        main(["check", "--policy", str(policy), "--config", str(path), "--tree", str(tree),
              "--format", "json"])
    r = {x["id"]: x for x in json.loads(out.getvalue())["results"]}
    assert r["strict-devmem"]["status"] == "pass"
    assert r["devmem-off"]["fix"]["breaks"] == ["strict-devmem"]


# --- kernel-hardening-checker, live ------------------------------------------------------------


INSTALLED_KHC = Path("/usr/bin/kernel-hardening-checker")


def khc_installed() -> bool:
    """Whether Debian's kernel-hardening-checker package is installed (dpkg says so)."""
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "kernel-hardening-checker"],
                          capture_output=True, text=True)
    return done.stdout == "install ok installed" and INSTALLED_KHC.is_file()


def khc_command() -> tuple[list[str], dict[str, str]]:
    """How to run kernel-hardening-checker: the installed Debian package (CI installs it with
    `scripts/fetch-trees khc-install`, and under CI=true nothing else will do), else, on a
    machine without it, the same package unpacked by `scripts/fetch-trees khc`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if khc_installed():
        return [str(INSTALLED_KHC)], env
    if os.environ.get("CI") == "true":
        pytest.fail("kernel-hardening-checker is not installed (scripts/fetch-trees khc-install)")
    usr = trees_root() / "khc" / "usr"
    if not (usr / "bin" / "kernel-hardening-checker").is_file():
        _missing("kernel-hardening-checker (scripts/fetch-trees khc-install, or khc)")
    env["PYTHONPATH"] = str(usr / "lib" / "python3" / "dist-packages")
    return [sys.executable, str(usr / "bin" / "kernel-hardening-checker")], env


def khc_verdicts(config: Path) -> dict[str, bool]:
    """khc's kconfig verdicts on CONFIG: option -> OK (its first check of that option)."""
    argv, env = khc_command()
    out = subprocess.run(
        [*argv, "-c", str(config), "-m", "json"], env=env, capture_output=True, text=True,
        check=True, timeout=120,
    ).stdout
    verdicts: dict[str, bool] = {}
    for check in json.loads(out):
        if check["type"] == "kconfig":
            verdicts.setdefault(check["option_name"], bool(check["check_result_bool"]))
    return verdicts


def comparison(config: str) -> tuple[int, set[tuple[str, str, bool, str]]]:
    """(items compared, disagreements as (item, khc option, khc ok, kpolicy status))."""
    path, _tree = _paths(config)
    khc = khc_verdicts(path)
    compared = 0
    out = set()
    for r in kspp_result(config)["results"]:
        option = FEATURE_OPTIONS.get(r["id"])
        if option is None and r["require"].startswith("CONFIG_"):
            option = r["require"].split()[0]
        if option is None or option not in khc:
            continue
        if r["status"] == "not-applicable" and r["why"].startswith("applies to "):
            continue  # another arch's item: khc checks this arch's twin
        compared += 1
        agree = (khc[option] and r["status"] == "pass") or (
            not khc[option] and r["status"] == "fail")
        if not agree:
            out.add((r["id"], option, khc[option], r["status"]))
    return compared, out


def recorded() -> list[dict[str, Any]]:
    path = HERE / "khc_disagreements.toml"
    data = parse_toml_text(path.read_text(), path)
    entries: list[dict[str, Any]] = data["disagreement"]
    for e in entries:
        assert e["right"] in ("kpolicy", "khc", "both") and len(e["why"]) > 80, e["item"]
    return entries


@pytest.mark.real
@pytest.mark.parametrize("config", CONFIGS)
def test_every_disagreement_with_khc_is_explained(config: str) -> None:
    compared, found = comparison(config)
    assert compared >= 70  # the comparison covers most of khc's kconfig checks
    expected = {(e["item"], e["khc"]["option"], e["khc"]["ok"], e["kpolicy"])
                for e in recorded() if config in e["configs"]}
    assert found == expected


@pytest.mark.real
@pytest.mark.parametrize("config", ["7.2/config.amd64_none_cloud-amd64",
                                    "7.2-arm64/config.arm64_none_arm64"])
def test_every_state_item_is_compared_with_khcs_option(config: str) -> None:
    """The items on a state (FEATURE_OPTIONS) meet the khc option they are compared with: a
    renamed item or a khc release dropping the option shows here, not as a quieter table."""
    path, _tree = _paths(config)
    khc = khc_verdicts(path)
    for r in kspp_result(config)["results"]:
        if r["id"] in FEATURE_OPTIONS and not r["why"].startswith("applies to "):
            assert FEATURE_OPTIONS[r["id"]] in khc, r["id"]
    ids = {r["id"] for r in kspp_result(config)["results"]}
    assert set(FEATURE_OPTIONS) <= ids


@pytest.mark.real
def test_the_comparison_runs_the_installed_debian_package() -> None:
    """The verdicts compared above are those of Debian's package as dpkg installed it (CI:
    `scripts/fetch-trees khc-install`), at the version dpkg reports."""
    if not khc_installed():
        _missing("Debian's kernel-hardening-checker package, installed")
    argv, env = khc_command()
    assert argv == [str(INSTALLED_KHC)] and "PYTHONPATH" not in env
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "kernel-hardening-checker"],
                             capture_output=True, text=True, check=True).stdout
    shown = subprocess.run([*argv, "--version"], env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert shown[0] == "kernel-hardening-checker"
    assert version.startswith(shown[1] + "-")  # 0.6.17.1 of the Debian version 0.6.17.1-3


README_ROWS = {
    "7.2/config.amd64_none_amd64": "7.2 amd64",
    "7.2/config.amd64_none_cloud-amd64": "7.2 cloud-amd64",
    "7.2/config.amd64_none_rt-amd64": "7.2 rt-amd64",
    "6.12/config.amd64_none_cloud-amd64": "6.12 cloud-amd64",
    "7.2-arm64/config.arm64_none_arm64": "7.2 arm64",
}


def table_cells(config: str) -> list[str]:
    """The README summary table's first four cells for CONFIG, from this comparison: the
    config, kspp's pass / fail / n/a, the items compared with khc, the disagreements."""
    summary = kspp_result(config)["summary"]
    compared, found = comparison(config)
    return [README_ROWS[config],
            f"{summary['pass']} / {summary['fail']} / {summary['not-applicable']}",
            str(compared), str(len(found))]


@pytest.mark.real
@pytest.mark.parametrize("config", CONFIGS)
def test_the_readme_table_is_this_comparison(config: str) -> None:
    """README's table beside kernel-hardening-checker is what this comparison finds (print the
    rows with `PYTHONPATH=$PWD:tests python3 tests/policy/test_policy_debian.py` after a change
    of either side)."""
    readme = (HERE.parent.parent / "README.md").read_text()
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in readme.splitlines() if line.startswith(f"| {README_ROWS[config]} |")]
    assert len(rows) == 1
    assert rows[0][:4] == table_cells(config)


if __name__ == "__main__":
    for name in CONFIGS:
        print("| " + " | ".join(table_cells(name)) + " |")
