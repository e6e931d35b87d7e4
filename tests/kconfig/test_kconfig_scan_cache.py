"""kconfig.scan.defined_symbols keeps each Kconfig file's symbols in the per-file map
(kpolicy.filemap): a second run reads no Kconfig file, and a changed file, whether edited in
place or written by a patched scratch copy (kpolicy lint --patch), is read again, so a symbol
it adds is found."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kpolicy import treefs
from kpolicy.cache import Cache
from kpolicy.kconfig.scan import defined_symbols
from kpolicy.lint.patchfile import Change
from kpolicy.lint.scratch import patched_tree
from kpolicy.tree import open_tree

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "params_c"


class Reads:
    """The Kconfig files defined_symbols reads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files: list[str] = []
        read_text = treefs.read_text

        def counting(root: object, rel: str, **kwargs: object) -> str:
            if kwargs.get("what") == "Kconfig file":
                self.files.append(rel)
            return read_text(root, rel, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(treefs, "read_text", counting)

    def symbols(self, root: Path, cache: Cache) -> frozenset[str]:
        """defined_symbols of ROOT with CACHE, checked against a run without a cache."""
        self.files.clear()
        found = defined_symbols(open_tree(root), cache)
        read = list(self.files)
        assert found == defined_symbols(open_tree(root))
        self.files[:] = read
        return found


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(FIXTURE, root)
    (root / "mm" / "Kconfig").write_text("config MM_ONE\n\tbool\n\nmenuconfig MM_MENU\n\tbool\n")
    return root


def test_a_second_run_reads_no_kconfig_file(tree: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    reads, cache = Reads(monkeypatch), Cache(tmp_path / "cache")
    first = reads.symbols(tree, cache)
    assert {"MM_ONE", "MM_MENU"} <= first
    assert sorted(reads.files) == sorted(
        str(p.relative_to(tree)) for p in tree.rglob("Kconfig*"))
    assert reads.symbols(tree, cache) == first
    assert reads.files == []


def test_an_edited_kconfig_file_is_read_again(tree: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Also an edit that keeps the size (MM_ONE renamed MM_TWO): the stat still changes."""
    reads, cache = Reads(monkeypatch), Cache(tmp_path / "cache")
    reads.symbols(tree, cache)
    kconfig = tree / "mm" / "Kconfig"
    kconfig.write_text(kconfig.read_text().replace("MM_ONE", "MM_TWO"))
    found = reads.symbols(tree, cache)
    assert reads.files == ["mm/Kconfig"]
    assert "MM_TWO" in found and "MM_ONE" not in found


def test_a_patched_copy_reads_the_patched_kconfig_file_alone(
        tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lint --patch scratch copy links every other file: their entries hold; the patched
    one, written anew, is read, and the symbol the patch adds is found (the original tree's
    entry, read afterwards, still lacks it)."""
    reads, cache = Reads(monkeypatch), Cache(tmp_path / "cache")
    before = reads.symbols(tree, cache)
    text = (tree / "mm" / "Kconfig").read_bytes() + b"\nconfig MM_PATCHED\n\tbool\n"
    with patched_tree(tree, {"mm/Kconfig": Change(text)}, tmp_path / "cache") as patched:
        found = reads.symbols(patched, cache)
        assert reads.files == ["mm/Kconfig"]
    assert found == before | {"MM_PATCHED"}
    assert reads.symbols(tree, cache) == before
