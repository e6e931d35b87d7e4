"""Fingerprints that survive line moves, baseline files made of them, and filtering by them."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from kpolicy.errors import KpolicyError
from kpolicy.lint.types import Finding
from kpolicy.textio import atomic_write_bytes, read_text

SCHEMA_VERSION = 1
# "arch/Kconfig:1234" and "line 1234" inside a message move with unrelated edits; the rest does not.
_LINE_REF = re.compile(r"(?<=\S):\d+\b|\bline \d+\b")
_SPACE = re.compile(r"\s+")


def normalized_message(message: str) -> str:
    """MESSAGE without line numbers or runs of whitespace, so edits above it leave it alone."""
    return _SPACE.sub(" ", _LINE_REF.sub(":N", message)).strip()


def fingerprint(finding: Finding) -> str:
    """A stable hex id of FINDING: rule, file, family/symbol/param and message, never its line."""
    parts = (finding.rule, finding.file or "", finding.family or "", finding.symbol or "",
             finding.param or "", normalized_message(finding.message))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def new_findings(
    findings: Iterable[Finding], known: Iterable[str],
) -> tuple[tuple[Finding, ...], int]:
    """(FINDINGS not covered by the KNOWN fingerprints, how many were covered); a multiset match."""
    budget = Counter(known)
    fresh: list[Finding] = []
    covered = 0
    for f in findings:
        fp = fingerprint(f)
        if budget[fp] > 0:
            budget[fp] -= 1
            covered += 1
        else:
            fresh.append(f)
    return tuple(fresh), covered


def baseline_bytes(findings: Iterable[Finding]) -> bytes:
    """The baseline file recording FINDINGS: JSON, sorted, byte-identical for the same findings."""
    entries = sorted(
        ({"fingerprint": fingerprint(f), "rule": f.rule, "file": f.file or "",
          "message": f.message} for f in findings),
        key=lambda e: (e["fingerprint"], e["file"], e["message"]),
    )
    doc = {"schema_version": SCHEMA_VERSION, "tool": "kpolicy", "findings": entries}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def write_baseline(path: Path, findings: Iterable[Finding]) -> None:
    """Write the baseline of FINDINGS to PATH atomically."""
    atomic_write_bytes(path, baseline_bytes(findings))


def read_baseline(path: Path) -> tuple[str, ...]:
    """The fingerprints recorded in baseline file PATH; a malformed file is a KpolicyError."""
    text = read_text(path, what="baseline")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KpolicyError(f"baseline is not JSON: {exc.msg}", file=path, line=exc.lineno) from None
    except RecursionError:
        raise KpolicyError("baseline is not JSON: nested too deeply", file=path) from None
    except ValueError as exc:  # an integer beyond Python's 4300-digit conversion limit
        raise KpolicyError(f"baseline is not JSON: {exc}", file=path) from None
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        raise KpolicyError(f"not a kpolicy baseline (schema_version {SCHEMA_VERSION})", file=path)
    entries = doc.get("findings")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("fingerprint"), str) for e in entries
    ):
        raise KpolicyError("baseline 'findings' must be a list of {fingerprint: ...}", file=path)
    return tuple(e["fingerprint"] for e in entries)
