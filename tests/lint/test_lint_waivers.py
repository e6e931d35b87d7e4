"""Waivers and settings from .kpolicy.toml, --config FILE and pyproject.toml [tool.kpolicy]."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kplint_testkit import (
    CHECK_PACKAGE,
    make_tree,
    stub_context,
    stub_engine,
)

from kpolicy.cli import main
from kpolicy.errors import KpolicyError
from kpolicy.lint import engine
from kpolicy.lint.waivers import load_config

pytestmark = pytest.mark.usefixtures("test_checks")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "linux", {
        "a.c": "BAD(symbol=KEEP)\nBAD(symbol=WAIVE)\nBAD(family=FAM)\nEVIL(param=p)\n",
    })


def _lint(tree: Path, rules: Path, **kw: object) -> engine.LintResult:
    return engine.run_lint(tree, rules_dir=rules, context=stub_context(tree),
                           check_package=CHECK_PACKAGE, **kw)  # type: ignore[arg-type]


WAIVERS = '''
fail-on = "error"

[[waiver]]
rule = "bad-thing"
symbol = "WAIVE"
reason = "reviewed: WAIVE is a debug option"

[[waiver]]
rule = "KP901"
family = "FAM"
reason = "the family predates the pattern"
'''


def test_waivers_hide_exactly_the_named_findings(tree: Path, rules: Path) -> None:
    (tree / ".kpolicy.toml").write_text(WAIVERS)
    result = _lint(tree, rules)
    assert [(f.rule, f.symbol, f.param) for f in result.findings] == [
        ("bad-thing", "KEEP", None), ("evil-thing", None, "p")]
    assert [(f.symbol, f.family, w.reason, w.line) for f, w in result.waived] == [
        ("WAIVE", None, "reviewed: WAIVE is a debug option", 4),
        (None, "FAM", "the family predates the pattern", 9)]
    assert result.fail_on == "error"
    assert _lint(tree, rules, fail_on="note").fail_on == "note"  # the command line wins


def test_show_waived_lists_them_with_reasons(
    tree: Path, rules: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / ".kpolicy.toml").write_text(WAIVERS)
    stub_engine(monkeypatch)
    argv = ["lint", "--tree", str(tree), "--rules-dir", str(rules), "--no-cache"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "WAIVE" not in out and "2 findings, 2 waived" in out
    assert main([*argv, "--show-waived"]) == 1
    out = capsys.readouterr().out
    assert "a.c:2: warning: WAIVE breaks the pattern" in out
    assert "(waived: reviewed: WAIVE is a debug option)" in out
    assert main([*argv, "--show-waived", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [(w["symbol"], w["reason"]) for w in doc["waived"]] == [
        ("WAIVE", "reviewed: WAIVE is a debug option"), (None, "the family predates the pattern")]
    assert doc["summary"]["waived"] == 2


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ('[[waiver]]\nrule = "bad-thing"\nsymbol = "X"\n', "needs a non-empty 'reason'", 1),
        ('\n[[waiver]]\nrule = "bad-thing"\nsymbol = "X"\nreason = "  "\n',
         "needs a non-empty 'reason'", 5),
        ('[[waiver]]\nrule = "bad-thing"\nreason = "r"\n', "exactly one of family", 1),
        ('[[waiver]]\nrule = "bad-thing"\nsymbol = "X"\nparam = "y"\nreason = "r"\n',
         "exactly one of family", 1),
        ('[[waiver]]\nrule = "bad-thing"\nsymbol = "X"\nreason = "r"\nexpires = 1\n',
         "unknown key 'expires'", 5),
        ('\n\n[[waiver]]\nrule = "no-such-rule"\nsymbol = "X"\nreason = "r"\n',
         "unknown rule 'no-such-rule'", 3),
        ('fail-on = "fatal"\n', "'fail-on' must be one of", 1),
        ('select = "bad-thing"\n', "'select' is not a list", 1),
        ('selcet = ["bad-thing"]\n', "unknown key 'selcet'", 1),
        ('[[waiver]\n', "invalid TOML", 1),
    ],
)
def test_bad_config_is_an_error_at_its_line(
    tree: Path, rules: Path, text: str, message: str, line: int
) -> None:
    (tree / ".kpolicy.toml").write_text(text)
    with pytest.raises(KpolicyError) as err:
        _lint(tree, rules)
    assert message in err.value.message
    assert (err.value.file, err.value.line) == (str(tree / ".kpolicy.toml"), line)


def test_config_file_option_and_pyproject(tree: Path, rules: Path, tmp_path: Path) -> None:
    (tree / "pyproject.toml").write_text('[tool.kpolicy]\nignore = ["KP9"]\n')
    assert _lint(tree, rules).findings == ()
    explicit = tmp_path / "policy.toml"
    explicit.write_text('select = ["evil-thing"]\n')
    result = _lint(tree, rules, config_file=explicit)
    assert [f.rule for f in result.findings] == ["evil-thing"]
    assert result.config_file == str(explicit)
    (tree / ".kpolicy.toml").write_text('select = ["bad-thing"]\n')  # wins over pyproject
    assert {f.rule for f in _lint(tree, rules).findings} == {"bad-thing"}
    assert load_config(tmp_path / "nothing-here").waivers == ()
