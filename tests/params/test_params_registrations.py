"""The C registration scanner on tests/fixtures/params_c: one file per construct."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest

from kpolicy.cache import Cache
from kpolicy.errors import KpolicyError
from kpolicy.params import ctokens
from kpolicy.params.model import Registration, StaticKey
from kpolicy.params.scan import command_line_reads, scan_registrations
from kpolicy.tree import open_tree

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "params_c"


@pytest.fixture(scope="module")
def scanned() -> tuple[tuple[Registration, ...], tuple[StaticKey, ...]]:
    return scan_registrations(open_tree(FIXTURE))


def _line_of(rel: str, needle: str) -> int:
    """1-based line of the first line of fixture file REL that starts with NEEDLE (that is
    NEEDLE exactly, when NEEDLE ends with "$")."""
    for number, line in enumerate((FIXTURE / rel).read_text().splitlines(), 1):
        if line == needle[:-1] if needle.endswith("$") else line.startswith(needle):
            return number
    raise AssertionError(f"{needle!r} not in {rel}")


def _fixture_with_util_c(tmp_path: Path, text: str) -> Path:
    """A copy of the params_c fixture tree whose mm/util.c holds TEXT."""
    import shutil

    root = tmp_path / "tree"
    shutil.copytree(FIXTURE, root)
    (root / "mm" / "util.c").write_text(text)
    return root


def _only(regs: tuple[Registration, ...], name: str) -> Registration:
    found = [r for r in regs if r.name == name]
    assert len(found) == 1, (name, found)
    return found[0]


# name -> (kind, file, line needle, built_if chain, parser, param_type, handler)
EXPECTED: dict[str, tuple[str, str, str, tuple[str, ...], Optional[str], Optional[str],
                          Optional[str]]] = {
    "randomize_kstack_offset": ("early_param", "init/main.c", 'early_param("randomize', (),
                                "kstrtobool", None, "early_randomize_kstack_offset"),
    "thp_mode": ("__setup", "init/main.c", '__setup("thp_mode=', (), "strcmp", None,
                 "mode_setup"),
    "quietish": ("__setup", "init/main.c", '__setup("quietish"', (), None, None, "quiet_kernel"),
    # string pieces on a later line, a comment inside the call
    "multiline": ("early_param", "init/main.c", "early_param($", (), "memparse", None, "multi"),
    "from_define": ("__setup", "init/main.c", "__setup(FOO_NAME", (), None, None, "quiet_kernel"),
    "foo_on": ("early_param", "init/main.c", "early_param_on_off(", (), "early_param_on_off",
               None, None),
    "foo_off": ("early_param", "init/main.c", "early_param_on_off(", (), "early_param_on_off",
                None, None),
    # composite object page-alloc.o: KBUILD_MODNAME page_alloc; ops .set parses with kstrtobool
    "page_alloc.shuffle": ("module_param", "mm/shuffle.c", "module_param_cb(shuffle",
                           ("SHUFFLE_PAGE_ALLOCATOR",), "kstrtobool", None, "shuffle_param_set"),
    "zswap.enabled": ("module_param", "mm/zswap.c", "module_param_named(enabled", ("ZSWAP",),
                      "kstrtobool", "bool", None),
    "zswap.max_pool_percent": ("module_param", "mm/zswap.c", "module_param_cb(max", ("ZSWAP",),
                               "kstrtouint", "uint", None),
    # $(mmu-y) inside obj-y: no composite, the file's own name; ifdef CONFIG_MMU around it
    "mseal.sealing": ("module_param", "mm/mseal.c", "module_param(sealing", ("MMU",),
                      "kstrtoint", "int", None),
    # MODULE_PARAM_PREFIX redefined; dir nesting obj-$(CONFIG_MODULES) += module/
    "module.sig_enforce": ("module_param", "kernel/module/signing.c", "module_param(sig_enforce",
                           ("MODULES", "MODULE_SIG"), "kstrtobool", "bool_enable_only", None),
    "panic": ("core_param", "kernel/params.c", "core_param(panic", (), "kstrtoint", "int", None),
    # a macro of this file wrapping module_param
    "params.wrapped": ("module_param", "kernel/params.c", "my_param(wrapped", (), "string",
                       "charp", None),
    # a wrapper of a wrapper of module_param_named (grcan.c's GRCAN_CONFIG_ATTR)
    "params.nested": ("module_param", "kernel/params.c", "my_outer(nested", (), "kstrtou16",
                      "ushort", None),
    # macros calling each other: expanded once, as cpp would
    "params.looped": ("module_param", "kernel/params.c", "ping(looped", (), "kstrtoint", "int",
                      None),
    # a local header's registration: located in the header, named after the includer
    "params.from_header": ("module_param", "kernel/params_local.h", "module_param(from_header",
                           (), "kstrtouint", "uint", None),
    # a wrapper from include/linux/torture.h
    "torture_test.verbose": ("module_param", "kernel/torture_test.c", "torture_param(int",
                             ("TORTURE_TEST",), "kstrtoint", "int", None),
    # kernel/policy.c is no object: kernel/build_policy.c #includes it
    "included_policy": ("__setup", "kernel/policy.c", "__setup(", ("SCHED_BUILD",), None, None,
                        "policy_setup"),
    # obj-$(CONFIG_SECURITY) += security/ and ifdef CONFIG_LSM_X around obj-y
    "lsm.x": ("early_param", "security/lsm.c", "early_param(", ("SECURITY", "LSM_X"),
              "lookup_constant", None, "lsm_setup"),
    "archonly": ("early_param", "arch/x86/kernel/x86thing.c", "early_param(", ("X86_THING",),
                 None, None, "parse_armonly"),
    "modonly.debug": ("module_param", "drivers/modonly.c", "module_param(", (), "kstrtoint",
                      "int", None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registration_fields(scanned: tuple[tuple[Registration, ...], tuple[StaticKey, ...]],
                             name: str) -> None:
    kind, rel, needle, chain, parser, ptype, handler = EXPECTED[name]
    reg = _only(scanned[0], name)
    assert reg.kind == kind
    assert reg.location.file == rel
    assert reg.location.line == _line_of(rel, needle)
    assert reg.built_if_chain == chain
    assert reg.built_if == (chain[-1] if chain else None)
    assert reg.parser == parser
    assert reg.param_type == ptype
    assert reg.handler == handler


def test_exactly_the_expected_names(
        scanned: tuple[tuple[Registration, ...], tuple[StaticKey, ...]]) -> None:
    # Nothing from comments, string literals or #define bodies (TEMPLATE, the wrappers).
    assert sorted(r.name for r in scanned[0]) == sorted(EXPECTED)


def test_setup_equals_ifdef_and_module_only(
        scanned: tuple[tuple[Registration, ...], tuple[StaticKey, ...]]) -> None:
    regs = scanned[0]
    assert _only(regs, "thp_mode").setup_has_equals
    assert not _only(regs, "quietish").setup_has_equals
    assert _only(regs, "randomize_kstack_offset").cpp_conditions == (
        "CONFIG_RANDOMIZE_KSTACK_OFFSET",)
    assert _only(regs, "thp_mode").cpp_conditions == ()
    assert _only(regs, "modonly.debug").module_only
    assert not _only(regs, "zswap.enabled").module_only


def test_static_keys_and_initial_values(
        scanned: tuple[tuple[Registration, ...], tuple[StaticKey, ...]]) -> None:
    keys = {k.name: k for k in scanned[1]}
    rko = keys["randomize_kstack_offset"]
    assert (rko.symbol, rko.initial, rko.kind) == ("RANDOMIZE_KSTACK_OFFSET_DEFAULT", "config",
                                                    "static_key")
    assert rko.location.line == _line_of("init/main.c", "DEFINE_STATIC_KEY_MAYBE_RO(")
    assert (keys["params_key"].symbol, keys["params_key"].initial) == (None, "false")
    assert (keys["params_on"].symbol, keys["params_on"].initial) == (None, "true")
    assert (keys["foo_enabled"].symbol, keys["foo_enabled"].kind) == ("FOO", "variable")
    assert (keys["foo_default"].symbol, keys["foo_default"].kind) == ("FOO_DEFAULT", "variable")
    assert keys["sig_enforce"].symbol == "MODULE_SIG_FORCE"
    assert "local" not in keys  # IS_ENABLED inside a function is no initial value
    assert "zswap_enabled" in keys


def test_cache_returns_the_same_scan(tmp_path: Path) -> None:
    tree = open_tree(FIXTURE)
    cache = Cache(tmp_path)
    first = scan_registrations(tree, cache)
    assert list(tmp_path.glob("params-registrations/*.pickle"))
    assert scan_registrations(tree, cache) == first == scan_registrations(tree)


def test_cache_key_follows_file_changes(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "tree"
    shutil.copytree(FIXTURE, root)
    tree = open_tree(root)
    cache = Cache(tmp_path / "cache")
    before = {r.name for r in scan_registrations(tree, cache)[0]}
    with open(root / "mm" / "util.c", "a") as f:
        f.write('early_param("added_later", util_setup);\n')
    after = {r.name for r in scan_registrations(tree, cache)[0]}
    assert after - before == {"added_later"}


def test_hostile_c_files_do_not_break_the_scan(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "tree"
    shutil.copytree(FIXTURE, root)
    # unterminated comment, unbalanced call, latin-1 bytes, an apostrophe in #error
    (root / "mm" / "util.c").write_bytes(
        b"#error don't\nearly_param(\"unclosed\", f\n/* \xe9\xff early_param(\"x\", y);\n")
    (root / "mm" / "page_alloc.c").write_bytes(b'__setup("caf\xe9=", f);\nmodule_param(,,);\n')
    regs = scan_registrations(open_tree(root))[0]
    names = {r.name for r in regs}
    assert "unclosed" not in names and "x" not in names
    assert "caf\ufffd" in names  # kept, with the undecodable byte replaced


def test_nul_in_c_file_is_not_an_error_but_oversize_is(tmp_path: Path) -> None:
    import shutil

    from kpolicy.params import cunit

    root = tmp_path / "tree"
    shutil.copytree(FIXTURE, root)
    (root / "mm" / "util.c").write_bytes(b"\0\0 early_param(\"after_nul\", f);\n")
    assert "after_nul" in {r.name for r in scan_registrations(open_tree(root))[0]}
    limit = cunit.MAX_C_FILE
    (root / "mm" / "util.c").write_bytes(b" " * (limit + 1))
    with pytest.raises(KpolicyError) as err:
        scan_registrations(open_tree(root))
    assert err.value.file is not None and err.value.file.endswith("util.c")


def test_mask_keeps_offsets_and_hides_comments_and_strings() -> None:
    src = b'a /* x(\n) */ b "s(,)" \'c\' // y(\nz'
    masked = ctokens.mask(src)
    assert len(masked) == len(src)
    assert masked.count(b"\n") == src.count(b"\n")
    assert masked == b'a      \n     b "xxxx" \'x\'      \nz'
    args = ctokens.call_arguments(ctokens.mask(b'f(a, g(b, c), "x,y")'), 1)
    assert args is not None and len(args[0]) == 3


def test_command_line_reads_without_registration() -> None:
    # arch/x86/kernel/x86thing.c: cmdline_find_option_bool, an alias table, and the arches'
    # early copies of the line (prom_strstr(prom_cmd_line, ...), strstr(arcs_cmdline, ...)),
    # and the line Xen hands a PV guest (strstr(xen_start_info->cmd_line, ...))
    assert command_line_reads(open_tree(FIXTURE)) == {"noxfoo", "fixture.alias", "svm",
                                                      "machtype", "xen_512gb_limit"}


def test_nested_wrappers_are_bounded(tmp_path: Path) -> None:
    """Wrappers of wrappers multiply: ten levels of ten calls each is hostile input, an error
    naming the file, not ten billion registrations."""
    import shutil

    from kpolicy.params import cunit

    root = tmp_path / "tree"
    shutil.copytree(FIXTURE, root)
    lines = ["#define w0(n) module_param(n, int, 0444)"]
    for level in range(1, 10):
        calls = " ".join(f"w{level - 1}(n##{c})" for c in "abcdefghij")
        lines.append(f"#define w{level}(n) {calls}")
    lines.append("w9(x);")
    (root / "mm" / "util.c").write_text("\n".join(lines) + "\n")
    with pytest.raises(KpolicyError) as err:
        scan_registrations(open_tree(root))
    assert err.value.file == "mm/util.c" and str(cunit.MAX_WRAPPERS) in err.value.message


def test_a_flood_of_calls_is_an_error_naming_the_file(tmp_path: Path) -> None:
    import shutil

    from kpolicy.params import registrations

    root = tmp_path / "tree"
    shutil.copytree(FIXTURE, root)
    (root / "mm" / "util.c").write_text("early_param(\n" * (registrations.MAX_CALLS_PER_FILE + 1))
    with pytest.raises(KpolicyError) as err:
        scan_registrations(open_tree(root))
    assert err.value.file == "mm/util.c" and "registration macro calls" in err.value.message


def test_boot_default_variables_keys_chosen_by_if_and_level_callbacks(tmp_path: Path) -> None:
    """The shapes x86 uses for its mitigation defaults (bugs.c) and for syscall.x32
    (entry/syscall_64.c): the variable or key records its symbol and the parameters whose
    handler writes it."""
    root = _fixture_with_util_c(tmp_path,
        '#undef MODULE_PARAM_PREFIX\n#define MODULE_PARAM_PREFIX "syscall."\n'
        "static enum m mds_mitigation __ro_after_init =\n"
        "\tIS_ENABLED(CONFIG_MITIGATION_MDS) ? MDS_AUTO : MDS_OFF;\n"
        "static int __init mds_cmdline(char *str)\n{\n"
        '\tif (!strcmp(str, "off"))\n\t\tmds_mitigation = MDS_OFF;\n\treturn 0;\n}\n'
        'early_param("mds", mds_cmdline);\n'
        "static int __init other(char *str)\n{\n\treturn mds_mitigation == MDS_OFF;\n}\n"
        'early_param("other", other);\n'
        "#if defined(CONFIG_X32_DISABLED)\nDEFINE_STATIC_KEY_FALSE(x32_key);\n#else\n"
        "DEFINE_STATIC_KEY_TRUE(x32_key);\n#endif\n"
        "#ifdef CONFIG_ONLY_HERE\nDEFINE_STATIC_KEY_FALSE(plain_key);\n#endif\n"
        "static int x32_set(const char *val, const struct kernel_param *p)\n{\n"
        "\tstatic_key_enable(&x32_key.key);\n\treturn kstrtobool(val, &b);\n}\n"
        "static const struct kernel_param_ops x32_ops = {\n\t.set = x32_set,\n};\n"
        "arch_param_cb(x32, &x32_ops, NULL, 0444);\n")
    regs, keys = scan_registrations(open_tree(root))
    x32 = _only(regs, "syscall.x32")
    assert (x32.kind, x32.handler, x32.parser) == ("module_param", "x32_set", "kstrtobool")
    by_name = {k.name: k for k in keys if k.location.file == "mm/util.c"}
    mds = by_name["mds_mitigation"]
    assert (mds.symbol, mds.kind, mds.params) == ("MITIGATION_MDS", "variable", ("mds",))
    key = by_name["x32_key"]  # one entry for both arms; FALSE when the symbol is set
    assert (key.symbol, key.initial, key.params) == ("X32_DISABLED", "inverted", ("syscall.x32",))
    assert sum(k.name == "x32_key" for k in keys) == 1
    # a key that exists only under an #ifdef is not bound to that symbol
    assert (by_name["plain_key"].symbol, by_name["plain_key"].initial) == (None, "false")


def test_level_callbacks_take_the_module_prefix_core_param_does_not(tmp_path: Path) -> None:
    """include/linux/moduleparam.h: core_param_cb and device_param_cb are __level_param_cb
    (MODULE_PARAM_PREFIX + name); core_param and __core_param_cb register the bare name."""
    root = _fixture_with_util_c(tmp_path,
        "static const struct kernel_param_ops ops = {\n\t.set = param_set_bool,\n};\n"
        "core_param_cb(level_one, &ops, NULL, 0444);\n"
        "device_param_cb(dev_level, &ops, NULL, 0444);\n"
        "__core_param_cb(bare_cb, &ops, NULL, 0444);\n"
        "core_param(bare_var, v, int, 0444);\n")
    regs = scan_registrations(open_tree(root))[0]
    names = {r.name: r.kind for r in regs if r.location.file == "mm/util.c"}
    assert names == {"util.level_one": "module_param", "util.dev_level": "module_param",
                     "bare_cb": "core_param", "bare_var": "core_param"}


def test_module_names_through_include_variables_and_templates() -> None:
    """The Makefile shapes of arch/x86/kvm (include + $(KVM)/), omapfb ($(objs-yy)) and
    drivers/platform/x86/intel (define + $(foreach $(eval $(call)))), read without make."""
    from kpolicy.params.kbuild import KbuildMap

    included = {"virt/kvm/Makefile.kvm": "KVM ?= ../../../virt/kvm\n"
                                         "kvm-y := $(KVM)/kvm_main.o\n"
                                         "kvm-$(CONFIG_KVM_VFIO) += $(KVM)/vfio.o\n"}
    kb = KbuildMap({
        "": "obj-y += arch/x86/ drivers/\n",
        "arch/x86": "obj-$(CONFIG_KVM) += kvm/\n",
        "arch/x86/kvm": "include $(srctree)/virt/kvm/Makefile.kvm\nobj-$(CONFIG_KVM) += kvm.o\n",
        "drivers": "obj-y += omap/ intel/\n",
        "drivers/omap": "objs-yy := main.o lcdc.o\nomapfb-objs := $(objs-yy)\n"
                        "obj-$(CONFIG_FB_OMAP) += omapfb.o\n",
        "drivers/intel": "intel-target-$(CONFIG_INTEL_VSEC) += vsec.o\n"
                         "define T\nintel-$(1)-y := $(1).o\nobj-$(2) += intel-$(1).o\nendef\n"
                         "$(foreach t, $(basename $(intel-target-y)), "
                         "$(eval $(call T,$(t),y)))\n",
    }, included.get)
    main = kb.build_info("virt/kvm/kvm_main.c")
    assert main is not None and (main.modname, main.chain) == ("kvm", ("KVM",))
    vfio = kb.build_info("virt/kvm/vfio.c")
    assert vfio is not None and (vfio.modname, vfio.chain) == ("kvm", ("KVM", "KVM_VFIO"))
    lcdc = kb.build_info("drivers/omap/lcdc.c")
    assert lcdc is not None and (lcdc.modname, lcdc.chain) == ("omapfb", ("FB_OMAP",))
    vsec = kb.build_info("drivers/intel/vsec.c")
    assert vsec is not None and (vsec.modname, vsec.chain) == ("intel_vsec", ("INTEL_VSEC",))
    # without a reader the include is skipped: the old answer (no Makefile lists kvm_main.o)
    assert KbuildMap({"arch/x86/kvm": "include $(srctree)/virt/kvm/Makefile.kvm\n"}).build_info(
        "virt/kvm/kvm_main.c") is None


def test_help_at_survives_the_model_encodings() -> None:
    """Registration.help_at (UML's __uml_help) through a cached model's marshal rows and a
    model file's JSON; JSON written before the field existed decodes to None."""
    import json

    from kpolicy.kconfig.model import Location
    from kpolicy.resolve.codec import encode
    from kpolicy.resolve.lazy import _pack_registration, _registration

    reg = Registration(kind="__setup", name="vec", location=Location("a.c", 3), handler="h",
                       help_at=Location("a.c", 4))
    assert _registration(_pack_registration(reg)) == reg
    assert _registration(json.dumps(encode(reg))) == reg
    old = encode(Registration(kind="__setup", name="vec", location=Location("a.c", 3)))
    old.pop("help_at", None)  # the encoder may leave defaults out already
    assert _registration(json.dumps(old)).help_at is None


def test_hostile_makefile_templates_and_includes_stop() -> None:
    """A template that calls itself, a Makefile including itself, and a huge foreach list end
    (bounded depth and lines), not in a RecursionError or an endless expansion."""
    from kpolicy.params.kbuild import KbuildMap

    selfish = ("x-y += " + " ".join(f"o{i}.o" for i in range(5000)) + "\n"
               "define T\n$(foreach t, $(x-y), $(eval $(call T,$(t),y)))\nobj-y += $(1)\nendef\n"
               "$(foreach t, $(x-y), $(eval $(call T,$(t),y)))\n")
    loop = "include $(srctree)/d/Makefile.loop\nobj-y += a.o\n"
    kb = KbuildMap({"d": selfish + loop}, {"d/Makefile.loop": loop}.get)
    info = kb.build_info("d/a.c")
    assert info is not None and info.modname == "a"


def test_a_handler_that_only_prints_is_marked(tmp_path: Path) -> None:
    """block/elevator.c keeps elevator= only to warn that it does nothing; mm/memcontrol.c
    parses swapaccount= into a local just to warn about a deprecated value. A handler with any
    other effect, or one that prints nothing, is not marked."""
    def handler(name: str, body: str) -> str:
        return (f"static int __init {name}_setup(char *s)\n{{\n{body}}}\n"
                f'__setup("{name}=", {name}_setup);\n')

    root = _fixture_with_util_c(tmp_path, "".join((
        handler("gone", '\tpr_warn("gone= has no effect anymore;"\n\t\t" use sysfs");\n'
                        "\treturn 1;\n"),
        handler("deprecated", "\tbool res;\n\n\tif (!kstrtobool(s, &res) && !res)\n"
                              '\t\tpr_warn_once("deprecated=0 is deprecated\\n");\n'
                              "\treturn 1;\n"),
        handler("stored", '\tpr_info("stored\\n");\n\tstored = 1;\n\treturn 1;\n'),
        handler("parsed", "\tpr_info(\"parsed\\n\");\n\treturn kstrtobool(s, &parsed);\n"),
        handler("called", '\tpr_warn("called\\n");\n\tenable_thing();\n\treturn 1;\n'),
        handler("silent", "\treturn 1;\n"),
    )))
    regs, _keys = scan_registrations(open_tree(root))
    marked = {r.name for r in regs if r.location.file == "mm/util.c" and r.only_warns}
    assert marked == {"gone", "deprecated"}
