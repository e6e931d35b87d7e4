"""A warm `resolve --tree` (kpolicy.resolve.treecache) answers exactly what the uncached analysis
answers, and notices an edited, an added and a removed tree file, on a small fixture tree."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import kpolicy.resolve.build as build_module
from kpolicy.cli import main

COMPAT = Path(__file__).resolve().parent.parent / "fixtures" / "kconfig" / "compat"
CMDLINE = "foo bar=1 baz"


def _registers(*names: str) -> str:
    return "".join(f"static int __init {n}_setup(char *s)\n{{\n\treturn 1;\n}}\n"
                   f'early_param("{n}", {n}_setup);\n' for n in names)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The compat Kconfig fixture plus a kernel-parameters.txt and one C file registering foo."""
    root = tmp_path / "linux"
    shutil.copytree(COMPAT, root)
    docs = root / "Documentation" / "admin-guide"
    docs.mkdir(parents=True)
    (docs / "kernel-parameters.txt").write_text("\tfoo=\t\t[KNL] Enable foo.\n\n")
    with (root / "Makefile").open("a") as f:
        f.write("obj-y += kernel/\n")
    (root / "kernel").mkdir()
    (root / "kernel" / "Makefile").write_text("obj-y += foo.o baz.o\n")
    (root / "kernel" / "foo.c").write_text(_registers("foo"))
    return root


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each run of the tree analysis (a cache miss)."""
    calls: list[str] = []
    real = build_module.build_resolve_model_and_sources

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(str(args[0]))
        return real(*args, **kw)

    monkeypatch.setattr(build_module, "build_resolve_model_and_sources", counting)
    return calls


def resolve(tree: Path, config: Path, cache: Path | None,
            capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    opts = ["--no-cache"] if cache is None else ["--cache-dir", str(cache)]
    code = main(["resolve", "--tree", str(tree), "--arch", "x86_64", "--config", str(config),
                 "--cmdline", CMDLINE, "--format", "json", *opts])
    out = capsys.readouterr().out
    assert code == 0
    answer: dict[str, Any] = json.loads(out)
    return answer


def test_warm_equals_uncached_and_notices_changes(
        tree: Path, tmp_path: Path, builds: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    config.write_text("# Linux/x86 7.2.13 Kernel Configuration\nCONFIG_64BIT=y\n")
    cache = tmp_path / "cache"

    def both() -> dict[str, Any]:
        """The cached answer, checked against the uncached one."""
        cached = resolve(tree, config, cache, capsys)
        assert cached == resolve(tree, config, None, capsys)
        return cached

    first = both()
    assert sorted(first["unknown"]) == ["bar=1", "baz"]
    runs = len(builds)
    assert resolve(tree, config, cache, capsys) == first
    assert len(builds) == runs, "a warm run analysed the tree again"

    # the same content under a new mtime: the digest fallback keeps it warm
    foo = tree / "kernel" / "foo.c"
    os.utime(foo, ns=(foo.stat().st_atime_ns, foo.stat().st_mtime_ns + 10**9))
    assert resolve(tree, config, cache, capsys) == first
    assert len(builds) == runs, "a touched, unchanged file made the cache miss"

    # an in-place edit of a file the model came from, its directory's mtime kept
    kernel = tree / "kernel"
    dir_times = (kernel.stat().st_atime_ns, kernel.stat().st_mtime_ns)
    foo.write_text(_registers("foo", "bar"))
    os.utime(kernel, ns=dir_times)
    edited = both()
    assert edited["unknown"] == ["baz"]

    # an added file (its directory's mtime changes)
    (kernel / "baz.c").write_text(_registers("baz"))
    added = both()
    assert added["unknown"] == []

    # a removed file
    (kernel / "baz.c").unlink()
    assert both()["unknown"] == ["baz"]

    # an edited Kconfig file changes the evaluation of the same .config
    with (tree / "arch" / "x86" / "Kconfig").open("a") as f:
        f.write("\nconfig NEWSYM\n\tdef_bool y\n")
    both()

    # another .config: its own evaluation, on the warm model
    runs = len(builds)
    config.write_text("# Linux/x86 7.2.13 Kernel Configuration\nCONFIG_64BIT=y\nCONFIG_NOSUCH=y\n")
    other = resolve(tree, config, cache, capsys)
    assert len(builds) == runs
    assert other == resolve(tree, config, None, capsys)
    assert any("NOSUCH" in w for w in other["warnings"])
    assert not any("NOSUCH" in w for w in first["warnings"])


def test_the_model_watches_the_documents_that_document_its_parameters(
        tree: Path, tmp_path: Path) -> None:
    """A registration documented in a subsystem document (catalog.doc_mentions) makes that
    document one of the files a cached model watches, like kernel-parameters.txt."""
    from kpolicy.cache import Cache

    (tree / "kernel" / "foo.c").write_text(_registers("foo", "bar"))
    net = tree / "Documentation" / "networking"
    net.mkdir()
    (net / "bar.rst").write_text("Boot with bar=1 to turn bar on.\n")
    (net / "other.rst").write_text("Nothing to see.\n")
    _, sources = build_module.build_resolve_model_and_sources(
        tree, "x86_64", (), Cache(tmp_path / "cache"))
    assert "Documentation/networking/bar.rst" in sources
    assert "Documentation/networking/other.rst" not in sources
    assert "Documentation/admin-guide/kernel-parameters.txt" in sources


def test_a_new_config_on_a_changed_tree_is_evaluated_on_the_tree_as_it_is(
        tree: Path, tmp_path: Path, builds: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """The cached model is used before its freshness is known; a .config not evaluated before
    waits for the verdict, so a changed tree is analysed again and its evaluation is not kept
    under the old tree's fingerprint."""
    config = tmp_path / "config"
    config.write_text("# Linux/x86 7.2.13 Kernel Configuration\nCONFIG_64BIT=y\n")
    cache = tmp_path / "cache"
    resolve(tree, config, cache, capsys)
    runs = len(builds)
    kconfig = tree / "arch" / "x86" / "Kconfig"
    original = kconfig.read_text()
    kconfig.write_text(original + "\nconfig NEWSYM\n\tbool \"new\"\n")
    config.write_text("# Linux/x86 7.2.13 Kernel Configuration\nCONFIG_64BIT=y\n"
                      "CONFIG_NEWSYM=y\n")
    answer = resolve(tree, config, cache, capsys)
    assert len(builds) == runs + 1, "the changed tree was not analysed again"
    assert resolve(tree, config, cache, capsys) == answer
    assert len(builds) == runs + 1, "the new model and evaluation were not kept"
    assert answer == resolve(tree, config, None, capsys)
    assert not any("NEWSYM" in w for w in answer["warnings"])

    # back as it was (the old fingerprint): NEWSYM is unknown again, whatever was evaluated
    # while the cached model's freshness was being checked
    kconfig.write_text(original)
    reverted = resolve(tree, config, cache, capsys)
    assert reverted == resolve(tree, config, None, capsys)
    assert any("NEWSYM" in w for w in reverted["warnings"])
