"""The early pass, the main pass, __setup matching, init's argv/envp, `--`, sysctls, limits."""

from __future__ import annotations

from typing import Optional

import pytest
from cmdline_synthetic import CONFIG, synthetic
from hypothesis import given
from hypothesis import strategies as st

from kpolicy.cmdline import CmdlineResult, process_cmdline
from kpolicy.errors import KpolicyError

KP = synthetic()


def run(line: str, **kw: object) -> CmdlineResult:
    return process_cmdline(KP, line, **kw)  # type: ignore[arg-type]


def outcomes(r: CmdlineResult) -> list[tuple[str, str, str]]:
    return [(e.raw, e.stage, e.outcome) for e in r.events]


def test_unknown_words_go_to_init_argv_and_envp_and_are_listed_in_order() -> None:
    r = run("foo BAR=1 baz x.y=2")
    assert r.init_argv == ("foo", "baz")
    assert r.init_envp == ("BAR=1",)
    assert r.unknown == ("foo", "baz", "BAR=1")  # argv first, then envp, as the kernel prints


def test_early_param_bad_value_is_malformed_and_never_reaches_init() -> None:
    r = run("init_on_alloc=maybe init_on_free lockdown=none lockdown=integrity")
    assert r.malformed_early == ("init_on_alloc", "init_on_free", "lockdown")
    assert r.unknown == () and r.init_argv == ()
    assert ("lockdown=integrity", "early", "accepted") in outcomes(r)


def test_dashes_and_underscores_are_the_same_but_case_matters() -> None:
    r = run("init-on-free=1 Init_on_alloc=0 module.sig-enforce=1")
    assert ("init-on-free=1", "early", "accepted") in outcomes(r)
    assert ("module.sig-enforce=1", "main", "accepted") in outcomes(r)
    assert r.init_envp == ("Init_on_alloc=0",)


def test_module_and_core_params_parse_values_and_report_invalid_ones() -> None:
    r = run("panic=x zswap.max_pool_percent=lots zswap.enabled zswap.enabled=maybe "
            "crash_kexec_post_notifiers inv.flag panic=-1")
    assert r.invalid == (("panic", "x"), ("zswap.max_pool_percent", "lots"), ("zswap.enabled", ""),
                         ("zswap.enabled", "maybe"), ("inv.flag", ""))
    assert ("crash_kexec_post_notifiers", "main", "accepted") in outcomes(r)
    assert ("panic=-1", "main", "accepted") in outcomes(r)
    assert r.unknown == ()


def test_charp_longer_than_1024_is_too_large_not_invalid() -> None:
    r = run("drv.name=" + "a" * 1025)
    assert r.invalid == () and outcomes(r)[0][1:] == ("main", "too-large")


def test_enable_only_refuses_a_later_zero() -> None:
    r = run("module.sig_enforce=1 module.sig_enforce=0")
    assert r.invalid == (("module.sig_enforce", "0"),)
    assert run("module.sig_enforce=0").invalid == ()
    forced = synthetic({**CONFIG, "MODULE_SIG_FORCE": "y"})
    assert process_cmdline(forced, "module.sig_enforce=0").invalid == (("module.sig_enforce", "0"),)


def test_params_of_code_not_built_in_are_unknown() -> None:
    r = run("modular.opt=1 early_only_in_module=1")
    assert r.unknown == ("early_only_in_module=1",)  # dotted one dropped for modprobe
    assert r.malformed_early == ()
    assert "MODULAR" in r.events[-1].reason
    assert "MODULAR" in r.events[0].reason


def test_setup_prefix_matching_and_handlers_that_return_0() -> None:
    r = run("norandmapsXYZ norandmaps=1 ro root=/dev/sda rw transparent_hugepage=sometimes "
            "transparent_hugepage=never transparent-hugepage=always Transparent_hugepage=never")
    assert r.init_argv == ("rw",)
    assert r.init_envp == ("transparent_hugepage=sometimes", "Transparent_hugepage=never")
    assert ("root=/dev/sda", "setup", "refused") in outcomes(r)  # "ro" matches, returns 0
    assert ("root=/dev/sda", "setup", "accepted") in outcomes(r)  # then "root=" takes it
    assert ("transparent-hugepage=always", "setup", "accepted") in outcomes(r)


def test_env_replacement_keeps_the_first_place() -> None:
    r = run("FOO=1 BAR=x FOO=2 TERM=vt100")
    assert r.init_envp == ("TERM=vt100", "FOO=2", "BAR=x")  # TERM took TERM=linux's slot
    assert r.unknown == ("FOO=2", "BAR=x")  # TERM replaced the kernel's own entry
    assert ("FOO=2", "init-env", "replaced") in outcomes(r)


