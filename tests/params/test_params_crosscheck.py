"""Cross-checks of docs, registrations and Kconfig on tests/fixtures/params_c."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import pytest

from kpolicy.kconfig.model import (
    Default,
    Definition,
    Expr,
    KconfigModel,
    Location,
    Prompt,
    Reverse,
    Symbol,
)
from kpolicy.kconfig.possible import possible_symbols
from kpolicy.params.catalog import build_catalog
from kpolicy.params.crosscheck import KINDS, CatalogIssue, cross_check
from kpolicy.params.docs import parse_kernel_parameters
from kpolicy.params.model import Catalog, DocEntry, ParamFormat, Registration
from kpolicy.tree import open_tree

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "params_c"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog(open_tree(FIXTURE))


def _pairs(issues: tuple[CatalogIssue, ...], kind: str) -> set[str]:
    return {i.param for i in issues if i.kind == kind}


def test_every_kind_but_layout_on_the_fixture(catalog: Catalog) -> None:
    issues = cross_check(catalog)
    assert {i.kind for i in issues} <= set(KINDS)
    assert _pairs(issues, "doc-orphan") == {"orphaned"}
    # only plainly built-in code without Kconfig types: no module params behind a symbol
    assert _pairs(issues, "undocumented") == {
        "quietish", "multiline", "from_define", "foo_off", "panic", "included_policy"}
    # module parameters have their own kind (param-module-undocumented, off by default)
    assert _pairs(issues, "module-undocumented") == {
        "params.wrapped", "params.from_header", "params.nested", "params.looped"}
    tags = {(i.param, i.message.split(": ", 1)[1].split(" (")[0]) for i in issues
            if i.kind == "tags"}
    assert tags == {
        ("archonly", "registered with early_param but not tagged EARLY"),
        ("archonly", "tagged for arm64 but registered only by arch/x86/ code"),
        ("foo_on", "registered with early_param but not tagged EARLY"),
        ("thp_mode", "tagged EARLY but registered only as __setup"),
    }
    missing = [i for i in issues if i.kind == "doc-config-missing"]
    assert [(i.param, i.symbol) for i in missing] == [("thp_mode", "THP_NEVER_DEFINED")]
    assert _pairs(issues, "format-parser") == {"zswap.enabled", "thp_mode"}
    zswap = next(i for i in issues if i.kind == "format-parser" and i.param == "zswap.enabled")
    assert "kstrtobool rejects 'always'" in zswap.message
    assert issues == tuple(sorted(issues, key=lambda i: (i.location.file, i.location.line,
                                                         i.kind, i.param, i.message)))


def test_layout_issues_are_the_doc_irregularities(catalog: Catalog) -> None:
    layout = [i for i in cross_check(catalog) if i.kind == "layout"]
    expected = [(irr.location, d.name) for d in catalog.docs for irr in d.irregularities]
    assert sorted((i.location.line, i.param) for i in layout) == sorted(
        (loc.line, name) for loc, name in expected)
    assert any(i.param == "randomize_kstack_offset" and "tags-on-next-line" in i.message
               for i in layout)


def test_kconfig_types_widen_undocumented_to_bool_only_code(catalog: Catalog) -> None:
    types = {"ZSWAP": "bool", "MMU": "bool", "MODULES": "bool", "MODULE_SIG": "bool",
             "SHUFFLE_PAGE_ALLOCATOR": "bool", "TORTURE_TEST": "tristate", "SECURITY": "bool",
             "LSM_X": "bool", "SCHED_BUILD": "bool", "X86_THING": "bool"}
    issues = cross_check(catalog, types)
    assert not _pairs(issues, "undocumented") & _pairs(issues, "module-undocumented")
    undocumented = _pairs(issues, "module-undocumented")
    assert {"module.sig_enforce", "mseal.sealing", "zswap.max_pool_percent",
            "page_alloc.shuffle"} <= undocumented
    assert "torture_test.verbose" not in undocumented  # tristate: modinfo documents it
    assert "modonly.debug" not in undocumented  # obj-m only


def test_doc_config_missing_uses_given_symbols_when_the_catalog_has_none() -> None:
    doc = DocEntry(names=("foo",), takes_value=True, tags=("KNL",), body="",
                   format=None, default_symbols=(), config_symbols=("FOO_DEFAULT", "BAR"),
                   location=Location("k.txt", 3), end_line=4)
    reg = Registration("__setup", "foo", Location("a.c", 1))
    bare = Catalog("7.2.0", (doc,), (reg,), ())
    assert cross_check(bare) == ()  # no symbols known: nothing to say
    issues = cross_check(bare, {"FOO_DEFAULT"})
    assert [(i.kind, i.symbol) for i in issues] == [("doc-config-missing", "BAR")]


def test_an_orphan_names_the_module_parameters_it_may_have_meant() -> None:
    """`disable= [IPV6] See Documentation/networking/ipv6.rst.` is read only as ipv6.disable,
    `ports= [IP_VS_FTP]` only as ip_vs_ftp.ports; `gamma= [HW,DRM]` is not tcp_vegas.gamma,
    which is named as what the kernel reads; `c101=` names a module, whose parameters are listed
    (at most four)."""
    def entry(name: str, tags: tuple[str, ...], body: str, line: int) -> DocEntry:
        return DocEntry(names=(name,), takes_value=True, tags=tags, body=body, format=None,
                        default_symbols=(), config_symbols=(), location=Location("k.txt", line),
                        end_line=line + 1)

    docs = (entry("disable", ("IPV6",), "See Documentation/networking/ipv6.rst.", 1),
            entry("ports", ("IP_VS_FTP",), "IPVS ftp helper module", 3),
            entry("gamma", ("HW", "DRM"), "", 5),
            entry("c101", ("NET",), "Moxa C101 synchronous serial card", 7),
            entry("cpcihp_generic", ("HW", "PCI"), "Generic port I/O CompactPCI driver", 9),
            entry("plain", ("KNL",), "", 11))
    regs = tuple(Registration("module_param", name, Location("m.c", i), handler=None)
                 for i, name in enumerate(("ipv6.disable", "cmm.disable", "ip_vs_ftp.ports",
                                           "tcp_vegas.gamma", "c101.hw",
                                           *(f"cpcihp_generic.p{n}" for n in range(6))),
                                          start=1))
    orphans = {i.param: i.message for i in cross_check(Catalog("7.2.0", docs, regs, ()))
               if i.kind == "doc-orphan"}
    assert orphans == {
        "disable": "disable: documented without its module prefix: the kernel reads only "
                   "ipv6.disable",
        "ports": "ports: documented without its module prefix: the kernel reads only "
                 "ip_vs_ftp.ports",
        "gamma": "gamma: documented, but nothing registers it without a module prefix; the "
                 "kernel reads tcp_vegas.gamma",
        "c101": "c101: documented, but no early_param, __setup, core_param or module_param "
                "registers it; c101 is a module, whose parameters are c101.hw",
        "cpcihp_generic": "cpcihp_generic: documented, but no early_param, __setup, core_param "
                          "or module_param registers it; cpcihp_generic is a module, whose "
                          "parameters are cpcihp_generic.p0, cpcihp_generic.p1, "
                          "cpcihp_generic.p2, cpcihp_generic.p3 and 2 more",
        "plain": "plain: documented, but no early_param, __setup, core_param or module_param "
                 "registers it"}


@pytest.mark.parametrize(("fmt", "parser", "bad"), [
    (ParamFormat("{ no | yes }", "enum", ("no", "yes")), "kstrtobool", False),
    (ParamFormat("{ off | auto }", "enum", ("off", "auto")), "kstrtobool", True),
    (ParamFormat("<int>", "int"), "kstrtobool", True),
    (ParamFormat("<bool>", "bool"), "kstrtoint", True),
    (ParamFormat("<bool>", "bool"), "lookup_constant", True),
    (ParamFormat("0 | 1", "enum", ("0", "1")), "kstrtoint", False),
    (ParamFormat("{ on | off }", "enum", ("on", "off")), "kstrtouint", True),
    (ParamFormat("n", "enum", ("n",)), "kstrtoul", False),  # a placeholder, not a word list
    (ParamFormat("<bool>", "bool"), "kstrtobool", False),
    (ParamFormat("<bool>", "bool"), None, False),
])
def test_format_parser_agreement(fmt: ParamFormat, parser: str, bad: bool) -> None:
    doc = DocEntry(names=("p",), takes_value=True, tags=("KNL",), body="", format=fmt,
                   default_symbols=(), config_symbols=(), location=Location("k.txt", 1),
                   end_line=2)
    reg = Registration("__setup", "p", Location("a.c", 1), parser=parser)
    found = [i for i in cross_check(Catalog("7.2.0", (doc,), (reg,), ()))
             if i.kind == "format-parser"]
    assert bool(found) == bad


@pytest.mark.parametrize(("body", "sym", "flagged"), [
    ("Default is the CONFIG_PROC_MEM_* choice.", "PROC_MEM", False),
    ("Use CONFIG_IOMMU_DEFAULT_DMA_{LAZY,STRICT}.", "IOMMU_DEFAULT_DMA", False),
    ("Only where CONFIG_X86_X32 is enabled.", "X86_X32", True),  # renamed X86_X32_ABI
])
def test_doc_config_missing_accepts_only_written_families(body: str, sym: str,
                                                          flagged: bool) -> None:
    doc = DocEntry(names=("p",), takes_value=True, tags=("KNL",), body=body, format=None,
                   default_symbols=(), config_symbols=(sym,), location=Location("k.txt", 1),
                   end_line=2)
    reg = Registration("__setup", "p", Location("a.c", 1))
    defined = frozenset({"PROC_MEM_ALWAYS", "IOMMU_DEFAULT_DMA_LAZY", "X86_X32_ABI"})
    issues = cross_check(Catalog("7.2.0", (doc,), (reg,), (), kconfig_symbols=defined))
    assert bool([i for i in issues if i.kind == "doc-config-missing"]) == flagged


def test_registrations_of_arches_not_linted_are_not_reported() -> None:
    """kfence.sample_interval is an early_param only in arch/arm64 (a module_param elsewhere):
    an x86 lint must not ask for EARLY; an arm-only __setup is not undocumented on x86."""
    doc = DocEntry(names=("kfence.sample_interval",), takes_value=True, tags=("MM",), body="",
                   format=None, default_symbols=(), config_symbols=(),
                   location=Location("k.txt", 3), end_line=4)
    early = Registration("early_param", "kfence.sample_interval", Location("arch/arm64/mm/m.c", 9))
    module = Registration("module_param", "kfence.sample_interval", Location("mm/kfence/c.c", 5))
    omap = Registration("__setup", "omap_dma_reserve_ch", Location("arch/arm/mach-omap1/d.c", 2))
    catalog = Catalog("7.2.0", (doc,), (early, module, omap), ())
    everywhere = {(i.kind, i.param) for i in cross_check(catalog)}
    assert {("tags", "kfence.sample_interval"), ("undocumented", "omap_dma_reserve_ch")} \
        <= everywhere
    assert cross_check(catalog, srcarches={"x86"}) == ()
    on_arm = {(i.kind, i.param) for i in cross_check(catalog, srcarches={"arm", "arm64"})}
    assert on_arm == everywhere


def test_code_built_only_with_a_symbol_no_linted_arch_defines_is_not_reported(
    catalog: Catalog,
) -> None:
    """drivers/s390/ lives outside arch/ but is built only with S390: on an x86_64 lint the
    linted models do not define S390, so its registrations are another arch's."""
    types = {"ZSWAP": "bool", "MMU": "bool", "MODULES": "bool", "MODULE_SIG": "bool",
             "SHUFFLE_PAGE_ALLOCATOR": "bool", "TORTURE_TEST": "tristate", "SECURITY": "bool",
             "LSM_X": "bool", "SCHED_BUILD": "bool", "X86_THING": "bool"}
    # included_policy: __setup in kernel/policy.c, built only with SCHED_BUILD
    assert "included_policy" in _pairs(cross_check(catalog, types, srcarches={"x86"}),
                                       "undocumented")
    without = {k: v for k, v in types.items() if k != "SCHED_BUILD"}
    assert "included_policy" not in _pairs(cross_check(catalog, without, srcarches={"x86"}),
                                           "undocumented")
    # without srcarches (no arch scoping asked for) it is still reported
    assert "included_policy" in _pairs(cross_check(catalog, without), "undocumented")


