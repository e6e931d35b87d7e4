"""An on-disk cache of derived models, keyed by content hashes, written atomically, checked on load.

Entries live under $XDG_CACHE_HOME/kpolicy (default ~/.cache/kpolicy). Each file is MAGIC, an
HMAC-SHA256 of the payload under a per-user secret key, then the pickled payload. The key is
kept beside the cache directory (`kpolicy.key`, created 0600); it is used only when it is a
regular file owned by this user that nobody else may read or write, else the cache is off.
An entry is unpickled only when its HMAC verifies, so whoever can write the cache directory
but cannot read the key (another user, a hostile tree's files, a bug writing where it should
not) cannot make kpolicy unpickle anything: a damaged, truncated, foreign or forged entry is
rebuilt.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import hmac
import os
import pickle
import secrets
import stat
import time
from pathlib import Path
from typing import Callable, Optional, TypeVar

from kpolicy.errors import KpolicyError
from kpolicy.textio import atomic_write_bytes

T = TypeVar("T")

MAGIC = b"KPOLICY-CACHE-2\n"
KEY_BYTES = 32
MAX_ENTRY = 1024**3  # the largest entry (a Linux 7.2 parameter scan) is a few MB
UNUSED_DAYS = 14


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> bytes:
    """A hash of kpolicy's own sources and grammars: any change to the code that built an entry
    makes a new key, so an entry is never unpickled into classes of another shape."""
    return source_fingerprint(Path(__file__).resolve().parent)


def source_fingerprint(package: Path) -> bytes:
    """A hash of the .py files under PACKAGE and the grammars beside it: each file's name, size
    and modification time (any edit, checkout or install changes one of them). Reading and
    hashing every source instead cost a warm `kpolicy check` a tenth of its time; os.scandir
    with plain strings costs a third of what pathlib's rglob did (~1.5 ms of every run)."""
    top = str(package.parent)
    found: list[tuple[str, os.stat_result]] = []

    def scan(directory: str, suffix: str, deep: bool) -> None:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return
        for entry in entries:
            if entry.name.endswith(suffix) and entry.is_file():
                found.append((entry.path, entry.stat()))
            elif deep and entry.name != "__pycache__" and entry.is_dir():
                scan(entry.path, suffix, deep)

    scan(str(package), ".py", True)
    scan(f"{top}/grammars", ".lark", False)
    scan(f"{package}/_data/grammars", ".lark", False)
    h = hashlib.sha256()
    for path, st in sorted(found):
        h.update(path[len(top) + 1:].encode())
        h.update(f"\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.digest()


def shipped_files_key(directory: Path, suffix: str) -> tuple[tuple[str, int, int], ...]:
    """(name, size, mtime_ns) of each file of DIRECTORY ending in SUFFIX, sorted: a key for
    data shipped with kpolicy (rules/, bundled models), which changes with an edit, a checkout
    or an install as the code fingerprint's sources do, read without reading the files (~100
    rules files read and hashed were ~3 ms of every warm resolve)."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith(suffix) and entry.is_file():
                st = entry.stat()
                found.append((entry.name, st.st_size, st.st_mtime_ns))
    return tuple(sorted(found))


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/kpolicy, or ~/.cache/kpolicy."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kpolicy"


def content_key(*parts: object) -> str:
    """A stable hex key for PARTS (strings, bytes, numbers, nested tuples)."""
    h = hashlib.sha256(code_fingerprint())
    for part in parts:
        h.update(b"\0")
        h.update(part if isinstance(part, bytes) else repr(part).encode())
    return h.hexdigest()


def key_path(root: Path) -> Path:
    """Where the secret key of the cache at ROOT lives: beside it, not inside it."""
    return root.with_name(root.name + ".key")


def _usable_key(fd: int) -> Optional[bytes]:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None
    data = os.read(fd, KEY_BYTES + 1)
    return data if len(data) == KEY_BYTES else None


@functools.lru_cache(maxsize=8)
def secret_key(root: Path) -> Optional[bytes]:
    """The per-user key of the cache at ROOT, created (0600) when missing; None when the file
    there is not one kpolicy can trust (a symlink, another owner, group/other access, wrong
    size), which turns the cache off."""
    path = key_path(root)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_key(path)
            fd = os.open(path, flags)
        except OSError:  # another process created it first, or the directory is read-only
            try:
                fd = os.open(path, flags)
            except OSError:
                return None
    except OSError:
        return None
    try:
        return _usable_key(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def _create_key(path: Path) -> None:
    """Write a new key to PATH, whole or not at all: written to a file of this process's own,
    then linked into place (FileExistsError when another process's key got there first). A key
    created in place could be read empty by a process racing with its writer (two lint workers
    on a new cache): that process's cache was off, and the arch it parsed parsed again."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
        finally:
            os.close(fd)
        os.link(tmp, path, follow_symlinks=False)  # never replaces a key already there
    finally:
        os.unlink(tmp)


def read_entry(path: Path) -> Optional[bytes]:
    """The bytes of the cache file PATH: a regular file, not a symlink, at most MAX_ENTRY
    bytes; None otherwise (a FIFO or /dev/zero planted in the cache neither hangs nor fills
    memory)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY:
                return None
            # its size (+1: a file that grew since is caught by its MAC, being cut short):
            # reading MAX_ENTRY+1 bytes made a 1 GiB buffer and copied the data out of it
            data = f.read(st.st_size + 1)
        except OSError:
            return None
    return data if len(data) <= MAX_ENTRY else None


def seal(root: Path, payload: bytes) -> Optional[bytes]:
    """PAYLOAD with MAGIC and its HMAC under ROOT's key in front; None without a usable key."""
    key = secret_key(root)
    if key is None:
        return None
    return MAGIC + hmac.new(key, payload, hashlib.sha256).digest() + payload


def unseal(root: Path, data: bytes) -> Optional[memoryview]:
    """The payload of DATA if its HMAC verifies under ROOT's key, else None."""
    key = secret_key(root)
    head, mac_len = len(MAGIC), hashlib.sha256().digest_size
    if key is None or not data.startswith(MAGIC) or len(data) < head + mac_len:
        return None
    # a view, not a copy, of the payload (a resolve model's entry is ~4 MB): pickle and marshal
    # read it as they read bytes
    mac, payload = data[head : head + mac_len], memoryview(data)[head + mac_len :]
    if not hmac.compare_digest(hmac.new(key, payload, hashlib.sha256).digest(), mac):
        return None
    return payload


def load_sealed(root: Path, path: Path) -> Optional[object]:
    """The value store_sealed wrote to PATH under the key of the cache at ROOT; None when it is
    absent, damaged, forged or does not unpickle."""
    data = read_entry(path)
    payload = unseal(root, data) if data is not None else None
    if payload is None:  # damaged, foreign or forged: never unpickled
        return None
    # Unpickling builds many containers and frees none: the cyclic collector, run every
    # 700 of them, would rescan the growing value again and again (half of loading a
    # resolve model, measured)
    collecting = gc.isenabled()
    gc.disable()
    try:
        value: object = pickle.loads(payload)
    except Exception:  # a stale class layout or any unpickling failure
        return None
    finally:
        if collecting:
            gc.enable()
    return value


def store_sealed(root: Path, path: Path, value: object) -> None:
    """Write VALUE to PATH atomically, sealed under the key of the cache at ROOT (nothing when
    there is no usable key: load_sealed then finds nothing)."""
    sealed = seal(root, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    if sealed is not None:
        atomic_write_bytes(path, sealed)


class Cache:
    """Get-or-build of pickled values under one directory; disabled, it always builds."""

    def __init__(self, root: Optional[Path] = None, *, enabled: bool = True) -> None:
        self.root = root or default_cache_dir()
        self.enabled = enabled
        self._pruned: set[str] = set()

    def _path(self, namespace: str, key: str) -> Path:
        return self.root / namespace / f"{key}.pickle"

    def has(self, namespace: str, key: str) -> bool:
        """Whether an entry exists (whether it loads is only known by loading it)."""
        return self.enabled and self._path(namespace, key).is_file()

    def load(self, namespace: str, key: str) -> Optional[object]:
        """The stored value, or None when absent, damaged or written by another format."""
        if not self.enabled:
            return None
        value = load_sealed(self.root, self._path(namespace, key))
        if value is None:  # absent, damaged, forged or stale: rebuilt
            return None
        with contextlib.suppress(OSError):
            # marks the entry as used, so pruning keeps it
            os.utime(self._path(namespace, key), follow_symlinks=False)
        return value

    def store(self, namespace: str, key: str, value: object) -> None:
        """Store VALUE atomically; a cache that cannot be written is silently skipped."""
        if not self.enabled:
            return
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except RecursionError:  # a deeply nested model: not worth caching
            return
        sealed = seal(self.root, payload)
        if sealed is None:
            return
        try:
            atomic_write_bytes(self._path(namespace, key), sealed)
        except KpolicyError:  # atomic_write_bytes' form of an OSError
            return
        if namespace not in self._pruned:
            self._pruned.add(namespace)
            self._prune(self.root / namespace)

    @staticmethod
    def _prune(directory: Path) -> None:
        """Drop entries unused for UNUSED_DAYS: every change of kpolicy's code (and of the trees
        it reads) makes new keys, and nothing else would ever remove the old ones."""
        cutoff = time.time() - UNUSED_DAYS * 86400
        with contextlib.suppress(OSError):
            for entry in directory.iterdir():
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < cutoff:
                        entry.unlink()

    def get_or_build(self, namespace: str, key: str, build: Callable[[], T],
                     kind: type) -> T:
        """The value cached for (NAMESPACE, KEY); built and stored when missing, damaged or not
        a KIND (what BUILD returns)."""
        hit = self.load(namespace, key)
        if isinstance(hit, kind):
            return hit  # type: ignore[return-value]
        value = build()
        self.store(namespace, key, value)
        return value
