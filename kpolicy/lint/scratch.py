"""The patched copy of a tree that `kpolicy lint --patch` lints: patches read and applied in
memory (kpolicy.lint.patchfile), then a scratch tree where only the files they change differ.

The scratch tree is a hard-link farm: every regular file of the tree is linked into a fresh
temporary directory on the tree's file system (symlinks, special files and `.git` are left
out; files link(2) refuses are copied through kpolicy.treefs), and each patched file is then
unlinked and written anew, so the tree is never written through a link. Linking leaves every
unchanged file's inode, size and mtime as they are, so the caches keyed on them (the Kconfig
models, the registration scan, the documentation parse) find the original tree's entries,
and the copy costs about a second per 100,000 files instead of 1.5 GB of writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Optional

from kpolicy import treefs
from kpolicy.lint.gitbase import MAX_BLOB
from kpolicy.lint.patchfile import Change, FilePatch, Reader, apply_all, parse_patches
from kpolicy.lint.treewrite import parent_fd, unlink_entry, write_entry
from kpolicy.textio import read_bytes

# The lint configuration of a tree: a patch that edits it is applied, but the unpatched
# tree's settings judge the patch, so a patch cannot waive its own findings.
CONFIG_FILES = frozenset({".kpolicy.toml", "pyproject.toml"})
MAX_PATCH = 64 * 1024 * 1024
_STAMP_BASE_NS = 10**18  # September 2001, plus at most 3.3 days of content hash


def _read_original(tree: Path) -> Reader:
    def read(path: str) -> Optional[bytes]:
        found = treefs.kind(tree, path)
        if found is None:
            return None
        return treefs.read_bytes(tree, path, limit=MAX_BLOB)  # "dir"/"other": its error
    return read


def patch_changes(tree: Path, patches: Sequence[Path]) -> dict[str, Change]:
    """What PATCHES (applied in order) leave at each path of TREE they touch; a patch file that
    cannot be read or does not apply is a KpolicyError naming it, the file and the line."""
    sections: list[FilePatch] = []
    for p in patches:
        sections += parse_patches(read_bytes(p, what="patch", limit=MAX_PATCH), str(p))
    return apply_all(sections, _read_original(tree))


def _work_dir(tree: Path, cache_root: Optional[Path]) -> str:
    """A directory for the scratch tree, on TREE's file system when one is at hand (hard links
    cannot cross file systems)."""
    device = os.stat(tree).st_dev
    for candidate in (tempfile.gettempdir(), cache_root):
        if candidate is not None:
            with contextlib.suppress(OSError):
                if os.stat(candidate).st_dev == device:
                    return str(candidate)
    return tempfile.gettempdir()


def link_tree(tree: Path, dest: Path) -> None:
    """Fill the empty directory DEST with hard links to TREE's regular files (copies where
    linking is refused), directories recreated, `.git` left out."""
    for rel_dir, dirs, files in treefs.walk(tree, prune=frozenset({".git"})):
        with parent_fd(dest, f"{rel_dir}/." if rel_dir else ".", create=True) as fd:
            assert fd is not None
            for d in dirs:
                os.mkdir(d, 0o755, dir_fd=fd)
            for name in treefs.link_files(tree, rel_dir, sorted(files), fd):
                rel = posixpath.join(rel_dir, name)
                write_entry(dest, rel, "100644", treefs.read_bytes(tree, rel, limit=MAX_BLOB))


@contextlib.contextmanager
def patched_tree(tree: Path, changes: dict[str, Change],
                 cache_root: Optional[Path] = None) -> Iterator[Path]:
    """TREE with CHANGES made, as a scratch tree removed when the context ends. Changes to the
    tree's lint configuration (CONFIG_FILES at the top) are left out."""
    with tempfile.TemporaryDirectory(prefix="kpolicy-patched-",
                                     dir=_work_dir(tree, cache_root)) as tmp:
        dest = Path(tmp, "tree")
        dest.mkdir()
        link_tree(tree, dest)
        for name in CONFIG_FILES:  # a symlink to the config (inside the tree) was not linked
            if treefs.kind(tree, name) == "file" and not os.path.lexists(dest / name):
                write_entry(dest, name, "100644", treefs.read_bytes(tree, name, limit=MAX_BLOB))
        for path, change in sorted(changes.items()):
            if path in CONFIG_FILES:
                continue
            if change.content is None:
                unlink_entry(dest, path)
            else:
                write_entry(dest, path, change.mode, change.content)
                _stamp(dest, path, change.content)
        yield dest


def _stamp(dest: Path, path: str, content: bytes) -> None:
    """Give the written file PATH an mtime that depends only on its CONTENT: the caches keyed on
    (size, mtime) then find what the last run of the same patch built, instead of a new file
    each run (the original tree's file keeps its own mtime, so it is never taken for this)."""
    digest = int.from_bytes(hashlib.sha256(content).digest()[:6], "big")
    mtime_ns = _STAMP_BASE_NS + digest
    with parent_fd(dest, path, create=False) as fd:
        if fd is not None:
            os.utime(path.rsplit("/", 1)[-1], ns=(mtime_ns, mtime_ns), dir_fd=fd,
                     follow_symlinks=False)
