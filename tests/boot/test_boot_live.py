"""Re-boot every case of cases.toml on the real 7.2 cloud kernel and compare with observed.json.

This keeps the record honest: if the kernel, the harness or a case changes, the recorded
observation no longer matches and this test fails until scripts/boot-oracle is re-run.
Under pytest-xdist each worker boots its own cases one at a time (2 workers = 2 boots at once);
in a plain run the first test boots every case, two at a time, and the rest read the results.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import oracle
import pytest
from conftest import in_ci, real_generic_kernel, real_kernel

pytestmark = pytest.mark.boot

CASES = oracle.load_cases()
RECORDED = {r["id"]: r for r in oracle.load_observed()["cases"]}


class LiveBoots:
    """Boots cases on demand and remembers what it saw."""

    def __init__(self, vmlinuz: Path, initramfs: Path, selected: list[oracle.Case]) -> None:
        self.vmlinuz = vmlinuz
        # the generic amd64 kernel, found only when a selected case boots it
        self.kernels = ({"amd64": real_generic_kernel("7.2")}
                        if any(c.flavour == "amd64" for c in selected) else None)
        self.initramfs = initramfs
        self.selected = selected
        self.records: dict[str, dict[str, Any]] = {}

    def record(self, case: oracle.Case) -> dict[str, Any]:
        if case.id not in self.records:
            # Outside xdist nobody else boots: boot every selected case now, two at a time.
            batch = [case] if os.environ.get("PYTEST_XDIST_WORKER") else self.selected
            for rec, _ in oracle.observe_all(batch, self.vmlinuz, self.initramfs, jobs=2,
                                             kernels=self.kernels):
                self.records[rec["id"]] = rec
        return self.records[case.id]


@pytest.fixture(scope="session")
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LiveBoots:
    vmlinuz, _config = real_kernel("7.2")
    if oracle.qemu_binary() is None:
        msg = "qemu-system-x86_64 is missing: apt-get install qemu-system-x86"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    selected = {
        item.callspec.params["case"].id
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == "test_boot_matches_record"
    }
    initramfs = oracle.build_initramfs(tmp_path_factory.mktemp("initramfs"))
    return LiveBoots(vmlinuz, initramfs, [c for c in CASES if c.id in selected])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_boot_matches_record(live: LiveBoots, case: oracle.Case) -> None:
    observed = live.record(case)
    assert not observed["timed_out"], f"{case.id}: boot timed out"
    assert observed == RECORDED.get(case.id), f"{case.id}: re-run scripts/boot-oracle"
