"""kpolicy's sysctl values against what Debian's real 7.2 kernels (cloud-amd64 and generic amd64)
read from /proc/sys at the start of init, for every case of tests/boot/sysctl_cases.toml
(recorded in tests/boot/sysctl_observed.json by `scripts/boot-oracle --sysctl`; kept honest by
tests/boot/test_boot_sysctl_live.py, which boots them again)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Optional

import pytest
from conftest import in_ci, real_configs

from kpolicy.resolve.api import resolve
from kpolicy.resolve.bundle import pick_bundled, read_model
from kpolicy.resolve.inputs import ConfigInput, read_config
from kpolicy.resolve.model import ResolveModel

OBSERVED = Path(__file__).resolve().parent.parent / "boot" / "sysctl_observed.json"
DOC: dict[str, Any] = json.loads(OBSERVED.read_text(encoding="utf-8")) if OBSERVED.is_file() else {}
KERNELS: dict[str, Any] = DOC.get("kernels", {})
CASES = [(flavour, case) for flavour, k in KERNELS.items() for case in k["cases"]]

pytestmark = pytest.mark.real


@cache
def side(config_name: str) -> tuple[ResolveModel, ConfigInput]:
    config = read_config(real_configs("7.2") / config_name)
    return read_model(pick_bundled(config.version)[0]), config


def test_the_record_covers_both_kernels_and_30_command_lines() -> None:
    if not KERNELS:
        msg = f"{OBSERVED} is missing: run scripts/boot-oracle --sysctl"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    assert set(KERNELS) == {"cloud-amd64", "amd64"}
    for k in KERNELS.values():
        assert len(k["cases"]) >= 30
        assert all(c["completed"] for c in k["cases"])


def _disagreements(flavour: str, case: dict[str, Any]) -> dict[str, tuple[Optional[str], Any]]:
    model, config = side(KERNELS[flavour]["config"])
    cmdline = case["cmdline"]
    res = resolve(model, config, cmdline, specs=())
    out = {}
    for s in res.sysctls:
        seen = case["sysctls"].get(s.spec.path)
        seen = None if seen is None else " ".join(seen.split())
        if s.built and s.effective is None:
            continue  # depends on the machine, and nothing on the command line set it
        if s.effective != seen:
            out[s.spec.path] = (s.effective, seen)
    return out


@pytest.mark.parametrize(("flavour", "case"), CASES, ids=[f"{f}-{c['id']}" for f, c in CASES])
def test_prediction_matches_the_boot(flavour: str, case: dict[str, Any]) -> None:
    assert _disagreements(flavour, case) == {}, case["cmdline"]


_FAILED = re.compile(
    r"Failed to set sysctl parameter '(.*?)=(.*)': (invalid value|parameter not found)")
_WORDS = {"EINVAL": "invalid value", "ENOENT": "parameter not found"}


@pytest.mark.parametrize(("flavour", "case"), CASES, ids=[f"{f}-{c['id']}" for f, c in CASES])
def test_refused_writes_match_the_kernel_log(flavour: str, case: dict[str, Any]) -> None:
    """Each write kpolicy calls invalid or not found is one the kernel logged as such."""
    model, config = side(KERNELS[flavour]["config"])
    res = resolve(model, config, case["cmdline"], specs=())
    predicted = sorted(
        (s.spec.path, src.token.split("=", 1)[1], _WORDS[src.error])
        for s in res.sysctls for src in s.sources
        if src.kind == "cmdline" and src.error in _WORDS and src.token)
    paths = {s.spec.path for s in res.sysctls}
    logged = sorted(
        (m.group(1), m.group(2), m.group(3)) for note in case["notes"]
        if (m := _FAILED.search(note)) and m.group(1).replace("/", ".") in paths)
    assert predicted == logged
