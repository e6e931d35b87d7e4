"""The running machine's /proc/sys against the prediction (a fake /proc/sys tree here)."""

from __future__ import annotations

from pathlib import Path

from sysctl_testkit import boot

from kpolicy.sysctl.running import compare_running


def test_differences_are_reported(tmp_path: Path) -> None:
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "kptr_restrict").write_text("1\n")  # sysctl.d changed it
    (tmp_path / "kernel" / "dmesg_restrict").write_text("1\n")  # as predicted
    states = {s.spec.path: s for s in compare_running(boot("").sysctls, tmp_path)}
    kptr = states["kernel.kptr_restrict"]
    assert kptr.effective == "1" and kptr.sources[-1].kind == "running"
    assert kptr.warnings == ("kernel.kptr_restrict is 1 on this machine; config and command "
                             "line give 0",)
    assert states["kernel.dmesg_restrict"].warnings == ()
    # a predicted sysctl missing from /proc/sys is a difference too
    assert states["fs.suid_dumpable"].effective is None
    assert "is absent on this machine" in states["fs.suid_dumpable"].warnings[0]
