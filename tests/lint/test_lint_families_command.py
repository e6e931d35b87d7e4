"""`kpolicy families` on a fixture tree: the text map, JSON, filters and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kpolicy.cli import main
from kpolicy.errors import KpolicyError
from kpolicy.families.discover import discover_families

TREE = Path(__file__).resolve().parent.parent / "fixtures" / "rules" / "boot-default-shape"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["families", "--tree", str(TREE), "--no-cache", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_map_has_one_block_per_family(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert code == 0
    blocks = [b for b in out.split("\n\n") if b.strip()]
    titles = [b.splitlines()[0] for b in blocks]
    assert titles == ["BAR_GUARD", "BAZ_GUARD", "FOO_GUARD", "QUX_GUARD"]
    qux = blocks[3]
    assert "capability   HAVE_ARCH_QUX_GUARD  (selected by x86)" in qux
    assert "boot default QUX_GUARD_DEFAULT  (bool)" in qux
    assert "static keys  qux_guard_key" in qux
    assert "static_key  qux_guard_key: initial state bound to CONFIG_QUX_GUARD_DEFAULT" in qux
    assert "arch        x86: arch/x86 selects HAVE_ARCH_QUX_GUARD  arch/x86/Kconfig:" in qux


def test_json_and_filter(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--format", "json", "--family", "baz")
    assert code == 0
    data = json.loads(out)
    assert [f["name"] for f in data] == ["BAZ_GUARD"]
    assert data[0]["static_keys"] == ["baz_guard_key"]
    assert all(lk["location"] is None or ":" in lk["location"] for lk in data[0]["links"])


def test_bad_input_is_one_error_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["families", "--tree", str(tmp_path / "missing"), "--no-cache"])
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1
    code, _, err = run(capsys, "--arch", "vax")
    assert code == 2 and "unknown arch 'vax'" in err


def test_malformed_declaration_names_its_file() -> None:
    from kpolicy.params.model import Catalog

    decl = {"families": {"bad": {"family": {"X": {"params": "not-a-list"}}}}}
    with pytest.raises(KpolicyError) as err:
        discover_families({}, Catalog("7.2", (), (), ()), decl)
    assert err.value.file == "rules/families/bad.toml" and "params" in err.value.message


def test_all_arches_and_workers_give_the_same_map(capsys: pytest.CaptureFixture[str]) -> None:
    _code, one_arch, _ = run(capsys, "--format", "json", "--jobs", "1")
    code, every_arch, _ = run(capsys, "--format", "json", "--all-arches", "--jobs", "2")
    assert code == 0 and json.loads(every_arch) == json.loads(one_arch)  # i386 adds nothing here
