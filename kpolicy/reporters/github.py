"""GitHub Actions workflow commands: `::warning file=…,line=…,title=…::message` per finding."""

from __future__ import annotations

from kpolicy.lint.engine import LintResult
from kpolicy.lint.types import Finding

_LEVEL = {"note": "notice", "warning": "warning", "error": "error"}


def escape_data(text: str) -> str:
    """TEXT made safe as a workflow command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """TEXT made safe as a workflow command property value."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding) -> str:
    """FINDING as one workflow command."""
    props = []
    if f.file is not None:
        props.append(f"file={escape_property(f.file)}")
        if f.line is not None:
            props.append(f"line={f.line}")
    props.append(f"title={escape_property(f'{f.rule} ({f.code})')}")
    return f"::{_LEVEL[f.severity]} {','.join(props)}::{escape_data(f.message)}"


def render(result: LintResult, *, show_waived: bool = False) -> str:
    """One annotation per active finding (waived ones never annotate a pull request)."""
    return "".join(annotation(f) + "\n" for f in result.findings)
