"""The effective state of each feature: Kconfig default -> config -> command line -> effective.

Pure functions of (ResolveModel, config values, the command line's events, FeatureSpecs). The
command line itself is processed by kpolicy.cmdline; here each token that reached one of a
feature's parameters is read with that feature's declared parser and merge rule.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Optional, Union

from kpolicy.cmdline.lsm import HANDLER_STAGES, lsm_listed
from kpolicy.cmdline.passes import APPLIED, Event, Outcome, Stage
from kpolicy.kconfig.evaluate import eval_expr
from kpolicy.kconfig.model import KconfigModel
from kpolicy.kernel import fold_param
from kpolicy.params.semantics import Declaration, FeatureSpec, MachineDependency, State
from kpolicy.resolve.features import NO_MACHINE, Machine
from kpolicy.resolve.model import ResolveModel

SourceKind = Literal["kconfig-default", "config", "cmdline", "lsm", "machine"]
ConfigKind = Literal["kconfig-default", "config"]  # the Kconfig defaults, or the input config


@dataclass(frozen=True)
class Source:
    """One step of a feature's chain, with the reason it is what it is."""

    kind: SourceKind
    state: Optional[State]  # the state this step leaves (None: the step changed nothing)
    reason: str
    symbol: Optional[str] = None
    value: Optional[str] = None  # symbol value, or the token's value
    location: Optional[str] = None  # file:line of the symbol's definition
    config_line: Optional[int] = None  # line of the symbol's assignment in the config
    position: Optional[int] = None  # token index on the command line
    token: Optional[str] = None
    outcome: Optional[Union[Stage, Outcome]] = None  # cmdline: the word's fate, or where it went

    def as_json(self) -> dict[str, Any]:
        """This step as a JSON object (None fields left out)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class FeatureState:
    """What is in force for one feature, and the chain that led there."""

    name: str
    effective: Optional[State]  # None: depends on the machine (a fact resolve does not know)
    built: bool
    default: State  # the boot default this config builds in
    kconfig_default: Optional[State]  # the boot default with no input config (the tree's defaults)
    option: Optional[str]
    params: tuple[str, ...]
    sources: tuple[Source, ...]
    blocked_by: tuple[str, ...] = ()  # why the build option is off
    machine: tuple[str, ...] = ()  # what the running machine can still change
    why: str = ""

    def as_json(self) -> dict[str, Any]:
        """The feature's entry in resolve's JSON "features" object."""
        out: dict[str, Any] = {
            "effective": self.effective,
            "built": self.built,
            "default": self.default,
            "kconfig_default": self.kconfig_default,
            "option": self.option,
            "params": list(self.params),
            "why": self.why,
            "sources": [s.as_json() for s in self.sources],
        }
        if self.blocked_by:
            out["blocked_by"] = list(self.blocked_by)
        if self.machine:
            out["machine"] = list(self.machine)
        return out


def state_word(state: Optional[State]) -> str:
    """STATE as text: on/off for booleans, the kernel's word or number otherwise; "depends"
    for an outcome that depends on the machine (None)."""
    if state is None:
        return "depends"
    if isinstance(state, bool):
        return "on" if state else "off"
    return str(state)


# --- Kconfig side -----------------------------------------------------------------------------


def _truth(value: str) -> int:
    return {"y": 2, "m": 1}.get(value, 0)


def blocked_by(kconfig: KconfigModel, values: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Why NAME is off under VALUES: each unmet dependency, with its symbols' values and places."""
    sym = kconfig.symbols.get(name)
    if sym is None:
        return (f"{name} does not exist in Linux {kconfig.version} ({kconfig.arch})",)
    reasons = []
    if sym.direct_dep is not None:
        for term in sym.direct_dep.conjuncts():
            types = {n: kconfig.symbols[n].type for n in term.symbols() if n in kconfig.symbols}
            if eval_expr(term, values, types) == "n":
                refs = ", ".join(
                    f"{n}={values.get(n, 'n')} ({kconfig.symbols[n].location})"
                    if n in kconfig.symbols
                    else f"{n} is not defined"
                    for n in sorted(term.symbols())
                )
                reasons.append(f"depends on {term} at {sym.location}: {refs}")
    if not reasons:
        reasons.append(f"{name} is not set in the config (it could be: its dependencies are met)")
    return tuple(reasons)


