"""rules/params/: the one parameter-semantics schema, its loader, inference and checks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest

from kpolicy.errors import KpolicyError
from kpolicy.kconfig.model import Location
from kpolicy.params.model import Registration
from kpolicy.params.semantics import (
    HandlerSemantics,
    for_target,
    infer_semantics,
    load_param_rules,
    merge_state,
    parse_params_file,
    stale_declarations,
)

V72, V612 = (7, 2, 0), (6, 12, 0)


def reg(kind: str, name: str, parser: Optional[str] = None,
        param_type: Optional[str] = None) -> Registration:
    return Registration(kind, name, Location("x.c", 1), parser=parser, param_type=param_type)


def test_inference_from_param_types_and_parsers() -> None:
    b = infer_semantics(reg("module_param", "m.b", param_type="bool"))
    assert b.noarg and b.takes("y", V72) and not b.takes("x", V72) and b.on_invalid == "invalid"
    assert infer_semantics(reg("module_param", "m.e", param_type="bool_enable_only")).merge == \
        "enable-only"
    assert not infer_semantics(reg("module_param", "m.i", param_type="invbool")).noarg
    n = infer_semantics(reg("core_param", "panic", param_type="int"))
    assert n.takes("-1", V72) and not n.takes("x", V72) and not n.noarg
    assert n.state_of("0x10", V72) == 16
    cb = infer_semantics(reg("module_param", "m.cb", parser="param_set_bool"))
    assert cb.accept == "kstrtobool" and not cb.noarg
    e = infer_semantics(reg("early_param", "x", parser="kstrtobool"))
    assert e.on_invalid == "malformed" and not e.takes(None, V72)
    k = infer_semantics(reg("__setup", "k", parser="kstrtobool"))
    assert k.on_invalid == "ignored" and not k.takes("maybe", V72)
    s = infer_semantics(reg("__setup", "y", parser="strcmp"))
    assert s.takes("anything", V72) and s.takes(None, V72) and s.state_of("x", V72) is None


def test_values_and_the_states_they_set() -> None:
    words = HandlerSemantics("list", ("auto", "nosmt", "off"))
    assert words.takes("auto,nosmt", V72) and not words.takes("auto,bogus", V72)
    assert words.state_of("auto,nosmt", V72) == "auto,nosmt"
    assert HandlerSemantics("list").takes("anything,at,all", V72)
    bare = HandlerSemantics("kstrtobool", noarg=True)
    assert bare.state_of(None, V72) is True and bare.state_of("e", V612) is None
    assert HandlerSemantics(sets=False).state_of("whatever", V72) is False
    assert HandlerSemantics("integer", param_type="byte").takes("255", V72)
    assert not HandlerSemantics("integer", param_type="byte").takes("256", V72)


def test_merges() -> None:
    def rank(s: object) -> int:
        return ["none", "integrity", "confidentiality"].index(str(s))

    assert merge_state("raise-only", rank, "integrity", "confidentiality") == "confidentiality"
    assert merge_state("raise-only", rank, "confidentiality", "integrity") is None
    assert merge_state("raise-only", int, 3, 3) is None
    assert merge_state("enable-only", int, True, False) is None
    assert merge_state("enable-only", int, False, True) is True
    assert merge_state("last-wins", int, True, False) is False


def test_shipped_rules_parse_and_name_their_source() -> None:
    rules = load_param_rules()
    names = {d.name for d in rules.declarations}
    assert {"lockdown", "transparent_hugepage", "module.sig_enforce", "init", "ro"} <= names
    assert all(d.source and d.file.endswith(".toml") for d in rules.declarations)
    features = {f.name: f for f in rules.features}
    assert features["lockdown"].merge == "raise-only"
    assert features["lockdown"].handler("lockdown", V72).semantics.words == ("integrity",
                                                                       "confidentiality")
    # the feature's merge and default reach the handler the command-line engine reads
    sig = features["module.sig_enforce"].handler("module.sig_enforce", V72).semantics
    assert sig.merge == "enable-only" and sig.initial == "MODULE_SIG_FORCE"
    assert features["MSEAL_SYSTEM_MAPPINGS"].build_only
    # a feature's parameters are declarations too, handler-only files only declarations
    assert {d for f in rules.features for d in f.handlers} <= set(rules.declarations)


def test_a_declaration_the_tree_does_not_register_is_reported() -> None:
    rules = load_param_rules()
    regs = [reg("early_param", "lockdown"), reg("core_param", "module.sig_enforce")]
    problems = stale_declarations(rules.declarations, regs, "x86")
    assert any("'rdinit'" in p and "registers nothing" in p for p in problems)
    assert not any("'lockdown'" in p or "'module.sig_enforce'" in p for p in problems)
    # vsyscall is declared for x86 only: not asked of arm64
    assert any("'vsyscall'" in p for p in problems)
    assert not any("'vsyscall'" in p for p in stale_declarations(rules.declarations, regs,
                                                                 "arm64"))


HANDLER = '[[param]]\nname = "x"\nkind = "__setup"\nsource = "s"\n'


@pytest.mark.parametrize("text", [
    '[[param]]\nname = "x"\nkind = "__setup"',  # no source
    '[[param]]\nname = "x"\nkind = "bogus"\nsource = "s"',
    '[[param]]\nname = "x"\nsource = "s"',  # no kind
    HANDLER + 'accept = "words"',  # no words
    HANDLER + "surprise = 1",
    HANDLER + 'noarg = "yes"',
    HANDLER + "sets = true",  # a constant, but no feature to set
    'build = "X"\n' + HANDLER,  # feature keys without a feature
    "",  # nothing declared
    'feature = "f"\nvalues = "colour"',
    'feature = "f"\nvalues = "text"\nmerge = "raise-only"',
    'feature = "f"\nvalues = ["a", "b"]\nmerge = "enable-only"',
    'feature = "f"\nvalues = ["a", "b"]\n[default]\nvalue = "c"',
    'feature = "f"\n' + HANDLER,  # accept "any" sets no state
    'feature = "f"\n' + HANDLER + "sets = 1",  # not a bool
    'feature = "f"\n' + HANDLER + 'sets = true\npriority = "high"',
    'feature = "f"\nvalues = "int"',  # no unbuilt state
    "name = [",
    'feature = "f"\n[[param]]\nname = "x"\nkind = "direct"\nsource = "s"',  # no word state
    'feature = "f"\n' + HANDLER + 'sets = true\nsince = "6"',  # not major.minor
    HANDLER + 'map = { a = true }',  # a map, but no feature
    'feature = "f"\n[[override]]\nfeature = "g"\nsets = false\nsource = "s"',  # no equals
    'feature = "f"\n[[override]]\nfeature = "g"\nequals = 1\nsets = 2\nsource = "s"',
    'feature = "f"\n' + HANDLER + 'sets = true\ntogether = ["y"]',  # together: direct only
    'feature = "f"\narches = ["x86"]\n' + HANDLER + 'sets = true\narches = ["arm64"]',
    'feature = "f"\n[[param]]\nname = "x"\nkind = "direct"\nsets = true\nmatch = "near"\n'
    'source = "s"',
])
def test_bad_files_are_kpolicy_errors(text: str) -> None:
    with pytest.raises(KpolicyError) as exc:
        parse_params_file(text, "rules/params/x.toml")
    assert exc.value.file == "rules/params/x.toml"


def test_a_parameter_declared_twice_is_an_error(tmp_path: Path) -> None:
    for n in ("a", "b"):
        (tmp_path / f"{n}.toml").write_text(HANDLER)
    with pytest.raises(KpolicyError, match="declared twice"):
        load_param_rules(tmp_path)


def test_one_feature_name_declared_per_arch_or_version(tmp_path: Path) -> None:
    """A feature name may have one declaration per arch (disjoint 'arches') or per version
    (disjoint since/until); for_target() gives everything downstream the model's, one per
    name. Overlapping declarations of one name are an error."""
    (tmp_path / "v.toml").write_text('feature = "v"\narches = ["x86"]\n[default]\nvalue = true\n')
    (tmp_path / "v.arm64.toml").write_text('feature = "v"\narches = ["arm64"]\n'
                                           '[default]\nvalue = false\n')
    rules = load_param_rules(tmp_path)
    assert [f.arches for f in rules.features] == [("arm64",), ("x86",)]
    (arm,), (x86,) = for_target(rules.features, "arm64", V72), for_target(rules.features, "x86",
                                                                            V72)
    assert arm.default_value is False and x86.default_value is True
    (other,) = for_target(rules.features, "riscv", V72)  # none for riscv: skipped, said where
    assert other.arches == ("arm64", "x86")
    for clash in ('feature = "v"\narches = ["arm64", "x86"]\n', 'feature = "v"\n',
                  'feature = "v"\narches = ["x86"]\nsince = "6.18"\n'):
        (tmp_path / "v.arm64.toml").write_text(clash)
        with pytest.raises(KpolicyError, match="declared twice"):
            load_param_rules(tmp_path)
    (tmp_path / "v.toml").write_text('feature = "v"\nbuild = "OLD"\nuntil = "6.18"\n')
    (tmp_path / "v.arm64.toml").write_text('feature = "v"\nbuild = "NEW"\nsince = "6.18"\n')
    rules = load_param_rules(tmp_path)
    assert [f.build for f in rules.features] == ["OLD", "NEW"]
    assert [f.build for f in for_target(rules.features, "x86", V612)] == ["OLD"]
    assert [f.build for f in for_target(rules.features, "x86", V72)] == ["NEW"]


def test_shipped_vulnerabilities_files_have_one_name_on_both_arches() -> None:
    """vulnerabilities.meltdown, .spec_store_bypass and .spectre_v2: x86's and arm64's
    declarations, each read from its arch's code (bugs.c/pti.c; cpufeature.c/proton-pack.c)."""
    features = load_param_rules().features
    for name in ("meltdown", "spec_store_bypass", "spectre_v2"):
        found = {f.arches: f.file for f in features if f.name == "vulnerabilities." + name}
        assert set(found) == {("x86",), ("arm64",)}, name
        assert found[("arm64",)].endswith(f"vulnerabilities.{name}.arm64.toml")
    assert not any(f.name.startswith("arm64.vulnerabilities") for f in features)


