"""Just enough C lexing to read registrations without a compiler.

The scanner works on a *masked* copy of a C file: the same length as the original, with every
comment turned into spaces and the inside of every string and character literal turned into `x`
(newlines are kept everywhere). Offsets and line numbers therefore mean the same thing in both
copies: structure (identifiers, parentheses, commas, braces, directives) is read from the mask,
where nothing inside a comment or a string can be mistaken for code, and literal text is read
back from the original at the same offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple, Optional

# Comments (a `//` comment goes on across backslash-newlines, as in the C preprocessor), string
# and character literals. An unterminated quote (an apostrophe in an #error line) matches nothing
# and is left alone.
_LEXEMES = re.compile(
    rb"//(?:[^\n\\]|\\[\s\S])*"
    rb"|/\*[\s\S]*?(?:\*/|\Z)"
    rb'|"(?:[^"\\\n]|\\[\s\S])*"'
    rb"|'(?:[^'\\\n]|\\[\s\S])*'"
)
_BLANK = bytes(b if b == 0x0A else 0x20 for b in range(256))
_FILL = bytes(b if b == 0x0A else 0x78 for b in range(256))


def _mask_one(m: re.Match[bytes]) -> bytes:
    text = m.group()
    if text[0] == 0x2F:  # '/': a comment
        return text.translate(_BLANK)
    return text[:1] + text[1:-1].translate(_FILL) + text[-1:]


def mask(data: bytes) -> bytes:
    """DATA with comments blanked and literal contents filled, offsets and newlines unchanged."""
    return _LEXEMES.sub(_mask_one, data)


class Lines:
    """Offset -> line lookups for one file; cheapest when offsets come in increasing order."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0
        self._line = 1

    def line(self, offset: int) -> int:
        """1-based line containing OFFSET."""
        if offset < self._offset:
            self._offset, self._line = 0, 1
        self._line += self._data.count(b"\n", self._offset, offset)
        self._offset = offset
        return self._line


MAX_CALL = 4096
_PAREN = re.compile(rb"[(),\[\]{}]")


def call_arguments(masked: bytes, open_paren: int) -> Optional[tuple[list[tuple[int, int]], int]]:
    """Spans of the top-level arguments of the call whose `(` is at OPEN_PAREN, and the offset
    after its `)`; None when the parentheses never close (a truncated or macro-built call)."""
    depth = 0
    spans: list[tuple[int, int]] = []
    start = open_paren + 1
    # A registration call is a few lines long; stopping far beyond that keeps a file full of
    # unclosed calls linear.
    for m in _PAREN.finditer(masked, open_paren, open_paren + MAX_CALL):
        c = m.group()
        if c in b"([{":
            depth += 1
        elif c in b")]}":
            depth -= 1
            if depth == 0:
                spans.append((start, m.start()))
                return spans, m.end()
            if depth < 0:
                return None
        elif depth == 1:  # a comma between two arguments of this call
            spans.append((start, m.start()))
            start = m.end()
    return None


_STRING = re.compile(rb'"((?:[^"\\\n]|\\[\s\S])*)"')
_ESCAPES = {b"n": "\n", b"t": "\t", b"\\": "\\", b'"': '"', b"'": "'", b"0": "\0"}


def string_value(original: bytes, masked: bytes, start: int, end: int) -> Optional[str]:
    """The value of an argument made only of adjacent string literals ("a" "b"), else None.

    Non-ASCII bytes are kept as U+FFFD so a hostile file cannot fail the whole scan.
    """
    if not masked[start:end].strip():
        return None
    pieces: list[str] = []
    pos = start
    for m in _STRING.finditer(masked, start, end):
        if masked[pos : m.start()].strip():
            return None  # something other than a literal between the pieces (a macro)
        raw = original[m.start(1) : m.end(1)]
        pieces.append(_unescape(raw))
        pos = m.end()
    if not pieces or masked[pos:end].strip():
        return None
    return "".join(pieces)


def _unescape(raw: bytes) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        b = raw[i : i + 1]
        if b == b"\\" and i + 1 < len(raw):
            nxt = raw[i + 1 : i + 2]
            if nxt == b"\n":
                i += 2
                continue
            out.append(_ESCAPES.get(nxt, nxt.decode("latin-1")))
            i += 2
            continue
        out.append(b.decode("latin-1") if b < b"\x80" else "\ufffd")
        i += 1
    return "".join(out)


class Directive(NamedTuple):
    """One preprocessor directive: a logical line, continuations included (a tuple: files have
    thousands, so it must be cheap to make)."""

    name: str  # "if", "ifdef", "define", ...
    start: int
    end: int
    rest: int  # offset just after the directive's name

    def text(self, original: bytes) -> str:
        """The directive after its name, read from ORIGINAL with comments and continuations
        removed and whitespace collapsed (string literals intact)."""
        raw = _COMMENT.sub(_keep_strings, original[self.rest : self.end]).replace(b"\\\n", b" ")
        return " ".join(raw.decode("latin-1").split())


_DIRECTIVE = re.compile(rb"^[ \t]*#[ \t]*(\w+)(?:[^\n\\]|\\[\s\S])*", re.M)
_COMMENT = re.compile(
    rb'//(?:[^\n\\]|\\[\s\S])*|/\*[\s\S]*?(?:\*/|\Z)|("(?:[^"\\\n]|\\[\s\S])*")'
)


def _keep_strings(m: re.Match[bytes]) -> bytes:
    return m.group(1) or b" "


def directives(masked: bytes) -> Iterator[Directive]:
    """Every preprocessor directive of a masked file, in order."""
    for m in _DIRECTIVE.finditer(masked):
        yield Directive(m.group(1).decode("latin-1"), m.start(), m.end(), m.end(1))


_IDENT = re.compile(r"[A-Za-z_]\w*")


def identifier(masked: bytes, start: int, end: int) -> Optional[str]:
    """The argument as a bare identifier (`foo`), or None when it is anything else."""
    text = masked[start:end].strip().decode("latin-1")
    return text if _IDENT.fullmatch(text) else None
