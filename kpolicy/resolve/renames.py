"""Renamed Kconfig symbols (rules/renames/kconfig.toml): one name per setting across versions."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Optional

from kpolicy.errors import KpolicyError
from kpolicy.kernel import Version, parse_version
from kpolicy.textio import parse_toml


@dataclass(frozen=True)
class Rename:
    """Symbol OLD is called NEW from release SINCE on."""

    old: str
    new: str
    since: Version
    evidence: str


@dataclass(frozen=True)
class Renames:
    """The renames, looked up either way."""

    renames: tuple[Rename, ...]

    def canonical(self, name: str) -> str:
        """The newest name of symbol NAME (NAME when it was never renamed)."""
        seen: set[str] = set()
        while name not in seen:  # a rename loop in the data stops where it closes
            seen.add(name)
            newer = next((r.new for r in self.renames if r.old == name), None)
            if newer is None:
                break
            name = newer
        return name

    def name_in(self, name: str, version: Version) -> str:
        """What symbol NAME (any of its names) is called in a kernel of VERSION."""
        current = self.canonical(name)
        for r in sorted(self.renames, key=lambda r: r.since, reverse=True):
            if r.new == current and version < r.since:
                current = r.old
        return current

    def before(self, name: str) -> tuple[Rename, ...]:
        """The renames that led to NAME's newest name, newest first."""
        out = []
        current = self.canonical(name)
        for r in sorted(self.renames, key=lambda r: r.since, reverse=True):
            if r.new == current:
                out.append(r)
                current = r.old
        return tuple(out)


@cache
def load_renames(path: Optional[Path] = None) -> Renames:
    """The shipped rules/renames/kconfig.toml (or PATH)."""
    if path is None:
        from kpolicy.resources import data_dir

        path = data_dir("rules") / "renames" / "kconfig.toml"
    data, _text = parse_toml(path, what="renames")
    out = []
    for n, entry in enumerate(data.get("rename", []), 1):
        fields = ("old", "new", "since", "evidence")
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) and entry[k]
                                                  for k in fields):
            raise KpolicyError(f"rename {n}: needs the strings {', '.join(fields)}", file=path)
        out.append(Rename(entry["old"], entry["new"], parse_version(entry["since"]),
                          entry["evidence"]))
    return Renames(tuple(out))
