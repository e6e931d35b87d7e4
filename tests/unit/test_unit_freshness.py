"""kpolicy.freshness: the stat index of a tree and its check, in place and in a forked child."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import kpolicy.freshness as freshness
from kpolicy.freshness import FreshnessCheck, is_fresh
from kpolicy.resolve.treecache import build_index
from kpolicy.tree import KernelTree, open_tree

COMPAT = Path(__file__).resolve().parent.parent / "fixtures" / "kconfig" / "compat"


@pytest.fixture
def tree(tmp_path: Path) -> KernelTree:
    root = tmp_path / "linux"
    shutil.copytree(COMPAT, root)
    return open_tree(root)


def test_the_forked_check_agrees_with_the_check_in_place(tree: KernelTree) -> None:
    index = build_index(tree, set())
    assert is_fresh(tree, index)
    assert FreshnessCheck(tree, index).verdict()
    kconfig = tree.root / "Kconfig"
    dir_times = (tree.root.stat().st_atime_ns, tree.root.stat().st_mtime_ns)
    kconfig.write_text(kconfig.read_text() + "\nconfig EDITED\n\tbool\n")
    os.utime(tree.root, ns=dir_times)
    assert not is_fresh(tree, index)
    check = FreshnessCheck(tree, index)
    assert not check.verdict()
    assert not check.verdict(), "a second verdict differs from the first"


def test_a_check_whose_child_dies_calls_the_tree_stale(
        tree: KernelTree, monkeypatch: pytest.MonkeyPatch) -> None:
    index = build_index(tree, set())

    def dies(*_args: object) -> bool:
        os._exit(3)  # as a child killed half-way

    monkeypatch.setattr(freshness, "is_fresh", dies)
    assert not FreshnessCheck(tree, index).verdict()
