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
from kpolicy.errors import KpolicyError
from kpolicy.resolve.bundle import (
    BUNDLED_ARCHES,
    DEFAULT_ARCH,
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
    header_arch: Optional[str] = None  # "x86" from the header line


# Each SRCARCH's own Kconfig symbol, set in every config of that architecture.
_ARCH_SYMBOLS = {
    "X86": "x86", "ARM64": "arm64", "ARM": "arm", "RISCV": "riscv", "PPC": "powerpc",
    "S390": "s390", "MIPS": "mips", "LOONGARCH": "loongarch", "SPARC": "sparc", "PARISC": "parisc",
    "ALPHA": "alpha", "M68K": "m68k", "SUPERH": "sh", "UML": "um", "XTENSA": "xtensa",
    "OPENRISC": "openrisc", "MICROBLAZE": "microblaze", "HEXAGON": "hexagon", "CSKY": "csky",
    "NIOS2": "nios2", "ARC": "arc",
}


def config_arch(config: ConfigInput) -> Optional[tuple[str, str]]:
    """(SRCARCH, how it was read) of CONFIG: its header's "Linux/<arch>", else the architecture
    symbol it sets (CONFIG_X86=y, CONFIG_ARM64=y, ...); None when neither says. x86 is told
    apart by CONFIG_64BIT: "x86_64" or "i386", or just "x86" when the config does not say."""
    srcarch, how = None, ""
    if config.header_arch:
        srcarch, how = config.header_arch, f"its header names Linux/{config.header_arch}"
    else:
        for sym, arch in _ARCH_SYMBOLS.items():
            if config.values.get(sym) == "y":
                srcarch, how = arch, f"it sets CONFIG_{sym}=y"
                break
    if srcarch is None:
        return None
    if srcarch == "x86":
        # a fragment may leave CONFIG_64BIT out: then only the x86 family is known
        if config.values.get("64BIT") == "y" or config.values.get("X86_64") == "y":
            return "x86_64", how + ", CONFIG_64BIT=y"
        if config.values.get("64BIT") == "n":
            return "i386", how + ", CONFIG_64BIT is not set"
    return srcarch, how


def check_arch(config: ConfigInput, model: ResolveModel) -> None:
    """Stop (KpolicyError, exit status 2) when CONFIG is for another architecture than MODEL."""
    found = config_arch(config)
    if found is None:
        return
    arch, how = found
    model_arch = model.arch if model.srcarch == "x86" else model.srcarch
    if arch in (model_arch, model.srcarch):
        return
    raise KpolicyError(
        f"the config is for {arch} ({how}) but the model is Linux {model.version} {model.arch}; "
        f"kpolicy ships {' and '.join(BUNDLED_ARCHES)} models only: make one with "
        f"`kpolicy model build --tree DIR "
        f"--arch {arch} -o FILE` and pass --model FILE, or resolve with --tree DIR --arch {arch}",
        file=config.path,
    )


def tree_arch(arch: Optional[str], config_path: Optional[Path]) -> str:
    """The ARCH to evaluate a tree for: --arch when given, else the config's own (an arm64
    .config is evaluated for arm64), else x86_64."""
    if arch:
        return arch
    found = config_arch(read_config(config_path)) if config_path is not None else None
    if found is None or found[0] == "x86":
        return "x86_64"
    return found[0]


def read_config(path: Path) -> ConfigInput:
    """The .config at PATH (plain, or gzip'd like /proc/config.gz); errors name the line."""
    from kpolicy.kconfig.dotconfig import parse_dotconfig

    data = read_bytes(path, what="kernel config")
    if data[:2] == b"\x1f\x8b":
        data = gunzip(data, file=path, what="kernel config")
    dot = parse_dotconfig(decode_text(data, file=path, what="kernel config"), file=str(path))
    return ConfigInput(
        str(path), dict(dot.values), dot.header_version, tuple(dot.warnings), dict(dot.lines),
        dot.arch,
    )


def defaults_config(model: ResolveModel) -> ConfigInput:
    """The model's Kconfig defaults standing in for a config."""
    return ConfigInput(None, model.kconfig.values, model.version)


def running_machine() -> Machine:
    """This machine's usable RAM (/proc/meminfo MemTotal), Secure Boot state and the CPU facts
    /proc/cpuinfo tells (kpolicy.resolve.cpuinfo), where readable."""
    from kpolicy.resolve.cpuinfo import cpu_facts

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
    facts = None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        facts = cpu_facts(Path("/proc/cpuinfo").read_text())
    return Machine(ram_mib=ram, secure_boot=secure,
                   cpu_features=None if facts is None else facts.present,
                   cpu_known=None if facts is None else facts.known)


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
        model = read_model(model_file, cache)
        if config is not None:
            check_arch(config, model)
        return model, []
    found = config_arch(config) if config is not None else None
    arch = running_arch() if found is None else found[0]
    # an arch without bundled models is refused by check_arch, naming the one picked here
    path, warning = pick_bundled(
        config.version if config else None, arch if arch in BUNDLED_ARCHES else DEFAULT_ARCH
    )
    model = read_model(path, cache)
    if config is not None:
        check_arch(config, model)
    return model, [warning] if warning else []
