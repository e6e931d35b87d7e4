"""Boot-options pages (6.12's arch/x86/x86_64/boot-options.rst, "AMD64 Specific Boot Options")
document parameters as bare option-list terms ("  notsc" above its indented description):
kpolicy.params.mentions takes those terms, and nothing else of the page, as documentation."""

from __future__ import annotations

import shutil
from pathlib import Path

from kpolicy.kconfig.model import Location
from kpolicy.params.catalog import build_catalog, catalog_lookup
from kpolicy.params.crosscheck import cross_check
from kpolicy.params.mentions import is_options_page, option_terms
from kpolicy.tree import open_tree

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "params_c"

PAGE = """\
===========================
AMD64 Specific Boot Options
===========================

There are many others, but only these are listed here.

Machine check
=============
Please see machinecheck.rst for sysfs tunables.

   mce=off
\t\tDisable machine check
   nomce (for compatibility with i386)
\t\tsame as mce=off

   Everything else is in sysfs now.

Timing
======

  notsc
    Deprecated, use tsc=unstable instead.

  reboot=b[ios] | w[arm]
      bios
        Use the CPU reboot vector
      warm
        Don't set the cold reboot flag

IOMMU
=====
Several implementations exist, for example:

::

  iommu=[<size>][,noagp]
  [,nomerge]

General iommu options:

    nomerge
      Don't do scatter-gather (SG) merging.
    panic
      Always panic when IOMMU overflows.

Miscellaneous
=============

  nogbpages
    Do not use GB pages.
"""


def test_option_list_terms_are_the_top_level_entries_only() -> None:
    lines = PAGE.split("\n")
    assert is_options_page(lines)
    assert list(option_terms(lines)) == [("nomce", 13), ("notsc", 21), ("nogbpages", 49)]
    # the same list in a page whose title names no boot options is prose
    assert not is_options_page(["Timer notes", "===========", "", "  notsc", "    slow"])


def test_a_boot_options_page_documents_its_bare_terms_and_nothing_else(tmp_path: Path) -> None:
    """__setup("notsc")/("nogbpages") are documented by the page's entries (ParamInfo.elsewhere
    names it); "nomerge" and "panic", values of iommu= listed under "General iommu options:",
    "bios" (a value of reboot=) and "Everything"/"Deprecated" (prose) stay undocumented; the
    same page with a title that is not about boot options documents none of them."""
    root = tmp_path / "linux"
    shutil.copytree(FIXTURE, root)
    page = root / "Documentation" / "arch" / "x86" / "boot-options.rst"
    page.parent.mkdir(parents=True)
    page.write_text(PAGE)
    c_file = root / "kernel" / "options.c"
    c_file.write_text("".join(
        f'static int __init f{i}(char *s) {{ return 1; }}\n__setup("{n}", f{i});\n'
        for i, n in enumerate(("notsc", "nogbpages", "nomerge", "panic", "bios", "Everything",
                               "Deprecated"))))
    with (root / "kernel" / "Makefile").open("a") as f:
        f.write("obj-y += options.o\n")
    catalog = build_catalog(open_tree(root))
    lookup = catalog_lookup(catalog)
    rel = "Documentation/arch/x86/boot-options.rst"
    assert lookup["notsc"].elsewhere == Location(rel, 21)
    assert lookup["nogbpages"].elsewhere == Location(rel, 49)
    undocumented = {i.param for i in cross_check(catalog) if i.kind == "undocumented"}
    assert {"nomerge", "panic", "bios", "Everything", "Deprecated"} <= undocumented
    assert not {"notsc", "nogbpages"} & undocumented
    page.write_text(PAGE.replace("AMD64 Specific Boot Options", "AMD64 Specific Timer Notes!!"))
    undocumented = {i.param for i in cross_check(build_catalog(open_tree(root)))
                    if i.kind == "undocumented"}
    assert {"notsc", "nogbpages"} <= undocumented
