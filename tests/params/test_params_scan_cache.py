"""The registration scan's per-file cache (kpolicy.params.scan): after a change, only the C files
whose inputs changed are read or scanned again, and the result equals a scan from scratch."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

import pytest

from kpolicy.cache import Cache
from kpolicy.params import scan
from kpolicy.params.kbuild import BuildInfo, KbuildMap
from kpolicy.tree import open_tree

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "params_c"


class Counter:
    """Which files the scan sifted (read for keywords) and scanned (registrations)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sifted: list[str] = []
        self.scanned: list[str] = []
        self.kbuild_reads = 0
        sift, scan_files, read_kbuild = scan._sift, scan._scan_files, scan._read_kbuild

        def counting_sift(files: list[scan._SourceFile]) -> list[tuple[str, scan._Sifted]]:
            self.sifted += [f.rel for f in files]
            return sift(files)

        def counting_scan(root: Path, infos: dict[str, BuildInfo],
                          files: list[scan._SourceFile]) -> list[scan._FileScan]:
            self.scanned += [f.rel for f in files]
            return scan_files(root, infos, files)

        def counting_read_kbuild(root: Path, makefiles: dict[str, list[str]],
                                 included: dict[str, Optional[bytes]]) -> KbuildMap:
            self.kbuild_reads += 1
            return read_kbuild(root, makefiles, included)

        monkeypatch.setattr(scan, "_read_kbuild", counting_read_kbuild)
        monkeypatch.setattr(scan, "_sift", counting_sift)
        monkeypatch.setattr(scan, "_scan_files", counting_scan)

    def reset(self) -> None:
        self.sifted.clear()
        self.scanned.clear()
        self.kbuild_reads = 0


@pytest.fixture
def tree_and_cache(tmp_path: Path) -> tuple[Path, Cache]:
    root = tmp_path / "tree"
    shutil.copytree(FIXTURE, root)
    return root, Cache(tmp_path / "cache")


def _rescan(root: Path, cache: Cache, counter: Counter) -> scan._Scan:
    """Scan ROOT with CACHE, checking the result against a scan from scratch."""
    counter.reset()
    result = scan.scan_all(open_tree(root), cache)
    counted = (list(counter.sifted), list(counter.scanned), counter.kbuild_reads)
    assert result == scan.scan_all(open_tree(root))  # no cache: everything read anew
    counter.sifted[:], counter.scanned[:], counter.kbuild_reads = counted
    return result


def _names(result: scan._Scan) -> set[str]:
    return {r.name for r in result[0]}


def _names_added(root: Path, cache: Cache, counter: Counter, rel: str, text: str) -> set[str]:
    """The registration names appending TEXT to file REL adds, REL's scan being cached."""
    before = _rescan(root, cache, counter)
    with open(root / rel, "a") as f:
        f.write(text)
    return _names(_rescan(root, cache, counter)) - _names(before)


