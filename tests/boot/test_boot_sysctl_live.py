"""Boot every sysctl case again on Debian's 7.2 cloud-amd64 and generic amd64 kernels and compare
with tests/boot/sysctl_observed.json (what tests/sysctl/test_sysctl_boots.py checks kpolicy
against). One boot per case and kernel reads every sysctl of rules/sysctls/security.toml."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import oracle
import pytest
from conftest import in_ci, real_generic_kernel, real_kernel

pytestmark = pytest.mark.boot

CASES = oracle.load_cases(oracle.SYSCTL_CASES_FILE)
FLAVOURS = tuple(oracle.SYSCTL_KERNELS)
RECORDED: dict[str, Any] = (
    json.loads(oracle.SYSCTL_OBSERVED_FILE.read_text(encoding="utf-8"))
    if oracle.SYSCTL_OBSERVED_FILE.is_file()
    else {"kernels": {}}
)


class SysctlBoots:
    """Boots (kernel, case) pairs on demand and remembers what it saw."""

    def __init__(self, kernels: dict[str, Path], initramfs: Path,
                 selected: list[tuple[str, str]]) -> None:
        self.kernels = kernels
        self.initramfs = initramfs
        self.selected = selected
        self.records: dict[tuple[str, str], dict[str, Any]] = {}

    def record(self, flavour: str, case: oracle.Case) -> dict[str, Any]:
        if (flavour, case.id) not in self.records:
            # outside xdist nobody else boots: boot every selected case of this kernel now
            ids = ({case.id} if os.environ.get("PYTEST_XDIST_WORKER")
                   else {c for f, c in self.selected if f == flavour})
            batch = [c for c in CASES if c.id in ids]
            for rec, _ in oracle.observe_sysctls(batch, self.kernels[flavour], self.initramfs):
                self.records[(flavour, rec["id"])] = rec
        return self.records[(flavour, case.id)]


@pytest.fixture(scope="session")
def sysctl_boots(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> SysctlBoots:
    kernels = {"cloud-amd64": real_kernel("7.2")[0], "amd64": real_generic_kernel("7.2")}
    if oracle.qemu_binary() is None:
        msg = "qemu-system-x86_64 is missing: apt-get install qemu-system-x86"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    selected = [
        (item.callspec.params["flavour"], item.callspec.params["case"].id)
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_sysctl_boot_matches_record"
    ]
    initramfs = oracle.build_initramfs(tmp_path_factory.mktemp("initramfs"))
    return SysctlBoots(kernels, initramfs, selected)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sysctl_boot_matches_record(sysctl_boots: SysctlBoots, flavour: str,
                                    case: oracle.Case) -> None:
    observed = sysctl_boots.record(flavour, case)
    assert not observed["timed_out"], f"{flavour} {case.id}: boot timed out"
    recorded = {c["id"]: c for c in RECORDED["kernels"].get(flavour, {}).get("cases", [])}
    assert observed == recorded.get(case.id), (
        f"{flavour} {case.id}: re-run scripts/boot-oracle --sysctl")