def _doc(name: str, tags: tuple[str, ...], body: str = "", takes_value: bool = True) -> DocEntry:
    return DocEntry(names=(name,), takes_value=takes_value, tags=tags, body=body, format=None,
                    default_symbols=(), config_symbols=(), location=Location("k.txt", 3),
                    end_line=4)


def test_early_tag_counts_every_arch_early_param() -> None:
    """7.2's `video= [FB,EARLY]`: __setup in drivers/video/cmdline.c, early_param only in
    arch/powerpc/platforms/85xx/p1022_ds.c. The tag is tree-wide: an x86 lint must not ask to
    drop it. The other direction stays per linted arch (kfence.sample_interval above)."""
    setup = Registration("__setup", "video", Location("drivers/video/cmdline.c", 135))
    ppc = Registration("early_param", "video", Location("arch/powerpc/platforms/85xx/p.c", 465))
    with_ppc = Catalog("7.2.0", (_doc("video", ("FB", "EARLY")),), (setup, ppc), ())
    assert _pairs(cross_check(with_ppc, srcarches={"x86"}), "tags") == set()
    alone = Catalog("7.2.0", (_doc("video", ("FB", "EARLY")),), (setup,), ())
    (issue,) = cross_check(alone, srcarches={"x86"})
    assert "tagged EARLY but registered only as __setup" in issue.message


