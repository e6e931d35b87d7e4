"""Stock Linux 7.2 (x86_64): the families discovery finds, and the hand-checked findings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from lint_real_context import real_context, real_lint, real_lint_changes

from kpolicy.families.model import Family
from kpolicy.kconfig.scan import arch_selections

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.real

HAND_CHECKED = Path(__file__).with_name("hand_checked_findings.toml")


def families() -> dict[str, Family]:
    return {f.name: f for f in real_context("7.2").families}


def test_reference_families_have_every_member_with_evidence() -> None:
    fams = families()
    kstack = fams["RANDOMIZE_KSTACK_OFFSET"]
    assert kstack.capability == "HAVE_ARCH_RANDOMIZE_KSTACK_OFFSET"
    assert kstack.default_companion == "RANDOMIZE_KSTACK_OFFSET_DEFAULT"
    assert kstack.params == ("randomize_kstack_offset",)
    assert kstack.static_keys == ("randomize_kstack_offset",)
    # kernel-facts.md §1: selected by x86, arm64, s390, powerpc, riscv, loongarch
    assert {"x86", "arm64", "s390", "powerpc", "riscv", "loongarch"} <= set(kstack.arches)
    roles = {lk.role for lk in kstack.links}
    assert {"capability", "option", "default", "param", "static_key", "arch"} <= roles
    mseal = fams["MSEAL_SYSTEM_MAPPINGS"]
    assert mseal.capability == "ARCH_SUPPORTS_MSEAL_SYSTEM_MAPPINGS"
    assert mseal.arches == ("arm64", "loongarch", "riscv", "s390", "x86")
    assert (mseal.default_companion, mseal.params, mseal.static_keys) == (None, (), ())
    usercopy = fams["HARDENED_USERCOPY"]
    assert usercopy.default_companion == "HARDENED_USERCOPY_DEFAULT_ON"
    assert "hardened_usercopy" in usercopy.params
    assert "validate_usercopy_range" in usercopy.static_keys
    for name in ("INIT_ON_ALLOC", "INIT_ON_FREE"):
        fam = fams[name]
        assert fam.option == fam.default_companion == f"{name}_DEFAULT_ON"
        assert fam.params == (name.lower(),)


def test_arches_come_from_the_select_lines() -> None:
    ctx = real_context("7.2")
    selections = arch_selections(ctx.tree)
    for fam in ctx.families:
        if fam.capability and fam.capability in selections:
            assert fam.arches == tuple(sorted(selections[fam.capability])), fam.name


def test_hand_checked_findings_are_still_produced_and_precise() -> None:
    data = tomllib.loads(HAND_CHECKED.read_text(encoding="utf-8"))
    entries = data["finding"]
    assert len(entries) == 30
    # every rule, param-namespace (changes only) and param-module-undocumented (off) too
    produced = {(f.rule, f.file, f.line): f
                for f in real_lint_changes(data["version"], data["arch"]).findings}
    judged = []
    for e in entries:
        assert e["verdict"] in ("true", "false") and e["reason"].strip(), e
        f = produced.get((e["rule"], e["file"], e["line"]))
        if f is None:
            # a false positive may be fixed; a true one must never be lost
            assert e["verdict"] == "false", f"lost: {e['rule']} {e['file']}:{e['line']}"
            continue
        assert f.symbol == e.get("symbol", f.symbol) and f.param == e.get("param", f.param), e
        judged.append(e["verdict"] == "true")
    assert sum(judged) >= 27  # 30 entries, at most 3 false positives: precision >= 90%
    assert sum(judged) / len(judged) >= 0.9


def test_a_doc_condition_on_a_renamed_symbol_is_found() -> None:
    # Debian's syscall.x32 doc still says "where CONFIG_X86_X32 is enabled"; Kconfig has only
    # X86_X32_ABI and X86_X32_DISABLED (a longer name is not the symbol the doc names).
    found = [f for f in real_lint("7.2").findings if f.rule == "param-doc-conditions"]
    assert [(f.param, f.symbol) for f in found] == [("syscall.x32", "X86_X32")]
    assert found[0].file == "Documentation/admin-guide/kernel-parameters.txt"


@pytest.mark.parametrize("version", ["7.2", "6.12"])
def test_module_params_and_namespaces_are_not_reported_by_default(version: str) -> None:
    """Issue #16: param-undocumented reports only early_param/__setup/core_param; module
    parameters are param-module-undocumented's (off by default), and param-namespace judges
    only changes, not released names such as cpuhp.parallel."""
    result = real_lint(version)
    undocumented = [f for f in result.findings if f.rule == "param-undocumented"]
    assert undocumented
    for f in undocumented:
        assert "module_param" not in f.message, f
    assert not {f.rule for f in result.findings} & {"param-namespace",
                                                       "param-module-undocumented"}
    every = real_lint_changes(version)
    modules = [f for f in every.findings if f.rule == "param-module-undocumented"]
    assert modules and all("module_param" in f.message for f in modules)
    namespace = {f.param for f in every.findings if f.rule == "param-namespace"}
    assert "cpuhp.parallel" in namespace


def test_a_file_defining_kbuild_modname_names_its_module_params() -> None:
    """security/ipe/eval.c: #undef KBUILD_MODNAME / #define KBUILD_MODNAME "ipe" before its
    module_params: they are ipe.enforce and ipe.success_audit, not eval.*."""
    names = {r.name for r in real_context("7.2").catalog.registrations
             if r.location.file == "security/ipe/eval.c"}
    assert {"ipe.enforce", "ipe.success_audit"} <= names
    assert not any(n.startswith("eval.") for n in names)


def test_other_arches_code_outside_arch_is_not_reported() -> None:
    """Second precision draw's two false findings: 6.12's drivers/s390/char/sclp.c (built only
    with S390) __setup("sclp_con_drop=") reported undocumented on an x86_64 lint, and 7.2's
    [HEXAGON] mem= entry reported mis-tagged because hexagon's registration was left out."""
    old = {(f.rule, f.param) for f in real_lint("6.12").findings}
    assert ("param-undocumented", "sclp_con_drop") not in old
    assert ("param-undocumented", "mphash_entries") in old  # built-in code still reported
    new = [f for f in real_lint("7.2").findings if f.rule == "param-doc-tags"]
    assert not [f for f in new if f.param == "mem"]
    assert not [f for f in new if "{" in f.message]  # arch/{x86} no longer printed raw
    assert any(f.param == "kfence.fault" for f in new)


