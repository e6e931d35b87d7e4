"""Issue #12, IOMMU/DMA and debug_pagealloc, on Debian's real 6.1, 6.12 and 7.2 configs and the
bundled models of each version: what the kernel ends up using, with the precedence each
version's source has.

The 7.2 answers are also proven on real boots (tests/boot, the iommu-* and q35-* cases); these
pin what the 7.2 kernel cannot show: that 6.1 and 6.12 agree where their source agrees, and
where kstrtobool() differs (6.16 added enable/disable).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import real_configs

from kpolicy.resolve.api import Resolution, resolve
from kpolicy.resolve.bundle import pick_bundled, read_model
from kpolicy.resolve.inputs import read_config

pytestmark = pytest.mark.real

VERSIONS = ["6.1", "6.12", "7.2"]


def _resolve(version: str, flavour: str, cmdline: str, arch: str = "x86_64",
             config: Path | None = None) -> Resolution:
    prefix = "arm64_none" if arch == "arm64" else "amd64_none"
    given = read_config(config or real_configs(version, arch) / f"config.{prefix}_{flavour}")
    path, warning = pick_bundled(given.version, arch)
    assert warning is None
    return resolve(read_model(path), given, cmdline)


def _states(res: Resolution) -> dict[str, object]:
    return {f.name: f.effective for f in res.features}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("flavour", ["amd64", "cloud-amd64"])
def test_debian_x86_defaults(version: str, flavour: str) -> None:
    """Debian x86 in every version: IOMMU_DEFAULT_DMA_LAZY (translated, lazy), the Intel driver
    on by default (its INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF member enables DMA remapping) with
    scalable mode; AMD_IOMMU only in the generic flavour; no EFI_DISABLE_PCI_DMA, no
    DEBUG_PAGEALLOC."""
    res = _resolve(version, flavour, "")
    states = _states(res)
    # every declaration holds in this version's tree (a stale one would be a warning)
    assert not [w for w in res.warnings if "iommu" in w or "efi" in w or "pagealloc" in w]
    assert states["iommu.passthrough"] is False and states["iommu.strict"] is False
    assert states["intel_iommu"] is True and states["intel_iommu.sm"] is True
    assert states["amd_iommu"] is (flavour == "amd64")
    assert states["efi.disable_early_pci_dma"] is False
    assert states["debug_pagealloc"] is False


@pytest.mark.parametrize("version", VERSIONS)
def test_deprecated_strict_words_beat_iommu_strict_in_any_order(version: str) -> None:
    """intel_iommu=strict and amd_iommu=fullflush are __setup handlers, run after every early
    param: iommu.strict=0 cannot undo them, before or after; cloud has no AMD_IOMMU, so there
    amd_iommu= is unknown and lazy stays."""
    for line in ("intel_iommu=strict iommu.strict=0", "iommu.strict=0 intel_iommu=strict",
                 "iommu.strict=0 amd_iommu=fullflush"):
        assert _states(_resolve(version, "amd64", line))["iommu.strict"] is True, line
    cloud = _resolve(version, "cloud-amd64", "amd_iommu=fullflush")
    assert _states(cloud)["iommu.strict"] is False
    assert "amd_iommu=fullflush" in cloud.cmdline.unknown


@pytest.mark.parametrize("version", VERSIONS)
def test_x86_iommu_list_and_line_order(version: str) -> None:
    """iommu= items are strncmp prefixes (ptx is pt), the last wins; iommu= and
    iommu.passthrough are both early params, so the line's order decides."""
    def passthrough(line: str) -> object:
        return _states(_resolve(version, "cloud-amd64", line))["iommu.passthrough"]

    assert passthrough("iommu=nopt,soft,ptx") is True
    assert passthrough("iommu=pt iommu.passthrough=0") is False
    assert passthrough("iommu.passthrough=0 iommu=pt") is True
    assert passthrough("iommu=pt,nopt") is False


@pytest.mark.parametrize("version", VERSIONS)
def test_iommu_off_beats_intel_and_amd_on(version: str) -> None:
    """x86 iommu=off sets no_iommu, which intel_iommu_init and amd_iommu_detect check before
    anything else: a later intel_iommu=on changes nothing. intel_iommu= items are read in
    order (off,on ends on); igfx_off and sm_off leave DMA remapping on."""
    states = _states(_resolve(version, "amd64", "iommu=off intel_iommu=on"))
    assert states["intel_iommu"] is False and states["amd_iommu"] is False
    assert _states(_resolve(version, "amd64", "intel_iommu=off,on"))["intel_iommu"] is True
    both = _states(_resolve(version, "amd64", "intel_iommu=igfx_off,sm_off amd_iommu=off"))
    assert both["intel_iommu"] is True and both["intel_iommu.sm"] is False
    assert both["amd_iommu"] is False