@pytest.mark.parametrize(("name", "body", "takes_value", "orphan"), [
    ("ALSA", "See Documentation/sound/alsa-configuration.rst", False, False),
    ("ccw_thing", "See Documentation/arch/s390/common_io.rst for details.", False, False),
    # pointers to source files name that code's parameters; "=" entries are parameters
    ("sa1100ir", "See drivers/net/irda/sa1100_ir.c.", False, True),
    ("floppy", "See Documentation/admin-guide/blockdev/floppy.rst.", True, True),
    # a description besides the pointer describes a parameter
    ("nfsrootdebug", "enable debugging.\nSee Documentation/admin-guide/nfs/nfsroot.rst.", False,
     True),
])
def test_an_entry_only_pointing_to_a_document_is_not_an_orphan(
        name: str, body: str, takes_value: bool, orphan: bool) -> None:
    catalog = Catalog("7.2.0", (_doc(name, ("HW",), body, takes_value),), (), ())
    assert (_pairs(cross_check(catalog), "doc-orphan") == {name}) == orphan


def _symbol(name: str, defaults: tuple[tuple[str, Optional[Expr]], ...] = (),
            prompt: bool = False, dep: Optional[Expr] = None,
            selected_by: tuple[str, ...] = ()) -> Symbol:
    where = Location("Kconfig", 1)
    return Symbol(name, "bool", (Definition(where, dep),),
                  prompts=(Prompt(name, None, where),) if prompt else (),
                  defaults=tuple(Default(Expr.const(v), c, where) for v, c in defaults),
                  selected_by=tuple(Reverse(s, name, None, where) for s in selected_by),
                  direct_dep=dep)


