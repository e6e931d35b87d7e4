"""SARIF 2.1.0 as GitHub code scanning reads it: rules in tool.driver, results with fingerprints."""

from __future__ import annotations

import json
from typing import Any

from kpolicy import __version__
from kpolicy.lint.baseline import fingerprint
from kpolicy.lint.engine import LintResult
from kpolicy.lint.types import Finding, Rule

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"


def _rule(rule: Rule) -> dict[str, Any]:
    docs = rule.docs
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": f"{docs.what}\n\n{docs.why}"},
        "help": {"text": (f"{docs.what}\n\nWhy: {docs.why}\n\n"
                          f"Bad:\n{docs.bad}\n\nGood:\n{docs.good}")},
        "defaultConfiguration": {"level": rule.severity},
        "properties": {"tags": ["kpolicy"]},
    }


def _result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": f.code,
        "level": f.severity,
        "message": {"text": f.message},
        "partialFingerprints": {"kpolicyFingerprint/v1": fingerprint(f)},
    }
    if f.code in index:
        out["ruleIndex"] = index[f.code]
    if f.file is not None:
        physical: dict[str, Any] = {"artifactLocation": {"uri": f.file, "uriBaseId": SRCROOT}}
        physical["region"] = {"startLine": max(f.line or 1, 1)}
        out["locations"] = [{"physicalLocation": physical}]
    return out


def render(result: LintResult, *, show_waived: bool = False) -> str:
    """The SARIF log of RESULT; waived findings appear as suppressed results when SHOW_WAIVED."""
    index = {r.code: i for i, r in enumerate(result.rules)}
    results = [_result(f, index) for f in result.findings]
    if show_waived:
        for f, w in result.waived:
            suppressed = _result(f, index)
            suppressed["suppressions"] = [{"kind": "external", "justification": w.reason}]
            results.append(suppressed)
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kpolicy",
                "version": __version__,
                "rules": [_rule(r) for r in result.rules],
            }},
            "results": results,
            "columnKind": "unicodeCodePoints",
        }],
    }
    return json.dumps(log, indent=2, sort_keys=True) + "\n"
