"""The one way kpolicy reads a file or lists a directory of an untrusted kernel tree.

Every path is walked one component at a time from a descriptor of the tree root: each directory
is opened with O_NOFOLLOW relative to its parent's descriptor, a symlink met on the way is read
(readlink) and its target walked the same way, and `..` steps back to the parent of the
directory actually reached, never of the text. So the file opened is exactly the one checked:
a symlinked directory followed by `..`, a symlink chain, an absolute link or a loop can never
reach outside the root, whatever the text of the path says. The last component is opened with
O_NOFOLLOW|O_NONBLOCK and must be a regular file (a FIFO or a device is refused before any
read), and reads are bounded in size.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Optional, TypeVar, Union

from kpolicy.errors import KpolicyError
from kpolicy.textio import DEFAULT_LIMIT, decode_text

T = TypeVar("T")

MAX_SYMLINKS = 40  # as the kernel's own path walk (ELOOP)
MAX_COMPONENTS = 256  # directory depth after symlinks are expanded
MAX_WALK_ENTRIES = 2_000_000  # Linux 7.2 has ~95,000 files

PathLike = Union[str, Path]
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class OutsideTree(KpolicyError):
    """A path of the tree that leads outside it (through `..`, an absolute path or a symlink)."""


def _parts(rel: str) -> list[str]:
    return [p for p in rel.replace(os.sep, "/").split("/") if p not in ("", ".")]


def rel_of(root: PathLike, path: PathLike) -> str:
    """PATH relative to ROOT, as text (no `..` folded, no symlink resolved); an absolute PATH
    not under ROOT's text is an OutsideTree error."""
    p, r = str(path), str(root).rstrip("/")
    if not os.path.isabs(p):
        return p
    if p == r:
        return "."
    if p.startswith(r + "/"):
        return p[len(r) + 1:]
    raise OutsideTree("absolute path outside the tree", file=p)


