"""Issue #12: Retbleed, Speculative Store Bypass, SRBDS, GDS, TAA and SMT on the real 6.1, 6.12
and 7.2 trees with Debian's cloud-amd64 configs: the version differences the 7.2 boots in
tests/boot cannot show (which words each version takes, where the defaults come from, what
mitigations= overrides, how SMT mitigations stick).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import real_configs, real_tree_resolve_side

from kpolicy.params.semantics import FeatureSpec, load_param_rules
from kpolicy.resolve.api import resolve
from kpolicy.resolve.features import Machine

pytestmark = pytest.mark.real

VERSIONS = ("6.1", "6.12", "7.2")
CONFIG = "config.amd64_none_cloud-amd64"
_SIDES: dict[tuple[str, str], Any] = {}


@pytest.fixture(scope="module")
def specs() -> tuple[FeatureSpec, ...]:
    return load_param_rules().features


def _side(version: str, config: Path, specs: tuple[FeatureSpec, ...]) -> Any:
    key = (version, str(config))
    if key not in _SIDES:
        _SIDES[key] = real_tree_resolve_side(version, "x86_64", config, specs)
    return _SIDES[key]


def _states(specs: tuple[FeatureSpec, ...], version: str, cmdline: str,
            config: Path | None = None, machine: Machine | None = None) -> dict[str, object]:
    model, given = _side(version, config or real_configs(version) / CONFIG, specs)
    res = resolve(model, given, cmdline, specs=specs, machine=machine or Machine())
    return {f.name: f.effective for f in res.features}


def _edited(tmp: Path, version: str, changes: dict[str, str]) -> Path:
    """Debian's VERSION config with each CONFIG_<name> line of CHANGES replaced (value "n":
    "# CONFIG_<name> is not set")."""
    lines = (real_configs(version) / CONFIG).read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        name = next((n for n in changes if line.startswith((f"CONFIG_{n}=", f"# CONFIG_{n} is"))),
                    None)
        if name is None:
            out.append(line)
        else:
            value = changes[name]
            out.append(f"# CONFIG_{name} is not set" if value == "n" else f"CONFIG_{name}={value}")
    path = tmp / f"config-{version}"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


# (command line, {version: (retbleed mode, vulnerabilities.retbleed)})
RETBLEED = [
    ("", {"6.1": ("auto", True), "6.12": ("auto", True), "7.2": ("auto", True)}),
    ("retbleed=off", {"6.1": ("off", False), "6.12": ("off", False), "7.2": ("off", False)}),
    # 6.1 has no "stuff": logged and skipped, the mode stays auto
    ("retbleed=stuff", {"6.1": ("auto", True), "6.12": ("stuff", True), "7.2": ("stuff", True)}),
    ("retbleed=off,bogus,unret", {v: ("unret", True) for v in VERSIONS}),
    ("retbleed", {v: ("auto", True) for v in VERSIONS}),  # -EINVAL: Malformed early option
    # 6.1 and 6.12 return before reading the command; 7.2 keeps an explicit word
    ("mitigations=off retbleed=unret",
     {"6.1": ("off", False), "6.12": ("off", False), "7.2": ("unret", True)}),
    ("mitigations=auto,no_user_kernel,no_guest_host",
     # 6.1/6.12: an unknown mitigations= value is refused, nothing changes
     {"6.1": ("auto", True), "6.12": ("auto", True), "7.2": ("off", False)}),
]


@pytest.mark.parametrize(("cmdline", "want"), RETBLEED, ids=[c or "default" for c, _ in RETBLEED])
@pytest.mark.parametrize("version", VERSIONS)
def test_retbleed(specs: tuple[FeatureSpec, ...], version: str, cmdline: str,
                  want: dict[str, tuple[str, bool]]) -> None:
    states = _states(specs, version, cmdline)
    assert (states["retbleed"], states["vulnerabilities.retbleed"]) == want[version]


# (command line, {version: (spec_store_bypass_disable, vulnerabilities.spec_store_bypass)})
SSB = [
    ("", {v: ("auto", True) for v in VERSIONS}),
    ("spec_store_bypass_disable=seccomp", {v: ("seccomp", True) for v in VERSIONS}),
    ("spec_store_bypass_disable=off", {v: ("off", False) for v in VERSIONS}),
    # nospec_store_bypass_disable wins wherever it stands (6.1/6.12 read it first, 7.2's
    # spec_store_bypass_disable= handler returns once it was seen)
    ("nospec_store_bypass_disable spec_store_bypass_disable=on", {v: ("off", False)
                                                                  for v in VERSIONS}),
    ("spec_store_bypass_disable=on nospec_store_bypass_disable", {v: ("off", False)
                                                                  for v in VERSIONS}),
    ("spec_store_bypass_disable=on spec_store_bypass_disable=prctl",
     {v: ("prctl", True) for v in VERSIONS}),
    # 6.1/6.12: mitigations=off is the off command whatever else is given; 7.2 keeps the word
    ("mitigations=off spec_store_bypass_disable=prctl",
     {"6.1": ("off", False), "6.12": ("off", False), "7.2": ("prctl", True)}),
    ("mitigations=auto,no_user_user",
     {"6.1": ("auto", True), "6.12": ("auto", True), "7.2": ("off", False)}),
]


@pytest.mark.parametrize(("cmdline", "want"), SSB, ids=[c or "default" for c, _ in SSB])
@pytest.mark.parametrize("version", VERSIONS)
def test_spec_store_bypass(specs: tuple[FeatureSpec, ...], version: str, cmdline: str,
                           want: dict[str, tuple[str, bool]]) -> None:
    states = _states(specs, version, cmdline)
    assert (states["spec_store_bypass_disable"],
            states["vulnerabilities.spec_store_bypass"]) == want[version]


def test_ssb_without_ssbd_is_vulnerable(specs: tuple[FeatureSpec, ...]) -> None:
    """A CPU without SSBD stays vulnerable (no "attempted" state), one with it follows the line."""
    without = Machine(cpu_features=frozenset({"intel"}))
    with_ssbd = Machine(cpu_features=frozenset({"intel", "ssbd"}))
    assert _states(specs, "6.12", "", machine=without)["vulnerabilities.spec_store_bypass"] is False
    assert _states(specs, "6.12", "", machine=with_ssbd)["vulnerabilities.spec_store_bypass"]


# (command line, {version: (vulnerabilities.srbds, gather_data_sampling,
#                           vulnerabilities.gather_data_sampling)})
SRBDS_GDS = [
    ("", {v: (True, "auto", True) for v in VERSIONS}),
    ("srbds=off gather_data_sampling=off", {v: (False, "off", False) for v in VERSIONS}),
    ("srbds=off srbds=on", {v: (True, "auto", True) for v in VERSIONS}),  # !strcmp(str, "off")
    ("gather_data_sampling=force", {v: (True, "force", True) for v in VERSIONS}),
    ("gather_data_sampling=bogus", {v: (True, "auto", True) for v in VERSIONS}),
    # 6.1/6.12: mitigations=off wins even over force; 7.2 turns only auto off
    ("mitigations=off gather_data_sampling=force",
     {"6.1": (False, "off", False), "6.12": (False, "off", False), "7.2": (False, "force", True)}),
]


@pytest.mark.parametrize(("cmdline", "want"), SRBDS_GDS, ids=[c or "default" for c, _ in SRBDS_GDS])
@pytest.mark.parametrize("version", VERSIONS)
def test_srbds_and_gds(specs: tuple[FeatureSpec, ...], version: str, cmdline: str,
                       want: dict[str, tuple[bool, str, bool]]) -> None:
    states = _states(specs, version, cmdline)
    assert (states["vulnerabilities.srbds"], states["gather_data_sampling"],
            states["vulnerabilities.gather_data_sampling"]) == want[version]


# (command line, {version: smt})
SMT = [
    ("", {v: "on" for v in VERSIONS}),
    ("nosmt", {v: "off" for v in VERSIONS}),
    ("nosmt=force nosmt", {v: "forceoff" for v in VERSIONS}),  # cpu_smt_possible() is false
    ("nosmt nosmt=force", {v: "forceoff" for v in VERSIONS}),
    ("mitigations=auto,nosmt", {v: "off" for v in VERSIONS}),
    # 6.1/6.12 ask cpu_mitigations_auto_nosmt() (the last mitigations= wins); 7.2's
    # smt_mitigations stays on after a later plain auto
    ("mitigations=auto,nosmt mitigations=auto", {"6.1": "on", "6.12": "on", "7.2": "off"}),
    # 7.2 only: no_cross_thread (6.1/6.12 refuse the whole value: auto,nosmt is not set either)
    ("mitigations=auto,nosmt,no_cross_thread", {v: "on" for v in VERSIONS}),
    # the VERW bugs' per-bug words, alike in every version (6.1 as 6.12, without the switches)
    ("mds=full,nosmt", {v: "off" for v in VERSIONS}),
    ("mmio_stale_data=full,nosmt", {v: "off" for v in VERSIONS}),
    ("mitigations=off mds=full,nosmt", {"6.1": "on", "6.12": "on", "7.2": "off"}),
    ("retbleed=nosmt", {v: "off" for v in VERSIONS}),
    ("retbleed=off,nosmt", {v: "on" for v in VERSIONS}),
]


@pytest.mark.parametrize(("cmdline", "want"), SMT, ids=[c or "default" for c, _ in SMT])
@pytest.mark.parametrize("version", VERSIONS)
def test_smt(specs: tuple[FeatureSpec, ...], version: str, cmdline: str,
             want: dict[str, str]) -> None:
    assert _states(specs, version, cmdline)["smt"] == want[version]


def test_retbleed_nosmt_on_intel_leaves_smt(specs: tuple[FeatureSpec, ...]) -> None:
    """On an Intel CPU without Enhanced IBRS Retbleed gets no mitigation, so its nosmt word does
    nothing (the skylake-smt-retbleed-nosmt boot); on AMD it disables SMT."""
    intel = Machine(cpu_features=frozenset({"intel"}))
    amd = Machine(cpu_features=frozenset({"amd"}))
    for version in VERSIONS:
        assert _states(specs, version, "retbleed=nosmt", machine=intel)["smt"] == "on"
        assert _states(specs, version, "retbleed=nosmt", machine=amd)["smt"] == "off"


def test_defaults_follow_each_versions_switches(specs: tuple[FeatureSpec, ...],
                                                tmp_path: Path) -> None:
    """6.12 and 7.2 take the defaults from CONFIG_MITIGATION_{RETBLEED,SSB,SRBDS,GDS}; 6.1 has
    no such switches (always on) but CONFIG_GDS_FORCE_MITIGATION."""
    off = {"MITIGATION_RETBLEED": "n", "MITIGATION_SSB": "n", "MITIGATION_SRBDS": "n",
           "MITIGATION_GDS": "n", "GDS_FORCE_MITIGATION": "y"}
    for version in ("6.12", "7.2"):
        states = _states(specs, version, "", config=_edited(tmp_path, version, off))
        assert (states["retbleed"], states["spec_store_bypass_disable"],
                states["gather_data_sampling"]) == ("off", "off", "off"), version
        assert not any(states[f"vulnerabilities.{n}"] for n in (
            "retbleed", "spec_store_bypass", "srbds", "gather_data_sampling")), version
        # the words still turn them on
        on = _states(specs, version, "retbleed=unret spec_store_bypass_disable=on",
                     config=_edited(tmp_path, version, off))
        assert on["vulnerabilities.retbleed"] and on["vulnerabilities.spec_store_bypass"]
    old = _states(specs, "6.1", "", config=_edited(tmp_path, "6.1", off))
    assert (old["retbleed"], old["spec_store_bypass_disable"], old["gather_data_sampling"],
            old["vulnerabilities.srbds"]) == ("auto", "auto", "force", True)


def test_taa_shares_verw(specs: tuple[FeatureSpec, ...]) -> None:
    """TAA stays mitigated while MDS or MMIO Stale Data selects the shared VERW (6.12, 7.2)."""
    for version in ("6.12", "7.2"):
        assert _states(specs, version, "tsx_async_abort=off")[
            "vulnerabilities.tsx_async_abort"] is True
        every = "tsx_async_abort=off mds=off mmio_stale_data=off"
        assert _states(specs, version, every)["vulnerabilities.tsx_async_abort"] is False
