"""Issue #12's last inexact inputs, pinned on the real 6.1, 6.12 and 7.2 trees with Debian's
cloud-amd64 configs: an early param that applies part of its value and still reports it
malformed (x86 iommu=...,usedac), a last pti=/spectre_v2=/spec_store_bypass_disable= that the
6.1/6.12 direct reader does not take (cmdline_find_option reads only the last occurrence), and
slub_debug's slab list, which a later word does not clear (and 6.1/6.12's __setup prefix).

Each is also proven on a real boot of each version (tests/boot/cases.toml, the cases under
"Exactness gaps of issue #12").
"""

from __future__ import annotations

import pytest

# Debian's cloud-amd64 config of each version against its real tree, resolved once per version
from test_resolve_lsm_hash_real import VERSIONS, _resolve, _states

pytestmark = pytest.mark.real


@pytest.mark.parametrize("version", VERSIONS)
def test_iommu_usedac_is_applied_and_reported_malformed(version: str) -> None:
    """iommu_setup (the same in every version) applies the items before "usedac", then returns
    1: the word is both applied and listed as a malformed early option; the items after it are
    never read."""
    res = _resolve(version, "iommu=pt,usedac,nopt")
    assert res.cmdline.malformed_early == ("iommu",)
    (ev,) = [e for e in res.cmdline.events if e.name == "iommu"]
    assert ev.outcome == "accepted-malformed"
    states = {f.name: f.effective for f in res.features}
    assert states["iommu.passthrough"] is True
    plain = _resolve(version, "iommu=pt,nopt")
    assert plain.cmdline.malformed_early == ()
    assert {f.name: f.effective for f in plain.features}["iommu.passthrough"] is False
    # the bare word is still only malformed (if (!p) return -EINVAL): nothing applied
    assert _resolve(version, "iommu").cmdline.malformed_early == ("iommu",)


@pytest.mark.parametrize(("version", "pti"), [("6.1", "auto"), ("6.12", "on"), ("7.2", "on")])
def test_a_last_invalid_pti_voids_the_earlier_ones_on_61(version: str, pti: str) -> None:
    """6.1 reads only the last pti= (cmdline_find_option): "bogus" is no word, so pti=on counts
    for nothing; 6.12 and 7.2's early_param refuses "bogus" (malformed) and pti=on stays."""
    assert _states(version, "pti=on pti=bogus")["pti"] == pti
    # 6.1: with no pti= word read, nopti and mitigations=off decide again
    assert _states(version, "pti=on pti=bogus nopti")["pti"] == "off"
    if version == "6.1":
        assert _states(version, "mitigations=off pti=on pti=")["pti"] == "off"
        assert _states(version, "mitigations=off pti=bogus pti=on")["pti"] == "on"


@pytest.mark.parametrize(("version", "cmd"), [("6.1", "auto"), ("6.12", "auto"), ("7.2", "off")])
def test_a_last_invalid_spectre_v2_voids_the_earlier_ones_before_617(version: str,
                                                                     cmd: str) -> None:
    """6.1 and 6.12 read only the last spectre_v2=: an unknown one switches to the default
    (auto here); 7.2's early_param ignores it and the earlier off stays."""
    assert _states(version, "spectre_v2=off spectre_v2=bogus")["spectre_v2"] == cmd
    assert _states(version, "spectre_v2=bogus spectre_v2=off")["spectre_v2"] == "off"


@pytest.mark.parametrize(("version", "cmd"), [("6.1", "auto"), ("6.12", "auto"), ("7.2", "off")])
def test_a_last_invalid_ssb_voids_the_earlier_ones_before_617(version: str, cmd: str) -> None:
    """spec_store_bypass_disable= as spectre_v2=: 6.1 and 6.12 read only the last (an unknown
    value: the default), 7.2 logs and ignores it."""
    line = "spec_store_bypass_disable=off spec_store_bypass_disable=bogus"
    assert _states(version, line)["spec_store_bypass_disable"] == cmd
    # nospec_store_bypass_disable is read first in every version
    assert _states(version, "nospec_store_bypass_disable " + line)[
        "spec_store_bypass_disable"] == "off"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_slab_list_survives_a_later_dash(version: str) -> None:
    """slub_debug_string, set by a slab list, is never cleared: a later slub_debug=- zeroes the
    global flags, but debugging stays on (and pointers unhashed)."""
    states = _states(version, "slub_debug=F,kmalloc-64 slub_debug=-")
    assert states["slub_debug.slab_list"] is True and states["slub_debug"] is True
    assert states["hash_pointers"] is False
    states = _states(version, "slub_debug=F slub_debug=-")
    assert states["slub_debug.slab_list"] is False and states["slub_debug"] is False
    assert states["hash_pointers"] is True


@pytest.mark.parametrize(("version", "on"), [("6.1", True), ("6.12", True), ("7.2", False)])
def test_slub_debug_prefix_word(version: str, on: bool) -> None:
    """6.1 and 6.12 register __setup("slub_debug"): "slub_debugx=-" reaches the handler as
    "x=-", which does not start with '=': full debugging. 7.2's core_param takes only the exact
    name: the word goes to init."""
    res = _resolve(version, "slub_debugx=-")
    assert {f.name: f.effective for f in res.features}["slub_debug"] is on
    assert ("slub_debugx=-" in res.cmdline.init_envp) is not on