def _config_source(
    kconfig: KconfigModel,
    values: Mapping[str, str],
    name: str,
    state: State,
    what: str,
    kind: ConfigKind,
    lines: Mapping[str, int],
) -> Source:
    sym = kconfig.symbols.get(name)
    value = values.get(name, "n")
    place = str(sym.location) if sym is not None else None
    if kind == "config":
        line = lines.get(name)
        origin = f"the config (line {line})" if line else "the config (not set there)"
    else:
        line, origin = None, "Kconfig's default"
    return Source(
        kind,
        state,
        f"{what}: {origin} has {name}={value}",
        symbol=name,
        value=value,
        location=place,
        config_line=line,
    )


def in_version(spec: FeatureSpec, kconfig: KconfigModel) -> FeatureSpec:
    """SPEC with its build option as KCONFIG's version names it (FeatureSpec.build_in)."""
    build = spec.build_in(kconfig.symbols)
    return spec if build == spec.build else replace(spec, build=build)


def boot_default(
    spec: FeatureSpec,
    kconfig: KconfigModel,
    values: Mapping[str, str],
    built: bool,
    kind: ConfigKind,
    lines: Mapping[str, int],
) -> tuple[State, Source]:
    """The boot state VALUES build in for SPEC before any command line, and where it comes from."""
    # a bool feature no parameter sets: its build option's state, unless it has no build option
    # of its own and the C source fixes its value (vulnerabilities.*: only overrides change it);
    # a build-only feature of words takes its default below (cfi: trap, or warn if permissive)
    if spec.build_only and spec.value_type == "bool" and (spec.build or
                                                          spec.default_value is None):
        state: State = built
        return state, _config_source(
            kconfig, values, spec.build or spec.name, state, "build option", kind, lines
        )
    if spec.default_symbol and spec.default_symbol in kconfig.symbols and spec.value_type == "int":
        raw = values.get(spec.default_symbol, "")
        try:
            number: State = int(raw, 0)
        except ValueError:
            number = spec.unbuilt
        return number, _config_source(kconfig, values, spec.default_symbol, number,
                                      "default symbol", kind, lines)
    if spec.default_symbol and spec.default_symbol in kconfig.symbols:
        on = _truth(values.get(spec.default_symbol, "n")) > 0
        state = (not on) if spec.default_invert else on
        what = "default companion" + (" (inverted)" if spec.default_invert else "")
        return state, _config_source(kconfig, values, spec.default_symbol, state, what, kind, lines)
    for member, word in spec.default_choice:
        if values.get(member) == "y":
            return word, _config_source(
                kconfig, values, member, word, "default choice", kind, lines
            )
        if member in spec.absent_means_y and member not in kconfig.symbols:
            return word, Source(kind, word, f"{member} is not in Linux {kconfig.version}: "
                                "the C source has no switch and always selects it")
    if spec.default_value is not None:
        if spec.default_choice:
            why = "no member of the default choice is set: the fallback"
        elif spec.default_symbol:
            why = f"{spec.default_symbol} is not in Linux {kconfig.version}: the C source fixes it"
        else:
            why = "fixed in the C source"
        return spec.default_value, Source(kind, spec.default_value, why)
    return spec.unbuilt, Source(kind, spec.unbuilt, "no default choice set: the code's fallback")


# --- command-line side ------------------------------------------------------------------------

# why a merge refuses a value the handler took
_REFUSED = {
    "raise-only": "it can only raise the level, already {state}",
    "enable-only": "once enabled it cannot be disabled (-EROFS)",
}


def _event_param(event: Event, spec_keys: Mapping[str, str]) -> Optional[str]:
    """The feature parameter EVENT reached (by its registration, else by name), if any."""
    reg = event.registration
    for name in ((reg.name,) if reg is not None else ()) + (event.name,):
        hit = spec_keys.get(fold_param(name))
        if hit is not None:
            return hit
    return None


def _handler_value(ev: Event) -> Optional[str]:
    """The value EV's handler reads (None: no "="). A __setup registered without "=" and reached
    by a longer word (6.1's "slub_debugx=-" for __setup("slub_debug")) gets the text after its
    name, which does not start with "=": that reads as the bare word."""
    reg = ev.registration
    if (ev.stage == "setup" and reg is not None and reg.kind == "__setup"
            and not reg.setup_has_equals and fold_param(ev.name) != fold_param(reg.name)):
        return None
    return ev.value


def _token_source(ev: Event, state: Optional[State], reason: str,
                  outcome: Union[Stage, Outcome]) -> Source:
    """The step command-line word EV makes (STATE None: it changed nothing)."""
    return Source("cmdline", state, reason, position=ev.index, token=ev.raw, value=ev.value,
                  outcome=outcome)