@pytest.mark.parametrize(("version", "strict"), [("6.1", False), ("6.12", False),
                                                 ("7.2", True)])
def test_iommu_strict_enable_per_version(version: str, strict: bool) -> None:
    """kstrtobool() takes "enable" from 6.16 on: iommu.strict=enable is strict on 7.2 and a
    Malformed early option (lazy stays) on 6.1 and 6.12."""
    res = _resolve(version, "cloud-amd64", "iommu.strict=enable")
    assert _states(res)["iommu.strict"] is strict
    assert ("iommu.strict" in res.cmdline.malformed_early) is not strict


@pytest.mark.parametrize("version", VERSIONS)
def test_efi_disable_early_pci_dma(version: str) -> None:
    """The EFI stub's efi= items: disable_early_pci_dma sets it, no_disable_early_pci_dma in
    the same value clears it again; an efi= naming neither leaves it."""
    def state(line: str) -> object:
        return _states(_resolve(version, "cloud-amd64", line))["efi.disable_early_pci_dma"]

    assert state("efi=disable_early_pci_dma") is True
    assert state("efi=no_disable_early_pci_dma,disable_early_pci_dma") is False
    assert state("efi=disable_early_pci_dma efi=debug") is True


@pytest.mark.parametrize("version", VERSIONS)
def test_arm64_iommu_defaults_are_strict(version: str) -> None:
    """Debian arm64 chooses IOMMU_DEFAULT_DMA_STRICT; iommu.passthrough and iommu.strict are
    generic, x86's iommu= is not registered there, and no Intel/AMD IOMMU feature exists."""
    base = _resolve(version, "cloud-arm64", "", arch="arm64")
    assert not [w for w in base.warnings if "iommu" in w or "efi" in w or "pagealloc" in w]
    states = _states(base)
    assert states["iommu.strict"] is True and states["iommu.passthrough"] is False
    assert "intel_iommu" not in states and "amd_iommu" not in states
    res = _resolve(version, "cloud-arm64", "iommu.passthrough=1 iommu=pt", arch="arm64")
    assert _states(res)["iommu.passthrough"] is True
    assert "iommu=pt" in res.cmdline.unknown


@pytest.mark.parametrize("version", VERSIONS)
def test_debug_pagealloc(version: str, tmp_path: Path) -> None:
    """Debian builds no DEBUG_PAGEALLOC: debug_pagealloc= is unknown and the feature off. Built
    with DEBUG_PAGEALLOC_ENABLE_DEFAULT it is on until a kstrtobool debug_pagealloc=off."""
    res = _resolve(version, "amd64", "debug_pagealloc=on")
    assert _states(res)["debug_pagealloc"] is False
    assert "debug_pagealloc=on" in res.cmdline.unknown
    stock = real_configs(version) / "config.amd64_none_amd64"
    text = stock.read_text(encoding="utf-8").replace(
        "# CONFIG_DEBUG_PAGEALLOC is not set",
        "CONFIG_DEBUG_PAGEALLOC=y\nCONFIG_DEBUG_PAGEALLOC_ENABLE_DEFAULT=y")
    built = tmp_path / "config"
    built.write_text(text, encoding="utf-8")
    assert _states(_resolve(version, "amd64", "", config=built))["debug_pagealloc"] is True
    off = _resolve(version, "amd64", "debug_pagealloc=off", config=built)
    assert _states(off)["debug_pagealloc"] is False and not off.cmdline.unknown


def test_efi_disable_pci_dma_default_from_the_72_tree(tmp_path: Path) -> None:
    """With EFI_DISABLE_PCI_DMA=y the stub clears bus mastering by default, and
    efi=no_disable_early_pci_dma turns that off (the real 7.2 tree's model, which keeps the
    default symbol the feature declares)."""
    from conftest import real_tree_resolve_side

    from kpolicy.params.semantics import load_param_rules

    stock = real_configs("7.2") / "config.amd64_none_cloud-amd64"
    text = stock.read_text(encoding="utf-8").replace(
        "# CONFIG_EFI_DISABLE_PCI_DMA is not set", "CONFIG_EFI_DISABLE_PCI_DMA=y")
    config = tmp_path / "config"
    config.write_text(text, encoding="utf-8")
    specs = load_param_rules().features
    model, given = real_tree_resolve_side("7.2", "x86_64", config, specs)

    def state(line: str) -> object:
        res = resolve(model, given, line, specs=specs)
        return _states(res)["efi.disable_early_pci_dma"]

    assert state("") is True
    assert state("efi=no_disable_early_pci_dma") is False
    assert state("efi=debug") is True
