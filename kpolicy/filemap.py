"""Per-file results of a whole-tree scan, kept in the cache between runs, each one held while
its file's stat is the one recorded with it.

A scan keyed on the whole tree misses as soon as one file changes (a patched tree: kpolicy lint
--patch, whose scratch copy hard-links every unchanged file, so their stats stay the same); the
per-file map then says what can be kept, and only the files whose stat changed are read again.
Used by the C registration scan (kpolicy.params.scan) and the Kconfig symbol scan
(kpolicy.kconfig.scan). The map is written back only when more than REWRITE_AFTER files were
done anew (or none was stored): below that, redoing those few next time costs less than
rewriting the whole map.
"""

from __future__ import annotations

import os
from typing import Generic, Optional, TypeVar

from kpolicy.cache import Cache

V = TypeVar("V")

Stat = tuple[int, int, int]  # size, mtime_ns, inode
# Files done anew above which the map (~6 MB for the C files of Linux 7.2) is written back.
REWRITE_AFTER = 64


def file_stat(st: os.stat_result) -> Stat:
    """The part of ST a per-file result is keyed on: any ordinary write or relink changes it."""
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class FileMap(Generic[V]):
    """The per-file map of one scan: ENTRIES (path -> value, loaded from CACHE under NAMESPACE
    and KEY, empty when absent) is brought up to date by the scan, then save()d."""

    def __init__(self, cache: Optional[Cache], namespace: str, key: str) -> None:
        self.cache, self.namespace, self.key = cache, namespace, key
        known = cache.load(namespace, key) if cache is not None else None
        self.stored = isinstance(known, dict)
        self.entries: dict[str, V] = known if isinstance(known, dict) else {}

    def save(self, changed: int) -> None:
        """Write ENTRIES back when CHANGED (files done anew) exceeds REWRITE_AFTER or the cache
        held no map."""
        if self.cache is not None and (changed > REWRITE_AFTER or not self.stored):
            self.cache.store(self.namespace, self.key, self.entries)
            self.stored = True
