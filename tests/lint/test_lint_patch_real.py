"""`lint --patch` on real Linux 7.2 with two hand-written series (tests/lint/patches/): the v4
"seal system mappings" proposal as a b4-style mbox (cover letter and two patches), and the shape
the review asked for as two `git format-patch` files. The v4 series must get the findings the
review made, the reviewed one none, and none of the stock tree's findings may appear."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import real_tree
from test_lint_v4_design import about_sealing

from kpolicy.cli import main
from kpolicy.lint.types import Finding

pytestmark = pytest.mark.real

DOC = "Documentation/admin-guide/kernel-parameters.txt"
PATCHES = Path(__file__).parent / "patches"
V4 = [PATCHES / "v4-seal-system-mappings.mbx"]
REVIEWED = [PATCHES / "0001-mseal-boot-switch-and-default-companion.patch",
            PATCHES / "0002-x86-seal-uprobes-and-vsyscall.patch"]


def lint_patched(patches: list[Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    argv = ["lint", "--tree", str(real_tree("7.2")), "--format", "json"]
    for p in patches:
        argv += ["--patch", str(p)]
    code = main(argv)
    cap = capsys.readouterr()
    assert cap.err == ""
    return code, json.loads(cap.out)


def as_finding(f: dict[str, Any]) -> Finding:
    return Finding(rule=f["rule"], code=f["code"], severity=f["severity"], message=f["message"],
                   file=f.get("file"), line=f.get("line"), family=f.get("family"),
                   symbol=f.get("symbol"), param=f.get("param"))


def test_v4_series_gets_the_review_findings_and_nothing_else(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = lint_patched(V4, capsys)
    found = [as_finding(f) for f in doc["findings"]]
    assert code == 1
    # only what the series is about: no stock finding comes back
    assert [f for f in found if not about_sealing(f)] == []
    assert doc["summary"]["already_known"] > 100
    expected = [
        ("option-not-default-y", "security/Kconfig", "SEAL_SYSTEM_MAPPINGS"),
        ("boot-default-missing", "security/Kconfig", "exec.seal_system_mappings"),
        ("param-namespace", "mm/mseal.c", "exec.seal_system_mappings"),
        ("param-doc-format", DOC, "exec.seal_system_mappings"),
        ("param-doc-tags", DOC, "exec.seal_system_mappings"),
    ]
    missing = [e for e in expected if not any(
        (f.rule, f.file) == e[:2] and e[2] in (f.symbol, f.param) for f in found)]
    assert missing == []
    arm64 = sorted(f.line or 0 for f in found if f.rule == "capability-code-evidence"
                   and f.file == "arch/arm64/kernel/vdso.c")
    assert len(arm64) == 2  # the compat vectors and the sigreturn page the series left unsealed


def test_reviewed_series_introduces_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = lint_patched(REVIEWED, capsys)
    assert (code, doc["findings"]) == (0, [])
    assert doc["summary"]["already_known"] > 100


def test_series_out_of_order_does_not_apply(capsys: pytest.CaptureFixture[str]) -> None:
    """The reviewed series given twice: the second copy's first hunk finds its change made."""
    assert main(["lint", "--tree", str(real_tree("7.2")), "--patch", str(REVIEWED[1]),
                 "--patch", str(REVIEWED[1])]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{REVIEWED[1]}:18: error: arch/x86/kernel/uprobes.c: hunk #1 (@@ ")
