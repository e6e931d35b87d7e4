"""The running system: the sysctls' values in /proc/sys against what kpolicy predicts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from kpolicy.sysctl.boot import SysctlSource, SysctlState, with_sources


def read_running(proc_sys: Path, path: str) -> Optional[str]:
    """PATH's value under PROC_SYS (white space collapsed), or None when it cannot be read."""
    try:
        text = (proc_sys / path.replace(".", "/")).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return " ".join(text.split())


def compare_running(states: Sequence[SysctlState], proc_sys: Path) -> tuple[SysctlState, ...]:
    """STATES with the running value of each as a last step, and a warning where it differs
    from the prediction (something after boot, such as sysctl.d or a module, changed it)."""
    out = []
    for s in states:
        now = read_running(proc_sys, s.spec.path)
        if now == s.effective or (now is None and not s.built):
            out.append(s)
            continue
        shown = "absent" if now is None else now
        out.append(with_sources(
            s, now, [SysctlSource("running", now, f"{proc_sys}/{s.spec.path.replace('.', '/')} "
                                  f"reads {shown}", location=str(proc_sys))],
            [f"{s.spec.path} is {shown} on this machine; config and command line give "
             f"{s.effective if s.effective is not None else 'no value'}"]))
    return tuple(out)
