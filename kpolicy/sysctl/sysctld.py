"""After boot: sysctl.conf files, sysctl.d directories and `sysctl -a` dumps applied on top of the
boot values, as systemd-sysctl does (sysctl.d(5)).

- A root directory holding etc/sysctl.d, run/sysctl.d, usr/local/lib/sysctl.d, usr/lib/sysctl.d
  (or a sysctl.d directory itself) is read as systemd-sysctl reads the real ones: every *.conf
  by file name across the directories, a name in /etc hiding the same name in /run, /usr/local/lib
  and /usr/lib (and /run hiding the lib ones); an empty file or a link to /dev/null masks it.
- `key = value` lines; `#` and `;` start comments; `-key` ignores a failure to set it. A key
  whose first separator is `/` keeps its dots; glob keys (`net.ipv4.conf.*.rp_filter`) apply
  to every matching sysctl that no line names exactly.
- The same key set again later replaces the earlier assignment: each key is written once, with
  its last value, in the order keys first appear.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kpolicy.errors import KpolicyError
from kpolicy.sysctl.boot import SysctlSource, SysctlState, with_sources
from kpolicy.sysctl.write import write
from kpolicy.textio import read_text

# systemd-sysctl's directories, highest priority first (CONF_PATHS("sysctl.d"))
SYSCTL_D_DIRS = ("etc/sysctl.d", "run/sysctl.d", "usr/local/lib/sysctl.d", "usr/lib/sysctl.d")
CONF_LIMIT = 1 << 20  # bytes per file


@dataclass(frozen=True)
class Assignment:
    """One `key = value` line."""

    key: str  # dotted
    value: str  # white space collapsed to single spaces
    file: str
    line: int
    ignore_errors: bool  # the key had a leading `-`
    glob: bool

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def normalize_key(key: str) -> str:
    """KEY as a dotted path: `/`-separated keys have their slashes made dots (sysctl.d(5))."""
    slash, dot = key.find("/"), key.find(".")
    if slash != -1 and (dot == -1 or slash < dot):
        return key.strip("/").replace("/", ".")
    return key


def parse_conf(text: str, file: str) -> list[Assignment]:
    """The assignments of one sysctl.conf / sysctl.d file / `sysctl -a` dump."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise KpolicyError(f"line without '=': {line!r}", file=file, line=number)
        key = key.strip()
        ignore = key.startswith("-")
        key = normalize_key(key.lstrip("-").strip())
        if not key:
            raise KpolicyError("empty sysctl name", file=file, line=number)
        out.append(Assignment(key, " ".join(value.split()), file, number, ignore,
                              any(c in key for c in "*?[")))
    return out


def _masked(path: Path) -> bool:
    return (path.is_symlink() and os.readlink(path) == "/dev/null") or (
        path.is_file() and path.stat().st_size == 0)


def sysctl_d_files(root: Path) -> list[Path]:
    """The files systemd-sysctl reads under ROOT, in its order (masked ones left out)."""
    dirs = [root / d for d in SYSCTL_D_DIRS if (root / d).is_dir()]
    if not dirs:
        dirs = [root]  # a sysctl.d directory itself
    chosen: dict[str, Path] = {}
    for d in dirs:  # highest priority first: the first of a name wins
        for f in sorted(d.iterdir()):
            if f.name.endswith(".conf") and f.name not in chosen:
                chosen[f.name] = f
    return [chosen[name] for name in sorted(chosen) if not _masked(chosen[name])]


def read_sysctl_inputs(paths: Sequence[Path]) -> list[Assignment]:
    """Every assignment of PATHS, in order: a directory as systemd-sysctl reads it, a file whole."""
    out: list[Assignment] = []
    for p in paths:
        files = sysctl_d_files(p) if p.is_dir() else [p]
        for f in files:
            out += parse_conf(read_text(f, what="sysctl file", limit=CONF_LIMIT), str(f))
    return out


def final_assignments(assignments: Sequence[Assignment], paths: Sequence[str]
                      ) -> list[tuple[str, Assignment, tuple[Assignment, ...]]]:
    """(path, the assignment written, the earlier ones it replaced) for each of PATHS any
    assignment reaches, in the order the keys first appear; exact keys hide glob keys."""
    exact = {a.key for a in assignments if not a.glob}
    order: dict[str, list[Assignment]] = {}
    for a in assignments:
        if a.glob:
            hits = [p for p in paths if p not in exact and fnmatch.fnmatchcase(p, a.key)]
        else:
            hits = [a.key] if a.key in paths else []
        for p in hits:
            order.setdefault(p, []).append(a)
    return [(p, seq[-1], tuple(seq[:-1])) for p, seq in order.items()]


def apply_sysctl_files(states: Sequence[SysctlState], assignments: Sequence[Assignment]
                       ) -> tuple[SysctlState, ...]:
    """STATES after ASSIGNMENTS, each write with its file:line, and a warning for each write
    that cannot take effect (sysctl not built, refused value, a one-way switch already set)."""
    by_path = {s.spec.path: s for s in states}
    changed: dict[str, SysctlState] = {}
    for path, a, replaced in final_assignments(assignments, list(by_path)):
        state = by_path[path]
        more = [SysctlSource("sysctl.d", state.effective,
                             f"{r.key} = {r.value} replaced by {a.where}", location=r.where,
                             error="replaced")
                for r in replaced]
        warnings = []
        if not state.built:
            more.append(SysctlSource("sysctl.d", None, f"{a.key} = {a.value}: no such sysctl "
                                     "in this kernel", location=a.where, error="ENOENT"))
            if not a.ignore_errors:
                warnings.append(f"{a.where}: {path} = {a.value} cannot take effect: "
                                f"{state.sources[0].reason}")
            changed[path] = with_sources(state, None, more, warnings)
            continue
        res = write(state.spec, state.effective or "", a.value)
        if res.accepted:
            more.append(SysctlSource("sysctl.d", res.value, f"{a.key} = {a.value} ({a.where})",
                                     location=a.where))
            value: Optional[str] = res.value
        else:
            one_way = state.spec.lock is not None or state.spec.min == state.spec.max
            reason = ("a one-way switch already set" if one_way and
                      state.effective in (str(state.spec.lock), str(state.spec.min))
                      else res.why)
            more.append(SysctlSource("sysctl.d", state.effective, f"{a.key} = {a.value} "
                                     f"refused ({res.error}): {reason}", location=a.where,
                                     error=res.error))
            if not a.ignore_errors:
                warnings.append(f"{a.where}: {path} = {a.value} cannot take effect: {reason}")
            value = state.effective
        changed[path] = with_sources(state, value, more, warnings)
    return tuple(changed.get(s.spec.path, s) for s in states)
