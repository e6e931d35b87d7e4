"""The feature engine on the hand-made model: each merge rule, parser and Kconfig reason."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from resolve_synthetic import CLOUD, model_file_fixture, model_fixture  # noqa: F401 (fixtures)

from kpolicy.kconfig.model import Location
from kpolicy.params.model import Registration
from kpolicy.params.semantics import load_param_rules
from kpolicy.resolve.api import ResolveMemo, resolve
from kpolicy.resolve.engine import FeatureMemo, FeatureState
from kpolicy.resolve.features import Machine
from kpolicy.resolve.inputs import ConfigInput
from kpolicy.resolve.model import ResolveModel


def features(model: ResolveModel, cmdline: str, **config: str) -> dict[str, FeatureState]:
    values = {**CLOUD, **config}
    res = resolve(model, ConfigInput("cloud.config", values, "7.2.13"), cmdline)
    return {f.name: f for f in res.features}


def cmdline_outcomes(f: FeatureState) -> list[Any]:
    return [(s.token, s.outcome) for s in f.sources if s.kind == "cmdline"]


def test_config_default_applies_without_cmdline(model: ResolveModel) -> None:
    f = features(model, "")
    assert f["init_on_alloc"].effective is True
    assert f["init_on_free"].effective is False
    assert f["transparent_hugepage"].effective == "always"
    assert f["vsyscall"].effective == "none"
    assert f["slab_nomerge"].effective is False  # SLAB_MERGE_DEFAULT=y, inverted
    assert f["init_on_alloc"].kconfig_default is False  # no input config: the symbol is off


def test_last_wins_and_kstrtobool_words(model: ResolveModel) -> None:
    f = features(model, "init_on_free=1 init_on_free=off init_on_free=Yes")
    assert f["init_on_free"].effective is True
    assert [o for _t, o in cmdline_outcomes(f["init_on_free"])] == ["accepted"] * 3


def test_kstrtobool_follows_the_model_version(model: ResolveModel) -> None:
    assert features(model, "init_on_free=e")["init_on_free"].effective is True  # 7.2 >= 6.16
    old = dataclasses.replace(model, version="6.12.117")
    assert features(old, "init_on_free=e")["init_on_free"].effective is False
    assert cmdline_outcomes(features(old, "init_on_free=e")["init_on_free"]) == [
        ("init_on_free=e", "malformed")
    ]


def test_early_bool_without_value_is_malformed(model: ResolveModel) -> None:
    f = features(model, "init_on_alloc")["init_on_alloc"]
    assert f.effective is True
    assert cmdline_outcomes(f) == [("init_on_alloc", "malformed")]


def test_module_bool_without_value_depends_on_noarg(model: ResolveModel) -> None:
    # param_ops_bool_enable_only has KERNEL_PARAM_OPS_FL_NOARG: a bare name means true
    assert features(model, "module.sig_enforce")["module.sig_enforce"].effective is True
    # zswap's own ops do not: a bare name is invalid and changes nothing
    f = features(model, "zswap.enabled", ZSWAP_DEFAULT_ON="y")["zswap.enabled"]
    assert f.effective is True and cmdline_outcomes(f) == [("zswap.enabled", "invalid")]
    assert features(model, "zswap.enabled=1")["zswap.enabled"].effective is True


def test_lockdown_only_rises(model: ResolveModel) -> None:
    f = features(model, "lockdown=confidentiality lockdown=integrity")["lockdown"]
    assert f.effective == "confidentiality"
    assert [o for _t, o in cmdline_outcomes(f)] == ["accepted", "refused"]


def test_lockdown_none_is_not_a_word_the_handler_takes(model: ResolveModel) -> None:
    f = features(model, "lockdown=integrity lockdown=none")["lockdown"]
    assert f.effective == "integrity"
    assert [o for _t, o in cmdline_outcomes(f)] == ["accepted", "malformed"]


def test_lockdown_configured_level_raises_a_lower_cmdline(model: ResolveModel) -> None:
    f = features(
        model,
        "lockdown=integrity",
        LOCK_DOWN_KERNEL_FORCE_NONE="n",
        LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY="y",
    )["lockdown"]
    assert f.effective == "confidentiality"


def test_lockdown_needs_its_lsm_started(model: ResolveModel) -> None:
    late = {"SECURITY_LOCKDOWN_LSM_EARLY": "n", "LSM": "yama,apparmor"}
    f = features(model, "lockdown=confidentiality", **late)["lockdown"]
    assert f.effective == "none"
    assert "not listed in CONFIG_LSM" in f.why
    g = features(model, "lsm=lockdown,yama lockdown=confidentiality", **late)["lockdown"]
    assert g.effective == "confidentiality"


def test_enable_only_refuses_a_later_zero(model: ResolveModel) -> None:
    f = features(model, "module.sig_enforce=1 module.sig_enforce=0")["module.sig_enforce"]
    assert f.effective is True
    # the command-line engine refuses the 0 as the kernel does: -EROFS, "invalid for parameter"
    assert [o for _t, o in cmdline_outcomes(f)] == ["accepted", "invalid"]
    assert "enable-only and already on" in f.sources[-1].reason
    assert features(model, "", MODULE_SIG_FORCE="y")["module.sig_enforce"].effective is True
    forced = features(model, "module.sig_enforce=0", MODULE_SIG_FORCE="y")["module.sig_enforce"]
    assert forced.effective is True


def test_invalid_enum_word_keeps_the_default(model: ResolveModel) -> None:
    f = features(model, "transparent_hugepage=sometimes")["transparent_hugepage"]
    assert f.effective == "always"
    # the handler refuses the word (returns 0), so the token then goes on to init's envp
    assert cmdline_outcomes(f) == [
        ("transparent_hugepage=sometimes", "refused"),
        ("transparent_hugepage=sometimes", "init-env"),
    ]
    assert (
        features(model, "transparent_hugepage=madvise")["transparent_hugepage"].effective
        == "madvise"
    )


def test_machine_dependency_is_reported_and_applied(model: ResolveModel) -> None:
    f = features(model, "")["transparent_hugepage"]
    assert any("512 MiB" in m for m in f.machine) and f.effective == "always"
    small = Machine(ram_mib=384)
    config = ConfigInput("cloud.config", CLOUD, "7.2.13")
    res = resolve(model, config, "transparent_hugepage=always", machine=small)
    thp = next(f for f in res.features if f.name == "transparent_hugepage")
    assert thp.effective == "never" and thp.sources[-1].kind == "machine"
    big = resolve(model, config, "", machine=Machine(ram_mib=4096))
    assert next(f for f in big.features if f.name == "transparent_hugepage").effective == "always"


def test_secure_boot_raises_lockdown_when_configured(model: ResolveModel) -> None:
    config = ConfigInput("c", {**CLOUD, "LOCK_DOWN_IN_EFI_SECURE_BOOT": "y"}, "7.2.13")
    on = resolve(model, config, "", machine=Machine(secure_boot=True))
    assert next(f for f in on.features if f.name == "lockdown").effective == "integrity"
    off = resolve(model, config, "", machine=Machine(secure_boot=False))
    assert next(f for f in off.features if f.name == "lockdown").effective == "none"


def test_flag_parameters_set_constants_in_order(model: ResolveModel) -> None:
    assert features(model, "slab_nomerge")["slab_nomerge"].effective is True
    assert features(model, "slub_nomerge slab_merge")["slab_nomerge"].effective is False


def test_build_only_family_names_the_blocking_dependency(model: ResolveModel) -> None:
    f = features(model, "")["MSEAL_SYSTEM_MAPPINGS"]
    assert f.built is False and f.effective is False
    assert "!CHECKPOINT_RESTORE" in f.blocked_by[0]
    assert "CHECKPOINT_RESTORE=y (Kconfig.test:31)" in f.blocked_by[0]
    assert "Kconfig.test:33" in f.blocked_by[0]  # where MSEAL_SYSTEM_MAPPINGS is defined
    assert (
        features(model, "", CHECKPOINT_RESTORE="n", MSEAL_SYSTEM_MAPPINGS="y")[
            "MSEAL_SYSTEM_MAPPINGS"
        ].effective
        is True
    )


def test_unbuilt_feature_ignores_its_parameter(model: ResolveModel) -> None:
    f = features(model, "zswap.enabled=1", ZSWAP="n")["zswap.enabled"]
    assert f.built is False and f.effective is False
    assert cmdline_outcomes(f)[0][1] != "accepted"


def test_arch_specific_feature_is_absent_elsewhere(model: ResolveModel) -> None:
    arm = dataclasses.replace(model, srcarch="arm64", arch="arm64")
    assert "vsyscall" not in features(arm, "")


RAISE_ONLY = """
# what a contributor writes: one file, nothing else
feature = "demo_level"
values = ["low", "mid", "high"]
merge = "raise-only"

