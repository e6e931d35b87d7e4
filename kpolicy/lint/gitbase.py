"""Pre-submit mode: rebuild the tree as it was at a git revision, so only new findings are reported.

git is kpolicy's own tool here, never a command named by the tree: every call disables hooks,
fsmonitor, external diff and textconv, and blobs are read raw (`cat-file`, no filters), so no
program the repository configures is started. Files whose content equals the base blob are
hard-linked (or copied) from the working tree; only the others are written from git's objects.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path, PurePosixPath
from typing import Optional

from kpolicy.errors import KpolicyError

_GIT_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
               "-c", "diff.external=", "-c", "core.pager=cat")
_GIT_TIMEOUT = 600  # seconds; a whole kernel tree lists and diffs in a few
_BATCH_BYTES = 64 * 1024 * 1024


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


def _entries(tree: Path, commit: str, prefix: str) -> list[tuple[str, str, str, int, str]]:
    out = _git(tree, "ls-tree", "-r", "-z", "-l", "--full-tree", "--end-of-options",
               f"{commit}:{prefix}")
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, sha, size = meta.decode().split()
        entries.append((mode, kind, sha, int(size) if size.isdigit() else -1,
                        path.decode("utf-8", errors="surrogateescape")))
    return entries


def _same_blob(path: Path, sha: str, size: int) -> bool:
    """True when the working-tree file PATH holds exactly blob SHA of SIZE bytes.

    Hashing here rather than asking `git diff`: git may run the repository's clean filters to
    compare a file whose stat data changed, and those are programs from the repository."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size != size:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    algo = "sha1" if len(sha) == 40 else "sha256"
    return hashlib.new(algo, b"blob %d\0" % len(data) + data).hexdigest() == sha


def _read_blobs(tree: Path, shas: list[str]) -> dict[str, bytes]:
    if not shas:
        return {}
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


def _safe_relpath(path: str) -> PurePosixPath:
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise KpolicyError(f"git listed an unsafe path: {path!r}")
    return p


def _place(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def materialize(tree: Path, rev: str, dest: Path) -> str:
    """Fill the empty directory DEST with TREE as it was at REV; returns the commit id."""
    commit = resolve_revision(tree, rev)
    prefix = _git(tree, "rev-parse", "--show-prefix").decode().strip()
    to_write: list[tuple[str, str, int, PurePosixPath]] = []
    for mode, kind, sha, size, path in _entries(tree, commit, prefix):
        if kind != "blob":
            continue  # submodules are not part of the tree being linted
        rel = _safe_relpath(path)
        target = dest.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tree.joinpath(*rel.parts)
        if mode == "120000" or not _same_blob(source, sha, size):
            to_write.append((mode, sha, size, rel))
        else:
            _place(source, target)
    # Blobs come in batches of bounded total size, so a large change never sits in memory whole.
    start = 0
    while start < len(to_write):
        end, total = start, 0
        while end < len(to_write) and (end == start or total + to_write[end][2] <= _BATCH_BYTES):
            total += max(to_write[end][2], 0)
            end += 1
        batch = to_write[start:end]
        blobs = _read_blobs(tree, sorted({sha for _mode, sha, _size, _rel in batch}))
        for mode, sha, _size, rel in batch:
            _write_entry(dest.joinpath(*rel.parts), mode, blobs[sha], rel)
        start = end
    return commit


def _write_entry(target: Path, mode: str, data: bytes, rel: PurePosixPath) -> None:
    if mode != "120000":
        target.write_bytes(data)
        return
    link = data.decode("utf-8", errors="replace")
    # Only links that stay inside the tree: a hostile link must not pull in outside files.
    inside = _normalized(PurePosixPath(*rel.parts[:-1], link)).parts[:1] != ("..",)
    if inside and not link.startswith("/"):
        os.symlink(link, target)


def _normalized(p: PurePosixPath) -> PurePosixPath:
    parts: list[str] = []
    for part in p.parts:
        if part == "..":
            if not parts or parts[-1] == "..":
                parts.append("..")
            else:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def scratch_directory(near: Path, cache_root: Optional[Path]) -> tempfile.TemporaryDirectory[str]:
    """A temporary directory for the base tree, on NEAR's filesystem when the cache is, so hard
    links work."""
    parent: Optional[Path] = None
    if cache_root is not None:
        try:
            cache_root.mkdir(parents=True, exist_ok=True)
            if cache_root.stat().st_dev == near.stat().st_dev:
                parent = cache_root
        except OSError:
            parent = None
    return tempfile.TemporaryDirectory(prefix="kpolicy-base-", dir=parent)
