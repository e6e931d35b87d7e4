"""The v4 "seal system mappings" design against the pattern rules, on real Linux 7.2 copies.

Three trees are linted for x86_64: stock 7.2, 7.2 edited to the v4 proposal (kernel-facts.md §2)
and 7.2 edited to the shape the review asked for. Copies are hard-link trees (`cp -al`); an
edited file is unlinked and written anew, so the shared tree is never written through a link.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Callable

import pytest
from conftest import real_tree
from lint_real_context import real_context

from kpolicy.analysis import analyse
from kpolicy.cache import Cache
from kpolicy.families.model import Family
from kpolicy.lint.engine import LintResult, run_lint
from kpolicy.lint.types import Finding, LintContext
from kpolicy.tree import open_tree

pytestmark = pytest.mark.real

V4_RULES = ("option-not-default-y", "boot-default-missing", "param-doc-format", "param-doc-tags",
            "param-namespace", "capability-code-evidence")
PATTERN_RULES = ("capability-not-depended", "capability-has-prompt", "option-not-default-y",
                 "boot-default-missing", "boot-default-shape", "runtime-control-missing")
DOC = "Documentation/admin-guide/kernel-parameters.txt"


def tabs(text: str) -> str:
    """TEXT with each leading group of four spaces turned into a tab (kernel indentation)."""
    return re.sub(r"^(?: {4})+", lambda m: "\t" * (len(m.group()) // 4), text, flags=re.M)


def rewrite(root: Path, rel: str, edit: Callable[[str], str]) -> None:
    """Replace ROOT/REL by EDIT(its text), never writing through a hard link."""
    path = root / rel
    old = path.read_text(encoding="utf-8")
    new = edit(old)
    assert new != old, f"edit of {rel} changed nothing: the 7.2 tree moved"
    path.unlink()
    path.write_text(new, encoding="utf-8")


def replace_block(text: str, start: str, new: str) -> str:
    """TEXT with the Kconfig block that starts with line START replaced by NEW."""
    i = text.index(start + "\n")
    m = re.compile(r"^(?:config|menuconfig|menu|endmenu|choice|endchoice|source|if|endif)\b",
                   re.M).search(text, i + len(start))
    assert m is not None
    return text[:i] + new + text[m.start():]


def insert_doc_entry(text: str, entry: str) -> str:
    """TEXT with ENTRY inserted before the entry whose name follows it alphabetically."""
    name = entry.split()[0].rstrip("=")
    lines = text.split("\n")
    starts = {}
    for i in range(1, len(lines)):
        m = re.match(r"\t([a-z0-9_.-]+)", lines[i])
        if m and not lines[i - 1].strip() and m.group(1) > name:
            starts.setdefault(m.group(1), i)
    i = starts[min(starts)]
    return "\n".join([*lines[:i], entry, *lines[i:]])


def hardlink_copy(src: Path, dst: Path) -> Path:
    subprocess.run(["cp", "-al", str(src), str(dst)], check=True)
    return dst


V4_KCONFIG = tabs("""config SEAL_SYSTEM_MAPPINGS
    bool "seal system mappings"
    default n
    depends on 64BIT
    depends on ARCH_HAS_SEAL_SYSTEM_MAPPINGS
    depends on !CHECKPOINT_RESTORE
    help
      Seal system mappings such as vdso, vvar, sigpage, uprobes.
      The boot parameter exec.seal_system_mappings overrides this.

""")

V4_C = tabs("""
static bool seal_system_mappings_v __ro_after_init = IS_ENABLED(CONFIG_SEAL_SYSTEM_MAPPINGS);

static const struct constant_table value_table_sys_mapping[] __initconst = {
    { "no", false },
    { "yes", true },
    { }
};

static int __init early_seal_system_mappings_override(char *buf)
{
    if (!buf)
        return -EINVAL;
    seal_system_mappings_v = lookup_constant(value_table_sys_mapping, buf,
                         seal_system_mappings_v);
    return 0;
}
early_param("exec.seal_system_mappings", early_seal_system_mappings_override);
""")

V4_DOC = tabs("""	exec.seal_system_mappings = [KNL]
            Format: { no | yes }
            Seal system mappings: vdso, vvar, sigpage, uprobes.
            - 'no':  do not seal system mappings.
            - 'yes': seal system mappings.
            This overrides CONFIG_SEAL_SYSTEM_MAPPINGS=(y/n).
            If not specified or invalid, default is the value set by
            CONFIG_SEAL_SYSTEM_MAPPINGS.
            This option has no effect if CONFIG_64BIT=n
