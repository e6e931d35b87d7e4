"""A warm `resolve --tree`: the compact model of (tree, arch) and the olddefconfig evaluation of
one .config, cached, with freshness checked without reading the tree.

Freshness index, taken when the model is built: the modification time of every directory the
analysis walks (a file added, removed or renamed there changes it) and (size, mtime_ns, SHA-256)
of the files the model comes from: every Kconfig* file, each C file that registers a boot
parameter or defines a static key, the Makefile and Kbuild files above those (and the top and
arch/ ones) and the kernel-parameters documentation. A warm run stats those
(no directory listing, no read), in a forked child while the cached model is loaded and used
(nothing is output before its verdict); a file whose stat changed is read (through kpolicy.treefs)
and its digest compared, so a `touch` or a checkout of the same content stays warm (the index and
its check: kpolicy.freshness, shared with lint's findings cache).
Not covered: an in-place edit, keeping its directory's mtime, of a C file that registered no
boot parameter when the model was built, of a header, or of a kbuild file above no such C
file (`--no-cache` rebuilds); see README "Speed".
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Callable, NamedTuple, Optional

from kpolicy import treefs
from kpolicy.cache import Cache, content_key
from kpolicy.freshness import FreshnessCheck, TreeIndex, file_digest
from kpolicy.longlived import long_lived
from kpolicy.resolve.bundle import cache_form
from kpolicy.resolve.inputs import ConfigInput
from kpolicy.resolve.model import ResolveModel
from kpolicy.tree import KernelTree

# Directories no part of the analysis reads (as the C scan prunes them), bar the one
# documentation directory the catalog reads.
_SKIPPED = frozenset({".git", "Documentation", "tools", "LICENSES"})
_DOCS = "Documentation/admin-guide"
_DOC_PREFIX = "kernel-parameters"
_BUILD_FILES = ("Makefile", "Kbuild")


def _walk_dirs(tree: KernelTree) -> tuple[list[tuple[str, int]], list[str]]:
    """Every directory the analysis walks with its mtime, and the Kconfig and build files in it
    (regular files only: treefs neither follows nor lists a symlink)."""
    dirs: list[tuple[str, int]] = []
    files: list[str] = []
    root = str(tree.root)
    for rel_dir, subdirs, names in treefs.walk(tree.root, prune=_SKIPPED):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        dirs.append((rel_dir, os.lstat(f"{root}/{rel_dir}" if rel_dir else root).st_mtime_ns))
        files.extend(f"{rel_dir}/{n}" if rel_dir else n for n in sorted(names)
                     if n.startswith("Kconfig") or n in _BUILD_FILES
                     or n.startswith("Makefile."))  # virt/kvm/Makefile.kvm: `include`d
    if treefs.is_dir(tree.root, _DOCS):
        dirs.append((_DOCS, os.lstat(f"{root}/{_DOCS}").st_mtime_ns))
        files.extend(f"{_DOCS}/{n}" for n in treefs.listdir(tree.root, _DOCS)
                     if n.startswith(_DOC_PREFIX) and treefs.is_file(tree.root, f"{_DOCS}/{n}"))
    return dirs, files


def _shapes_model(rel: str, model_dirs: set[str]) -> bool:
    """Whether REL (a Kconfig or build file) can change the model: every Kconfig file, and the
    kbuild files of the top, of arch/ and of each directory above a MODEL_DIRS file (they say
    which symbols build it); a kbuild file elsewhere governs no registration."""
    head, _, name = rel.rpartition("/")
    return name.startswith("Kconfig") or not head or head.startswith("arch/") or head in model_dirs


def build_index(tree: KernelTree, model_files: set[str]) -> TreeIndex:
    """The index of TREE now, for a model read from its Kconfig and build files and
    MODEL_FILES."""
    dirs, files = _walk_dirs(tree)
    model_dirs: set[str] = set()
    for rel in model_files:
        parts = rel.split("/")[:-1]
        model_dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    entries = []
    for rel in sorted({*(f for f in files if _shapes_model(f, model_dirs)), *model_files}):
        try:
            st = os.lstat(tree.root / rel)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            entries.append((rel, st.st_size, st.st_mtime_ns, file_digest(tree.root, rel)))
    return TreeIndex.of(dirs, entries)


class CachedTreeModel(NamedTuple):
    """The compact model of a tree, the tree's fingerprint and, for a model from the cache, the
    check of its freshness, still running (a model built by this run is fresh)."""

    model: ResolveModel
    fingerprint: str
    check: Optional[FreshnessCheck]

    def fresh(self) -> bool:
        """Whether the model is the tree's (waits for the check): when not, ask again without
        reuse."""
        return self.check is None or self.check.verdict()


def cached_tree_model(tree: KernelTree, arch: str, specs_key: str, cache: Cache,
                      build: Callable[[], tuple[ResolveModel, set[str]]], *,
                      reuse: bool = True) -> CachedTreeModel:
    """The compact model of (TREE, ARCH): with REUSE, from CACHE at once, its freshness checked
    meanwhile (CachedTreeModel.fresh); else, or when none is cached, from BUILD (the model and
    the tree files it came from beyond the index's), stored with its index."""
    key = content_key("tree-resolve", str(tree.root), tree.version, arch, specs_key)
    indexed = cache.load("tree-index", key) if reuse else None
    if isinstance(indexed, tuple) and len(indexed) == 2 and isinstance(indexed[0], TreeIndex):
        check = FreshnessCheck(tree, indexed[0])  # started first: it overlaps the model's loading
        with long_lived():  # as a bundled model (bundle.read_model)
            hit = cache.load("tree-resolve", key)
        if (isinstance(hit, tuple) and len(hit) == 2 and hit[0] == indexed[1]
                and isinstance(hit[1], ResolveModel)):
            return CachedTreeModel(hit[1], str(hit[0]), check)
        check.verdict()  # not left a zombie
    # The index is taken after the build (it needs the files the model came from): a file
    # written while the analysis ran is indexed as it is after the write.
    model, model_files = build()
    index = build_index(tree, model_files)
    model = cache_form(model, file=f"tree {tree.root}")
    fingerprint = index.fingerprint()
    # the model first: an index is only ever read with the model of its fingerprint
    cache.store("tree-resolve", key, (fingerprint, model))
    cache.store("tree-index", key, (index, fingerprint))
    return CachedTreeModel(model, fingerprint, None)


def cached_evaluation(tree_model: CachedTreeModel, arch: str, config_path: str,
                      config_bytes: bytes, cache: Cache, build: Callable[[], ConfigInput]
                      ) -> Optional[ConfigInput]:
    """The .config at CONFIG_PATH (holding CONFIG_BYTES) as olddefconfig values it against the
    tree TREE_MODEL came from, from CACHE or BUILD; None when it is not cached and TREE_MODEL
    turns out stale (BUILD reads the tree as it is now, which its fingerprint does not name)."""
    key = content_key("tree-eval", tree_model.fingerprint, arch, config_path,
                      hashlib.sha256(config_bytes).hexdigest())
    hit = cache.load("tree-eval", key)
    if isinstance(hit, ConfigInput):
        return hit
    if not tree_model.fresh():
        return None
    value = build()
    if cache.enabled and tree_model.fingerprint:
        cache.store("tree-eval", key, value)
    return value