def test_repeats_call_the_handler_each_time() -> None:
    r = run("init_on_free=1 init_on_free=maybe init_on_free=0")
    assert [e.outcome for e in r.events] == ["accepted", "malformed", "accepted"]


def test_double_dash_sends_the_rest_to_init_argv() -> None:
    r = run("init_on_free=1 -- foo bar=1 init_on_alloc=0 -- x")
    assert r.init_argv == ("foo", "bar=1", "init_on_alloc=0")  # parse_args stops at the 2nd --
    assert r.unknown == () and r.init_envp == ()
    assert [e.raw for e in r.events if e.stage == "early"] == ["init_on_free=1"]
    assert run('"--" x').init_argv == ("x",)
    assert run("--=1 y").init_envp == ("--=1",)


def test_init_equals_discards_earlier_argv() -> None:
    r = run("a b init=/bin/sh c")
    assert r.init_argv == ("c",)
    assert r.unknown == ("c",)


def test_bootloader_identifiers_and_sysctl_aliases_are_dropped() -> None:
    r = run("BOOT_IMAGE=/vmlinuz kexec_jump hung_task_panic=1 sysctl.kernel.foo=2 sysctl/vm/x=1")
    assert r.unknown == ("sysctl/vm/x=1",)  # no dot in the name: not dropped by the main pass
    assert r.sysctls == (("kernel.hung_task_panic", "1"), ("kernel.foo", "2"), ("vm.x", "1"))
    assert run("sysctl.kernel.foo").invalid == (("sysctl.kernel.foo", ""),)


def test_the_32_limit_panics_one_past_it() -> None:
    ok = run(" ".join(f"a{i}" for i in range(32)))
    assert len(ok.init_argv) == 32 and ok.errors == ()
    over = run(" ".join(f"a{i}" for i in range(33)))
    assert over.errors == ("Too many boot init vars at `a32'",)
    assert over.unknown == ()  # the kernel prints nothing once the panic is armed
    env_ok = run(" ".join(f"E{i}=1" for i in range(31)))
    assert env_ok.errors == () and len(env_ok.init_envp) == 31
    env_over = run(" ".join(f"E{i}=1" for i in range(32)))
    assert env_over.errors == ("Too many boot env vars at `E31=1'",)
    dash = run("-- " + " ".join(f"a{i}" for i in range(33)))
    assert dash.errors == ("Too many boot init vars at `a32'",) and len(dash.init_argv) == 32


def test_hostile_input_gets_an_answer_or_a_kpolicy_error() -> None:
    r = run("a\0b c")
    assert r.init_argv == ("a",) and any("NUL" in w for w in r.warnings)
    r = run("x\x01y")
    assert r.init_argv == ("x\x01y",) and r.warnings
    r = run('foo="unbalanced and long ' + "z" * 5000)
    assert r.truncated and len(r.effective) == 2047
    with pytest.raises(KpolicyError):
        run("a" * (2 << 20))
    assert run("caf\u00e9").init_argv == ("caf\u00e9",)


def test_kstrtobool_follows_the_version() -> None:
    old = synthetic(version=(6, 12, 0))
    assert process_cmdline(old, "init_on_free=enable").malformed_early == ("init_on_free",)
    assert run("init_on_free=enable").malformed_early == ()


def test_bootconfig_words_skip_the_early_pass() -> None:
    kp = synthetic({**CONFIG, "BOOT_CONFIG": "y"})
    bc = "kernel.init_on_free = maybe\nkernel.FOO = 1\ninit.arg = x\nkernel.panic = y"
    r = process_cmdline(kp, "bootconfig BAR=2 -- z", bootconfig=bc)
    assert r.malformed_early == ()  # never applied, so never refused
    assert r.invalid == (("panic", "y"),)
    assert r.init_envp == ("FOO=1", "BAR=2")
    # kernel.* words and the command line are one parse_args() call: the refused panic=y makes
    # it return an error, so `z` after `--` never reaches init (bootconfig's init.* still does).
    assert r.init_argv == ("bootconfig", "arg=x")
    assert process_cmdline(kp, "bootconfig -- z", bootconfig="init.arg = x").init_argv == (
        "bootconfig", "z", "arg=x")
    ignored = process_cmdline(kp, "BAR=2", bootconfig=bc)
    assert ignored.init_envp == ("BAR=2",) and ignored.warnings
    assert process_cmdline(KP, "bootconfig", bootconfig=bc).init_envp == ()


_PIECES = [*'ab=-_."\t \x00\x01\xa0\u00e9', "--", "init=", "FOO=", "init_on_free", "panic=",
           "ro", "x.y"]
