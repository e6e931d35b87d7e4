"""Issue #12 on the real 6.1, 6.12 and 7.2 trees with Debian's configs: the active LSMs (lsm=,
security=, apparmor=), pointer hashing (no_hash_pointers, 7.2's hash_pointers=, slab debugging),
bdev_allow_write_mounted, proc_mem.force_override, and the sysctls sysrq_always_enabled and
norandmaps set, each as that version's source has it.

7.2 is also proven on real boots (tests/boot, the lsm-/hash- cases); these pin what differs
between the versions, which a 7.2 boot cannot show. rules/lsm/lsms.toml is checked against each
tree's DEFINE_LSM declarations.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import real_configs, real_tree, real_tree_resolve_side

from kpolicy import treefs
from kpolicy.params.semantics import FeatureSpec, in_versions, load_param_rules
from kpolicy.resolve.api import Resolution, resolve
from kpolicy.resolve.lsm import load_lsms

pytestmark = pytest.mark.real

VERSIONS = ("6.1", "6.12", "7.2")
_SPECS: list[tuple[FeatureSpec, ...]] = []
_SIDES: dict[str, Any] = {}


def _specs() -> tuple[FeatureSpec, ...]:
    if not _SPECS:
        _SPECS.append(load_param_rules().features)
    return _SPECS[0]


def _resolve(version: str, cmdline: str) -> Resolution:
    """CMDLINE on Debian's cloud-amd64 config of VERSION, against the real tree."""
    if version not in _SIDES:
        config = real_configs(version) / "config.amd64_none_cloud-amd64"
        _SIDES[version] = real_tree_resolve_side(version, "x86_64", config, _specs())
    model, config = _SIDES[version]
    return resolve(model, config, cmdline, specs=_specs())


def _states(version: str, cmdline: str) -> dict[str, Any]:
    res = _resolve(version, cmdline)
    states: dict[str, Any] = {f.name: f.effective for f in res.features}
    states.update({s.name: s.effective for s in res.sysctls})
    return states


_BASE = "lockdown,capability,landlock,yama,apparmor,tomoyo,bpf"


@pytest.mark.parametrize(("version", "active"), [
    ("6.1", _BASE),  # "integrity" starts but adds no hooks; no LSM_ORDER_LAST, no ipe
    ("6.12", _BASE + ",ipe,ima,evm"),
    ("7.2", _BASE + ",ipe,ima,evm"),
])
def test_debian_default_lsms_per_version(version: str, active: str) -> None:
    """CONFIG_LSM with what Debian builds: selinux is dropped (exclusive, apparmor first);
    smack, loadpin and safesetid are not built."""
    assert _states(version, "")["lsm"] == active


@pytest.mark.parametrize(("version", "last"), [("6.1", ""), ("6.12", ",ima,evm"),
                                               ("7.2", ",ima,evm")])
def test_lsm_list_replaces_config_lsm(version: str, last: str) -> None:
    """lsm= replaces CONFIG_LSM (the last one wins, security= is ignored); 6.12 and 7.2 still
    start ima and evm (LSM_ORDER_LAST), 6.1 has no such LSMs."""
    states = _states(version, "security=tomoyo lsm=selinux lsm=yama,apparmor,selinux")
    assert states["lsm"] == "lockdown,capability,yama,apparmor" + last


@pytest.mark.parametrize("version", VERSIONS)
def test_security_picks_one_legacy_major(version: str) -> None:
    """security=selinux disables apparmor and tomoyo; selinux keeps its CONFIG_LSM place. An
    unbuilt choice (smack) leaves no legacy major; apparmor=0 lets selinux start instead."""
    assert "selinux" in _states(version, "security=selinux")["lsm"].split(",")
    assert {"apparmor", "tomoyo"}.isdisjoint(_states(version, "security=selinux")["lsm"].split(","))
    assert {"apparmor", "tomoyo", "selinux"}.isdisjoint(
        _states(version, "security=smack")["lsm"].split(","))
    after = _states(version, "apparmor=0")["lsm"].split(",")
    assert "selinux" in after and "apparmor" not in after


@pytest.mark.parametrize("version", VERSIONS)
def test_lsm_table_matches_the_tree(version: str) -> None:
    """Every DEFINE_LSM/DEFINE_EARLY_LSM of the tree's security/ is in rules/lsm/lsms.toml for
    this version (and no other entry is), with its exclusive/legacy flags and its order."""
    root = real_tree(version)
    v = tuple(int(p) for p in version.split("."))
    declared = {s.name: s for s in load_lsms() if in_versions(v, s.since, s.until)}
    found: set[str] = set()
    files = [f"{d}/{f}" for d, _sub, names in treefs.walk(root, "security")
             for f in names if f.endswith(".c")]
    for rel in files:
        text = treefs.read_text(root, rel)
        for m in re.finditer(r"DEFINE_(?:EARLY_)?LSM\((\w+)\)\s*=\s*\{(.*?)\n\};", text, re.S):
            body = m.group(2)
            name = re.search(r'\.name\s*=\s*"?(\w+)"?', body) or re.search(
                r"\.id\s*=\s*&(\w+)_lsmid", body)
            assert name is not None, (rel, m.group(1))
            lsm = "landlock" if name.group(1) == "LANDLOCK_NAME" else name.group(1)
            found.add(lsm)
            spec = declared.get(lsm)
            assert spec is not None, f"{rel}: {lsm} is not in rules/lsm/lsms.toml for {version}"
            assert spec.exclusive == ("LSM_FLAG_EXCLUSIVE" in body), lsm
            assert spec.legacy_major == ("LSM_FLAG_LEGACY_MAJOR" in body), lsm
            order = ("first" if "LSM_ORDER_FIRST" in body else
                     "last" if "LSM_ORDER_LAST" in body else "mutable")
            assert spec.order == order, lsm
    assert found == set(declared)


