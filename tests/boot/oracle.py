"""Boot oracle: boot a real kernel under qemu with a busybox initramfs and observe what it did.

Two targets share it: Debian's 7.2 cloud-amd64 kernel on qemu-system-x86_64 (cases.toml,
observed.json) and its cloud-arm64 kernel on qemu-system-aarch64 -M virt (cases-arm64.toml,
observed-arm64.json), each with a busybox of its own architecture.

Used by scripts/boot-oracle (which records tests/boot/observed.json) and by the live boot test
(which re-observes every case and compares).  The initramfs /init prints hex dumps of its own
argv, envp and /proc/cmdline (so empty strings, spaces and quotes survive), the whole dmesg and
the sysfs/procfs values we care about between `@@KP-BEGIN <name>` / `@@KP-END <name>` markers,
then powers the machine off.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

BOOT_DIR = Path(__file__).resolve().parent
CASES_FILE = BOOT_DIR / "cases.toml"
OBSERVED_FILE = BOOT_DIR / "observed.json"
# The sysctl cases: booted on both Debian 7.2 kernels, every sysctl of
# rules/sysctls/security.toml read.
SYSCTL_CASES_FILE = BOOT_DIR / "sysctl_cases.toml"
SYSCTL_OBSERVED_FILE = BOOT_DIR / "sysctl_observed.json"
SYSCTL_RULES = BOOT_DIR.parent.parent / "rules" / "sysctls" / "security.toml"
# flavour -> the config Debian builds it from
SYSCTL_KERNELS = {
    "cloud-amd64": "config.amd64_none_cloud-amd64",
    "amd64": "config.amd64_none_amd64",
}
SCHEMA_VERSION = 1
CONFIG_NAME = "config.amd64_none_cloud-amd64"

# Everything the harness itself adds to the command line, always first.  panic=-1 makes a
# panicking kernel reboot at once, and -no-reboot turns that reboot into qemu exiting.
HARNESS_PREFIX = "console=ttyS0 panic=-1"
DEFAULT_MEM_MIB = 768
BOOT_TIMEOUT_S = 90.0
# Failures of the emulated machine on a slow or overloaded host, not of the command line:
# TCG can miss the IO-APIC timer check.  Such a boot is retried; so is a timed-out one.
HOST_FLAKES = ("IO-APIC + timer doesn't work",)
BOOT_ATTEMPTS = 3
# what the i386 probe program exits with when it runs
IA32_STATUS = 42
# what the i386 vDSO probe exits with: the kernel gave it AT_SYSINFO_EHDR (a 32-bit vDSO), or not
IA32_VDSO_STATUS = 43
# envp entries the kernel always puts first; the record leaves them out.
KERNEL_ENVP = ("HOME=/", "TERM=linux")

# Files read on every boot, and the feature each one reports.
FEATURE_FILES = {
    "/sys/kernel/security/lockdown": "lockdown",
    "/sys/kernel/mm/transparent_hugepage/enabled": "transparent_hugepage",
    "/proc/sys/kernel/randomize_va_space": "randomize_va_space",
    "/proc/sys/kernel/hung_task_panic": "hung_task_panic",
}
INT_FEATURES = ("randomize_va_space", "hung_task_panic")
# Built-in module parameters read on every boot (bool "Y"/"N" values).
FEATURE_PARAMS = ("zswap.enabled", "module.sig_enforce", "page_alloc.shuffle")

INIT_SCRIPT = """#!/bin/sh
B=/bin/busybox
# Keep the kernel quiet on the console from here on, so our output is not interleaved.
$B dmesg -n 1
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
section() { echo "@@KP-BEGIN $1"; shift; "$@"; echo "@@KP-END"; }
section argv $B od -An -tx1 -v /proc/1/cmdline
section envp $B od -An -tx1 -v /proc/1/environ
section proc_cmdline $B od -An -tx1 -v /proc/cmdline
section dmesg $B dmesg
section files $B grep -H '' %(files)s
section params $B grep -r '' /sys/module/*/parameters 2>/dev/null
section sysctl $B grep -r '' /proc/sys/kernel /proc/sys/vm 2>/dev/null
section security_sysctls $B grep -H '' %(sysctls)s 2>/dev/null
section vulnerabilities $B grep -H '' /sys/devices/system/cpu/vulnerabilities/*
section kallsyms $B grep -m1 ' T _text$' /proc/kallsyms
$B mkdir -p /dbg
section debugfs $B sh -c '/bin/busybox mount -t debugfs debugfs /dbg 2>/dev/null; echo rc=$?'
section pressure $B ls /proc/pressure 2>/dev/null
section ia32 $B sh -c '/bin/ia32 2>/dev/null; echo rc=$?'
section smt $B grep -H '' /sys/devices/system/cpu/smt/control /sys/devices/system/cpu/smt/active
section lsm $B sh -c '/bin/busybox cat /sys/kernel/security/lsm; echo'
section ia32vdso $B sh -c '/bin/ia32vdso 2>/dev/null; echo rc=$?'
section cpuflags $B grep -m1 '^flags' /proc/cpuinfo
section procmem $B sh -c 'a=$(/bin/busybox head -n1 /proc/self/maps | /bin/busybox cut -d- -f1)
o=$(/bin/busybox dd if=/init of=/proc/self/mem bs=1 count=1 seek=$((0x$a)) conv=notrunc 2>&1)
r=$?; echo "at=$a $o" | /bin/busybox tail -n1; echo rc=$r'
section iommu_groups $B grep -H '' /sys/kernel/iommu_groups/*/type 2>/dev/null
%(extra)secho "@@KP-DONE"
$B poweroff -f
"""

# Sections only the arm64 target's /init prints: the hwcaps of /proc/cpuinfo. (Every /init
# prints the vulnerabilities files and kallsyms' _text; arm64 records them on every case.)
ARM64_SECTIONS = """section cpuinfo $B grep -m1 '^Features' /proc/cpuinfo
"""


@dataclass(frozen=True)
class Target:
    """One kernel to boot: its qemu, console, default machine and CPU, config and records."""

    arch: str
    qemu: str
    apt_package: str
    console: str
    config_name: str
    cases_file: Path
    observed_file: Path
    machine: str | None = None  # qemu -M (None: qemu's default)
    cpu: str | None = None  # qemu -cpu (None: qemu's default)
    extra_sections: str = ""
    # Where the kernel is linked to run: kallsyms' _text there means no KASLR offset.
    link_text: int | None = None
    # Seconds before a boot counts as hung (TCG on a loaded 2-core host is slow).
    timeout: float = BOOT_TIMEOUT_S

    @property
    def harness_prefix(self) -> str:
        return f"console={self.console} panic=-1"


X86_64 = Target(
    "x86_64",
    "qemu-system-x86_64",
    "qemu-system-x86",
    "ttyS0",
    CONFIG_NAME,
    CASES_FILE,
    OBSERVED_FILE,
)
ARM64 = Target(
    "arm64",
    "qemu-system-aarch64",
    "qemu-system-arm",
    "ttyAMA0",
    "config.arm64_none_cloud-arm64",
    BOOT_DIR / "cases-arm64.toml",
    BOOT_DIR / "observed-arm64.json",
    machine="virt",
    cpu="max",
    extra_sections=ARM64_SECTIONS,
    link_text=0xFFFF800080000000,
    # an aarch64 boot costs ~11 s of CPU (kpti=1 about twice that): room for a shared host
    timeout=300.0,
)
TARGETS = {t.arch: t for t in (X86_64, ARM64)}


@dataclass(frozen=True)
class Case:
    """One command line to boot: id, the case's own part of the command line, why it exists."""

    id: str
    cmdline: str
    purpose: str
    mem: int = DEFAULT_MEM_MIB
    # Extra values to record: "mod.p" for /sys/module/<mod>/parameters/<p>, and
    # "sysctl.kernel.x" / "sysctl.vm.x" for /proc/sys/<kernel|vm>/x.
    params: tuple[str, ...] = ()
    # qemu -cpu model (None: the target's; x86: qemu's default, which the kernel sees as
    # unaffected by most bugs)
    cpu: str | None = None
    # record the hardening observations (vulnerabilities, kaslr, debugfs, psi, kfence, ia32)
    hardening: bool = False
    # which Debian kernel boots it: "cloud-amd64" (the record's 7.2 kernel), "amd64" (generic
    # 7.2) or "cloud-amd64-<version>" (an older version's cloud kernel: 6.1, 6.12); an arm64
    # case boots the target's cloud-arm64 kernel
    flavour: str = "cloud-amd64"
    target: Target = X86_64
    machine: str | None = None  # qemu -M for this case (None: the target's)
    # qemu -smp for this case (e.g. "2,sockets=1,cores=1,threads=2": two SMT siblings); a case
    # with it also records the SMT state (/sys/devices/system/cpu/smt/control and active)
    smp: str | None = None
    # extra observations (names of PROBES) this case records; opt-in, so adding a probe
    # leaves every existing record as it is
    probes: tuple[str, ...] = ()
    # extra qemu -device arguments (e.g. "intel-iommu,intremap=off" on machine = "q35")
    devices: tuple[str, ...] = ()

    @property
    def full_cmdline(self) -> str:
        """The exact string passed to qemu -append (harness prefix, then the case)."""
        prefix = self.target.harness_prefix
        return f"{prefix} {self.cmdline}" if self.cmdline else prefix


