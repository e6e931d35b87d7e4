"""The cache: atomic, checked on load, rebuilt when damaged, safe under concurrent writers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kpolicy.cache import MAGIC, Cache, content_key, shipped_files_key


def test_get_or_build_builds_once(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    calls: list[int] = []

    def build() -> dict[str, int]:
        calls.append(1)
        return {"a": 1}

    assert cache.get_or_build("ns", "k", build, dict) == {"a": 1}
    assert cache.get_or_build("ns", "k", build, dict) == {"a": 1}
    assert len(calls) == 1


def test_disabled_cache_always_builds_and_writes_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path, enabled=False)
    calls: list[int] = []
    for _ in range(2):
        cache.get_or_build("ns", "k", lambda: calls.append(1) or 5, int)
    assert len(calls) == 2
    assert not any(tmp_path.iterdir())


def _entry(tmp_path: Path) -> Path:
    (entry,) = (tmp_path / "ns").glob("*.pickle")
    return entry


def test_an_entry_of_another_type_is_rebuilt(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.store("ns", "k", "a string, where a tuple belongs")  # checksum-valid, wrong type
    assert cache.get_or_build("ns", "k", lambda: ("built",), tuple) == ("built",)
    assert cache.load("ns", "k") == ("built",)


def test_truncated_entry_is_rebuilt(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.get_or_build("ns", "k", lambda: list(range(1000)), list)
    entry = _entry(tmp_path)
    entry.write_bytes(entry.read_bytes()[:-10])
    assert cache.load("ns", "k") is None
    assert cache.get_or_build("ns", "k", lambda: "rebuilt", str) == "rebuilt"


def test_flipped_byte_and_garbage_are_rebuilt(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.store("ns", "k", "value")
    entry = _entry(tmp_path)
    data = bytearray(entry.read_bytes())
    data[-1] ^= 0xFF
    entry.write_bytes(bytes(data))
    assert cache.load("ns", "k") is None
    entry.write_bytes(MAGIC + b"\0" * 40)
    assert cache.load("ns", "k") is None
    entry.write_bytes(b"")
    assert cache.load("ns", "k") is None


def test_unwritable_cache_dir_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = Cache(blocker)
    assert cache.get_or_build("ns", "k", lambda: 3, int) == 3


def test_content_key_distinguishes_parts() -> None:
    assert content_key("a", "b") != content_key("ab")
    assert content_key(b"x", 1) == content_key(b"x", 1)
    assert content_key(("x", 1)) != content_key(("x", 2))


_WRITER = """
import sys
from pathlib import Path
from kpolicy.cache import Cache
cache = Cache(Path(sys.argv[1]))
payload = [sys.argv[2]] * 20000
for i in range(40):
    cache.store("ns", "shared", payload)
    got = cache.load("ns", "shared")
    assert got is None or (isinstance(got, list) and len(got) == 20000), "torn read"
"""


def test_concurrent_writers_never_leave_a_torn_entry(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), tag])
        for tag in ("one", "two", "three")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    value = Cache(tmp_path).load("ns", "shared")
    assert isinstance(value, list) and len(value) == 20000 and value[0] in ("one", "two", "three")
    assert [p.name for p in (tmp_path / "ns").iterdir()] == [_entry(tmp_path).name]


def test_entries_unused_for_weeks_are_pruned_and_used_ones_kept(tmp_path: Path) -> None:
    import os
    import time

    cache = Cache(tmp_path)
    cache.store("ns", "old", 1)
    cache.store("ns", "used", 2)
    weeks_ago = time.time() - 30 * 86400
    for name in ("old", "used"):
        os.utime(tmp_path / "ns" / f"{name}.pickle", (weeks_ago, weeks_ago))
    assert Cache(tmp_path).load("ns", "used") == 2  # a hit marks the entry as used
    Cache(tmp_path).store("ns", "new", 3)
    assert sorted(p.stem for p in (tmp_path / "ns").iterdir()) == ["new", "used"]


def test_source_fingerprint_follows_edits(tmp_path: Path) -> None:
    import os

    from kpolicy.cache import source_fingerprint

    pkg = tmp_path / "kpolicy"
    (pkg / "sub").mkdir(parents=True)
    mod = pkg / "sub" / "mod.py"
    mod.write_text("X = 1\n")
    os.utime(mod, ns=(1_000_000_000, 1_000_000_000))
    first = source_fingerprint(pkg)
    assert source_fingerprint(pkg) == first
    mod.write_text("X = 2\n")  # same size, another time: an edit
    os.utime(mod, ns=(2_000_000_000, 2_000_000_000))
    edited = source_fingerprint(pkg)
    assert edited != first
    (pkg / "new.py").write_text("")
    assert source_fingerprint(pkg) != edited
    (pkg / "new.py").unlink()
    (tmp_path / "grammars").mkdir()
    (tmp_path / "grammars" / "g.lark").write_text("start: 'a'\n")
    assert source_fingerprint(pkg) != edited


def test_shipped_files_key_changes_with_any_edit_of_a_file(tmp_path: Path) -> None:
    """rules/ and the bundled models are keyed by name, size and mtime (not read on a warm
    run): an edit of the same size, a new file and a removed one each change the key; a file
    of another suffix does not."""
    (tmp_path / "a.toml").write_text("x = 1\n")
    (tmp_path / "b.toml").write_text("y = 2\n")
    first = shipped_files_key(tmp_path, ".toml")
    assert [n for n, _size, _mtime in first] == ["a.toml", "b.toml"]
    (tmp_path / "notes.txt").write_text("ignored")
    assert shipped_files_key(tmp_path, ".toml") == first
    st = (tmp_path / "a.toml").stat()
    (tmp_path / "a.toml").write_text("x = 3\n")  # same size
    os.utime(tmp_path / "a.toml", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    edited = shipped_files_key(tmp_path, ".toml")
    assert edited != first
    (tmp_path / "c.toml").write_text("")
    assert shipped_files_key(tmp_path, ".toml") != edited
    (tmp_path / "c.toml").unlink()
    assert shipped_files_key(tmp_path, ".toml") == edited


def test_processes_creating_the_key_at_once_all_read_the_same_whole_key(tmp_path: Path) -> None:
    """Forked workers on a new cache create its key together: each reads the one key that got
    there first, never a key file still being written (which turned that worker's cache off)."""
    import functools

    from kpolicy.cache import key_path, secret_key
    from kpolicy.forked import start_forked

    for round_ in range(10):
        root = tmp_path / f"cache{round_}"
        secret_key.cache_clear()
        workers = [start_forked(functools.partial(secret_key, root)) for _ in range(6)]
        keys = {w.result() for w in workers}
        assert keys == {key_path(root).read_bytes()} and None not in keys
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(root.name)) \
            == [f"{root.name}.key"]  # no temporary key file left
