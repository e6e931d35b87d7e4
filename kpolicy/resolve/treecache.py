"""A warm `resolve --tree`: the compact model of (tree, arch) and the olddefconfig evaluation of
one .config, cached, with freshness checked without reading the tree.

Freshness index, taken when the model is built: the modification time of every directory the
analysis walks (a file added, removed or renamed there changes it) and (size, mtime_ns, SHA-256)
of the files the model comes from: every Kconfig* file, each C file that registers a boot
parameter or defines a static key, the Makefile and Kbuild files above those (and the top and
arch/ ones) and the kernel-parameters documentation. A warm run stats those
(no directory listing, no read); a file whose stat changed is read (through kpolicy.treefs)
and its digest compared, so a `touch` or a checkout of the same content stays warm.
Not covered: an in-place edit, keeping its directory's mtime, of a C file that registered no
boot parameter when the model was built, of a header, or of a kbuild file above no such C
file (`--no-cache` rebuilds); see README "Speed".
"""

from __future__ import annotations

import hashlib
import os
import stat
from array import array
from dataclasses import dataclass
from typing import Callable

from kpolicy import treefs
from kpolicy.cache import Cache, content_key
from kpolicy.errors import KpolicyError
from kpolicy.longlived import long_lived
from kpolicy.resolve.bundle import cache_form
from kpolicy.resolve.model import ResolveModel
from kpolicy.tree import KernelTree

# Directories no part of the analysis reads (as the C scan prunes them), bar the one
# documentation directory the catalog reads.
_SKIPPED = frozenset({".git", "Documentation", "tools", "LICENSES"})
_DOCS = "Documentation/admin-guide"
_DOC_PREFIX = "kernel-parameters"
_BUILD_FILES = ("Makefile", "Kbuild")


@dataclass(frozen=True)
class TreeIndex:
    """What a cached model was derived from, as it was when the model was built; packed as a
    few strings and byte arrays, which unpickle in well under a millisecond (a tuple per entry
    took ~13 ms for the ~11,000 entries of a 7.2 tree)."""

    dirs: str  # the relative directories ("" is the root), NUL-separated
    dir_mtimes: bytes  # array("q") of their mtime_ns, in that order
    files: str  # the relative file paths, NUL-separated
    file_stats: bytes  # array("q") of (size, mtime_ns) per file, in that order
    digests: bytes  # the SHA-256 of each file, 32 bytes each, in that order

    @classmethod
    def of(cls, dirs: list[tuple[str, int]],
           files: list[tuple[str, int, int, bytes]]) -> TreeIndex:
        """The packed form of DIRS (relative directory, mtime_ns) and FILES (relative path,
        size, mtime_ns, SHA-256)."""
        return cls(
            "\0".join(rel for rel, _ in dirs),
            array("q", [mtime for _, mtime in dirs]).tobytes(),
            "\0".join(f[0] for f in files),
            array("q", [n for f in files for n in f[1:3]]).tobytes(),
            b"".join(f[3] for f in files),
        )

    def dir_entries(self) -> list[tuple[str, int]]:
        """(relative directory, mtime_ns) of each directory, as given to of()."""
        mtimes = array("q")
        mtimes.frombytes(self.dir_mtimes)
        names = self.dirs.split("\0") if mtimes else []
        if len(names) != len(mtimes):
            raise ValueError("damaged tree index")
        return list(zip(names, mtimes))

    def file_entries(self) -> list[tuple[str, int, int, bytes]]:
        """(relative path, size, mtime_ns, SHA-256) of each file, as given to of()."""
        stats = array("q")
        stats.frombytes(self.file_stats)
        names = self.files.split("\0") if stats else []
        if 2 * len(names) != len(stats) or 32 * len(names) != len(self.digests):
            raise ValueError("damaged tree index")
        return [(rel, stats[2 * i], stats[2 * i + 1], self.digests[32 * i: 32 * i + 32])
                for i, rel in enumerate(names)]

    def fingerprint(self) -> str:
        """A key for what the tree held: the files' digests and the directories' stat."""
        h = hashlib.sha256()
        for rel, *_stat, digest in self.file_entries():
            h.update(f"{rel}\0".encode() + digest)
        for rel, mtime in self.dir_entries():
            h.update(f"{rel}\0{mtime}\0".encode())
        return h.hexdigest()


def _digest(tree: KernelTree, rel: str) -> bytes:
    return hashlib.sha256(treefs.read_bytes(tree.root, rel, what="tree file",
                                            limit=1 << 30)).digest()


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
            entries.append((rel, st.st_size, st.st_mtime_ns, _digest(tree, rel)))
    return TreeIndex.of(dirs, entries)


def is_fresh(tree: KernelTree, index: TreeIndex) -> bool:
    """Whether TREE still holds what INDEX recorded: stats only, digests for changed stats."""
    root = str(tree.root)  # plain strings: pathlib would cost more than the stats
    try:
        for rel, mtime in index.dir_entries():
            if os.stat(f"{root}/{rel}" if rel else root).st_mtime_ns != mtime:
                return False
        stats = array("q")
        stats.frombytes(index.file_stats)
        names = index.files.split("\0") if stats else []
        if 2 * len(names) != len(stats):
            return False
        lstat = os.lstat
        for i, rel in enumerate(names):
            st = lstat(f"{root}/{rel}")
            if (st.st_mtime_ns != stats[2 * i + 1] or st.st_size != stats[2 * i]) and (
                    not stat.S_ISREG(st.st_mode)
                    or _digest(tree, rel) != index.digests[32 * i: 32 * i + 32]):
                return False
    except (OSError, ValueError, KpolicyError):
        return False
    return True


def cached_tree_model(tree: KernelTree, arch: str, specs_key: str, cache: Cache,
                      build: Callable[[], tuple[ResolveModel, set[str]]]
                      ) -> tuple[ResolveModel, str]:
    """The compact model of (TREE, ARCH) and the tree's fingerprint: from CACHE when its index
    is fresh, else from BUILD (the model and the tree files it came from beyond the index's)."""
    key = content_key("tree-resolve", str(tree.root), tree.version, arch, specs_key)
    with long_lived():  # as a bundled model (bundle.read_model)
        hit = cache.load("tree-resolve", key)
    if (isinstance(hit, tuple) and len(hit) == 3 and isinstance(hit[0], TreeIndex)
            and isinstance(hit[2], ResolveModel) and is_fresh(tree, hit[0])):
        return hit[2], str(hit[1])
    # The index is taken after the build (it needs the files the model came from): a file
    # written while the analysis ran is indexed as it is after the write.
    model, model_files = build()
    index = build_index(tree, model_files)
    model = cache_form(model, file=f"tree {tree.root}")
    fingerprint = index.fingerprint()
    cache.store("tree-resolve", key, (index, fingerprint, model))
    return model, fingerprint


def cached_evaluation(fingerprint: str, arch: str, config_text: str, cache: Cache,
                      build: Callable[[], tuple[dict[str, str], tuple[str, ...]]]
                      ) -> tuple[dict[str, str], tuple[str, ...]]:
    """The olddefconfig values and warnings of one .config against the tree FINGERPRINT names."""
    key = content_key("tree-eval", fingerprint, arch,
                      hashlib.sha256(config_text.encode()).hexdigest())
    hit = cache.load("tree-eval", key)
    if isinstance(hit, tuple) and len(hit) == 2 and isinstance(hit[0], dict):
        return hit[0], hit[1]
    value = build()
    if cache.enabled and fingerprint:
        cache.store("tree-eval", key, value)
    return value

