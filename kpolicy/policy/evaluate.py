"""Each policy item judged on what resolve says is in force: pass, fail or not-applicable.

Nothing here re-implements the kernel: Kconfig values are the config's as Kconfig evaluates
them, features are resolve's effective states, command-line values are what the kernel's
handler for the parameter received (kpolicy.cmdline), and sysctls are resolve's boot values
(kpolicy.sysctl: rules/sysctls/security.toml) unless the command line or --sysctl files set them.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal, Optional

from kpolicy.cmdline.lsm import HANDLER_STAGES
from kpolicy.cmdline.passes import APPLIED
from kpolicy.kconfig.evaluate import eval_expr
from kpolicy.kconfig.model import KconfigModel
from kpolicy.kernel import fold_param
from kpolicy.params.semantics import FeatureSpec, State
from kpolicy.policy.schema import Item, Value, value_text
from kpolicy.resolve.api import Resolution
from kpolicy.resolve.engine import FeatureState, state_word

Status = Literal["pass", "fail", "not-applicable", "waived"]
_TRI = {"n": 0, "m": 1, "y": 2}


@dataclass(frozen=True)
class Subject:
    """What is checked: one resolve answer, with the Kconfig model that valued its config."""

    resolution: Resolution
    kconfig: KconfigModel  # a tree's whole Kconfig (complete) or a bundled model's part of it
    complete: bool  # KCONFIG holds every symbol of the tree: a symbol it lacks does not exist
    specs: Mapping[str, FeatureSpec]

    @property
    def values(self) -> Mapping[str, str]:
        return self.resolution.config.values

    @property
    def version(self) -> tuple[int, int, int]:
        return self.resolution.model.version_tuple

    @functools.cached_property
    def features(self) -> dict[str, FeatureState]:
        return {f.name: f for f in self.resolution.features}


@dataclass(frozen=True)
class Judgement:
    """An item's status on a Subject, before fixes and waivers."""

    status: Status
    expected: str
    actual: str
    why: str  # what makes ACTUAL what it is (the provenance chain, in words)
    provenance: tuple[str, ...] = ()
    affects: tuple[str, ...] = ()  # a feature glob's: the matched features that fail


# --- comparisons ------------------------------------------------------------------------------


def _number(text: str) -> Optional[int]:
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _compare(op: str, actual: str, wanted: str, order: Optional[tuple[str, ...]] = None) -> bool:
    """ACTUAL OP WANTED, on tristates, numbers, an ordered domain, or words."""
    if op == "contains":
        return wanted in [w.strip() for w in actual.split(",")]
    if op in ("=", "!="):
        a, w = _number(actual), _number(wanted)
        same = a == w if a is not None and w is not None else actual == wanted
        return same if op == "=" else not same
    rank: dict[str, int] = dict(_TRI)
    if order:
        rank = {word: n for n, word in enumerate(order)}
    if actual in rank and wanted in rank:
        a, w = rank[actual], rank[wanted]
    else:
        an, wn = _number(actual), _number(wanted)
        if an is None or wn is None:
            return False
        a, w = an, wn
    return a >= w if op == ">=" else a <= w


def expected_text(item: Item) -> str:
    """What the item requires, in words: `= y`, `>= integrity`, `contains lockdown`."""
    return f"{item.op} {value_text(item.value)}"


# --- applicability ----------------------------------------------------------------------------


def _outside(item: Item, subject: Subject) -> Optional[str]:
    """Why ITEM does not apply to this kernel version or arch, if it does not."""
    model = subject.resolution.model
    if item.arches and model.arch not in item.arches and model.srcarch not in item.arches:
        return f"applies to {', '.join(item.arches)} only, not {model.arch}"
    if item.since is not None and subject.version < item.since:
        return f"applies from Linux {item.since[0]}.{item.since[1]} on"
    if item.until is not None and subject.version > item.until:
        return f"applies up to Linux {item.until[0]}.{item.until[1]}"
    return None


def fixed_symbol(kconfig: KconfigModel, name: str) -> bool:
    """Whether no config can change NAME: it has no prompt, and only fixed symbols select it or
    appear in its dependencies (arch capabilities, toolchain tests such as CC_IS_CLANG)."""
    return _fixed(kconfig, name, frozenset())


def _fixed(kconfig: KconfigModel, name: str, seen: frozenset[str]) -> bool:
    sym = kconfig.symbols.get(name)
    if sym is None:
        return True
    if sym.has_prompt or sym.choice:
        return False
    seen = seen | {name}
    deps = sym.direct_dep.symbols() if sym.direct_dep is not None else frozenset()
    return all(n in seen or _fixed(kconfig, n, seen)
               for n in (*(r.source for r in sym.selected_by), *deps))


