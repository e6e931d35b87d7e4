"""The lint findings cache (kpolicy.lint.resultcache): a warm lint of an unchanged tree is served
from the cache without the analysis, and an in-place edit of one file of each kind a lint reads
(Kconfig, kbuild Makefile, C registration, kernel-parameters.txt) or a new file is seen at once.
Each edit keeps its directory's mtime, so only the file's own stat can reveal it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kpolicy import analysis
from kpolicy.cache import Cache
from kpolicy.lint import engine

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "params_c"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "tree"))


class Counted:
    """engine.analyse, counting its calls (a cache hit makes none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = analysis.analyse

        def analyse(*args: object, **kw: object) -> object:
            self.calls += 1
            return real(*args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(engine, "analyse", analyse)


def _messages(tree: Path, cache: Cache) -> set[str]:
    return {f"{f.rule}: {f.message}" for f in engine.run_lint(tree, cache=cache).findings}


def _edit(path: Path, old: str, new: str) -> None:
    """Rewrite PATH in place (same inode, directory mtime untouched)."""
    directory = os.stat(path.parent).st_mtime_ns
    text = path.read_text()
    assert old in text
    with open(path, "r+") as f:
        f.write(text.replace(old, new, 1))
        f.truncate()
    assert os.stat(path.parent).st_mtime_ns == directory


def _append(path: Path, text: str) -> None:
    directory = os.stat(path.parent).st_mtime_ns
    with open(path, "a") as f:
        f.write(text)
    assert os.stat(path.parent).st_mtime_ns == directory


@pytest.fixture
def warm(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
         ) -> tuple[Cache, Counted, set[str]]:
    """A cache holding the tree's findings, and the analyse counter after that first run."""
    cache = Cache(tmp_path / "cache")
    counted = Counted(monkeypatch)
    first = _messages(tree, cache)
    assert counted.calls == 1
    return cache, counted, first


def test_an_unchanged_tree_is_answered_from_the_cache(
        tree: Path, warm: tuple[Cache, Counted, set[str]]) -> None:
    cache, counted, first = warm
    assert _messages(tree, cache) == first
    os.utime(tree / "Kconfig")  # a touch: the Kconfig file's digest is the same
    assert _messages(tree, cache) == first
    assert counted.calls == 1
    # what is cached is the findings before waivers: a waiver added now applies at once
    assert engine.run_lint(tree, cache=cache, select=["param-undocumented"]).findings
    assert counted.calls == 2  # other rules chosen: another entry


def test_a_c_registration_added_in_place_is_seen(
        tree: Path, warm: tuple[Cache, Counted, set[str]]) -> None:
    cache, counted, first = warm
    _append(tree / "kernel/policy.c",
            '\nstatic int __init kpnew(char *s) { return 0; }\nearly_param("kpnew", kpnew);\n')
    now = _messages(tree, cache)
    assert counted.calls == 2
    assert now - first == {"param-undocumented: kpnew: early_param registered here is not in "
                           "kernel-parameters.txt"}


@pytest.mark.parametrize(("rel", "added", "gone"), [
    ("Documentation/admin-guide/kernel-parameters.txt", "\n\tquietish\t[KNL] Quieter.\n",
     "param-undocumented: quietish: __setup registered here is not in kernel-parameters.txt"),
    ("Kconfig", "\nconfig THP_NEVER_DEFINED\n\tbool\n",
     "param-doc-default: thp_mode= says its default is CONFIG_THP_NEVER_DEFINED, which no "
     "Kconfig file defines"),
], ids=["kernel-parameters.txt", "Kconfig"])
def test_a_text_added_in_place_that_settles_a_finding_is_seen(
        tree: Path, warm: tuple[Cache, Counted, set[str]], rel: str, added: str,
        gone: str) -> None:
    cache, counted, first = warm
    assert gone in first
    _append(tree / rel, added)
    now = _messages(tree, cache)
    assert counted.calls == 2
    assert first - now == {gone}


def test_a_makefile_renaming_a_module_in_place_is_seen(
        tree: Path, warm: tuple[Cache, Counted, set[str]]) -> None:
    cache, counted, first = warm
    _edit(tree / "mm/Makefile", "+= zswap.o", "+= zsw.o\nzsw-y := zswap.o")
    now = _messages(tree, cache)
    assert counted.calls == 2
    assert any("zswap.enabled" in m for m in first - now)
    assert now - first == {"param-doc-orphan: zswap.enabled: documented, but no early_param, "
                           "__setup, core_param or module_param registers it"}


def test_a_new_file_is_seen(tree: Path, warm: tuple[Cache, Counted, set[str]]) -> None:
    cache, counted, first = warm
    (tree / "kernel/added.c").write_text(
        'static int __init kpadd(char *s) { return 0; }\nearly_param("kpadd", kpadd);\n')
    _edit(tree / "kernel/Makefile", "obj-y", "obj-y += added.o\nobj-y")
    now = _messages(tree, cache)
    assert counted.calls == 2
    assert any("kpadd" in m for m in now - first)


def test_no_cache_and_other_rules_dirs_do_not_share_entries(
        tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counted = Counted(monkeypatch)
    engine.run_lint(tree, cache=Cache(tmp_path / "c", enabled=False))
    engine.run_lint(tree, cache=Cache(tmp_path / "c", enabled=False))
    assert counted.calls == 2
