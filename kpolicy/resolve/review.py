"""Distro review: the policy-relevant settings of several resolutions as aligned rows.

A row is one setting across the columns (configs, possibly of different kernel versions):
a resolve feature (on/off) or option (a setting with a word or number), a sysctl's boot
value, a hardening Kconfig symbol the bundled policies name (under the name each column's
version gives it, rules/renames/), or a command-line parameter a policy requires. With a
policy, each cell also carries that policy's verdict on the items about the row.
`kpolicy diff` prints the rows that differ; `kpolicy report` renders them all as HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Optional

from kpolicy.resolve.api import Resolution
from kpolicy.resolve.engine import FeatureState, state_word
from kpolicy.resolve.renames import Renames, load_renames
from kpolicy.sysctl.boot import SysctlState

# (category, heading), in the order reports show them
CATEGORIES = (
    ("feature", "Features (on/off)"),
    ("option", "Options (settings)"),
    ("sysctl", "Sysctls at boot"),
    ("kconfig", "Hardening Kconfig symbols"),
    ("cmdline", "Command-line parameters"),
)
# the verdict a cell shows when several items are about its row: the worst
_VERDICT_RANK = {"not-applicable": 0, "pass": 1, "waived": 2, "fail": 3}


@dataclass(frozen=True)
class Cell:
    """One row's setting in one column."""

    name: str  # what the setting is called in this column's kernel
    value: Optional[str]  # None: the column has no such setting
    built: bool = True
    why: str = ""
    steps: tuple[str, ...] = ()  # the chain that led to the value
    verdict: Optional[str] = None  # the policy's: pass, fail, not-applicable, waived
    verdict_why: str = ""

    def as_json(self) -> dict[str, Any]:
        """The cell in diff's JSON."""
        out: dict[str, Any] = {"name": self.name, "value": self.value, "built": self.built,
                               "why": self.why, "steps": list(self.steps)}
        if self.verdict is not None:
            out["policy"] = {"status": self.verdict, "why": self.verdict_why}
        return out


@dataclass(frozen=True)
class Row:
    """One setting across all columns."""

    category: str
    key: str  # the newest name
    cells: tuple[Cell, ...]
    requires: tuple[str, ...] = ()  # the policy's requirements about it

    @property
    def changed(self) -> bool:
        """Whether the columns do not all hold the same value (and build)."""
        return len({(c.value, c.built) for c in self.cells}) > 1

    @property
    def failed(self) -> bool:
        """Whether the policy fails in some column."""
        return any(c.verdict == "fail" for c in self.cells)

    @property
    def names(self) -> tuple[str, ...]:
        """The other names the columns give the setting (a renamed symbol)."""
        return tuple(dict.fromkeys(c.name for c in self.cells if c.name != self.key))


def provenance(f: FeatureState) -> tuple[str, ...]:
    """F's chain as lines: each source, what blocks the build, what the machine decides."""
    steps = []
    for s in f.sources:
        where = f" [{s.location}]" if s.location else ""
        state = "" if s.state is None else f" -> {state_word(s.state)}"
        steps.append(f"{s.kind}: {s.reason}{where}{state}")
    steps += [f"blocked: {b}" for b in f.blocked_by]
    steps += [f"machine: {m}" for m in f.machine]
    return tuple(steps)


def _feature_cell(f: FeatureState) -> Cell:
    return Cell(f.name, state_word(f.effective), f.built, f.why, provenance(f))


def _sysctl_cell(s: SysctlState) -> Cell:
    steps = tuple(f"{x.kind}: {x.reason}" + (f" [{x.location}]" if x.location else "")
                  + (f" -> {x.value}" if x.value is not None else "") for x in s.sources)
    value = s.effective if s.effective is not None else ("unknown" if s.built else "absent")
    return Cell(s.name, value, s.built, s.why, steps)


