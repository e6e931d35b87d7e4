"""Pre-submit mode: rebuild the tree as it was at a git revision, so only new findings are reported.

git is kpolicy's own tool here, never a command named by the tree: every call disables hooks and
fsmonitor, only plumbing that never looks at the working tree runs (rev-parse, ls-tree,
cat-file without filters), so no program the repository configures is started.

The base tree is written from git's objects into a directory that, with the cache on, is kept
between runs (one per checkout, under the cache directory) and brought up to date file by file:
a file whose blob did not change keeps its inode and mtime, so the cached Kconfig models and
registration scans of the last base run are hit again, and the second `--base` run on a big
tree writes only the files that differ.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from kpolicy.cache import UNUSED_DAYS, load_sealed, store_sealed
from kpolicy.errors import KpolicyError
from kpolicy.lint.treewrite import parent_fd, unlink_entry, write_entry

_GIT_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
               "-c", "core.pager=cat")
_GIT_TIMEOUT = 600  # seconds; listing and reading a whole kernel tree takes well under a minute
_BATCH_BYTES = 64 * 1024 * 1024
_MANIFEST_VERSION = 1
MAX_BLOB = 64 * 1024 * 1024  # Linux 7.2's largest file is 24 MB
# path -> (blob id, git mode, size, mtime_ns) of the file as this module last wrote it
Manifest = dict[str, tuple[str, str, int, int]]


def _git(repo: Path, *args: str, stdin: Optional[bytes] = None) -> bytes:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0",
           "GIT_CONFIG_NOSYSTEM": "1"}
    try:
        proc = subprocess.run(["git", *_GIT_CONFIG, "-C", str(repo), *args], input=stdin,
                              capture_output=True, env=env, timeout=_GIT_TIMEOUT, check=False)
    except FileNotFoundError:
        raise KpolicyError("--base needs git, which is not installed") from None
    except subprocess.TimeoutExpired:
        raise KpolicyError(f"git {args[0]} took longer than {_GIT_TIMEOUT} s") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise KpolicyError(f"git {args[0]} failed: {msg[-1] if msg else proc.returncode}")
    return proc.stdout


def resolve_revision(tree: Path, rev: str) -> str:
    """The commit id REV names in the git checkout holding TREE."""
    if rev.startswith("-"):
        raise KpolicyError(f"not a revision: {rev}")
    try:
        _git(tree, "rev-parse", "--is-inside-work-tree")
    except KpolicyError:
        raise KpolicyError(f"--base needs a git checkout; {tree} is not inside one") from None
    return _git(tree, "rev-parse", "--verify", "--quiet", "--end-of-options",
                f"{rev}^{{commit}}").decode().strip()


def _entries(tree: Path, commit: str) -> dict[str, tuple[str, str]]:
    """path -> (mode, blob id) of every file of TREE's directory at COMMIT."""
    prefix = _git(tree, "rev-parse", "--show-prefix").decode().strip()
    # No -l: sizes would make git open every blob; only the blobs to write need theirs.
    out = _git(tree, "ls-tree", "-r", "-z", "--full-tree", "--end-of-options",
               f"{commit}:{prefix}")
    entries: dict[str, tuple[str, str]] = {}
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, sha = meta.decode().split()
        if kind != "blob":
            continue  # submodules are not part of the tree being linted
        path = raw_path.decode("utf-8", errors="surrogateescape")
        _check_relpath(path)
        if path in entries:  # a malformed tree object listing one name twice
            raise KpolicyError(f"git tree lists {path!r} twice")
        entries[path] = (mode, sha)
    return entries


def _blob_sizes(tree: Path, shas: list[str]) -> dict[str, int]:
    out = _git(tree, "cat-file", "--batch-check", stdin="".join(s + "\n" for s in shas).encode())
    sizes: dict[str, int] = {}
    for line in out.decode().splitlines():
        sha, _kind, size = line.split(" ")
        sizes[sha] = int(size)
    return sizes


def _check_relpath(path: str) -> None:
    # Plain string tests: this runs once per file of a 95,000-file tree.
    if not path or path.startswith("/") or path.endswith("/") or "//" in path \
            or "/../" in f"/{path}/" or "/./" in f"/{path}/" or "\0" in path:
        raise KpolicyError(f"git listed an unsafe path: {path!r}")


def _check_collisions(entries: dict[str, tuple[str, str]], casefold: bool) -> None:
    """Refuse a tree whose entries cannot all be written: a path that is both a file and a
    directory (a malformed git tree: `x` beside `x/...`), or, on a case-insensitive disk
    (CASEFOLD), two paths that differ only in case."""
    dirs = {p[:i] for p in entries for i in range(len(p)) if p[i] == "/"}
    clash = sorted(dirs & set(entries))
    if clash:
        raise KpolicyError(f"git tree lists {clash[0]!r} both as a file and as a directory")
    if casefold:
        seen: dict[str, str] = {}
        for p in sorted([*entries, *dirs]):
            other = seen.setdefault(p.casefold(), p)
            if other != p:
                raise KpolicyError(f"git tree has paths differing only in case ({other!r}, "
                                   f"{p!r}) and the base copy lives on a case-insensitive disk")


def _case_insensitive(directory: Path) -> bool:
    """Whether names in DIRECTORY are matched without regard to case."""
    with tempfile.NamedTemporaryFile(prefix="kpolicy-case-", dir=directory) as f:
        return os.path.exists(os.path.join(directory, os.path.basename(f.name).upper()))


