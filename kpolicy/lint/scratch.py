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
paid per run. A kept farm also records, per directory, the status change times (ctime) the
tree's and the farm's copy had when they last matched: an entry added, removed or renamed
changes its directory's ctime (unlike the mtime, which `tar`, `cp -a` and `rsync -a` set back,
no tool can set it), and a file changed in place is the same inode on both sides, so a
directory whose two ctimes are unchanged is not listed again (two stats instead of two
listings, for the ~6,000 directories of Linux 7.2).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import posixpath
import stat
import tempfile
import time
from array import array
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Optional

from kpolicy import treefs
from kpolicy.cache import load_sealed, store_sealed
from kpolicy.lint.gitbase import MAX_BLOB, prune_unused_slots
from kpolicy.lint.patchfile import Change, FilePatch, Reader, apply_all, parse_patches
from kpolicy.lint.treewrite import parent_fd, remove_entry, unlink_entry, write_entry
from kpolicy.textio import read_bytes

# The lint configuration of a tree: a patch that edits it is applied, but the unpatched
# tree's settings judge the patch, so a patch cannot waive its own findings.
CONFIG_FILES = frozenset({".kpolicy.toml", "pyproject.toml"})
MAX_PATCH = 64 * 1024 * 1024
_STAMP_BASE_NS = 10**18  # September 2001, plus at most 3.3 days of content hash
_PRUNE = frozenset({".git"})
# A directory ctime that vouches for nothing: the directory is listed again next run.
UNKNOWN = -1
# A tree directory changed this recently may change again within the same timestamp tick
# (file systems stamp with a clock of a few milliseconds), which its ctime would not show.
_RACY_NS = 2 * 10**9
# (tree ctime_ns, farm ctime_ns) of each directory (relative) when the two last matched
Synced = dict[str, tuple[int, int]]


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
                fd: int, dest: Path) -> bool:
    """Make directory FD of the farm hold exactly DIRS and hard links to FILES (name -> inode
    number) of TREE's REL_DIR: an entry that is not the same inode as the tree's (a file the
    last patch wrote, one the tree replaced since) or that the tree lacks is removed, what is
    missing is linked. True when a file had to be copied instead (a copy does not follow the
    tree's file as a link does)."""
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
    copied = treefs.link_files(tree, rel_dir, missing, fd)
    for name in copied:
        rel = posixpath.join(rel_dir, name)
        write_entry(dest, rel, "100644", treefs.read_bytes(tree, rel, limit=MAX_BLOB))
    return bool(copied)


def _ctime(path: str) -> int:
    """The ctime of the directory PATH (not followed if a symlink), or UNKNOWN."""
    try:
        st = os.lstat(path)
    except OSError:
        return UNKNOWN
    return st.st_ctime_ns if stat.S_ISDIR(st.st_mode) else UNKNOWN


def link_tree(tree: Path, dest: Path, known: Optional[Mapping[str, tuple[int, int]]] = None,
              ) -> Synced:
    """Make the directory DEST a mirror of TREE made of hard links to its regular files (copies
    where linking is refused), `.git` left out; what DEST already holds that matches is kept,
    so bringing the farm of the last run up to date costs a walk, not a copy. KNOWN: what the
    last sync returned; a directory whose tree and farm ctimes are still the ones it records
    is taken as matching without listing either side. Returns the same for this sync (UNKNOWN
    for a tree directory changed too recently to vouch for, or holding a copied file)."""
    known = known or {}
    children: dict[str, list[str]] = {}
    for rel in sorted(known, reverse=True):  # popped from the stack in sorted order
        if rel:
            children.setdefault(posixpath.dirname(rel), []).append(rel)
    root, farm = str(tree), str(dest)
    racy = time.time_ns() - _RACY_NS
    synced: Synced = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        # the tree's ctime before its listing: a change after that shows next run
        tree_m = os.stat(root).st_ctime_ns if not rel else _ctime(f"{root}/{rel}")
        farm_m = _ctime(f"{farm}/{rel}" if rel else farm)
        if tree_m != UNKNOWN and known.get(rel) == (tree_m, farm_m):
            synced[rel] = (tree_m, farm_m)
            stack.extend(children.get(rel, ()))
            continue
        listed = treefs.list_inodes(tree, rel, _PRUNE)
        if listed is None:  # gone since its parent was listed
            continue
        dirs, files = listed
        # inode numbers from the listings of both sides: no stat per file (95,000 in 7.2)
        with parent_fd(dest, f"{rel}/." if rel else ".", create=True) as fd:
            assert fd is not None
            copied = _mirror_dir(tree, rel, dirs, files, fd, dest)
            farm_m = os.fstat(fd).st_ctime_ns
        vouched = tree_m != UNKNOWN and tree_m < racy and not copied
        synced[rel] = (tree_m if vouched else UNKNOWN, farm_m)
        stack.extend(f"{rel}/{d}" if rel else d for d in reversed(dirs))
    return synced


