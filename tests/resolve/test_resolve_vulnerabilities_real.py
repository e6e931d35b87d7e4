"""Issue #12: the CPU vulnerabilities beyond Meltdown and Spectre v1 (spectre_v2, mds,
mmio_stale_data) and the attack vectors they read, on Debian's real 6.12 and 7.2 configs with
the bundled models (tests/boot checks the 7.2 model built from the real tree against the boots).

The 7.2 rows are also boot cases (tests/boot/cases.toml, Skylake-Client-v4); these pin the
version differences, which the 7.2 kernel cannot show.
"""

from __future__ import annotations

import pytest
from conftest import real_configs

from kpolicy.params.semantics import FeatureSpec, load_param_rules
from kpolicy.resolve.api import resolve
from kpolicy.resolve.bundle import pick_bundled, read_model
from kpolicy.resolve.inputs import read_config
from kpolicy.resolve.model import ResolveModel

pytestmark = pytest.mark.real

VULNS = ("vulnerabilities.spectre_v2", "vulnerabilities.mds", "vulnerabilities.mmio_stale_data")


@pytest.fixture(scope="module")
def specs() -> tuple[FeatureSpec, ...]:
    return load_param_rules().features


@pytest.fixture(scope="module")
def models() -> dict[str, ResolveModel]:
    out = {}
    for version in ("6.12", "7.2"):
        config = read_config(real_configs(version) / "config.amd64_none_cloud-amd64")
        path, warning = pick_bundled(config.version)
        assert warning is None
        out[version] = read_model(path)
    return out


def _states(models: dict[str, ResolveModel], specs: tuple[FeatureSpec, ...], version: str,
            cmdline: str) -> dict[str, object]:
    config = read_config(real_configs(version) / "config.amd64_none_cloud-amd64")
    res = resolve(models[version], config, cmdline, specs=specs)
    return {f.name: f.effective for f in res.features}


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
    # 6.12 reads spectre_v2= directly (cmdline_find_option): not modelled, so not answered
    assert "vulnerabilities.spectre_v2" not in states and "spectre_v2" not in states


def test_the_cpu_dependence_is_stated(models: dict[str, ResolveModel],
                                      specs: tuple[FeatureSpec, ...]) -> None:
    """mds=off alone leaves MDS mitigated only on a CPU also affected by TAA or MMIO Stale Data:
    the answer says so instead of guessing the CPU."""
    config = read_config(real_configs("7.2") / "config.amd64_none_cloud-amd64")
    res = resolve(models["7.2"], config, "mds=off", specs=specs)
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


@pytest.mark.parametrize("version", ["6.12", "7.2"])
def test_l1tf_pte_inversion_survives_every_switch(models: dict[str, ResolveModel],
                                                  specs: tuple[FeatureSpec, ...],
                                                  version: str) -> None:
    """PTE inversion is set whatever the command line says (a string match on mitigations=off
    gets it wrong); only the machine (RAM above MAX_PA/2) can undo it, and the answer says so."""
    for cmdline in ("", "mitigations=off", "l1tf=off mitigations=off"):
        assert _states(models, specs, version, cmdline)["vulnerabilities.l1tf"] is True