def _model(*symbols: Symbol) -> KconfigModel:
    return KconfigModel("6.12.0", "x86_64", "x86", "gcc", {s.name: s for s in symbols}, ())


def test_code_built_with_a_symbol_never_settable_on_the_arch_is_not_reported() -> None:
    """6.12's lsmsi= (drivers/irqchip/irq-ls-scfg-msi.c, obj-$(CONFIG_LS_SCFG_MSI)): `config
    LS_SCFG_MSI def_bool y if SOC_LS1021A || ARCH_LAYERSCAPE` is defined on x86_64, but neither
    condition symbol is, so no x86_64 configuration builds it."""
    reg = Registration("__setup", "lsmsi", Location("drivers/irqchip/i.c", 84),
                       built_if="LS_SCFG_MSI")
    catalog = Catalog("6.12.0", (), (reg,), ())
    cond = Expr("or", (Expr.sym("SOC_LS1021A"), Expr.sym("ARCH_LAYERSCAPE")))
    never = _model(_symbol("LS_SCFG_MSI", (("y", cond),)))
    assert cross_check(catalog, {"x86_64": never}, srcarches={"x86"}) == ()
    # a condition symbol that has a prompt on the arch makes it settable
    settable = _model(_symbol("LS_SCFG_MSI", (("y", cond),)), _symbol("SOC_LS1021A", prompt=True))
    assert _pairs(cross_check(catalog, {"x86_64": settable}, srcarches={"x86"}),
                  "undocumented") == {"lsmsi"}
    # select ignores dependencies; a `depends on` an undefined symbol blocks the prompt
    selected = _model(_symbol("LS_SCFG_MSI", dep=Expr.sym("ARCH_LAYERSCAPE"), prompt=True,
                              selected_by=("X86",)), _symbol("X86", (("y", None),)))
    assert _pairs(cross_check(catalog, {"x86_64": selected}, srcarches={"x86"}),
                  "undocumented") == {"lsmsi"}
    blocked = _model(_symbol("LS_SCFG_MSI", dep=Expr.sym("ARCH_LAYERSCAPE"), prompt=True))
    assert cross_check(catalog, {"x86_64": blocked}, srcarches={"x86"}) == ()
    # a default `n` never sets it
    off = _model(_symbol("LS_SCFG_MSI", (("n", None),)))
    assert cross_check(catalog, {"x86_64": off}, srcarches={"x86"}) == ()