def security_sysctls(path: Path = SYSCTL_RULES) -> tuple[str, ...]:
    """The dotted paths of rules/sysctls/security.toml, sorted (each read on every boot)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return tuple(sorted(e["path"] for e in data["sysctl"]))


def sysctl_file(path: str) -> str:
    """/proc/sys's file for the dotted sysctl PATH."""
    return "/proc/sys/" + path.replace(".", "/")


def load_cases(path: Path | None = None, target: Target = X86_64) -> list[Case]:
    """Cases from TARGET's cases file (or PATH), in file order; ids must be unique."""
    path = path or target.cases_file
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    cases = []
    for raw in data.get("case", []):
        unknown = set(raw) - {"id", "cmdline", "purpose", "mem", "params", "cpu", "hardening",
                                  "flavour", "machine", "smp", "probes",
                                  "devices"}
        if unknown:
            raise ValueError(f"{path}: case {raw.get('id')!r}: unknown keys {sorted(unknown)}")
        bad_probes = sorted(set(raw.get("probes", ())) - set(PROBES))
        if bad_probes:
            raise ValueError(f"{path}: case {raw.get('id')!r}: unknown probes {bad_probes}")
        cases.append(
            Case(
                id=raw["id"],
                cmdline=raw["cmdline"],
                purpose=raw["purpose"],
                mem=int(raw.get("mem", DEFAULT_MEM_MIB)),
                params=tuple(raw.get("params", ())),
                cpu=raw.get("cpu"),
                hardening=bool(raw.get("hardening", False)),
                flavour=raw.get("flavour", "cloud-amd64"),
                target=target,
                machine=raw.get("machine"),
                smp=raw.get("smp"),
                probes=tuple(raw.get("probes", ())),
                devices=tuple(raw.get("devices", ())),
            )
        )
    ids = [c.id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"{path}: duplicate case ids {dupes}")
    return cases


