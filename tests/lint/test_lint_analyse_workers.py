"""analyse() with worker processes (issue #18): the boot-parameter catalog is built by a worker
of its own beside the Kconfig parses; the analysis it gives, and the error it raises, are those
of one process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kpolicy.analysis import analyse
from kpolicy.cache import Cache
from kpolicy.errors import KpolicyError
from kpolicy.tree import open_tree

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "params_c"
ARCHES = ("i386", "x86_64")
DOC = "Documentation/admin-guide/kernel-parameters.txt"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "tree"))


@pytest.mark.parametrize("cached", [True, False])
def test_workers_give_the_analysis_of_one_process(tree: Path, tmp_path: Path,
                                                  cached: bool) -> None:
    alone = analyse(open_tree(tree), ARCHES, Cache(tmp_path / "alone"), jobs=1)
    forked = analyse(open_tree(tree), ARCHES, Cache(tmp_path / "forked", enabled=cached), jobs=2)
    assert alone.catalog.registrations and alone.catalog.docs  # something to compare
    assert forked.catalog == alone.catalog
    assert forked.families == alone.families
    assert {a: dict(m.values) for a, m in forked.models.items()} == \
        {a: dict(m.values) for a, m in alone.models.items()}


def test_an_error_of_the_catalog_worker_is_raised_by_the_caller(tree: Path,
                                                                tmp_path: Path) -> None:
    doc = tree / DOC
    doc.write_bytes(doc.read_bytes() + b"\tbroken\0entry\n")
    errors = []
    for jobs in (1, 2):
        with pytest.raises(KpolicyError) as info:
            analyse(open_tree(tree), ARCHES, Cache(tmp_path / f"cache{jobs}"), jobs=jobs)
        errors.append((str(info.value), info.value.file, info.value.line))
    assert errors[0][1] == str(doc)
    assert errors[1] == errors[0]