""")

REVIEWED_KCONFIG = tabs("""config MSEAL_SYSTEM_MAPPINGS
    bool "mseal system mappings" if EXPERT
    default y
    depends on 64BIT
    depends on ARCH_SUPPORTS_MSEAL_SYSTEM_MAPPINGS
    depends on !CHECKPOINT_RESTORE
    help
      Build in sealing of system mappings (vdso, vvar, sigpage, uprobes,
      vsyscall); mseal.system_mappings= switches it at boot.

config MSEAL_SYSTEM_MAPPINGS_DEFAULT
    bool "Seal system mappings by default"
    depends on MSEAL_SYSTEM_MAPPINGS
    help
      The boot state of system-mapping sealing when mseal.system_mappings=
      is not given.

""")

REVIEWED_C = tabs("""
DEFINE_STATIC_KEY_MAYBE_RO(CONFIG_MSEAL_SYSTEM_MAPPINGS_DEFAULT, mseal_system_mappings);

static int __init early_mseal_system_mappings(char *buf)
{
    bool on;
    int ret = kstrtobool(buf, &on);

    if (ret)
        return ret;
    if (on)
        static_branch_enable(&mseal_system_mappings);
    else
        static_branch_disable(&mseal_system_mappings);
    return 0;
}
early_param("mseal.system_mappings", early_mseal_system_mappings);
""")

REVIEWED_DOC = tabs("""	mseal.system_mappings=
            [KNL,EARLY] Seal the system mappings (vdso, vvar,
            sigpage, uprobes, vsyscall) of every process.
            Format: <bool>
            Default is CONFIG_MSEAL_SYSTEM_MAPPINGS_DEFAULT.
