"""`kpolicy check` results as text, JSON (a versioned contract), SARIF 2.1.0, JUnit XML and
GitHub Actions annotations."""

from __future__ import annotations

import json
from typing import Any, Optional

from kpolicy import __version__
from kpolicy.policy.check import CheckResult, ItemResult

JSON_SCHEMA_VERSION = 1
_LABEL = {"pass": "PASS", "fail": "FAIL", "not-applicable": "N/A", "waived": "WAIVED"}


def summary(result: CheckResult) -> dict[str, int]:
    """How many items have each status."""
    out = {"pass": 0, "fail": 0, "not-applicable": 0, "waived": 0}
    for r in result.results:
        out[r.status] += 1
    return out


def _head(result: CheckResult) -> str:
    res = result.subject.resolution
    counts = summary(result)
    return (f"Linux {res.model.version} {res.model.arch}; config: "
            f"{res.config.path or 'Kconfig defaults'}; policy {result.policy.name}: "
            + ", ".join(f"{n} {s}" for s, n in counts.items()))


def result_text(result: CheckResult, *, show_all: bool = False) -> str:
    """One line per item that is not a pass (every item with SHOW_ALL), fixes beneath."""
    lines = [_head(result)]
    for r in result.results:
        if r.status == "pass" and not show_all:
            continue
        if r.status == "not-applicable" and not show_all:
            continue
        lines.append(f"{_LABEL[r.status]:<7}{r.item.id}: {r.item.require} "
                     f"(actual: {r.actual or '-'}) - {r.why}")
        if r.affects and r.status == "fail":
            lines.append(f"       affects: {', '.join(r.affects)}")
        if r.fix is not None:
            lines.append(f"       fix: {r.fix.text()}")
            if r.fix.drags:
                lines.append(f"       which also sets: {', '.join(r.fix.drags)}")
            if r.fix.breaks:
                lines.append(f"       but then fails: {', '.join(r.fix.breaks)}")
        elif r.status == "fail" and r.no_fix:
            lines.append(f"       no fix: {r.no_fix}")
        if r.waiver:
            lines.append(f"       waived: {r.waiver}")
    if not show_all:
        na = summary(result)["not-applicable"]
        if na:
            lines.append(f"({na} items not applicable here; --all lists them with the reason)")
    return "\n".join(lines) + "\n"


def item_json(r: ItemResult) -> dict[str, Any]:
    """One entry of "results"."""
    return {
        "id": r.item.id,
        "status": r.status,
        "require": r.item.require,
        "expected": r.expected,
        "actual": r.actual,
        "why": r.why,
        "reason": r.item.why,
        "fix": r.fix.as_json() if r.fix is not None else None,
        "no_fix": r.no_fix or None,
        "reference": r.item.reference,
        "severity": r.item.severity,
        "affects": list(r.affects),
        "provenance": list(r.provenance),
        "waiver": r.waiver or None,
        "policy": r.item.policy,
    }


def result_json(result: CheckResult) -> dict[str, Any]:
    """The JSON contract: schema_version, policy, kernel, config, cmdline, summary, results."""
    res = result.subject.resolution
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "policy": result.policy.name,
        "policy_file": result.policy.origin,
        "kernel": {"version": res.model.version, "arch": res.model.arch,
                   "model": res.model.origin},
        "config": res.config.path,
        "cmdline": res.cmdline.effective,
        "summary": summary(result),
        "results": [item_json(r) for r in result.results],
        "warnings": list(result.warnings),
    }


def _message(r: ItemResult) -> str:
    text = f"{r.item.id}: {r.item.require} (actual: {r.actual or '-'}): {r.item.why}"
    if r.fix is not None:
        text += f". Fix: {r.fix.text()}"
    return text


def _config_line(result: CheckResult, r: ItemResult) -> Optional[int]:
    if r.item.kind != "kconfig":
        return None
    return result.subject.resolution.config.lines.get(r.item.subject)


def result_sarif(result: CheckResult) -> str:
    """SARIF 2.1.0: a rule per item, a result per failure (waived ones suppressed)."""
    items = [r.item for r in result.results]
    index = {item.id: n for n, item in enumerate(items)}
    config = result.subject.resolution.config.path
    results = []
    for r in result.results:
        if r.status not in ("fail", "waived"):
            continue
        out: dict[str, Any] = {
            "ruleId": r.item.id,
            "ruleIndex": index[r.item.id],
            "level": r.item.severity,
            "message": {"text": _message(r)},
        }
        if config is not None:
            physical: dict[str, Any] = {"artifactLocation": {"uri": config}}
            physical["region"] = {"startLine": _config_line(result, r) or 1}
            out["locations"] = [{"physicalLocation": physical}]
        if r.status == "waived":
            out["suppressions"] = [{"kind": "external", "justification": r.waiver}]
        results.append(out)
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kpolicy",
                "version": __version__,
                "rules": [{
                    "id": item.id,
                    "name": item.id,
                    "shortDescription": {"text": item.require},
                    "fullDescription": {"text": item.why},
                    "helpUri": item.reference,
                    "defaultConfiguration": {"level": item.severity},
                    "properties": {"policy": item.policy},
                } for item in items],
            }},
            "results": results,
            "columnKind": "unicodeCodePoints",
        }],
    }
    return json.dumps(log, indent=2, sort_keys=True) + "\n"


def _gh_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def result_github(result: CheckResult) -> str:
    """`::error file=CONFIG,line=N::message` per failure."""
    config = result.subject.resolution.config.path
    lines = []
    for r in result.results:
        if r.status != "fail":
            continue
        props = []
        if config is not None:
            props.append(f"file={_gh_escape(config, prop=True)}")
            line = _config_line(result, r)
            if line:
                props.append(f"line={line}")
        props.append(f"title={_gh_escape(r.item.id, prop=True)}")
        lines.append(f"::{r.item.severity} {','.join(props)}::{_gh_escape(_message(r))}")
    return "".join(line + "\n" for line in lines)


def result_junit(result: CheckResult) -> str:
    """JUnit XML: a test case per item; failures fail, not-applicable and waived are skipped."""
    from xml.sax.saxutils import escape, quoteattr  # imports urllib: only for this format

    counts = summary(result)
    cases = []
    for r in result.results:
        name = quoteattr(r.item.id)
        cls = quoteattr(f"kpolicy.{result.policy.name}")
        body = ""
        if r.status == "fail":
            body = (f"<failure message={quoteattr(_message(r))} type=\"{r.item.severity}\">"
                    f"{escape(r.why)}</failure>")
        elif r.status in ("not-applicable", "waived"):
            body = f"<skipped message={quoteattr(r.waiver or r.why)}/>"
        cases.append(f"    <testcase classname={cls} name={name}>{body}</testcase>")
    skipped = counts["not-applicable"] + counts["waived"]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<testsuites><testsuite name={quoteattr(result.policy.name)} "
        f"tests=\"{len(result.results)}\" failures=\"{counts['fail']}\" errors=\"0\" "
        f"skipped=\"{skipped}\">\n" + "\n".join(cases) + "\n  </testsuite></testsuites>\n"
    )