def test_prefix_words_match_like_strncmp_in_table_order() -> None:
    """arm64's ssbd= compares each table word over its own length: a longer value still
    matches, and the first word in table order wins."""
    ssbd = HandlerSemantics("prefix", words=("force-on", "force-off", "kernel"),
                            on_invalid="malformed")
    assert ssbd.takes("force-off", V72) and ssbd.state_of("force-off", V72) == "force-off"
    assert ssbd.takes("kernelx", V72) and ssbd.state_of("kernelx", V72) == "kernel"
    assert not ssbd.takes("force", V72) and not ssbd.takes("", V72)
    assert not ssbd.takes(None, V72)
    first = HandlerSemantics("prefix", words=("on", "only"))
    assert first.state_of("only", V72) == "on"
    with pytest.raises(KpolicyError, match="needs a non-empty words list"):
        parse_params_file('feature = "f"\nvalues = ["a"]\n[[param]]\nname = "p"\n'
                          'kind = "early_param"\naccept = "prefix"\nsource = "x.c"\n', "f.toml")


def test_kaslr_declaration_covers_arm64() -> None:
    """kaslr: x86 and arm64, on by default; a bare nokaslr (read directly) or, on arm64, a boot
    without a seed turns it off."""
    spec = next(f for f in load_param_rules().features if f.name == "kaslr")
    assert set(spec.arches) == {"x86", "arm64"} and spec.build == "RANDOMIZE_BASE"
    assert spec.default_value is True
    (seedless,) = spec.machine
    assert seedless.kaslr_seed is False and seedless.effect is False


