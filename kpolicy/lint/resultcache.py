"""The findings of a lint run, cached per (tree, arches, rules, code) and held while the tree is
unchanged, as a linter's result cache: a warm lint of an unchanged tree (and the unpatched side
of `--patch`, the kept base tree of `--base`) costs a freshness check, not the analysis.

Freshness (kpolicy.freshness, the index resolve's tree cache uses): the modification time of
every directory of the tree but `.git` (a file added, removed or renamed anywhere changes one)
and the (size, mtime_ns) of every regular file in them, Kconfig files with their SHA-256 (a
`touch` of one stays fresh), every other file by stat alone (hashing the tree's 730 MB of C
would cost more than the lint). Every file counts, not only the ones a rule reads today, so a
new rule reading a new kind of file cannot be served a stale answer. The index is taken before
the analysis runs: a file written while it runs leaves the entry stale, never wrong.

The key holds everything else a finding depends on: kpolicy's code (content_key), the tree's
path and version, the arches, the rules chosen and the bytes of every rules directory read
(the shipped rules/, with the parameter declarations, and --rules-dir). Waivers, --fail-on and
baselines are applied to the findings after the cache, each run.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional

from kpolicy import treefs
from kpolicy.cache import Cache, content_key
from kpolicy.freshness import NO_DIGEST, TreeIndex, file_digest, is_fresh
from kpolicy.lint.types import Finding
from kpolicy.resources import data_dir
from kpolicy.tree import KernelTree

NAMESPACE = "lint-findings"
_PRUNE = frozenset({".git"})

Linted = tuple[tuple[str, ...], tuple[Finding, ...]]  # (arches linted, findings)


def inputs_index(tree: KernelTree) -> TreeIndex:
    """The freshness index of TREE now: every directory but .git, every regular file in them."""
    root = str(tree.root)
    dirs: list[tuple[str, int]] = []
    files: list[tuple[str, int, int, bytes]] = []
    for rel_dir, _subdirs, names in treefs.walk(tree.root, prune=_PRUNE):
        dirs.append((rel_dir, os.stat(f"{root}/{rel_dir}" if rel_dir else root).st_mtime_ns))
        for name, st in sorted(names.items()):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            digest = file_digest(root, rel) if name.startswith("Kconfig") else NO_DIGEST
            files.append((rel, st.st_size, st.st_mtime_ns, digest))
    return TreeIndex.of(dirs, files)


def rules_digest(rules_dir: Optional[Path]) -> str:
    """A digest of the shipped rules/ and RULES_DIR: every file's path and bytes."""
    h = hashlib.sha256()
    for top in (data_dir("rules"), rules_dir):
        if top is None:
            continue
        h.update(f"\0dir\0{top.resolve()}\0".encode())
        for path in sorted(p for p in top.rglob("*") if p.is_file()):
            h.update(f"{path.relative_to(top)}\0".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def cached_findings(tree: KernelTree, key_parts: Sequence[object], rules_dir: Optional[Path],
                    cache: Optional[Cache], compute: Callable[[], Linted]) -> Linted:
    """What COMPUTE finds on TREE: from CACHE when an entry under KEY_PARTS (arches, rules
    chosen, check package) and the rules is fresh, else computed and stored."""
    if cache is None or not cache.enabled:
        return compute()
    key = content_key(NAMESPACE, str(tree.root), tree.version, tuple(key_parts),
                      rules_digest(rules_dir))
    hit = cache.load(NAMESPACE, key)
    if (isinstance(hit, tuple) and len(hit) == 3 and isinstance(hit[0], TreeIndex)
            and is_fresh(tree, hit[0])):
        return hit[1], hit[2]
    index = inputs_index(tree)  # before the analysis: a write meanwhile leaves it stale
    arches, findings = compute()
    cache.store(NAMESPACE, key, (index, arches, findings))
    return arches, findings