def test_a_first_scan_reads_every_file_and_a_second_none(
        tree_and_cache: tuple[Path, Cache], monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = tree_and_cache
    counter = Counter(monkeypatch)
    first = _rescan(root, cache, counter)
    c_files = {str(p.relative_to(root)) for p in root.rglob("*.c")}
    assert set(counter.sifted) == c_files
    assert "kernel/params.c" in counter.scanned and "mm/util.c" not in counter.scanned
    assert _rescan(root, cache, counter) == first
    assert counter.sifted == counter.scanned == []
    # the whole-tree entry gone, the per-file one still spares every file
    for entry in (cache.root / "params-registrations").iterdir():
        entry.unlink()
    assert _rescan(root, cache, counter) == first
    assert counter.sifted == counter.scanned == []


def test_an_edited_file_alone_is_read_and_scanned_again(
        tree_and_cache: tuple[Path, Cache], monkeypatch: pytest.MonkeyPatch) -> None:
    counter = Counter(monkeypatch)
    assert _names_added(*tree_and_cache, counter, "mm/util.c",
                        'early_param("added_later", util_setup);\n') == {"added_later"}
    assert counter.sifted == counter.scanned == ["mm/util.c"]
    assert counter.kbuild_reads == 0  # no kbuild file changed: the BuildInfo entry holds


def test_same_bytes_under_a_new_stat_are_read_but_not_scanned(
        tree_and_cache: tuple[Path, Cache], monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = tree_and_cache
    counter = Counter(monkeypatch)
    before = _rescan(root, cache, counter)
    path = root / "kernel" / "params.c"
    data = path.read_bytes()
    path.unlink()  # a new inode and mtime, as kpolicy lint --patch's link farm writes a file
    path.write_bytes(data)
    os.utime(path, ns=(1, 1))
    assert _rescan(root, cache, counter) == before
    assert (counter.sifted, counter.scanned) == (["kernel/params.c"], [])


def test_a_local_header_change_rescans_its_includer(
        tree_and_cache: tuple[Path, Cache], monkeypatch: pytest.MonkeyPatch) -> None:
    counter = Counter(monkeypatch)
    assert _names_added(*tree_and_cache, counter, "kernel/params_local.h",
                        "module_param(also_from_header, uint, 0644);\n") == {
        "params.also_from_header"}
    assert (counter.sifted, counter.scanned) == ([], ["kernel/params.c"])


def test_an_include_header_wrapper_change_rescans_its_users(
        tree_and_cache: tuple[Path, Cache], monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = tree_and_cache
    counter = Counter(monkeypatch)
    _rescan(root, cache, counter)
    header = root / "include" / "linux" / "torture.h"
    header.write_text(header.read_text().replace("0444", "0644").replace(
        "module_param(name, type, 0644);", "module_param_named(name##_x, name, type, 0644);"))
    after = _rescan(root, cache, counter)
    assert (counter.sifted, counter.scanned) == ([], ["kernel/torture_test.c"])
    assert any(r.name.endswith("_x") and r.location.file == "kernel/torture_test.c"
               for r in after[0])


def test_a_header_that_appears_later_rescans_the_file_that_looked_for_it(
        tree_and_cache: tuple[Path, Cache], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _cache = tree_and_cache
    counter = Counter(monkeypatch)
    (root / "kernel" / "later.c").write_text('#include "later.h"\nearly_param("now", f);\n')
    assert _names_added(*tree_and_cache, counter, "kernel/later.h",
                        'early_param("from_later_h", g);\n') == {"from_later_h"}
    assert (counter.sifted, counter.scanned) == ([], ["kernel/later.c"])


def test_a_makefile_change_rescans_the_files_whose_build_info_changed(
        tree_and_cache: tuple[Path, Cache], monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = tree_and_cache
    counter = Counter(monkeypatch)
    _rescan(root, cache, counter)
    makefile = root / "kernel" / "Makefile"
    makefile.write_text(makefile.read_text().replace(
        "obj-$(CONFIG_TORTURE_TEST) += torture_test.o", "obj-$(CONFIG_OTHER) += torture_test.o"))
    after = _rescan(root, cache, counter)
    assert (counter.sifted, counter.scanned) == ([], ["kernel/torture_test.c"])
    assert counter.kbuild_reads == 1
    torture = [r for r in after[0] if r.location.file == "kernel/torture_test.c"]
    assert torture and all(r.built_if == "OTHER" for r in torture)


def test_an_includer_change_moves_the_build_of_an_included_c_file(
        tree_and_cache: tuple[Path, Cache], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _cache = tree_and_cache
    counter = Counter(monkeypatch)
    (root / "mm" / "inner.c").write_text('module_param(inner_knob, int, 0444);\n')
    assert _names_added(*tree_and_cache, counter, "mm/zswap.c", '#include "inner.c"\n') == {
        "zswap.inner_knob"}
    # zswap.c is read again; inner.c, unchanged, is scanned again as part of zswap's build
    assert counter.sifted == ["mm/zswap.c"]
    assert "mm/inner.c" in counter.scanned


def test_a_file_a_makefile_includes_is_part_of_the_build_info(
        tree_and_cache: tuple[Path, Cache], monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = tree_and_cache
    counter = Counter(monkeypatch)
    makefile = root / "kernel" / "Makefile"
    makefile.write_text(makefile.read_text().replace(
        "obj-$(CONFIG_TORTURE_TEST) += torture_test.o", "include $(srctree)/kernel/objs.inc"))
    included = root / "kernel" / "objs.inc"  # named like no kbuild file: only the include says
    included.write_text("obj-$(CONFIG_TORTURE_TEST) += torture_test.o\n")
    _rescan(root, cache, counter)
    assert {r.built_if for r in _rescan(root, cache, counter)[0]
            if r.location.file == "kernel/torture_test.c"} == {"TORTURE_TEST"}
    included.write_text("obj-$(CONFIG_ELSEWHERE) += torture_test.o\n")
    after = _rescan(root, cache, counter)
    assert (counter.sifted, counter.scanned) == ([], ["kernel/torture_test.c"])
    assert {r.built_if for r in after[0]
            if r.location.file == "kernel/torture_test.c"} == {"ELSEWHERE"}