[default]
value = "low"

[[param]]
name = "demo_level"
kind = "early_param"
accept = "words"
words = ["mid", "high"]
on_invalid = "malformed"
source = "demo.c demo_level_setup"

[[param]]
name = "demo_max"
kind = "__setup"
sets = "high"
priority = 1
source = "demo.c demo_max_setup"
"""


def declared_only(
    model: ResolveModel, tmp_path: Path, text: str, regs: tuple[tuple[str, str], ...]
) -> Callable[[str], FeatureState]:
    """Resolve with one rules/params file TEXT and registrations (kind, name) REGS only: the
    state of its feature for a command line (asserting the tree registers what it declares)."""
    (tmp_path / "demo.toml").write_text(text)
    rules = load_param_rules(tmp_path)
    registrations = tuple(
        Registration(kind, name, Location("demo.c", n)) for n, (kind, name) in enumerate(regs, 1)
    )
    demo = dataclasses.replace(
        model, catalog=dataclasses.replace(model.catalog, registrations=registrations)
    )

    def run(cmdline: str) -> FeatureState:
        config = ConfigInput("c", CLOUD, "7.2.13")
        res = resolve(demo, config, cmdline, specs=rules.features, declarations=rules.declarations)
        assert res.warnings == ()
        return res.features[0]

    return run


def test_a_raise_only_parameter_is_one_data_file(model: ResolveModel, tmp_path: Path) -> None:
    regs = (("early_param", "demo_level"), ("__setup", "demo_max"))
    run = declared_only(model, tmp_path, RAISE_ONLY, regs)
    f = run("demo_level=high demo_level=mid")
    assert f.effective == "high"
    assert [o for _t, o in cmdline_outcomes(f)] == ["accepted", "refused"]
    # the command-line engine decides the word is not the handler's: Malformed early option
    g = run("demo_level=low")
    assert g.effective == "low" and cmdline_outcomes(g) == [("demo_level=low", "malformed")]
    assert run("demo-level=mid").effective == "mid"  # parameq(): '-' is '_'
    assert run("demo_max demo_level=mid").effective == "high"


PRECEDENCE = """
feature = "demo_rand"

