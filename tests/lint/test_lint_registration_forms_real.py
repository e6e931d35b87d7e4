"""Issue #16 on the stock 7.2 and 6.12 trees (x86_64): module names read from the Makefiles as
Kbuild builds them, parameters documented outside kernel-parameters.txt, words the kernel reads
from the raw command line, and the registration forms lint used to miss. Each case names the
real instances it fixes; every one was checked against the tree's Makefiles and C."""

from __future__ import annotations

import pytest
from lint_real_context import real_context, real_lint

from kpolicy.kernel import fold_param
from kpolicy.params.catalog import catalog_lookup
from kpolicy.params.crosscheck import cross_check

pytestmark = pytest.mark.real
VERSIONS = ("7.2", "6.12")


def _names(version: str, rel: str) -> set[str]:
    return {r.name for r in real_context(version).catalog.registrations
            if r.location.file == rel}


def _findings(version: str, rule: str) -> set[str]:
    return {f.param or "" for f in real_lint(version).findings if f.rule == rule}


# file -> the module name Kbuild gives it, on both versions
MODULES = {
    # arch/x86/kvm/Makefile: include $(srctree)/virt/kvm/Makefile.kvm; kvm-y := $(KVM)/kvm_main.o
    "virt/kvm/kvm_main.c": "kvm",
    # drivers/video/fbdev/omap/Makefile: objs-yy := omapfb_main.o ...; omapfb-objs := $(objs-yy)
    "drivers/video/fbdev/omap/omapfb_main.c": "omapfb",
    # net/mac80211/Makefile: mac80211-$(CONFIG_MAC80211_RC_MINSTREL) += $(rc80211_minstrel-y)
    "net/mac80211/rc80211_minstrel_ht.c": "mac80211",
    # drivers/media/dvb-core/Makefile: dvb-core-objs := ... $(dvb-vb2-y)
    "drivers/media/dvb-core/dvb_vb2.c": "dvb_core",
    # drivers/accel/habanalabs/Makefile: include $(src)/common/Makefile; += $(HL_COMMON_FILES)
    "drivers/accel/habanalabs/common/habanalabs_drv.c": "habanalabs",
}


@pytest.mark.parametrize("version", VERSIONS)
def test_module_names_follow_includes_and_variables(version: str) -> None:
    for rel, module in MODULES.items():
        names = _names(version, rel)
        assert names, rel
        assert all(n.startswith(module + ".") for n in names), (rel, sorted(names))
    assert "kvm.halt_poll_ns" in _names(version, "virt/kvm/kvm_main.c")
    # documented as kvm.enable_virt_at_load: no longer an orphan (it was kvm_main.*)
    assert "kvm.enable_virt_at_load" not in _findings(version, "param-doc-orphan")


def test_module_names_from_define_and_foreach_eval() -> None:
    """7.2's drivers/platform/x86/{intel,lenovo}/Makefile build each intel-target-y/
    lenovo-target-y object as intel-<name>.o / lenovo-<name>.o through a define template."""
    assert _names("7.2", "drivers/platform/x86/intel/hid.c") >= {
        "intel_hid.enable_5_button_array", "intel_hid.enable_sw_tablet_mode"}
    assert _names("7.2", "drivers/platform/x86/lenovo/ymc.c") == {"lenovo_ymc.force"}
    assert "intel_oaktrail.force" in _names("7.2", "drivers/platform/x86/intel/oaktrail.c")


@pytest.mark.parametrize("version", VERSIONS)
def test_scsi_parameters_rst_documents_parameters(version: str) -> None:
    """Documentation/scsi/scsi-parameters.rst, in kernel-parameters.txt's layout, documents the
    SCSI drivers' __setup parameters: BusLogic=, aic7xxx=, st=, ... are not undocumented."""
    other = {n: e for e in real_context(version).catalog.other_docs for n in e.names}
    assert other["BusLogic"].location.file == "Documentation/scsi/scsi-parameters.rst"
    # `kpolicy params BusLogic` says where: ParamInfo.elsewhere
    info = catalog_lookup(real_context(version).catalog)[fold_param("BusLogic")]
    assert info.doc is None and info.elsewhere == other["BusLogic"].location
    undocumented = _findings(version, "param-undocumented")
    assert not undocumented & {"BusLogic", "aic7xxx", "aic79xx", "st", "ncr53c8xx", "wd33c93"}
    assert "mphash_entries" in undocumented  # documented nowhere: still reported


@pytest.mark.parametrize("version", VERSIONS)
def test_direct_command_line_reads_are_registrations(version: str) -> None:
    """cmdline_find_option_bool("nokaslr") in the x86 decompressor, arch/x86/boot/edd.c's
    "edd"/"quiet", and powerpc's strstr(boot_command_line, "udbg-immortal")."""
    reads = real_context(version).catalog.command_line_reads
    assert {"nokaslr", "edd", "quiet", "udbg-immortal"} <= reads
    orphans = _findings(version, "param-doc-orphan")
    assert not orphans & {"nokaslr", "udbg-immortal", "edd"}


@pytest.mark.parametrize("version", VERSIONS)
def test_level_callbacks_and_prefix_setup(version: str) -> None:
    """drivers/virtio/virtio_mmio.c registers only device_param_cb(device, ...), which is
    virtio_mmio.device; kernel/trace/trace_stack.c __setup("stacktrace") hands
    "stacktrace_filter=..." to its handler (init/main.c obsolete_checksetup matches a prefix)."""
    assert "virtio_mmio.device" in _names(version, "drivers/virtio/virtio_mmio.c")
    orphans = _findings(version, "param-doc-orphan")
    assert not orphans & {"virtio_mmio.device", "stacktrace_filter"}


@pytest.mark.parametrize("version", VERSIONS)
def test_uml_help_documents_a_setup(version: str) -> None:
    """arch/um/drivers/vector_kern.c: __setup("vec", vector_setup) with
    __uml_help(vector_setup, "vec[0-9]+:...") next to it: documented for `linux --help`."""
    ctx = real_context(version)
    vec = [r for r in ctx.catalog.registrations
           if r.name == "vec" and r.location.file == "arch/um/drivers/vector_kern.c"]
    help_at = vec[0].help_at if len(vec) == 1 else None
    assert help_at is not None
    assert (help_at.file, help_at.line) == (vec[0].location.file, vec[0].location.line + 1)
    assert catalog_lookup(ctx.catalog)["vec"].elsewhere == help_at
    issues = cross_check(ctx.catalog, srcarches=("um",))
    assert not [i for i in issues if i.kind == "undocumented" and i.param == "vec"]
    # time-travel= has its __uml_help too; an um lint's undocumented list is not empty
    assert [i for i in issues if i.kind == "undocumented"]


@pytest.mark.parametrize("version", VERSIONS)
def test_free_text_and_subarch_tags(version: str) -> None:
    """disable_mtrr_trim [X86, Intel and AMD only,EARLY] is an early_param tagged EARLY."""
    tags = _findings(version, "param-doc-tags")
    assert "disable_mtrr_trim" not in tags
    doc = next(e for e in real_context(version).catalog.docs if "disable_mtrr_trim" in e.names)
    assert "EARLY" in doc.tags and "X86" in doc.tags
