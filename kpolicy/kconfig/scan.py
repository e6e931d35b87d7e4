"""Line scans of a tree's Kconfig files that need no parse: what every arch selects, and every
symbol defined anywhere (also under arches and conditions a parse for one arch never reaches).

The symbols each Kconfig file defines are kept per file (kpolicy.filemap, keyed on the file's
stat), so a run reads only the Kconfig files written since the last: a patched tree's copy
(kpolicy lint --patch) reads the ones its patches change, not the ~1,900 of the tree."""

from __future__ import annotations

import re
from typing import Optional

from kpolicy import treefs
from kpolicy.cache import Cache, content_key
from kpolicy.filemap import FileMap, Stat, file_stat
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


_DEFINED_SCHEMA = "kconfig-defined-1"


def _is_kconfig(name: str) -> bool:
    return name.startswith("Kconfig")


def defined_symbols(tree: KernelTree, cache: Optional[Cache] = None) -> frozenset[str]:
    """Names of every `config`/`menuconfig` in any Kconfig* file of TREE, on any arch; each
    file's names from CACHE's per-file map while its stat is the recorded one."""
    file_map: FileMap[tuple[Stat, frozenset[str]]] = FileMap(
        cache, "kconfig-defined", content_key(_DEFINED_SCHEMA, tree.version))
    old = dict(file_map.entries)
    file_map.entries.clear()
    names: set[str] = set()
    changed = 0
    for rel_dir, _dirs, files in treefs.walk(tree.root, prune=frozenset({".git"}),
                                             wanted=_is_kconfig):
        for name, st in files.items():
            rel = f"{rel_dir}/{name}" if rel_dir else name
            entry = old.get(rel)
            if entry is None or entry[0] != file_stat(st):
                changed += 1
                entry = (file_stat(st), frozenset(_CONFIG_LINE.findall(
                    treefs.read_text(tree.root, rel, what="Kconfig file"))))
            file_map.entries[rel] = entry
            names |= entry[1]
    file_map.save(changed)
    return frozenset(names)
