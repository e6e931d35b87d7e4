"""`kpolicy lint` on the newest real tree: every finding points at a real line, output is stable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import real_tree

from kpolicy.cli import main
from kpolicy.lint.rules_loader import load_rules
from kpolicy.lint.types import SEVERITIES


@pytest.mark.real
def test_real_tree_lint_points_at_real_lines_and_is_byte_identical(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree = real_tree("newest")
    # The default cache: other real-tree tests of this session have filled most of it.
    argv = ["lint", "--tree", str(tree), "--format", "json"]
    code = main(argv)
    first = capsys.readouterr()
    assert code in (0, 1), first.err
    doc = json.loads(first.out)
    findings = doc["findings"]
    # --fail-on defaults to error: a stock tree's warnings and notes exit 0 (issue #16)
    assert (code == 1) == any(f["severity"] == "error" for f in findings)
    assert code == 0 and doc["summary"]["fail_on"] == "error"
    rules = {r.name: r for r in load_rules()}
    for f in findings:
        assert rules[f["rule"]].code == f["code"]
        # a check may only be milder than its rule: a declared unreachable site is a note
        rule_severity = rules[f["rule"]].severity
        assert SEVERITIES.index(f["severity"]) <= SEVERITIES.index(rule_severity), f
        assert f["severity"] == rule_severity or "which leaves no gap" in f["message"], f
        if f["file"] is not None:
            path = tree / f["file"]
            assert not Path(f["file"]).is_absolute() and path.is_file(), f
            if f["line"] is not None:
                assert 1 <= f["line"] <= path.read_bytes().count(b"\n") + 1, f
    # Warm run: the same bytes.
    assert main(argv) == code
    assert capsys.readouterr().out == first.out
