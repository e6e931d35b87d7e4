"""Issue #12: the CPU vulnerabilities (meltdown, spectre_v1/v2, l1tf, mds, tsx_async_abort,
mmio_stale_data), PTI and the attack vectors they read, on Debian's real 6.1, 6.12 and 7.2
configs: 6.12 and 7.2 with the bundled models (tests/boot checks the 7.2 model built from the
real tree against the boots), 6.1 with the model built from the real 6.1 tree (its build option
for PTI is PAGE_TABLE_ISOLATION, which a bundled model built before it was declared lacks).

The 7.2 rows are also boot cases (tests/boot/cases.toml, Skylake-Client-v4); these pin the
version differences, which the 7.2 kernel cannot show: 6.1 reads pti=/nopti and (like 6.12)
spectre_v2=/nospectre_v2 directly from the command line, with their own precedence over
mitigations=off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import real_configs, real_tree_resolve_side

from kpolicy.params.semantics import FeatureSpec, load_param_rules
from kpolicy.resolve.api import resolve
from kpolicy.resolve.bundle import pick_bundled, read_model
from kpolicy.resolve.inputs import read_config
from kpolicy.resolve.model import ResolveModel

pytestmark = pytest.mark.real

CONFIG = "config.amd64_none_cloud-amd64"
VULNS = ("vulnerabilities.spectre_v2", "vulnerabilities.mds", "vulnerabilities.mmio_stale_data")


@pytest.fixture(scope="module")
def specs() -> tuple[FeatureSpec, ...]:
    return load_param_rules().features


@pytest.fixture(scope="module")
def models() -> dict[str, ResolveModel]:
    out = {}
    for version in ("6.12", "7.2"):
        config = read_config(real_configs(version) / CONFIG)
        path, warning = pick_bundled(config.version)
        assert warning is None
        out[version] = read_model(path)
    return out


_SIDES: dict[str, Any] = {}


def _side61(specs: tuple[FeatureSpec, ...], config: Path | None = None) -> Any:
    """(model, config) of the real 6.1 tree with CONFIG (default: Debian's cloud-amd64)."""
    config = config or real_configs("6.1") / CONFIG
    if str(config) not in _SIDES:
        _SIDES[str(config)] = real_tree_resolve_side("6.1", "x86_64", config, specs)
    return _SIDES[str(config)]


def _resolution(models: dict[str, ResolveModel], specs: tuple[FeatureSpec, ...], version: str,
                cmdline: str) -> Any:
    if version == "6.1":
        model, config = _side61(specs)
        return resolve(model, config, cmdline, specs=specs)
    config = read_config(real_configs(version) / CONFIG)
    return resolve(models[version], config, cmdline, specs=specs)


def _states(models: dict[str, ResolveModel], specs: tuple[FeatureSpec, ...], version: str,
            cmdline: str) -> dict[str, object]:
    return {f.name: f.effective for f in _resolution(models, specs, version, cmdline).features}


# (command line, 7.2's spectre_v2, mds, mmio_stale_data)
CASES_72 = [
    ("", True, True, True),
    ("nospectre_v2", False, True, True),
    ("nospectre_v2 spectre_v2=on", False, True, True),
    ("spectre_v2=off", False, True, True),
    ("spectre_v2=retpoline,lfence", False, True, True),
    ("spectre_v2=bogus", True, True, True),
    ("spectre_v2", True, True, True),
    ("mitigations=off", False, False, False),
    ("mitigations=off mitigations=auto", False, False, False),
    ("mitigations=off spectre_v2=retpoline", True, False, False),
    ("mitigations=off mds=full", False, True, True),
    ("mds=off", True, True, True),
    ("mds=off mmio_stale_data=off tsx_async_abort=off", True, False, False),
    ("mitigations=auto,no_user_kernel", True, True, True),
    ("mitigations=auto,no_user_kernel,no_guest_host", False, True, True),
    ("mitigations=auto,no_user_kernel,no_user_user,no_guest_host,no_guest_guest",
     False, False, False),
    ("mitigations=auto,no_user_kernel,no_user_user,no_guest_host,no_guest_guest mds=full",
     False, True, True),
]


@pytest.mark.parametrize(("cmdline", "v2", "mds", "mmio"), CASES_72)
def test_vulnerabilities_72(models: dict[str, ResolveModel], specs: tuple[FeatureSpec, ...],
                            cmdline: str, v2: bool, mds: bool, mmio: bool) -> None:
    states = _states(models, specs, "7.2", cmdline)
    assert tuple(states[n] for n in VULNS) == (v2, mds, mmio), cmdline


# (command line, 6.12's mds, mmio_stale_data): mitigations=off wins over an explicit mds=full
CASES_612 = [
    ("", True, True),
    ("mitigations=off", False, False),
    ("mitigations=off mds=full", False, False),
    ("mds=off", True, True),
    ("mds=off mmio_stale_data=off tsx_async_abort=off", False, False),
    ("mitigations=auto,no_user_kernel", True, True),  # 6.12 knows no attack vectors: ignored
]


@pytest.mark.parametrize(("cmdline", "mds", "mmio"), CASES_612)
def test_vulnerabilities_612(models: dict[str, ResolveModel], specs: tuple[FeatureSpec, ...],
                             cmdline: str, mds: bool, mmio: bool) -> None:
    states = _states(models, specs, "6.12", cmdline)
    assert (states["vulnerabilities.mds"], states["vulnerabilities.mmio_stale_data"]) == (
        mds, mmio), cmdline


SHOWN = ("pti", "vulnerabilities.meltdown", "spectre_v2", "vulnerabilities.spectre_v2",
         "vulnerabilities.mds", "vulnerabilities.tsx_async_abort",
         "vulnerabilities.mmio_stale_data", "vulnerabilities.spectre_v1", "vulnerabilities.l1tf")
ON = ("auto", True, "auto", True, True, True, True, True, True)  # Debian's defaults, all versions


def _row(pti: str, v2: str, mds: bool, v1: bool = True) -> tuple[object, ...]:
    """SHOWN's states: pti's mode, spectre_v2's command, the VERW bugs' shared answer."""
    return (pti, pti != "off", v2, v2 not in ("off", "retpoline,lfence", "retpoline,amd"),
            mds, mds, mds, v1, True)


# (command line, {version: SHOWN's states}): every difference between 6.1, 6.12 and 7.2 the
# declarations make, with the reason in the comment
VERSIONS = [
    ("", {"6.1": ON, "6.12": ON, "7.2": ON}),
    # mitigations=off: everything off but L1TF's PTE inversion, in every version
    ("mitigations=off", {v: _row("off", "off", False, False) for v in ("6.1", "6.12", "7.2")}),
    # 6.1 reads pti= before mitigations=off; 6.12 forces PTI off; 7.2 turns only auto off
    ("mitigations=off pti=on", {"6.1": _row("on", "off", False, False),
                                "6.12": _row("off", "off", False, False),
                                "7.2": _row("on", "off", False, False)}),
    ("mitigations=off pti=auto", {"6.1": _row("auto", "off", False, False),
                                  "6.12": _row("off", "off", False, False),
                                  "7.2": _row("off", "off", False, False)}),
    # 6.1: any exact pti= word wins over nopti wherever it stands; 6.12/7.2: the last word wins
    ("pti=auto nopti", {"6.1": ON, "6.12": _row("off", "auto", True),
                        "7.2": _row("off", "auto", True)}),
    ("nopti pti=on", {v: _row("on", "auto", True) for v in ("6.1", "6.12", "7.2")}),
    ("pti=on pti=off", {v: _row("off", "auto", True) for v in ("6.1", "6.12", "7.2")}),
    # 6.1 compares the value's length too: "pti=onx" is no pti= word, nopti decides
    ("pti=onx nopti", {"6.1": _row("off", "auto", True), "6.12": _row("off", "auto", True),
                       "7.2": _row("off", "auto", True)}),
    # 6.1 and 6.12: mitigations=off is the off command whatever spectre_v2= says; 7.2 keeps it
    ("mitigations=off spectre_v2=retpoline",
     {"6.1": _row("off", "off", False, False), "6.12": _row("off", "off", False, False),
      "7.2": _row("off", "retpoline", False, False)}),
    # nospectre_v2 wins over every spectre_v2= in each version (6.1/6.12: read first)
    ("spectre_v2=retpoline nospectre_v2", {v: _row("auto", "off", True)
                                           for v in ("6.1", "6.12", "7.2")}),
    ("spectre_v2=eibrs spectre_v2=retpoline,lfence",
     {v: _row("auto", "retpoline,lfence", True) for v in ("6.1", "6.12", "7.2")}),
    # an unknown word: 6.1 and 6.12 switch to the default, 7.2 ignores it (auto either way here)
    ("spectre_v2=bogus", {v: ON for v in ("6.1", "6.12", "7.2")}),
    # one VERW mitigation: off only when all three are off, in every version
    ("mds=off", {v: ON for v in ("6.1", "6.12", "7.2")}),
    ("mds=off tsx_async_abort=off mmio_stale_data=off",
     {v: _row("auto", "auto", False) for v in ("6.1", "6.12", "7.2")}),
    # 6.1/6.12 turn MDS off on mitigations=off even after mds=full; 7.2 keeps the explicit word
    ("mitigations=off mds=full", {"6.1": _row("off", "off", False, False),
                                  "6.12": _row("off", "off", False, False),
                                  "7.2": _row("off", "off", True, False)}),
    # 7.2's attack vectors: unknown to 6.1 and 6.12, whose mitigations= refuses the value
    ("mitigations=auto,no_user_kernel,no_guest_host",
     {"6.1": ON, "6.12": ON, "7.2": _row("off", "off", True, False)}),
]


@pytest.mark.parametrize(("cmdline", "want"), VERSIONS, ids=[c or "default" for c, _ in VERSIONS])
@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2"])
def test_vulnerabilities_by_version(models: dict[str, ResolveModel],
                                    specs: tuple[FeatureSpec, ...], version: str, cmdline: str,
                                    want: dict[str, tuple[object, ...]]) -> None:
    states = _states(models, specs, version, cmdline)
    assert dict(zip(SHOWN, (states.get(n) for n in SHOWN))) == dict(zip(SHOWN, want[version]))


# (command line, 6.1's pti, meltdown, spectre_v2, vulnerabilities.spectre_v2, mds, mmio)
CASES_61 = [
    ("", "auto", True, "auto", True, True, True),
    ("nopti", "off", False, "auto", True, True, True),
    ("pti=off", "off", False, "auto", True, True, True),
    ("pti=auto nopti mitigations=off", "auto", True, "off", False, False, False),
    ("pti=on nopti", "on", True, "auto", True, True, True),
    ("pti", "auto", True, "auto", True, True, True),  # no "=": no pti= word, nothing else
    ("nospectre_v2", "auto", True, "off", False, True, True),
    ("spectre_v2=off", "auto", True, "off", False, True, True),
    ("spectre_v2=retpoline,amd", "auto", True, "retpoline,amd", False, True, True),
    ("spectre_v2=ibrs", "auto", True, "ibrs", True, True, True),
    ("mds=full,nosmt", "auto", True, "auto", True, True, True),
    ("mds=off mmio_stale_data=off tsx_async_abort=off", "auto", True, "auto", True, False, False),
    ("mds=off mmio_stale_data=off tsx_async_abort=full", "auto", True, "auto", True, True, True),
]


@pytest.mark.parametrize(("cmdline", "pti", "meltdown", "v2", "v2vuln", "mds", "mmio"),
                         CASES_61)
def test_vulnerabilities_61(models: dict[str, ResolveModel], specs: tuple[FeatureSpec, ...],
                            cmdline: str, pti: str, meltdown: bool, v2: str, v2vuln: bool,
                            mds: bool, mmio: bool) -> None:
    states = _states(models, specs, "6.1", cmdline)
    got = tuple(states[n] for n in ("pti", "vulnerabilities.meltdown", "spectre_v2",
                                    "vulnerabilities.spectre_v2", "vulnerabilities.mds",
                                    "vulnerabilities.mmio_stale_data"))
    assert got == (pti, meltdown, v2, v2vuln, mds, mmio), cmdline


@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2"])
def test_no_stale_declaration_warnings(models: dict[str, ResolveModel],
                                       specs: tuple[FeatureSpec, ...], version: str) -> None:
    """Every x86 declaration holds in each version: 6.1's direct pti= reads and 6.1/6.12's
    direct spectre_v2= reads need no registration, the early_params exist where declared."""
    res = _resolution(models, specs, version, "")
    assert not [w for w in res.warnings if "declares" in w], res.warnings


@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2"])
@pytest.mark.parametrize("word", ["mds=full,nosmt", "tsx_async_abort=full,nosmt",
                                  "mmio_stale_data=full,nosmt"])
def test_nosmt_words_disable_smt(models: dict[str, ResolveModel],
                                 specs: tuple[FeatureSpec, ...], version: str, word: str) -> None:
    """Each VERW bug's ",nosmt" word turns SMT off (cpu_smt_disable(false)) in every version;
    under 6.1's and 6.12's mitigations=off the bug is not mitigated and SMT stays on."""
    assert _states(models, specs, version, word)["smt"] == "off"
    if version != "7.2":
        assert _states(models, specs, version, f"mitigations=off {word}")["smt"] == "on"


def test_pti_words_are_unknown_to_61_and_still_act(models: dict[str, ResolveModel],
                                                   specs: tuple[FeatureSpec, ...]) -> None:
    """6.1 registers no pti= and no spectre_v2=: the kernel proper calls them unknown (and
    hands them to init), while pti.c and bugs.c have read them already. Both show."""
    res = _resolution(models, specs, "6.1", "pti=on spectre_v2=off mitigations=off")
    pti = next(f for f in res.features if f.name == "pti")
    assert pti.effective == "on"
    assert any("read directly from the command line" in s.reason for s in pti.sources)
    assert {"pti=on", "spectre_v2=off"} <= set(res.cmdline.unknown)
    assert {"pti=on", "spectre_v2=off"} <= set(res.cmdline.init_envp)


def test_61_pti_follows_its_build_option(specs: tuple[FeatureSpec, ...],
                                         tmp_path: Path) -> None:
    """6.1's build option is PAGE_TABLE_ISOLATION: without it PTI and the Meltdown mitigation
    are off whatever pti= says."""
    text = (real_configs("6.1") / CONFIG).read_text(encoding="utf-8")
    assert "CONFIG_PAGE_TABLE_ISOLATION=y" in text
    path = tmp_path / "config-6.1-nopti"
    path.write_text(text.replace("CONFIG_PAGE_TABLE_ISOLATION=y",
                                 "# CONFIG_PAGE_TABLE_ISOLATION is not set"), encoding="utf-8")
    model, config = _side61(specs, path)
    states = {f.name: f.effective for f in resolve(model, config, "pti=on", specs=specs).features}
    assert (states["pti"], states["vulnerabilities.meltdown"]) == ("off", False)


def test_the_cpu_dependence_is_stated(models: dict[str, ResolveModel],
                                      specs: tuple[FeatureSpec, ...]) -> None:
    """mds=off alone leaves MDS mitigated only on a CPU also affected by TAA or MMIO Stale Data:
    the answer says so instead of guessing the CPU."""
    res = _resolution(models, specs, "7.2", "mds=off")
    mds = next(f for f in res.features if f.name == "vulnerabilities.mds")
    assert mds.effective is True
    assert any("not affected by the other VERW bugs" in note for note in mds.machine)


def test_vectors_follow_kvm(models: dict[str, ResolveModel],
                            specs: tuple[FeatureSpec, ...]) -> None:
    """The guest vectors are mitigated by default only where KVM is built (Debian: KVM=m)."""
    states = _states(models, specs, "7.2", "")
    assert states["mitigations.guest_host"] is True and states["mitigations.guest_guest"] is True
    assert states["mitigations.user_user"] is True
    off = _states(models, specs, "7.2", "mitigations=auto,no_guest_host")
    assert off["mitigations.guest_host"] is False and off["mitigations.user_kernel"] is True


@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2"])
def test_l1tf_pte_inversion_survives_every_switch(models: dict[str, ResolveModel],
                                                  specs: tuple[FeatureSpec, ...],
                                                  version: str) -> None:
    """PTE inversion is set whatever the command line says (a string match on mitigations=off
    gets it wrong); only the machine (RAM above MAX_PA/2) can undo it, and the answer says so."""
    for cmdline in ("", "mitigations=off", "l1tf=off mitigations=off"):
        assert _states(models, specs, version, cmdline)["vulnerabilities.l1tf"] is True
