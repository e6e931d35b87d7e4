"""kpolicy resolve's feature states against what Debian's real 7.2 cloud kernel reported under qemu.

For every case of tests/boot/observed.json that records features, resolve with the real 7.2 tree,
the kernel's own config and the case's command line must give the observed state of every feature
it supports (init_on_alloc, init_on_free, lockdown, transparent_hugepage, zswap.enabled,
module.sig_enforce, page_alloc.shuffle, ...) — and so must the bundled 7.2 model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import in_ci, real_configs, real_tree

from kpolicy.cache import Cache
from kpolicy.params.semantics import FeatureSpec, load_param_rules
from kpolicy.resolve.api import Resolution, resolve
from kpolicy.resolve.bundle import pick_bundled, read_model
from kpolicy.resolve.features import Machine
from kpolicy.resolve.inputs import ConfigInput, read_config
from kpolicy.resolve.model import ResolveModel

OBSERVED = Path(__file__).resolve().parent / "observed.json"
DOC: dict[str, Any] = json.loads(OBSERVED.read_text(encoding="utf-8")) if OBSERVED.is_file() else {}
CASES = [c for c in DOC.get("cases", []) if c.get("features")]
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


# the config each kernel flavour of the record is built from
FLAVOUR_CONFIGS = {"cloud-amd64": DOC.get("config", ""), "amd64": "config.amd64_none_amd64"}


def _flavour(case: dict[str, Any]) -> str:
    return str(case.get("flavour", "cloud-amd64"))


@pytest.fixture(scope="session")
def tree_side(specs: tuple[FeatureSpec, ...]) -> dict[str, tuple[ResolveModel, ConfigInput]]:
    """Per kernel flavour: the 7.2 tree's model, and the flavour's config evaluated in it."""
    from kpolicy.kconfig.load import load_model
    from kpolicy.kconfig.toolchain import toolchain_from_config
    from kpolicy.resolve.build import build_resolve_model
    from kpolicy.tree import open_tree

    cache = Cache(None, enabled=True)
    model = build_resolve_model(real_tree("7.2"), "x86_64", specs, cache)
    sides = {}
    for flavour, name in FLAVOUR_CONFIGS.items():
        path = real_configs("7.2") / name
        evaluated = load_model(
            open_tree(real_tree("7.2")),
            "x86_64",
            config=path,
            toolchain=toolchain_from_config(path),
            cache=cache,
        )
        given = read_config(path)
        sides[flavour] = (model, ConfigInput(given.path, evaluated.values, given.version, (),
                                             given.lines))
    return sides


@pytest.fixture(scope="session")
def bundled_side() -> dict[str, tuple[ResolveModel, ConfigInput]]:
    """Per kernel flavour: the bundled 7.2 model and the flavour's config."""
    sides = {}
    for flavour, name in FLAVOUR_CONFIGS.items():
        config = read_config(real_configs("7.2") / name)
        path, _warning = pick_bundled(config.version)
        sides[flavour] = (read_model(path), config)
    return sides


def test_the_record_has_features() -> None:
    if not CASES:
        msg = f"{OBSERVED} is missing or records no features: run scripts/boot-oracle"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    seen = {k for c in CASES for k in c["features"]}
    assert set(REQUIRED) <= seen


def _machine(case: dict[str, Any]) -> Machine:
    """The qemu machine of CASE: its RAM when the case sets one (-m), else unknown (768 MiB)."""
    return Machine(ram_mib=case.get("mem"), secure_boot=False)


# what the hardening cases observe (issue #12), each a feature of resolve's answer
HARDENING = ("kaslr", "psi", "kfence", "kfence.sample_interval", "ia32_emulation", "debugfs_mount")


def test_the_record_has_hardening_observations() -> None:
    """Every hardening case recorded every hardening observation (so none is silently skipped)."""
    cases = [c for c in CASES if "kaslr" in c["features"] or "psi" in c["features"]]
    assert len(cases) >= 40
    for case in cases:
        assert set(HARDENING) <= set(case["features"]), case["id"]


def _predicted(res: Resolution) -> dict[str, Any]:
    """RES's effective states, with what the boot can observe of some: debugfs mounts only when
    it is "on"."""
    predicted = {f.name: f.effective for f in res.features}
    if "debugfs" in predicted:
        predicted["debugfs_mount"] = predicted["debugfs"] == "on"
    return predicted


def _observed(case: dict[str, Any]) -> dict[str, Any]:
    """CASE's observed features, each vulnerabilities file read as resolve states it: is the
    mitigation applied ("Mitigation: ...", or a "... attempted, no microcode" state) on the
    affected CPU qemu emulates; files of a bug the emulated CPU lacks are left out."""
    out = {}
    for name, value in case["features"].items():
        if not name.startswith("vulnerabilities."):
            out[name] = value
        elif value.startswith("Mitigation:") or "attempted, no microcode" in value:
            out[name] = True
        elif value.startswith("Vulnerable"):
            out[name] = False
    return out


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


def _disagreements(res: Resolution, observed: dict[str, Any]) -> dict[str, Any]:
    predicted = _predicted(res)
    return {
        k: (predicted[k], v) for k, v in observed.items() if k in predicted and predicted[k] != v
    }


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_tree_prediction_matches_the_boot(
    tree_side: dict[str, tuple[ResolveModel, ConfigInput]],
    specs: tuple[FeatureSpec, ...],
    case: dict[str, Any],
) -> None:
    model, config = tree_side[_flavour(case)]
    res = resolve(model, config, case["cmdline"], specs=specs, machine=_machine(case))
    assert _disagreements(res, _observed(case)) == {}, case["cmdline"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bundled_prediction_matches_the_boot(
    bundled_side: dict[str, tuple[ResolveModel, ConfigInput]],
    specs: tuple[FeatureSpec, ...],
    case: dict[str, Any],
) -> None:
    model, config = bundled_side[_flavour(case)]
    res = resolve(model, config, case["cmdline"], specs=specs, machine=_machine(case))
    assert _disagreements(res, _observed(case)) == {}, case["cmdline"]
