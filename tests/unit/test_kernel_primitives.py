"""The kernel's primitives: kstrtobool() and kstrto*() as the tree's version defines them,
parameq()'s name fold, KERNELVERSION, and the version quirks."""

from __future__ import annotations

from kpolicy.kernel import (
    fold_param,
    has_new_choices,
    kstrtobool,
    kstrtobool_everywhere,
    kstrtoint,
    parse_version,
)

V61, V612, V72 = (6, 1, 0), (6, 12, 0), (7, 2, 0)


def test_first_character_decides() -> None:
    for s in ("y", "Yes", "t", "True", "1", "1junk", "on", "ON", "oN"):
        assert kstrtobool(s, V72) is True, s
    for s in ("n", "No", "f", "False", "0", "off", "OFF"):
        assert kstrtobool(s, V72) is False, s
    for s in ("", None, "maybe", "o", "ox", "2", " 1", "-1"):
        assert kstrtobool(s, V72) is None, s


def test_enable_disable_letters_arrived_in_6_16() -> None:
    for v in (V61, V612):
        assert kstrtobool("enable", v) is None
        assert kstrtobool("disable", v) is None
    assert kstrtobool("enable", V72) is True and kstrtobool("E", V72) is True
    assert kstrtobool("disable", V72) is False and kstrtobool("D", V72) is False
    assert kstrtobool("enable", (6, 15, 9)) is None and kstrtobool("e", (6, 16, 0)) is True


def test_integers_with_base_0_and_ranges() -> None:
    assert kstrtoint("5", "int") == 5
    assert kstrtoint("-1", "int") == -1
    assert kstrtoint("+7", "int") == 7
    assert kstrtoint("0x1f", "int") == 31
    assert kstrtoint("010", "int") == 8
    assert kstrtoint("5\n", "uint") == 5
    for bad, t in (("abc", "int"), ("", "int"), ("-1", "uint"), ("08", "int"),
                   ("2147483648", "int"),
                   ("256", "byte"), ("0x", "int"), ("1 ", "int"), (None, "int"), ("-+1", "int")):
        assert kstrtoint(bad, t) is None, (bad, t)


def test_fold_reads_dash_as_underscore() -> None:
    assert fold_param("no-steal-acc") == "no_steal_acc"
    assert fold_param("zswap.enabled") == "zswap.enabled"


def test_version_free_kstrtobool() -> None:
    assert kstrtobool_everywhere("on") is True
    assert kstrtobool_everywhere("maybe") is False
    assert kstrtobool_everywhere("enable") is None  # taken from 6.16 only


def test_versions_and_their_quirks() -> None:
    assert parse_version("7.2.13") == (7, 2, 13)
    assert parse_version("6.12-rc1") == (6, 12, 1)
    assert parse_version("6.1") == (6, 1, 0)
    assert not has_new_choices((6, 10, 9))
    assert has_new_choices((6, 11, 0))