_hostile = st.lists(st.sampled_from(_PIECES), max_size=60).map("".join)


@given(_hostile)
def test_any_command_line_gets_an_answer(line: str) -> None:
    r = run(line)
    assert len(r.init_argv) <= 33 and len(r.init_envp) <= 33
    assert all(e.index < len(r.tokens) for e in r.events)
    assert set(r.unknown) <= set(r.init_argv) | set(r.init_envp)


def test_console_reaches_earlycon_in_the_early_pass_of_trees_without_the_alias() -> None:
    from cmdline_synthetic import REGISTRATIONS, reg

    from kpolicy.cmdline import kernel_params
    from kpolicy.params.model import Catalog

    regs = (*REGISTRATIONS, reg("early_param", "earlycon", parser="kstrtobool"))
    kp = kernel_params(Catalog("6.12", (), regs, ()), CONFIG, (6, 12, 0), "x86", declarations=())
    r = process_cmdline(kp, "console=ttyS0 con-sole=x")
    assert [(e.raw, e.stage, e.registration.name if e.registration else None)
            for e in r.events if e.stage == "early"] == [("console=ttyS0", "early", "earlycon")]


def test_an_early_param_may_apply_its_value_and_still_be_malformed() -> None:
    """malformed_after: x86 iommu_setup applies the items before "usedac", then returns 1; the
    word is accepted (its state applies) and listed as a malformed early option; a bare word
    is only malformed; without the predicate's item nothing is reported."""
    from cmdline_synthetic import DECLARATIONS, REGISTRATIONS, reg

    from kpolicy.cmdline import kernel_params
    from kpolicy.params.model import Catalog
    from kpolicy.params.semantics import Declaration, HandlerSemantics

    iommu = Declaration("iommu", "early_param",
                        HandlerSemantics("function", on_missing="malformed",
                                         function="iommu_x86_passthrough",
                                         malformed_after="iommu_x86_usedac"),
                        "arch/x86/kernel/pci-dma.c", "t")
    kp = kernel_params(Catalog("7.2.0", (), (*REGISTRATIONS, reg("early_param", "iommu")), ()),
                       CONFIG, (7, 2, 0), "x86", declarations=(*DECLARATIONS, iommu))
    r = process_cmdline(kp, "iommu=pt,usedac,nopt iommu=nopt iommu")
    assert outcomes(r) == [("iommu=pt,usedac,nopt", "early", "accepted-malformed"),
                           ("iommu=nopt", "early", "accepted"), ("iommu", "early", "malformed")]
    assert r.malformed_early == ("iommu", "iommu") and r.unknown == ()


_WARM = synthetic({**CONFIG, "BOOT_CONFIG": "y"})  # its per-word caches fill across examples
_BOOTCONFIGS = [None, "kernel.init_on_free = maybe\nkernel.FOO = 1\ninit.arg = x\n",
                "kernel.ro\nkernel.panic = 1\n"]


# words of the synthetic tables with values each handler takes and refuses, init's, `--`
_WORDS = ["init_on_free=1", "init-on-free=0", "init_on_free", "init_on_free=x", "quiet",
          "lockdown=integrity", "lockdown=none", "lockdown", "transparent_hugepage=never",
          "transparent_hugepage=x", "ro", "ro=1", "root=/dev/x", "init=/bin/sh", "console=x",
          "panic=3", "panic=x", "panic", "module.sig_enforce=1", "module.sig_enforce=0",
          "zswap.enabled=1", "zswap.enabled=x", "modular.opt=1", "early_only_in_module=1",
          "FOO=1", "FOO=2", "foo", "x.y=1", 'x="a b"', '"quiet"', "--", "hung_task_panic=1",
          "sysctl.kernel.panic=1", "BOOT_IMAGE=/vmlinuz"]
_line = st.lists(st.sampled_from(_WORDS), max_size=40).map(" ".join)  # past the 32 limit too


@given(st.lists(st.tuples(_line | _hostile, st.sampled_from(_BOOTCONFIGS)), min_size=1,
                max_size=4))
def test_the_per_word_caches_never_change_an_answer(
        lines: list[tuple[str, Optional[str]]]) -> None:
    """A word's cached plans (early pass, main pass, __setup matches) answer as a fresh
    table's first sight of it does, at any place, next to any words, from either source."""
    for line, bootconfig in lines:
        fresh = synthetic({**CONFIG, "BOOT_CONFIG": "y"})
        for text in (line, f"bootconfig {line}"):
            assert (process_cmdline(_WARM, text, bootconfig=bootconfig)
                    == process_cmdline(fresh, text, bootconfig=bootconfig))
