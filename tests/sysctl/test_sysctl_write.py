"""The kernel's write rules for sysctls (kernel/sysctl.c proc handlers) and every one-way switch,
on the command line and in sysctl.d."""

from __future__ import annotations

import pytest
from sysctl_testkit import DEBIAN_LIKE, boot, sysctl, value

from kpolicy.sysctl.spec import load_sysctl_rules
from kpolicy.sysctl.sysctld import apply_sysctl_files, parse_conf
from kpolicy.sysctl.write import read_number, write

SPECS = {s.path: s for s in load_sysctl_rules()}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", (False, 1)), ("-1", (True, 1)), ("0x10", (False, 16)), ("010", (False, 8)),
        ("  7", (False, 7)), ("1 2", (False, 1)), ("0", (False, 0)),
        ("08", None), ("0x", None), ("+1", None), ("1x", None), ("", None), ("-", None),
        ("x1", None), ("1" * 21, None), ("99999999999999999999999", None),
    ],
)
def test_read_number(text: str, expected: tuple[bool, int] | None) -> None:
    assert read_number(text)[0] == expected


def test_int_minmax_bounds_and_overflow() -> None:
    kptr = SPECS["kernel.kptr_restrict"]
    assert write(kptr, "0", "2").value == "2"
    assert write(kptr, "0", "3").error == "EINVAL"
    assert write(kptr, "0", "3").value == "0"
    perf = SPECS["kernel.perf_event_paranoid"]  # proc_dointvec: no bounds, int only
    assert write(perf, "3", "-1").value == "-1"
    assert write(perf, "3", "2147483648").error == "EINVAL"
    assert write(perf, "3", "-2147483648").value == "-2147483648"
    short = write(kptr, "0", "1 2")
    assert (short.value, short.short) == ("1", True)


def test_bool_ulong_u8() -> None:
    assert write(SPECS["dev.tty.legacy_tiocsti"], "0", "5").value == "1"
    assert write(SPECS["dev.tty.legacy_tiocsti"], "1", "0").value == "0"
    assert write(SPECS["vm.mmap_min_addr"], "65536", "-1").error == "EINVAL"
    assert write(SPECS["vm.mmap_min_addr"], "65536", "4096").value == "4096"
    syn = SPECS["net.ipv4.tcp_syncookies"]  # u8 without bounds: 0..255
    assert write(syn, "1", "3").value == "3"
    assert write(syn, "1", "256").error == "EINVAL"
    assert write(syn, "1", "-0").error == "EINVAL"
    icmp = SPECS["net.ipv4.icmp_echo_ignore_broadcasts"]  # u8 within 0..1
    assert write(icmp, "1", "2").error == "EINVAL"


# every one-way switch: (path, the value that locks it, a value it refuses once locked)
ONE_WAY = [
    ("kernel.modules_disabled", "1", "0"),
    ("kernel.kexec_load_disabled", "1", "0"),
    ("kernel.unprivileged_bpf_disabled", "1", "0"),
    ("kernel.unprivileged_bpf_disabled", "1", "2"),
    ("kernel.yama.ptrace_scope", "3", "0"),
    ("kernel.yama.ptrace_scope", "3", "2"),
]


@pytest.mark.parametrize(("path", "lock", "undo"), ONE_WAY)
def test_one_way_switch_on_the_command_line(path: str, lock: str, undo: str) -> None:
    res = boot(f"sysctl.{path}={lock} sysctl.{path}={undo}")
    state = sysctl(res, path)
    assert state.effective == lock
    assert state.sources[-1].error in ("EINVAL", "EPERM")
    # not locked yet, the same write is taken (except where the switch only knows `lock`)
    before = value(f"sysctl.{path}={undo}", path)
    assert before == (undo if SPECS[path].min != SPECS[path].max else "0")


@pytest.mark.parametrize(("path", "lock", "undo"), ONE_WAY)
def test_one_way_switch_in_sysctl_d(path: str, lock: str, undo: str) -> None:
    states = boot(f"sysctl.{path}={lock}").sysctls
    after = apply_sysctl_files(states, parse_conf(f"{path} = {undo}\n", "99-undo.conf"))
    state = next(s for s in after if s.spec.path == path)
    assert state.effective == lock
    assert state.warnings and "one-way switch already set" in state.warnings[0]
    assert "99-undo.conf:1" in state.warnings[0]


def test_bpf_unpriv_from_2_can_go_to_0() -> None:
    assert value("", "kernel.unprivileged_bpf_disabled") == "2"
    assert value("sysctl.kernel.unprivileged_bpf_disabled=0",
                 "kernel.unprivileged_bpf_disabled") == "0"
    off = {**DEBIAN_LIKE, "BPF_UNPRIV_DEFAULT_OFF": "n"}
    assert value("", "kernel.unprivileged_bpf_disabled", off) == "0"


def test_parameters_that_set_sysctls() -> None:
    assert value("norandmaps", "kernel.randomize_va_space") == "0"
    assert value("sysctl.kernel.randomize_va_space=1 norandmaps",
                 "kernel.randomize_va_space") == "1"  # sysctl.* runs after __setup
    assert value("sysrq_always_enabled sysctl.kernel.sysrq=0", "kernel.sysrq") == "1"
    assert value("", "kernel.sysrq") == "438"
    assert value("sysctl.kernel.sysrq=0x10", "kernel.sysrq") == "16"


def test_absent_sysctls() -> None:
    no_yama = boot("lsm=landlock,lockdown sysctl.kernel.yama.ptrace_scope=2")
    state = sysctl(no_yama, "kernel.yama.ptrace_scope")
    assert (state.built, state.effective) == (False, None)
    assert "not listed in lsm=" in state.sources[0].reason
    assert state.sources[-1].error == "ENOENT"
    no_userns = {**DEBIAN_LIKE, "USER_NS": "n"}
    assert sysctl(boot("", no_userns), "kernel.unprivileged_userns_clone").built is False
    modular = {**DEBIAN_LIKE, "IPV6": "m"}
    state = sysctl(boot("", modular), "net.ipv6.conf.all.accept_redirects")
    assert not state.built and "module" in state.sources[0].reason


def test_after_dashes_and_empty_values_are_not_written() -> None:
    assert value("sysctl.kernel.kptr_restrict= -- sysctl.kernel.dmesg_restrict=0",
                 "kernel.dmesg_restrict") == "1"
    assert value("sysctl.kernel.kptr_restrict=", "kernel.kptr_restrict") == "0"
