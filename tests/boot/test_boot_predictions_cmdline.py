"""kpolicy's command-line predictions against what Debian's real 7.2 cloud kernel did under qemu.

tests/boot/observed.json is the boot oracle's record (scripts/boot-oracle). For every case the
prediction from the real 7.2 tree's catalog plus the kernel's own config must equal the record
on init's argv and envp, the "Unknown kernel command line parameters" list, the malformed early
options, the invalid values and the too-many-vars panic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import in_ci, real_configs, real_tree

from kpolicy.cache import Cache
from kpolicy.cmdline import CmdlineResult, KernelParams, kernel_params, process_cmdline
from kpolicy.kconfig.dotconfig import read_dotconfig
from kpolicy.tree import open_tree

OBSERVED = Path(__file__).resolve().parent / "observed.json"
CASES: list[dict[str, Any]] = (
    json.loads(OBSERVED.read_text(encoding="utf-8"))["cases"] if OBSERVED.is_file() else [])

pytestmark = pytest.mark.real


# the config each kernel flavour of the record is built from
FLAVOUR_CONFIGS = {"cloud-amd64": None, "amd64": "config.amd64_none_amd64"}


@pytest.fixture(scope="session")
def kp72() -> dict[str, KernelParams]:
    """Per kernel flavour: the 7.2 tree's parameters as that flavour's config builds them."""
    from kpolicy.params.catalog import build_catalog

    tree = open_tree(real_tree("7.2"))
    doc = json.loads(OBSERVED.read_text(encoding="utf-8"))
    catalog = build_catalog(tree, Cache(None, enabled=True))
    out = {}
    for flavour, name in FLAVOUR_CONFIGS.items():
        config = read_dotconfig(real_configs("7.2") / (name or doc["config"]))
        out[flavour] = kernel_params(catalog, config.values, tree.version_tuple,
                                     tree.srcarch("x86_64"))
    return out


def test_the_record_exists() -> None:
    if not CASES:
        msg = f"{OBSERVED} is missing or empty: run scripts/boot-oracle"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    assert all(c["cmdline"] for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_prediction_matches_the_boot(kp72: dict[str, KernelParams],
                                     case: dict[str, Any]) -> None:
    r: CmdlineResult = process_cmdline(kp72[case.get("flavour", "cloud-amd64")], case["cmdline"])
    panicked = r.errors[0] if r.errors else None
    got: dict[str, Any] = {
        "panic": None if panicked is None else f"Kernel panic - not syncing: {panicked}",
        # init never runs after the panic: the record has no argv/envp then
        "argv": None if panicked else list(r.init_argv),
        "envp": None if panicked else list(r.init_envp),
        "unknown_raw": " ".join(r.unknown) if r.unknown else None,
        "malformed_early": list(r.malformed_early),
        "invalid": [{"param": p, "value": v} for p, v in r.invalid],
    }
    want = {k: case[k] for k in got}
    assert got == want, "\n".join(f"#{e.index} {e.raw}: {e.stage} {e.outcome} - {e.reason}"
                                  for e in r.events)
