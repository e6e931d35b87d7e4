"""capability-code-evidence's declared sites: a site userspace can reach is a gap (the rule's
warning); a site declared `unreachable` is reported as a note saying why it is no gap."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from kpolicy.analysis import analyse, load_declarations
from kpolicy.cache import Cache
from kpolicy.lint.checks.evidence import capability_code_evidence
from kpolicy.lint.rules_loader import find_rule, load_rules
from kpolicy.lint.types import LintContext
from kpolicy.tree import open_tree

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "rules" / "capability-code-evidence"
VSYSCALL = "arch/x86/entry/vsyscall/vsyscall_64.c"


def site_findings(declarations: dict[str, Any], tmp_path: Path) -> list[tuple[str, str]]:
    ctx = LintContext.of(analyse(open_tree(FIXTURE), ("x86_64",), Cache(tmp_path),
                                 declarations=declarations))
    rule = find_rule(load_rules(), "capability-code-evidence")
    return [(f.severity, f.message) for f in capability_code_evidence(ctx, rule)
            if f.file == VSYSCALL]


def test_the_vsyscall_gate_vma_is_a_note_saying_why(tmp_path: Path) -> None:
    [(severity, message)] = site_findings(load_declarations(), tmp_path)
    assert severity == "note"
    assert "lacks VM_SEALED_SYSMAP, which leaves no gap" in message
    assert "not in any process's VMA tree" in message


def test_a_site_without_unreachable_is_the_rules_warning(tmp_path: Path) -> None:
    declarations = copy.deepcopy(load_declarations())
    for site in declarations["evidence"]["seal-system-mappings"]["sites"]:
        del site["unreachable"]
    [(severity, message)] = site_findings(declarations, tmp_path)
    assert severity == "warning"
    assert message.startswith("the x86_64 vsyscall gate VMA is not covered")