@pytest.mark.parametrize("version", ["6.1", "6.12"])
def test_slab_debugging_unhashes_pointers_for_good_before_72(version: str) -> None:
    """6.1 and 6.12 have no hash_pointers= (the word goes to init): slab debugging turns
    hashing off whatever follows; no_hash_pointers turns it off."""
    res = _resolve(version, "slub_debug=F hash_pointers=always")
    states = {f.name: f.effective for f in res.features}
    assert states["slub_debug"] is True and states["hash_pointers"] is False
    assert "hash_pointers.mode" not in states
    assert "hash_pointers=always" in res.cmdline.unknown
    assert _states(version, "slub_debug=-")["hash_pointers"] is True
    assert _states(version, "no_hash_pointers")["hash_pointers"] is False


def test_72_hash_pointers_always_beats_slab_debugging() -> None:
    """7.2: hash_pointers=always keeps hashing under slab debugging; auto (any unknown word)
    follows it; never and no_hash_pointers turn it off; the last word wins."""
    assert _states("7.2", "slub_debug=F hash_pointers=always")["hash_pointers"] is True
    assert _states("7.2", "slub_debug=F hash_pointers=bogus")["hash_pointers"] is False
    assert _states("7.2", "hash_pointers=never")["hash_pointers"] is False
    assert _states("7.2", "no_hash_pointers hash_pointers=always")["hash_pointers"] is True


@pytest.mark.parametrize(("version", "default"), [("6.1", None), ("6.12", True), ("7.2", True)])
def test_bdev_allow_write_mounted(version: str, default: bool | None) -> None:
    """6.1 has neither BLK_DEV_WRITE_MOUNTED nor the parameter; 6.12 and 7.2 start from the
    option (Debian: y), bdev_allow_write_mounted= is kstrtobool and ignores other words."""
    states = _states(version, "")
    assert states.get("bdev_allow_write_mounted") is default
    if default is not None:
        assert _states(version, "bdev_allow_write_mounted=0")["bdev_allow_write_mounted"] is False
        assert _states(version, "bdev_allow_write_mounted=0 bdev_allow_write_mounted=bogus")[
            "bdev_allow_write_mounted"] is False


@pytest.mark.parametrize(("version", "default"), [("6.1", "always"), ("6.12", "always"),
                                                  ("7.2", "ptrace")])
def test_proc_mem_force_override(version: str, default: str) -> None:
    """Debian chose PROC_MEM_ALWAYS_FORCE for 6.1 (a backport) and 6.12, FORCE_PTRACE for 7.2;
    the parameter takes always|ptrace|never and keeps the current value for any other word."""
    assert _states(version, "")["proc_mem.force_override"] == default
    assert _states(version, "proc_mem.force_override=never")["proc_mem.force_override"] == "never"
    assert _states(version, "proc_mem.force_override=bogus")["proc_mem.force_override"] == default


@pytest.mark.parametrize("version", VERSIONS)
def test_sysrq_always_enabled_and_norandmaps(version: str) -> None:
    """sysrq_always_enabled makes kernel.sysrq read 1 (a __setup prefix: "=0" still enables);
    norandmaps sets randomize_va_space to 0."""
    states = _states(version, "")
    assert states["sysctl.kernel.sysrq"] == "438"  # MAGIC_SYSRQ_DEFAULT_ENABLE=0x01b6
    assert states["sysctl.kernel.randomize_va_space"] == "2"
    changed = _states(version, "sysrq_always_enabled=0 norandmaps")
    assert changed["sysctl.kernel.sysrq"] == "1"
    assert changed["sysctl.kernel.randomize_va_space"] == "0"


@pytest.mark.parametrize("version", VERSIONS)
def test_no_stale_declaration(version: str) -> None:
    """Each tree registers every parameter these features declare for its version."""
    files = ("slub_debug.toml", "hash_pointers.toml", "hash_pointers.mode.toml",
             "bdev_allow_write_mounted.toml", "proc_mem.force_override.toml")
    warnings = _resolve(version, "").warnings
    assert not [w for w in warnings if any(f in w for f in files)]
