"""The kernel's own primitives, each defined once: how it reads numbers and booleans
(lib/kstrtox.c), how it compares parameter names (kernel/params.c parameq), how long its
command line may be (COMMAND_LINE_SIZE), and which behaviour changed in which release.

Every other package asks here instead of keeping its own copy; this module imports nothing
from kpolicy, so anything may use it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Optional

Version = tuple[int, int, int]

# --- versions and the behaviour that changed between them ---------------------------------------

# Linux 6.16 taught kstrtobool() "e"/"E" (enable) and "d"/"D" (disable).
KSTRTOBOOL_ENABLE_DISABLE = (6, 16, 0)
# One release on each side of every kstrtobool() change: a version-free answer holds on all.
KSTRTOBOOL_ERAS: tuple[Version, ...] = ((6, 15, 0), KSTRTOBOOL_ENABLE_DISABLE)
# Linux 6.11 rewrote scripts/kconfig's choices: no choice "mode" symbol, `optional` removed,
# a member depends on the choice's own dependencies.
KCONFIG_NEW_CHOICES = (6, 11, 0)


@functools.lru_cache(maxsize=64)
def parse_version(text: str) -> Version:
    """(VERSION, PATCHLEVEL, SUBLEVEL) of a KERNELVERSION such as "7.2.13" or "6.12-rc1"."""
    nums = [int(n) for n in re.findall(r"\d+", text)[:3]] + [0, 0, 0]
    return (nums[0], nums[1], nums[2])


def has_new_choices(version: Version) -> bool:
    """Whether VERSION's scripts/kconfig handles choices the post-6.11 way."""
    return version >= KCONFIG_NEW_CHOICES


# --- parameter names ----------------------------------------------------------------------------


def fold_param(name: str) -> str:
    """NAME as parameq() compares it: every `-` read as `_` (kernel/params.c)."""
    return name.replace("-", "_")


# --- lib/kstrtox.c ------------------------------------------------------------------------------

_TRUE = frozenset("yYtT1")
_FALSE = frozenset("nNfF0")


def kstrtobool(s: Optional[str], version: Version) -> Optional[bool]:
    """The bool kstrtobool() makes of S in kernel VERSION, or None where it returns -EINVAL."""
    if not s:
        return None
    c = s[0]
    if c in _TRUE:
        return True
    if c in _FALSE:
        return False
    if c in "eEdD" and version >= KSTRTOBOOL_ENABLE_DISABLE:
        return c in "eE"
    if c in "oO" and len(s) > 1:
        if s[1] in "nN":
            return True
        if s[1] in "fF":
            return False
    return None


def kstrtobool_everywhere(s: str) -> Optional[bool]:
    """Whether every supported kernel's kstrtobool() takes S (True) or refuses it (False);
    None where the answer depends on the version."""
    taken = {kstrtobool(s, v) is not None for v in KSTRTOBOOL_ERAS}
    return taken.pop() if len(taken) == 1 else None


# param type -> (lowest, highest, signed) of the C type a kstrto*() call fills
INTEGER_TYPES: dict[str, tuple[int, int, bool]] = {
    "byte": (0, 0xFF, False),
    "short": (-(1 << 15), (1 << 15) - 1, True),
    "ushort": (0, 0xFFFF, False),
    "int": (-(1 << 31), (1 << 31) - 1, True),
    "uint": (0, 0xFFFFFFFF, False),
    "hexint": (0, 0xFFFFFFFF, False),
    "long": (-(1 << 63), (1 << 63) - 1, True),
    "ulong": (0, (1 << 64) - 1, False),
    "ullong": (0, (1 << 64) - 1, False),
}

_DIGITS = "0123456789abcdef"


def _parse_unsigned(s: str) -> Optional[int]:
    """_kstrtoull() with base 0: 0x hex, leading 0 octal, else decimal; one trailing newline."""
    if s.endswith("\n"):
        s = s[:-1]
    base = 10
    if s[:2].lower() == "0x" and len(s) > 2 and s[2].lower() in _DIGITS:
        base, s = 16, s[2:]
    elif s[:1] == "0":
        base = 8
    if not s:
        return None
    value = 0
    for ch in s.lower():
        d = _DIGITS.find(ch)
        if d < 0 or d >= base:
            return None
        value = value * base + d
    return value


def kstrtoint(s: Optional[str], param_type: str) -> Optional[int]:
    """The number kstrto<PARAM_TYPE>(S, 0) makes, or None where it fails (-EINVAL or -ERANGE)."""
    if s is None:
        return None
    lo, hi, signed = INTEGER_TYPES[param_type]
    negative = False
    if s[:1] == "+":
        s = s[1:]
    elif s[:1] == "-" and signed:
        negative, s = True, s[1:]
    value = _parse_unsigned(s)
    if value is None:
        return None
    if negative:
        value = -value
    return value if lo <= value <= hi else None


# --- the command line's size --------------------------------------------------------------------

# COMMAND_LINE_SIZE per SRCARCH (bytes, including the terminating NUL), from
# arch/<arch>/include/uapi/asm/setup.h or arch/<arch>/include/asm/setup.h (Linux 6.1-7.2);
# anything else uses include/uapi/asm-generic/setup.h. s390 takes CONFIG_COMMAND_LINE_SIZE,
# sparc is 2048 on 64-bit and 256 on 32-bit.
COMMAND_LINE_SIZE: dict[str, int] = {
    "alpha": 256, "arc": 256, "arm": 1024, "arm64": 2048, "loongarch": 4096, "m68k": 256,
    "microblaze": 256, "mips": 4096, "parisc": 1024, "powerpc": 2048, "riscv": 2048,
    "um": 4096, "x86": 2048, "xtensa": 256,
}
GENERIC_COMMAND_LINE_SIZE = 512


def command_line_size(srcarch: str, config: Mapping[str, str]) -> int:
    """COMMAND_LINE_SIZE of SRCARCH under CONFIG (the buffer size; at most size-1 bytes survive)."""
    if srcarch == "s390":
        try:
            return int(config.get("COMMAND_LINE_SIZE", "4096"), 0)
        except ValueError:
            return 4096
    if srcarch == "sparc":
        return 2048 if config.get("SPARC64") == "y" else 256
    return COMMAND_LINE_SIZE.get(srcarch, GENERIC_COMMAND_LINE_SIZE)