def _read_blobs(tree: Path, shas: list[str]) -> dict[str, bytes]:
    out = _git(tree, "cat-file", "--batch", stdin="".join(s + "\n" for s in shas).encode())
    blobs: dict[str, bytes] = {}
    pos = 0
    while pos < len(out):
        header_end = out.index(b"\n", pos)
        sha, _kind, size = out[pos:header_end].decode().split(" ")
        start = header_end + 1
        blobs[sha] = out[start:start + int(size)]
        pos = start + int(size) + 1
    return blobs


def _unchanged(
    dest: Path, path: str, want: tuple[str, str], old: Optional[tuple[str, str, int, int]]
) -> bool:
    if old is None or (old[0], old[1]) != want:
        return False
    try:
        with parent_fd(dest, path, create=False) as fd:
            if fd is None:
                return False
            st = os.stat(path.rsplit("/", 1)[-1], dir_fd=fd, follow_symlinks=False)
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == (old[2], old[3])


def sync_tree(
    tree: Path, rev: str, dest: Path, manifest: Optional[Manifest] = None
) -> tuple[str, Manifest]:
    """Make DEST hold TREE as it was at REV, rewriting only what MANIFEST (DEST's state as last
    synced) says differs; returns the commit id and DEST's new manifest."""
    commit = resolve_revision(tree, rev)
    entries = _entries(tree, commit)
    old = manifest or {}
    _check_collisions(entries, _case_insensitive(dest))
    for path in sorted(set(old) - set(entries)):
        unlink_entry(dest, path)
    new: Manifest = {}
    todo: list[str] = []
    for path, (mode, sha) in entries.items():
        if _unchanged(dest, path, (sha, mode), old.get(path)):
            new[path] = old[path]
        else:
            todo.append(path)
    # Blobs come in batches of bounded total size, so a large change never sits in memory whole.
    sizes = _blob_sizes(tree, sorted({entries[p][1] for p in todo})) if todo else {}
    big = sorted(p for p in todo if sizes[entries[p][1]] > MAX_BLOB)
    if big:
        raise KpolicyError(f"git blob too large for a kernel tree file ({sizes[entries[big[0]][1]]}"
                           f" bytes; limit {MAX_BLOB})", file=big[0])
    start = 0
    while start < len(todo):
        end, total = start, 0
        while end < len(todo) and (
            end == start or total + sizes[entries[todo[end]][1]] <= _BATCH_BYTES
        ):
            total += sizes[entries[todo[end]][1]]
            end += 1
        batch = todo[start:end]
        blobs = _read_blobs(tree, sorted({entries[p][1] for p in batch}))
        for path in batch:
            mode, sha = entries[path]
            written = write_entry(dest, path, mode, blobs[sha])
            if written is not None:
                new[path] = (sha, mode, *written)
        start = end
    return commit, new


def prune_unused_slots(slots: Path, keep: Path) -> None:
    """Remove the kept trees (base copies, patched link farms) of checkouts not linted with
    --base or --patch for UNUSED_DAYS (a kernel tree is ~1.8 GB, and nothing else would ever
    remove one); a slot in use is left alone."""
    cutoff = time.time() - UNUSED_DAYS * 86400
    for slot in slots.iterdir():
        lock_path = slot / "lock"
        try:
            if slot == keep or lock_path.stat().st_mtime >= cutoff:
                continue
            with open(lock_path, "a") as lock:  # "a": leaves the mtime as it is
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(slot / "tree", ignore_errors=True)
                (slot / "manifest.pickle").unlink(missing_ok=True)
                lock_path.unlink()
            slot.rmdir()
        except OSError:  # in use (the lock is held), already gone, or not ours to remove
            continue


@contextlib.contextmanager
def base_tree(tree: Path, rev: str, cache_root: Optional[Path]) -> Iterator[Path]:
    """TREE as it was at REV, for the duration of the context: kept and updated under CACHE_ROOT
    between runs (one directory per checkout, locked while in use), else a temporary copy."""
    if cache_root is None:
        with tempfile.TemporaryDirectory(prefix="kpolicy-base-") as tmp:
            sync_tree(tree, rev, Path(tmp))
            yield Path(tmp)
        return
    resolve_revision(tree, rev)  # a bad revision must not cost the kept tree its manifest
    checkout = hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:24]
    slot = cache_root / "base-trees" / checkout
    slot.mkdir(parents=True, exist_ok=True)
    prune_unused_slots(slot.parent, keep=slot)
    dest, manifest_path = slot / "tree", slot / "manifest.pickle"
    with open(slot / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.utime(lock.fileno())  # the slot's last use, for prune_unused_slots
        stored = load_sealed(cache_root, manifest_path)
        manifest: Optional[Manifest] = stored[1] if isinstance(stored, tuple) and len(
            stored) == 2 and stored[0] == _MANIFEST_VERSION else None
        if manifest is None and dest.exists():
            shutil.rmtree(dest)  # unknown state: start over
        dest.mkdir(exist_ok=True)
        # Until the sync finishes, the directory matches no manifest: a crash means start over.
        manifest_path.unlink(missing_ok=True)
        _commit, manifest = sync_tree(tree, rev, dest, manifest)
        store_sealed(cache_root, manifest_path, (_MANIFEST_VERSION, manifest))
        yield dest