# --- initramfs ------------------------------------------------------------------------------


def _cpio_entry(
    name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0), ino: int = 0
) -> bytes:
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


def _i386_elf(code: bytes) -> bytes:
    """A static i386 ELF executable of one segment holding CODE, which starts at once."""
    base = 0x08048000
    size = 52 + 32 + len(code)
    ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, base + 84, 52, 0, 0, 52, 32, 1, 0,
                                 0, 0)
    phdr = struct.pack("<IIIIIIII", 1, 0, base, base, size, size, 5, 0x1000)
    return header + phdr + code


def ia32_program(status: int = IA32_STATUS) -> bytes:
    """A static i386 ELF executable that only calls exit(STATUS) through int 0x80: it runs (and
    the shell sees STATUS) only where the kernel's 32-bit emulation is on."""
    return _i386_elf(bytes([0xB8, 1, 0, 0, 0, 0xBB, status, 0, 0, 0, 0xCD, 0x80]))


def ia32_vdso_program() -> bytes:
    """A static i386 ELF executable that walks its auxiliary vector (past argv and envp on the
    initial stack) and exits IA32_VDSO_STATUS when it finds AT_SYSINFO_EHDR (33: the kernel
    mapped the 32-bit vDSO, ARCH_DLINFO_IA32), IA32_STATUS when it does not."""
    code = bytes([
        0x89, 0xE6,                    # mov %esp,%esi
        0xAD,                          # lods: argc
        0x8D, 0x74, 0x86, 0x04,        # lea 4(%esi,%eax,4),%esi: past argv[] and its NULL
        0xAD, 0x85, 0xC0, 0x75, 0xFB,  # 1: lods; test %eax,%eax; jnz 1b (envp[] and NULL)
        0xAD, 0x89, 0xC2, 0xAD,        # 2: lods (a_type) -> %edx; lods (a_val)
        0x85, 0xD2, 0x74, 0x0C,        # test %edx,%edx; jz 3f (AT_NULL)
        0x83, 0xFA, 0x21, 0x75, 0xF3,  # cmp $33,%edx; jne 2b
        0xBB, IA32_VDSO_STATUS, 0, 0, 0, 0xEB, 0x05,  # mov $43,%ebx; jmp 4f
        0xBB, IA32_STATUS, 0, 0, 0,    # 3: mov $42,%ebx
        0xB8, 1, 0, 0, 0, 0xCD, 0x80,  # 4: exit(%ebx)
    ])
    return _i386_elf(code)


