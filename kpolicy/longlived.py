"""Building data a run keeps to its end (Kconfig models, the parameter catalog, families)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_exits_soon = False


def leave_garbage_to_exit() -> None:
    """Mark this process as one that exits once its work is done (a worker): the cyclic
    garbage of what it builds need not be freed (garbage_left_to_exit)."""
    global _exits_soon
    _exits_soon = True


def garbage_left_to_exit() -> bool:
    """Whether leave_garbage_to_exit was called in this process."""
    return _exits_soon


@contextlib.contextmanager
def long_lived() -> Iterator[None]:
    """Run a block that builds long-lived objects: the cyclic GC is off inside, and after it
    every object built so far is frozen, out of the collector's sight.

    Loading a model builds ~1M objects and frees none. Inside the block the collector would rescan
    them again and again (it tripled load times); left to it after the block, the first collections
    rescan everything the block built, generation by generation (40% of a warm lint of every
    arch). Models hold no reference cycles, so frozen objects are still freed by reference counting
    when dropped; a block that drops cyclic garbage must break its cycles itself (a kconfiglib
    parse: kpolicy.kconfig.parse), since frozen garbage is never collected."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