# what the config alone decides for a feature: built, the Kconfig default's state, the config's
# default state, why the build option is off, and the sources saying so
ConfigSide = tuple[bool, Optional[State], State, tuple[str, ...], tuple[Source, ...]]


def config_side(
    spec: FeatureSpec, model: ResolveModel, values: Mapping[str, str], lines: Mapping[str, int]
) -> ConfigSide:
    """What VALUES decide for SPEC before any command line (see resolve_feature)."""
    kconfig = model.kconfig
    spec = in_version(spec, kconfig)
    built = spec.build is None or values.get(spec.build) == "y" or (
        spec.modprobe and values.get(spec.build) == "m")
    sources: list[Source] = []
    kdefault: Optional[State] = None
    if spec.build is None or spec.build in kconfig.symbols:
        kbuilt = spec.build is None or kconfig.values.get(spec.build) == "y"
        kdefault, ksrc = boot_default(spec, kconfig, kconfig.values, kbuilt, "kconfig-default", {})
        sources.append(ksrc)
    default, csrc = boot_default(spec, kconfig, values, built, "config", lines)
    sources.append(csrc)
    blocked: tuple[str, ...] = ()
    if not built:
        assert spec.build is not None
        blocked = blocked_by(kconfig, values, spec.build)
        if values.get(spec.build) == "m":
            blocked = (
                f"{spec.build}=m: built as a module, so its parameters are not boot parameters",
            )
        sources.append(
            Source(
                "config",
                spec.unbuilt,
                f"{spec.build} is not built in: " + blocked[0],
                symbol=spec.build,
                value=values.get(spec.build, "n"),
            )
        )
    return built, kdefault, default, blocked, tuple(sources)


def resolve_feature(
    spec: FeatureSpec,
    model: ResolveModel,
    values: Mapping[str, str],
    events: Sequence[Event],
    lines: Mapping[str, int],
    machine: Machine = NO_MACHINE,
    side: Optional[ConfigSide] = None,
    others: Optional[Mapping[str, FeatureState]] = None,
) -> FeatureState:
    """SPEC's effective state for a config's VALUES and the command line's EVENTS.

    SIDE: config_side(SPEC, MODEL, VALUES, LINES), when the caller already has it. OTHERS: the
    resolved features SPEC.reads, by name (see resolve_in_order).
    """
    built, kdefault, default, blocked, config_sources = side or config_side(
        spec, model, values, lines
    )
    spec = in_version(spec, model.kconfig)
    sources = list(config_sources)
    keys = {fold_param(p): p for p in spec.params}
    raise_only = spec.merge == "raise-only"
    state: State = spec.domain[0] if raise_only and spec.domain else default
    priority: Optional[int] = None  # the priority of the parameter that set STATE
    version = model.version_tuple
    direct = [d for d in spec.handlers if d.kind == "direct" and d.applies(version)]
    direct = [d for d in direct if not d.arches or model.srcarch in d.arches]
    if direct and built:
        state = _direct_reads(direct, events, state, sources)
    accepted: dict[str, list[Optional[str]]] = {}  # per parameter, the values its handler took
    for ev in events:
        param = _event_param(ev, keys)
        if param is None:
            continue
        handler = spec.handler(param, version)
        if handler is None or handler.kind == "direct":
            continue  # no handler of this feature in this version, or read above
        loaded = _modprobe_word(spec, values, ev)
        if loaded is None and (not built or ev.stage not in HANDLER_STAGES):
            # the stage says where the token went instead (init, dropped, after "--")
            if ev.stage in HANDLER_STAGES:  # reached, but what it would set is not built
                why = f"{param}: {spec.build} is not built in, so the word changes nothing"
            else:
                why = ev.reason or f"never reaches the {param} handler"
            sources.append(_token_source(ev, None, why, ev.stage))
            continue
        if loaded is not None and not handler.semantics.takes(ev.value, version):
            why = (f"modprobe passes {ev.raw} to {loaded} when it loads it; the handler refuses "
                   f"it, so load_module fails and {loaded} does not load")
            sources.append(_token_source(ev, None, why, "invalid"))
            continue
        if loaded is None and ev.outcome not in APPLIED:  # the command-line engine refused it
            sources.append(_token_source(ev, None, f"{param}: value refused: {ev.reason}",
                                         ev.outcome))
            continue
        earlier = accepted.setdefault(param, [])
        value = _handler_value(ev)
        wanted = handler.semantics.state_of(value, version, tuple(earlier))
        earlier.append(value)
        if wanted is None:
            why = f"{param}: the handler takes {ev.value!r} but sets no state kpolicy knows"
            sources.append(_token_source(ev, None, why, "ignored"))
            continue
        if priority is not None and handler.priority < priority:
            why = f"{param}={state_word(wanted)} refused: a parameter of higher priority set it"
            sources.append(_token_source(ev, None, why, "refused"))
            continue
        merged = spec.merged(state, wanted)
        if merged is None:
            why = _REFUSED[spec.merge].format(state=state_word(state))
            sources.append(_token_source(ev, None, f"{param}={state_word(wanted)} refused: {why}",
                                         "refused"))
            continue
        state, priority = merged, handler.priority
        sources.append(_token_source(ev, state, f"{param} sets {state_word(state)}", "accepted"))
    if raise_only and spec.rank(default) > spec.rank(state):
        sources.append(
            Source(
                "config",
                default,
                f"the configured level {state_word(default)} is "
                "applied when the LSM starts and raises the level",
            )
        )
        state = default
    if spec.lsm and built:
        started, why = _lsm_started(spec, values, events)
        sources.append(Source("lsm", None if started else spec.unbuilt, why))
        if not started:
            state = spec.unbuilt
    outcome: Optional[State] = state
    depends = ""  # why the outcome depends on the machine, when it does
    if built:
        words = _words_before_dashes(events) if any(m.if_words for m in spec.machine) else None
        outcome, depends = _machine_steps(spec, machine, values, others or {}, state, sources,
                                          version, words)
    effective = outcome if built else spec.unbuilt
    notes = tuple(f"{m.when}: {state_word(m.effect)}" for m in spec.machine
                  if m.applies(version))
    return FeatureState(
        name=spec.name,
        effective=effective,
        built=built,
        default=default if built else spec.unbuilt,
        kconfig_default=kdefault,
        option=spec.build,
        params=spec.params,
        sources=tuple(sources),
        blocked_by=blocked,
        machine=notes,
        why=depends if effective is None else _why(spec, effective, built, blocked, sources),
    )