def initramfs_bytes(busybox: Path = Path("/bin/busybox"), target: Target = X86_64) -> bytes:
    """A gzip'd newc cpio holding busybox, /dev/console and the observing /init (deterministic)."""
    script = INIT_SCRIPT % {
        "files": " ".join(FEATURE_FILES),
        "sysctls": " ".join(sysctl_file(p) for p in security_sysctls()),
        "extra": target.extra_sections,
    }
    entries = [
        ("dev", 0o040755, b"", (0, 0)),
        ("dev/console", 0o020600, b"", (5, 1)),
        ("proc", 0o040755, b"", (0, 0)),
        ("sys", 0o040755, b"", (0, 0)),
        ("bin", 0o040755, b"", (0, 0)),
        ("bin/busybox", 0o100755, busybox.read_bytes(), (0, 0)),
        ("bin/sh", 0o120777, b"busybox", (0, 0)),
        ("bin/ia32", 0o100755, ia32_program(), (0, 0)),
        ("bin/ia32vdso", 0o100755, ia32_vdso_program(), (0, 0)),
        ("init", 0o100755, script.encode(), (0, 0)),
    ]
    raw = b"".join(_cpio_entry(n, m, d, r, ino=i + 1) for i, (n, m, d, r) in enumerate(entries))
    raw += _cpio_entry("TRAILER!!!", 0)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw)
    return out.getvalue()


def build_initramfs(
    dest_dir: Path, target: Target = X86_64, busybox: Path = Path("/bin/busybox")
) -> Path:
    """Write TARGET's initramfs (with BUSYBOX, a binary of TARGET's arch) into DEST_DIR (once;
    reused if identical) and return its path."""
    data = initramfs_bytes(busybox, target)
    path = dest_dir / f"kpolicy-boot-initramfs-{target.arch}.cpio.gz"
    if not (path.is_file() and path.read_bytes() == data):
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


# --- booting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootResult:
    """The serial console of one boot and how long it took."""

    serial: str
    seconds: float
    timed_out: bool
    attempts: int = 1


def qemu_binary(target: Target = X86_64) -> str | None:
    """Path of TARGET's qemu-system-*, or None."""
    return shutil.which(target.qemu)


def boot(
    vmlinuz: Path,
    initramfs: Path,
    cmdline: str,
    mem: int = DEFAULT_MEM_MIB,
    timeout: float = BOOT_TIMEOUT_S,
    target: Target = X86_64,
    machine: str | None = None,
    cpu: str | None = None,
    smp: str | None = None,
    devices: Sequence[str] = (),
) -> BootResult:
    """Boot VMLINUZ with CMDLINE under TARGET's qemu (TCG), on MACHINE with CPU (default: the
    target's) and SMP (qemu -smp; default one CPU), and return its serial output."""
    qemu = qemu_binary(target)
    if qemu is None:
        raise RuntimeError(f"{target.qemu} not found (apt-get install {target.apt_package})")
    machine, cpu = machine or target.machine, cpu or target.cpu
    argv = [
        qemu,
        *(["-M", machine] if machine else []),
        "-accel",
        "tcg",
        "-m",
        str(mem),
        *(("-cpu", cpu) if cpu else ()),
        *(("-smp", smp) if smp else ()),
        *(arg for device in devices for arg in ("-device", device)),
        "-nographic",
        "-no-reboot",
        "-kernel",
        str(vmlinuz),
        "-initrd",
        str(initramfs),
        "-append",
        cmdline,
    ]
    start = time.monotonic()
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
        out, timed_out = proc.stdout, False
    except subprocess.TimeoutExpired as exc:
        out, timed_out = exc.stdout or b"", True
    serial = out.decode("utf-8", errors="backslashreplace").replace("\r", "")
    return BootResult(serial, time.monotonic() - start, timed_out)


# --- parsing --------------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\] ")
_UNKNOWN = re.compile(r'Unknown kernel command line parameters "(.*)", will be passed to user')
_MALFORMED = re.compile(r"Malformed early option '(.*)'$")
_INVALID = re.compile(r"Booting kernel: `(.*)' invalid for parameter `(.*)'$")
_OBSOLETE = re.compile(r"Parameter (.*) is obsolete, ignored$")
_PANIC = re.compile(r"(Kernel panic - not syncing: .*)$")
# Other kernel messages about the command line, kept verbatim (without timestamps).
_NOTES = re.compile(
    r"cannot parse|Failed to set sysctl|Unknown parameter `|too large for parameter"
    r"|Kernel is locked down from"
)
_MEMINIT = re.compile(r"mem auto-init: .*heap alloc:(on|off), heap free:(on|off)")


