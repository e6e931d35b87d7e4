"""Locating grammars/ and rules/: inside the wheel, or at the top of a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The directory NAME ("grammars" or "rules") that ships with this kpolicy."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"kpolicy installation is missing its {name}/ directory")


def grammar_path(filename: str) -> Path:
    """Path of a lark grammar shipped in grammars/."""
    return data_dir("grammars") / filename
