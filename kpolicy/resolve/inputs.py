"""What resolve reads: a .config (or a model's defaults), a model (a file or the bundled one
nearest the config's version), and the running system's config, command line and machine."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from kpolicy.cache import Cache
from kpolicy.resolve.bundle import (
    DEFAULT_ARCH,
    bundled_arch,
    machine_arch,
    pick_bundled,
    read_model,
)
from kpolicy.resolve.features import Machine
from kpolicy.resolve.model import ResolveModel
from kpolicy.textio import decode_text, gunzip, read_bytes


@dataclass(frozen=True)
class ConfigInput:
    """A .config as resolve uses it: its values and what its header says."""

    path: Optional[str]  # None: the model's own Kconfig defaults
    values: Mapping[str, str]
    version: Optional[str]  # from the "Linux/<arch> <version> Kernel Configuration" header
    warnings: tuple[str, ...] = ()
    lines: Mapping[str, int] = field(default_factory=dict)  # line of each symbol's assignment
    srcarch: Optional[str] = None  # from the header too: "x86", "arm64"


def read_config(path: Path) -> ConfigInput:
    """The .config at PATH (plain, or gzip'd like /proc/config.gz); errors name the line."""
    from kpolicy.kconfig.dotconfig import parse_dotconfig

    data = read_bytes(path, what="kernel config")
    if data[:2] == b"\x1f\x8b":
        data = gunzip(data, file=path, what="kernel config")
    dot = parse_dotconfig(decode_text(data, file=path, what="kernel config"), file=str(path))
    return ConfigInput(
        str(path),
        dict(dot.values),
        dot.header_version,
        tuple(dot.warnings),
        dict(dot.lines),
        dot.arch,
    )


def defaults_config(model: ResolveModel) -> ConfigInput:
    """The model's Kconfig defaults standing in for a config."""
    return ConfigInput(None, model.kconfig.values, model.version)


def running_machine() -> Machine:
    """This machine's usable RAM (/proc/meminfo MemTotal) and Secure Boot state, where readable."""
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    secure = None
    for var in Path("/sys/firmware/efi/efivars").glob("SecureBoot-*"):
        with contextlib.suppress(OSError):
            secure = var.read_bytes()[-1:] == b"\x01"
    return Machine(ram_mib=ram, secure_boot=secure)


def running_system_inputs() -> tuple[Optional[Path], Optional[Path], list[str]]:
    """This machine's config (/proc/config.gz, /boot/config-$(uname -r)) and /proc/cmdline."""
    notes = []
    config: Optional[Path] = None
    for candidate in (Path("/proc/config.gz"), Path(f"/boot/config-{os.uname().release}")):
        if candidate.is_file():
            config = candidate
            break
    if config is None:
        notes.append(
            "no /proc/config.gz or /boot/config-$(uname -r): using the newest bundled "
            f"model's {running_arch()} Kconfig defaults"
        )
    cmdline = Path("/proc/cmdline")
    return config, (cmdline if cmdline.is_file() else None), notes


def running_arch() -> str:
    """The bundled models' ARCH for this machine (x86_64 when it is neither x86_64 nor arm64)."""
    return machine_arch(os.uname().machine) or DEFAULT_ARCH


def choose_model(
    config: Optional[ConfigInput], model_file: Optional[Path], cache: Optional[Cache] = None
) -> tuple[ResolveModel, list[str]]:
    """MODEL_FILE's model, else the bundled one of CONFIG's arch (from its header; without a
    config, this machine's) matching its version (warning if not exact); CACHE keeps models
    decoded."""
    if model_file is not None:
        return read_model(model_file, cache), []
    warnings = []
    arch = running_arch() if config is None else bundled_arch(config.srcarch)
    if arch is None:
        assert config is not None
        arch = DEFAULT_ARCH
        warnings.append(
            f"the config's header names {config.srcarch or 'no architecture'}, which has no "
            f"bundled model; using {arch}'s"
        )
    path, warning = pick_bundled(config.version if config else None, arch)
    model = read_model(path, cache)
    return model, warnings + ([warning] if warning else [])
