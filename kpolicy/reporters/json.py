"""Machine-readable JSON: schema_version 1, one object per finding, keys sorted."""

from __future__ import annotations

import json
from typing import Any, Optional

from kpolicy.lint.baseline import fingerprint
from kpolicy.lint.engine import LintResult
from kpolicy.lint.types import Finding

SCHEMA_VERSION = 1


def finding_dict(f: Finding) -> dict[str, Optional[Any]]:
    """FINDING as the JSON object every machine-readable report uses."""
    return {"rule": f.rule, "code": f.code, "severity": f.severity, "message": f.message,
            "file": f.file, "line": f.line, "family": f.family, "symbol": f.symbol,
            "param": f.param, "fingerprint": fingerprint(f)}


def render(result: LintResult, *, show_waived: bool = False) -> str:
    """The JSON report of RESULT; waived findings (with reasons) only when SHOW_WAIVED."""
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tree_version": result.tree.version,
        "arches": list(result.arches),
        "findings": [finding_dict(f) for f in result.findings],
        "summary": {"findings": len(result.findings), "waived": len(result.waived),
                    "already_known": result.baselined, "fail_on": result.fail_on},
    }
    if show_waived:
        doc["waived"] = [{**finding_dict(f), "reason": w.reason} for f, w in result.waived]
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
