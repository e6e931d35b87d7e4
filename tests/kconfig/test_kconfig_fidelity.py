"""kpolicy's olddefconfig against the kernel's own `make olddefconfig`, symbol by symbol.

For each case the tool-derived answers come once from make's own output (--toolchain-from) and
once from running the commands (--allow-shell, with the same host gcc make used). No symbol is
excluded: every value, and the whole text of the .config, must be identical.

The reference is the kernel's own `make olddefconfig`, run once per input and session: each tree
gets one O= build directory in the session's temporary area (the fetched trees are never written
to); scripts/kconfig/conf is built there on the first run and reused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Optional

import pytest
from conftest import real_configs, real_tree

from kpolicy.cache import Cache
from kpolicy.kconfig import (
    default_toolchain,
    load_model,
    read_dotconfig,
    shell_toolchain,
    toolchain_from_config,
    write_dotconfig,
)
from kpolicy.kconfig.parse import parse_kconfig
from kpolicy.tree import open_tree

MakeOlddefconfig = Callable[[Path, str, Optional[Path]], Path]


def make_env() -> dict[str, str]:
    """The environment for make: the caller's, minus anything that would change Kconfig."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KCONFIG_", "CONFIG_")) and k not in ("ARCH", "CROSS_COMPILE", "O")}
    env["LC_ALL"] = "C"
    return env


