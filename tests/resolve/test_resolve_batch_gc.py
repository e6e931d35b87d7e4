"""`resolve --cmdlines` runs with the cyclic GC off: that is only sound while answering a line
makes no reference cycles, which this checks on the bundled models with every kind of word."""

from __future__ import annotations

import gc
from typing import Optional

import pytest

from kpolicy.resolve.api import all_features, kernel_params_for, shipped_rules
from kpolicy.resolve.batch import BatchResolver
from kpolicy.resolve.bundle import bundled_models
from kpolicy.resolve.inputs import choose_model, defaults_config

LINES: list[tuple[str, Optional[str]]] = [
    ("init_on_alloc=1 init_on_free=0 quiet", None),
    ('root=/dev/vda1 x="a b" "quoted word" unbalanced="yes', None),
    ("lockdown=integrity lsm=landlock,lockdown,yama,apparmor -- init-arg FOO=bar", None),
    ("panic=x module.sig_enforce=1 page_alloc.shuffle zswap.enabled sysctl.kernel.panic=5", None),
    ("init_on_alloc=1 init_on_alloc=0 randomize_kstack_offset=off slab_nomerge=0 -- a -- b", None),
    ("bootconfig quiet", "kernel.init_on_free = 1\ninit.foo = bar\n"),
    ("vsyscall=none " + " ".join(f"E{i}=v" for i in range(40)), None),
    ("\x01control nul\x00after", None),
]


@pytest.mark.parametrize("version", sorted(bundled_models()))
def test_batch_makes_no_reference_cycles(version: str) -> None:
    model, _ = choose_model(None, bundled_models()[version])
    config = defaults_config(model)
    rules = shipped_rules()
    specs = all_features(model, rules.features)
    kp = kernel_params_for(model, config, declarations=rules.declarations)
    gc.collect()
    gc.disable()
    try:
        batch = BatchResolver(model, config, specs, kp)
        for _ in range(2):  # the second time through, from the caches
            for number, (line, bootconfig) in enumerate(LINES):
                assert batch.pieces(line, bootconfig, number)
        del batch
        assert gc.collect() == 0
    finally:
        gc.enable()
