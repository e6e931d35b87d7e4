"""The command line the kernel parses: the boot loader's merged with CONFIG_CMDLINE, per arch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

# Arches whose command line comes from the device tree's /chosen/bootargs and whose CONFIG_CMDLINE
# is merged by drivers/of/fdt.c (arm64 has only CMDLINE_FORCE there; powerpc's prom_init.c agrees).
# loongarch's bootcmdline_init() merges the same way on UEFI machines; on device-tree machines it
# also appends the line the firmware passed in registers when the tree's lacks it (not modelled).
DEVICE_TREE_ARCHES = frozenset({"arm", "arm64", "riscv", "powerpc", "microblaze", "nios2",
                                "openrisc", "xtensa", "csky", "loongarch"})


@dataclass(frozen=True)
class Merged:
    """The command line after the arch's built-in merge, and how it came about."""

    cmdline: str
    truncated: bool
    how: str  # one line: which rule produced it


def _cut(s: str, size: int) -> tuple[str, bool]:
    """strscpy/strlcat into a SIZE-byte buffer: at most SIZE-1 bytes survive."""
    return (s, False) if len(s) < size else (s[: size - 1], True)


def merge_builtin(srcarch: str, config: Mapping[str, str], bootloader: str,
                  size: int) -> Merged:
    """The boot_command_line SRCARCH builds from BOOTLOADER's line and CONFIG_CMDLINE."""
    boot, truncated = _cut(bootloader, size)
    builtin: Optional[str] = config.get("CMDLINE")
    on = config.get
    if srcarch == "x86":
        if on("CMDLINE_BOOL") != "y" or builtin is None:
            return Merged(boot, truncated, "boot loader's command line")
        if on("CMDLINE_OVERRIDE") == "y":
            line, cut = _cut(builtin, size)
            return Merged(line, cut, "CONFIG_CMDLINE only (CMDLINE_OVERRIDE=y)")
        if not builtin:
            return Merged(boot, truncated, "boot loader's command line (CONFIG_CMDLINE empty)")
        line, cut = _cut(f"{builtin} {boot}", size)
        return Merged(line, truncated or cut,
                      "CONFIG_CMDLINE, then the boot loader's (CMDLINE_BOOL=y)")
    if srcarch in DEVICE_TREE_ARCHES and builtin is not None:
        if on("CMDLINE_EXTEND") == "y":
            line, cut = _cut(f"{boot} {builtin}", size)
            return Merged(line, truncated or cut,
                          "boot loader's, then CONFIG_CMDLINE (CMDLINE_EXTEND=y)")
        if on("CMDLINE_FORCE") == "y":
            line, cut = _cut(builtin, size)
            return Merged(line, cut, "CONFIG_CMDLINE only (CMDLINE_FORCE=y)")
        if not boot:
            line, cut = _cut(builtin, size)
            return Merged(line, cut, "CONFIG_CMDLINE (the boot loader passed none)")
    return Merged(boot, truncated, "boot loader's command line")
