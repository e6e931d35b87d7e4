"""Whether a kernel tree still holds what a cached result was derived from, checked without
listing or reading the tree: a TreeIndex records the modification time of directories (a file
added, removed or renamed in one changes it) and the (size, mtime_ns) of files, each with the
SHA-256 of its bytes or NO_DIGEST. A fresh check stats them; a file whose stat changed is stale
when it has NO_DIGEST, else it is read (through kpolicy.treefs) and its digest compared, so a
`touch` or a checkout of the same content stays fresh.

A warm check costs one stat per entry, ~11,000 for a 7.2 tree (20 ms here); FreshnessCheck runs
it in a forked child while the caller goes on with the cached result, as git's preload-index
overlaps its lstat calls with other work, and nothing is output before its verdict.

Used by resolve's tree cache (kpolicy.resolve.treecache: the files a model came from, with
digests) and lint's findings cache (kpolicy.lint.resultcache: every file a lint reads, stat only:
hashing the 730 MB of C of a tree would cost more than the lint it saves).
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from kpolicy import treefs
from kpolicy.errors import KpolicyError
from kpolicy.tree import KernelTree

# The digest of a file recorded by stat alone: any change of its stat makes the index stale.
NO_DIGEST = bytes(32)


@dataclass(frozen=True)
class TreeIndex:
    """What a cached result was derived from, as it was when the result was built; packed as a
    few strings and byte arrays, which unpickle in well under a millisecond (a tuple per entry
    took ~13 ms for the ~11,000 entries of a 7.2 tree)."""

    dirs: str  # the relative directories ("" is the root), NUL-separated
    dir_mtimes: bytes  # array("q") of their mtime_ns, in that order
    files: str  # the relative file paths, NUL-separated
    file_stats: bytes  # array("q") of (size, mtime_ns) per file, in that order
    digests: bytes  # the SHA-256 of each file (or NO_DIGEST), 32 bytes each, in that order

    @classmethod
    def of(cls, dirs: list[tuple[str, int]],
           files: list[tuple[str, int, int, bytes]]) -> TreeIndex:
        """The packed form of DIRS (relative directory, mtime_ns) and FILES (relative path,
        size, mtime_ns, SHA-256 or NO_DIGEST)."""
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


def file_digest(root: Union[str, Path], rel: str) -> bytes:
    """The SHA-256 of the tree file REL, read through kpolicy.treefs."""
    return hashlib.sha256(treefs.read_bytes(root, rel, what="tree file",
                                            limit=1 << 30)).digest()


def is_fresh(tree: KernelTree, index: TreeIndex) -> bool:
    """Whether TREE still holds what INDEX recorded: stats only, digests for changed stats
    (a changed stat of a file recorded with NO_DIGEST is stale)."""
    root = str(tree.root)  # plain strings: pathlib would cost more than the stats
    try:
        for rel, mtime in index.dir_entries():
            if os.stat(f"{root}/{rel}" if rel else root).st_mtime_ns != mtime:
                return False
        stats = array("q")
        stats.frombytes(index.file_stats)
        names = index.files.split("\0") if stats else []
        if 2 * len(names) != len(stats) or 32 * len(names) != len(index.digests):
            return False
        lstat = os.lstat
        for i, rel in enumerate(names):
            st = lstat(f"{root}/{rel}")
            if st.st_mtime_ns != stats[2 * i + 1] or st.st_size != stats[2 * i]:
                recorded = index.digests[32 * i: 32 * i + 32]
                if (recorded == NO_DIGEST or not stat.S_ISREG(st.st_mode)
                        or file_digest(root, rel) != recorded):
                    return False
    except (OSError, ValueError, KpolicyError):
        return False
    return True


class FreshnessCheck:
    """is_fresh(TREE, INDEX), run in a forked child (kpolicy.forked) while the caller works on
    with what it derived from INDEX's cache entry; verdict() waits for the answer."""

    def __init__(self, tree: KernelTree, index: TreeIndex) -> None:
        from kpolicy.forked import start_forked  # not on a bundled resolve's start-up

        self._child = start_forked(functools.partial(is_fresh, tree, index))
        self._fresh: Optional[bool] = None

    def verdict(self) -> bool:
        """Whether the tree still holds what the index recorded (a child that died: no)."""
        if self._fresh is None:
            try:
                self._fresh = self._child.result()
            except KpolicyError:  # it ended without an answer
                self._fresh = False
        return self._fresh
