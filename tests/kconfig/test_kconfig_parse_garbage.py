"""A Kconfig parse frees kconfiglib's objects by reference counting (kpolicy.kconfig.parse
cuts their cycles), since what long_lived freezes afterwards is never collected."""

from __future__ import annotations

import gc

from conftest import real_tree

from kpolicy.kconfig.parse import parse_kconfig
from kpolicy.kconfig.toolchain import default_toolchain
from kpolicy.tree import open_tree


def test_a_real_parse_leaves_next_to_no_cyclic_garbage() -> None:
    tree = open_tree(real_tree("7.2"))
    gc.unfreeze()
    gc.collect()
    parsed = parse_kconfig(tree, "x86_64", default_toolchain())
    gc.unfreeze()  # long_lived froze what the parse left: look at it again
    left = gc.collect()
    # collected as cyclic garbage, these were ~450,000 objects (symbols, menu nodes, ...);
    # what remains is a few closures kconfiglib's warnings build
    assert left < 1000, left
    assert len(parsed.symbols) > 18000 and parsed.symbols["MSEAL_SYSTEM_MAPPINGS"].prompts
