"""Writing files into a directory kpolicy owns (a base or patched copy of a tree), following no
symlink in any component, so a hostile link left there can never redirect a write outside."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Optional


def _normalized(p: PurePosixPath) -> tuple[str, ...]:
    parts: list[str] = []
    for part in p.parts:
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            else:
                parts.append("..")
        elif part != ".":
            parts.append(part)
    return tuple(parts)


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_entry(name: str, dir_fd: int) -> None:
    """Remove NAME in DIR_FD, whatever it is, following no symlink."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based: never follows a link out
    else:
        os.unlink(name, dir_fd=dir_fd)


@contextlib.contextmanager
def parent_fd(dest: Path, path: str, *, create: bool) -> Iterator[Optional[int]]:
    """A descriptor of PATH's directory inside DEST, walked per component with O_NOFOLLOW: a
    symlink (or file) where a directory belongs is replaced when CREATE, else gives None."""
    parts = path.split("/")[:-1]
    fd = os.open(dest, _DIR)
    try:
        for name in parts:
            try:
                sub: Optional[int] = os.open(name, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    raise
                sub = None
            if sub is None:
                if not create:
                    break
                remove_entry(name, fd)
                os.mkdir(name, 0o755, dir_fd=fd)
                sub = os.open(name, _DIR, dir_fd=fd)
            os.close(fd)
            fd = sub
        else:
            yield fd
            return
        yield None
    finally:
        os.close(fd)


def write_entry(dest: Path, path: str, mode: str, data: bytes) -> Optional[tuple[int, int]]:
    """Write one entry, following no symlink in any component; (size, mtime_ns) of what was
    written, None when it was left out."""
    name = path.rsplit("/", 1)[-1]
    with parent_fd(dest, path, create=True) as fd:
        assert fd is not None
        remove_entry(name, fd)  # a directory at the previous revision, an old file or link
        if mode == "120000":
            link = data.decode("utf-8", errors="replace")
            # Only links that stay inside the tree: a hostile link must not pull in outside
            # files (kpolicy.treefs checks again, on what the link leads to when read).
            inside = _normalized(PurePosixPath(path).parent / link)[:1] != ("..",)
            if link.startswith("/") or not inside:
                return None
            os.symlink(link, name, dir_fd=fd)
        else:
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                          | os.O_CLOEXEC, 0o755 if mode == "100755" else 0o644, dir_fd=fd)
            with os.fdopen(out, "wb") as f:
                f.write(data)
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    return st.st_size, st.st_mtime_ns


def unlink_entry(dest: Path, path: str) -> None:
    """Remove PATH of DEST when it is there, following no symlink in any component."""
    with parent_fd(dest, path, create=False) as fd:
        if fd is not None:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(path.rsplit("/", 1)[-1], dir_fd=fd)
