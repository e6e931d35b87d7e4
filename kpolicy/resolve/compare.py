"""`kpolicy diff`: what changed in effective policy between two resolutions, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from kpolicy.resolve.api import Resolution
from kpolicy.resolve.engine import FeatureState, state_word


@dataclass(frozen=True)
class Change:
    """One feature on both sides (None where a side does not have it)."""

    name: str
    a: Optional[FeatureState]
    b: Optional[FeatureState]

    @property
    def changed(self) -> bool:
        """True when the effective state, or whether the feature exists or is built, differs."""
        if self.a is None or self.b is None:
            return self.a is not self.b
        return (self.a.effective, self.a.built) != (self.b.effective, self.b.built)


def diff_resolutions(a: Resolution, b: Resolution) -> tuple[Change, ...]:
    """Every feature of A and B, paired by name, in A's order then B's new ones."""
    fa = {f.name: f for f in a.features}
    fb = {f.name: f for f in b.features}
    names = list(fa) + [n for n in fb if n not in fa]
    return tuple(Change(n, fa.get(n), fb.get(n)) for n in names)


def _side(f: Optional[FeatureState]) -> str:
    if f is None:
        return "absent"
    return state_word(f.effective) + ("" if f.built else " (not built)")


def _label(res: Resolution) -> str:
    return res.config.path or f"Linux {res.model.version} defaults"


def diff_text(
    a: Resolution, b: Resolution, changes: tuple[Change, ...], *, show_all: bool = False
) -> str:
    """Changed features, one line each with both sides' reasons (all features with SHOW_ALL)."""
    lines = [
        f"--- A: {_label(a)} (Linux {a.model.version})",
        f"+++ B: {_label(b)} (Linux {b.model.version})",
    ]
    shown = [c for c in changes if c.changed or show_all]
    width = max((len(c.name) for c in shown), default=0)
    for c in shown:
        mark = "!" if c.changed else " "
        lines.append(f"{mark} {c.name:<{width}}  {_side(c.a)} -> {_side(c.b)}")
        if c.changed:
            lines.append(f"    A: {c.a.why if c.a else 'the feature does not exist on this side'}")
            lines.append(f"    B: {c.b.why if c.b else 'the feature does not exist on this side'}")
    if not any(c.changed for c in changes):
        lines.append("no difference in effective policy")
    return "\n".join(lines) + "\n"


def diff_json(a: Resolution, b: Resolution, changes: tuple[Change, ...]) -> dict[str, Any]:
    """The diff as JSON: both sides' labels and each changed feature with both entries."""
    return {
        "schema_version": 1,
        "a": {"config": a.config.path, "version": a.model.version},
        "b": {"config": b.config.path, "version": b.model.version},
        "changes": [
            {
                "feature": c.name,
                "a": c.a.as_json() if c.a else None,
                "b": c.b.as_json() if c.b else None,
            }
            for c in changes
            if c.changed
        ],
    }