@pytest.mark.parametrize("version", ["7.2", "6.12"])
def test_third_precision_draw_false_findings_are_gone(version: str) -> None:
    """Third precision draw's false findings, each a class:
    - `video= [FB,EARLY]`: __setup in drivers/video/cmdline.c, early_param in arch/powerpc's
      p1022_ds.c; the EARLY tag is tree-wide, so every arch's registrations count;
    - `ALSA [HW,ALSA]`: a pointer to Documentation/sound/alsa-configuration.rst, not a parameter;
    - `mtrr_gran_size=nn[KMG,X86,EARLY]` (and mtrr_chunk_size): EARLY is in the size bracket;
    - lsmsi (early_param under LS_SCFG_MSI, `def_bool y if SOC_LS1021A || ARCH_LAYERSCAPE`):
      never y on x86_64, so not x86_64's parameter."""
    found = {(f.rule, f.param) for f in real_lint(version).findings}
    assert ("param-doc-tags", "video") not in found
    assert ("param-doc-orphan", "ALSA") not in found
    assert ("param-doc-tags", "mtrr_gran_size") not in found
    assert ("param-doc-tags", "mtrr_chunk_size") not in found
    assert ("param-undocumented", "lsmsi") not in found
    # the layout is still reported, and the class fixes leave their neighbours' true findings
    doc = {d.name: d for d in real_context(version).catalog.docs}
    assert doc["mtrr_gran_size"].tags == ("X86", "EARLY")
    assert "tags-in-size-suffix" in {i.kind for i in doc["mtrr_gran_size"].irregularities}
    assert any(r == "param-doc-tags" and "not tagged EARLY" in m
               for r, m in ((f.rule, f.message) for f in real_lint(version).findings))


# Fourth draw's param-undocumented findings of parameters a subsystem document describes,
# with where (kpolicy.params.mentions: `name=`, or the bare word in a boot-parameter line).
_FOURTH_DRAW_DOCUMENTED = {
    "stmmaceth": "Documentation/networking/device_drivers/ethernet/stmicro/stmmac.rst",
    "kgdbts": "Documentation/process/debugging/kgdb.rst",  # 6.12: dev-tools/kgdb.rst
    "kgdbcon": "Documentation/process/debugging/kgdb.rst",  # "Kernel parameter: ``kgdbcon``"
    "cifsroot": "Documentation/filesystems/smb/cifsroot.rst",
    "page_table_check": "Documentation/mm/page_table_check.rst",
    "kasan.fault": "Documentation/dev-tools/kasan.rst",
    "netconsole": "Documentation/networking/netconsole.rst",  # not init.rst's passing mention
}


