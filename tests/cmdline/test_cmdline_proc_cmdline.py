"""/proc/cmdline with bootconfig: setup_command_line() of init/main.c (6.1, 6.12, 7.2).

The kernel's kernel.* words come first ("there could be dashes ... in the command lines"), the
init.* words go right after the command line's `--` (" -- "[bootconfig init-param][cmdline
init-param]), or after an added ` -- `. Debian's kernels are built without CONFIG_BOOT_CONFIG,
so no real boot can check this; the cases follow the code, line by line."""

from __future__ import annotations

import pytest
from test_cmdline_passes import CONFIG, synthetic

from kpolicy.cmdline import process_cmdline

NEW, OLD = (7, 2, 0), (6, 1, 0)


@pytest.mark.parametrize(("version", "cmdline", "bootconfig", "proc"), [
    (NEW, "bootconfig quiet", "kernel.a = 1", "a=1 bootconfig quiet"),
    (NEW, "bootconfig quiet", "kernel.a = 1\ninit.x = 2", "a=1 bootconfig quiet -- x=2"),
    # 6.1 keeps the trailing space of the init.* words (no strim() yet)
    (OLD, "bootconfig quiet", "kernel.a = 1\ninit.x = 2", "a=1 bootconfig quiet -- x=2 "),
    (NEW, "bootconfig -- b", "init.x = 2", "bootconfig -- x=2 b"),
    (OLD, "bootconfig -- b", "init.x = 2", "bootconfig -- x=2  b"),
    (NEW, "bootconfig --   b c", "init { x = 2; y }", "bootconfig --   x=2 y b c"),
    # `--` ending the line: initargs_offs is the line's length, and the copy of the command
    # line's init part starts one byte before it
    (NEW, "bootconfig --", "init.x = 2", "bootconfig --x=2-"),
    (NEW, "bootconfig", "other.key = 1", "bootconfig"),
])
def test_bootconfig_words_in_proc_cmdline(version: tuple[int, int, int], cmdline: str,
                                          bootconfig: str, proc: str) -> None:
    kp = synthetic({**CONFIG, "BOOT_CONFIG": "y"}, version=version)
    result = process_cmdline(kp, cmdline, bootconfig=bootconfig)
    assert result.effective == cmdline
    assert result.proc_cmdline == proc


def test_unread_bootconfig_adds_nothing() -> None:
    kp = synthetic({**CONFIG, "BOOT_CONFIG": "y"}, version=NEW)
    assert process_cmdline(kp, "quiet", bootconfig="kernel.a = 1").proc_cmdline == "quiet"
    off = synthetic(CONFIG, version=NEW)
    assert process_cmdline(off, "bootconfig", bootconfig="kernel.a = 1").proc_cmdline == \
        "bootconfig"
