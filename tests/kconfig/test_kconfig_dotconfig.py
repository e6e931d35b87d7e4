"""read_dotconfig: a .config read as conf_read_simple reads it, without a tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpolicy.errors import KpolicyError
from kpolicy.kconfig.dotconfig import read_dotconfig

SAMPLE = """\
#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 7.2.13 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc (Debian 14.2.0-19) 14.2.0"
CONFIG_A=y
CONFIG_B=m
# CONFIG_C is not set
CONFIG_NUM=0x1f
CONFIG_ESC="a \\"quoted\\" \\\\ word"
# a comment
garbage line
CONFIG_A=n
CONFIG_UNKNOWN_TO_ANY_TREE=y\r
"""


def test_values_header_and_warnings(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(SAMPLE)
    dot = read_dotconfig(path)
    assert dot.header_version == "7.2.13" and dot.arch == "x86"
    assert dot.values["B"] == "m" and dot.values["C"] == "n" and dot.values["NUM"] == "0x1f"
    assert dot.values["ESC"] == 'a "quoted" \\ word'
    assert dot.values["CC_VERSION_TEXT"] == "gcc (Debian 14.2.0-19) 14.2.0"
    assert dot.values["A"] == "n"  # the last assignment wins
    assert dot.values["UNKNOWN_TO_ANY_TREE"] == "y"  # \r stripped, unknown accepted
    assert list(dot.raw)[-2:] == ["A", "UNKNOWN_TO_ANY_TREE"]  # order of last assignments
    assert dot.lines["A"] == 13
    assert any(":12: unexpected data" in w for w in dot.warnings)
    assert any(":13: override" in w for w in dot.warnings)


@pytest.mark.parametrize(
    ("data", "line"),
    [(b"CONFIG_A=y\n\x00\x01\x02", 2), (b"CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=\xff\n", 3)],
)
def test_binary_input_is_an_error_with_line(tmp_path: Path, data: bytes, line: int) -> None:
    path = tmp_path / "config"
    path.write_bytes(data)
    with pytest.raises(KpolicyError) as info:
        read_dotconfig(path)
    assert info.value.line == line and info.value.file == str(path)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(KpolicyError, match="not found"):
        read_dotconfig(tmp_path / "nope")
    with pytest.raises(KpolicyError, match="directory"):
        read_dotconfig(tmp_path)
