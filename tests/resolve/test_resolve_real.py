"""Real trees: resolving with a tree equals the bundled model's answer; the bundle is fresh."""

from __future__ import annotations

import pytest
from conftest import real_configs, real_tree, real_tree_resolve_side

from kpolicy.cache import Cache
from kpolicy.params.semantics import load_param_rules
from kpolicy.resolve.api import resolve
from kpolicy.resolve.bundle import bundled_models, model_to_bytes, pick_bundled, read_model
from kpolicy.resolve.inputs import choose_model, read_config

pytestmark = pytest.mark.real
CMDLINE = "init_on_free=1 lockdown=integrity transparent_hugepage=madvise zswap.enabled=1 -- x"


def _tree_resolution(  # type: ignore[no-untyped-def]
    version: str, config_name: str, arch: str = "x86_64"
):
    path = real_configs(version, arch) / config_name
    specs = load_param_rules().features
    model, config = real_tree_resolve_side(version, arch, path, specs)
    return model, resolve(model, config, CMDLINE)


@pytest.mark.parametrize(
    ("version", "arch"), [("7.2", "x86_64"), ("6.12", "x86_64"), ("7.2", "arm64"), ("6.1", "arm64")]
)
def test_tree_and_bundled_model_agree(version: str, arch: str) -> None:
    name = "config.amd64_none_amd64" if arch == "x86_64" else "config.arm64_none_arm64"
    _model, from_tree = _tree_resolution(version, name, arch)
    config = read_config(real_configs(version, arch) / name)
    path, warning = pick_bundled(config.version, arch)
    assert warning is None
    model, notes = choose_model(config, None)  # the config's header picks the arch
    assert model.arch == arch and model.origin == str(path) and notes == []
    from_bundle = resolve(read_model(path), config, CMDLINE)
    as_tree = {f.name: (f.effective, f.built, f.default, f.blocked_by) for f in from_tree.features}
    as_bundle = {
        f.name: (f.effective, f.built, f.default, f.blocked_by) for f in from_bundle.features
    }
    assert as_tree == as_bundle
    assert len(as_tree) >= 11


def test_mseal_is_blocked_by_checkpoint_restore_on_debian_72() -> None:
    config = read_config(real_configs("7.2") / "config.amd64_none_amd64")
    path, _w = pick_bundled(config.version)
    res = resolve(read_model(path), config, "")
    mseal = next(f for f in res.features if f.name == "MSEAL_SYSTEM_MAPPINGS")
    assert mseal.built is False
    assert (
        "!CHECKPOINT_RESTORE" in mseal.blocked_by[0]
        and "CHECKPOINT_RESTORE=y" in mseal.blocked_by[0]
    )
    assert "security/Kconfig:" in mseal.blocked_by[0]


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_bundled_72_model_is_not_stale(arch: str) -> None:
    from kpolicy.resolve.build import build_resolve_model

    specs = load_param_rules().features
    rebuilt = build_resolve_model(real_tree("7.2"), arch, specs, Cache(enabled=False))
    shipped = bundled_models(arch).get(rebuilt.version)
    assert shipped is not None, f"no bundled model for {rebuilt.version}: run scripts/build-models"
    # compared as one bool: pytest would otherwise diff half a megabyte of gzip byte by byte
    same = model_to_bytes(rebuilt) == shipped.read_bytes()
    assert same, f"{shipped.name} is stale: run scripts/build-models"


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_bundled_models_are_small(arch: str) -> None:
    models = bundled_models(arch)
    assert {v.rsplit(".", 1)[0] for v in models} >= {"6.1", "6.12", "7.2"}
    for path in models.values():
        assert path.stat().st_size <= 2 * 1024 * 1024
        assert read_model(path).arch == arch
