"""Reading rules/: one TOML file per rule, plus declaration files in its subdirectories."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Optional

from kpolicy.errors import KpolicyError
from kpolicy.lint.types import SEVERITIES, Rule, RuleDocs
from kpolicy.textio import key_line, parse_toml, reject_unknown_keys

_CODE = re.compile(r"KP\d{3}\Z")
_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")
_CHECK = re.compile(r"[a-z_][a-z0-9_]*:[a-z_][a-z0-9_]*\Z")
_RULE_KEYS = {"code", "name", "severity", "summary", "check", "docs", "options", "default",
              "changes-only"}
_DOCS_KEYS = {"what", "why", "bad", "good", "references"}
def _fail(msg: str, path: Path, text: str, key: Optional[str] = None) -> KpolicyError:
    return KpolicyError(msg, file=path, line=key_line(text, key) if key else None)


def _string(table: dict[str, Any], key: str, path: Path, text: str, where: str = "") -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        problem = "missing" if value is None else "not a non-empty string"
        raise _fail(f"{where}'{key}' is {problem}", path, text, key if value is not None else None)
    return value


def _rule_from_table(data: dict[str, Any], path: Path, text: str) -> Rule:
    reject_unknown_keys(data, _RULE_KEYS, file=path, text=text)
    code = _string(data, "code", path, text)
    if not _CODE.match(code):
        raise _fail(f"code '{code}' is not of the form KPnnn", path, text, "code")
    name = _string(data, "name", path, text)
    if not _NAME.match(name):
        raise _fail(f"name '{name}' is not kebab-case", path, text, "name")
    if path.stem != name:
        raise _fail(f"rule '{name}' must live in {name}.toml", path, text, "name")
    severity = _string(data, "severity", path, text)
    if severity not in SEVERITIES:
        raise _fail(f"severity '{severity}' is not one of {', '.join(SEVERITIES)}",
                    path, text, "severity")
    summary = _string(data, "summary", path, text)
    check = _string(data, "check", path, text)
    if not _CHECK.match(check):
        raise _fail(f"check '{check}' is not 'module:function'", path, text, "check")
    docs = data.get("docs")
    if not isinstance(docs, dict):
        raise _fail("missing [docs] table", path, text)
    reject_unknown_keys(docs, _DOCS_KEYS, file=path, text=text, where="[docs]: ")
    refs = docs.get("references", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) and r for r in refs):
        raise _fail("'docs.references' is not a list of strings", path, text, "references")
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise _fail("'options' is not a table", path, text, "options")
    default = data.get("default", True)
    if not isinstance(default, bool):
        raise _fail("'default' is not true or false", path, text, "default")
    changes_only = data.get("changes-only", False)
    if not isinstance(changes_only, bool):
        raise _fail("'changes-only' is not true or false", path, text, "changes-only")
    return Rule(
        code=code, name=name, severity=severity, summary=summary, check=check,
        docs=RuleDocs(
            what=_string(docs, "what", path, text, "docs."),
            why=_string(docs, "why", path, text, "docs."),
            bad=_string(docs, "bad", path, text, "docs."),
            good=_string(docs, "good", path, text, "docs."),
            references=tuple(refs),
        ),
        options=options,
        default=default,
        changes_only=changes_only,
    )


def rules_directory(directory: Optional[Path] = None) -> Path:
    """DIRECTORY, or the rules/ that ships with kpolicy."""
    if directory is not None:
        return directory
    from kpolicy.resources import data_dir

    return data_dir("rules")


def load_rules(directory: Optional[Path] = None) -> tuple[Rule, ...]:
    """Every rule in DIRECTORY (default: the shipped rules/), validated and sorted by code."""
    root = rules_directory(directory)
    if not root.is_dir():
        raise KpolicyError("rules directory not found", file=root)
    rules: list[Rule] = []
    by_code: dict[str, Path] = {}
    for path in sorted(root.glob("*.toml")):
        data, text = parse_toml(path, what="rule file")
        rule = _rule_from_table(data, path, text)
        if rule.code in by_code:
            raise _fail(f"code {rule.code} is also used by {by_code[rule.code].name}",
                        path, text, "code")
        by_code[rule.code] = path
        rules.append(rule)
    return tuple(sorted(rules, key=lambda r: r.code))


def find_rule(rules: tuple[Rule, ...], wanted: str) -> Rule:
    """The rule named or coded WANTED (any case), or a KpolicyError listing close matches."""
    key = wanted.strip().lower()
    for rule in rules:
        if key in (rule.name, rule.code.lower()):
            return rule
    names = [r.name for r in rules] + [r.code for r in rules]
    close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `kpolicy rules` lists them"
    raise KpolicyError(f"unknown rule '{wanted}'{hint}")


def select_rules(
    rules: tuple[Rule, ...], select: Optional[list[str]] = None, ignore: Optional[list[str]] = None,
) -> tuple[Rule, ...]:
    """RULES narrowed to SELECT (names, codes or code prefixes like KP1) minus IGNORE. Without
    SELECT, the rules on by default; a rule off by default runs only when a selector matches it."""

    def matching(selector: str) -> set[str]:
        s = selector.strip()
        prefix = s.upper() if s.upper().startswith("KP") else None
        hits = {r.name for r in rules
                if s.lower() == r.name or (prefix and r.code.startswith(prefix))}
        if not hits:
            find_rule(rules, s)  # raises with close matches
        return hits

    if not select:
        chosen = {r.name for r in rules if r.default}
    else:
        chosen = set().union(*(matching(s) for s in select))
    for selector in ignore or []:
        chosen -= matching(selector)
    return tuple(r for r in rules if r.name in chosen)