def split_sections(serial: str) -> tuple[dict[str, list[str]], list[str]]:
    """Marker-delimited sections of /init's output, and every line outside them."""
    sections: dict[str, list[str]] = {}
    outside: list[str] = []
    current: list[str] | None = None
    for line in serial.split("\n"):
        if line.startswith("@@KP-BEGIN "):
            current = sections.setdefault(line[len("@@KP-BEGIN ") :].strip(), [])
        elif line.startswith("@@KP-END"):
            current = None
        elif current is not None and line.endswith("@@KP-END"):
            # a file without a final newline (securityfs' lsm) runs into the end marker
            current.append(line[: -len("@@KP-END")])
            current = None
        elif current is not None:
            current.append(line)
        else:
            outside.append(line)
    return sections, outside


def _hex_strings(lines: Sequence[str]) -> list[str]:
    data = bytes(int(tok, 16) for line in lines for tok in line.split())
    parts = data.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p.decode("utf-8", errors="backslashreplace") for p in parts]


def _bool(value: str) -> bool:
    if value not in ("Y", "N"):
        raise ValueError(f"not a sysfs bool: {value!r}")
    return value == "Y"


def _bracketed(value: str) -> str:
    m = re.search(r"\[(\w+)\]", value)
    if not m:
        raise ValueError(f"no [selected] entry in {value!r}")
    return m.group(1)


