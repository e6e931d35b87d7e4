"""Splitting a kernel command line into parameters exactly as lib/cmdline.c next_arg() does.

The kernel works on bytes. kpolicy carries a command line as a `str` in which each character is
one byte (latin-1), so that the kernel's isspace() -- which also treats byte 0xA0 as a space --
and its length limits apply byte for byte; `to_display` turns such strings back into text.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Optional

from kpolicy.errors import KpolicyError

# lib/ctype.c: the bytes isspace() accepts (\t \n \v \f \r, space, and NBSP 0xA0).
SPACES = frozenset("\t\n\v\f\r \xa0")


class Token(NamedTuple):
    """One parameter as next_arg() returns it: `name` and `value` with quotes removed."""

    # a NamedTuple (cheap to build by the million); "index" shadows tuple.index on purpose
    index: int  # type: ignore[assignment]  # 0-based position among the command line's tokens
    offset: int  # byte offset of the token's first byte in the command line
    raw: str  # the token as written, quotes included
    name: str
    value: Optional[str]  # None when the token has no "=" (or only one at its very start)


def to_bytes_str(text: str) -> str:
    """TEXT as the kernel sees it: one character per UTF-8 byte."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def to_display(s: str) -> str:
    """A byte string from this module back as text (invalid UTF-8 shown as \\x escapes)."""
    if s.isascii():
        return s
    return s.encode("latin-1").decode("utf-8", "backslashreplace")


_NOT_SPACE = re.compile("[^\t\n\v\f\r \xa0]")
# a parameter's bytes: a quote toggles whether a space ends it (a leading quote too)
_ARG = re.compile('(?:[^\t\n\v\f\r \xa0"]+|"[^"]*"?)+')


def _skip_spaces(s: str, pos: int, n: int) -> int:
    m = _NOT_SPACE.search(s, pos)
    return m.start() if m else n


def next_arg(s: str, pos: int) -> tuple[int, str, Optional[str], int]:
    """Parse the parameter starting at POS (not a space): (end of token, name, value, next pos)."""
    n = len(s)
    quoted = s[pos] == '"'
    a = pos + 1 if quoted else pos
    end = _ARG.match(s, pos).end()  # type: ignore[union-attr]  # POS is not a space
    # the first "=" splits, but not as the first byte (index 0 also means "none" in the kernel)
    equals = max(s.find("=", a + 1, end), 0)
    if equals == 0:
        name_end = end
        value: Optional[str] = None
        if quoted and end > a and s[end - 1] == '"':
            name_end = end - 1
        name = s[a:name_end]
    else:
        name = s[a:equals]
        v_start, v_end = equals + 1, end
        if v_start < end and s[v_start] == '"':
            v_start += 1
            if s[end - 1] == '"':
                v_end = max(v_start, end - 1)
        if quoted and s[end - 1] == '"' and end - 1 >= v_start:
            v_end = min(v_end, end - 1)
        value = s[v_start:v_end]
    nxt = end + 1 if end < n else end
    return end, name, value, _skip_spaces(s, nxt, n)


_new_tuple = tuple.__new__
# what str.split() splits at but next_arg() does not (\x1c-\x1f, non-ASCII spaces), and quotes;
# written as the complement of the rest of ASCII: the class [\x80-\U0010ffff] takes 3 ms to
# compile, on every run
_NOT_PLAIN = re.compile('[^\x00-\x1b !#-\x7f]')
# next_arg()'s name and value per raw word (a pure cache: command lines repeat their words)
_WORDS: dict[str, tuple[str, Optional[str]]] = {}
_WORDS_LIMIT = 100_000


def _name_value(raw: str) -> tuple[str, Optional[str]]:
    split = _WORDS.get(raw)
    if split is None:
        if len(_WORDS) >= _WORDS_LIMIT:
            _WORDS.clear()
        split = _WORDS[raw] = next_arg(raw, 0)[1:3]
    return split


def tokenize(cmdline: str) -> tuple[Token, ...]:
    """CMDLINE's parameters (a byte string, see to_bytes_str) in order, as parse_args sees them."""
    # tuple.__new__: a NamedTuple's own __new__ is a Python-level call per word
    out: list[Token] = []
    known = _WORDS.get
    if _NOT_PLAIN.search(cmdline) is None:  # str.split() splits it as next_arg() does
        at = 0
        find = cmdline.find
        for i, raw in enumerate(cmdline.split()):
            at = find(raw, at)
            out.append(_new_tuple(Token, (i, at, raw, *(known(raw) or _name_value(raw)))))
            at += len(raw)
    else:
        for i, m in enumerate(_ARG.finditer(cmdline)):
            raw = m.group()
            out.append(_new_tuple(Token, (i, m.start(), raw, *(known(raw) or _name_value(raw)))))
    return tuple(out)


def quote_token(name: str, value: Optional[str]) -> str:
    """A word next_arg() splits back into NAME and VALUE, double-quoted when spaces need it."""
    if '"' in name or (value is not None and '"' in value):
        raise KpolicyError("a command-line word cannot contain a double quote "
                           "(the kernel has no escapes)")
    if "=" in name[1:] or (value is not None and not name):
        raise KpolicyError(f"{to_display(name)!r} cannot be written as a parameter name")
    text = name if value is None else f"{name}={value}"
    if not text or any(c in SPACES for c in text):
        return f'"{text}"'
    return text
