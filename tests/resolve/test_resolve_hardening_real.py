"""Issue #12 on Debian's real configs and the bundled 6.1, 6.12 and 7.2 models: what a hardening
review asks (KASLR, psi, 32-bit emulation, debugfs, KFENCE, page poisoning) as each version's
source has it, and nothing inferred from a symbol's name.

The 7.2 answers are also proven on real boots (tests/boot, the hardening cases); these pin the
version differences, which the 7.2 kernel cannot show.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import real_configs
from test_resolve_vs_naive import naive

from kpolicy.cli import main
from kpolicy.params.semantics import load_param_rules
from kpolicy.resolve.api import Resolution, resolve
from kpolicy.resolve.bundle import pick_bundled, read_model
from kpolicy.resolve.inputs import read_config

pytestmark = pytest.mark.real


def _resolve(version: str, flavour: str, cmdline: str) -> Resolution:
    config = read_config(real_configs(version) / f"config.amd64_none_{flavour}")
    path, warning = pick_bundled(config.version)
    assert warning is None
    return resolve(read_model(path), config, cmdline)


def _states(res: Resolution) -> dict[str, object]:
    return {f.name: f.effective for f in res.features}


@pytest.mark.parametrize("version", ["6.12", "7.2"])
@pytest.mark.parametrize("flavour", ["amd64", "cloud-amd64"])
def test_default_disabled_symbols_read_the_right_way(version: str, flavour: str) -> None:
    """*_DEFAULT_DISABLED=n means on: Debian amd64 runs with 32-bit emulation and psi."""
    states = _states(_resolve(version, flavour, ""))
    assert states["ia32_emulation"] is True and states["psi"] is True
    off = _states(_resolve(version, flavour, "ia32_emulation=0 psi=0"))
    assert off["ia32_emulation"] is False and off["psi"] is False


def test_61_has_no_ia32_emulation_switch() -> None:
    """6.1 registers no ia32_emulation=: the word goes to init and 32-bit emulation stays on."""
    res = _resolve("6.1", "amd64", "ia32_emulation=0")
    assert _states(res)["ia32_emulation"] is True
    assert "ia32_emulation=0" in res.cmdline.unknown
    assert not any("ia32_emulation" in w for w in res.warnings)  # no stale declaration in 6.1


@pytest.mark.parametrize(("version", "state"), [("6.1", "no-mount"), ("6.12", "no-mount"),
                                                ("7.2", "off")])
def test_debugfs_no_mount_per_version(version: str, state: str) -> None:
    """debugfs=no-mount keeps the API up to 6.12; 7.2 reads it as a deprecated alias of off."""
    states = _states(_resolve(version, "amd64", "debugfs=no-mount"))
    assert states["debugfs"] == state
    assert _states(_resolve(version, "amd64", "debugfs=bogus"))["debugfs"] == "on"


@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2"])
def test_page_poison_takes_precedence_on_generic_amd64(version: str) -> None:
    """Debian's generic amd64 builds PAGE_POISONING: page_poison=1 turns init_on_alloc and
    init_on_free off whatever asked for them; the cloud flavour lacks it, so nothing changes."""
    generic = _states(_resolve(version, "amd64", "init_on_free=1 page_poison=1"))
    assert generic["page_poison"] is True
    assert generic["init_on_alloc"] is False and generic["init_on_free"] is False
    cloud = _states(_resolve(version, "cloud-amd64", "init_on_free=1 page_poison=1"))
    assert cloud["page_poison"] is False and cloud["init_on_free"] is True


@pytest.mark.parametrize("version", ["6.12", "7.2"])
def test_kfence_is_off_with_a_zero_sample_interval(version: str) -> None:
    """Debian builds KFENCE with KFENCE_SAMPLE_INTERVAL=0: off until an interval is given."""
    states = _states(_resolve(version, "amd64", ""))
    assert states["kfence"] is False and states["kfence.sample_interval"] == 0
    on = _states(_resolve(version, "amd64", "kfence.sample_interval=0x20"))
    assert on["kfence"] is True and on["kfence.sample_interval"] == 32


@pytest.mark.parametrize(
    ("cmdline", "kaslr"),
    [("nokaslr", False), ("-- nokaslr", False), ("nokaslr=1", True), ('"nokaslr"', True),
     ("no-kaslr", True), ("kaslr", True)],
)
def test_nokaslr_is_read_by_the_decompressor(cmdline: str, kaslr: bool) -> None:
    """The exact word anywhere in the boot loader's line, also after "--"; the kernel proper
    still lists nokaslr as unknown."""
    res = _resolve("7.2", "cloud-amd64", cmdline)
    assert _states(res)["kaslr"] is kaslr
    if cmdline == "nokaslr":
        assert res.cmdline.unknown == ("nokaslr",)


def test_only_declared_features_have_states() -> None:
    """Every feature comes from rules/params/ (or, "lsm", from rules/lsm/lsms.toml);
    discovered families are options with their Kconfig value only (e.g. VMAP_STACK), never an
    effective on/off."""
    from kpolicy.resolve.lsm import FEATURE as LSM_FEATURE

    declared = {s.name for s in load_param_rules().features} | {LSM_FEATURE}
    res = _resolve("7.2", "amd64", "")
    assert {f.name for f in res.features} <= declared
    options = {o.option: o.value for o in res.options}
    assert options and not set(options) & declared
    assert options.get("VMAP_STACK") == "y"


def test_a_config_is_never_resolved_against_another_arch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An arm64 config takes the bundled arm64 model, never the x86_64 one; a config of an arch
    with no bundled model, or given an x86_64 --model, stops with exit 2 naming how its arch
    was read."""
    import json

    from kpolicy.resolve.bundle import bundled_models

    config = tmp_path / "arm64.config"
    config.write_text("#\n# Linux/arm64 7.2.13 Kernel Configuration\n#\nCONFIG_ARM64=y\n"
                      "CONFIG_64BIT=y\n", encoding="utf-8")
    assert main(["resolve", "--config", str(config), "--cmdline", "", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["kernel"]["arch"] == "arm64"
    x86_model = bundled_models("x86_64")["7.2.13"]
    assert main(["resolve", "--config", str(config), "--model", str(x86_model),
                 "--cmdline", ""]) == 2
    err = capsys.readouterr().err
    assert "arm64" in err and "model build" in err
    headerless = tmp_path / "riscv-bare.config"
    headerless.write_text("CONFIG_RISCV=y\n", encoding="utf-8")
    assert main(["resolve", "--config", str(headerless), "--format", "json",
                 "--cmdline", ""]) == 2
    assert "CONFIG_RISCV=y" in capsys.readouterr().err


def test_batch_answers_equal_single_resolves(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """--cmdlines resolves the coupled features (direct reads, overrides) like resolve does."""
    config = real_configs("7.2") / "config.amd64_none_amd64"
    lines = ["", "nokaslr", "-- nokaslr", "page_poison=1 init_on_free=1",
             "kfence.sample_interval=5", "kfence.sample_interval=0 psi=0"]
    batch = tmp_path / "lines.jsonl"
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert main(["resolve", "--config", str(config), "--cmdlines", str(batch), "--jobs", "1"]) == 0
    answers = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    for line, answer in zip(lines, answers):
        assert main(["resolve", "--config", str(config), "--cmdline", line,
                     "--format", "json"]) == 0
        single = json.loads(capsys.readouterr().out)
        assert answer["features"] == single["features"], line
        assert answer["options"] == single["options"]


# --- where string matching gets hardening wrong (README's comparison table) -------------------


def test_nokaslr_with_a_value_is_not_nokaslr() -> None:
    """`nokaslr=1`: a string matcher cuts at "=" and sees nokaslr; the decompressor wants the
    bare word, so KASLR stays on (boot case nokaslr-value)."""
    line = "nokaslr=1"
    assert "nokaslr" in naive(line)
    assert _states(_resolve("7.2", "cloud-amd64", line))["kaslr"] is True


def test_page_poison_takes_init_on_free_away() -> None:
    """`init_on_free=1 page_poison=1` on Debian's generic amd64 (PAGE_POISONING=y): the string
    says init_on_free is on; mm_init.c turns it off for page poisoning."""
    line = "init_on_free=1 page_poison=1"
    assert naive(line)["init_on_free"] == "1"
    states = _states(_resolve("7.2", "amd64", line))
    assert states["init_on_free"] is False and states["page_poison"] is True


def test_kfence_built_is_not_kfence_on() -> None:
    """CONFIG_KFENCE=y reads as "KFENCE on"; with KFENCE_SAMPLE_INTERVAL=0 it never starts
    (boot case hardening-baseline)."""
    res = _resolve("7.2", "cloud-amd64", "")
    assert res.config.values["KFENCE"] == "y" and res.config.values["KFENCE_SAMPLE_INTERVAL"] == "0"
    assert _states(res)["kfence"] is False


def test_debugfs_no_mount_is_off_in_72() -> None:
    """`debugfs=no-mount` is not the string "off", yet 7.2 treats it as off (boot case
    debugfs-no-mount: the mount fails)."""
    line = "debugfs=no-mount"
    assert naive(line)["debugfs"] != "off"
    assert _states(_resolve("7.2", "cloud-amd64", line))["debugfs"] == "off"


def test_ia32_emulation_off_is_unknown_to_61() -> None:
    """`ia32_emulation=0` reads as "32-bit emulation off"; 6.1 has no such parameter."""
    line = "ia32_emulation=0"
    assert naive(line)["ia32_emulation"] == "0"
    assert _states(_resolve("6.1", "cloud-amd64", line))["ia32_emulation"] is True


@pytest.mark.parametrize(
    ("cmdline", "on_612", "on_72"),
    [("", True, True), ("nopti", False, False), ("pti=off", False, False),
     ("mitigations=off", False, False),
     ("mitigations=off pti=on", False, True), ("pti=on mitigations=off", False, True),
     ("mitigations=off mitigations=auto", True, False),
     ("mitigations=auto,no_user_kernel", True, False),
     ("mitigations=auto,bogus,no_user_kernel", True, True), ("pti=bogus", True, True)],
)
def test_meltdown_mitigation_per_version(cmdline: str, on_612: bool, on_72: bool) -> None:
    """PTI on an affected CPU: 6.12 lets mitigations=off override an explicit pti=on, 7.2 does
    not; 7.2's mitigations=off clears the attack vectors for good and reads vector controls
    (the 7.2 rows are Skylake boot cases). 6.1's direct reads: test_resolve_vulnerabilities_real
    (on the model built from the 6.1 tree)."""
    for version, on in (("6.12", on_612), ("7.2", on_72)):
        states = _states(_resolve(version, "cloud-amd64", cmdline))
        assert states["vulnerabilities.meltdown"] is on, (version, cmdline)
        assert (states["pti"] != "off") is on


def test_mitigations_off_then_auto_is_not_auto_for_pti() -> None:
    """`mitigations=off mitigations=auto`: the last word says auto, yet 7.2's attack vectors stay
    cleared and PTI stays off (boot case skylake-mitigations-off-then-auto)."""
    line = "mitigations=off mitigations=auto"
    assert naive(line)["mitigations"] == "auto"
    states = _states(_resolve("7.2", "cloud-amd64", line))
    assert states["mitigations"] == "auto" and states["vulnerabilities.meltdown"] is False


def test_explicit_pti_survives_mitigations_off_in_72() -> None:
    """`mitigations=off pti=on`: "mitigations off" to a string matcher; 7.2 keeps PTI (boot case
    skylake-pti-on-mitigations-off), 6.12 does not."""
    line = "mitigations=off pti=on"
    assert naive(line)["mitigations"] == "off"
    assert _states(_resolve("7.2", "cloud-amd64", line))["vulnerabilities.meltdown"] is True
    assert _states(_resolve("6.12", "cloud-amd64", line))["vulnerabilities.meltdown"] is False


def test_text_leads_with_grouped_hardening_and_shows_refused_words(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Text output: the review's groups in order, then the words the kernel refused or did not
    know (without -v), then the discovered options."""
    config = real_configs("7.2") / "config.amd64_none_cloud-amd64"
    assert main(["resolve", "--config", str(config), "--cmdline",
                 "nokaslr pti=bogus kfence.sample_interval=x"]) == 0
    out = capsys.readouterr().out.splitlines()
    headers = [x for x in out if x.startswith("[")]
    assert headers[:6] == ["[memory]", "[cpu-mitigations]", "[address-space]", "[iommu-dma]",
                           "[attack-surface]", "[integrity-lockdown]"]
    assert out.index("[cpu-mitigations]") < out.index(next(x for x in out
                                                            if x.startswith("pti ")))
    assert "malformed early options: pti" in out
    assert "invalid values: kfence.sample_interval=x" in out
    assert "unknown (passed to init): nokaslr" in out
    assert out.index("unknown (passed to init): nokaslr") < out.index(
        next(x for x in out if x.startswith("discovered options")))


@pytest.mark.parametrize(
    ("cmdline", "on_612", "on_72"),
    [("", True, True), ("nospectre_v1", False, False), ("mitigations=off", False, False),
     ("mitigations=off pti=on", False, False), ("mitigations=auto,no_user_kernel", True, False),
     ("mitigations=off mitigations=auto", True, False)],
)
def test_spectre_v1_per_version(cmdline: str, on_612: bool, on_72: bool) -> None:
    """The swapgs barriers: 6.12 drops them on mitigations=off; 7.2 whenever the user-to-kernel
    vector is not mitigated (the 7.2 rows are boot cases, on every emulated CPU)."""
    for version, on in (("6.12", on_612), ("7.2", on_72)):
        states = _states(_resolve(version, "cloud-amd64", cmdline))
        assert states["vulnerabilities.spectre_v1"] is on, (version, cmdline)


@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2"])
def test_batch_equals_resolve_on_every_boot_case_line(version: str) -> None:
    """The batch's memos (config-only features, the coupled group keyed by the events reaching
    it) give resolve()'s answer for every command line of the boot oracle's cases, in a shuffled
    order: most lines leave the coupled group's events as another line had them, so memo hits
    are compared too."""
    import random
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "boot"))
    import oracle

    from kpolicy.resolve.api import all_features, kernel_params_for
    from kpolicy.resolve.batch import BatchResolver
    from kpolicy.resolve.output import resolution_json

    config = read_config(real_configs(version) / "config.amd64_none_cloud-amd64")
    path, _warning = pick_bundled(config.version)
    model = read_model(path)
    rules = load_param_rules()
    specs = all_features(model, rules.features)
    # and words a direct reader may find inside other words or after "--"
    extra = ["nokaslrx", "x nokaslr=1", "-- nokaslr", "nopti -- pti=on", "pti=on nopti",
             "mitigations=off -- spectre_v2=on", "spectre_v2=on,nosmt", "nospectre_v2x"]
    lines = [*(c.cmdline for c in oracle.load_cases()), *extra * 2]
    random.Random(18).shuffle(lines)
    kp = kernel_params_for(model, config, declarations=rules.declarations)
    batch = BatchResolver(model, config, specs, kp)
    for line in lines:
        got = json.loads(b"".join(bytes(p) for p in batch.pieces(line, None, None)))
        want = resolution_json(resolve(model, config, line, specs=specs,
                                       declarations=rules.declarations))
        assert got["features"] == want["features"], line
