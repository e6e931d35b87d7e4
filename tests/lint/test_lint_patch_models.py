"""The Kconfig model of `lint --patch`'s scratch copy: parsed from the patched files (a patch
that adds a `source` line and the file it names included), never the unpatched tree's cached
model, and not stored (load_models' KEEP off), so the tree's own entry stays the one found."""

from __future__ import annotations

from pathlib import Path

import pytest
from kplint_testkit import make_tree

from kpolicy.cache import Cache
from kpolicy.kconfig import load
from kpolicy.lint.patchfile import Change
from kpolicy.lint.scratch import patched_tree
from kpolicy.tree import open_tree


def test_a_patch_sourcing_a_new_file_is_parsed_and_not_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = make_tree(tmp_path / "linux")
    cache = Cache(tmp_path / "cache")
    parses: list[Path] = []
    real = load.parse_kconfig

    def counting(tree: object, arch: str, toolchain: object) -> object:
        parses.append(tree.root)  # type: ignore[attr-defined]
        return real(tree, arch, toolchain)  # type: ignore[arg-type]

    monkeypatch.setattr(load, "parse_kconfig", counting)

    def symbols(root: Path, keep: bool = True) -> set[str]:
        return set(load.load_models(open_tree(root), ("x86_64",), cache=cache,
                                    keep=keep)["x86_64"].symbols)

    assert symbols(tree) == {"X86"} and len(parses) == 1
    arch = (tree / "arch/x86/Kconfig").read_bytes() + b'source "mm/Kconfig.extra"\n'
    changes = {"arch/x86/Kconfig": Change(arch),
               "mm/Kconfig.extra": Change(b"config EXTRA\n\tbool \"extra\"\n")}
    for _run in range(2):  # a model not kept: the same patch again is parsed again
        with patched_tree(tree, changes, tmp_path / "cache") as patched:
            assert symbols(patched, keep=False) == {"X86", "EXTRA"}
            assert parses[-1] == patched
    assert len(parses) == 3
    assert symbols(tree) == {"X86"} and len(parses) == 3  # the tree's own model, from the cache
