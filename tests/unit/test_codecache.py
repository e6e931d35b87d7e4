"""kpolicy.codecache: dataclass methods compiled by one run are reused by the next, behave as
freshly compiled ones, and a code file kpolicy did not seal is never loaded."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path

# A fresh interpreter per run: dataclasses is patched once per process.
PROBE = """
import sys
from pathlib import Path
from kpolicy import codecache
cache = codecache.install(Path(sys.argv[1]))
loaded = len(cache.codes)
from dataclasses import dataclass, field, replace

@dataclass(frozen=True)
class Point:
    x: int
    y: "list[int]" = field(default_factory=list)

p = Point(1)
assert p == Point(1, []) and p != Point(2) and replace(p, x=3).x == 3
assert repr(p) == "Point(x=1, y=[])", repr(p)
try:
    p.x = 2
except Exception as exc:
    assert type(exc).__name__ == "FrozenInstanceError"
else:
    raise AssertionError("a frozen dataclass was assigned to")
# annotations stay what the class says (not strings from this module's compiler flags)
assert Point.__init__.__annotations__["x"] is int, Point.__init__.__annotations__
compiled = cache.compiled
codecache.save()
print(loaded, compiled)
"""


def run(cache: Path) -> tuple[int, int]:
    done = subprocess.run([sys.executable, "-c", PROBE, str(cache)], capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert done.returncode == 0, done.stderr
    loaded, compiled = done.stdout.split()
    return int(loaded), int(compiled)


def test_second_run_compiles_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "kpolicy"
    loaded, compiled = run(cache)
    assert loaded == 0 and compiled >= 5  # __init__, __repr__, __eq__, __hash__, __setattr__...
    assert run(cache) == (compiled, 0)


def test_unsealed_code_is_not_loaded(tmp_path: Path) -> None:
    cache = tmp_path / "kpolicy"
    run(cache)
    (code_file,) = (cache / "dataclass-code").iterdir()
    # what someone able to write the cache but not read its key could plant: bare marshal
    code_file.write_bytes(marshal.dumps({"x": compile("raise SystemExit(7)", "<s>", "exec")}))
    loaded, compiled = run(cache)
    assert loaded == 0 and compiled > 0
    # and a sealed file whose payload is tampered with
    data = bytearray(code_file.read_bytes())
    data[-1] ^= 1
    code_file.write_bytes(bytes(data))
    assert run(cache)[0] == 0


def test_no_cache_writes_no_code(tmp_path: Path) -> None:
    from kpolicy.cli import _code_cache_root

    assert _code_cache_root(["resolve", "--no-cache"]) is None
    assert _code_cache_root(["resolve", "--cache-dir", str(tmp_path)]) == tmp_path
    assert _code_cache_root(["resolve", f"--cache-dir={tmp_path}"]) == tmp_path
