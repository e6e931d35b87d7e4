"""Bootconfig text to the kernel.* and init.* words the kernel adds."""

from __future__ import annotations

import pytest

from kpolicy.cmdline.bootconfig import bootconfig_cmdline
from kpolicy.errors import KpolicyError


def test_keys_values_arrays_braces_and_quotes() -> None:
    text = """
# comment
kernel {
  panic = 5
  console = ttyS0, tty0   # an array
  foo.bar = "a b"
  flag
}
kernel.panic_on_warn = 1
init.x = 'y z'
other.key = 1
"""
    k, i = bootconfig_cmdline(text, (7, 2, 0))
    assert k == 'panic=5 console=ttyS0 console=tty0 foo.bar="a b" flag panic_on_warn=1 '
    assert i == 'x="y z" '


def test_append_and_override_operators() -> None:
    assert bootconfig_cmdline("kernel.a = 1\nkernel.a += 2", (7, 2, 0))[0] == "a=1 a=2 "
    assert bootconfig_cmdline("kernel.a = 1\nkernel.a := 3", (7, 2, 0))[0] == "a=3 "


@pytest.mark.parametrize("text", ["kernel.a = 1\nkernel.a = 2", "kernel { a = 1", "}",
                                  'kernel.a = "open', "kernel.b@d = 1", "kernel.a +x 1", "",
                                  "junk"])
def test_bad_bootconfig_is_a_kpolicy_error(text: str) -> None:
    with pytest.raises(KpolicyError):
        bootconfig_cmdline(text, (7, 2, 0))
