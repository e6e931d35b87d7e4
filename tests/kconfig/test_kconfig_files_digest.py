"""files_digest, which says whether a cached Kconfig model still holds: the same digest in any
read order, None for any changed or missing file or any `source` pattern that now matches other
files, and the file changed last compared first (the one a patch wrote into a scratch copy), so
a miss does not read the unchanged files."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from kpolicy import treefs
from kpolicy.cache import Cache
from kpolicy.kconfig.load import load_model
from kpolicy.kconfig.parse import SOURCE_PATTERN, files_digest, matches_digest, parse_kconfig
from kpolicy.kconfig.toolchain import default_toolchain
from kpolicy.tree import open_tree


def test_the_file_changed_last_is_compared_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = [f"d{i}/Kconfig" for i in range(20)]
    for rel in names:
        (tmp_path / rel).parent.mkdir()
        (tmp_path / rel).write_text(f"config {rel[:-8].upper()}\n\tbool\n")
    files = tuple((rel, hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest())
                  for rel in names)
    reads: list[str] = []
    read_bytes = treefs.read_bytes

    def counting(root: object, rel: str, **kwargs: object) -> bytes:
        reads.append(rel)
        return read_bytes(root, rel, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(treefs, "read_bytes", counting)
    digest = files_digest(tmp_path, files)
    assert digest is not None and sorted(reads) == sorted(names)
    assert files_digest(tmp_path, files, {rel: d for rel, d in files}) == digest
    time.sleep(0.05)  # a later timestamp tick
    (tmp_path / "d7/Kconfig").write_text("config CHANGED\n\tbool\n")
    reads.clear()
    assert files_digest(tmp_path, files) is None
    assert reads == ["d7/Kconfig"]
    (tmp_path / "d3/Kconfig").unlink()
    assert files_digest(tmp_path, tuple(f for f in files if f[0] != "d7/Kconfig")) is None


def _tree(root: Path) -> Path:
    files = {
        "Makefile": "VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 0\nEXTRAVERSION =\n",
        "Kconfig": 'mainmenu "test"\nsource "arch/$(SRCARCH)/Kconfig"\n'
                   'source "drivers/*/Kconfig"\nosource "local/Kconfig"\n',
        "arch/x86/Kconfig": "config X86\n\tdef_bool y\n",
        "drivers/a/Kconfig": "config A\n\tdef_bool y\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize("added", ["drivers/b/Kconfig", "local/Kconfig"])
def test_a_file_a_source_pattern_now_matches_makes_the_cached_model_stale(
        tmp_path: Path, added: str) -> None:
    """A file added where a `source` glob or an `osource` of an absent file finds it changes no
    file the parse read; the cached model must still not be served (it lacks the new symbol)."""
    tree = open_tree(_tree(tmp_path / "tree"))
    cache = Cache(tmp_path / "cache")
    assert "NEW" not in load_model(tree, "x86_64", cache=cache).symbols
    assert "A" in load_model(tree, "x86_64", cache=cache).symbols  # served from the cache
    (tmp_path / "tree" / added).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "tree" / added).write_text("config NEW\n\tdef_bool y\n")
    model = load_model(tree, "x86_64", cache=cache)
    assert model.values["NEW"] == "y"
    (tmp_path / "tree" / added).unlink()  # and back: the first model holds again
    assert "NEW" not in load_model(tree, "x86_64", cache=cache).symbols


def test_a_source_pattern_is_recorded_with_its_matches(tmp_path: Path) -> None:
    parsed = parse_kconfig(open_tree(_tree(tmp_path)), "x86_64", default_toolchain())
    recorded = dict(parsed.files)
    assert recorded[SOURCE_PATTERN + "drivers/*/Kconfig"] == matches_digest(["drivers/a/Kconfig"])
    assert recorded[SOURCE_PATTERN + "local/Kconfig"] == matches_digest([])
    assert SOURCE_PATTERN + "arch/x86/Kconfig" not in recorded  # read, so its content is listed
    assert "arch/x86/Kconfig" in recorded and files_digest(tmp_path, parsed.files) is not None