def _modprobe_word(spec: FeatureSpec, values: Mapping[str, str], ev: Event) -> Optional[str]:
    """The module kmod's modprobe hands EV's word (module.param=) to when it loads it, or
    None: SPEC's module is built as m (`modprobe`) and the kernel left the dotted word alone at
    boot (no built-in parameter of that name)."""
    if not spec.modprobe or spec.build is None or values.get(spec.build) != "m":
        return None
    if ev.source != "cmdline" or ev.stage != "dropped" or "." not in ev.name:
        return None
    return ev.name.split(".", 1)[0]


def _machine_steps(spec: FeatureSpec, machine: Machine, values: Mapping[str, str],
                   others: Mapping[str, FeatureState], state: State,
                   sources: list[Source], version: tuple[int, ...] = (999, 0),
                   words: Optional[frozenset[str]] = None,
                   ) -> tuple[Optional[State], str]:
    """STATE after SPEC's [[machine]] dependencies, in order (a later one that applies wins),
    each step added to SOURCES; None, with the reason, when an unknown fact leaves it open.
    WORDS: the command line's words before any "--" (for `if_words`)."""
    raise_only = spec.merge == "raise-only"
    outcome: Optional[State] = state
    depends = ""
    by_cmdline = _set_by_cmdline(sources)
    if by_cmdline and any(dep.unless_cmdline for dep in spec.machine):
        sources.append(Source("machine", None, "the command line set it: what the machine "
                              "would decide without it does not apply"))
    for dep in spec.machine:
        if dep.unless_cmdline and by_cmdline:
            continue
        if not dep.applies(version):
            continue
        if dep.if_words and not (words is not None and words.issuperset(dep.if_words)):
            continue
        if dep.if_state and not any(_same_state(state, s) for s in dep.if_state):
            continue  # the command line and overrides left another state
        if _same_state(outcome, dep.effect):
            continue  # applying it or not leaves the state as it is: an unknown fact is moot
        applies, why = _machine_applies(dep, machine, values, others)
        if applies is None:
            outcome, depends = None, why
            sources.append(Source("machine", None, why))
        elif applies and not (raise_only and outcome is not None
                              and spec.rank(dep.effect) <= spec.rank(outcome)):
            outcome = dep.effect
            sources.append(Source("machine", outcome, why))
        elif why:
            sources.append(Source("machine", None, why))
    return outcome, depends


