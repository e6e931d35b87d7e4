"""The compact model format: lossless, deterministic, versioned, and refusing damaged input."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pytest
from resolve_synthetic import model_fixture  # noqa: F401 (fixtures)

from kpolicy.errors import KpolicyError
from kpolicy.resolve.bundle import (
    SCHEMA_VERSION,
    model_from_bytes,
    model_to_bytes,
    pick_bundled,
    read_model,
)
from kpolicy.resolve.compact import symbol_closure
from kpolicy.resolve.model import ResolveModel


def test_round_trip_is_lossless(model: ResolveModel) -> None:
    back = model_from_bytes(model_to_bytes(model), file="m")
    assert dataclasses.replace(back, origin=model.origin) == model
    assert back.origin == "m"


def test_bytes_are_deterministic(model: ResolveModel) -> None:
    a = model_to_bytes(model)
    b = model_to_bytes(model_from_bytes(a, file="x"))
    assert a == b
    doc = json.loads(gzip.decompress(a))
    assert doc["schema_version"] == SCHEMA_VERSION and doc["version"] == "7.2.13"


def test_damaged_and_foreign_files_are_errors(tmp_path: Path, model: ResolveModel) -> None:
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(model_to_bytes(model)[:50])
    with pytest.raises(KpolicyError, match="damaged"):
        read_model(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something-else"}))
    with pytest.raises(KpolicyError):
        read_model(other)
    doc = json.loads(gzip.decompress(model_to_bytes(model)))
    doc["schema_version"] = SCHEMA_VERSION + 1
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(doc))
    with pytest.raises(KpolicyError, match="not supported"):
        read_model(newer)


def test_closure_follows_dependencies(model: ResolveModel) -> None:
    keep = symbol_closure(model.kconfig, ["RANDOMIZE_KSTACK_OFFSET_DEFAULT"])
    assert keep == {
        "RANDOMIZE_KSTACK_OFFSET_DEFAULT",
        "RANDOMIZE_KSTACK_OFFSET",
        "HAVE_ARCH_RANDOMIZE_KSTACK_OFFSET",
    }


def test_bundled_model_choice_warns_when_not_exact() -> None:
    from kpolicy.resolve.bundle import bundled_models

    models = bundled_models()
    if not models:
        pytest.skip("no bundled models yet")
    newest = list(models)[-1]
    assert pick_bundled(newest) == (models[newest], None)
    path, warning = pick_bundled(newest + "-rc9")
    assert warning is not None
    path, warning = pick_bundled(None)
    assert path == models[newest] and warning is not None


def test_bundled_models_per_arch_and_the_header_picks_one() -> None:
    from kpolicy.resolve.bundle import bundled_arch, bundled_models, machine_arch

    x86, arm = bundled_models("x86_64"), bundled_models("arm64")
    if not x86 or not arm:
        pytest.skip("no bundled models yet")
    assert set(x86) == set(arm)
    assert all(p.name.endswith("-arm64.json.gz") for p in arm.values())
    newest = list(arm)[-1]
    assert pick_bundled(newest, "arm64") == (arm[newest], None)
    assert pick_bundled(newest) == (x86[newest], None)
    # a config header names the SRCARCH; uname names the machine
    assert bundled_arch("x86") == "x86_64" and bundled_arch("arm64") == "arm64"
    assert bundled_arch("riscv") is None and bundled_arch(None) is None
    assert machine_arch("aarch64") == "arm64" and machine_arch("x86_64") == "x86_64"
    assert machine_arch("riscv64") is None
    with pytest.raises(KpolicyError, match="no bundled riscv models"):
        pick_bundled(newest, "riscv")


def test_choose_model_follows_the_config_header(tmp_path: Path) -> None:
    from kpolicy.resolve.bundle import bundled_models
    from kpolicy.resolve.inputs import choose_model, read_config

    arm = bundled_models("arm64")
    if not arm:
        pytest.skip("no bundled models yet")
    newest = list(arm)[-1]
    cfg = tmp_path / "config"
    cfg.write_text(f"#\n# Linux/arm64 {newest} Kernel Configuration\n#\nCONFIG_ARM64=y\n")
    model, notes = choose_model(read_config(cfg), None)
    assert model.arch == "arm64" and notes == []
    cfg.write_text(f"#\n# Linux/riscv {newest} Kernel Configuration\n#\nCONFIG_RISCV=y\n")
    with pytest.raises(KpolicyError, match="ships x86_64 and arm64 models only"):
        choose_model(read_config(cfg), None)


def test_x86_bitness_is_read_only_where_the_config_states_it(tmp_path: Path) -> None:
    """A full i386 .config says `# CONFIG_64BIT is not set` and is refused against the x86_64
    model; a fragment that leaves CONFIG_64BIT out is some x86 and resolves."""
    from kpolicy.resolve.inputs import choose_model, read_config

    cfg = tmp_path / "config"
    head = "#\n# Linux/x86 7.2.13 Kernel Configuration\n#\nCONFIG_X86=y\n"
    cfg.write_text(head + "# CONFIG_64BIT is not set\n")
    with pytest.raises(KpolicyError, match="for i386"):
        choose_model(read_config(cfg), None)
    for rest in ("", "CONFIG_64BIT=y\n"):
        cfg.write_text(head + rest)
        model, _notes = choose_model(read_config(cfg), None)
        assert model.arch == "x86_64"


def test_tree_arch_is_the_configs_unless_given(tmp_path: Path) -> None:
    """With --tree, an arm64 .config is evaluated for arm64 without --arch; --arch wins when
    given; an x86 fragment that leaves CONFIG_64BIT out, or no config, means x86_64."""
    from kpolicy.resolve.inputs import tree_arch

    cfg = tmp_path / "config"
    cfg.write_text("#\n# Linux/arm64 7.2.13 Kernel Configuration\n#\nCONFIG_ARM64=y\n")
    assert tree_arch(None, cfg) == "arm64"
    assert tree_arch("riscv", cfg) == "riscv"
    cfg.write_text("CONFIG_RISCV=y\n")
    assert tree_arch(None, cfg) == "riscv"
    cfg.write_text("#\n# Linux/x86 7.2.13 Kernel Configuration\n#\nCONFIG_X86=y\n")
    assert tree_arch(None, cfg) == "x86_64"
    cfg.write_text("#\n# Linux/x86 7.2.13 Kernel Configuration\n#\n# CONFIG_64BIT is not set\n")
    assert tree_arch(None, cfg) == "i386"
    assert tree_arch(None, None) == "x86_64"


def test_no_config_uses_the_machines_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    """`kpolicy resolve` with no config on an arm64 machine picks the arm64 model."""
    import os

    from kpolicy.resolve import inputs
    from kpolicy.resolve.bundle import bundled_models

    if not bundled_models("arm64"):
        pytest.skip("no bundled models yet")
    real = os.uname()
    fake = os.uname_result((real.sysname, real.nodename, real.release, real.version, "aarch64"))
    monkeypatch.setattr(inputs.os, "uname", lambda: fake)
    model, notes = inputs.choose_model(None, None)
    assert model.arch == "arm64" and "using the Linux" in notes[0]
    assert inputs.running_arch() == "arm64"


def test_select_by_index_matches_the_scan(tmp_path: Path) -> None:
    """A cached bundled model's registrations: the first two select() calls scan every row,
    later ones (check's fix proofs) read an index by built_if and name; both pick the same
    registrations in the same order, for configs that build different sets."""
    from kpolicy.cache import Cache
    from kpolicy.resolve.lazy import LazyRegistrations

    path = pick_bundled("7.2.13")[0]
    read_model(path, Cache(tmp_path))  # stores the packed form
    regs = read_model(path, Cache(tmp_path)).catalog.registrations
    assert isinstance(regs, LazyRegistrations)
    symbols = sorted(regs.built_if_symbols())
    configs = [{s: "y" for s in symbols}, {s: "y" for s in symbols[::3]}, {}, {"X86": "y"}]
    names = frozenset({"lockdown", "init_on_free", "nokaslr", "no_such_param"})
    scanned = [regs.select(c, names) for c in configs[:2]]
    assert regs._groups is None
    indexed = [regs.select(c, names) for c in configs]
    assert regs._groups is not None
    assert indexed[:2] == scanned
    assert len(scanned[0]) > len(scanned[1]) > len(indexed[3]) > len(indexed[2]) > 0
    fresh = read_model(path, Cache(tmp_path)).catalog.registrations
    assert isinstance(fresh, LazyRegistrations)
    assert [fresh.select(c, names) for c in configs[2:]] == indexed[2:]
