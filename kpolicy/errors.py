"""The one error type kpolicy raises for bad input; the CLI turns it into one line and exit 2."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Union

_CONF_PLACE = re.compile(r"^\S+:\d+: (?:error: )?")


def printable(text: str) -> str:
    """TEXT with control characters (escape sequences, carriage returns, newlines, ...) shown as
    `\\xNN`, so that tree text written to a terminal or a CI log cannot rewrite what it shows
    or start a line of its own (a forged `::error` workflow command)."""
    return "".join(c if c.isprintable() or c == "\t" else f"\\x{ord(c):02x}" for c in text)


class KpolicyError(Exception):
    """Bad input or an impossible request, with the file and line it came from when known."""

    def __init__(
        self,
        message: str,
        *,
        file: Optional[Union[str, Path]] = None,
        line: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line

    def __str__(self) -> str:
        message = printable(self.message)  # it may quote tree text
        if self.file is None:
            return f"kpolicy: error: {message}"
        where = printable(self.file) if self.line is None else f"{printable(self.file)}:{self.line}"
        return f"{where}: error: {message}"

    def report(self) -> str:
        """What the CLI prints: the one line of str(self), unless a subclass has more to say."""
        return str(self)


class KconfigParseError(KpolicyError):
    """Errors C conf reports together before it stops, in its words (LINES), after what the
    Kconfig files printed up to then (MESSAGES). str() is kpolicy's one `file:line: error:` line;
    conf_text() is conf's own text, which the kernel's Kconfig test suite compares."""

    def __init__(self, lines: tuple[str, ...], *, messages: tuple[str, ...] = (),
                 file: Optional[Union[str, Path]] = None, line: Optional[int] = None) -> None:
        # conf's first line names the place already; kpolicy's line names it once, in front
        text = _CONF_PLACE.sub("", " ".join(" ".join(lines).split()), count=1)
        super().__init__(text or "Kconfig error", file=file, line=line)
        self.lines = lines
        self.messages = messages

    def report(self) -> str:
        return "\n".join((*self.messages, str(self)))

    def conf_text(self) -> str:
        return "\n".join((*self.messages, *self.lines))