def _kconfig_cell(res: Resolution, key: str, renames: Renames) -> Cell:
    name = renames.name_in(key, res.model.version_tuple)
    label = f"CONFIG_{name}"
    value = res.config.values.get(name)
    where = res.config.path or f"Linux {res.model.version} defaults"
    if value is None:
        return Cell(label, "n", True, f"{where} does not set {label}: its dependencies are unmet "
                    f"or Linux {res.model.version} has no such symbol")
    line = res.config.lines.get(name)
    if line is None:  # valued by Kconfig (--tree), not written in the file
        return Cell(label, value, True, f"{label}={value}: Kconfig's value for {where}, which "
                    "does not assign it")
    at = f"{where}:{line}"
    return Cell(label, value, True, f"{at}: {label}={value}", (f"config: {at}",))


@dataclass(frozen=True)
class Verdict:
    """A policy item's result in one column (kpolicy.policy's ItemResult, as rows need it)."""

    item: str  # the item's id
    kind: str  # kconfig, sysctl, cmdline, feature
    subject: str
    require: str
    status: str  # pass, fail, not-applicable, waived
    actual: str
    why: str


def _row_key(kind: str, subject: str, renames: Renames) -> tuple[str, str]:
    if kind == "kconfig":
        return "kconfig", f"CONFIG_{renames.canonical(subject)}"
    if kind == "sysctl":
        return "sysctl", f"sysctl.{subject}"
    return kind, subject


def review_rows(columns: Sequence[Resolution], symbols: Sequence[str] = (),
                verdicts: Optional[Sequence[Sequence[Verdict]]] = None) -> tuple[Row, ...]:
    """The aligned rows of COLUMNS: their features and sysctls, the Kconfig SYMBOLS (any of
    their names); VERDICTS (a policy's, per column) add the policy's verdicts and the rows of
    what it requires."""
    renames = load_renames()
    rows: dict[tuple[str, str], list[Optional[Cell]]] = {}
    width = len(columns)

    def put(category: str, key: str, col: int, cell: Cell) -> None:
        rows.setdefault((category, key), [None] * width)[col] = cell

    for col, res in enumerate(columns):
        for f in res.features:  # a build-only feature is named after its (maybe renamed) option
            # an outcome that depends on the machine (None) is one of a bool feature's (kpti)
            put("feature" if f.effective is None or isinstance(f.effective, bool) else "option",
                renames.canonical(f.name), col, _feature_cell(f))
        for s in res.sysctls:
            put("sysctl", s.name, col, _sysctl_cell(s))
    # a feature that is a bool in one column and a word in another is an option everywhere
    for (category, key) in [k for k in rows if k[0] == "feature" and ("option", k[1]) in rows]:
        old = rows.pop((category, key))
        rows[("option", key)] = [a or b for a, b in zip(rows[("option", key)], old)]
    wanted = {renames.canonical(s) for s in symbols}
    wanted |= {renames.canonical(v.subject) for column in verdicts or () for v in column
               if v.kind == "kconfig"}
    for sym in sorted(wanted):
        for col, res in enumerate(columns):
            put("kconfig", f"CONFIG_{sym}", col, _kconfig_cell(res, sym, renames))
    requires: dict[tuple[str, str], list[str]] = {}
    by_key = {key: k for k in rows for key in [k[1]]}
    for col, column in enumerate(verdicts or ()):
        for r in column:
            k = _row_key(r.kind, r.subject, renames)
            if k[0] == "feature":
                k = by_key.get(renames.canonical(k[1]), k)
            requires.setdefault(k, [])
            if r.require not in requires[k]:
                requires[k].append(r.require)
            cells = rows.setdefault(k, [None] * width)
            cell = cells[col] or Cell(r.subject, r.actual or "unset", True, r.why)
            if cell.verdict is None or _VERDICT_RANK[r.status] > _VERDICT_RANK[cell.verdict]:
                cell = replace(cell, verdict=r.status,
                               verdict_why=f"{r.item}: {r.why}".strip())
            cells[col] = cell
    order = {c: n for n, (c, _h) in enumerate(CATEGORIES)}
    out = []
    for (category, key), cells in rows.items():
        filled = tuple(c or Cell(key, None, False, "this column has no such setting")
                       for c in cells)
        out.append(Row(category, key, filled, tuple(requires.get((category, key), ()))))
    return tuple(sorted(out, key=lambda r: order[r.category]))  # stable: first-seen order
