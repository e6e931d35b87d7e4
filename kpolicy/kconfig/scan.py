"""Line scans of a tree's Kconfig files that need no parse: what every arch selects, and every
symbol defined anywhere (also under arches and conditions a parse for one arch never reaches)."""

from __future__ import annotations

import re

from kpolicy import treefs
from kpolicy.kconfig.model import Location
from kpolicy.tree import KernelTree

_SELECT_LINE = re.compile(r"^\s*select\s+([A-Za-z0-9_]+)", re.M)
_CONFIG_LINE = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)", re.M)

def arch_selections(tree: KernelTree) -> dict[str, dict[str, Location]]:
    """symbol -> {SRCARCH: first `select symbol` location} from arch/<SRCARCH>/Kconfig* files."""
    out: dict[str, dict[str, Location]] = {}
    for srcarch in tree.srcarches:
        for rel in treefs.glob(tree.root, f"arch/{srcarch}/Kconfig*"):
            if not treefs.is_file(tree.root, rel):
                continue
            text = treefs.read_text(tree.root, rel, what="Kconfig file")
            line, counted = 1, 0
            for m in _SELECT_LINE.finditer(text):
                line += text.count("\n", counted, m.start(1))
                counted = m.start(1)
                out.setdefault(m.group(1), {}).setdefault(srcarch, Location(rel, line))
    return out


def defined_symbols(tree: KernelTree) -> frozenset[str]:
    """Names of every `config`/`menuconfig` in any Kconfig* file of TREE, on any arch."""
    names: set[str] = set()
    for rel_dir, _dirs, files in treefs.walk(tree.root, prune=frozenset({".git"})):
        for name in files:
            if name.startswith("Kconfig"):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                names.update(_CONFIG_LINE.findall(
                    treefs.read_text(tree.root, rel, what="Kconfig file")))
    return frozenset(names)
