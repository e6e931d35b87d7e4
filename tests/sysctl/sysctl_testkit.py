"""Shared by the sysctl tests: the bundled 7.2 model and resolve with a config dict."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from kpolicy.resolve.api import Resolution, resolve
from kpolicy.resolve.bundle import pick_bundled, read_model
from kpolicy.resolve.inputs import ConfigInput
from kpolicy.resolve.model import ResolveModel
from kpolicy.sysctl.boot import SysctlState

# The symbols the sysctls of rules/sysctls/security.toml read, as Debian's 7.2 amd64 config
# sets them.
DEBIAN_LIKE = {
    "PRINTK": "y", "SECURITY_DMESG_RESTRICT": "y", "PERF_EVENTS": "y",
    "SECURITY_PERF_EVENTS_RESTRICT": "y", "BPF_SYSCALL": "y", "BPF_UNPRIV_DEFAULT_OFF": "y",
    "NET": "y", "HAVE_EBPF_JIT": "y", "BPF_JIT": "y", "BPF_JIT_DEFAULT_ON": "y",
    "SECURITY_YAMA": "y", "LSM": "landlock,lockdown,yama,apparmor,bpf", "IO_URING": "y",
    "KEXEC_CORE": "y", "MODULES": "y", "MAGIC_SYSRQ": "y", "MAGIC_SYSRQ_DEFAULT_ENABLE": "0x01b6",
    "MMU": "y", "DEFAULT_MMAP_MIN_ADDR": "65536", "USERFAULTFD": "y", "USER_NS": "y",
    "TTY": "y", "LDISC_AUTOLOAD": "y", "INET": "y", "SYN_COOKIES": "y", "IPV6": "y",
    "SECURITY": "y",
}


@cache
def model_72() -> ResolveModel:
    return read_model(pick_bundled("7.2.13")[0])


def boot(cmdline: str, values: Mapping[str, str] = DEBIAN_LIKE,
         model: ResolveModel | None = None) -> Resolution:
    return resolve(model or model_72(), ConfigInput("test.config", dict(values), "7.2.13"),
                   cmdline, specs=())


def sysctl(res: Resolution, path: str) -> SysctlState:
    return next(s for s in res.sysctls if s.spec.path == path)


def value(cmdline: str, path: str, values: Mapping[str, str] = DEBIAN_LIKE) -> str | None:
    return sysctl(boot(cmdline, values), path).effective