@pytest.fixture(scope="session")
def session_dir() -> Iterator[Path]:
    """A private directory for the session (pytest's own basetemp is pruned by concurrent runs)."""
    with tempfile.TemporaryDirectory(prefix="kpolicy-kconfig-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def make_olddefconfig(session_dir: Path) -> MakeOlddefconfig:
    """make_olddefconfig(tree, arch, input or None) -> path of the .config make wrote."""
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.skip("make and gcc are needed for the reference olddefconfig")
    base = session_dir / "make"
    base.mkdir()
    done: dict[tuple[str, str, str], Path] = {}

    def run(tree: Path, arch: str, config: Optional[Path]) -> Path:
        key = (str(tree), arch, str(config))
        if key in done:
            return done[key]
        objdir = base / f"O-{tree.name}"
        objdir.mkdir(exist_ok=True)
        dot = objdir / ".config"
        # No input: an empty .config, so make does not fall back to /boot/config-* or a
        # defconfig (KCONFIG_DEFCONFIG_LIST); every symbol takes its default.
        dot.write_bytes(config.read_bytes() if config is not None else b"")
        env = make_env()
        env["TMPDIR"] = str(objdir)  # the compiler probes' files stay out of the shared /tmp
        proc = subprocess.run(["make", "-s", "-C", str(tree), f"O={objdir}", f"ARCH={arch}",
                               "olddefconfig"], env=env, capture_output=True, text=True,
                              timeout=900, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = base / f"{tree.name}-{arch}-{len(done)}.config"
        shutil.copy(dot, out)
        done[key] = out
        return out

    return run


# Symbols allowed to differ, with the reason. Empty: none differs today.
EXCLUDED: dict[str, str] = {}

# (version, ARCH, input): "tree:<path in the tree>", "debian:<file>", or None (no .config).
CASES = [
    ("7.2", "x86_64", "tree:arch/x86/configs/x86_64_defconfig"),
    ("7.2", "x86_64", None),
    ("7.2", "x86_64", "debian:config.amd64_none_amd64"),
    ("7.2", "arm64", "tree:arch/arm64/configs/defconfig"),
    ("7.2", "riscv", "tree:arch/riscv/configs/defconfig"),
    ("6.12", "x86_64", "tree:arch/x86/configs/x86_64_defconfig"),
    ("6.1", "x86_64", "tree:arch/x86/configs/x86_64_defconfig"),
]


def _input(version: str, spec: Optional[str]) -> Optional[Path]:
    if spec is None:
        return None
    kind, _, name = spec.partition(":")
    return (real_tree(version) / name) if kind == "tree" else (real_configs(version) / name)


@pytest.fixture(scope="session")
def kconfig_cache(session_dir: Path) -> Cache:
    return Cache(session_dir / "cache")


@pytest.mark.real
@pytest.mark.parametrize("mode", ["toolchain-from", "allow-shell"])
@pytest.mark.parametrize(("version", "arch", "spec"), CASES,
                         ids=[f"{v}-{a}-{(s or 'none').split('/')[-1]}" for v, a, s in CASES])
def test_olddefconfig_matches_make(version: str, arch: str, spec: Optional[str], mode: str,
                                   make_olddefconfig, kconfig_cache: Cache,  # type: ignore[no-untyped-def]
                                   tmp_path: Path) -> None:
    tree = real_tree(version)
    config = _input(version, spec)
    reference = make_olddefconfig(tree, arch, config)
    toolchain = (toolchain_from_config(reference) if mode == "toolchain-from"
                 else shell_toolchain())
    model = load_model(open_tree(tree), arch, config=config, toolchain=toolchain,
                       cache=kconfig_cache)
    ours = tmp_path / "ours.config"
    write_dotconfig(model, ours)
    want, got = read_dotconfig(reference).raw, read_dotconfig(ours).raw
    differ = {n: (got.get(n), want.get(n)) for n in set(want) | set(got)
              if got.get(n) != want.get(n) and n not in EXCLUDED}
    assert not differ, f"{len(differ)} symbols differ (ours, make's): {sorted(differ.items())[:20]}"
    assert len(want) > 1000
    assert ours.read_text() == reference.read_text()


@pytest.mark.real
def test_known_answers_on_7_2(make_olddefconfig, kconfig_cache: Cache) -> None:  # type: ignore[no-untyped-def]
    """The two facts the project started from, checked against make's output too."""
    tree = real_tree("7.2")
    debian = real_configs("7.2") / "config.amd64_none_amd64"
    reference = read_dotconfig(make_olddefconfig(tree, "x86_64", debian)).values
    model = load_model(open_tree(tree), "x86_64", config=debian,
                       toolchain=toolchain_from_config(make_olddefconfig(tree, "x86_64", debian)),
                       cache=kconfig_cache)
    assert model.value("PAGE_BLOCK_MAX_ORDER") == reference["PAGE_BLOCK_MAX_ORDER"] == "10"
    assert model.value("CHECKPOINT_RESTORE") == "y"
    assert model.value("MSEAL_SYSTEM_MAPPINGS") == "n"
    from kpolicy.kconfig import explain

    why = explain(model, "MSEAL_SYSTEM_MAPPINGS")
    blocking = [c for c in why.clauses if c.kind == "depends on" and c.blocking]
    assert [c.text for c in blocking] == ["!CHECKPOINT_RESTORE"]
    assert blocking[0].location.file == "security/Kconfig"


@pytest.mark.real
def test_fixture_tree_matches_c_conf(make_olddefconfig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The compat fixture evaluated by the kernel's conf binary (built from 7.2) and by us."""
    tree = real_tree("7.2")
    reference = make_olddefconfig(tree, "x86_64", None)
    conf = reference.parent / f"O-{tree.name}" / "scripts" / "kconfig" / "conf"
    assert conf.is_file()
    fixture = tmp_path / "compat"
    shutil.copytree(Path(__file__).resolve().parent.parent / "fixtures" / "kconfig" / "compat",
                    fixture)
    for name, config in [("none", ""), ("set", "CONFIG_OLD_NAME=y\nCONFIG_BAR=y\n"
                                               "CONFIG_MODE_A=y\nCONFIG_MODULES=y\n")]:
        out = tmp_path / f"c-{name}.config"
        out.write_text(config)
        env = make_env()
        env.update({"srctree": str(fixture), "ARCH": "x86_64", "SRCARCH": "x86",
                    "KERNELVERSION": "7.2.13", "CC": "gcc", "LD": "ld",
                    "KCONFIG_CONFIG": str(out), "CC_VERSION_TEXT": "gcc",
                    "TMPDIR": str(tmp_path)})
        proc = subprocess.run([str(conf), "--olddefconfig", "Kconfig"], cwd=fixture, env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        given = tmp_path / f"in-{name}.config"
        given.write_text(config)
        model = load_model(open_tree(fixture), "x86_64", config=given,
                           toolchain=toolchain_from_config(out))
        ours = tmp_path / f"ours-{name}.config"
        write_dotconfig(model, ours)
        assert ours.read_text() == out.read_text()


@pytest.mark.real
@pytest.mark.slow
def test_every_arch_of_7_2_parses() -> None:
    """Every arch/ directory of 7.2 parses (parse only: evaluation is arch-independent code)."""
    tree = open_tree(real_tree("7.2"))
    sizes = {}
    for srcarch in tree.srcarches:
        parsed = parse_kconfig(tree, srcarch, default_toolchain())
        sizes[srcarch] = len(parsed.symbols)
        assert parsed.mainmenu == f"Linux/{srcarch} {tree.version} Kernel Configuration"
        assert any(s.is_modules for s in parsed.symbols.values())
    assert len(sizes) >= 20 and min(sizes.values()) > 15000


def test_worker_processes_parse_real_arches_as_one_process_does(tmp_path: Path) -> None:
    from kpolicy.kconfig import load_models

    tree = open_tree(real_tree())
    arches = ("arm64", "riscv", "x86_64")
    forked = load_models(tree, arches, cache=Cache(tmp_path / "cache"), jobs=2)
    for arch in arches:
        alone = load_model(tree, arch)
        mine = forked[arch]
        assert (mine.values, mine.written, mine.warnings) == (
            alone.values, alone.written, alone.warnings), arch
        assert sorted(mine.symbols) == sorted(alone.symbols), arch