def test_versioned_declarations(tmp_path: Path) -> None:
    """Two declarations of one parameter may split the versions between them; the engine, the
    stale check and the features pick the one of the model's version."""
    rules = load_param_rules()
    debugfs = next(f for f in rules.features if f.name == "debugfs")
    old, new = debugfs.handler("debugfs", V612), debugfs.handler("debugfs", V72)
    assert old is not None and new is not None and old is not new
    assert old.semantics.state_of("no-mount", V612) == "no-mount"
    assert new.semantics.state_of("no-mount", V72) == "off"
    assert new.semantics.state_of("on", V72) == "on"
    ia32 = next(f for f in rules.features if f.name == "ia32_emulation")
    assert ia32.handler("ia32_emulation", (6, 1, 0)) is None
    regs = [reg("early_param", "debugfs")]
    assert not any("'ia32_emulation'" in p for p in
                   stale_declarations(rules.declarations, regs, "x86", (6, 1, 0)))
    assert any("'ia32_emulation'" in p for p in
               stale_declarations(rules.declarations, regs, "x86", V612))
    # the direct read of nokaslr has no registration to find
    assert not any("'nokaslr'" in p for p in stale_declarations(rules.declarations, regs, "x86"))
    for n, since in (("a", 'until = "6.13"'), ("b", 'since = "6.12"')):
        (tmp_path / f"{n}.toml").write_text(HANDLER + since + "\n")
    with pytest.raises(KpolicyError, match="declared twice"):
        load_param_rules(tmp_path)
    (tmp_path / "b.toml").write_text(HANDLER + 'since = "6.13"\n')
    assert len(load_param_rules(tmp_path).declarations) == 2


