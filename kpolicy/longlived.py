"""Building data a run keeps to its end (Kconfig models, the parameter catalog, families)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_collect_garbage = True


def leave_garbage_to_exit() -> None:
    """Mark this process as one that exits once its work is done (a worker): long_lived then
    leaves cyclic garbage to the exit instead of spending time collecting it."""
    global _collect_garbage
    _collect_garbage = False


@contextlib.contextmanager
def long_lived(*, leaves_garbage: bool = False) -> Iterator[None]:
    """Run a block that builds long-lived objects: the cyclic GC is off inside, and after it
    every object built so far is frozen, out of the collector's sight.

    Loading a model builds ~1M objects and frees none. Inside the block the collector would rescan
    them again and again (it tripled load times); left to it after the block, the first collections
    rescan everything the block built, generation by generation (40% of a warm lint of every
    arch). Models hold no reference cycles, so frozen objects are still freed by reference counting
    when dropped. LEAVES_GARBAGE: the block also dropped cyclic garbage (a kconfiglib parse), which
    is collected first, since frozen garbage would never be."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if leaves_garbage and _collect_garbage:
            gc.collect()
        gc.freeze()
        if enabled:
            gc.enable()
