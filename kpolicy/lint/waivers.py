"""Project lint settings: `.kpolicy.toml` (or pyproject.toml `[tool.kpolicy]`), with waivers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from kpolicy import treefs
from kpolicy.errors import KpolicyError
from kpolicy.lint.types import SEVERITIES, Finding, Rule
from kpolicy.textio import TOML_LIMIT, key_line, parse_toml, parse_toml_text, reject_unknown_keys

CONFIG_NAME = ".kpolicy.toml"
_KEYS = {"select", "ignore", "fail-on", "waiver"}
_WAIVER_KEYS = {"rule", "family", "symbol", "param", "reason"}
_SUBJECTS = ("family", "symbol", "param")
_WAIVER_HEADER = re.compile(r"^\s*\[\[\s*(?:tool\s*\.\s*kpolicy\s*\.\s*)?waiver\s*\]\]")


@dataclass(frozen=True)
class Waiver:
    """A reviewed exception: RULE does not apply to one family, symbol or parameter, for REASON."""

    rule: str  # rule name or code as written
    subject: str  # "family", "symbol" or "param"
    value: str
    reason: str
    file: str
    line: Optional[int] = None

    def matches(self, finding: Finding) -> bool:
        """True when this waiver covers FINDING."""
        return (self.rule in (finding.rule, finding.code)
                and getattr(finding, self.subject) == self.value)


@dataclass(frozen=True)
class LintConfig:
    """What a config file asks for; empty when the tree has none."""

    file: Optional[str] = None
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: Optional[str] = None
    waivers: tuple[Waiver, ...] = ()


def _string_list(table: dict[str, Any], key: str, path: Path, text: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise KpolicyError(f"'{key}' is not a list of rule names or codes", file=path,
                           line=key_line(text, key))
    return tuple(value)


def _waiver(entry: Any, path: Path, text: str, line: Optional[int]) -> Waiver:
    def fail(msg: str, key: Optional[str] = None) -> KpolicyError:
        at = key_line(text, key, start=line) if key and line else None
        return KpolicyError(f"waiver: {msg}", file=path, line=at or line)

    if not isinstance(entry, dict):
        raise fail("not a table")
    reject_unknown_keys(entry, _WAIVER_KEYS, file=path, text=text, where="waiver: ",
                        start=line or 1)
    rule = entry.get("rule")
    if not isinstance(rule, str) or not rule:
        raise fail("'rule' is missing", "rule")
    subjects = [s for s in _SUBJECTS if s in entry]
    if len(subjects) != 1:
        raise fail("needs exactly one of family, symbol, param")
    value = entry[subjects[0]]
    if not isinstance(value, str) or not value:
        raise fail(f"'{subjects[0]}' is not a non-empty string", subjects[0])
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise fail("a waiver needs a non-empty 'reason'", "reason" if "reason" in entry else None)
    return Waiver(rule=rule, subject=subjects[0], value=value, reason=reason.strip(),
                  file=path.name, line=line)


def parse_config(path: Path, tree_root: Optional[Path] = None) -> LintConfig:
    """The settings in PATH: a .kpolicy.toml, or the [tool.kpolicy] table of a pyproject.toml;
    read confined to TREE_ROOT when it is the tree's own file."""
    if tree_root is None:
        data, text = parse_toml(path, what="kpolicy config")
    else:
        text = treefs.read_text(tree_root, path.name, what="kpolicy config", limit=TOML_LIMIT)
        data = parse_toml_text(text, path)
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        data = tool.get("kpolicy", {}) if isinstance(tool, dict) else {}
        if not isinstance(data, dict):
            raise KpolicyError("[tool.kpolicy] is not a table", file=path)
    reject_unknown_keys(data, _KEYS, file=path, text=text)
    fail_on = data.get("fail-on")
    if fail_on is not None and fail_on not in SEVERITIES:
        raise KpolicyError(f"'fail-on' must be one of {', '.join(SEVERITIES)}", file=path,
                           line=key_line(text, "fail-on"))
    entries = data.get("waiver", [])
    if not isinstance(entries, list):
        raise KpolicyError("'waiver' must be an array of tables ([[waiver]])", file=path,
                           line=key_line(text, "waiver"))
    headers = [n for n, line in enumerate(text.splitlines(), 1) if _WAIVER_HEADER.match(line)]
    # Inline tables give no headers to count: then errors name the file only.
    lines: list[Optional[int]] = (
        list(headers) if len(headers) == len(entries) else [None] * len(entries))
    return LintConfig(
        file=str(path),
        select=_string_list(data, "select", path, text),
        ignore=_string_list(data, "ignore", path, text),
        fail_on=fail_on,
        waivers=tuple(_waiver(e, path, text, line) for e, line in zip(entries, lines)),
    )


def load_config(tree_root: Path, config_file: Optional[Path] = None) -> LintConfig:
    """CONFIG_FILE, else the tree's .kpolicy.toml, else its pyproject [tool.kpolicy], else none."""
    if config_file is not None:
        return parse_config(config_file)
    own = tree_root / CONFIG_NAME
    # Present but not a readable file (a directory, a dangling link) is an error, not "none".
    if own.exists() or own.is_symlink():
        return parse_config(own, tree_root)
    pyproject = tree_root / "pyproject.toml"
    if pyproject.exists() or pyproject.is_symlink():
        return parse_config(pyproject, tree_root)
    return LintConfig()


def check_waiver_rules(config: LintConfig, rules: tuple[Rule, ...]) -> None:
    """Raise a KpolicyError at the waiver that names a rule that does not exist."""
    known = {r.name for r in rules} | {r.code for r in rules}
    for w in config.waivers:
        if w.rule not in known:
            raise KpolicyError(f"waiver names unknown rule '{w.rule}'", file=config.file,
                               line=w.line)


def apply_waivers(
    findings: tuple[Finding, ...], waivers: tuple[Waiver, ...],
) -> tuple[tuple[Finding, ...], tuple[tuple[Finding, Waiver], ...]]:
    """FINDINGS split into (still active, waived with the waiver that covers each)."""
    active: list[Finding] = []
    waived: list[tuple[Finding, Waiver]] = []
    for f in findings:
        w = next((w for w in waivers if w.matches(f)), None)
        if w is None:
            active.append(f)
        else:
            waived.append((f, w))
    return tuple(active), tuple(waived)
