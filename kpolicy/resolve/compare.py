"""`kpolicy diff`: what changed in policy-relevant settings between two resolutions, and why.

The rows are kpolicy.resolve.review's: features, options, sysctls, the hardening Kconfig
symbols the bundled policies name (a renamed symbol is one row) and, with a policy, what it
requires."""

from __future__ import annotations

from typing import Any, Optional

from kpolicy.resolve.api import Resolution
from kpolicy.resolve.review import CATEGORIES, Cell, Row


def _side(c: Cell) -> str:
    if c.value is None:
        return "absent"
    text = c.value + ("" if c.built else " (not built)")
    return text + (f" [{c.verdict}]" if c.verdict else "")


def _label(res: Resolution) -> str:
    return res.config.path or f"Linux {res.model.version} defaults"


def _name(row: Row) -> str:
    return row.key + (f" (was {', '.join(row.names)})" if row.names else "")


def diff_text(a: Resolution, b: Resolution, rows: tuple[Row, ...], *, show_all: bool = False,
              policy: Optional[str] = None) -> str:
    """Changed rows by category, one line each with both sides' reasons (all rows with
    SHOW_ALL; with POLICY, also rows the policy fails on either side)."""
    lines = [
        f"--- A: {_label(a)} (Linux {a.model.version})",
        f"+++ B: {_label(b)} (Linux {b.model.version})",
    ]
    if policy:
        lines.append(f"policy: {policy}")
    shown = [r for r in rows if r.changed or r.failed or show_all]
    width = max((len(r.key) for r in shown), default=0)
    for category, heading in CATEGORIES:
        here = [r for r in shown if r.category == category]
        if not here:
            continue
        lines.append(f"## {heading}")
        for r in here:
            mark = "!" if r.changed else ("x" if r.failed else " ")
            ca, cb = r.cells
            lines.append(f"{mark} {r.key:<{width}}  {_side(ca)} -> {_side(cb)}"
                         + (f"  (A: {ca.name})" if ca.name != r.key else ""))
            if r.changed or r.failed:
                for side, c in (("A", ca), ("B", cb)):
                    why = c.why if c.value is not None else "the setting does not exist here"
                    lines.append(f"    {side}: {why}")
                    if c.verdict in ("fail", "waived"):
                        lines.append(f"    {side} policy {c.verdict}: {c.verdict_why}")
    if not any(r.changed for r in rows):
        lines.append("no difference in effective policy")
    return "\n".join(lines) + "\n"


def diff_json(a: Resolution, b: Resolution, rows: tuple[Row, ...],
              policy: Optional[str] = None) -> dict[str, Any]:
    """The diff as JSON: both sides' labels and each changed (or, with POLICY, failing) row."""
    return {
        "schema_version": 2,
        "a": {"config": a.config.path, "version": a.model.version},
        "b": {"config": b.config.path, "version": b.model.version},
        "policy": policy,
        "changes": [
            {
                "category": r.category,
                "key": r.key,
                "changed": r.changed,
                "requires": list(r.requires),
                "a": r.cells[0].as_json(),
                "b": r.cells[1].as_json(),
            }
            for r in rows
            if r.changed or r.failed
        ],
    }
