"""Re-boot every case of cases.toml (on the real 7.2 cloud-amd64 kernel) and cases-arm64.toml
(on the 7.2 cloud-arm64 kernel) and compare with observed.json / observed-arm64.json.

This keeps the records honest: if the kernel, the harness or a case changes, the recorded
observation no longer matches and this test fails until scripts/boot-oracle is re-run.
Under pytest-xdist each worker boots its own cases one at a time (2 workers = 2 boots at once);
in a plain run the first test of a target boots every selected case of that target, two at a
time, and the rest read the results.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import oracle
import pytest
from conftest import in_ci, real_busybox, real_case_kernels, real_kernel

pytestmark = pytest.mark.boot

CASES = [
    c
    for t in oracle.TARGETS.values()
    if t.observed_file.is_file()
    for c in oracle.load_cases(target=t)
]
RECORDED = {
    (t.arch, r["id"]): r
    for t in oracle.TARGETS.values()
    if t.observed_file.is_file()
    for r in oracle.load_observed(t.observed_file)["cases"]
}


class LiveBoots:
    """Boots one target's cases on demand and remembers what it saw."""

    def __init__(self, vmlinuz: Path, initramfs: Path, selected: list[oracle.Case]) -> None:
        self.vmlinuz = vmlinuz
        # the other flavours' kernels (generic amd64, older versions' cloud kernels), found
        # only when a selected case boots them
        self.kernels = real_case_kernels(c.flavour for c in selected)
        self.initramfs = initramfs
        self.selected = selected
        self.records: dict[str, dict[str, Any]] = {}

    def record(self, case: oracle.Case, again: bool = False) -> dict[str, Any]:
        """CASE's observation; AGAIN boots it once more, alone, whatever was seen before."""
        if again:
            for rec, _ in oracle.observe_all([case], self.vmlinuz, self.initramfs, jobs=1,
                                             kernels=self.kernels):
                self.records[rec["id"]] = rec
        elif case.id not in self.records:
            # Outside xdist nobody else boots: boot every selected case now, two at a time.
            batch = [case] if os.environ.get("PYTEST_XDIST_WORKER") else self.selected
            for rec, _ in oracle.observe_all(batch, self.vmlinuz, self.initramfs, jobs=2,
                                             kernels=self.kernels):
                self.records[rec["id"]] = rec
        return self.records[case.id]


def _boots_for(target: oracle.Target, request: pytest.FixtureRequest, tmp: Path) -> LiveBoots:
    vmlinuz, _config = real_kernel("7.2", target.arch)
    if oracle.qemu_binary(target) is None:
        msg = f"{target.qemu} is missing: apt-get install {target.apt_package}"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    busybox = Path("/bin/busybox") if target is oracle.X86_64 else real_busybox(target.arch)
    selected = {
        item.callspec.params["case"].id
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_boot_matches_record"
        and item.callspec.params["case"].target is target
    }
    initramfs = oracle.build_initramfs(tmp, target, busybox)
    return LiveBoots(
        vmlinuz, initramfs, [c for c in CASES if c.target is target and c.id in selected]
    )


@pytest.fixture(scope="session")
def live() -> dict[str, LiveBoots]:
    """Each target's boots, set up when its first case runs."""
    return {}


def _case_id(case: oracle.Case) -> str:
    """The test id: the x86 cases keep their bare ids, the others carry their arch."""
    return case.id if case.target is oracle.X86_64 else f"{case.target.arch}-{case.id}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_boot_matches_record(
    live: dict[str, LiveBoots],
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    case: oracle.Case,
) -> None:
    arch = case.target.arch
    if arch not in live:
        live[arch] = _boots_for(case.target, request, tmp_path_factory.mktemp(f"initramfs-{arch}"))
    observed = live[arch].record(case)
    assert not observed["timed_out"], f"{case.id}: boot timed out"
    recorded = RECORDED.get((arch, case.id))
    if _only_kaslr_stayed(observed, recorded) or _crashed_unlike_record(observed, recorded):
        # KASLR is seen as _text having moved, and a randomized kernel may land on its default
        # slot (one of some 500 on x86_64); and TCG, on a loaded machine, now and then brings
        # a guest down in an interrupt ("Fatal exception in interrupt") that no command line
        # causes. Either way one more boot, alone, must match the record exactly.
        observed = live[arch].record(case, again=True)
    assert observed == recorded, (
        f"{arch} {case.id}: {_differences(observed, recorded)}; "
        f"re-run scripts/boot-oracle --arch {arch}"
    )


def _crashed_unlike_record(observed: dict[str, Any], recorded: Optional[dict[str, Any]]) -> bool:
    """Whether the boot died in a panic the record does not have (the recorded boot ran)."""
    return (recorded is not None and recorded.get("panic") is None
            and observed.get("panic") is not None)


def _differences(observed: dict[str, Any], recorded: Optional[dict[str, Any]]) -> str:
    """The keys (features one by one) whose observed value is not the recorded one."""
    if recorded is None:
        return "no record"
    diffs = []
    for key in sorted(set(observed) | set(recorded)):
        seen, want = observed.get(key), recorded.get(key)
        if key == "features" and isinstance(seen, dict) and isinstance(want, dict):
            diffs += [f"{name}: saw {seen.get(name)!r}, recorded {want.get(name)!r}"
                      for name in sorted(set(seen) | set(want)) if seen.get(name) != want.get(name)]
        elif seen != want:
            diffs.append(f"{key}: saw {seen!r}, recorded {want!r}")
    return "; ".join(diffs)


def _only_kaslr_stayed(observed: dict[str, Any], recorded: Optional[dict[str, Any]]) -> bool:
    """Whether OBSERVED differs from RECORDED only in a KASLR that was seen on and is now not."""
    if recorded is None or "kaslr" not in recorded.get("features", {}):
        return False
    if not (recorded["features"]["kaslr"] is True
            and observed.get("features", {}).get("kaslr") is False):
        return False
    moved = {**observed, "features": {**observed["features"], "kaslr": True}}
    return moved == recorded