def evidenced(kconfig: KconfigModel, values: Mapping[str, str], lines: Mapping[str, int],
              name: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether the config shows NAME's value as the build had it: written in the config, or
    left out although its dependencies are met (conf writes such a symbol whenever it is set).
    A compiler test (`$(cc-option,...)`) inside an unmet `if` block is written nowhere: its
    value is not known from the config."""
    if name in lines:
        return True
    sym = kconfig.symbols.get(name)
    if sym is None:
        return True  # does not exist: known not to be set
    if sym.direct_dep is None:
        return True
    types = {n: kconfig.symbols[n].type for n in sym.direct_dep.symbols() if n in kconfig.symbols}
    if eval_expr(sym.direct_dep, values, types) != "n":
        return True
    # unmet dependencies: known when the config shows what leaves them unmet
    seen = seen | {name}
    return all(n not in seen and evidenced(kconfig, values, lines, n, seen)
               for term in sym.direct_dep.conjuncts()
               if eval_expr(term, values, types) == "n" for n in term.symbols())


def unmet_fixed(kconfig: KconfigModel, values: Mapping[str, str], name: str,
                lines: Optional[Mapping[str, int]] = None) -> Optional[str]:
    """The first dependency of NAME that is false and that no config can make true, if any.
    With LINES (the config's assignments), only where the config shows the blocking values."""
    sym = kconfig.symbols.get(name)
    if sym is None or sym.direct_dep is None:
        return None
    for term in sym.direct_dep.conjuncts():
        names = sorted(term.symbols())
        types = {n: kconfig.symbols[n].type for n in names if n in kconfig.symbols}
        if eval_expr(term, values, types) != "n":
            continue
        if all(fixed_symbol(kconfig, n) and (lines is None or evidenced(kconfig, values, lines, n))
               for n in names):
            refs = ", ".join(
                f"{n}={values.get(n, 'n')}"
                + (f" ({kconfig.symbols[n].location})" if n in kconfig.symbols else " (undefined)")
                for n in names
            )
            return f"depends on {term} at {sym.location}, which no config can change here: {refs}"
    return None


# --- the four kinds of item -------------------------------------------------------------------


def _kconfig_value(subject: Subject, name: str) -> str:
    value = subject.values.get(name)
    if value is not None:
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    sym = subject.kconfig.symbols.get(name)
    return "" if sym is not None and sym.type in ("int", "hex", "string") else "n"


def _judge_kconfig(item: Item, subject: Subject) -> Judgement:
    name = item.subject
    expected = expected_text(item)
    kconfig = subject.kconfig
    exists = name in kconfig.symbols
    actual = _kconfig_value(subject, name)
    shown = "is not set" if actual == "n" else (actual or "not set")
    line = subject.resolution.config.lines.get(name)
    where = f"config line {line}" if line else "not in the config"
    if subject.complete and not exists:
        if _compare(item.op, "n", value_text(item.value)):
            return Judgement("pass", expected, "is not set",
                             f"CONFIG_{name} does not exist in Linux {kconfig.version} "
                             f"({kconfig.arch})")
        return Judgement("not-applicable", expected, "does not exist",
                         f"CONFIG_{name} does not exist in Linux {kconfig.version} "
                         f"({kconfig.arch})")
    if _compare(item.op, actual, value_text(item.value)):
        return Judgement("pass", expected, shown, f"CONFIG_{name}: {where}")
    reason = unmet_fixed(kconfig, subject.values, name, subject.resolution.config.lines
                         if subject.resolution.config.path else None) if exists else None
    if reason is not None and item.op in ("=", ">=") and item.value != "n":
        return Judgement("not-applicable", expected, shown, f"CONFIG_{name} {reason}")
    why = f"CONFIG_{name}: {where}"
    if exists and actual == "n":
        from kpolicy.resolve.engine import blocked_by

        blocks = [b for b in blocked_by(kconfig, subject.values, name) if "is not set" not in b]
        if blocks:
            why += "; " + "; ".join(blocks)
    return Judgement("fail", expected, shown, why)


def _judge_feature(item: Item, subject: Subject) -> Judgement:
    expected = expected_text(item)
    state = subject.features.get(item.subject)
    spec = subject.specs.get(item.subject)
    if state is None:
        model = subject.resolution.model
        if spec is not None and spec.arches and model.srcarch not in spec.arches:
            return Judgement("not-applicable", expected, "does not exist",
                             f"{item.subject} exists on {', '.join(spec.arches)} only")
        return Judgement("not-applicable", expected, "unknown",
                         f"no feature '{item.subject}' in Linux {model.version} ({model.arch})")
    chain = tuple(f"{s.kind}: {s.reason}" + (f" [word {s.position}: {s.token}]" if s.token else "")
                  + (f" [{s.location}]" if s.location else "") for s in state.sources)
    if state.effective is None:  # depends on the machine: not known to meet the requirement
        return Judgement("fail", expected, state_word(None), state.why, chain)
    actual = state_word(state.effective)
    wanted: Value = item.value
    if isinstance(state.effective, bool) and not isinstance(wanted, bool):
        wanted = str(wanted).lower() in ("1", "on", "y", "yes", "true")
    order = spec.domain if spec is not None and spec.domain else None
    ok = _compare(item.op, _state_text(state.effective), _state_text(wanted), order)
    return Judgement("pass" if ok else "fail", expected, actual, state.why, chain)


def _judge_glob(item: Item, subject: Subject) -> Judgement:
    """A feature glob: every matching feature judged as its own item, one answer for all."""
    expected = expected_text(item)
    names = sorted(n for n in subject.features
                   if fnmatch.fnmatchcase(n, item.subject) and n not in item.exclude)
    if not names:
        model = subject.resolution.model
        return Judgement("not-applicable", expected, "none",
                         f"no feature matches '{item.subject}' in Linux {model.version} "
                         f"({model.arch})")
    failed: list[tuple[str, Judgement]] = []
    machine: list[str] = []
    for name in names:
        got = _judge_feature(replace(item, subject=name), subject)
        if subject.features[name].effective is None:
            machine.append(name)
        elif got.status == "fail":
            failed.append((name, got))
    short = item.subject.split("*", 1)[0]
    depends = (f"; {len(machine)} depend on the machine: "
               + ", ".join(n.removeprefix(short) for n in machine)) if machine else ""
    if not failed:
        return Judgement("pass", expected, f"all {len(names) - len(machine)} met{depends}",
                         "every one the build and the command line decide is met")
    affects = tuple(n.removeprefix(short) for n, _j in failed)
    whys: list[str] = []
    for _name, j in failed:
        if j.why not in whys:
            whys.append(j.why)
    chain = tuple(f"{name}: {j.actual}: {j.why}" for name, j in failed)
    return Judgement("fail", expected, f"{len(failed)} of {len(names)} not met: "
                     + ", ".join(affects) + depends, "; ".join(whys), chain, affects)


def _state_text(state: State) -> str:
    if isinstance(state, bool):
        return "y" if state else "n"
    return str(state)


def _judge_cmdline(item: Item, subject: Subject) -> Judgement:
    expected = expected_text(item)
    name = fold_param(item.subject)
    last = None
    others = []
    for ev in subject.resolution.cmdline.events:
        if fold_param(ev.name) != name:
            continue
        if ev.stage in HANDLER_STAGES and ev.outcome in APPLIED:
            last = ev
        else:
            others.append(ev)
    if last is None:
        if others:
            ev = others[-1]
            return Judgement("fail", expected, f"{ev.raw}: {ev.outcome}",
                             f"command line word {ev.index} ({ev.raw}): {ev.reason}")
        return Judgement("fail", expected, "absent", f"no {item.subject}= on the command line")
    value = last.value if last.value is not None else ""
    ok = _compare(item.op, value, value_text(item.value))
    return Judgement("pass" if ok else "fail", expected, value or "(no value)",
                     f"command line word {last.index} ({last.raw}): {last.reason}")


def _judge_sysctl(item: Item, subject: Subject) -> Judgement:
    expected = expected_text(item)
    state = next((s for s in subject.resolution.sysctls if s.spec.path == item.subject), None)
    if state is None:
        return Judgement("not-applicable", expected, "unknown",
                         f"kpolicy has no model of sysctl {item.subject} "
                         "(rules/sysctls/security.toml)")
    chain = tuple(f"{s.kind}: {s.reason}" + (f" [{s.location}]" if s.location else "")
                  + (f" ({s.error})" if s.error else "") for s in state.sources)
    if state.effective is None:
        return Judgement("fail", expected, "absent", state.why, chain)
    ok = _compare(item.op, state.effective, value_text(item.value))
    return Judgement("pass" if ok else "fail", expected, state.effective, state.why, chain)


_JUDGES = {
    "kconfig": _judge_kconfig,
    "feature": _judge_feature,
    "cmdline": _judge_cmdline,
    "sysctl": _judge_sysctl,
}


def judge(item: Item, subject: Subject) -> Judgement:
    """ITEM's status on SUBJECT (before fixes and waivers)."""
    outside = _outside(item, subject)
    if outside is not None:
        return Judgement("not-applicable", expected_text(item), "", outside)
    if item.when is not None:
        kind, name, op, value = item.when
        cond = replace(item, kind=kind, subject=name, op=op, value=value, when=None)
        got = _JUDGES[kind](cond, subject)
        if got.status != "pass":
            return Judgement("not-applicable", expected_text(item), "",
                             f"applies only when {cond.require} (actual: {got.actual}): {got.why}")
    if item.glob:
        return _judge_glob(item, subject)
    return _JUDGES[item.kind](item, subject)