def test_overrides_and_direct_reads_parse() -> None:
    features = {f.name: f for f in load_param_rules().features}
    (poison,) = features["init_on_free"].overrides
    assert (poison.feature, poison.equals, poison.sets) == ("page_poison", True, False)
    (zero,) = features["kfence"].overrides
    assert (zero.feature, zero.equals, zero.sets) == ("kfence.sample_interval", 0, False)
    # nokaslr: read directly, as each arch (and arm64 version) finds the word
    reads = {(d.arches, d.match, d.since, d.until) for d in features["kaslr"].handlers}
    assert reads == {(("x86",), "word", None, None),
                     (("arm64",), "word-start", None, (6, 12)),
                     (("arm64",), "word-before-dashes", (6, 12), None)}
    assert all(d.kind == "direct" and d.semantics.sets is False
               for d in features["kaslr"].handlers)
    # pointer authentication's address-auth fields hide it only all three together
    apa = features["arm64.pauth"].handler("id_aa64isar1.apa=0", (7, 2))
    assert apa is not None and apa.kind == "direct"
    assert set(apa.together) == {"id_aa64isar1.api=0", "id_aa64isar2.apa3=0"}


def test_mitigations_parsers_of_72() -> None:
    from kpolicy.params.valueparsers import mitigations_global_72, mitigations_user_kernel_72

    assert mitigations_global_72("auto,nosmt,no_user_user") == "auto,nosmt"
    assert mitigations_global_72("off") == "off" and mitigations_global_72("bogus") is None
    assert mitigations_user_kernel_72("off") is False
    assert mitigations_user_kernel_72("auto") is None  # does not undo an earlier off
    assert mitigations_user_kernel_72("auto,no_user_kernel") is False
    assert mitigations_user_kernel_72(",no_user_kernel") is False  # no global option, vectors read
    assert mitigations_user_kernel_72("auto,bogus,no_user_kernel") is None
    assert mitigations_user_kernel_72("autox,no_user_kernel") is None  # "x,..." is not ",..."


def test_attack_vector_parsers_of_72() -> None:
    """Each vector: cleared by mitigations=off and by its own no_<vector> item; another vector's
    item leaves it alone; an item match_token() refuses stops the reading."""
    from kpolicy.params.valueparsers import (
        mitigations_guest_guest_72,
        mitigations_guest_host_72,
        mitigations_user_user_72,
    )

    for parser, item in ((mitigations_user_user_72, "no_user_user"),
                         (mitigations_guest_host_72, "no_guest_host"),
                         (mitigations_guest_guest_72, "no_guest_guest")):
        assert parser("off") is False
        assert parser(f"auto,{item}") is False
        assert parser(f"auto,no_user_kernel,no_cross_thread,{item}") is False
        assert parser("auto,no_user_kernel") is None
        assert parser(f"auto,bogus,{item}") is None


def test_an_override_may_need_several_features() -> None:
    """'also': the override holds only when every named feature has its state (vulnerabilities.mds
    turns off only when MDS, TAA and MMIO Stale Data all select no VERW)."""
    features = {f.name: f for f in load_param_rules().features}
    (verw,) = features["vulnerabilities.mds"].overrides
    assert verw.features == ("mds", "mmio_stale_data", "tsx_async_abort")
    assert dict(verw.also) == {"mmio_stale_data": "off", "tsx_async_abort": "off"}
    bad = 'feature = "x"\n[[override]]\nfeature = "y"\nequals = true\nsets = false\n' \
          'source = "s"\nalso = { z = [1] }\n'
    with pytest.raises(KpolicyError, match="'also'"):
        parse_params_file(bad, "x.toml")


