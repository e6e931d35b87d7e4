"""The kernel's string-to-value helpers (lib/kstrtox.c) as the tree's version defines them."""

from __future__ import annotations

from typing import Optional

# Linux 6.16 taught kstrtobool "e"/"E" (enable) and "d"/"D" (disable).
ENABLE_DISABLE_SINCE = (6, 16, 0)

_TRUE = frozenset("yYtT1")
_FALSE = frozenset("nNfF0")


def kstrtobool(s: Optional[str], version: tuple[int, int, int]) -> Optional[bool]:
    """The bool kstrtobool() makes of S in kernel VERSION, or None where it returns -EINVAL."""
    if not s:
        return None
    c = s[0]
    if c in _TRUE:
        return True
    if c in _FALSE:
        return False
    if c in "eEdD" and version >= ENABLE_DISABLE_SINCE:
        return c in "eE"
    if c in "oO" and len(s) > 1:
        if s[1] in "nN":
            return True
        if s[1] in "fF":
            return False
    return None


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
