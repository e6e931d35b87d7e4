"""Reading a .config the way scripts/kconfig's conf_read_simple does, without a tree.

A .config line is `CONFIG_NAME=value` or `# CONFIG_NAME is not set`; every other `#` line is a
comment; anything else is "unexpected data" that C conf warns about and skips. The kernel accepts
unknown symbols and repeated assignments (the last one wins), so they are warnings here too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from kpolicy.kconfig.evaluate import unquote
from kpolicy.textio import read_text

PREFIX = "CONFIG_"
_HEADER = re.compile(r"^# Linux/(\S+) (\S+) Kernel Configuration$")


@dataclass(frozen=True)
class DotConfig:
    """The assignments of a .config: interpreted values, raw text, and what the header says."""

    values: Mapping[str, str]  # "y"/"m"/"n" (`is not set` -> "n"), numbers, unquoted strings
    header_version: Optional[str] = None  # "7.2.13" from "# Linux/x86 7.2.13 Kernel Configuration"
    arch: Optional[str] = None  # "x86" from the same header
    warnings: tuple[str, ...] = ()
    # Text after `=` ("n" for `is not set`), in the order of each symbol's last assignment:
    # what C conf_set_sym_val sees, type by type.
    raw: Mapping[str, str] = field(default_factory=dict)
    lines: Mapping[str, int] = field(default_factory=dict)  # line of each symbol's last assignment


def parse_dotconfig(text: str, file: str) -> DotConfig:
    """Parse .config TEXT (from FILE, for warnings) as the kernel's conf_read_simple does."""
    raw: dict[str, str] = {}
    lines: dict[str, int] = {}
    warnings: list[str] = []
    version = arch = None
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line:
            continue
        if line.startswith("#"):
            header = _HEADER.match(line) if version is None else None  # the first one counts
            if header:
                arch, version = header.group(1), header.group(2)
            if not line.startswith("# " + PREFIX) or not line.endswith(" is not set"):
                continue
            name = line[2 + len(PREFIX):-len(" is not set")]
            if not name or " " in name:
                continue
            value = "n"
        else:
            if not line.startswith(PREFIX) or "=" not in line:
                warnings.append(f"{file}:{lineno}: unexpected data: {line[:80]}")
                continue
            name, value = line[len(PREFIX):].split("=", 1)
        if name in raw:
            warnings.append(f"{file}:{lineno}: override: reassigning to symbol {name}")
            del raw[name]  # keep the order of last assignments (choices depend on it)
        raw[name] = value
        lines[name] = lineno
    values = {}
    for name, value in raw.items():
        if value.startswith('"'):
            text_value = unquote(value)
            if text_value is None:
                warnings.append(f"{file}:{lines[name]}: invalid string found for {name}")
                continue
            value = text_value
        values[name] = value
    return DotConfig(values=values, header_version=version, arch=arch,
                     warnings=tuple(warnings), raw=raw, lines=lines)


def read_dotconfig(path: Path) -> DotConfig:
    """Read the .config at PATH; unreadable, binary or non-UTF-8 input raises KpolicyError."""
    return parse_dotconfig(read_text(path, what=".config"), str(path))