def test_retbleed_smt_and_srbds_parsers() -> None:
    """retbleed=: the last mode word of the comma list, nosmt apart, other items skipped (6.1 has
    no "stuff"); nosmt=: force or not; srbds=: any word but off turns it back on; 7.2's
    smt_mitigations: auto,nosmt sets on, a plain auto leaves it, no_cross_thread sets off."""
    from kpolicy.params.valueparsers import (
        mitigations_smt_72,
        nosmt,
        retbleed_61,
        retbleed_612,
        retbleed_nosmt,
        srbds,
    )

    assert retbleed_612("off,bogus,unret") == "unret" and retbleed_612("nosmt") is None
    assert retbleed_612("stuff") == "stuff" and retbleed_61("stuff") is None
    assert retbleed_nosmt("off,nosmt") is True and retbleed_nosmt("off") is None
    assert (nosmt(None), nosmt("force"), nosmt("bogus")) == ("off", "forceoff", "off")
    assert (srbds("off"), srbds("on"), srbds("bogus")) == ("off", "on", "on")
    assert mitigations_smt_72("auto,nosmt") == "on" and mitigations_smt_72("auto") is None
    assert mitigations_smt_72("off") == "off"
    assert mitigations_smt_72("auto,nosmt,no_cross_thread") == "off"
    assert mitigations_smt_72("auto,nosmt,bogus,no_cross_thread") == "on"


def test_on_missing_refuses_the_bare_word_of_a_function_handler() -> None:
    """retbleed's handler takes every value but none at all (-EINVAL: Malformed early option)."""
    features = {f.name: f for f in load_param_rules().features}
    handler = features["retbleed"].handler("retbleed", (7, 2))
    assert handler is not None
    sem = handler.semantics
    assert sem.takes("bogus", (7, 2, 0)) and not sem.takes(None, (7, 2, 0))
    assert sem.refusal(None) == "malformed"


def test_slub_debug_reads_values_as_setup_slub_debug() -> None:
    """The global flags: no value or an empty one is full debugging; '-' or letters that set no
    flag ('o', an unknown one) leave them 0; the last block without a slab list sets them, and a
    word whose every block has a slab list leaves them as they were. The slab list is a state of
    its own (slub_debug_string), set by any block with a list and cleared by none."""
    from kpolicy.params.valueparsers import slub_debug_flags as flags
    from kpolicy.params.valueparsers import slub_debug_slab_list as listed

    assert flags(None) is True and flags("") is True
    assert flags("F") is True and flags("fz") is True
    assert flags("-") is False and flags("O") is False and flags("x") is False
    assert flags("F-") is False and flags("-P") is True
    assert flags("-,kmalloc-64") is None and flags(",dentry") is None
    assert flags("F,kmalloc-64;-") is False and flags("-;F,dentry") is False
    assert flags("F;-") is False and flags(";;") is False
    assert listed("-,kmalloc-64") is True and listed(",dentry") is True
    assert listed("F;-") is None and listed(None) is None and listed("") is None
    assert listed("-;F,dentry") is True


def test_iommu_x86_usedac_is_applied_then_malformed() -> None:
    """x86 iommu_setup returns 1 at an item starting with "usedac" (do_early_param: Malformed
    early option), after applying the items before it."""
    from kpolicy.params.valueparsers import iommu_x86_passthrough, iommu_x86_usedac

    assert iommu_x86_usedac("pt,usedac,nopt") and iommu_x86_usedac("usedacx")
    assert not iommu_x86_usedac("pt,nopt") and not iommu_x86_usedac("xusedac")
    assert not iommu_x86_usedac(None)
    assert iommu_x86_passthrough("pt,usedac,nopt") is True


def test_malformed_after_and_last_option_are_checked() -> None:
    """malformed_after names a PARTIAL_ERRORS predicate of an early_param; a last-option read
    sets nothing itself."""
    from kpolicy.errors import KpolicyError
    from kpolicy.params.semantics import parse_params_file

    with pytest.raises(KpolicyError, match="no predicate"):
        parse_params_file('[[param]]\nname = "x"\nkind = "early_param"\nsource = "s"\n'
                          'malformed_after = "nope"\n', "x.toml")
    with pytest.raises(KpolicyError, match="early_param"):
        parse_params_file('[[param]]\nname = "x"\nkind = "__setup"\nsource = "s"\n'
                          'malformed_after = "iommu_x86_usedac"\n', "x.toml")
    with pytest.raises(KpolicyError, match="sets nothing"):
        parse_params_file('feature = "f"\n[[param]]\nname = "x"\nkind = "direct"\n'
                          'match = "last-option"\nsets = true\nsource = "s"\n', "f.toml")
    _spec, (decl,) = parse_params_file('feature = "f"\n[[param]]\nname = "x"\nkind = "direct"\n'
                                       'match = "last-option"\nsource = "s"\n', "f.toml")
    assert decl.match == "last-option" and decl.semantics.sets is None


