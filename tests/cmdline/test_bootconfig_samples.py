"""The kernel's own bootconfig samples (tools/bootconfig/samples of 6.1, 6.12 and 7.2), read from
the trees at test time: each good-X parses, to the keys and values exp-good-X lists where the
tree has one (7.2; 6.1 and 6.12 ship no exp-* files), each bad-X is refused, as by the kernel's
parser."""

from __future__ import annotations

import pytest
from conftest import real_tree

from kpolicy.cmdline.bootconfig import XBC_DEPTH_MAX, XBC_KEYLEN_MAX, bootconfig_keys
from kpolicy.errors import KpolicyError

VERSIONS = {"6.1": (6, 1, 0), "6.12": (6, 12, 0), "7.2": (7, 2, 0)}


@pytest.mark.real
@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_kernel_samples(version: str) -> None:
    numbers = VERSIONS[version]
    samples = real_tree(version) / "tools" / "bootconfig" / "samples"
    good = sorted(samples.glob("good-*.bconf"))
    bad = sorted(samples.glob("bad-*.bconf"))
    assert len(good) >= 10 and len(bad) >= 10
    compared = 0
    for path in good:
        keys = bootconfig_keys(path.read_text(), numbers)
        exp = samples / f"exp-{path.name}"
        if exp.is_file():
            assert keys == bootconfig_keys(exp.read_text(), numbers), path.name
            compared += 1
    assert compared == len(good) or not any(samples.glob("exp-*"))
    accepted = []
    for path in bad:
        try:
            bootconfig_keys(path.read_bytes().decode("utf-8", "surrogateescape"), numbers)
        except KpolicyError:
            continue
        accepted.append(path.name)
    assert not accepted


def test_limits_are_the_kernels() -> None:
    new = (7, 2, 0)
    word = "k" * 40
    fits = ".".join([word] * 6)  # 6 * 41 = 246 bytes with the dots and the final NUL
    assert bootconfig_keys(f"{fits} = 1", new) == {fits: ("1",)}
    with pytest.raises(KpolicyError, match="Too long key length"):
        bootconfig_keys(f"{fits}.abcdefghij = 1", new)  # 257 > XBC_KEYLEN_MAX
    deep = ".".join("w" for _ in range(XBC_DEPTH_MAX))
    assert bootconfig_keys(f"{deep} = 1", new) == {deep: ("1",)}
    with pytest.raises(KpolicyError, match="Too many key words"):
        bootconfig_keys(f"{deep}.w = 1", new)
    assert XBC_KEYLEN_MAX == 256


def test_a_value_on_the_next_line_is_taken_before_6_13_only() -> None:
    text = "key = # comment\n  value1, value2\nother = 1\n"
    assert bootconfig_keys(text, (6, 12, 0)) == {"key": ("value1", "value2"), "other": ("1",)}
    with pytest.raises(KpolicyError, match="Invalid keyword"):
        bootconfig_keys(text, (7, 2, 0))
    assert bootconfig_keys("key = # comment\nother = 1\n", (7, 2, 0)) == {
        "key": ("",), "other": ("1",)}