def _path_values(lines: Iterable[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in lines:
        path, sep, value = line.partition(":")
        if sep:
            values[path] = value if path not in values else values[path] + "\n" + value
    return values


def parse_serial(
    serial: str,
    params: Sequence[str] = (),
    hardening: bool = False,
    target: Target = X86_64,
    smt: bool = False,
    probes: Sequence[str] = (),
) -> dict[str, Any]:
    """The observation record (observed.json's per-case fields, less id and cmdline) of a log."""
    sections, outside = split_sections(serial)
    completed = "@@KP-DONE" in outside
    # The dmesg section is the whole kernel log; without it (panic) the console has it.
    log = [_TIMESTAMP.sub("", line) for line in sections.get("dmesg", outside)]
    unknown = [m.group(1) for line in log if (m := _UNKNOWN.search(line))]
    panic = [m.group(1) for line in outside if (m := _PANIC.search(_TIMESTAMP.sub("", line)))]
    obs: dict[str, Any] = {
        "completed": completed,
        "argv": _hex_strings(sections["argv"])[2:] if "argv" in sections else None,
        "envp": (
            [e for e in _hex_strings(sections["envp"]) if e not in KERNEL_ENVP]
            if "envp" in sections
            else None
        ),
        "proc_cmdline": (
            "".join(_hex_strings(sections["proc_cmdline"])).removesuffix("\n")
            if "proc_cmdline" in sections
            else None
        ),
        "unknown_raw": unknown[-1] if unknown else None,
        "malformed_early": [m.group(1) for line in log if (m := _MALFORMED.search(line))],
        "invalid": [
            {"param": m.group(2), "value": m.group(1)}
            for line in log
            if (m := _INVALID.search(line))
        ],
        "obsolete": [m.group(1) for line in log if (m := _OBSOLETE.search(line))],
        "panic": panic[0] if panic else None,
        "notes": [line for line in log if _NOTES.search(line) and not _PANIC.search(line)],
    }
    features: dict[str, Any] = {}
    meminit = [m for line in log if (m := _MEMINIT.search(line))]
    if meminit:
        features["init_on_alloc"] = meminit[-1].group(1) == "on"
        features["init_on_free"] = meminit[-1].group(2) == "on"
    files = _path_values(sections.get("files", ()))
    for path, name in FEATURE_FILES.items():
        if path in files:
            value = files[path]
            features[name] = int(value) if name in INT_FEATURES else _bracketed(value)
    sysparams = {}
    for path, value in _path_values(sections.get("params", ())).items():
        m = re.fullmatch(r"/sys/module/([^/]+)/parameters/([^/]+)", path)
        if m:
            sysparams[f"{m.group(1)}.{m.group(2)}"] = value
    for name in FEATURE_PARAMS:
        if name in sysparams:
            features[name] = _bool(sysparams[name])
    read = _path_values(sections.get("sysctl", ()))
    read.update(_path_values(sections.get("security_sysctls", ())))
    for path, value in read.items():
        if path.startswith("/proc/sys/"):
            sysparams["sysctl." + path[len("/proc/sys/") :].replace("/", ".")] = value
    for name in params:
        if name in sysparams:
            features[name] = sysparams[name]
    if hardening:
        features.update(hardening_features(sections, log, sysparams))
    if smt:
        features.update(smt_features(sections))
    for probe in probes:
        features.update(PROBES[probe](sections, log, sysparams))
    if target.extra_sections:
        _arch_sections(sections, log, target, obs, features)
    obs["features"] = features
    return obs


_KFENCE_ON = re.compile(r"kfence: initialized - using \d+ bytes")
_KERNEL_TEXT_DEFAULT = 0xFFFFFFFF81000000  # where x86_64 links _text; KASLR moves it


def hardening_features(
    sections: dict[str, list[str]], log: Sequence[str], sysparams: dict[str, str]
) -> dict[str, Any]:
    """What the hardening probes of /init saw: each CPU vulnerabilities file (verbatim), KASLR
    (_text moved from its link address), debugfs (mountable), psi (/proc/pressure exists),
    kfence (initialized, and its sample interval) and 32-bit emulation (an i386 program ran)."""
    out: dict[str, Any] = {}
    for path, value in sorted(_path_values(sections.get("vulnerabilities", ())).items()):
        out["vulnerabilities." + path.rsplit("/", 1)[-1]] = value
    text = [line.split()[0] for line in sections.get("kallsyms", ()) if line.strip()]
    if text:
        out["kaslr"] = int(text[0], 16) != _KERNEL_TEXT_DEFAULT
    rc = {name: _rc(sections.get(name, ())) for name in ("debugfs", "ia32")}
    if rc["debugfs"] is not None:
        out["debugfs_mount"] = rc["debugfs"] == 0
    if "pressure" in sections:
        out["psi"] = any(line.strip() for line in sections["pressure"])
    if "kfence.sample_interval" in sysparams:
        out["kfence.sample_interval"] = int(sysparams["kfence.sample_interval"])
        out["kfence"] = any(_KFENCE_ON.search(line) for line in log)
    if rc["ia32"] is not None:
        out["ia32_emulation"] = rc["ia32"] == IA32_STATUS
    return out


def smt_features(sections: dict[str, list[str]]) -> dict[str, Any]:
    """SMT as /sys/devices/system/cpu/smt reports it: `smt` is the control file's word (on, off,
    forceoff, notsupported, notimplemented), `smt.active` whether sibling threads run."""
    values = _path_values(sections.get("smt", ()))
    out: dict[str, Any] = {}
    control = values.get("/sys/devices/system/cpu/smt/control")
    if control is not None:
        out["smt"] = control.strip()
    active = values.get("/sys/devices/system/cpu/smt/active")
    if active is not None:
        out["smt.active"] = active.strip() == "1"
    return out


def lsm_features(
    sections: dict[str, list[str]], log: Sequence[str], sysparams: dict[str, str]
) -> dict[str, Any]:
    """The active LSMs in initialization order, as securityfs' lsm file lists them."""
    text = "".join(line.strip() for line in sections.get("lsm", ()))
    return {"lsm": text.split(",") if text else []}


def vdso32_features(
    sections: dict[str, list[str]], log: Sequence[str], sysparams: dict[str, str]
) -> dict[str, Any]:
    """Whether a 32-bit process gets the 32-bit vDSO: the i386 vDSO probe found AT_SYSINFO_EHDR
    in its auxiliary vector (false also where it cannot run: no 32-bit process gets one)."""
    rc = _rc(sections.get("ia32vdso", ()))
    return {} if rc is None else {"vdso32": rc == IA32_VDSO_STATUS}


def user_shstk_features(
    sections: dict[str, list[str]], log: Sequence[str], sysparams: dict[str, str]
) -> dict[str, Any]:
    """Whether the kernel offers user-mode shadow stacks: /proc/cpuinfo's flags hold
    user_shstk (X86_FEATURE_USER_SHSTK, set by setup_cet and cleared by nousershstk)."""
    flags = [line for line in sections.get("cpuflags", ()) if line.startswith("flags")]
    return {"user_shstk": "user_shstk" in flags[0].partition(":")[2].split()} if flags else {}


_UNHASHED_BANNER = "This system shows unhashed kernel memory addresses"


def hash_pointers_features(
    sections: dict[str, list[str]], log: Sequence[str], sysparams: dict[str, str]
) -> dict[str, Any]:
    """Whether %p prints hashed pointers: the kernel logs its unhashed-addresses notice (every
    version's lib/vsprintf.c) exactly when hashing is off."""
    return {"hash_pointers": not any(_UNHASHED_BANNER in line for line in log)}


def sysrq_features(
    sections: dict[str, list[str]], log: Sequence[str], sysparams: dict[str, str]
) -> dict[str, Any]:
    """The magic SysRq sysctl as it reads at boot (sysrq_always_enabled makes it read 1)."""
    value = sysparams.get("sysctl.kernel.sysrq")
    return {} if value is None else {"sysctl.kernel.sysrq": value.strip()}


def proc_mem_features(
    sections: dict[str, list[str]], log: Sequence[str], sysparams: dict[str, str]
) -> dict[str, Any]:
    """Whether a process may write its own read-only page through /proc/self/mem (dd onto the
    first, read-only, page of busybox, a non-PIE executable at the same address in every
    process): only proc_mem.force_override "always" lets an unptraced writer override."""
    rc = _rc(sections.get("procmem", ()))
    return {} if rc is None else {"proc_mem.self_force_write": rc == 0}


_IOMMU_DOMAIN = re.compile(r"iommu: Default domain type: (\w+)")
_IOMMU_TLB = re.compile(r"iommu: DMA domain TLB invalidation policy: (strict|lazy) mode")
_DMAR_ON = re.compile(r"DMAR: Intel\(R\) Virtualization Technology for Directed I/O")


def iommu_features(
    sections: dict[str, list[str]], log: Sequence[str], sysparams: dict[str, str]
) -> dict[str, Any]:
    """The IOMMU core's choice as iommu_subsys_init() logs it: `iommu.passthrough` (the default
    domain type is Passthrough), `iommu.strict` (the TLB invalidation policy of DMA domains,
    logged only when the default is not passthrough), and `iommu.group_types`, the sorted
    domain types of /sys/kernel/iommu_groups/*/type (empty without an IOMMU device)."""
    out: dict[str, Any] = {}
    domain = [m.group(1) for line in log if (m := _IOMMU_DOMAIN.search(line))]
    if domain:
        out["iommu.passthrough"] = domain[-1] == "Passthrough"
    tlb = [m.group(1) for line in log if (m := _IOMMU_TLB.search(line))]
    if tlb:
        out["iommu.strict"] = tlb[-1] == "strict"
    types = _path_values(sections.get("iommu_groups", ()))
    out["iommu.group_types"] = sorted({v.strip() for v in types.values()})
    return out


def intel_iommu_features(
    sections: dict[str, list[str]], log: Sequence[str], sysparams: dict[str, str]
) -> dict[str, Any]:
    """Whether the Intel IOMMU driver initialized (intel_iommu_init's "Intel(R) Virtualization
    Technology for Directed I/O"): only meaningful on a case with an intel-iommu device."""
    return {"intel_iommu": any(_DMAR_ON.search(line) for line in log)}


_AMD_VI_ON = re.compile(r"AMD-Vi: Extended features")


def amd_iommu_features(
    sections: dict[str, list[str]], log: Sequence[str], sysparams: dict[str, str]
) -> dict[str, Any]:
    """Whether the AMD IOMMU driver initialized (it logs the IOMMU's "Extended features"): only
    meaningful on a case with an amd-iommu device."""
    return {"amd_iommu": any(_AMD_VI_ON.search(line) for line in log)}


# Opt-in observations: a case's `probes` names entries here.  Each reads the /init sections,
# the kernel log and the sysfs/sysctl values, and returns features to record.
Probe = Callable[[dict[str, list[str]], Sequence[str], dict[str, str]], dict[str, Any]]
PROBES: dict[str, Probe] = {
    "lsm": lsm_features,
    "vdso32": vdso32_features,
    "user_shstk": user_shstk_features,
    "hash_pointers": hash_pointers_features,
    "sysrq": sysrq_features,
    "proc_mem": proc_mem_features,
    "iommu": iommu_features,
    "intel_iommu": intel_iommu_features,
    "amd_iommu": amd_iommu_features,
}


def _rc(lines: Sequence[str]) -> int | None:
    """The exit status a probe section ends with (its `rc=N` line)."""
    for line in reversed(lines):
        if line.startswith("rc="):
            return int(line[3:])
    return None


_CPU_FEATURE = re.compile(r"CPU features: detected: (.*)$")


def _arch_sections(
    sections: dict[str, list[str]],
    log: Sequence[str],
    target: Target,
    obs: dict[str, Any],
    features: dict[str, Any],
) -> None:
    """The arm64 /init's extra sections: vulnerabilities.* and kaslr as features, the hwcaps of
    /proc/cpuinfo and the "CPU features: detected" names of the log."""
    for path, value in _path_values(sections.get("vulnerabilities", ())).items():
        features["vulnerabilities." + path.rsplit("/", 1)[-1]] = value
    text = [line.split() for line in sections.get("kallsyms", ()) if line.endswith(" _text")]
    if text and target.link_text is not None:
        features["kaslr"] = int(text[0][0], 16) != target.link_text
    cpuinfo = [line for line in sections.get("cpuinfo", ()) if line.startswith("Features")]
    obs["hwcaps"] = sorted(cpuinfo[0].partition(":")[2].split()) if cpuinfo else None
    obs["cpu_features"] = sorted({m.group(1) for line in log if (m := _CPU_FEATURE.search(line))})


# --- cases ----------------------------------------------------------------------------------


def observe(
    case: Case, vmlinuz: Path, initramfs: Path, timeout: float | None = None
) -> tuple[dict[str, Any], BootResult]:
    """Boot CASE and return (its observed.json record, the raw boot result)."""
    attempts = 0
    while True:
        attempts += 1
        result = boot(
            vmlinuz,
            initramfs,
            case.full_cmdline,
            case.mem,
            timeout or case.target.timeout,
            target=case.target,
            machine=case.machine,
            cpu=case.cpu,
            smp=case.smp,
            devices=case.devices,
        )
        flaky = result.timed_out or any(f in result.serial for f in HOST_FLAKES)
        if not flaky or attempts == BOOT_ATTEMPTS:
            break
    result = replace(result, attempts=attempts)
    record: dict[str, Any] = {"id": case.id, "cmdline": case.full_cmdline}
    if case.mem != DEFAULT_MEM_MIB:
        record["mem"] = case.mem
    if case.machine:
        record["machine"] = case.machine
    if case.cpu:
        record["cpu"] = case.cpu
    if case.smp:
        record["smp"] = case.smp
    if case.devices:
        record["devices"] = list(case.devices)
    if case.flavour != "cloud-amd64":
        record["flavour"] = case.flavour
    record.update(parse_serial(result.serial, case.params, case.hardening, case.target,
                               smt=case.smp is not None, probes=case.probes))
    record["timed_out"] = result.timed_out
    return record, result


def observe_all(
    cases: Sequence[Case],
    vmlinuz: Path,
    initramfs: Path,
    jobs: int = 2,
    timeout: float | None = None,
    kernels: Mapping[str, Path] | None = None,
) -> list[tuple[dict[str, Any], BootResult]]:
    """Boot every case, JOBS at a time, and return the results in case order: on VMLINUZ (the
    cloud kernel), or on KERNELS[flavour] for a case of another flavour."""

    def kernel(case: Case) -> Path:
        if case.flavour == "cloud-amd64":
            return vmlinuz
        if kernels is None or case.flavour not in kernels:
            raise ValueError(f"case {case.id}: no {case.flavour} kernel given")
        return kernels[case.flavour]

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda c: observe(c, kernel(c), initramfs, timeout), cases))


