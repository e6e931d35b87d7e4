"""Each reporter, through `kpolicy lint`: parse the output back and check every field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import sarif_schema
from kplint_testkit import (
    make_tree,
)

from kpolicy.cli import main
from kpolicy.reporters.github import escape_data, escape_property

pytestmark = pytest.mark.usefixtures("test_checks")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "linux", {
        "mm/Kconfig": "config A\n\tbool\n# BAD(symbol=A_SYM)\n",
        "init/main.c": "/* EVIL(param=seal) */\n\n\nint x; // ODD(family=FAM)\n",
    })


def lint(
    tree: Path, rules: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    code = main(["lint", "--tree", str(tree), "--rules-dir", str(rules), "--no-cache", *extra])
    out = capsys.readouterr().out
    return code, out


EXPECTED = [  # (file, line, severity, rule, code, subject, value), in report order
    ("init/main.c", 1, "error", "evil-thing", "KP902", "param", "seal"),
    ("init/main.c", 4, "note", "odd-thing", "KP801", "family", "FAM"),
    ("mm/Kconfig", 3, "warning", "bad-thing", "KP901", "symbol", "A_SYM"),
]


def test_text_report(stubbed: None, tree: Path, rules: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out = lint(tree, rules, capsys)
    assert code == 1
    lines = out.splitlines()
    pattern = re.compile(r"^(\S+):(\d+): (note|warning|error): (.+) \[([a-z-]+)\]$")
    parsed = [pattern.match(line) for line in lines[:-1]]
    assert all(parsed)
    assert [(m.group(1), int(m.group(2)), m.group(3), m.group(5)) for m in parsed if m] == [
        e[:4] for e in EXPECTED]
    assert lines[-1] == "kpolicy: 3 findings (3 rules, ARCH=x86_64)"
    # Same inputs, same bytes; no absolute path leaks.
    assert lint(tree, rules, capsys)[1] == out
    assert str(tree) not in out


def test_json_report(stubbed: None, tree: Path, rules: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out = lint(tree, rules, capsys, "--format", "json", "--arch", "x86_64", "--arch", "arm64")
    assert code == 1
    doc = json.loads(out)
    assert doc["schema_version"] == 1 and doc["arches"] == ["x86_64", "arm64"]
    got = [(f["file"], f["line"], f["severity"], f["rule"], f["code"]) for f in doc["findings"]]
    assert got == [e[:5] for e in EXPECTED]
    for f, e in zip(doc["findings"], EXPECTED):
        assert f[e[5]] == e[6]
        assert [k for k in ("family", "symbol", "param") if f[k] is not None] == [e[5]]
        assert f["message"].startswith(e[6]) and re.fullmatch(r"[0-9a-f]{32}", f["fingerprint"])
    assert doc["summary"] == {"findings": 3, "waived": 0, "already_known": 0, "fail_on": "warning"}


def _sarif_schema() -> dict[str, object]:
    return sarif_schema()


def test_sarif_report_is_valid_sarif_2_1_0_as_github_reads_it(
    stubbed: None, tree: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import jsonschema

    code, out = lint(tree, rules, capsys, "--format", "sarif")
    assert code == 1
    log = json.loads(out)
    jsonschema.Draft4Validator(_sarif_schema()).validate(log)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "kpolicy"
    by_id = {r["id"]: r for r in driver["rules"]}
    assert set(by_id) == {"KP801", "KP901", "KP902"}
    assert by_id["KP902"]["name"] == "evil-thing"
    assert by_id["KP902"]["defaultConfiguration"]["level"] == "error"
    assert by_id["KP902"]["shortDescription"]["text"] == "Summary of evil-thing"
    assert "Why evil-thing matters." in by_id["KP902"]["fullDescription"]["text"]
    got = []
    for res in run["results"]:
        (loc,) = res["locations"]
        phys = loc["physicalLocation"]
        assert phys["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["partialFingerprints"]["kpolicyFingerprint/v1"]
        got.append((phys["artifactLocation"]["uri"], phys["region"]["startLine"], res["level"],
                    driver["rules"][res["ruleIndex"]]["name"], res["ruleId"]))
    assert got == [e[:5] for e in EXPECTED]


def test_github_annotations(stubbed: None, tree: Path, rules: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out = lint(tree, rules, capsys, "--format", "github")
    assert code == 1
    pattern = re.compile(r"^::(notice|warning|error) file=([^,]+),line=(\d+),title=([^:]+)::(.*)$")
    parsed = [pattern.match(line) for line in out.splitlines()]
    assert all(parsed)
    level = {"note": "notice", "warning": "warning", "error": "error"}
    assert [(m.group(2), int(m.group(3)), m.group(1), m.group(4)) for m in parsed if m] == [
        (e[0], e[1], level[e[2]], f"{e[3]} (KP{e[4][2:]})") for e in EXPECTED]
    # The message mentions "Kconfig:N": a colon needs no escape in the message part.
    assert all("see Kconfig:" in m.group(5) for m in parsed if m)


def test_github_escaping() -> None:
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a,b:c%\n") == "a%2Cb%3Ac%25%0A"


def test_fail_on_and_output_file(stubbed: None, tree: Path, rules: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert lint(tree, rules, capsys, "--fail-on", "error", "--ignore", "KP902")[0] == 0
    assert lint(tree, rules, capsys, "--select", "odd-thing")[0] == 0  # a note never fails
    assert lint(tree, rules, capsys, "--select", "odd-thing", "--fail-on", "note")[0] == 1
    dest = tmp_path / "out" / "r.json"
    code, out = lint(tree, rules, capsys, "--format", "json", "-o", str(dest))
    assert code == 1 and out == ""
    assert len(json.loads(dest.read_text())["findings"]) == 3


def test_sarif_lists_waived_findings_as_suppressed_results(
    stubbed: None, tree: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import jsonschema

    (tree / ".kpolicy.toml").write_text(
        '[[waiver]]\nrule = "KP901"\nsymbol = "A_SYM"\nreason = "reviewed, harmless"\n')
    code, out = lint(tree, rules, capsys, "--format", "sarif", "--show-waived")
    assert code == 1  # the error finding is still active
    log = json.loads(out)
    jsonschema.Draft4Validator(_sarif_schema()).validate(log)
    results = log["runs"][0]["results"]
    suppressed = [r for r in results if r.get("suppressions")]
    assert [(r["ruleId"], r["suppressions"]) for r in suppressed] == [
        ("KP901", [{"kind": "external", "justification": "reviewed, harmless"}])]
    assert len(results) == 3
    code, out = lint(tree, rules, capsys, "--format", "sarif")
    assert [r["ruleId"] for r in json.loads(out)["runs"][0]["results"]] == ["KP902", "KP801"]
