"""Property tests: hostile input to every parser ends in a result or a KpolicyError, nothing else.

Modest in-suite runs (~200 examples per target) of the targets in security_fuzz_targets.py;
bench/fuzz_campaign.py runs the same targets for 100,000 examples each. The command-line
tokenizer and passes, the kernel-parameters layouts and the Format grammar already have
property tests of their own (tests/cmdline, tests/params); here the kernel-parameters and
Format targets mutate the real 7.2 file instead, and the Kconfig front end mutates real 7.2
Kconfig files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import real_tree
from hypothesis import HealthCheck, given, settings
from security_fuzz_targets import TARGETS

from kpolicy.errors import KpolicyError

EXAMPLES = {"kconfig": 60}  # a parse per example: ~15 ms each


def _check(name: str, tree: Path) -> None:
    target = TARGETS[name]

    @settings(max_examples=EXAMPLES.get(name, 200), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(target.strategy(tree))
    def prop(case: Any) -> None:
        try:
            target.run(case)
        except KpolicyError as err:  # the CLI prints it as one line
            assert "\n" not in str(err), str(err)

    prop()


@pytest.mark.parametrize("name", [n for n, t in TARGETS.items()
                                  if t.in_suite and not t.needs_real_tree])
def test_hostile_input_gives_a_result_or_kpolicy_error(name: str) -> None:
    _check(name, Path("/nonexistent"))


@pytest.mark.real
@pytest.mark.parametrize("name", [n for n, t in TARGETS.items()
                                  if t.in_suite and t.needs_real_tree])
def test_mutated_real_input_gives_a_result_or_kpolicy_error(name: str) -> None:
    _check(name, real_tree("7.2"))


# Inputs the campaign found (kconfiglib raised AttributeError): each must now end cleanly.
KCONFIG_REGRESSIONS = (
    "X := $(X)$(X)\nconfig A\n\tbool\n",  # a simple variable naming itself while defined
    'menu "m"\n\tstring\nendmenu\n',  # a type inside a menu
    'menu "m"\n\thelp\n\t  text\nendmenu\n',  # help inside a menu
    'menu "m"\n\toption env="HOME"\nendmenu\n',
    'config A\n\tbool "a"\n\tvisible if\n',  # visible if in a config
)


@pytest.mark.parametrize("text", KCONFIG_REGRESSIONS)
def test_kconfig_inputs_the_campaign_found_end_cleanly(text: str) -> None:
    try:
        TARGETS["kconfig"].run(text)
    except KpolicyError as err:
        assert err.file is not None and err.line is not None, str(err)


def test_a_layout_that_writes_through_a_fifo_is_built_without_blocking() -> None:
    """The campaign's 4 timeouts in 100,000 examples: the layout builder (not treefs) opened an
    earlier FIFO for writing, reached as `secret/../a`, and waited for a reader forever."""
    import signal

    entries = [("a", "fifo", "."), ("secret/../a/.", "file", ".."), ("m", "fifo", "../a")]
    class Blocked(Exception):  # not an OSError: the builder skips those
        pass

    def blocked(_signum: int, _frame: object) -> None:
        raise Blocked("building the layout blocked")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(10)
    try:
        TARGETS["tree-layout"].run((entries, ["a", "m", "secret"]))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