def _words_before_dashes(events: Sequence[Event]) -> frozenset[str]:
    """The boot loader's command line split at whitespace, up to a lone "--" (as the early
    id-register override parser and the direct readers of `word-before-dashes` see it)."""
    raw = {ev.index: ev.raw for ev in events if ev.source == "cmdline"}
    words: set[str] = set()
    for index in sorted(raw):
        for word in raw[index].split():
            if word == "--":
                return frozenset(words)
            words.add(word)
    return frozenset(words)


def _same_state(a: Optional[State], b: State) -> bool:
    """Whether A is the state B (True is not 1 here)."""
    return a is not None and type(a) is type(b) and a == b


def _direct_reads(direct: Sequence[Declaration], events: Sequence[Event], state: State,
                  sources: list[Source]) -> State:
    """STATE after the words DIRECT's readers find in the boot loader's command line, split at
    whitespace: each reader looks for its word where its `match` says (a reader with `together`
    words acts on the word that completes its set)."""
    seen: set[int] = set()
    words: set[str] = set()  # the words so far, and those before a lone "--"
    before: set[str] = set()
    dashes = False
    done: set[int] = set()  # the readers with `together` words that have acted
    priority: Optional[int] = None  # the priority of the word that set STATE
    last = _last_options(direct, events)
    for ev in events:
        if ev.source != "cmdline" or ev.index in seen:
            continue
        seen.add(ev.index)
        here = ev.raw.split()
        for word in here:
            dashes = dashes or word == "--"
            if not dashes:
                before.add(word)
        words.update(here)
        for i, d in enumerate(direct):
            pool = before if d.match == "word-before-dashes" else words
            if d.match == "last-option":
                at, word = last.get(d.name, (-1, ""))
                if at == ev.index and not any(o.name == word for o in direct):
                    sources.append(Source(
                        "cmdline", None, f"{word}: the last {d.name}= ({d.source}) names no "
                        f"word it takes: every {d.name}= counts for nothing",
                        position=ev.index, token=ev.raw, outcome="ignored"))
                continue
            option = next((o for o in last if d.name.startswith(o + "=")), None)
            if option is not None and d.name in here and last[option][0] != ev.index:
                sources.append(Source(
                    "cmdline", None, f"{d.name}: not the last {option}= (only the last is "
                    "read)", position=ev.index, token=ev.raw, outcome="ignored"))
                continue
            if d.together:
                if i in done or not pool.issuperset((d.name, *d.together)):
                    continue
                done.add(i)
                what = " ".join((d.name, *d.together))
            elif d.match == "word-start":
                hit = next((w for w in here if w.startswith(d.name)), None)
                if hit is None:
                    continue
                what = hit if hit == d.name else f"{hit} (starts with {d.name})"
            elif d.name in here and d.name in pool:
                what = d.name
            else:
                continue
            assert d.semantics.sets is not None  # the loader requires it
            if priority is not None and d.priority < priority:
                # a reader the kernel consults first wins (6.12 ssb_parse_cmdline checks
                # nospec_store_bypass_disable before spec_store_bypass_disable=)
                sources.append(Source("cmdline", None,
                                      f"{what}: a word read with priority set it already",
                                      position=ev.index, token=ev.raw, outcome="refused"))
                continue
            state, priority = d.semantics.sets, d.priority
            sources.append(Source("cmdline", state,
                                  f"{what} read directly from the command line "
                                  f"({d.source}): sets {state_word(state)}",
                                  position=ev.index, token=ev.raw, outcome="accepted"))
    return state


def _last_options(direct: Sequence[Declaration],
                  events: Sequence[Event]) -> dict[str, tuple[int, str]]:
    """For each "last-option" reader of DIRECT, the index of the boot loader's word its
    cmdline_find_option() reads (the last starting "<name>="), and that word."""
    prefixes = {d.name + "=": d.name for d in direct if d.match == "last-option"}
    found: dict[str, tuple[int, str]] = {}
    if not prefixes:
        return found
    for ev in events:
        if ev.source != "cmdline":
            continue
        for word in ev.raw.split():
            for prefix, name in prefixes.items():
                if word.startswith(prefix) and ev.index >= found.get(name, (-1, ""))[0]:
                    found[name] = (ev.index, word)
    return found


