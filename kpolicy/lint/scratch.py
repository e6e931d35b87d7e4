"""The patched copy of a tree that `kpolicy lint --patch` lints: patches read and applied in
memory (kpolicy.lint.patchfile), then a scratch tree where only the files they change differ.

The scratch tree is a hard-link farm: every regular file of the tree is linked into a directory
on the tree's file system (symlinks, special files and `.git` are left out; files link(2)
refuses are copied through kpolicy.treefs), and each patched file is then unlinked and written
anew, so the tree is never written through a link. Linking leaves every unchanged file's inode,
size and mtime as they are, so the caches keyed on them (the Kconfig models, the registration
scan, the documentation parse) find the original tree's entries. With the cache on, the farm
is kept under it between runs (one per checkout, like the `--base` copies) and brought up to
date by comparing inodes: the next run relinks only the files the last patches wrote or the
tree replaced, and removing 95,000 links (20 s of disk writes on a busy machine) is never
paid per run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import posixpath
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Optional

from kpolicy import treefs
from kpolicy.lint.gitbase import MAX_BLOB, prune_unused_slots
from kpolicy.lint.patchfile import Change, FilePatch, Reader, apply_all, parse_patches
from kpolicy.lint.treewrite import parent_fd, remove_entry, unlink_entry, write_entry
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


def _mirror_dir(tree: Path, rel_dir: str, dirs: list[str], files: dict[str, int],
                fd: int, dest: Path) -> None:
    """Make directory FD of the farm hold exactly DIRS and hard links to FILES (name -> inode
    number) of TREE's REL_DIR: an entry that is not the same inode as the tree's (a file the
    last patch wrote, one the tree replaced since) or that the tree lacks is removed, what is
    missing is linked."""
    keep: set[str] = set()
    with os.scandir(fd) as entries:
        # Types and inode numbers as the directory lists them (no stat per file); the farm is
        # on the tree's file system, else nothing is linked and every file is copied anew.
        for entry in entries:
            name = entry.name
            if (name in dirs and entry.is_dir(follow_symlinks=False)) or (
                    name in files and entry.is_file(follow_symlinks=False)
                    and entry.inode() == files[name]):
                keep.add(name)
            else:
                remove_entry(name, fd)
    for d in dirs:
        if d not in keep:
            os.mkdir(d, 0o755, dir_fd=fd)
    missing = sorted(n for n in files if n not in keep)
    for name in treefs.link_files(tree, rel_dir, missing, fd):
        rel = posixpath.join(rel_dir, name)
        write_entry(dest, rel, "100644", treefs.read_bytes(tree, rel, limit=MAX_BLOB))


def link_tree(tree: Path, dest: Path) -> None:
    """Make the directory DEST a mirror of TREE made of hard links to its regular files (copies
    where linking is refused), `.git` left out; what DEST already holds that matches is kept,
    so bringing the farm of the last run up to date costs a walk, not a copy."""
    # inode numbers from the listings of both sides: no stat per file (95,000 in Linux 7.2)
    for rel_dir, dirs, files in treefs.walk_inodes(tree, prune=frozenset({".git"})):
        with parent_fd(dest, f"{rel_dir}/." if rel_dir else ".", create=True) as fd:
            assert fd is not None
            _mirror_dir(tree, rel_dir, dirs, files, fd, dest)


@contextlib.contextmanager
def _farm(tree: Path, cache_root: Optional[Path]) -> Iterator[Path]:
    """A directory for TREE's link farm: kept under CACHE_ROOT between runs (one per checkout,
    locked while in use, pruned after UNUSED_DAYS unused), else a temporary one."""
    if cache_root is not None:
        cache_root.mkdir(parents=True, exist_ok=True)
    if cache_root is None or os.stat(cache_root).st_dev != os.stat(tree).st_dev:
        with tempfile.TemporaryDirectory(prefix="kpolicy-patched-",
                                         dir=_work_dir(tree, None)) as tmp:
            yield Path(tmp, "tree")
        return
    checkout = hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:24]
    slot = cache_root / "patch-trees" / checkout
    slot.mkdir(parents=True, exist_ok=True)
    prune_unused_slots(slot.parent, keep=slot)
    with open(slot / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.utime(lock.fileno())  # the slot's last use, for prune_unused_slots
        yield slot / "tree"


@contextlib.contextmanager
def patched_tree(tree: Path, changes: dict[str, Change],
                 cache_root: Optional[Path] = None) -> Iterator[Path]:
    """TREE with CHANGES made, for the duration of the context (a link farm kept under
    CACHE_ROOT and brought up to date, else a temporary one). Changes to the tree's lint
    configuration (CONFIG_FILES at the top) are left out."""
    with _farm(tree, cache_root) as dest:
        dest.mkdir(exist_ok=True)
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