def test_code_settable_on_any_linted_arch_counts_whichever_arch_is_asked_first() -> None:
    """Each arch is asked only of the symbols no arch before it could set: a symbol settable
    only on the arch asked first, one settable only on the arch asked last, and one settable
    on neither are each judged as if every arch were asked of every symbol."""
    regs = tuple(Registration("__setup", name, Location("drivers/x.c", i), built_if=sym)
                 for i, (name, sym) in enumerate((("first", "ONLY_BIG"), ("last", "ONLY_SMALL"),
                                                  ("never", "NOWHERE")), start=1))
    catalog = Catalog("6.12.0", (), regs, ())
    big = _model(_symbol("ONLY_BIG", prompt=True), _symbol("ONLY_SMALL"), _symbol("NOWHERE"),
                 _symbol("PAD1"), _symbol("PAD2"))  # most symbols: asked first
    small = _model(_symbol("ONLY_SMALL", prompt=True), _symbol("NOWHERE", (("n", None),)))
    for models in ({"a": big, "b": small}, {"a": small, "b": big}):
        assert _pairs(cross_check(catalog, models, srcarches={"x86"}),
                      "undocumented") == {"first", "last"}


def test_a_toolchain_answer_does_not_make_a_symbol_impossible() -> None:
    """`def_bool $(cc-option,...)` answered n by one toolchain profile may be y with another."""
    sym = _symbol("CC_HAS_THING", (("n", None),))
    assert possible_symbols({sym.name: sym}, [sym.name]) == frozenset()
    assert possible_symbols({sym.name: sym}, [sym.name], {sym.name}) == {sym.name}


def test_compile_test_alone_does_not_make_a_driver_the_arch_s() -> None:
    """pci-versatile.c (`depends on ARCH_VERSATILE || COMPILE_TEST`) registers pci_slot_ignore=:
    on x86_64 only COMPILE_TEST builds it, for build coverage, so it is not x86_64's parameter;
    a driver that also depends on an x86 symbol still is."""
    regs = tuple(Registration("__setup", name, Location("drivers/x.c", i), built_if=sym)
                 for i, (name, sym) in enumerate((("versatile", "PCI_VERSATILE"),
                                                  ("both", "X86_OR_TEST")), start=1))
    catalog = Catalog("7.2.0", (), regs, ())
    dep = Expr("or", (Expr.sym("ARCH_VERSATILE"), Expr.sym("COMPILE_TEST")))
    x86_dep = Expr("or", (Expr.sym("X86"), Expr.sym("COMPILE_TEST")))
    model = _model(_symbol("COMPILE_TEST", prompt=True), _symbol("X86", (("y", None),)),
                   _symbol("PCI_VERSATILE", prompt=True, dep=dep),
                   _symbol("X86_OR_TEST", prompt=True, dep=x86_dep))
    assert _pairs(cross_check(catalog, {"x86_64": model}, srcarches={"x86"}),
                  "undocumented") == {"both"}