""")


def make_v4(root: Path) -> None:
    rewrite(root, "init/Kconfig", lambda t: t.replace(
        "ARCH_SUPPORTS_MSEAL_SYSTEM_MAPPINGS", "ARCH_HAS_SEAL_SYSTEM_MAPPINGS"))
    rewrite(root, "security/Kconfig",
            lambda t: replace_block(t, "config MSEAL_SYSTEM_MAPPINGS", V4_KCONFIG))
    for arch in ("x86", "arm64"):
        rewrite(root, f"arch/{arch}/Kconfig", lambda t: t.replace(
            "select ARCH_SUPPORTS_MSEAL_SYSTEM_MAPPINGS", "select ARCH_HAS_SEAL_SYSTEM_MAPPINGS"))
    for arch in ("loongarch", "riscv", "s390"):  # v4 was for x86_64 and arm64 only
        rewrite(root, f"arch/{arch}/Kconfig", lambda t: re.sub(
            r"^\s*select ARCH_SUPPORTS_MSEAL_SYSTEM_MAPPINGS.*\n", "", t, flags=re.M))
    rewrite(root, "include/linux/mm.h",
            lambda t: t.replace("CONFIG_MSEAL_SYSTEM_MAPPINGS", "CONFIG_SEAL_SYSTEM_MAPPINGS"))
    rewrite(root, "mm/mseal.c", lambda t: t + V4_C)
    rewrite(root, DOC, lambda t: insert_doc_entry(t, V4_DOC))

    def unseal_compat(text: str) -> str:  # v4 left the arm64 compat vectors and sigpage unsealed
        i = text.index("AARCH32_VECTORS_BASE, PAGE_SIZE")
        return text[:i] + re.sub(r"\s*\|\s*VM_SEALED_SYSMAP,", ",", text[i:])
    rewrite(root, "arch/arm64/kernel/vdso.c", unseal_compat)


def make_reviewed(root: Path) -> None:
    rewrite(root, "security/Kconfig",
            lambda t: replace_block(t, "config MSEAL_SYSTEM_MAPPINGS", REVIEWED_KCONFIG))
    rewrite(root, "mm/mseal.c", lambda t: t + REVIEWED_C)
    rewrite(root, DOC, lambda t: insert_doc_entry(t, REVIEWED_DOC))
    rewrite(root, "arch/x86/kernel/uprobes.c", lambda t: t.replace(
        "VM_READ|VM_EXEC|VM_MAYEXEC|VM_MAYREAD|VM_IO,",
        "VM_READ|VM_EXEC|VM_MAYEXEC|VM_MAYREAD|VM_IO|VM_SEALED_SYSMAP,"))
    rewrite(root, "arch/x86/entry/vsyscall/vsyscall_64.c", lambda t: t.replace(
        ".vm_flags\t= VM_READ | VM_EXEC,", ".vm_flags\t= VM_READ | VM_EXEC | VM_SEALED_SYSMAP,"))


@pytest.fixture(scope="session")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LintContext]:
    stock = real_tree("7.2")
    base = tmp_path_factory.mktemp("v4")
    cache = Cache(base / "cache")
    v4 = hardlink_copy(stock, base / "v4")
    make_v4(v4)
    reviewed = hardlink_copy(stock, base / "reviewed")
    make_reviewed(reviewed)
    out = {name: LintContext.of(analyse(open_tree(path), ("x86_64",), cache))
           for name, path in (("v4", v4), ("reviewed", reviewed))}
    return {"stock": real_context("7.2"), **out}


@pytest.fixture(scope="session")
def results(contexts: dict[str, LintContext]) -> dict[str, LintResult]:
    # each tree judged as one side of a change against stock (param-namespace judges changes)
    return {name: run_lint(ctx.tree.root, context=ctx, changes=True)
            for name, ctx in contexts.items()}


@pytest.fixture(scope="session")
def families(contexts: dict[str, LintContext]) -> dict[str, dict[str, Family]]:
    return {name: {f.name: f for f in ctx.families} for name, ctx in contexts.items()}


def about_sealing(f: Finding) -> bool:
    text = " ".join(x or "" for x in (f.family, f.symbol, f.param, f.file))
    return f.rule == "capability-code-evidence" or "SEAL_SYSTEM_MAPPINGS" in text or \
        "seal_system_mappings" in text or "system_mappings" in text or f.file == "mm/mseal.c"


def sealing(result: LintResult) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in result.findings:
        if about_sealing(f):
            out.setdefault(f.rule, []).append(f)
    return out


def test_v4_gets_every_finding_the_review_made(results: dict[str, LintResult]) -> None:
    found = sealing(results["v4"])
    missing = [r for r in V4_RULES if r not in found]
    assert not missing, f"v4 lacks {missing}; it has {sorted(found)}"
    assert [f.symbol for f in found["option-not-default-y"]] == ["SEAL_SYSTEM_MAPPINGS"]
    assert [f.param for f in found["boot-default-missing"]] == ["exec.seal_system_mappings"]
    assert [(f.file, f.param) for f in found["param-namespace"]] == [
        ("mm/mseal.c", "exec.seal_system_mappings")]
    compat = {(f.file, f.line) for f in found["capability-code-evidence"]}
    arm64 = sorted(line for file, line in compat if file == "arch/arm64/kernel/vdso.c")
    assert len(arm64) == 2  # the compat vectors and the sigreturn page, not the vDSO
    assert ("arch/x86/entry/vsyscall/vsyscall_64.c", 320) in compat
    # the uprobes trampoline is a gap; the vsyscall gate VMA is no gap (no VMA tree holds it)
    severity = {f.file: f.severity for f in found["capability-code-evidence"]}
    assert severity["arch/x86/kernel/uprobes.c"] == "warning"
    assert severity["arch/x86/entry/vsyscall/vsyscall_64.c"] == "note"


def test_reviewed_shape_gets_none_of_them(results: dict[str, LintResult],
                                          families: dict[str, dict[str, Family]]) -> None:
    found = sealing(results["reviewed"])
    assert {r: found[r] for r in (*V4_RULES, *PATTERN_RULES) if r in found} == {}
    fam = families["reviewed"]["MSEAL_SYSTEM_MAPPINGS"]
    assert fam.default_companion == "MSEAL_SYSTEM_MAPPINGS_DEFAULT"
    assert fam.params == ("mseal.system_mappings",)
    assert fam.static_keys == ("mseal_system_mappings",)


def test_stock_reference_families_are_clean_and_mseal_gets_the_note(
        results: dict[str, LintResult], families: dict[str, dict[str, Family]]) -> None:
    stock = results["stock"]
    for name in ("RANDOMIZE_KSTACK_OFFSET", "HARDENED_USERCOPY", "INIT_ON_ALLOC", "INIT_ON_FREE"):
        fam = families["stock"][name]
        assert fam.default_companion and fam.params and fam.static_keys, name  # really checked
        hits = [f for f in stock.findings if f.rule in PATTERN_RULES and f.family == name]
        assert hits == [], name
    notes = [f for f in stock.findings if f.rule == "runtime-control-missing"]
    # IMA_KEXEC, gated by HAVE_IMA_KEXEC too, states its reason in rules/families
    assert sorted((f.symbol, f.severity) for f in notes) == [("MSEAL_SYSTEM_MAPPINGS", "note")]
    assert "runtime-control-missing" not in sealing(results["reviewed"])