@pytest.mark.parametrize("version", ["7.2", "6.12"])
def test_fourth_precision_draw_false_findings_are_gone(version: str) -> None:
    """Fourth precision draw's false and debatable findings, each a class:
    - slub_debug (7.2) and slub_min_order (6.12): legacy names kernel-parameters.txt's slab_*
      entries declare "(slub_debug legacy name also accepted for now)": documented there;
    - `S [KNL] Run init in single mode`: a word init takes (unknown_bootoption passes it on),
      no registration owed;
    - stmmaceth and kgdbts (and their class: kgdbcon, cifsroot, ...): documented in a subsystem
      document under Documentation/, which ParamInfo.elsewhere names."""
    from kpolicy.params.catalog import catalog_lookup

    found = {(f.rule, f.param) for f in real_lint(version).findings}
    for legacy in ("slub_debug", "slub_min_order", "slub_max_order", "slub_min_objects",
                   "slub_merge", "slub_nomerge"):
        assert ("param-undocumented", legacy) not in found
    assert ("param-doc-orphan", "S") not in found
    for name in _FOURTH_DRAW_DOCUMENTED:
        assert ("param-undocumented", name) not in found
    lookup = catalog_lookup(real_context(version).catalog)
    slab = lookup["slab_debug"].doc
    assert slab is not None and lookup["slub_debug"].elsewhere == slab.location
    assert lookup["slub_debug"].doc is None
    for name, file in _FOURTH_DRAW_DOCUMENTED.items():
        where = lookup[name].elsewhere
        assert where is not None, name
        if version == "6.12" and name.startswith("kgdb"):
            file = "Documentation/dev-tools/kgdb.rst"
        assert where.file == file, (name, where)
    # undocumented registrations documented nowhere are still reported, and orphans too
    assert any(r == "param-undocumented" for r, _ in found)
    assert any(r == "param-doc-orphan" for r, _ in found)


@pytest.mark.parametrize("version", ["7.2", "6.12"])
def test_fifth_precision_draw_false_findings_are_gone(version: str) -> None:
    """Fifth precision draw's false param-doc-orphans, each a class:
    - grcan.select: drivers/net/can/grcan.c registers it through a wrapper of a wrapper
      (GRCAN_CONFIG_ATTR -> GRCAN_MODULE_PARAM -> module_param_named), as grcan.enable0/1;
      7.2's arch/s390/kernel/early.c likewise registers dfltcc and prot_virt
      (decompressor_handled_param -> __decompressor_handled_param -> early_param);
    - svm= (6.12 and 7.2): powerpc's prom_init.c reads it with prom_strstr(prom_cmd_line, ...),
      as radix_hcall_invalidate=; MIPS reads machtype= with strstr(arcs_cmdline, ...)."""
    ctx = real_context(version)
    regs = {r.name: r for r in ctx.catalog.registrations}
    for name in ("grcan.select", "grcan.enable0", "grcan.enable1"):
        assert regs[name].location.file == "drivers/net/can/grcan.c", name
    if version == "7.2":
        for name in ("dfltcc", "prot_virt"):
            assert regs[name].location.file == "arch/s390/kernel/early.c", name
    reads = ctx.catalog.command_line_reads
    assert {"svm", "radix_hcall_invalidate", "machtype"} <= reads
    found = {(f.rule, f.param) for f in real_lint(version).findings}
    for name in ("grcan.select", "grcan.enable0", "grcan.enable1", "svm",
                 "radix_hcall_invalidate", "machtype", "dfltcc", "prot_virt"):
        assert ("param-doc-orphan", name) not in found, name
    # documented words no code reads are still orphans
    assert any(r == "param-doc-orphan" for r, _ in found)


