"""The generic fixture walker: every rule in rules/ has a fixture tree, and on it reports exactly
the lines marked `expect: <rule-name>` (all rules enabled, as a user would run it).

A fixture may list the arches to lint in kpolicy-fixture.toml (`arches = ["x86_64", "arm64"]`);
the default is x86_64.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from kpolicy.cache import Cache
from kpolicy.lint.engine import LintResult, run_lint
from kpolicy.lint.rules_loader import load_rules

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rules"
MARKER = re.compile(r"expect:\s*([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
SETTINGS = "kpolicy-fixture.toml"
MESSAGES = Path(__file__).resolve().parent / "rule_messages.txt"
RULES = load_rules()


def markers(tree: Path) -> set[tuple[str, str, int]]:
    """(rule, file, line) of every `expect:` marker in TREE."""
    found = set()
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and p.name != SETTINGS):
        text = path.read_text(errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for m in MARKER.finditer(line):
                found.add((m.group(1), path.relative_to(tree).as_posix(), number))
    return found


def fixture_arches(tree: Path) -> tuple[str, ...]:
    settings = tree / SETTINGS
    if not settings.is_file():
        return ("x86_64",)
    arches = tomllib.loads(settings.read_text()).get("arches", ["x86_64"])
    assert isinstance(arches, list) and arches, f"{settings}: arches must be a non-empty list"
    return tuple(arches)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Cache:
    return Cache(tmp_path_factory.mktemp("fixture-cache"))


def lint_fixture(name: str, cache: Cache) -> LintResult:
    tree = FIXTURES / name
    # A fixture's own .kpolicy.toml would change what is reported: fixtures test rules, not config.
    assert not (tree / ".kpolicy.toml").exists()
    # Every rule by name: those off by default or judging only changes run on fixtures too.
    return run_lint(tree, fixture_arches(tree), cache=cache, select=[r.name for r in RULES])


def test_every_rule_has_a_fixture_and_every_fixture_a_rule() -> None:
    names = {r.name for r in RULES}
    dirs = {p.name for p in FIXTURES.iterdir() if p.is_dir()} if FIXTURES.is_dir() else set()
    assert sorted(names - dirs) == [], "rules without a fixture tree in tests/fixtures/rules/"
    assert sorted(dirs - names) == [], "fixture trees for rules that do not exist"


@pytest.mark.parametrize("name", [r.name for r in RULES])
def test_fixture_reports_exactly_its_markers(name: str, cache: Cache) -> None:
    tree = FIXTURES / name
    if not tree.is_dir():
        pytest.fail(f"no fixture tree for rule {name}")
    expected = {m for m in markers(tree) if m[0] == name}
    assert expected, f"fixture {name} marks no expected finding"
    result = lint_fixture(name, cache)
    got = {(f.rule, f.file or "", f.line or 0) for f in result.findings if f.rule == name}
    assert sorted(got) == sorted(expected)
    # Markers for other rules in this fixture must hold too: a marker never lies.
    others = {m for m in markers(tree) if m[0] != name}
    reported = {(f.rule, f.file or "", f.line or 0) for f in result.findings}
    assert sorted(others - reported) == []


def test_rule_messages_match_the_snapshot(cache: Cache) -> None:
    """Every message the fixtures produce, word for word: a reworded message is a reviewed change
    of rule_messages.txt (KPOLICY_UPDATE_SNAPSHOT=1 rewrites it)."""
    lines = []
    for rule in RULES:
        for f in lint_fixture(rule.name, cache).findings:
            if f.rule == rule.name:
                lines.append(f"{rule.name}: {f.file}:{f.line}: {f.severity}: {f.message}\n")
    text = "".join(lines)
    if os.environ.get("KPOLICY_UPDATE_SNAPSHOT"):
        MESSAGES.write_text(text, encoding="utf-8")
    assert MESSAGES.read_text(encoding="utf-8").splitlines() == text.splitlines()