def apply_overrides(states: Sequence[FeatureState], specs: Sequence[FeatureSpec],
                    version: tuple[int, ...],
                    settled: Optional[Mapping[str, FeatureState]] = None,
                    ) -> tuple[FeatureState, ...]:
    """STATES after each feature's overrides (in Linux VERSION): another feature's effective
    state forcing it. Each round starts again from STATES and reads the others' states of the
    round before, until nothing changes: an override may feed another, and one that held only
    while another feature was not yet forced is taken back (features are visited by name, not
    in the kernel's order). SETTLED: features already resolved, which overrides may read."""
    spec_of = {s.name: s for s in specs}
    fixed = dict(settled or {})
    current = {**fixed, **{f.name: f for f in states}}
    for _round in range(len(states) + 1):
        nxt = {}
        for base in states:
            f = base
            spec = spec_of.get(f.name)
            for o in spec.overrides if spec is not None and f.built else ():
                other = current.get(o.feature)
                if (other is None or not o.applies(version) or other.effective != o.equals
                        or f.effective == o.sets or (o.if_state and f.effective not in o.if_state)
                        or not _all_are(current, o.also)
                        or (o.unless_cmdline and _set_by_cmdline(base.sources))):
                    continue
                also = "".join(f" and {n} is {state_word(v)}" for n, v in o.also)
                why = (f"{o.feature} is {state_word(other.effective)}{also}: {o.source} sets "
                       f"{f.name} {state_word(o.sets)}")
                f = replace(f, effective=o.sets, why=why,
                            sources=(*f.sources, Source("config", o.sets, why)))
            nxt[f.name] = f
        stable = all(nxt[n].effective == current[n].effective for n in nxt)
        current = {**fixed, **nxt}
        if stable:
            break
    return tuple(current[f.name] for f in states)


def _set_by_cmdline(sources: Sequence[Source]) -> bool:
    """Whether a command-line word set the feature these SOURCES explain."""
    return any(s.kind == "cmdline" and s.state is not None for s in sources)


def _all_are(by_name: Mapping[str, FeatureState], wanted: Sequence[tuple[str, State]]) -> bool:
    """Whether every feature named in WANTED has its effective state there."""
    return all(n in by_name and by_name[n].effective == v for n, v in wanted)


def _machine_applies(
    dep: MachineDependency, machine: Machine, values: Mapping[str, str],
    others: Mapping[str, FeatureState],
) -> tuple[Optional[bool], str]:
    """Whether DEP holds on MACHINE, with OTHERS' effective states (False with no reason when
    the fact is unknown; None when it is and DEP says the outcome then depends on it)."""
    if dep.symbol and values.get(dep.symbol) != "y":
        return False, ""
    if dep.unless_symbol and values.get(dep.unless_symbol) == "y":
        return False, ""
    for name, wanted in dep.features:
        other = others.get(name)
        if other is None or (other.effective is not None and other.effective != wanted):
            shown = "not resolved" if other is None else f"is {state_word(other.effective)}"
            return False, f"{dep.when}: does not apply ({name} {shown})"
        if other.effective is None:
            return (None if dep.unknown == "depends" else False), \
                f"{dep.when}: depends on the machine ({name}: {other.why})"
    if dep.ram_below_mib is not None and machine.ram_mib is not None:
        # the kernel counts usable pages: always below the installed RAM, so "installed at
        # most N MiB" already means "fewer than N MiB usable"
        below = machine.ram_mib <= dep.ram_below_mib
        verdict = "applies" if below else "does not apply"
        return below, f"{dep.when}: {verdict} with {machine.ram_mib} MiB"
    if dep.secure_boot is not None and machine.secure_boot is not None:
        hit = machine.secure_boot == dep.secure_boot
        return hit, f"{dep.when}: {'applies' if hit else 'does not apply'}"
    if dep.kaslr_seed is not None and machine.kaslr_seed is not None:
        hit = machine.kaslr_seed == dep.kaslr_seed
        return hit, f"{dep.when}: {'applies' if hit else 'does not apply'}"
    cpu = [(machine.cpu_lacks(fact), lacks) for fact, lacks in
           ((dep.cpu_lacks, True), *((f, False) for f in dep.cpu_has)) if fact]
    if cpu and all(got is not None for got, _ in cpu):
        hit = all(got is want for got, want in cpu)
        return hit, f"{dep.when}: {'applies' if hit else 'does not apply'}"
    unknown = _unknown_fact(dep)
    if unknown is None:
        return (True, f"{dep.when}: applies") if dep.features else (False, "")
    if dep.unknown == "depends":
        return None, f"{dep.when}: depends on the {unknown}, which is unknown"
    return False, ""


