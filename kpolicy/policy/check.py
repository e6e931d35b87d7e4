"""A policy checked on one config, command line and sysctls: every item's result, with fixes.

The Checker holds what resolve needs (model, config, command line, machine) and re-resolves
with a proposed change applied, so that every fix it offers has been seen to pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Optional

from kpolicy.kconfig.evaluate import dependents, evaluate, reevaluate, user_values
from kpolicy.kconfig.model import KconfigModel
from kpolicy.kernel import has_new_choices
from kpolicy.params.semantics import Declaration, FeatureSpec
from kpolicy.policy.evaluate import Judgement, Status, Subject, judge
from kpolicy.policy.fix import Apply, Change, Fix, config_fix
from kpolicy.policy.schema import Item, Policy
from kpolicy.resolve.api import resolve
from kpolicy.resolve.features import NO_MACHINE, Machine
from kpolicy.resolve.inputs import ConfigInput
from kpolicy.resolve.model import ResolveModel
from kpolicy.sysctl.sysctld import Assignment, apply_sysctl_files


@dataclass(frozen=True)
class ItemResult:
    """One item's answer."""

    item: Item
    status: Status
    expected: str
    actual: str
    why: str
    provenance: tuple[str, ...] = ()
    fix: Optional[Fix] = None
    no_fix: str = ""  # why no fix is offered, for a failure without one
    waiver: str = ""


@dataclass(frozen=True)
class CheckResult:
    """A policy's results on one subject."""

    policy: Policy
    subject: Subject
    results: tuple[ItemResult, ...]
    warnings: tuple[str, ...] = ()

    def failed(self, fail_on: str) -> bool:
        """Whether an unwaived failure is at or above FAIL_ON (warning < error)."""
        rank = {"warning": 0, "error": 1}
        return any(r.status == "fail" and rank[r.item.severity] >= rank[fail_on]
                   for r in self.results)


@dataclass
class Checker:
    """Resolves the subject, and again with changes applied."""

    model: ResolveModel
    kconfig: KconfigModel
    complete: bool
    config: ConfigInput
    cmdline: str
    specs: tuple[FeatureSpec, ...]
    declarations: Optional[tuple[Declaration, ...]] = None
    machine: Machine = NO_MACHINE
    sysctl_files: tuple[Assignment, ...] = ()  # --sysctl: what systemd-sysctl applies after boot
    bootconfig: Optional[str] = None
    _base_eval: Optional[dict[str, str]] = None
    _dependents: Optional[dict[str, set[str]]] = None
    _applied: dict[Change, tuple[Subject, dict[str, tuple[str, str]]]] = field(
        default_factory=dict)

    def subject(self, config: Optional[ConfigInput] = None, cmdline: Optional[str] = None,
                sysctls: tuple[Assignment, ...] = ()) -> Subject:
        res = resolve(
            self.model, config or self.config, self.cmdline if cmdline is None else cmdline,
            bootconfig=self.bootconfig, specs=self.specs, machine=self.machine,
            declarations=self.declarations,
        )
        after = self.sysctl_files + sysctls
        if after:
            res = replace(res, sysctls=apply_sysctl_files(res.sysctls, after))
        return Subject(res, self.kconfig, self.complete, {s.name: s for s in self.specs})

    def _evaluate(self, raw: Mapping[str, str], changed: tuple[str, ...] = ()) -> dict[str, str]:
        """RAW valued as `make olddefconfig` does; with CHANGED (the symbols whose assignment
        differs from the config's), only what can depend on them is computed again."""
        types = {n: s.type for n, s in self.kconfig.symbols.items()}
        user = user_values(raw, types, lambda _msg: None)
        legacy = not has_new_choices(self.model.version_tuple)
        if self._base_eval is None or not changed:
            return dict(evaluate(self.kconfig.symbols, self.kconfig.choices, user,
                                 legacy=legacy).values)
        if self._dependents is None:
            self._dependents = dependents(self.kconfig.symbols, self.kconfig.choices)
        return reevaluate(self.kconfig.symbols, self.kconfig.choices, user, self._base_eval,
                          changed, self._dependents, legacy=legacy)

    def apply(self, change: Change) -> tuple[Subject, dict[str, tuple[str, str]]]:
        """The subject with CHANGE applied, and the config symbols that changed (old, new)."""
        if change not in self._applied:
            self._applied[change] = self._apply(change)
        return self._applied[change]

    def _apply(self, change: Change) -> tuple[Subject, dict[str, tuple[str, str]]]:
        config = self.config
        changed: dict[str, tuple[str, str]] = {}
        if change.config:
            if self._base_eval is None:
                self._base_eval = self._evaluate(self.config.values)
            raw = dict(self.config.values)
            for name, value in change.config:  # last in the file: it wins within a choice
                raw.pop(name, None)
                raw[name] = value
            after = self._evaluate(raw, tuple(n for n, _v in change.config))
            base = self._base_eval
            changed = {n: (base.get(n, "n"), v) for n, v in after.items()
                       if v != base.get(n, "n")}
            values = dict(self.config.values)
            values.update({n: new for n, (_old, new) in changed.items()})
            config = replace(self.config, values=values)
        cmdline = self.cmdline
        if change.cmdline:
            cmdline = " ".join([self.cmdline, *change.cmdline]).strip()
        sysctls = tuple(Assignment(k, v, "kpolicy fix", n, False, False)
                        for n, (k, v) in enumerate(change.sysctl, 1))
        return self.subject(config, cmdline, sysctls), changed


