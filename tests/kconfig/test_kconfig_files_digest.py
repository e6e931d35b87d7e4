"""files_digest, which says whether a cached Kconfig model still holds: the same digest in any
read order, None for any changed or missing file, and the file changed last compared first
(the one a patch wrote into a scratch copy), so a miss does not read the unchanged files."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from kpolicy import treefs
from kpolicy.kconfig.parse import files_digest


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