def document(records: Sequence[dict[str, Any]], vmlinuz: Path, target: Target = X86_64) -> str:
    """TARGET's observed*.json text for RECORDS (sorted keys, stable order, trailing newline)."""
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kernel": vmlinuz.name,
        "config": target.config_name,
        "harness_prefix": target.harness_prefix,
        "default_mem_mib": DEFAULT_MEM_MIB,
        "cases": list(records),
    }
    if target is not X86_64:
        doc.update(arch=target.arch, default_machine=target.machine, default_cpu=target.cpu)
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def sysctl_record(record: dict[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """A sysctl case's record: what /proc/sys held for each of PATHS (None: no such file) and
    the kernel's messages about the command line, from observe()'s RECORD."""
    feats = record["features"]
    return {
        "id": record["id"],
        "cmdline": record["cmdline"],
        "completed": record["completed"],
        "timed_out": record["timed_out"],
        "notes": record["notes"],
        "invalid": record["invalid"],
        "sysctls": {p: feats.get("sysctl." + p) for p in paths},
    }


def observe_sysctls(
    cases: Sequence[Case], vmlinuz: Path, initramfs: Path, jobs: int = 2
) -> list[tuple[dict[str, Any], BootResult]]:
    """Boot every sysctl case and return (its sysctl record, the boot), in case order."""
    paths = security_sysctls()
    wanted = [replace(c, params=tuple("sysctl." + p for p in paths)) for c in cases]
    booted = observe_all(wanted, vmlinuz, initramfs, jobs)
    return [(sysctl_record(rec, paths), res) for rec, res in booted]


def load_observed(path: Path = OBSERVED_FILE) -> dict[str, Any]:
    """The recorded observations in PATH (a target's observed_file)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


if __name__ == "__main__":  # boot one command line by hand
    # python oracle.py VMLINUZ 'args' [ARCH BUSYBOX]
    tmp = Path("/tmp")
    tgt = TARGETS[sys.argv[3]] if len(sys.argv) > 3 else X86_64
    bb = Path(sys.argv[4]) if len(sys.argv) > 4 else Path("/bin/busybox")
    cmd = f"{tgt.harness_prefix} {sys.argv[2]}"
    res = boot(Path(sys.argv[1]), build_initramfs(tmp, tgt, bb), cmd, target=tgt)
    print(res.serial)
    print(json.dumps(parse_serial(res.serial, (), tgt), indent=1), f"{res.seconds:.1f}s")
