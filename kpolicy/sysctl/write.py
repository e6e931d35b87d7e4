"""The kernel's proc handlers for the sysctls of rules/sysctls/security.toml: what a write of a
string does (kernel/sysctl.c proc_get_long and the int/ulong/u8/bool handlers, the one-way locks).

A write is one call, as do_sysctl_args() and systemd-sysctl make it: the string without its
newline. The handlers read one number (base auto-detected as strtoul does: 0x.. hex, 0.. octal),
after optional leading white space; a second number is left unread (the write is short, the
value still taken).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from kpolicy.sysctl.spec import SysctlSpec

INT_MAX = 2**31 - 1
UINT_MAX = 2**32 - 1
ULONG_MAX = 2**64 - 1
TMPBUFLEN = 22  # proc_get_long's buffer
_SPACES = " \t\n\v\f\r"  # isspace(): what proc_skip_spaces() skips
_AFTER = " \t\n"  # proc_wspace_sep: what may follow a number


@dataclass(frozen=True)
class WriteOutcome:
    """What one write did: the value the file reads back after it, or the error it got."""

    value: str  # what the file reads after the write (unchanged when refused)
    error: Optional[str] = None  # "EINVAL", "EPERM" when refused
    short: bool = False  # taken, but not all bytes were consumed (a second number)
    why: str = ""

    @property
    def accepted(self) -> bool:
        return self.error is None


def _digit(c: str) -> int:
    if "0" <= c <= "9":
        return ord(c) - ord("0")
    if "a" <= c.lower() <= "f":
        return ord(c.lower()) - ord("a") + 10
    return 99


def _strtoul(s: str) -> tuple[Optional[int], int]:
    """strtoul_lenient(s, base 0): (value, characters used), value None on overflow."""
    base, start = 10, 0
    if s[:1] == "0":
        if s[1:2].lower() == "x" and _digit(s[2:3] or "z") < 16:
            base, start = 16, 2
        else:
            base = 8
    value, i = 0, start
    while i < len(s) and _digit(s[i]) < base:
        value = value * base + _digit(s[i])
        i += 1
    return (value if value <= ULONG_MAX else None), i


def read_number(text: str) -> tuple[Optional[tuple[bool, int]], bool, str]:
    """proc_get_long over TEXT after leading spaces: ((negative, magnitude) or None when
    refused, whether text is left after the number and its spaces, why it was refused)."""
    p = len(text) - len(text.lstrip(_SPACES))
    left = len(text) - p
    if not left:
        return None, False, "no number"
    tmp = text[p:p + TMPBUFLEN - 1]
    neg = tmp[:1] == "-" and left > 1
    q = 1 if neg else 0
    if not tmp[q:q + 1].isdigit() or not tmp[q:q + 1].isascii():
        return None, False, f"{text!r} does not start with a digit"
    value, used = _strtoul(tmp[q:])
    if value is None:
        return None, False, f"{text!r} does not fit an unsigned long"
    end = q + used
    if end == TMPBUFLEN - 1:
        return None, False, f"{text!r} is too long for a number"
    if end < left and tmp[end:end + 1] not in tuple(_AFTER):
        return None, False, f"{text!r} has {tmp[end]!r} after the number"
    rest = text[p + end:].lstrip(_SPACES)
    return (neg, value), bool(rest), ""


def _signed(neg: bool, mag: int) -> Optional[int]:
    """proc_int_u2k_conv: the int, or None when it does not fit."""
    if neg:
        return -mag if mag <= INT_MAX + 1 else None
    return mag if mag <= INT_MAX else None


def write(spec: SysctlSpec, current: str, text: str, bounds: tuple[Optional[int], Optional[int]]
          = (None, None)) -> WriteOutcome:
    """Write TEXT to SPEC's file holding CURRENT; BOUNDS override the spec's (min, max)."""
    lo = spec.min if bounds[0] is None else bounds[0]
    hi = spec.max if bounds[1] is None else bounds[1]
    number, more, why = read_number(text)
    if number is None:
        return WriteOutcome(current, "EINVAL", why=why)
    neg, mag = number
    if spec.handler in ("ulong", "u8"):
        if neg:
            return WriteOutcome(current, "EINVAL", why="an unsigned sysctl refuses a sign")
        top = ULONG_MAX if spec.handler == "ulong" else UINT_MAX
        if mag > top:
            return WriteOutcome(current, "EINVAL", why=f"{mag} is out of range")
        if spec.handler == "u8":
            lo, hi = (0 if lo is None else lo), (255 if hi is None else hi)
            more = False  # do_proc_douintvec_w reports the whole write as taken
        value = mag
    else:
        signed = _signed(neg, mag)
        if signed is None:
            return WriteOutcome(current, "EINVAL", why=f"{text.strip()} does not fit an int")
        value = signed
    if spec.handler == "int" or spec.handler == "bool":
        lo = hi = None
    if spec.lock is not None and current == str(spec.lock) and value != spec.lock:
        error = "EPERM" if spec.lock != spec.max else "EINVAL"
        return WriteOutcome(current, error, why=f"{spec.path} is locked at {spec.lock}: "
                            "a one-way switch")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return WriteOutcome(current, "EINVAL", why=f"{value} is outside {lo}..{hi}")
    shown = str(int(value != 0)) if spec.handler == "bool" else str(value)
    return WriteOutcome(shown, short=more, why="a second number is not read" if more else "")
