"""The one error type kpolicy raises for bad input; the CLI turns it into one line and exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union


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
        if self.file is None:
            return f"kpolicy: error: {self.message}"
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: error: {self.message}"