class _Walk:
    """Descriptors of the directories from the root to where the walk stands."""

    def __init__(self, root: PathLike) -> None:
        self.root = str(root)
        try:
            self.fds = [os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
        except OSError as exc:
            raise KpolicyError(f"cannot open the tree: {exc.strerror}", file=self.root) from None
        self.names: list[str] = []

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def to_root(self) -> None:
        for fd in self.fds[1:]:
            os.close(fd)
        del self.fds[1:]
        self.names.clear()

    def up(self) -> bool:
        if not self.names:
            return False
        os.close(self.fds.pop())
        self.names.pop()
        return True

    def down(self, name: str) -> None:
        fd = os.open(name, _DIR_FLAGS, dir_fd=self.fds[-1])
        self.fds.append(fd)
        self.names.append(name)

    @property
    def fd(self) -> int:
        return self.fds[-1]


def _resolve(walk: _Walk, rel: str, *, what: str, display: str) -> Optional[str]:
    """Walk to the directory holding REL's last component; return that name (None when REL
    names a directory, which the walk then stands in). Symlinks are expanded on the way."""
    if os.path.isabs(rel):
        raise OutsideTree(f"{what} is an absolute path: {rel}", file=display)
    pending = list(reversed(_parts(rel)))
    links = 0
    while pending:
        name = pending.pop()
        if name == ".":
            continue
        if name == "..":
            if not walk.up():
                raise OutsideTree(f"{what} leads outside the tree: {rel}", file=display)
            continue
        st = os.stat(name, dir_fd=walk.fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                raise KpolicyError(f"{what}: too many levels of symbolic links: {rel}",
                                   file=display)
            target = os.readlink(name, dir_fd=walk.fd)
            if os.path.isabs(target):
                # resolved here only: once per walk was a third of reading a small file
                real_root = os.path.realpath(walk.root)
                if target != real_root and not target.startswith(real_root + "/"):
                    raise OutsideTree(f"{what} leads outside the tree: {rel}", file=display)
                walk.to_root()
                target = target[len(real_root):]
            pending.extend(reversed(_parts(target) or ["."]))
            continue
        if not pending:
            if stat.S_ISDIR(st.st_mode):
                walk.down(name)
                return None
            return name
        walk.down(name)
        if len(walk.names) > MAX_COMPONENTS:
            raise KpolicyError(f"{what}: path nested too deeply: {rel}", file=display)
    return None


def _shown(root: PathLike, rel: str, display: Optional[PathLike]) -> str:
    """How an error names REL under ROOT: DISPLAY when given."""
    return str(display) if display is not None else str(Path(root, rel))


@contextlib.contextmanager
def _walked(root: PathLike, rel: str, what: str,
            display: Optional[PathLike]) -> Iterator[tuple[_Walk, Optional[str]]]:
    shown = _shown(root, rel, display)
    walk = _Walk(root)
    try:
        try:
            last = _resolve(walk, rel, what=what, display=shown)
        except FileNotFoundError:
            raise KpolicyError(f"{what} not found", file=shown) from None
        except NotADirectoryError:
            raise KpolicyError(f"{what} not found (a path component is not a directory)",
                               file=shown) from None
        except OSError as exc:
            raise KpolicyError(f"cannot read {what}: {exc.strerror}", file=shown) from None
        yield walk, last
    finally:
        walk.close()


def physical(root: PathLike, rel: str, *, what: str = "file",
             display: Optional[PathLike] = None) -> str:
    """REL with every symlink resolved and every `..` applied where it leads, relative to ROOT
    ("" for the root itself); OutsideTree if it leaves ROOT, KpolicyError if it is missing."""
    with _walked(root, rel, what, display) as (walk, last):
        return "/".join([*walk.names, *([last] if last else [])])


def kind(root: PathLike, rel: str, *, what: str = "file") -> Optional[str]:
    """"file", "dir" or "other" for REL under ROOT (symlinks followed inside the tree), None
    when it is missing; OutsideTree when it leads outside."""
    try:
        with _walked(root, rel, what, None) as (walk, last):
            if last is None:
                return "dir"
            st = os.stat(last, dir_fd=walk.fd, follow_symlinks=False)
            return "file" if stat.S_ISREG(st.st_mode) else "other"
    except OutsideTree:
        raise
    except KpolicyError:
        return None


def is_file(root: PathLike, rel: str) -> bool:
    """Whether REL is a regular file inside ROOT (False when it is missing or leads out)."""
    try:
        return kind(root, rel) == "file"
    except KpolicyError:
        return False


def is_dir(root: PathLike, rel: str) -> bool:
    """Whether REL is a directory inside ROOT (False when it is missing or leads out)."""
    try:
        return kind(root, rel) == "dir"
    except KpolicyError:
        return False


def read_bytes(root: PathLike, rel: str, *, what: str = "file", limit: int = DEFAULT_LIMIT,
               display: Optional[PathLike] = None) -> bytes:
    """The bytes of the regular file REL under ROOT, at most LIMIT of them; every failure (and
    any way out of the tree) a KpolicyError naming DISPLAY (default ROOT/REL)."""
    shown = _shown(root, rel, display)
    with _walked(root, rel, what, shown) as (walk, last):
        if last is None:
            raise KpolicyError(f"{what} is a directory", file=shown)
        try:
            fd = os.open(last, _FILE_FLAGS, dir_fd=walk.fd)
        except OSError as exc:
            raise KpolicyError(f"cannot read {what}: {exc.strerror}", file=shown) from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise KpolicyError(f"{what} is not a regular file", file=shown)
            if st.st_size > limit:
                raise KpolicyError(f"{what} is too large ({st.st_size} bytes; limit {limit})",
                                   file=shown)
            try:
                # its size (+1: a file that grew since is read on, to LIMIT+1): reading LIMIT+1
                # at once allocated a LIMIT-sized buffer per file, a fifth of the C scan's time
                data = f.read(st.st_size + 1)
                if len(data) > st.st_size:
                    data += f.read(limit + 1 - len(data))
            except OSError as exc:
                raise KpolicyError(f"cannot read {what}: {exc.strerror}", file=shown) from None
    if len(data) > limit:
        raise KpolicyError(f"{what} is too large (limit {limit} bytes)", file=shown)
    return data


def read_text(root: PathLike, rel: str, *, what: str = "file", limit: int = DEFAULT_LIMIT,
              display: Optional[PathLike] = None) -> str:
    """read_bytes decoded as UTF-8 (NUL bytes and invalid UTF-8 are errors at their line)."""
    shown = _shown(root, rel, display)
    return decode_text(read_bytes(root, rel, what=what, limit=limit, display=shown),
                       file=shown, what=what)


def listdir(root: PathLike, rel: str, *, what: str = "directory") -> list[str]:
    """The names in directory REL under ROOT (sorted); [] when it is missing or not one."""
    try:
        with _walked(root, rel, what, None) as (walk, last):
            if last is not None:
                return []
            return sorted(os.listdir(walk.fd))
    except OutsideTree:
        raise
    except (KpolicyError, OSError):
        return []


def glob(root: PathLike, pattern: str, *, what: str = "file") -> list[str]:
    """Paths under ROOT matching PATTERN (fnmatch per component, as glob.glob without `**`;
    names starting with `.` only match a pattern starting with `.`), sorted, as REL text."""
    found = [""]
    parts = pattern.replace(os.sep, "/").split("/")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt: list[str] = []
        for base in found:
            if part in ("", "."):
                nxt.append(base)
                continue
            if not any(c in part for c in "*?["):
                cand = [f"{base}/{part}" if base else part]
            else:
                names = listdir(root, base or ".", what=what)
                cand = [f"{base}/{n}" if base else n for n in fnmatch.filter(names, part)
                        if not n.startswith(".") or part.startswith(".")]
            for c in cand:
                k = kind(root, c, what=what)
                if k is not None and (last or k == "dir"):
                    nxt.append(c)
        found = nxt
    return sorted(f for f in found if f)


def _open_dir(root: PathLike, rel_dir: str) -> int:
    """A descriptor of REL_DIR (already physical: no symlink, no `..`), opened per component
    with O_NOFOLLOW, so a directory swapped for a symlink meanwhile is not followed."""
    w = _Walk(root)
    try:
        for name in _parts(rel_dir):
            w.down(name)
        return os.dup(w.fd)
    finally:
        w.close()


# link(2) refusals that a copy works around: another file system, another user's file under
# fs.protected_hardlinks, a file with the most links its file system allows
_LINK_REFUSED = frozenset({errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK})


def link_files(root: PathLike, rel_dir: str, names: list[str], dest_fd: int) -> list[str]:
    """Hard-link the regular files NAMES of directory REL_DIR (physical, as walk yields it)
    into the directory DEST_FD, following no symlink: a name that is no longer a regular file
    (or gone) is left out. The names link(2) refused are returned, for the caller to copy
    through read_bytes. Nothing is read: the links share the tree's inodes, so a caller must
    never write through them (replace a file instead)."""
    fd = _open_dir(root, rel_dir)
    refused: list[str] = []
    try:
        for name in names:
            try:
                os.link(name, name, src_dir_fd=fd, dst_dir_fd=dest_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno not in _LINK_REFUSED:
                    raise KpolicyError(f"cannot link file: {exc.strerror}",
                                       file=str(Path(root, rel_dir, name))) from None
                refused.append(name)
                continue
            if not stat.S_ISREG(os.stat(name, dir_fd=dest_fd, follow_symlinks=False).st_mode):
                os.unlink(name, dir_fd=dest_fd)  # swapped for a link or a FIFO since the walk
    finally:
        os.close(fd)
    return refused


def walk(root: PathLike, top: str = "", prune: frozenset[str] = frozenset(),
         wanted: Optional[Callable[[str], bool]] = None,
         ) -> Iterator[tuple[str, list[str], dict[str, os.stat_result]]]:
    """(rel_dir, subdirectories, regular files with their lstat) for TOP and every directory
    below it, top-down in sorted order; the subdirectory list may be pruned in place.
    Symlinks (to files or directories) are neither followed nor listed; TOP itself is resolved
    inside the tree, and a missing TOP yields nothing. WANTED: only the files whose name it
    accepts are listed (the others are not stat'ed: entry types come from the directory)."""

    def value(entry: os.DirEntry[str]) -> Optional[os.stat_result]:
        if wanted is not None and not wanted(entry.name):
            return None
        st = entry.stat(follow_symlinks=False)
        return st if stat.S_ISREG(st.st_mode) else None  # still one: not swapped since listed

    yield from _walk(root, top, prune, value)


def list_inodes(root: PathLike, rel_dir: str, prune: frozenset[str] = frozenset(),
                ) -> Optional[tuple[list[str], dict[str, int]]]:
    """The sorted subdirectories (PRUNE left out) and the regular files of REL_DIR (physical,
    as walk yields it), each with its inode number as the directory lists it: no stat (the type
    comes from the listing too, so a file swapped since may be another kind: a caller linking
    it checks what it linked, as link_files does); None when it cannot be opened (gone, or
    swapped for something else since it was listed)."""
    return _list_dir(root, rel_dir, prune, _inode, [0])


def _inode(entry: os.DirEntry[str]) -> int:
    return entry.inode()


def _list_dir(root: PathLike, rel_dir: str, prune: frozenset[str],
              value: Callable[[os.DirEntry[str]], Optional[T]], seen: list[int],
              ) -> Optional[tuple[list[str], dict[str, T]]]:
    """The subdirectories (sorted, PRUNE left out) and VALUE of each regular file of REL_DIR;
    SEEN counts the entries listed so far, against MAX_WALK_ENTRIES."""
    try:
        fd = _open_dir(root, rel_dir)
    except OSError:
        return None
    dirs: list[str] = []
    files: dict[str, T] = {}
    try:
        with os.scandir(fd) as it:
            for entry in it:
                seen[0] += 1
                if seen[0] > MAX_WALK_ENTRIES:
                    raise KpolicyError(f"tree has more than {MAX_WALK_ENTRIES} entries",
                                       file=str(root))
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in prune:
                        dirs.append(entry.name)
                elif entry.is_file(follow_symlinks=False):
                    found = value(entry)
                    if found is not None:
                        files[entry.name] = found
    except OSError:
        return None
    finally:
        os.close(fd)
    dirs.sort()
    return dirs, files


def _walk(root: PathLike, top: str, prune: frozenset[str],
          value: Callable[[os.DirEntry[str]], Optional[T]],
          ) -> Iterator[tuple[str, list[str], dict[str, T]]]:
    """walk's loop: VALUE gives each regular file's entry, None leaves it out."""
    try:
        start = physical(root, top, what="directory") if top else ""
    except OutsideTree:
        raise
    except KpolicyError:
        return
    seen = [0]
    stack = [start]
    while stack:
        rel_dir = stack.pop()
        listed = _list_dir(root, rel_dir, prune, value, seen)
        if listed is None:
            continue
        dirs, files = listed
        yield rel_dir, dirs, files
        stack.extend(f"{rel_dir}/{d}" if rel_dir else d for d in reversed(dirs))