def test_hash_pointers_72_falls_back_to_auto() -> None:
    from kpolicy.params.valueparsers import hash_pointers_72

    assert hash_pointers_72("never") == "never" and hash_pointers_72("always") == "always"
    assert hash_pointers_72(None) == hash_pointers_72("bogus") == hash_pointers_72("auto") == "auto"

def test_build_names_per_version_and_overrides_a_word_prevents() -> None:
    """build_renamed_from: 6.1 calls PTI's build option PAGE_TABLE_ISOLATION; a build option in
    absent_means_y that a version lacks under every name is always built there (6.1 has no
    MITIGATION_SPECTRE_V1). unless_cmdline: 6.1's mitigations=off turns PTI off only when no
    pti= word was read."""
    features = {f.name: f for f in load_param_rules().features}
    pti = features["pti"]
    assert pti.build_in({"MITIGATION_PAGE_TABLE_ISOLATION"}) == "MITIGATION_PAGE_TABLE_ISOLATION"
    assert pti.build_in({"PAGE_TABLE_ISOLATION"}) == "PAGE_TABLE_ISOLATION"
    assert pti.build_in(set()) == "MITIGATION_PAGE_TABLE_ISOLATION"  # unknown: not built
    v1 = features["vulnerabilities.spectre_v1"]
    assert v1.build_in({"MITIGATION_SPECTRE_V1"}) == "MITIGATION_SPECTRE_V1"
    assert v1.build_in(set()) is None
    by_version = {(o.since, o.until): o.unless_cmdline for o in pti.overrides
                  if o.feature == "mitigations"}
    assert by_version == {(None, (6, 12)): True, ((6, 12), (6, 17)): False}
    reads = {d.name for d in pti.handlers if d.kind == "direct"}
    assert reads == {"pti", "pti=off", "pti=on", "pti=auto", "nopti"}
    assert {d.name for d in pti.handlers if d.match == "last-option"} == {"pti"}
    bad = 'feature = "x"\n[[override]]\nfeature = "y"\nequals = true\nsets = false\n' \
          'source = "s"\nunless_cmdline = "yes"\n'
    with pytest.raises(KpolicyError, match="'unless_cmdline'"):
        parse_params_file(bad, "x.toml")
    with pytest.raises(KpolicyError, match="build_renamed_from"):
        parse_params_file('feature = "x"\nbuild_renamed_from = "A"\n', "x.toml")

def test_iommu_and_efi_parsers() -> None:
    """The IOMMU handlers' comma lists: strncmp prefixes in each handler's order, the last item
    naming a state wins; x86 iommu= stops reading at usedac; the EFI stub's items are exact."""
    from kpolicy.params.valueparsers import PARSERS

    pt = PARSERS["iommu_x86_passthrough"]
    assert pt("pt") is True and pt("nopt") is False and pt("ptx") is True
    assert pt("pt,nopt") is False and pt("soft") is None and pt(None) is None
    assert pt("usedac,pt") is None and pt("pt,usedac,nopt") is True
    off = PARSERS["iommu_x86_off"]
    assert off("soft,off") is False and off("nopt") is None and off("usedac,off") is None
    enabled = PARSERS["intel_iommu_enabled"]
    assert enabled("on") is True and enabled("off,on") is True and enabled("on,,off") is False
    assert enabled("offx") is False and enabled("sm_on,igfx_off") is None
    assert PARSERS["intel_iommu_strict"]("on,strict") is True
    assert PARSERS["intel_iommu_strict"]("sp_off") is None
    assert PARSERS["intel_iommu_sm"]("sm_on,sm_off") is False
    assert PARSERS["intel_iommu_sm"]("sm_on") is True
    assert PARSERS["amd_iommu_strict"]("force_isolation,fullflush") is True
    assert PARSERS["amd_iommu_enabled"]("off") is False
    assert PARSERS["amd_iommu_enabled"]("force_enable") is None
    efi = PARSERS["efi_disable_pci_dma"]
    assert efi("debug,disable_early_pci_dma") is True
    assert efi("disable_early_pci_dma,no_disable_early_pci_dma") is False
    assert efi("disable_early_pci_dmax") is None and efi(None) is None