def test_a_legacy_name_an_entry_accepts_is_documented_by_that_entry() -> None:
    """kernel-parameters.txt's slab_debug says "(slub_debug legacy name also accepted for
    now)": mm/slub.c's __core_param_cb(slub_debug, ...) is documented there (elsewhere), not
    undocumented; a legacy name of an entry without the phrase still is."""
    from kpolicy.params.catalog import catalog_lookup
    from kpolicy.params.docs import legacy_names

    body = ("Enabling slab_debug allows one to determine the culprit.\n"
            "(slub_debug legacy name also accepted for now)")
    doc = DocEntry(names=("slab_debug",), takes_value=True, tags=("MM",), body=body,
                   format=None, default_symbols=(), config_symbols=(),
                   location=Location("k.txt", 7), end_line=9)
    assert legacy_names(doc) == ("slub_debug",)
    regs = (Registration("__setup", "slab_debug", Location("mm/slub.c", 1)),
            Registration("core_param", "slub_debug", Location("mm/slub.c", 2)),
            Registration("core_param", "slub_other", Location("mm/slub.c", 3)))
    catalog = Catalog("7.2.0", (doc,), regs, ())
    info = catalog_lookup(catalog)["slub_debug"]
    assert info.doc is None and info.elsewhere == Location("k.txt", 7)
    assert _pairs(cross_check(catalog), "undocumented") == {"slub_other"}


@pytest.mark.parametrize(("body", "orphan"), [
    ("Run init in single mode", False),  # S [KNL]
    ("Passed to init, which boots to its emergency shell.", False),
    ("Handled by init: start in rescue mode.", False),
    ("Run in single mode", True),  # who runs is not said: the kernel owes a registration
    ("Enable the initcall debugging.", True),
])
def test_words_documented_as_inits_are_not_orphans(body: str, orphan: bool) -> None:
    """init/main.c unknown_bootoption hands init every word no registration takes: an entry
    that says init takes it (`S [KNL] Run init in single mode`) is no doc-orphan."""
    doc = DocEntry(names=("S",), takes_value=False, tags=("KNL",), body=body, format=None,
                   default_symbols=(), config_symbols=(), location=Location("k.txt", 5),
                   end_line=5)
    issues = cross_check(Catalog("7.2.0", (doc,), (), ()))
    assert (_pairs(issues, "doc-orphan") == {"S"}) is orphan


