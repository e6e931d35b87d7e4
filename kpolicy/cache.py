"""An on-disk cache of derived models, keyed by content hashes, written atomically, checked on load.

Entries live under $XDG_CACHE_HOME/kpolicy (default ~/.cache/kpolicy). Each file is
MAGIC, a SHA-256 of the payload, then the pickled payload: a truncated or damaged entry fails the
check and is rebuilt. The cache holds only what kpolicy itself derived; it is as trusted as the
user's home directory.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import time
from pathlib import Path
from typing import Callable, Optional, TypeVar

from kpolicy.errors import KpolicyError
from kpolicy.textio import atomic_write_bytes

T = TypeVar("T")

MAGIC = b"KPOLICY-CACHE-1\n"
UNUSED_DAYS = 14


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> bytes:
    """A hash of kpolicy's own sources and grammars: any change to the code that built an entry
    makes a new key, so an entry is never unpickled into classes of another shape."""
    return source_fingerprint(Path(__file__).resolve().parent)


def source_fingerprint(package: Path) -> bytes:
    """A hash of the .py files under PACKAGE and the grammars beside it: each file's name, size
    and modification time (any edit, checkout or install changes one of them). Reading and
    hashing every source instead cost a warm `kpolicy check` a tenth of its time."""
    h = hashlib.sha256()
    for path in sorted([*package.rglob("*.py"), *package.parent.glob("grammars/*.lark"),
                        *package.glob("_data/grammars/*.lark")]):
        st = path.stat()
        h.update(str(path.relative_to(path.parents[1])).encode())
        h.update(f"\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.digest()


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
        path = self._path(namespace, key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        head, digest_len = len(MAGIC), hashlib.sha256().digest_size
        if not data.startswith(MAGIC) or len(data) < head + digest_len:
            return None
        digest, payload = data[head : head + digest_len], data[head + digest_len :]
        if hashlib.sha256(payload).digest() != digest:
            return None
        try:
            value: object = pickle.loads(payload)
        except Exception:  # a stale class layout or any unpickling failure: rebuild
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # marks the entry as used, so pruning keeps it
        return value

    def store(self, namespace: str, key: str, value: object) -> None:
        """Store VALUE atomically; a cache that cannot be written is silently skipped."""
        if not self.enabled:
            return
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            atomic_write_bytes(
                self._path(namespace, key), MAGIC + hashlib.sha256(payload).digest() + payload
            )
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
