"""Line scans of a tree's Kconfig files that need no parse: what every arch selects, and every
symbol defined anywhere (also under arches and conditions a parse for one arch never reaches)."""

from __future__ import annotations

import re

from kpolicy.kconfig.model import Location
from kpolicy.textio import read_text
from kpolicy.tree import KernelTree

_SELECT_LINE = re.compile(r"^\s*select\s+([A-Za-z0-9_]+)", re.M)
_CONFIG_LINE = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)", re.M)

def arch_selections(tree: KernelTree) -> dict[str, dict[str, Location]]:
    """symbol -> {SRCARCH: first `select symbol` location} from arch/<SRCARCH>/Kconfig* files."""
    out: dict[str, dict[str, Location]] = {}
    for srcarch in tree.srcarches:
        for path in sorted((tree.root / "arch" / srcarch).glob("Kconfig*")):
            if not path.is_file():
                continue
            text = read_text(path, what="Kconfig file")
            rel = tree.relpath(path)
            line, counted = 1, 0
            for m in _SELECT_LINE.finditer(text):
                line += text.count("\n", counted, m.start(1))
                counted = m.start(1)
                out.setdefault(m.group(1), {}).setdefault(srcarch, Location(rel, line))
    return out


def defined_symbols(tree: KernelTree) -> frozenset[str]:
    """Names of every `config`/`menuconfig` in any Kconfig* file of TREE, on any arch."""
    names: set[str] = set()
    for path in tree.root.rglob("Kconfig*"):
        if path.is_file() and ".git" not in path.parts:
            names.update(_CONFIG_LINE.findall(read_text(path, what="Kconfig file")))
    return frozenset(names)
