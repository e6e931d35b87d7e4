"""The feature "lsm" (kpolicy/resolve/lsm.py) on the shipped LSM table, with hand-made configs
and command-line events: the order rules each version's security/ applies."""

from __future__ import annotations

from typing import Optional

import pytest

from kpolicy.cmdline.passes import Event
from kpolicy.errors import KpolicyError
from kpolicy.resolve.lsm import load_lsms, lsm_feature, lsm_order, parse_lsms

# Debian's LSM build (6.12/7.2 names; 6.1 has INTEGRITY's "integrity" instead of ima/evm)
VALUES = {
    "SECURITY": "y", "SECURITY_SELINUX": "y", "SECURITY_TOMOYO": "y", "SECURITY_APPARMOR": "y",
    "SECURITY_YAMA": "y", "SECURITY_LOCKDOWN_LSM": "y", "SECURITY_LOCKDOWN_LSM_EARLY": "y",
    "BPF_LSM": "y", "SECURITY_LANDLOCK": "y", "SECURITY_IPE": "y", "INTEGRITY": "y", "IMA": "y",
    "EVM": "y",
    "LSM": "landlock,lockdown,yama,loadpin,safesetid,integrity,apparmor,selinux,smack,tomoyo,"
           "bpf,ipe",
}


def _events(*words: str) -> tuple[Event, ...]:
    out = []
    for i, word in enumerate(words):
        name, eq, value = word.partition("=")
        val: Optional[str] = value if eq else None
        out.append(Event(i, 0, word, name, val, "setup", "accepted", None, ""))
    return tuple(out)


def _active(version: tuple[int, ...], *words: str, **values: str) -> str:
    return ",".join(lsm_order(load_lsms(), version, {**VALUES, **values}, _events(*words)).active)


def test_default_order_per_version() -> None:
    assert _active((7, 2)) == "lockdown,capability,landlock,yama,apparmor,tomoyo,bpf,ipe,ima,evm"
    assert _active((6, 1)) == "lockdown,capability,landlock,yama,apparmor,tomoyo,bpf"


def test_the_early_lsm_is_first_and_not_matched_by_lsm_list() -> None:
    assert _active((7, 2), "lsm=lockdown,yama") == "lockdown,capability,yama,ima,evm"
    # not an early LSM: then lsm= decides whether it starts and where
    assert _active((7, 2), "lsm=yama,lockdown", SECURITY_LOCKDOWN_LSM_EARLY="n") == \
        "capability,yama,lockdown,ima,evm"
    assert _active((7, 2), "lsm=yama", SECURITY_LOCKDOWN_LSM_EARLY="n") == "capability,yama,ima,evm"


def test_security_and_lsm_interplay() -> None:
    assert _active((7, 2), "security=selinux") == \
        "lockdown,capability,landlock,yama,selinux,bpf,ipe,ima,evm"
    # the legacy choice not in the list is appended after it (before the last ones)
    assert _active((7, 2), "security=selinux", LSM="yama") == \
        "lockdown,capability,yama,selinux,ima,evm"
    assert _active((7, 2), "security=selinux", "lsm=apparmor") == \
        "lockdown,capability,apparmor,ima,evm"
    assert _active((6, 1), "security=smack") == "lockdown,capability,landlock,yama,bpf"


def test_own_switches_and_exclusive_lsms() -> None:
    assert "selinux" in _active((7, 2), "apparmor=0").split(",")
    assert "apparmor" in _active((7, 2), "apparmor=off").split(",")  # kstrtoul refuses: ignored
    assert "apparmor" not in _active((7, 2), "apparmor.enabled=n").split(",")
    assert "apparmor" in _active((7, 2), "apparmor=0", "apparmor=1").split(",")
    assert _active((7, 2), "lsm=selinux,apparmor,smack") == "lockdown,capability,selinux,ima,evm"


def test_no_security_framework_means_no_lsm() -> None:
    state = lsm_feature(load_lsms(), (7, 2), {**VALUES, "SECURITY": "n"}, (), {})
    assert state.effective == "" and state.built is False
    state = lsm_feature(load_lsms(), (7, 2), VALUES, _events("lsm=yama"), {"LSM": 3})
    assert state.effective == "lockdown,capability,yama,ima,evm"
    assert state.default.startswith("lockdown,capability,landlock")
    assert [s.kind for s in state.sources] == ["config", "cmdline"]


def test_a_bad_table_is_refused() -> None:
    with pytest.raises(KpolicyError, match="order"):
        parse_lsms('[[lsm]]\nname = "x"\norder = "middle"\nsource = "s"\n', "t.toml")
    with pytest.raises(KpolicyError, match="unknown key 'exclusive'") as bad:
        parse_lsms('[[lsm]]\nname = "x"\nsource = "s"\nexclusive = true\n', "t.toml")
    assert bad.value.line == 4
    with pytest.raises(KpolicyError, match="'source' are required") as missing:
        parse_lsms('[[lsm]]\nname = "x"\nsource = "s"\n[[lsm]]\nname = "y"\n', "t.toml")
    assert missing.value.line == 4
