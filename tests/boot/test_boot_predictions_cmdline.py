"""kpolicy's command-line predictions against what Debian's real cloud kernels did under qemu.

tests/boot/observed.json (cloud-amd64) and observed-arm64.json (cloud-arm64) are the boot
oracle's records (scripts/boot-oracle). For every case of each the prediction from the real
7.2 tree's catalog (for that arch; 6.1's or 6.12's for a case booting that version's cloud
kernel) plus the kernel's own config must equal the record on init's
argv and envp, the "Unknown kernel command line parameters" list, the malformed early options,
the invalid values and the too-many-vars panic.
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

BOOT_DIR = Path(__file__).resolve().parent
# observed file of each arch
OBSERVED = {"x86_64": BOOT_DIR / "observed.json", "arm64": BOOT_DIR / "observed-arm64.json"}
CASES: list[tuple[str, dict[str, Any]]] = [
    (arch, case)
    for arch, path in OBSERVED.items() if path.is_file()
    for case in json.loads(path.read_text(encoding="utf-8"))["cases"]
]
_KP: dict[tuple[str, str], KernelParams] = {}

pytestmark = pytest.mark.real


# the config each x86 kernel flavour of the record is built from (None: the record's own)
FLAVOUR_CONFIGS = {"cloud-amd64": None, "amd64": "config.amd64_none_amd64"}


def kp72(arch: str, flavour: str = "cloud-amd64") -> KernelParams:
    """The booted version's tree's parameters for ARCH as the booted kernel's config (for x86,
    that of the case's flavour) builds them (built once): 7.2, or the older version of a
    "cloud-amd64-<version>" flavour with that version's cloud-amd64 config."""
    if (arch, flavour) not in _KP:
        from kpolicy.params.catalog import build_catalog

        version = "7.2"
        doc = json.loads(OBSERVED[arch].read_text(encoding="utf-8"))
        name = FLAVOUR_CONFIGS.get(flavour) or doc["config"]
        if flavour.startswith("cloud-amd64-"):
            version = flavour.removeprefix("cloud-amd64-")
            name = "config.amd64_none_cloud-amd64"
        tree = open_tree(real_tree(version))
        config = read_dotconfig(real_configs(version, arch) / name)
        _KP[arch, flavour] = kernel_params(build_catalog(tree, Cache(None, enabled=True)),
                                           config.values, tree.version_tuple, tree.srcarch(arch))
    return _KP[arch, flavour]


def test_the_record_exists() -> None:
    if not CASES:
        msg = f"{OBSERVED} is missing or empty: run scripts/boot-oracle"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    assert all(c["cmdline"] for _, c in CASES)
    assert {arch for arch, _ in CASES} == set(OBSERVED)


@pytest.mark.parametrize(
    ("arch", "case"), CASES,
    ids=[c["id"] if a == "x86_64" else f"{a}-{c['id']}" for a, c in CASES])
def test_prediction_matches_the_boot(arch: str, case: dict[str, Any]) -> None:
    flavour = case.get("flavour", "cloud-amd64")
    r: CmdlineResult = process_cmdline(kp72(arch, flavour), case["cmdline"])
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