def test_a_subsystem_document_documents_a_boot_parameter(tmp_path: Path) -> None:
    """stmmac.rst's "stmmaceth=watchdog:100" and kgdb.rst's "``kgdbts=`` as a kernel boot
    argument" document those __setup("name=") parameters; a bare word counts only for a
    registration without "=" and on a line calling it a boot parameter; `.name=`, `$name=`,
    CONFIG_ assignments and kernel-parameters.txt itself document nothing."""
    from kpolicy.cache import Cache
    from kpolicy.params.catalog import catalog_lookup
    from kpolicy.params.mentions import document_mentions

    root = tmp_path / "linux"
    shutil.copytree(FIXTURE, root)
    net = root / "Documentation" / "networking"
    net.mkdir(parents=True)
    (net / "stmmac.rst").write_text(
        "Driver parameters can be passed on the command line::\n\n"
        "  stmmaceth=watchdog:100,chain_mode=1\n\n"
        "The debug word also turns tracing on.\n"
        "Pass nodbg as a kernel boot parameter to stop it.\n"
        "  .member_only=1 and $shellvar=2 and CONFIG_SOMETHING=y\n")
    # a passing mention first in path order, the parameter's own page later: its page wins
    (root / "Documentation" / "admin-guide" / "init.rst").write_text("Try netcons= instead.\n")
    (net / "netcons.rst").write_text("Netcons\n\n netcons=port@ip\n")
    (root / "Documentation" / "admin-guide" / "kernel-parameters.txt").write_text(
        (FIXTURE / "Documentation" / "admin-guide" / "kernel-parameters.txt").read_text()
        + "\tlisted\t\t[KNL] Mentions inlist_only=1 in its text.\n\n")
    c_file = root / "kernel" / "mentioned.c"
    c_file.parent.mkdir(exist_ok=True)
    c_file.write_text("".join(
        f'static int __init f{i}(char *s) {{ return 1; }}\n__setup("{n}", f{i});\n'
        for i, n in enumerate(("stmmaceth=", "debug", "nodbg", "member_only=", "shellvar=",
                               "SOMETHING=", "inlist_only=", "chain_mode", "netcons="))))
    with (root / "kernel" / "Makefile").open("a") as f:
        f.write("obj-y += mentioned.o\n")
    tree = open_tree(root)
    cache = Cache(tmp_path / "cache")
    assert document_mentions(tree, cache) == document_mentions(tree)  # cached == built
    catalog = build_catalog(tree, cache)
    where = {k: v for k, v in catalog.doc_mentions}
    rst = "Documentation/networking/stmmac.rst"
    assert where == {"stmmaceth": Location(rst, 3), "nodbg": Location(rst, 6),
                     "netcons": Location("Documentation/networking/netcons.rst", 3)}
    assert catalog_lookup(catalog)["stmmaceth"].elsewhere == Location(rst, 3)
    undocumented = _pairs(cross_check(catalog), "undocumented")
    assert {"stmmaceth", "nodbg"}.isdisjoint(undocumented)
    # chain_mode=1 is a value inside stmmaceth=, and a __setup("chain_mode") (no "=") needs a
    # boot-parameter line; "debug" is only prose
    assert {"chain_mode", "debug", "member_only", "shellvar", "inlist_only"} <= undocumented


def test_an_entry_whose_title_is_a_topic_is_not_an_orphan() -> None:
    """`watchdog timers [HW,WDT]` (6.1, 6.12, 7.2) names a topic, not a parameter; a one-word
    title with the same body is still an orphan."""
    body = ("\t\t\tFor information on watchdog timers,\n"
            "\t\t\tsee Documentation/watchdog/watchdog-parameters.rst.\n")
    topic = parse_kernel_parameters(f"\twatchdog timers\t[HW,WDT]\n{body}")
    word = parse_kernel_parameters(f"\twatchdog\t[HW,WDT]\n{body}")
    assert topic[0].topic == "watchdog timers" and not word[0].topic
    assert _pairs(cross_check(Catalog("7.2.0", topic, (), ())), "doc-orphan") == set()
    assert _pairs(cross_check(Catalog("7.2.0", word, (), ())), "doc-orphan") == {"watchdog"}


def test_a_boot_loader_parameter_is_not_an_orphan() -> None:
    """`vga= [BOOT,X86-32]`: BOOT marks what the boot loader reads (kernel-parameters.rst), so
    no registration is owed; the same entry without BOOT is an orphan."""
    loader = Catalog("7.2.0", (_doc("vga", ("BOOT", "X86-32"), "Select a video mode"),), (), ())
    kernel = Catalog("7.2.0", (_doc("vga", ("X86-32",), "Select a video mode"),), (), ())
    assert _pairs(cross_check(loader), "doc-orphan") == set()
    assert _pairs(cross_check(kernel), "doc-orphan") == {"vga"}


def test_an_orphan_continued_by_a_dotted_setup_prefix_says_so() -> None:
    """`memchunk=nn[KMG]` (6.12, 7.2): arch/sh registers __setup("memchunk.") for
    memchunk.<dev>=size, which never takes memchunk=; the message names the prefix."""
    docs = (_doc("memchunk", ("KNL",), "Set the size of a device's memory chunk"),)
    regs = (Registration("__setup", "memchunk.", Location("arch/sh/mm/consistent.c", 18)),)
    (orphan,) = [i for i in cross_check(Catalog("7.2.0", docs, regs, ())) if i.kind == "doc-orphan"]
    assert orphan.message == ("memchunk: documented, but no early_param, __setup, core_param or "
                              'module_param registers it; a __setup takes only words that start '
                              'with "memchunk."')
