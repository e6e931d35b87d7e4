"""A policy checked on one config, command line and sysctls: every item's result, with fixes.

The Checker holds what resolve needs (model, config, command line, machine) and re-resolves
with a proposed change applied, so that every fix it offers has been seen to pass.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from kpolicy.cache import Cache, content_key
from kpolicy.cmdline.passes import KernelParams, with_config
from kpolicy.cmdline.tokens import tokenize
from kpolicy.kconfig.evaluate import (
    UserValue,
    dependents,
    evaluate,
    reevaluate,
    user_values,
)
from kpolicy.kconfig.model import KconfigModel
from kpolicy.kernel import fold_param, has_new_choices
from kpolicy.params.semantics import Declaration, FeatureSpec, for_target
from kpolicy.policy.evaluate import Judgement, Status, Subject, judge
from kpolicy.policy.fix import Apply, Change, Fix, config_fix
from kpolicy.policy.schema import Item, Policy
from kpolicy.resolve.api import (
    ResolveMemo,
    cmdline_names,
    kernel_params_for,
    kernel_params_reads,
    resolve,
)
from kpolicy.resolve.engine import FeatureMemo
from kpolicy.resolve.features import NO_MACHINE, Machine
from kpolicy.resolve.inputs import ConfigInput
from kpolicy.resolve.lsm import FEATURE as LSM_FEATURE
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
    found_affects: tuple[str, ...] = ()  # a feature glob's failing features

    @property
    def affects(self) -> tuple[str, ...]:
        """What this one failure stands for: the item's list, or the glob's failing features."""
        return self.found_affects or self.item.affects


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
    cache: Optional[Cache] = None  # keeps the config's evaluation across runs
    kconfig_key: str = ""  # a cache key of KCONFIG (a tree's), if it has one
    _base_eval: Optional[dict[str, str]] = None
    _dependents: Optional[dict[str, set[str]]] = None
    _types: Optional[dict[str, str]] = None
    _user: Optional[dict[str, UserValue]] = None
    _config_digest: str = ""
    _applied: dict[Change, tuple[Subject, dict[str, tuple[str, str]]]] = field(
        default_factory=dict)
    # the config's parameter tables, the names they know and the config symbols they read
    _params: Optional[tuple[KernelParams, frozenset[str], frozenset[str]]] = None
    _fix_names: frozenset[str] = frozenset()
    _memo: Optional[ResolveMemo] = None  # resolve's batch memo for the checker's config

    def __post_init__(self) -> None:
        # one declaration per feature name: the model's arch's (a name may be declared per arch)
        self.specs = for_target(self.specs, self.model.srcarch, self.model.version_tuple)

    def expect_words(self, words: Iterable[str]) -> None:
        """Command-line words fixes may add: the config's parameter tables, built once, then
        know them (a word they do not know needs tables of its own)."""
        self._fix_names |= cmdline_names(*words)

    def _kernel_params(self, config: ConfigInput, added: tuple[str, ...],
                       changed: Collection[str]) -> KernelParams:
        """The parameter tables of CONFIG, which differs from the checker's config in CHANGED,
        for the command line with the words ADDED: the config's own tables (built once) unless
        CHANGED holds a symbol they read or ADDED a parameter they do not know."""
        cmdline = self._cmdline(added)
        names = cmdline_names(cmdline, self.bootconfig or "", config.values.get("CMDLINE", ""))
        if self._params is None:
            base = cmdline_names(self.cmdline, self.bootconfig or "",
                                 self.config.values.get("CMDLINE", ""))
            known = base | self._fix_names | frozenset(
                fold_param(p) for spec in self.specs for p in spec.params)
            kp, reads = kernel_params_reads(self.model, self.config, known, self.declarations)
            self._params = (kp, known, reads)
        kp, known, reads = self._params
        # a word's value is not a name the kernel looks up: only what precedes its `=`
        plain = all(not any(c.isspace() or c == '"' for c in w) for w in added)
        needed = cmdline_names(*(w.split("=", 1)[0] for w in added)) if plain else names
        if "CMDLINE" in changed or not needed <= known or not reads.isdisjoint(changed):
            return kernel_params_for(self.model, config, names, self.declarations)
        return with_config(kp, config.values, changed) if changed else kp

    def _cmdline(self, added: tuple[str, ...]) -> str:
        """The command line with ADDED: before a lone `--`, after which every word is init's
        (a fix appended there would be an argument of init, not a kernel parameter)."""
        if not added:
            return self.cmdline
        end = _end_of_kernel_words(self.cmdline)
        return " ".join(w for w in (self.cmdline[:end].strip(), *added,
                                    self.cmdline[end:].strip()) if w)

    def subject(self, config: Optional[ConfigInput] = None, added: tuple[str, ...] = (),
                sysctls: tuple[Assignment, ...] = (),
                changed: Collection[str] = ()) -> Subject:
        """The checker's subject, or with CONFIG (differing in the symbols CHANGED), the words
        ADDED to the command line and SYSCTLS applied after boot."""
        config = config or self.config
        if self._memo is None:
            self._memo = ResolveMemo(features=FeatureMemo(record=True))
        # the checker's config: what it alone decides is resolved once, as in a batch; another
        # config (differing in CHANGED) shares the declarations the model lacks, and what the
        # checker's config decided from symbols outside CHANGED (FeatureMemo)
        memo = self._memo if config is self.config else ResolveMemo(
            stale=self._memo.stale,
            features=FeatureMemo(base=self._memo.features, changed=frozenset(changed)),
            base=self._memo)
        res = resolve(
            self.model, config, self._cmdline(added),
            bootconfig=self.bootconfig, specs=self.specs, machine=self.machine,
            declarations=self.declarations, kp=self._kernel_params(config, added, changed),
            memo=memo,
        )
        after = self.sysctl_files + sysctls
        if after:
            res = replace(res, sysctls=apply_sysctl_files(res.sysctls, after))
        return Subject(res, self.kconfig, self.complete, {s.name: s for s in self.specs})

    def _model_key(self) -> Optional[tuple[object, ...]]:
        """What identifies the Kconfig model in the cache: kconfig_key, else the bundled (or
        --model) model's file name, size and modification time, as the cache keys sources;
        None when not cached."""
        if self.cache is None or not self.cache.enabled:
            return None
        if self.kconfig_key:
            return (self.kconfig_key,)
        if self.complete:
            return None
        try:
            st = Path(self.model.origin).stat()
        except (OSError, ValueError):
            return None
        return (self.model.origin, st.st_size, st.st_mtime_ns, self.model.version,
                self.model.arch, self.kconfig.toolchain)

    def _index(self) -> tuple[dict[str, str], dict[str, set[str]]]:
        """Each symbol's type, and what to recompute when one changes (kconfig dependents()):
        built once per model, then cached (building them decodes every symbol)."""
        if self._types is None or self._dependents is None:
            def build() -> tuple[dict[str, str], dict[str, set[str]]]:
                return ({n: s.type for n, s in self.kconfig.symbols.items()},
                        dependents(self.kconfig.symbols, self.kconfig.choices))

            key = self._model_key()
            if key is None or self.cache is None:
                self._types, self._dependents = build()
            else:
                self._types, self._dependents = self.cache.get_or_build(
                    "check-kconfig", content_key("check-kconfig", *key), build, tuple)
        return self._types, self._dependents

    def _base(self) -> dict[str, str]:
        """The config valued as `make olddefconfig` does (cached per model and config)."""
        if self._base_eval is None:
            key = self._model_key()
            if self.complete:  # the tree's Kconfig already valued it so (command.py)
                self._base_eval = dict(self.config.values)
            elif key is None or self.cache is None:
                self._base_eval = self._evaluate()
            else:
                self._base_eval = self.cache.get_or_build(
                    "check-eval", content_key("check-eval", *key, self._config_key()),
                    self._evaluate, dict)
        return self._base_eval

    def _config_key(self) -> str:
        if not self._config_digest:
            self._config_digest = content_key("config", tuple(self.config.values.items()))
        return self._config_digest

    def _changes(self, assign: tuple[tuple[str, str], ...]) -> dict[str, tuple[str, str]]:
        """The config symbols whose value ASSIGN changes, (old, new): cached per model, config
        and ASSIGN (re-evaluating decodes every symbol that depends on the assigned ones)."""
        def build() -> dict[str, tuple[str, str]]:
            base = self._base()
            return {n: (base.get(n, "n"), v) for n, v in self._evaluate(assign).items()
                    if v != base.get(n, "n")}

        key = self._model_key()
        if key is None or self.cache is None:
            return build()
        return self.cache.get_or_build(
            "check-fix-eval", content_key("check-fix-eval", *key, self._config_key(), assign),
            build, dict)

    def _evaluate(self, assign: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
        """The config with ASSIGN appended (last in the file: it wins within a choice) valued
        as `make olddefconfig` does: only what can depend on the assigned symbols is computed
        again."""
        types, index = self._index()
        if self._user is None:
            self._user = user_values(self.config.values, types, lambda _msg: None)
        legacy = not has_new_choices(self.model.version_tuple)
        if not assign:
            return dict(evaluate(self.kconfig.symbols, self.kconfig.choices, self._user,
                                 legacy=legacy).values)
        user = dict(self._user)
        for name, _value in assign:
            user.pop(name, None)
        last = dict(assign)
        after = len(self.config.values)  # their lines come after every line of the config
        for name, got in user_values(last, types, lambda _msg: None).items():
            user[name] = replace(got, order=after + got.order)
        return reevaluate(self.kconfig.symbols, self.kconfig.choices, user, self._base(),
                          tuple(last), index, legacy=legacy)

    def apply(self, change: Change) -> tuple[Subject, dict[str, tuple[str, str]]]:
        """The subject with CHANGE applied, and the config symbols that changed (old, new)."""
        if change not in self._applied:
            self._applied[change] = self._apply(change)
        return self._applied[change]

    def _apply(self, change: Change) -> tuple[Subject, dict[str, tuple[str, str]]]:
        config = self.config
        changed: dict[str, tuple[str, str]] = {}
        if change.config:
            changed = self._changes(change.config)
            values = dict(self.config.values)
            values.update({n: new for n, (_old, new) in changed.items()})
            config = replace(self.config, values=values)
        sysctls = tuple(Assignment(k, v, "kpolicy fix", n, False, False)
                        for n, (k, v) in enumerate(change.sysctl, 1))
        return self.subject(config, change.cmdline, sysctls, changed), changed


def _end_of_kernel_words(cmdline: str) -> int:
    """Where the kernel's parameters end in CMDLINE: the offset of its first lone `--` (the
    length of CMDLINE when there is none, or when it is not plain ASCII)."""
    if not cmdline.isascii():
        return len(cmdline)
    lone = next((t for t in tokenize(cmdline) if t.raw == "--"), None)
    return lone.offset if lone is not None else len(cmdline)


def _passes(item: Item, subject: Subject) -> bool:
    return judge(item, subject).status == "pass"


def _param_words(spec: FeatureSpec, item: Item, actual: object = None) -> list[str]:
    """Command-line words that may give feature SPEC the item's value; for `contains`, the
    list in force (ACTUAL) with the wanted word added, so nothing else drops out of it."""
    value = item.value
    words = []
    if item.op == "contains" and isinstance(actual, str) and actual:
        listed = [w for w in actual.split(",") if w]
        words += [f"{param}={','.join([*listed, str(value)])}" for param in spec.params]
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
    state = subject.features.get(item.subject)
    if item.subject == LSM_FEATURE and item.op == "contains" and state is not None \
            and isinstance(state.effective, str):
        # the LSMs in force, in their order, with the wanted one appended (lsm= orders them)
        listed = [w for w in state.effective.split(",") if w]
        change = Change(cmdline=(f"lsm={','.join([*listed, str(item.value)])}",))
        new, _ = apply(change)
        if _passes(item, new):
            return change, ""
    if spec is None:
        return None, judged.why
    if state is not None and state.built:
        for word in _param_words(spec, item, state.effective):
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


def _fix_words(policy: Policy) -> list[str]:
    """The command-line words the fixes of POLICY's cmdline and sysctl items may add (those of
    features are the features' parameters, which the checker knows)."""
    words = [f"{item.subject}=" if item.kind == "cmdline" else f"sysctl.{item.subject}="
             for item in policy.items if item.kind in ("cmdline", "sysctl")]
    if any(item.kind == "feature" and item.subject == LSM_FEATURE for item in policy.items):
        words.append("lsm=")
    return words


def run_check(policy: Policy, checker: Checker, *, fixes: bool = True) -> CheckResult:
    """Every item of POLICY judged on the checker's subject; failures get proven fixes."""
    if fixes:
        checker.expect_words(_fix_words(policy))
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
                                  no_fix, waiver, j.affects))
    warnings = tuple(subject.resolution.warnings) + tuple(subject.resolution.cmdline.warnings)
    return CheckResult(policy, subject, tuple(results), warnings)