@pytest.mark.parametrize("version", ["7.2", "6.12"])
def test_eighth_precision_draw_false_findings_are_gone(version: str) -> None:
    """Eighth precision draw's false findings, each a class (on both trees):
    - xen_512gb_limit, a doc-orphan: arch/x86/xen/setup.c reads it from the line Xen hands a
      PV guest, strstr(xen_start_info->cmd_line, "xen_512gb_limit");
    - elevator, undocumented: its handler only warns that the word has no effect any more
      (block/elevator.c), as swapaccount='s only warns that swapaccount=0 is deprecated;
    - pci_slot_ignore, undocumented: drivers/pci/controller/pci-versatile.c is ARM Versatile's
      PCI host (`depends on ARCH_VERSATILE || COMPILE_TEST`): COMPILE_TEST builds it on
      x86_64 for build coverage only."""
    ctx = real_context(version)
    assert "xen_512gb_limit" in ctx.catalog.command_line_reads
    regs = {r.name: r for r in ctx.catalog.registrations}
    assert regs["elevator"].only_warns and regs["swapaccount"].only_warns
    # handlers that parse into state, or only consume the word, are not taken for warnings
    assert not regs["devtmpfs.mount"].only_warns and not regs["mphash_entries"].only_warns
    if version == "7.2":  # setup_setcpuid() only returns 1: it prints nothing
        assert not regs["setcpuid"].only_warns
    found = {(f.rule, f.param) for f in real_lint(version).findings}
    for rule, name in (("param-doc-orphan", "xen_512gb_limit"),
                       ("param-undocumented", "elevator"),
                       ("param-undocumented", "swapaccount"),
                       ("param-undocumented", "pci_slot_ignore")):
        assert (rule, name) not in found, name
    # their neighbours' true findings stay: generic __setup code, documented nowhere
    assert ("param-undocumented", "qla1280") in found


@pytest.mark.parametrize("version", ["7.2", "6.12"])
def test_an_orphan_entry_missing_its_module_prefix_says_what_the_kernel_reads(
        version: str) -> None:
    """Ninth draw: `disable=`, `autoconf=`, `disable_ipv6=` [IPV6] and `ports=` [IP_VS_FTP] are
    read only as ipv6.* and ip_vs_ftp.ports. Tenth draw: `nr_uarts=` [SERIAL] names no module,
    but the kernel reads 8250.nr_uarts (6.12: 8250_core.nr_uarts too), which the message now
    says, as it does for `gamma=` [HW,DRM] (no relative of tcp_vegas.gamma, but the only gamma
    the kernel reads); `c101=` is a module, whose parameter is c101.hw; `memchunk=` is taken by no
    registration, only memchunk.<dev>= by arch/sh's __setup("memchunk.")."""
    orphans = {f.param: f.message for f in real_lint(version).findings
               if f.rule == "param-doc-orphan"}
    for name, read_as in (("disable", "ipv6.disable"), ("autoconf", "ipv6.autoconf"),
                          ("disable_ipv6", "ipv6.disable_ipv6"), ("ports", "ip_vs_ftp.ports")):
        assert orphans[name].endswith(f"the kernel reads only {read_as}"), orphans[name]
    uarts = "8250.nr_uarts" + (", 8250_core.nr_uarts" if version == "6.12" else "")
    assert orphans["nr_uarts"].endswith(
        f"nothing registers it without a module prefix; the kernel reads {uarts}")
    assert orphans["gamma"].endswith("the kernel reads tcp_vegas.gamma")
    assert orphans["c101"].endswith("c101 is a module, whose parameters are c101.hw")
    assert orphans["memchunk"].endswith('a __setup takes only words that start with "memchunk."')


@pytest.mark.parametrize("version", ["7.2", "6.12"])
def test_the_watchdog_timers_topic_is_not_an_orphan(version: str) -> None:
    """`watchdog timers [HW,WDT]` points to Documentation/watchdog/: its title is a topic, so
    it owes no registration (it was an orphan `watchdog` whose tags were lost)."""
    found = {(f.rule, f.param) for f in real_lint(version).findings}
    assert ("param-doc-orphan", "watchdog") not in found
    assert ("param-doc-orphan", "nr_uarts") in found  # its neighbours' true findings stay


@pytest.mark.parametrize("version", ["7.2", "6.12"])
def test_a_boot_loader_parameter_is_not_an_orphan(version: str) -> None:
    """`vga= [BOOT,X86-32]`: the boot loader reads it (Documentation/arch/x86/boot.rst), no
    kernel code does; BOOT says so."""
    found = {(f.rule, f.param) for f in real_lint(version).findings}
    assert ("param-doc-orphan", "vga") not in found
    assert ("param-doc-orphan", "tdfx") in found


@pytest.mark.parametrize("version", ["7.2", "6.12"])
def test_an_early_spelling_of_a_documented_module_parameter_is_not_undocumented(
        version: str) -> None:
    """Eleventh draw (6.12, debatable): printk.c's early_param("debug_non_panic_cpus") sets what
    its module_param does, documented as printk.debug_non_panic_cpus=."""
    found = {(f.rule, f.param) for f in real_lint(version).findings}
    assert ("param-undocumented", "debug_non_panic_cpus") not in found
    assert ("param-undocumented", "tracing_thresh") in found  # documented only as a tracefs file
