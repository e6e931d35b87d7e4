"""gcc-style text: one `path:line: severity: message [rule]` line per finding, then a summary."""

from __future__ import annotations

from kpolicy.lint.engine import LintResult
from kpolicy.lint.types import Finding


def _where(f: Finding) -> str:
    if f.file is None:
        return "kpolicy"
    return f.file if f.line is None else f"{f.file}:{f.line}"


def finding_line(f: Finding) -> str:
    """One finding as `path:line: severity: message [rule]`."""
    return f"{_where(f)}: {f.severity}: {f.message} [{f.rule}]"


def render(result: LintResult, *, show_waived: bool = False) -> str:
    """The text report of RESULT; waived findings are listed too when SHOW_WAIVED."""
    lines = [finding_line(f) for f in result.findings]
    if show_waived:
        lines += [f"{finding_line(f)} (waived: {w.reason})" for f, w in result.waived]
    counts = [f"{len(result.findings)} finding{'s' if len(result.findings) != 1 else ''}"]
    if result.waived:
        counts.append(f"{len(result.waived)} waived")
    if result.baselined:
        counts.append(f"{result.baselined} already known")
    lines.append(f"kpolicy: {', '.join(counts)} ({len(result.rules)} rules, "
                 f"ARCH={','.join(result.arches)})")
    return "\n".join(lines) + "\n"
