"""kpolicy resolve's feature states against what Debian's real 7.2 cloud kernels reported under
qemu.

For every case of tests/boot/observed.json (cloud-amd64) and observed-arm64.json (cloud-arm64)
that records features, resolve with the real 7.2 tree for that arch, the kernel's own config and
the case's command line must give the observed state of every feature it supports
(init_on_alloc, init_on_free, lockdown, transparent_hugepage, zswap.enabled, module.sig_enforce,
page_alloc.shuffle, arm64's kaslr, ...) — and so must the bundled 7.2 model of that arch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import in_ci, real_configs, real_tree_resolve_side

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
CASES = [(a, c) for a, doc in DOCS.items() for c in doc["cases"] if c.get("features")]
IDS = [c["id"] if a == "x86_64" else f"{a}-{c['id']}" for a, c in CASES]
# qemu -cpu models without RNDR (FEAT_RNG): with dtb-kaslr-seed=off they boot with no seed
NO_RNDR_CPUS = ("cortex-a57",)
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


_SIDES: dict[tuple[str, str], tuple[ResolveModel, ConfigInput]] = {}


def tree_side(arch: str, specs: tuple[FeatureSpec, ...]) -> tuple[ResolveModel, ConfigInput]:
    """The real 7.2 tree's model for ARCH and the booted kernel's config, evaluated (once)."""
    if (arch, "tree") not in _SIDES:
        path = real_configs("7.2", arch) / DOCS[arch]["config"]
        _SIDES[arch, "tree"] = real_tree_resolve_side("7.2", arch, path, specs)
    return _SIDES[arch, "tree"]


def bundled_side(arch: str) -> tuple[ResolveModel, ConfigInput]:
    """The bundled 7.2 model the booted kernel's config picks, and that config."""
    if (arch, "bundled") not in _SIDES:
        config = read_config(real_configs("7.2", arch) / DOCS[arch]["config"])
        path, _warning = pick_bundled(config.version, arch)
        _SIDES[arch, "bundled"] = (read_model(path), config)
    return _SIDES[arch, "bundled"]


def test_the_record_has_features() -> None:
    if not CASES:
        msg = f"{OBSERVED} is missing or records no features: run scripts/boot-oracle"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    assert set(DOCS) == set(OBSERVED)
    for arch in DOCS:
        seen = {k for a, c in CASES if a == arch for k in c["features"]}
        assert set(REQUIRED) <= seen, arch
    arm64 = {k for a, c in CASES if a == "arm64" for k in c["features"]}
    assert "kaslr" in arm64 and "vulnerabilities.meltdown" in arm64


def _machine(case: dict[str, Any]) -> Machine:
    """The qemu machine of CASE: its RAM when the case sets one (-m), else unknown (768 MiB);
    whether an arm64 boot has a KASLR seed: qemu's virt board puts one in the device tree unless
    dtb-kaslr-seed=off, and -cpu max has RNDR."""
    seedless = "dtb-kaslr-seed=off" in case.get("machine", "") and case.get("cpu") in NO_RNDR_CPUS
    return Machine(ram_mib=case.get("mem"), secure_boot=False, kaslr_seed=not seedless)


def _disagreements(res: Resolution, observed: dict[str, Any]) -> dict[str, Any]:
    predicted = {f.name: f.effective for f in res.features}
    return {
        k: (predicted[k], v) for k, v in observed.items() if k in predicted and predicted[k] != v
    }


@pytest.mark.parametrize(("arch", "case"), CASES, ids=IDS)
def test_tree_prediction_matches_the_boot(
    specs: tuple[FeatureSpec, ...], arch: str, case: dict[str, Any]
) -> None:
    model, config = tree_side(arch, specs)
    res = resolve(model, config, case["cmdline"], specs=specs, machine=_machine(case))
    assert _disagreements(res, case["features"]) == {}, case["cmdline"]


@pytest.mark.parametrize(("arch", "case"), CASES, ids=IDS)
def test_bundled_prediction_matches_the_boot(
    specs: tuple[FeatureSpec, ...], arch: str, case: dict[str, Any]
) -> None:
    model, config = bundled_side(arch)
    res = resolve(model, config, case["cmdline"], specs=specs, machine=_machine(case))
    assert _disagreements(res, case["features"]) == {}, case["cmdline"]
