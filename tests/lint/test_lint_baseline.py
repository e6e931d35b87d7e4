"""Baselines: fingerprints survive line moves; only findings not in the baseline are reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kplint_testkit import (
    make_tree,
    write_rules,
)

from kpolicy.cli import main
from kpolicy.lint.baseline import fingerprint, normalized_message
from kpolicy.lint.types import Finding

pytestmark = pytest.mark.usefixtures("stubbed")


def test_fingerprint_ignores_the_line_but_not_the_subject() -> None:
    f = Finding(rule="r", code="KP101", severity="warning", message="X at arch/Kconfig:12",
                file="a.c", line=3, symbol="X")
    moved = Finding(rule="r", code="KP101", severity="warning", message="X at arch/Kconfig:40",
                    file="a.c", line=30, symbol="X")
    other = Finding(rule="r", code="KP101", severity="warning", message="X at arch/Kconfig:12",
                    file="a.c", line=3, symbol="Y")
    assert fingerprint(f) == fingerprint(moved)
    assert fingerprint(f) != fingerprint(other)
    assert normalized_message("see  line 12\n and x.c:7") == "see :N and x.c:N"


def test_baseline_survives_a_line_move_and_reports_only_new_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write_rules(tmp_path / "rules")
    tree = make_tree(tmp_path / "linux", {"a.c": "BAD(symbol=OLD)\nBAD(symbol=TWICE)\n",
                                          "b.c": "BAD(symbol=TWICE)\n"})
    base_file = tmp_path / "kpolicy-baseline.json"
    argv = ["lint", "--tree", str(tree), "--rules-dir", str(rules), "--no-cache",
            "--fail-on", "warning"]
    assert main([*argv, "--write-baseline", str(base_file)]) == 1
    capsys.readouterr()
    first = base_file.read_bytes()
    doc = json.loads(first)
    assert doc["schema_version"] == 1
    fps = [e["fingerprint"] for e in doc["findings"]]
    assert fps == sorted(fps) and len(fps) == 3
    assert main([*argv, "--write-baseline", str(base_file)]) == 1
    assert base_file.read_bytes() == first  # byte-identical
    capsys.readouterr()

    # Lines inserted above every finding: nothing new.
    (tree / "a.c").write_text("\n\n\n/* comment */\nBAD(symbol=OLD)\n\nBAD(symbol=TWICE)\n")
    assert main([*argv, "--baseline", str(base_file)]) == 0
    summary = capsys.readouterr().out.splitlines()[-1]
    assert summary.startswith("kpolicy: 0 findings, 3 already known")

    # A new finding, and a second copy of one already known in that file, are reported.
    (tree / "a.c").write_text(
        "BAD(symbol=NEW)\nBAD(symbol=OLD)\nBAD(symbol=OLD)\nBAD(symbol=TWICE)\n")
    assert main([*argv, "--baseline", str(base_file), "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["symbol"], f["line"]) for f in found] == [("NEW", 1), ("OLD", 3)]
    # Without --fail-on: a whole-tree lint passes on warnings, a --baseline lint (only new
    # findings) fails on them.
    assert main(argv[:-2]) == 0
    assert main([*argv[:-2], "--baseline", str(base_file)]) == 1


def test_malformed_baseline_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write_rules(tmp_path / "rules")
    tree = make_tree(tmp_path / "linux")
    bad = tmp_path / "b.json"
    argv = ["lint", "--tree", str(tree), "--rules-dir", str(rules), "--no-cache", "--baseline"]
    bad.write_text('{"schema_version": 1,\n "findings": [}')
    assert main([*argv, str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"{bad}:2: error: baseline is not JSON")
    bad.write_text('{"schema_version": 7, "findings": []}')
    assert main([*argv, str(bad)]) == 2
    assert "not a kpolicy baseline" in capsys.readouterr().err
