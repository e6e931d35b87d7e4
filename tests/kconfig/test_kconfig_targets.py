"""kpolicy's config targets against the kernel's own `make <target>`, symbol by symbol.

One O= build directory per tree and arch (scripts/kconfig/conf is built there once and reused by
every target); the tool-derived answers come from make's own output (--toolchain-from), as in
test_kconfig_fidelity: its allyesconfig for the all*config targets, its olddefconfig of Debian's
config for the others. Inputs: the Debian config of the same version (savedefconfig) and of the
version before (listnewconfig: "what is new for my old config").
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Optional

import pytest
from conftest import real_configs, real_tree
from test_kconfig_fidelity import make_env

from kpolicy.cache import Cache
from kpolicy.kconfig.dotconfig import parse_dotconfig
from kpolicy.kconfig.targets import run_target
from kpolicy.kconfig.toolchain import toolchain_from_config
from kpolicy.tree import open_tree

MakeTarget = Callable[[str, str, str, Optional[Path]], tuple[str, Path]]

# (version, ARCH, Debian arch of the configs, version before)
TREES = [("7.2", "x86_64", "amd64", "6.12"), ("7.2", "arm64", "arm64", "6.12"),
         ("6.12", "x86_64", "amd64", "6.1")]
ALL = ("alldefconfig", "allnoconfig", "allyesconfig", "allmodconfig")
def _debian(version: str, arch: str) -> Path:
    debian = next(d for v, a, d, _ in TREES if a == arch)
    return real_configs(version, arch) / f"config.{debian}_none_{debian}"


per_tree = pytest.mark.parametrize(("version", "arch", "debian", "before"), TREES,
                                   ids=[f"{v}-{a}" for v, a, _, _ in TREES])


@pytest.fixture(scope="module")
def make_target() -> Iterator[MakeTarget]:
    """make_target(version, arch, target, input) -> (make's stdout, the file make wrote)."""
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.skip("make and gcc are needed for the reference targets")
    with tempfile.TemporaryDirectory(prefix="kpolicy-targets-") as tmp:
        done: dict[tuple[str, str, str, str], tuple[str, Path]] = {}

        def run(version: str, arch: str, target: str, config: Optional[Path]) -> tuple[str, Path]:
            key = (version, arch, target, str(config))
            if key in done:
                return done[key]
            objdir = Path(tmp) / f"O-{version}-{arch}"
            objdir.mkdir(exist_ok=True)
            (objdir / ".config").write_bytes(config.read_bytes() if config else b"")
            env = make_env()
            env["TMPDIR"] = str(objdir)
            proc = subprocess.run(["make", "-s", "-C", str(real_tree(version)), f"O={objdir}",
                                   f"ARCH={arch}", target], env=env, capture_output=True,
                                  text=True, timeout=900, check=False)
            assert proc.returncode == 0, proc.stderr[-2000:]
            written = objdir / ("defconfig" if target == "savedefconfig" else ".config")
            out = Path(tmp) / f"{version}-{arch}-{target}-{len(done)}"
            shutil.copy(written, out)
            done[key] = (proc.stdout, out)
            return done[key]

        yield run


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Cache:
    return Cache(tmp_path_factory.mktemp("targets-cache"))


def _both(version: str, arch: str, target: str, config: Optional[Path], make_target: MakeTarget,
          cache: Cache) -> tuple[str, str, str]:
    """(make's stdout, the file make wrote, kpolicy's text) for TARGET from CONFIG."""
    stdout, written = make_target(version, arch, target, config)
    return stdout, written.read_text(), _ours(version, arch, target, config, make_target, cache)


def _ours(version: str, arch: str, target: str, config: Optional[Path], make_target: MakeTarget,
          cache: Cache) -> str:
    # The tool-derived answers come from a .config where the symbols asking the toolchain are
    # visible, so written: make's allyesconfig for the all*config targets (its choices keep
    # their defaults, so e.g. DEBUG_INFO is off), make's olddefconfig of Debian's config for
    # those reading a config.
    _, reference = make_target(version, arch, "allyesconfig", None) if target in ALL else \
        make_target(version, arch, "olddefconfig", _debian(version, arch))
    return run_target(open_tree(real_tree(version)), arch, target, config=config,
                      toolchain=toolchain_from_config(reference), cache=cache).text


def _differ(ours: str, theirs: str) -> list[tuple[str, Optional[str], Optional[str]]]:
    got, want = parse_dotconfig(ours, "ours").raw, parse_dotconfig(theirs, "make").raw
    return sorted((n, got.get(n), want.get(n)) for n in set(got) | set(want)
                  if got.get(n) != want.get(n))


@pytest.mark.real
@pytest.mark.parametrize("target", [*ALL, "savedefconfig"])
@per_tree
def test_targets_match_make(version: str, arch: str, debian: str, before: str, target: str,
                            make_target: MakeTarget, cache: Cache) -> None:
    """all*config from nothing, savedefconfig from Debian's config: the same file as make's."""
    config = real_configs(version, arch) / f"config.{debian}_none_{debian}" \
        if target == "savedefconfig" else None
    _, theirs, ours = _both(version, arch, target, config, make_target, cache)
    assert not _differ(ours, theirs), _differ(ours, theirs)[:20]
    assert ours == theirs
    assert len(parse_dotconfig(theirs, "make").raw) > 100


@pytest.mark.real
@per_tree
def test_listnewconfig_matches_make(version: str, arch: str, debian: str, before: str,
                                    make_target: MakeTarget, cache: Cache) -> None:
    """The config of the version before: the symbols and values make lists, hardening first."""
    config = real_configs(before, arch) / f"config.{debian}_none_{debian}"
    stdout, _, ours = _both(version, arch, "listnewconfig", config, make_target, cache)
    want = [line for line in stdout.splitlines() if line.startswith("CONFIG_")]
    got = [line.split("\t")[0] for line in ours.splitlines()]
    assert sorted(got) == sorted(want)
    assert len(want) > 20
    marks = [line.split("\t# ")[1].split(",")[0] for line in ours.splitlines()]
    assert marks == sorted(marks, key=lambda m: m != "hardening") and "hardening" in marks
    assert all(":" in line.split("\t# ")[1] for line in ours.splitlines())
