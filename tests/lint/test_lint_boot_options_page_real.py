"""param-undocumented and the x86_64 boot-options page (issue 16): 6.1/6.12 document notsc,
nohpet, apicpmtimer, ... only as bare entries of Documentation/arch/x86/x86_64/boot-options.rst
("  notsc" above "Deprecated, use tsc=unstable instead."); 7.2 deleted that page, so there
notsc is documented nowhere and stays reported."""

from __future__ import annotations

import pytest
from conftest import real_tree
from lint_real_context import real_context, real_lint

from kpolicy import treefs
from kpolicy.params.catalog import catalog_lookup
from kpolicy.params.mentions import is_options_page, option_terms

pytestmark = pytest.mark.real

PAGE = "Documentation/arch/x86/x86_64/boot-options.rst"
# The page's top-level bare entries (the `name=` entries, mce=off..., are assigned mentions).
ENTRIES = ["nomce", "apic", "noapic", "disableapic", "nolapic", "noapictimer",
           "no_timer_check", "apicpmtimer", "notsc", "nohpet", "nogbpages", "gbpages"]
# registered on x86 without "=" and absent from 6.12's kernel-parameters.txt
FIXED = ("notsc", "nohpet", "apicpmtimer")


def test_the_6_12_page_lists_exactly_its_entries() -> None:
    """Only the entries: not reboot='s values (bios, warm), iommu='s options listed under
    "General iommu options:" (off, force, panic), sev='s (debug) nor prose words
    ("Everything else is in sysfs now.", "Deprecated, ...")."""
    lines = treefs.read_text(real_tree("6.12"), PAGE, what="document").split("\n")
    assert is_options_page(lines)
    assert [w for w, _ in option_terms(lines)] == ENTRIES


def test_6_12_boot_options_entries_are_documented() -> None:
    lookup = catalog_lookup(real_context("6.12").catalog)
    for name in FIXED:
        info = lookup[name]
        assert info.registrations and info.doc is None, name
        assert info.elsewhere is not None and info.elsewhere.file == PAGE, (name, info.elsewhere)
    found = {(f.rule, f.param) for f in real_lint("6.12").findings}
    for name in FIXED:
        assert ("param-undocumented", name) not in found, name
    # a registration documented nowhere is still reported
    assert any(rule == "param-undocumented" for rule, _ in found)


def test_7_2_dropped_the_page_so_notsc_is_undocumented() -> None:
    """7.2 has no boot-options.rst and kernel-parameters.txt has no notsc entry (only
    lapic=notscdeadline): __setup("notsc") in arch/x86/kernel/tsc.c is a true finding."""
    assert treefs.kind(real_tree("7.2"), PAGE) is None
    info = catalog_lookup(real_context("7.2").catalog)["notsc"]
    assert info.registrations and info.doc is None and info.elsewhere is None
    found = {(f.rule, f.param) for f in real_lint("7.2").findings}
    assert ("param-undocumented", "notsc") in found
