"""Bounded, validated input files and kernel-tree detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpolicy.errors import KpolicyError
from kpolicy.textio import atomic_write_bytes, read_text
from kpolicy.tree import open_tree


def test_read_text_errors_name_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"ok\nstill ok\nbad \xff byte\n")
    with pytest.raises(KpolicyError) as exc:
        read_text(f, what="config")
    assert str(exc.value) == f"{f}:3: error: config is not valid UTF-8 (byte 0xff)"
    f.write_bytes(b"a\n\nb\0c")
    with pytest.raises(KpolicyError, match=r":3: error: config contains a NUL byte"):
        read_text(f, what="config")


def test_read_text_refuses_missing_directories_and_huge(tmp_path: Path) -> None:
    with pytest.raises(KpolicyError, match="not found"):
        read_text(tmp_path / "nope")
    with pytest.raises(KpolicyError, match="is a directory"):
        read_text(tmp_path)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(KpolicyError, match="too large"):
        read_text(big, limit=1000)




def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["out"]


MAKEFILE_7_2 = "VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 13\nEXTRAVERSION = -rc1\n"


def _mini_tree(root: Path, makefile: str = MAKEFILE_7_2) -> Path:
    (root / "arch" / "x86").mkdir(parents=True)
    (root / "arch" / "x86" / "Kconfig").write_text("")
    (root / "arch" / "arm64").mkdir()
    (root / "arch" / "arm64" / "Kconfig").write_text("")
    (root / "Kconfig").write_text("")
    (root / "Makefile").write_text(makefile)
    return root


def test_open_tree_version_and_arches(tmp_path: Path) -> None:
    tree = open_tree(_mini_tree(tmp_path))
    assert tree.version == "7.2.13-rc1"
    assert tree.version_tuple == (7, 2, 13)
    assert tree.srcarches == ("arm64", "x86")
    assert tree.arches == ("arm64", "i386", "x86", "x86_64")
    assert tree.srcarch("x86_64") == "x86"
    with pytest.raises(KpolicyError, match=r"unknown arch 'mips'.*valid: arm64, i386, x86, x86_64"):
        tree.srcarch("mips")


def test_open_tree_rejects_non_trees(tmp_path: Path) -> None:
    with pytest.raises(KpolicyError, match="not found"):
        open_tree(tmp_path / "missing")
    with pytest.raises(KpolicyError, match="not a kernel source tree"):
        open_tree(tmp_path)
    _mini_tree(tmp_path, makefile="all:\n\techo hi\n")
    with pytest.raises(KpolicyError, match="no VERSION/PATCHLEVEL"):
        open_tree(tmp_path)


def test_atomic_write_to_a_device_writes_in_place() -> None:
    atomic_write_bytes("/dev/null", b"discarded")
    assert Path("/dev/null").is_char_device()