def _passes(item: Item, subject: Subject) -> bool:
    return judge(item, subject).status == "pass"


def _param_words(spec: FeatureSpec, item: Item) -> list[str]:
    """Command-line words that may give feature SPEC the item's value."""
    value = item.value
    words = []
    for param in spec.params:
        if isinstance(value, bool) or spec.value_type == "bool":
            on = value if isinstance(value, bool) else str(value) in ("1", "on", "y", "true")
            words += [f"{param}={'1' if on else '0'}", f"{param}={'on' if on else 'off'}"]
            if on:
                words.append(param)
        else:
            words.append(f"{param}={value}")
    return words


def _with_change(apply: Apply, extra: Change) -> Apply:
    """APPLY with EXTRA's command-line words and sysctls added to every (config) change."""
    def both(change: Change) -> tuple[Subject, dict[str, tuple[str, str]]]:
        return apply(Change(change.config, extra.cmdline, extra.sysctl))

    return both


def _find_fix(item: Item, judged: Judgement, checker: Checker,
              subject: Subject) -> tuple[Optional[Change], str]:
    """A change that makes ITEM pass, or (None, why there is none)."""
    apply = checker.apply
    if item.kind == "kconfig":
        if item.subject not in subject.kconfig.symbols and not subject.complete:
            return None, (f"the bundled model does not carry CONFIG_{item.subject}: "
                          "give --tree DIR for a config fix")
        got = config_fix(item, item.subject, subject.values.get(item.subject, "n").strip('"'),
                         subject, apply, _passes)
        if got is None:
            return None, "no config change Kconfig accepts makes it pass"
        return got[0], ""
    if item.kind == "cmdline":
        value = str(item.value) if not isinstance(item.value, bool) else "1"
        change = Change(cmdline=(f"{item.subject}={value}",))
        new, _ = apply(change)
        if _passes(item, new):
            return change, ""
        return None, f"{item.subject}={value} does not take effect: {judge(item, new).why}"
    if item.kind == "sysctl":
        value = str(item.value)
        # after boot when sysctl files are given (they apply last), else on the command line
        change = (Change(sysctl=((item.subject, value),)) if checker.sysctl_files
                  else Change(cmdline=(f"sysctl.{item.subject}={value}",)))
        new, _ = apply(change)
        if _passes(item, new):
            return change, ""
        sysctl = next((s for s in subject.resolution.sysctls if s.spec.path == item.subject),
                      None)
        for symbol in sysctl.spec.built if sysctl is not None else ():
            got = config_fix(item, symbol, "n", subject, _with_change(apply, change), _passes,
                             target="y")
            if got is not None:
                return Change(got[0].config, change.cmdline, change.sysctl), ""
        return None, judge(item, new).why
    # a feature: the command line first (no rebuild), then the build option and its default
    spec = subject.specs.get(item.subject)
    if spec is None:
        return None, judged.why
    state = subject.features.get(item.subject)
    if state is not None and state.built:
        for word in _param_words(spec, item):
            change = Change(cmdline=(word,))
            new, _ = apply(change)
            if _passes(item, new):
                return change, ""
    symbols: list[tuple[str, str]] = []
    if spec.build:
        symbols.append((spec.build, "y"))
    if spec.default_symbol:
        symbols.append((spec.default_symbol, "n" if spec.default_invert else "y"))
    for name, wanted in symbols:
        got = config_fix(item, name, "n", subject, apply, _passes, target=wanted)
        if got is not None:
            return got[0], ""
    if spec.build and state is not None and not state.built:
        # built, then set on the command line
        for word in _param_words(spec, item):
            got = config_fix(item, spec.build, "n", subject,
                             _with_change(apply, Change(cmdline=(word,))),
                             _passes, target="y")
            if got is not None:
                return Change(config=got[0].config, cmdline=(word,)), ""
    return None, "no config or command-line change found that makes it pass"


def run_check(policy: Policy, checker: Checker, *, fixes: bool = True) -> CheckResult:
    """Every item of POLICY judged on the checker's subject; failures get proven fixes."""
    subject = checker.subject()
    judged = [(item, judge(item, subject)) for item in policy.items]
    passing = {item.id for item, j in judged if j.status == "pass"}
    waivers = {w.id: w for w in policy.waivers}
    results = []
    for item, j in judged:
        fix: Optional[Fix] = None
        no_fix = ""
        if j.status == "fail" and fixes:
            change, no_fix = _find_fix(item, j, checker, subject)
            if change is not None:
                new, changed = checker.apply(change)
                set_now = {s for s, _v in change.config}
                drags = tuple(f"{n}: {old} -> {now}"
                              for n, (old, now) in sorted(changed.items()) if n not in set_now)
                breaks = tuple(other.id for other in policy.items
                               if other.id in passing and judge(other, new).status == "fail")
                fix = Fix(change, drags, breaks)
        status: Status = j.status
        waiver = ""
        if status == "fail" and item.id in waivers:
            status, waiver = "waived", waivers[item.id].reason
        results.append(ItemResult(item, status, j.expected, j.actual, j.why, j.provenance, fix,
                                  no_fix, waiver))
    warnings = tuple(subject.resolution.warnings) + tuple(subject.resolution.cmdline.warnings)
    return CheckResult(policy, subject, tuple(results), warnings)