def _unknown_fact(dep: MachineDependency) -> Optional[str]:
    """The machine fact DEP needs (named for people), or None when it needs none; called once
    the known facts are ruled out, so a fact named here is an unknown one."""
    if dep.ram_below_mib is not None:
        return "machine's memory"
    if dep.secure_boot is not None:
        return "boot's Secure Boot state"
    if dep.kaslr_seed is not None:
        return "boot's KASLR seed"
    if dep.cpu_lacks is not None or dep.cpu_has:
        return f"CPU ({', '.join(f for f in (dep.cpu_lacks, *dep.cpu_has) if f)})"
    return None


def _lsm_started(
    spec: FeatureSpec, values: Mapping[str, str], events: Sequence[Event]
) -> tuple[bool, str]:
    """Whether SPEC's LSM starts: early LSMs always; others when named by lsm= or CONFIG_LSM."""
    if spec.lsm_early and values.get(spec.lsm_early) == "y":
        return True, f"the {spec.lsm} LSM is an early LSM ({spec.lsm_early}=y): always started"
    return lsm_listed(spec.lsm or "", values, events)


def _why(
    spec: FeatureSpec,
    effective: State,
    built: bool,
    blocked: tuple[str, ...],
    sources: list[Source],
) -> str:
    if not built:
        return f"not built: {blocked[0]}"
    decisive = [s for s in sources if s.state is not None]
    last = decisive[-1] if decisive else None
    if last is None:
        return state_word(effective)
    if last.kind == "cmdline":
        return f"command line token {last.position} ({last.token})"
    if last.kind == "lsm":
        return last.reason
    refused = sum(1 for s in sources if s.kind == "cmdline" and s.state is None)
    tail = f"; {refused} command-line token(s) changed nothing" if refused else ""
    if last.symbol:
        return f"{last.symbol}={last.value}{tail}"
    return last.reason + tail


@functools.lru_cache(maxsize=1024)
def _fold_params(params: tuple[str, ...]) -> frozenset[str]:
    return frozenset(map(fold_param, params))


class ReadNames(Mapping[str, str]):
    """VALUES, recording the names looked up in them: what a result computed over them read.
    Iterating or sizing them reads everything (read() is then None)."""

    __slots__ = ("_names", "_values", "_whole")

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values
        self._names: set[str] = set()
        self._whole = False

    def __getitem__(self, name: str) -> str:
        self._names.add(name)
        return self._values[name]

    def get(self, name: str, default: Any = None) -> Any:
        self._names.add(name)
        return self._values.get(name, default)

    def __contains__(self, name: object) -> bool:
        self._names.add(name)  # type: ignore[arg-type]
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        self._whole = True
        return iter(self._values)

    def __len__(self) -> int:
        self._whole = True
        return len(self._values)

    def read(self) -> Optional[frozenset[str]]:
        """The names read, or None when every name may have been."""
        return None if self._whole else frozenset(self._names)


@dataclass
class FeatureMemo:
    """What resolve_features keeps across calls with the same SPECS, MODEL, VALUES, LINES and
    MACHINE (a batch of command lines): FEATURES, the features no event reaches (what the
    config alone decides, resolved once), SIDES, the config_side() of the others.

    With RECORD, the config symbols each entry read are kept in READS, so that a memo for a
    config differing from this one only in some symbols (BASE, CHANGED: `check` trying a
    config fix) takes over every entry that read none of them: each is a pure function of
    the values it read (ReadNames), so it is the same."""

    features: dict[int, FeatureState] = field(default_factory=dict)
    sides: dict[int, ConfigSide] = field(default_factory=dict)
    record: bool = False
    # (side?, id(spec)) -> the spec (ids are reused once an object is gone) and what it read
    reads: dict[tuple[bool, int], tuple[FeatureSpec, Optional[frozenset[str]]]] = field(
        default_factory=dict)
    base: Optional[FeatureMemo] = None
    changed: frozenset[str] = frozenset()

    def inherited(self, side: bool, spec: FeatureSpec) -> Any:
        """BASE's entry (a side or a feature) for SPEC, if it read none of CHANGED; else None."""
        base = self.base
        if base is None:
            return None
        key = id(spec)
        hit = (base.sides if side else base.features).get(key)
        owner, read = base.reads.get((side, key), (None, None))
        if hit is None or owner is not spec or read is None or not read.isdisjoint(self.changed):
            return None
        return hit

    def compute(self, side: bool, spec: FeatureSpec, values: Mapping[str, str],
                run: Callable[[Mapping[str, str]], Any]) -> Any:
        """RUN(VALUES), what it read recorded for SPEC when this memo records."""
        if not self.record:
            return run(values)
        names = ReadNames(values)
        got = run(names)
        self.reads[(side, id(spec))] = (spec, names.read())
        return got


