"""Family discovery and the pattern checks on hand-built models (no Kconfig parser needed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from kpolicy.families.discover import companion_stem, discover_families
from kpolicy.families.model import Family
from kpolicy.kconfig.model import (
    Choice,
    Default,
    Definition,
    Expr,
    KconfigModel,
    Location,
    Prompt,
    Reverse,
    Symbol,
    positive_symbols,
)
from kpolicy.lint.checks import pattern
from kpolicy.lint.types import LintContext, Rule, RuleDocs
from kpolicy.params.model import Catalog, DocEntry, ParamFormat, Registration, StaticKey
from kpolicy.tree import KernelTree

HERE = Location("arch/Kconfig", 1)


def sym(name: str, *, prompt: bool = False, default: Optional[str] = None,
        depends: Optional[Expr] = None, selected_by: tuple[str, ...] = (), help: str = "",
        file: str = "arch/Kconfig", choice: Optional[str] = None) -> Symbol:
    loc = Location(file, 1)
    return Symbol(
        name=name, type="bool", definitions=(Definition(loc, depends, help),),
        prompts=(Prompt(name.lower(), None, loc),) if prompt else (),
        defaults=(Default(Expr.const(default) if default in ("y", "n") else Expr.sym(default),
                          None, loc),) if default else (),
        selected_by=tuple(Reverse(s, name, None, Location(f"arch/{s.lower()}/Kconfig", 3))
                          for s in selected_by),
        direct_dep=depends, choice=choice,
    )


def model(*symbols: Symbol, choices: tuple[Choice, ...] = ()) -> dict[str, KconfigModel]:
    return {"x86_64": KconfigModel("7.2.0", "x86_64", "x86", "default",
                                   {s.name: s for s in symbols}, choices)}


def doc(name: str, *, default: str = "", fmt: str = "bool") -> DocEntry:
    syms = (default,) if default else ()
    return DocEntry((name,), True, ("KNL", "EARLY"), "", ParamFormat("<bool>", fmt), syms, syms,
                    Location("Documentation/admin-guide/kernel-parameters.txt", 10), 12)


def catalog(docs: tuple[DocEntry, ...] = (), keys: tuple[StaticKey, ...] = (),
            regs: tuple[Registration, ...] = ()) -> Catalog:
    return Catalog("7.2.0", docs, regs, keys)


def rule(name: str) -> Rule:
    return Rule("KP000", name, "warning", "s", "pattern:x", RuleDocs("w", "y", "b", "g"))


def ctx_of(models: dict[str, KconfigModel], cat: Catalog,
           decl: Optional[dict] = None) -> LintContext:
    fams = discover_families(models, cat, decl or {})
    return LintContext(KernelTree(Path("/nonexistent"), "7.2.0"), models, cat, fams, decl or {})


def by_name(fams: tuple[Family, ...], name: str) -> Family:
    return next(f for f in fams if f.name == name)


def kstack() -> tuple[dict[str, KconfigModel], Catalog]:
    cap = "HAVE_ARCH_RANDOMIZE_KSTACK_OFFSET"
    models = model(
        sym(cap, selected_by=("X86", "ARM64")),
        sym("RANDOMIZE_KSTACK_OFFSET", prompt=True, default="y", depends=Expr.sym(cap),
            help='Controlled by the "randomize_kstack_offset=on/off" boot param.'),
        sym("RANDOMIZE_KSTACK_OFFSET_DEFAULT", prompt=True,
            depends=Expr.sym("RANDOMIZE_KSTACK_OFFSET")),
    )
    cat = catalog(
        docs=(doc("randomize_kstack_offset", default="RANDOMIZE_KSTACK_OFFSET_DEFAULT"),),
        keys=(StaticKey("randomize_kstack_offset", "RANDOMIZE_KSTACK_OFFSET_DEFAULT", "config",
                        Location("init/main.c", 796)),),
    )
    return models, cat


def v4(reshaped: bool) -> tuple[dict[str, KconfigModel], Catalog]:
    cap, opt = "ARCH_HAS_SEAL_SYSTEM_MAPPINGS", "SEAL_SYSTEM_MAPPINGS"
    deps = Expr("and", (Expr.sym("64BIT"), Expr.sym(cap)))
    syms = [sym(cap, selected_by=("X86",)), sym("64BIT", default="y"),
            sym(opt, prompt=True, default="y" if reshaped else "n", depends=deps,
                file="security/Kconfig")]
    if reshaped:
        syms.append(sym(opt + "_DEFAULT", prompt=True, depends=Expr.sym(opt)))
    default = opt + "_DEFAULT" if reshaped else opt
    return model(*syms), catalog(docs=(doc("exec.seal_system_mappings", default=default),))


def test_reference_pattern_family_is_discovered_with_evidence() -> None:
    fams = discover_families(*kstack(), {})
    fam = by_name(fams, "RANDOMIZE_KSTACK_OFFSET")
    assert fam.capability == "HAVE_ARCH_RANDOMIZE_KSTACK_OFFSET"
    assert (fam.default_companion, fam.companion_kind) == ("RANDOMIZE_KSTACK_OFFSET_DEFAULT",
                                                           "bool")
    assert fam.params == ("randomize_kstack_offset",)
    assert fam.static_keys == ("randomize_kstack_offset",)
    assert fam.arches == ("arm64", "x86")  # from selected_by when no tree is given
    evidence = [(lk.role, lk.member, lk.evidence) for lk in fam.links]
    assert ("param", "randomize_kstack_offset",
            "docs name CONFIG_RANDOMIZE_KSTACK_OFFSET_DEFAULT") in evidence
    assert any(e[2].startswith("help of RANDOMIZE_KSTACK_OFFSET names") for e in evidence)
    assert ("static_key", "randomize_kstack_offset",
            "initial state bound to CONFIG_RANDOMIZE_KSTACK_OFFSET_DEFAULT") in evidence
    assert [f.name for f in fams] == ["RANDOMIZE_KSTACK_OFFSET"]  # the companion is no family


def test_reference_pattern_passes_every_pattern_check() -> None:
    ctx = ctx_of(*kstack())
    for check in (pattern.capability_not_depended, pattern.capability_has_prompt,
                  pattern.option_not_default_y, pattern.boot_default_missing,
                  pattern.boot_default_shape, pattern.runtime_control_missing):
        assert list(check(ctx, rule("r"))) == [], check.__name__


def test_v4_shape_is_flagged_and_reshaped_is_not() -> None:
    bad = ctx_of(*v4(False))
    good = ctx_of(*v4(True))
    for check in (pattern.option_not_default_y, pattern.boot_default_missing):
        found = list(check(bad, rule("r")))
        assert [f.symbol for f in found] == ["SEAL_SYSTEM_MAPPINGS"], check.__name__
        assert found[0].param == "exec.seal_system_mappings"
        assert list(check(good, rule("r"))) == [], check.__name__


def test_security_option_without_boot_control_gets_a_note_unless_declared() -> None:
    models = model(sym("ARCH_SUPPORTS_MSEAL_X", selected_by=("X86",)),
                   sym("MSEAL_X", prompt=True, depends=Expr.sym("ARCH_SUPPORTS_MSEAL_X"),
                       file="security/Kconfig"))
    found = list(pattern.runtime_control_missing(ctx_of(models, catalog()), rule("r")))
    assert [(f.symbol, f.file) for f in found] == [("MSEAL_X", "security/Kconfig")]
    decl = {"families": {"t": {"family": {"MSEAL_X": {"runtime_control": "compile-time only"}}}}}
    assert list(pattern.runtime_control_missing(ctx_of(models, catalog(), decl), rule("r"))) == []


def test_companion_shapes() -> None:
    models = model(
        sym("HAVE_ARCH_FOO", selected_by=("X86",)),
        sym("FOO", prompt=True, default="y", depends=Expr.sym("HAVE_ARCH_FOO"),
            file="security/Kconfig"),
        sym("FOO_DEFAULT_ON", prompt=True, default="FOO"),  # no dependency, defaults on
    )
    cat = catalog(keys=(StaticKey("foo_key", "FOO", "config", Location("mm/foo.c", 5)),))
    found = list(pattern.boot_default_shape(ctx_of(models, cat), rule("r")))
    messages = sorted(f.message for f in found)
    assert len(messages) == 3
    assert "defaults to on" in messages[0]
    assert messages[1] == "FOO_DEFAULT_ON does not depend on FOO"
    assert messages[2].startswith("static key foo_key follows CONFIG_FOO,")
    decl = {"families": {"t": {"family": {"FOO": {"default_on_reason": "compatibility"}}}}}
    assert len(list(pattern.boot_default_shape(ctx_of(models, cat, decl), rule("r")))) == 2
    outside = dict(models)
    outside["x86_64"] = KconfigModel("7.2.0", "x86_64", "x86", "default", {
        **models["x86_64"].symbols,
        "FOO": sym("FOO", prompt=True, default="y", depends=Expr.sym("HAVE_ARCH_FOO"))}, ())
    # outside security/ and not declared a security option: out of the rule's default scope
    assert list(pattern.boot_default_shape(ctx_of(outside, cat), rule("r"))) == []


def test_companion_only_and_choice_families() -> None:
    thp = Choice("<choice@mm/Kconfig:9>", "bool", Prompt("THP sysfs defaults", None, HERE),
                 ("TRANSPARENT_HUGEPAGE_ALWAYS", "TRANSPARENT_HUGEPAGE_MADVISE"), (),
                 Expr.sym("TRANSPARENT_HUGEPAGE"), Location("mm/Kconfig", 9))
    # a build-mode choice under an option is no boot default
    mode = Choice("<choice@lib/Kconfig.kasan:141>", "bool", Prompt("KASAN mode", None, HERE),
                  ("KASAN_GENERIC", "KASAN_SW_TAGS"), (), Expr.sym("KASAN"), HERE)
    models = model(
        sym("INIT_ON_ALLOC_DEFAULT_ON", prompt=True, depends=Expr("not", (Expr.sym("KMSAN"),))),
        sym("TRANSPARENT_HUGEPAGE", prompt=True),
        sym("TRANSPARENT_HUGEPAGE_ALWAYS", prompt=True, choice=thp.name),
        sym("TRANSPARENT_HUGEPAGE_MADVISE", prompt=True, choice=thp.name),
        sym("HAVE_ARCH_KASAN", selected_by=("X86",)),
        sym("KASAN", prompt=True, depends=Expr.sym("HAVE_ARCH_KASAN")),
        sym("KASAN_GENERIC", prompt=True, choice=mode.name),
        sym("KASAN_SW_TAGS", prompt=True, choice=mode.name),
        choices=(thp, mode),
    )
    cat = catalog(docs=(doc("init_on_alloc", default="INIT_ON_ALLOC_DEFAULT_ON", fmt="enum"),))
    fams = discover_families(models, cat, {})
    init = by_name(fams, "INIT_ON_ALLOC")
    assert init.option == init.default_companion == "INIT_ON_ALLOC_DEFAULT_ON"
    assert init.params == ("init_on_alloc",)
    thp_fam = by_name(fams, "TRANSPARENT_HUGEPAGE")
    assert (thp_fam.default_companion, thp_fam.companion_kind) == (thp.name, "choice")
    assert by_name(fams, "KASAN").default_companion is None


def test_sub_options_join_their_parent_and_name_pairs_are_checked() -> None:
    models = model(
        sym("HAVE_ARCH_KFOO", selected_by=("X86",)),
        sym("KFOO", prompt=True, default="y", depends=Expr.sym("HAVE_ARCH_KFOO")),
        sym("KFOO_EXTRA", prompt=True,
            depends=Expr("and", (Expr.sym("KFOO"), Expr.sym("HAVE_ARCH_KFOO")))),
        sym("ARCH_HAS_BAR", selected_by=("X86",)),
        sym("BAR", prompt=True, default="y"),
    )
    ctx = ctx_of(models, catalog())
    assert sorted(f.name for f in ctx.families) == ["BAR", "KFOO"]
    found = list(pattern.capability_not_depended(ctx, rule("r")))
    assert [(f.symbol, f.family) for f in found] == [("BAR", "BAR")]


def test_helpers() -> None:
    assert companion_stem("RANDOMIZE_KSTACK_OFFSET_DEFAULT") == "RANDOMIZE_KSTACK_OFFSET"
    assert companion_stem("HARDENED_USERCOPY_DEFAULT_ON") == "HARDENED_USERCOPY"
    assert companion_stem("BOOTPARAM_SOFTLOCKUP_PANIC") == "SOFTLOCKUP_PANIC"
    assert companion_stem("SECCOMP") is None
    e = Expr("and", (Expr.sym("A"), Expr("or", (Expr.sym("B"), Expr("not", (Expr.sym("C"),))))))
    assert positive_symbols(e) == {"A", "B"}


def test_shapes_issue_16_named() -> None:
    """HAVE_<OPTION> selected from arch/ is a capability (HAVE_STACKPROTECTOR), one selected
    elsewhere is not (HAVE_PCI); a *_DISABLED bool is a companion (X86_X32_DISABLED); a companion
    reaches its option through a def_bool (CFI_AUTO_DEFAULT -> FINEIBT -> CFI); a variable a
    handler writes makes its symbol the parameter's boot default (CONFIG_MITIGATION_MDS)."""
    models = model(
        sym("HAVE_STACKPROTECTOR", selected_by=("X86",)),
        sym("STACKPROTECTOR", prompt=True, default="y", depends=Expr.sym("HAVE_STACKPROTECTOR")),
        sym("HAVE_PCI"),
        sym("PCI", prompt=True, depends=Expr.sym("HAVE_PCI")),
        sym("X86_X32_ABI", prompt=True),
        sym("X86_X32_DISABLED", prompt=True, depends=Expr.sym("X86_X32_ABI")),
        sym("CFI", prompt=True),
        sym("FINEIBT", default="y", depends=Expr.sym("CFI")),
        sym("CFI_AUTO_DEFAULT", prompt=True, default="y", depends=Expr.sym("FINEIBT")),
        sym("MITIGATION_MDS", prompt=True, default="y"),
    )
    # HAVE_PCI's select comes from drivers/pci, not arch/
    models["x86_64"].symbols["HAVE_PCI"] = dataclasses.replace(
        sym("HAVE_PCI"), selected_by=(Reverse("FORCE_PCI", "HAVE_PCI", None,
                                              Location("drivers/pci/Kconfig", 13)),))
    cat = catalog(keys=(
        StaticKey("mds_mitigation", "MITIGATION_MDS", "config", Location("bugs.c", 300),
                  kind="variable", params=("mds",)),
        StaticKey("x32_enabled_skey", "X86_X32_DISABLED", "inverted", Location("s.c", 150),
                  params=("syscall.x32",)),
    ))
    fams = {f.name: f for f in discover_families(models, cat, {})}
    assert fams["STACKPROTECTOR"].capability == "HAVE_STACKPROTECTOR"
    assert "PCI" not in fams
    x32 = fams["X86_X32_ABI"]
    assert (x32.default_companion, x32.params, x32.static_keys) == (
        "X86_X32_DISABLED", ("syscall.x32",), ("x32_enabled_skey",))
    assert fams["CFI"].default_companion == "CFI_AUTO_DEFAULT"
    mds = fams["MITIGATION_MDS"]
    assert (mds.option, mds.default_companion, mds.params) == (
        "MITIGATION_MDS", "MITIGATION_MDS", ("mds",))
