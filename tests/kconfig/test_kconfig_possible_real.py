"""kconfig.possible on a real tree: a symbol's answer does not depend on what else it is asked
with, which lint's settable symbols rely on (crosscheck asks each arch only of the roots no
arch before it could set)."""

from __future__ import annotations

import pytest
from conftest import real_tree

from kpolicy.kconfig.load import load_model
from kpolicy.kconfig.possible import possible_symbols
from kpolicy.tree import open_tree

pytestmark = pytest.mark.real


@pytest.mark.parametrize("arch", ["x86_64", "s390"])
def test_each_symbol_is_answered_alike_whatever_it_is_asked_with(arch: str) -> None:
    model = load_model(open_tree(real_tree()), arch)
    asked = sorted(model.symbols)[::5]
    together = possible_symbols(model.symbols, asked, model.tool_derived)
    assert set(asked) & together and set(asked) - together  # both answers occur
    for part in (asked[::2], asked[1::2], asked[:300], asked[-300:]):
        alone = possible_symbols(model.symbols, part, model.tool_derived)
        assert alone & set(part) == together & set(part)
    for name in asked[::97]:
        alone = possible_symbols(model.symbols, [name], model.tool_derived)
        assert (name in alone) == (name in together), name