def resolve_features(
    specs: Sequence[FeatureSpec],
    model: ResolveModel,
    values: Mapping[str, str],
    events: Sequence[Event],
    lines: Optional[Mapping[str, int]] = None,
    machine: Machine = NO_MACHINE,
    memo: Optional[FeatureMemo] = None,
) -> tuple[FeatureState, ...]:
    """Every feature of SPECS that exists on the model's arch, resolved (LINES: config lines).

    MEMO (see FeatureMemo), kept by the caller across calls with the same SPECS, MODEL,
    VALUES, LINES and MACHINE, holds what the config alone decides.
    """
    lines = lines or {}
    todo = [s for s in specs if (not s.arches or model.srcarch in s.arches)
            and s.applies(model.version_tuple)]
    if memo is None:
        return resolve_in_order(todo, model.version_tuple, lambda s, others: resolve_feature(
            s, model, values, events, lines, machine, others=others))
    # the parameter keys the events can reach (_event_param's two names), and whether lsm= did
    reached = set()
    for ev in events:
        if ev.registration is not None:
            reached.add(fold_param(ev.registration.name))
        reached.add(fold_param(ev.name))
    lsm = any(ev.name == "lsm" for ev in events)

    def one(s: FeatureSpec, others: Optional[Mapping[str, FeatureState]]) -> FeatureState:
        direct = any(d.kind == "direct" for d in s.handlers)  # any word may hold its word
        assert memo is not None
        key = id(s)
        if (s.reads or (s.lsm and lsm) or direct
                or not _fold_params(s.params).isdisjoint(reached)):
            side = memo.sides.get(key)
            if side is None:
                side = memo.inherited(True, s) or memo.compute(
                    True, s, values, lambda v: config_side(s, model, v, lines))
                memo.sides[key] = side
            return resolve_feature(s, model, values, events, lines, machine, side, others)
        hit = memo.features.get(key)
        if hit is None:
            hit = memo.inherited(False, s) or memo.compute(
                False, s, values, lambda v: resolve_feature(s, model, v, (), lines, machine))
            memo.features[key] = hit
        return hit

    return resolve_in_order(todo, model.version_tuple, one)


def resolve_in_order(
    todo: Sequence[FeatureSpec], version: tuple[int, ...],
    resolve_one: Callable[[FeatureSpec, Optional[Mapping[str, FeatureState]]], FeatureState],
) -> tuple[FeatureState, ...]:
    """TODO's features, in TODO's order, each resolved by RESOLVE_ONE(spec, others): first
    those whose [[machine]] dependencies read no other feature, with their overrides applied;
    then the others, given those states by name, each once the features it reads are resolved
    (arm64's vulnerabilities.meltdown reads kpti, which reads kaslr; a cycle is resolved as is),
    with their own overrides applied after their [[machine]] steps, as for the first ones
    (vulnerabilities.retbleed reads retbleed and is forced off by retbleed=off); then the first
    ones' overrides once more, reading the others too (retbleed's nosmt turns SMT off only
    where vulnerabilities.retbleed is mitigated)."""
    first = [s for s in todo if not s.reads]
    unforced = [resolve_one(s, None) for s in first]
    done = {f.name: f for f in apply_overrides(unforced, first, version)}
    pending = [s for s in todo if s.reads]
    later: dict[str, FeatureState] = {}
    while pending:
        waiting = {s.name for s in pending}
        ready = [s for s in pending if waiting.isdisjoint(s.reads)] or pending
        resolved = [resolve_one(s, done) for s in ready]
        later.update({f.name: f for f in apply_overrides(resolved, ready, version, done)})
        done.update(later)
        pending = [s for s in pending if s.name not in done]
    if later:  # the first ones' overrides again, now that they can read the later ones
        done.update({f.name: f for f in apply_overrides(unforced, first, version, later)})
    return tuple(done[s.name] for s in todo)