[default]
value = true

[[param]]
name = "demo_rand"
kind = "__setup"
sets = true
source = "demo.c demo_rand_setup"

[[param]]
name = "nodemo_rand"
kind = "__setup"
sets = false
priority = 1
source = "demo.c nodemo_rand_setup"
"""


def test_a_higher_priority_parameter_wins_whatever_the_order(
    model: ResolveModel, tmp_path: Path
) -> None:
    regs = (("__setup", "demo_rand"), ("__setup", "nodemo_rand"))
    run = declared_only(model, tmp_path, PRECEDENCE, regs)
    assert run("nodemo_rand demo_rand").effective is False
    assert [o for _t, o in cmdline_outcomes(run("nodemo_rand demo_rand"))] == [
        "accepted",
        "refused",
    ]
    assert run("demo_rand nodemo_rand").effective is False
    assert run("demo_rand").effective is True


def test_an_override_taken_too_early_is_taken_back() -> None:
    """Overrides are visited by feature name: smt reads vulnerabilities.retbleed before that one
    is forced off by retbleed=off, and must not keep SMT off (retbleed=off,nosmt)."""
    from kpolicy.resolve.engine import apply_overrides

    specs = {s.name: s for s in load_param_rules().features}
    wanted = ("retbleed", "retbleed.nosmt", "smt", "vulnerabilities.retbleed")

    def state(name: str, value: Any) -> FeatureState:
        return FeatureState(name=name, effective=value, built=True, default=value,
                            kconfig_default=None, option=None, params=(), sources=(),
                            blocked_by=(), machine=(), why="")

    states = (state("retbleed", "off"), state("retbleed.nosmt", True), state("smt", "on"),
              state("vulnerabilities.retbleed", True))
    out = {f.name: f.effective for f in apply_overrides(states, [specs[n] for n in wanted],
                                                         (7, 2, 0))}
    assert out == {"retbleed": "off", "retbleed.nosmt": True, "smt": "on",
                   "vulnerabilities.retbleed": False}
    nosmt = (state("retbleed", "auto"), *states[1:])
    out = {f.name: f.effective for f in apply_overrides(nosmt, [specs[n] for n in wanted],
                                                        (7, 2, 0))}
    assert out["smt"] == "off"


def test_a_memo_for_a_changed_config_reuses_only_what_read_no_changed_symbol(
        model: ResolveModel) -> None:
    """`check` proves a config fix by resolving the config with the fix applied; what the
    checker's config decided is taken over only for features that read none of the changed
    symbols (FeatureMemo): the answer is the one resolving from scratch gives."""
    base_values = dict(CLOUD)
    specs = load_param_rules().features  # the same spec objects for every call, as check has
    base = ResolveMemo(features=FeatureMemo(record=True))
    first = resolve(model, ConfigInput("cloud.config", base_values, "7.2.13"), "", specs=specs,
                    memo=base)
    before = {f.name: f for f in first.features}
    # init_on_free's default companion turned on: init_on_free must be resolved again
    changed = {"INIT_ON_FREE_DEFAULT_ON": "y"}
    derived = ResolveMemo(features=FeatureMemo(base=base.features, changed=frozenset(changed)))
    config = ConfigInput("cloud.config", {**base_values, **changed}, "7.2.13")
    got = {f.name: f for f in resolve(model, config, "", specs=specs, memo=derived).features}
    fresh = {f.name: f for f in resolve(model, config, "", specs=specs).features}
    assert got == fresh
    assert before["init_on_free"].effective is False and got["init_on_free"].effective is True
    reads = base.features.reads
    assert all(read is not None for _spec, read in reads.values())
    taken = [k for k, v in derived.features.features.items()
             if base.features.features.get(k) is v]
    assert taken and len(taken) < len(base.features.features)  # reused some, not all
    by_id = {id(s): s.name for s in specs}
    assert "init_on_free" not in {by_id.get(k) for k in taken}
    # other spec objects (even at a recycled id) never take over an entry
    other = ResolveMemo(features=FeatureMemo(base=base.features, changed=frozenset()))
    copies = tuple(dataclasses.replace(s) for s in specs)
    resolve(model, config, "", specs=copies, memo=other)
    assert not any(base.features.features.get(k) is v
                   for k, v in other.features.features.items())
