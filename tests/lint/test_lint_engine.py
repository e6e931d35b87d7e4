"""Rule loading and validation, rule selection, finding order, exit codes, `rules` and `rule`."""

from __future__ import annotations

from pathlib import Path

import pytest
from kplint_testkit import CHECK_PACKAGE, make_tree, rule_toml, stub_context
from kplint_testkit import write_rules as write_test_rules

from kpolicy.analysis import load_declarations, select_arches
from kpolicy.cli import main
from kpolicy.errors import KpolicyError
from kpolicy.lint import engine
from kpolicy.lint.rules_loader import find_rule, load_rules, select_rules

pytestmark = pytest.mark.usefixtures("test_checks")


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write_test_rules(tmp_path / "rules")


def _one_rule(tmp_path: Path, text: str, stem: str = "bad-thing") -> Path:
    d = tmp_path / "r"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{stem}.toml").write_text(text)
    return d


# --- loading ------------------------------------------------------------------------------

def test_load_rules_reads_every_field_and_sorts_by_code(rules_dir: Path) -> None:
    rules = load_rules(rules_dir)
    assert [r.code for r in rules] == ["KP801", "KP901", "KP902"]
    evil = find_rule(rules, "evil-thing")
    assert (evil.severity, evil.check, evil.options["marker"]) == ("error", "scan:markers", "EVIL")
    assert evil.docs.references == ("arch/Kconfig: RANDOMIZE_KSTACK_OFFSET",)
    assert "config BAD" in evil.docs.bad and "GOOD" in evil.docs.good


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ('code = "KP1\n', "invalid TOML", 1),
        (rule_toml("KP1", "bad-thing"), "not of the form KPnnn", 1),
        (rule_toml("KP101", "bad-thing", "fatal"), "severity 'fatal'", 3),
        (rule_toml("KP101", "bad-thing", check="pattern.boot"), "not 'module:function'", 5),
        (rule_toml("KP101", "bad-thing", extra='sevrity = "note"\n'), "unknown key 'sevrity'", 6),
        (rule_toml("KP101", "bad-thing").replace('summary = "Summary of bad-thing"\n', ""),
         "'summary' is missing", None),
        (rule_toml("KP101", "bad-thing").replace('why = "Why bad-thing matters."', 'why = ""'),
         "'why' is not a non-empty string", 8),
        (rule_toml("KP101", "bad-thing").replace(
            'references = ["arch/Kconfig: RANDOMIZE_KSTACK_OFFSET"]', "references = [1]"),
         "not a list of strings", 17),
    ],
)
def test_bad_rule_files_are_errors_naming_file_and_line(
    tmp_path: Path, text: str, message: str, line: int | None
) -> None:
    d = _one_rule(tmp_path, text)
    with pytest.raises(KpolicyError) as err:
        load_rules(d)
    assert message in err.value.message
    assert err.value.file == str(d / "bad-thing.toml")
    assert err.value.line == line


def test_rule_name_must_be_kebab_case_and_match_its_file(tmp_path: Path) -> None:
    with pytest.raises(KpolicyError, match="kebab-case"):
        load_rules(_one_rule(tmp_path, rule_toml("KP101", "Bad_Thing"), stem="Bad_Thing"))
    with pytest.raises(KpolicyError, match=r"must live in other-thing\.toml"):
        load_rules(_one_rule(tmp_path / "2", rule_toml("KP101", "other-thing"), stem="third"))


def test_duplicate_codes_are_an_error(tmp_path: Path) -> None:
    d = _one_rule(tmp_path, rule_toml("KP101", "bad-thing"))
    (d / "evil-thing.toml").write_text(rule_toml("KP101", "evil-thing"))
    with pytest.raises(KpolicyError, match=r"KP101 is also used by bad-thing\.toml") as err:
        load_rules(d)
    assert err.value.file is not None and err.value.file.endswith("evil-thing.toml")
    assert err.value.line == 1


def test_declarations_are_keyed_by_subdirectory_then_stem(rules_dir: Path) -> None:
    (rules_dir / "families" / "kstack.toml").write_text('option = "RANDOMIZE_KSTACK_OFFSET"\n')
    (rules_dir / "evidence").mkdir()
    (rules_dir / "evidence" / "x.toml").write_text("a = [\n")
    with pytest.raises(KpolicyError, match="invalid TOML"):
        load_declarations(rules_dir)
    (rules_dir / "evidence" / "x.toml").write_text("a = 1\n")
    (rules_dir / "params").mkdir()  # its own schema: kpolicy.params.semantics reads it
    (rules_dir / "params" / "p.toml").write_text("[[param]]\n")
    decl = load_declarations(rules_dir)
    assert decl == {"families": {"kstack": {"option": "RANDOMIZE_KSTACK_OFFSET"}},
                    "evidence": {"x": {"a": 1}}}


def test_find_and_select_rules(rules_dir: Path) -> None:
    rules = load_rules(rules_dir)
    assert find_rule(rules, "kp902").name == "evil-thing"
    with pytest.raises(KpolicyError, match="did you mean evil-thing"):
        find_rule(rules, "evil-thin")
    assert [r.name for r in select_rules(rules, ["KP9"])] == ["bad-thing", "evil-thing"]
    assert [r.name for r in select_rules(rules, None, ["evil-thing"])] == ["odd-thing", "bad-thing"]
    with pytest.raises(KpolicyError, match="unknown rule 'nope'"):
        select_rules(rules, ["nope"])


# --- running ------------------------------------------------------------------------------

def _lint(tree: Path, rules_dir: Path, **kw: object) -> engine.LintResult:
    return engine.run_lint(tree, rules_dir=rules_dir, context=stub_context(tree),
                           check_package=CHECK_PACKAGE, **kw)  # type: ignore[arg-type]