def test_accumulating_parser_reads_every_value_so_far() -> None:
    """cfi= (accumulate): paranoid counts only after a fineibt item, in this word or an earlier
    one, and is never cleared; without the earlier words it is skipped."""
    rules = load_param_rules()
    paranoid = next(f for f in rules.features if f.name == "cfi.paranoid")
    handler = paranoid.handler("cfi", V72)
    assert handler is not None and handler.semantics.accumulate
    sem = handler.semantics
    assert sem.state_of("paranoid", V72) is None
    assert sem.state_of("paranoid", V72, ("fineibt",)) == "on"
    assert sem.state_of("kcfi", V72, ("fineibt,paranoid",)) == "on"
    assert sem.state_of("auto", V72, ("kcfi",)) == "auto"
    with pytest.raises(KpolicyError, match="accumulate"):
        parse_params_file('feature = "f"\n[[param]]\nname = "f"\nkind = "early_param"\n'
                          'accept = "words"\nwords = ["a"]\naccumulate = true\nsource = "x.c"\n',
                          "f.toml")


def test_refusing_value_parser_and_modprobe() -> None:
    """kvm.nx_huge_pages: its handler refuses what neither its words nor kstrtobool take (per
    version), and the feature is built with KVM=m (modprobe)."""
    rules = load_param_rules()
    nx = next(f for f in rules.features if f.name == "kvm.nx_huge_pages")
    assert nx.modprobe and nx.build == "KVM"
    old, new = nx.handler("kvm.nx_huge_pages", V612), nx.handler("kvm.nx_huge_pages", V72)
    assert old is not None and new is not None
    assert new.semantics.takes("never", V72) and new.semantics.takes("enable", V72)
    assert not old.semantics.takes("enable", V612) and not new.semantics.takes("bogus", V72)
    assert not new.semantics.takes(None, V72)  # no bare word
    assert old.semantics.state_of("Y", V612) == "force"
    with pytest.raises(KpolicyError, match="modprobe"):
        parse_params_file('feature = "f"\nmodprobe = true\n', "f.toml")


def test_machine_steps_by_state_and_version() -> None:
    """[[machine]] if_state, since/until and a cpu_has list load as declared."""
    rules = load_param_rules()
    srso = next(f for f in rules.features if f.name == "vulnerabilities.spec_rstack_overflow")
    steps = [m for m in srso.machine if m.cpu_has == ("ibpb_brtype",)]
    assert [m.applies((6, 1, 0)) for m in steps] == [True, False, False]
    assert [m.applies(V612) for m in steps] == [False, True, False]
    assert [m.applies(V72) for m in steps] == [False, False, True]
    vmscape = next(f for f in rules.features if f.name == "vulnerabilities.vmscape")
    assert any(m.cpu_has == ("srso_user_kernel_no", "ibpb_brtype") for m in vmscape.machine)
    paranoid = next(f for f in rules.features if f.name == "cfi.paranoid")
    assert paranoid.machine[0].if_state == ("auto",)


def test_machine_step_on_command_line_words() -> None:
    """[[machine]] if_words: arm64.pauth's algorithm-field steps name the words its direct
    readers look for; a word no direct reader of the feature reads is refused (a batch would
    never feed it to the feature)."""
    rules = load_param_rules()
    pauth = next(f for f in rules.features if f.name == "arm64.pauth")
    fields = {m.if_words: m.cpu_has for m in pauth.machine if m.if_words}
    assert fields == {("id_aa64isar1.apa=0",): ("pauth_qarma5",),
                      ("id_aa64isar2.apa3=0",): ("pauth_qarma3",),
                      ("id_aa64isar1.api=0",): ("pauth_impdef",)}
    bad = ('feature = "f"\n[[param]]\nname = "nof"\nkind = "direct"\nsets = false\n'
           'source = "x.c"\n[[machine]]\nwhen = "w"\neffect = false\nif_words = ["other"]\n')
    with pytest.raises(KpolicyError, match="if_words"):
        parse_params_file(bad, "f.toml")
    parse_params_file(bad.replace('["other"]', '["nof"]'), "f.toml")
