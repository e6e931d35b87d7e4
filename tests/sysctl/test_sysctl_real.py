"""rules/sysctls/security.toml against the real Debian trees and config."""

from __future__ import annotations

import pytest
from conftest import real_configs, real_tree

from kpolicy.resolve.api import resolve
from kpolicy.resolve.bundle import pick_bundled, read_model
from kpolicy.resolve.inputs import read_config
from kpolicy.resolve.output import resolution_json, resolution_text
from kpolicy.sysctl.evidence import evidence_line, tree_problems
from kpolicy.sysctl.spec import load_sysctl_rules
from kpolicy.tree import open_tree

pytestmark = pytest.mark.real
SPECS = load_sysctl_rules()
# the issue's list: every one must be reported
ISSUE = [
    "kernel.kptr_restrict",
    "kernel.dmesg_restrict",
    "kernel.perf_event_paranoid",
    "kernel.unprivileged_bpf_disabled",
    "kernel.yama.ptrace_scope",
    "kernel.io_uring_disabled",
    "kernel.kexec_load_disabled",
    "kernel.sysrq",
    "kernel.randomize_va_space",
    "kernel.modules_disabled",
    "vm.unprivileged_userfaultfd",
    "vm.mmap_min_addr",
    "fs.protected_symlinks",
    "fs.protected_hardlinks",
    "fs.protected_fifos",
    "fs.protected_regular",
    "fs.suid_dumpable",
    "user.max_user_namespaces",
    "dev.tty.ldisc_autoload",
    "net.core.bpf_jit_harden",
    "kernel.unprivileged_userns_clone",
]


@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2"])
def test_every_initial_value_is_where_the_rules_say(version: str) -> None:
    tree = open_tree(real_tree(version))
    assert tree_problems(tree, SPECS) == []
    # and the check can fail: a sysctl that is not in 6.1 at all
    if version == "6.1":
        uring = next(s for s in SPECS if s.path == "kernel.io_uring_disabled")
        assert evidence_line(tree, uring) is None


def test_debian_72_amd64_config_with_no_command_line() -> None:
    config = read_config(real_configs("7.2") / "config.amd64_none_amd64")
    res = resolve(read_model(pick_bundled(config.version)[0]), config, "", specs=())
    feats = resolution_json(res)["features"]
    expected = {
        "kernel.kptr_restrict": "0", "kernel.dmesg_restrict": "1",
        "kernel.perf_event_paranoid": "3", "kernel.unprivileged_bpf_disabled": "2",
        "kernel.yama.ptrace_scope": "0", "kernel.io_uring_disabled": "0",
        "kernel.kexec_load_disabled": "0", "kernel.sysrq": "438",
        "kernel.randomize_va_space": "2", "kernel.modules_disabled": "0",
        "vm.unprivileged_userfaultfd": "0", "vm.mmap_min_addr": "65536",
        "fs.protected_symlinks": "1", "fs.protected_hardlinks": "1",
        "fs.protected_fifos": "0", "fs.protected_regular": "0", "fs.suid_dumpable": "0",
        "user.max_user_namespaces": None, "dev.tty.ldisc_autoload": "1",
        "net.core.bpf_jit_harden": "0", "kernel.unprivileged_userns_clone": "1",
    }
    assert set(ISSUE) == set(expected)
    for path, value in expected.items():
        entry = feats["sysctl." + path]
        assert (path, entry["effective"]) == (path, value)
        assert entry["built"] is True
        first = entry["sources"][0]
        # the Kconfig symbol that set it, or the source line, or the machine it depends on
        assert first.get("symbol") or first.get("location") or first["kind"] == "machine", path
    assert feats["sysctl.kernel.dmesg_restrict"]["sources"][0]["symbol"] == \
        "SECURITY_DMESG_RESTRICT"
    assert feats["sysctl.kernel.dmesg_restrict"]["sources"][0]["config_line"] > 0
    assert feats["sysctl.vm.mmap_min_addr"]["option"] == "DEFAULT_MMAP_MIN_ADDR"
    text = resolution_text(res)
    for path in ISSUE:
        assert f"sysctl.{path} " in text
    assert "[bpf]" in text and "[ptrace]" in text


@pytest.mark.parametrize("version", ["6.1", "6.12"])
def test_older_debian_configs_with_their_bundled_models(version: str) -> None:
    config = read_config(real_configs(version) / "config.amd64_none_amd64")
    res = resolve(read_model(pick_bundled(config.version)[0]), config, "", specs=())
    feats = resolution_json(res)["features"]
    newer = ("sysctl.kernel.io_uring_disabled", "sysctl.dev.tty.legacy_tiocsti")
    for name in newer:  # added in 6.6 and 6.2
        assert feats[name]["built"] is (version != "6.1"), name
    assert feats["sysctl.kernel.unprivileged_userns_clone"]["effective"] == "1"
    assert feats["sysctl.kernel.yama.ptrace_scope"]["effective"] == "0"
    assert feats["sysctl.vm.unprivileged_userfaultfd"]["sources"][0]["location"] == \
        "fs/userfaultfd.c"
