"""reevaluate(): recomputing only what depends on changed assignments gives exactly what a whole
evaluate() gives, on Debian's 7.2 config and the real tree (what `kpolicy check` relies on for
every fix it proves)."""

from __future__ import annotations

import pytest
from conftest import real_configs, real_tree

from kpolicy.cache import Cache
from kpolicy.kconfig.evaluate import dependents, evaluate, reevaluate, user_values
from kpolicy.kconfig.load import load_model
from kpolicy.kconfig.toolchain import toolchain_from_config
from kpolicy.tree import open_tree

CHANGES = [
    {"IOMMU_DEFAULT_DMA_STRICT": "y"},  # a choice member
    {"IA32_EMULATION": "n"},  # drags COMPAT and a dozen others
    {"PAGE_TABLE_CHECK_ENFORCED": "y", "PAGE_TABLE_CHECK": "y"},
    {"MODULE_SIG_SHA512": "y"},  # a choice, and the string MODULE_SIG_HASH follows it
    {"DEVMEM": "n"},
]


@pytest.mark.real
def test_reevaluate_matches_evaluate() -> None:
    config = real_configs("7.2") / "config.amd64_none_cloud-amd64"
    model = load_model(open_tree(real_tree("7.2")), "x86_64", config=config,
                       toolchain=toolchain_from_config(config), cache=Cache())
    types = {n: s.type for n, s in model.symbols.items()}
    base_raw = dict(model.values)
    base = dict(evaluate(model.symbols, model.choices, user_values(base_raw, types, print)).values)
    index = dependents(model.symbols, model.choices)
    for change in CHANGES:
        raw = dict(base_raw)
        for name, value in change.items():
            raw.pop(name, None)
            raw[name] = value
        user = user_values(raw, types, print)
        whole = dict(evaluate(model.symbols, model.choices, user).values)
        part = reevaluate(model.symbols, model.choices, user, base, change, index)
        assert part == whole, change
        assert any(whole[n] != base[n] for n in change), change
