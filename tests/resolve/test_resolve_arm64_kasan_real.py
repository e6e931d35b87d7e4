"""arm64 hardware tag-based KASAN (kasan=, kasan.mode=) resolved with the real 6.1, 6.12 and 7.2
trees: Debian's cloud-arm64 config (KASAN not built: resolve says so) and that config with
KASAN_HW_TAGS set (gcc builds it: the tree's Kconfig evaluates the fragment). The same words and
default (sync) in all three versions; KASAN needs MTE on the CPU (unknown: depends)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import real_arm64_side, real_arm64_states, real_configs

from kpolicy.params.semantics import FeatureSpec, load_param_rules
from kpolicy.resolve.features import Machine

pytestmark = pytest.mark.real
CONFIG = "config.arm64_none_cloud-arm64"
VERSIONS = ("6.1", "6.12", "7.2")
FRAGMENT = "CONFIG_KASAN=y\nCONFIG_KASAN_HW_TAGS=y\n"
_SIDES: dict[tuple[str, str | None], Any] = {}
MTE = Machine(cpu_features=frozenset({"mte"}))
NO_MTE = Machine(cpu_features=frozenset())

# (cmdline, machine) -> (kasan, kasan.mode) with KASAN_HW_TAGS built, in every version
CASES: tuple[tuple[str, Machine, Any, str], ...] = (
    ("", MTE, True, "sync"),
    ("", Machine(), None, "sync"),  # the CPU unknown: KASAN depends on MTE
    ("kasan=off", Machine(), False, "sync"),  # off whatever the CPU
    ("kasan=on", NO_MTE, False, "off"),  # no MTE: nothing to turn on
    ("kasan=off kasan=on", MTE, True, "sync"),
    ("kasan.mode=async", MTE, True, "async"),
    ("kasan.mode=asymm kasan.mode=sync", MTE, True, "sync"),
    ("kasan.mode=ASYNC", MTE, True, "sync"),  # strcmp: -EINVAL, nothing set
    ("kasan.mode", MTE, True, "sync"),  # no value: -EINVAL
    ("kasan=1", MTE, True, "sync"),  # not a kstrtobool: only "on"/"off"
    ("kasan=off kasan=yes", MTE, False, "sync"),
    ("arm64.nomte", MTE, False, "off"),  # the override hides MTE: system_supports_mte() false
)


@pytest.fixture(scope="module")
def specs() -> tuple[FeatureSpec, ...]:
    return load_param_rules().features


def _kasan(version: str, built: bool, cmdline: str, machine: Machine,
           specs: tuple[FeatureSpec, ...], tmp: Path) -> tuple[Any, Any]:
    text = None
    if built:
        text = (real_configs(version, "arm64") / CONFIG).read_text(encoding="utf-8") + FRAGMENT
    states = real_arm64_states(version, text, cmdline, machine, specs, tmp, _SIDES)
    return states["kasan"], states["kasan.mode"]


@pytest.mark.parametrize("version", VERSIONS)
def test_debian_arm64_does_not_build_kasan(
    specs: tuple[FeatureSpec, ...], version: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("kasan")
    for cmdline in ("", "kasan=on kasan.mode=async"):
        kasan, mode = _kasan(version, False, cmdline, MTE, specs, tmp)
        assert (kasan.built, kasan.effective) == (False, False)
        assert (mode.built, mode.effective) == (False, "off")


@pytest.mark.parametrize("version", VERSIONS)
def test_kasan_hw_tags_words_and_mte_per_version(
    specs: tuple[FeatureSpec, ...], version: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("kasan")
    text = (real_configs(version, "arm64") / CONFIG).read_text(encoding="utf-8") + FRAGMENT
    _model, config = real_arm64_side(version, text, specs, tmp, _SIDES)
    assert config.values.get("KASAN_HW_TAGS") == "y" and config.values.get("KASAN_GENERIC") != "y"
    got = {(c, m): tuple(f.effective for f in _kasan(version, True, c, m, specs, tmp))
           for c, m, _, _ in CASES}
    assert got == {(c, m): (k, mode) for c, m, k, mode in CASES}