def test_findings_are_sorted_deduplicated_and_fail_on_decides_the_exit(
    tmp_path: Path, rules_dir: Path
) -> None:
    tree = make_tree(tmp_path / "t", {
        "b.c": "x\nBAD(symbol=B) BAD(symbol=B)\n",  # the same finding twice: reported once
        "a/Kconfig": "ODD(param=p)\n\nEVIL(family=F)\n",
    })
    result = _lint(tree, rules_dir)
    assert [(f.file, f.line, f.rule) for f in result.findings] == [
        ("a/Kconfig", 1, "odd-thing"), ("a/Kconfig", 3, "evil-thing"), ("b.c", 2, "bad-thing")]
    assert result.exit_code == 1
    assert _lint(tree, rules_dir, fail_on="error").exit_code == 1
    assert _lint(tree, rules_dir, ignore=["evil-thing"], fail_on="error").exit_code == 0
    only_note = _lint(tree, rules_dir, select=["odd-thing"])
    assert [f.rule for f in only_note.findings] == ["odd-thing"] and only_note.exit_code == 0


def test_a_check_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    d = _one_rule(tmp_path, rule_toml("KP101", "bad-thing", check="scan:nothing_here"))
    tree = make_tree(tmp_path / "t")
    with pytest.raises(KpolicyError, match="has no 'nothing_here'"):
        _lint(tree, d)
    (d / "bad-thing.toml").write_text(rule_toml("KP101", "bad-thing", check="nomodule:x"))
    with pytest.raises(KpolicyError, match="no check module 'nomodule'"):
        _lint(tree, d)


def test_arch_selection(tmp_path: Path) -> None:
    tree = stub_context(make_tree(tmp_path / "t")).tree
    assert select_arches(tree, ("x86_64", "arm64", "x86_64"), False) == ("x86_64", "arm64")
    assert select_arches(tree, (), True) == ("arm64", "i386", "x86_64")
    with pytest.raises(KpolicyError, match=r"unknown arch 'mips'.*valid: arm64"):
        select_arches(tree, ("mips",), False)


# --- kpolicy rules / kpolicy rule ----------------------------------------------------------

def test_rules_lists_every_rule(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--rules-dir", str(rules_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CODE", "NAME", "SEVERITY", "SUMMARY"]
    rows = [line.split(None, 3) for line in lines[1:]]
    assert rows == [["KP801", "odd-thing", "note", "Summary of odd-thing"],
                    ["KP901", "bad-thing", "warning", "Summary of bad-thing"],
                    ["KP902", "evil-thing", "error", "Summary of evil-thing"]]


def test_rule_explains_one_rule(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rule", "KP902", "--rules-dir", str(rules_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# evil-thing (KP902)\n")
    for part in ("## What it does\n\nWhat evil-thing checks.", "## Why\n\nWhy evil-thing matters.",
                 "Bad:\n\n    config BAD\n    \tbool", "Good:\n\n    config GOOD",
                 "## References\n\n- arch/Kconfig: RANDOMIZE_KSTACK_OFFSET"):
        assert part in out


def test_unknown_rule_exits_2_with_close_matches(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rule", "bad-thinge", "--rules-dir", str(rules_dir)]) == 2
    assert "unknown rule 'bad-thinge'; did you mean bad-thing" in capsys.readouterr().err


def test_broken_rules_dir_exits_2_naming_the_file(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (rules_dir / "bad-thing.toml").write_text(rule_toml("KP901", "bad-thing", "loud"))
    assert main(["rules", "--rules-dir", str(rules_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{rules_dir / 'bad-thing.toml'}:3: error: severity 'loud'")


def test_rules_off_by_default_or_for_changes_run_only_when_asked(tmp_path: Path) -> None:
    d = tmp_path / "r"
    write_test_rules(d)
    (d / "bad-thing.toml").write_text(rule_toml("KP901", "bad-thing", extra="default = false\n"))
    (d / "odd-thing.toml").write_text(
        rule_toml("KP801", "odd-thing", "note", marker="ODD", extra="changes-only = true\n"))
    tree = make_tree(tmp_path / "t", {"a.c": "BAD(symbol=B)\nODD(param=p)\nEVIL(family=F)\n"})

    def rules_run(**kw: object) -> list[str]:
        return sorted({f.rule for f in _lint(tree, d, **kw).findings})

    assert rules_run() == ["evil-thing"]  # a whole-tree lint: neither
    assert rules_run(changes=True) == ["evil-thing", "odd-thing"]  # one side of --base
    assert rules_run(select=["bad-thing", "KP801"]) == ["bad-thing", "odd-thing"]  # named
    assert rules_run(select=["KP8"]) == []  # a code prefix does not name a changes-only rule
    assert [r.name for r in select_rules(load_rules(d), None)] == ["odd-thing", "evil-thing"]
    with pytest.raises(KpolicyError, match="'default' is not true or false"):
        load_rules(_one_rule(tmp_path / "2", rule_toml("KP101", "bad-thing",
                                                         extra='default = "no"\n')))


def test_a_stock_like_tree_with_only_warnings_exits_0_by_default(
    tmp_path: Path, rules_dir: Path
) -> None:
    """--fail-on defaults to error: a tree with warnings and notes but no error passes CI."""
    tree = make_tree(tmp_path / "t", {"a.c": "BAD(symbol=B)\nODD(param=p)\n"})
    result = _lint(tree, rules_dir)
    assert {f.severity for f in result.findings} == {"warning", "note"}
    assert result.fail_on == "error" and result.exit_code == 0
    assert _lint(tree, rules_dir, fail_on="warning").exit_code == 1