# The record's format: a record of another (older) format is not read, the farm is listed.
_RECORD = "farm-ctimes-1"


def _pack(synced: Synced) -> tuple[str, str, bytes]:
    """SYNCED as the record stores it: the directories NUL-separated, then an array of the
    tree's and the farm's ctime of each in turn (~6,000 directories unpickle in a blink)."""
    return (_RECORD, "\0".join(synced),
            array("q", [t for pair in synced.values() for t in pair]).tobytes())


def _unpack(record: object) -> Optional[Synced]:
    """The Synced map _pack packed into RECORD; None for anything else."""
    if not (isinstance(record, tuple) and len(record) == 3 and record[0] == _RECORD
            and isinstance(record[1], str) and isinstance(record[2], bytes)):
        return None
    ctimes = array("q")
    ctimes.frombytes(record[2][: len(record[2]) // 8 * 8])
    names = record[1].split("\0")
    if 2 * len(names) != len(ctimes):
        return None
    return {rel: (ctimes[2 * i], ctimes[2 * i + 1]) for i, rel in enumerate(names)}


@contextlib.contextmanager
def _farm(tree: Path, cache_root: Optional[Path]) -> Iterator[tuple[Path, Optional[Path]]]:
    """A directory for TREE's link farm and the file recording how it was left (None for a
    temporary farm): kept under CACHE_ROOT between runs (one per checkout, locked while in
    use, pruned after UNUSED_DAYS unused), else a temporary one."""
    if cache_root is not None:
        cache_root.mkdir(parents=True, exist_ok=True)
    if cache_root is None or os.stat(cache_root).st_dev != os.stat(tree).st_dev:
        with tempfile.TemporaryDirectory(prefix="kpolicy-patched-",
                                         dir=_work_dir(tree, None)) as tmp:
            yield Path(tmp, "tree"), None
        return
    checkout = hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:24]
    slot = cache_root / "patch-trees" / checkout
    slot.mkdir(parents=True, exist_ok=True)
    prune_unused_slots(slot.parent, keep=slot)
    with open(slot / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.utime(lock.fileno())  # the slot's last use, for prune_unused_slots
        yield slot / "tree", slot / "manifest.pickle"  # the name prune_unused_slots removes


@contextlib.contextmanager
def patched_tree(tree: Path, changes: dict[str, Change],
                 cache_root: Optional[Path] = None) -> Iterator[Path]:
    """TREE with CHANGES made, for the duration of the context (a link farm kept under
    CACHE_ROOT and brought up to date, else a temporary one). Changes to the tree's lint
    configuration (CONFIG_FILES at the top) are left out."""
    with _farm(tree, cache_root) as (dest, state_file):
        known: Optional[Synced] = None
        if state_file is not None and cache_root is not None:
            known = _unpack(load_sealed(cache_root, state_file))
            # Until the farm is synced and patched, no record matches it: a crash means the
            # next run lists every directory.
            state_file.unlink(missing_ok=True)
        dest.mkdir(exist_ok=True)
        synced = link_tree(tree, dest, known)
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
        if state_file is not None and cache_root is not None:
            # Listed again next run: the top (a copied config file, whatever is left there)
            # and every directory holding a file the patches wrote, removed or created.
            synced[""] = (UNKNOWN, UNKNOWN)
            for path in changes:
                parts = path.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    synced.pop("/".join(parts[:depth]), None)
            store_sealed(cache_root, state_file, _pack(synced))
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
