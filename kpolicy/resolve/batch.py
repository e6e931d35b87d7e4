"""Many command lines under one model and config (`resolve --cmdlines`), each answered as the
bytes resolution_json() would give, with what the config alone decides encoded once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from kpolicy.cmdline.passes import Event, KernelParams
from kpolicy.kernel import fold_param
from kpolicy.params.semantics import FeatureSpec, for_target, stale_declarations
from kpolicy.resolve.api import feature_declarations, model_options, shipped_lsms
from kpolicy.resolve.engine import (
    ConfigSide,
    FeatureState,
    config_side,
    resolve_feature,
    resolve_in_order,
)
from kpolicy.resolve.features import NO_MACHINE, Machine
from kpolicy.resolve.inputs import ConfigInput
from kpolicy.resolve.lazy import LazyRegistrations
from kpolicy.resolve.lsm import lsm_feature, lsm_params
from kpolicy.resolve.model import ResolveModel
from kpolicy.resolve.output import JSON_SCHEMA_VERSION, compact_json, feature_member
from kpolicy.sysctl.boot import boot_sysctls
from kpolicy.sysctl.spec import load_sysctl_rules


class BatchResolver:
    """resolve() of many command lines under one MODEL, CONFIG, SPECS (distinct names) and
    MACHINE, each answer as the bytes of json.dumps(resolution_json(...), separators=(",", ":")):
    the features no event of a line reaches are what the config alone decides, so they are
    resolved and encoded once."""

    LIMIT = 100_000  # touched features' encodings kept before starting afresh (bounded memory)

    def __init__(
        self,
        model: ResolveModel,
        config: ConfigInput,
        specs: tuple[FeatureSpec, ...],
        kp: KernelParams,
        machine: Machine = NO_MACHINE,
    ) -> None:
        from kpolicy.cmdline import LineEncoder

        self.model, self.config, self.kp, self.machine = model, config, kp, machine
        self.lines = config.lines or {}
        specs = for_target(specs, model.srcarch, model.version_tuple)  # one per feature name
        self.todo = [s for s in specs if (not s.arches or model.srcarch in s.arches)
                     and s.applies(model.version_tuple)]
        values = config.values
        alone = resolve_in_order(self.todo, model.version_tuple, lambda s, others: resolve_feature(
            s, model, values, (), self.lines, machine, others=others))
        base = [feature_member(state).encode() for state in alone]
        # features whose state other features or every word can change: resolved together
        sources = {n for s in self.todo for o in s.overrides for n in o.features}
        sources |= {n for s in self.todo for n in s.reads}
        self.coupled = [i for i, s in enumerate(self.todo)
                        if s.overrides or s.reads or s.name in sources
                        or any(d.kind == "direct" for d in s.handlers)]
        coupled_specs = [self.todo[i] for i in self.coupled]
        # The words a direct reader of the group looks for: a command-line event whose text
        # holds none of them (nor "--", which ends some readers' range) cannot change it.
        self.needles = tuple({w for s in coupled_specs for d in s.handlers if d.kind == "direct"
                              for w in (d.name, *d.together)} | ({"--"} if self.coupled else set()))
        # An LSM feature reads every event: then the group's answer is not memoized.
        self.coupled_memo = not any(s.lsm for s in coupled_specs)
        self.coupled_set = frozenset(self.coupled)
        self.coupled_texts: dict[tuple[Any, ...], list[tuple[int, bytes]]] = {}
        self.coupled_index = {id(self.todo[i]): i for i in self.coupled}
        self.reads_all = frozenset(i for i in self.coupled if self.todo[i].lsm or any(
            d.kind == "direct" for d in self.todo[i].handlers))
        # each feature's member with the comma before it, so that a run of untouched features
        # is one slice of the joined text
        self.blob = memoryview(b",".join(base))
        self.starts = [0] * len(base)
        at = 0
        for i, text in enumerate(base):
            self.starts[i] = at
            at += len(text) + 1
        self.ends = [start + len(text) for start, text in zip(self.starts, base)]
        self.by_key: dict[str, list[int]] = {}
        for i, spec in enumerate(self.todo):
            for key in set(map(fold_param, spec.params)):
                self.by_key.setdefault(key, []).append(i)
        self.lsm = [i for i, spec in enumerate(self.todo) if spec.lsm]
        self.sides: dict[int, ConfigSide] = {}
        self.texts: dict[tuple[Any, ...], bytes] = {}  # touched features' members, by events
        self.seen: dict[tuple[str, Optional[str]], list[Any]] = {}  # answers, by command line
        self.hits: dict[Any, tuple[int, ...]] = {}  # _reaching(), by event name (and param's)
        regs = model.catalog.registrations
        if isinstance(regs, LazyRegistrations):  # only the declared names need decoding
            regs = regs.named(frozenset(fold_param(p) for s in specs for p in s.params))
        stale = stale_declarations(feature_declarations(specs), regs, model.srcarch,
                                   model.version_tuple)
        self.warnings = (*config.warnings, *stale)
        options = model_options(model, specs, dict(config.values))
        self.options = compact_json({o.option: o.as_json() for o in options}).encode()
        head = {
            "schema_version": JSON_SCHEMA_VERSION,
            "kernel": {"version": model.version, "arch": model.arch, "model": model.origin},
            "config": config.path,
        }
        self.head = compact_json(head)[1:-1].encode() + b',"features":{'
        # the sysctls' members, by the events that decide them (sysctl.*, lsm=, the parameters
        # that set a sysctl's variable): most lines have none, and share one encoding
        self.sysctl_specs = load_sysctl_rules()
        self.sysctl_params = frozenset(
            fold_param(n) for sp in self.sysctl_specs
            for n in (*(p.name for p in sp.params), *((sp.always,) if sp.always else ())))
        self.sysctl_texts: dict[tuple[Any, ...], bytes] = {}
        self.encoder = LineEncoder(compact=True)
        # the feature "lsm"'s member, by the events it reads (lsm=, security=, apparmor=, ...)
        self.lsms = shipped_lsms()
        self.lsm_names = lsm_params(self.lsms)
        self.lsm_texts: dict[tuple[Any, ...], bytes] = {}

    def pieces(self, cmdline: str, bootconfig: Optional[str], ident: Any) -> list[Any]:
        """The answer's line for CMDLINE (and BOOTCONFIG, ID) as bytes-like pieces, newline
        included, to be written in order."""
        first = b"{" if ident is None else b'{"id":' + compact_json(ident).encode() + b","
        key = (cmdline, bootconfig)
        body = self.seen.get(key)  # fleets repeat the same command line: answer it once
        if body is None:
            body = self._body(cmdline, bootconfig)
            if len(self.seen) >= self.LIMIT // 10:
                self.seen.clear()
            self.seen[key] = body
        return [first, *body]

    def _sysctls(self, result: Any) -> bytes:
        """The sysctls' members of RESULT's answer, with the comma before them."""
        params = self.sysctl_params
        key = tuple(
            (e.index, e.raw, e.name, e.value, e.stage, e.outcome,
             e.registration and e.registration.name)
            for e in result.events
            if e.stage == "sysctl" or e.name == "lsm"
            or (e.registration is not None and fold_param(e.registration.name) in params))
        text = self.sysctl_texts.get(key)
        if text is None:
            states = boot_sysctls(self.sysctl_specs, self.model.version_tuple,
                                  self.config.values, self.lines, result)
            members = [f"{compact_json(s.name)}:{compact_json(s.as_json())}" for s in states]
            joined = ("," if self.todo and members else "") + ",".join(members)
            if len(self.sysctl_texts) >= self.LIMIT:
                self.sysctl_texts.clear()
            text = self.sysctl_texts[key] = joined.encode()
        return text

    def _lsm(self, events: tuple[Event, ...]) -> bytes:
        """The feature "lsm"'s member of the answer for EVENTS, with the comma before it."""
        seen = [e for e in events if fold_param(
            e.registration.name if e.registration is not None else e.name) in self.lsm_names]
        key = tuple((e.index, e.raw, e.name, e.value, e.stage, e.outcome,
                     e.registration and e.registration.name) for e in seen)
        text = self.lsm_texts.get(key)
        if text is None:
            state = lsm_feature(self.lsms, self.model.version_tuple, self.config.values, seen,
                                self.lines)
            if len(self.lsm_texts) >= self.LIMIT:
                self.lsm_texts.clear()
            text = self.lsm_texts[key] = (b"," if self.todo else b"") + feature_member(
                state).encode()
        return text

    def _reaching(self, name: str, registered: Optional[str]) -> tuple[int, ...]:
        """The features an event of NAME (of the parameter REGISTERED) reaches: those with the
        parameter under either name, and the LSMs for lsm= (which read every event anyway)."""
        found = [*self.by_key.get(fold_param(name or ""), ())]
        if registered is not None:
            found += [i for i in self.by_key.get(fold_param(registered), ()) if i not in found]
        if name == "lsm":
            found += [i for i in self.lsm if i not in found]
        return tuple(found)

    def _coupled(self, events: tuple[Event, ...] | list[Event],
                 reached: dict[int, list[Event]]) -> list[tuple[int, bytes]]:
        """The coupled features' (index, member) pairs for EVENTS: resolved together, and
        kept by the events that can change them (those reaching a feature of the group, and
        the command-line words holding a direct reader's word), since most lines share them."""
        key: Optional[tuple[Any, ...]] = None
        if self.coupled_memo:
            key = tuple(
                (e.index, e.raw, e.name, e.value, e.stage, e.outcome, e.reason, e.source,
                 e.registration and e.registration.name)
                for e in events
                if any(i in self.coupled_set for i in self.hits_of(e))
                or (e.source == "cmdline" and any(n in e.raw for n in self.needles)))
            hit = self.coupled_texts.get(key)
            if hit is not None:
                return hit
        def one(spec: FeatureSpec, others: Optional[Mapping[str, FeatureState]]) -> FeatureState:
            i = self.coupled_index[id(spec)]
            # the events resolve_feature reads: a direct reader's or an LSM's, every one
            seen = events if i in self.reads_all else reached.get(i, ())
            return resolve_feature(spec, self.model, self.config.values, seen, self.lines,
                                   self.machine, self._side(i), others)

        states = resolve_in_order([self.todo[i] for i in self.coupled],
                                  self.model.version_tuple, one)
        pairs = [(i, feature_member(state).encode()) for i, state in zip(self.coupled, states)]
        if key is not None:
            if len(self.coupled_texts) >= self.LIMIT:
                self.coupled_texts.clear()
            self.coupled_texts[key] = pairs
        return pairs

    def _side(self, i: int) -> ConfigSide:
        """config_side() of feature I, computed once."""
        side = self.sides.get(i)
        if side is None:
            side = self.sides[i] = config_side(self.todo[i], self.model, self.config.values,
                                               self.lines)
        return side

    def hits_of(self, ev: Event) -> tuple[int, ...]:
        """The features EV reaches (_reaching(), memoized by the event's names)."""
        reg = ev.registration
        name = ev.name if reg is None else (ev.name, reg.name)
        hit = self.hits.get(name)
        if hit is None:
            hit = self._reaching(ev.name, None if reg is None else reg.name)
            if len(self.hits) >= self.LIMIT:
                self.hits.clear()
            self.hits[name] = hit
        return hit

    def _body(self, cmdline: str, bootconfig: Optional[str]) -> list[Any]:
        from kpolicy.cmdline import process_cmdline

        result = process_cmdline(self.kp, cmdline, bootconfig=bootconfig)
        events = result.events
        reached: dict[int, list[Event]] = {}  # feature -> the events reaching its parameters
        for ev in events:
            for i in self.hits_of(ev):
                reached.setdefault(i, []).append(ev)
        out: list[Any] = [self.head]
        blob, at = self.blob, 0
        coupled = dict(self._coupled(events, reached))
        for i in sorted(set(reached) | set(coupled)):
            if i in coupled:
                start = self.starts[i]
                if start > at:
                    out.append(blob[at:start])
                out.append(coupled[i])
                at = self.ends[i]
                continue
            spec = self.todo[i]
            # the events' fields resolve_feature reads (an LSM's reads every event's)
            seen = events if spec.lsm else reached[i]
            key = (i, *((e.index, e.raw, e.name, e.value, e.stage, e.outcome, e.reason,
                         e.registration and e.registration.name) for e in seen))
            text = self.texts.get(key)
            if text is None:
                state = resolve_feature(spec, self.model, self.config.values, seen, self.lines,
                                        self.machine, self._side(i))
                if len(self.texts) >= self.LIMIT:
                    self.texts.clear()
                text = self.texts[key] = feature_member(state).encode()
            start = self.starts[i]
            if start > at:
                out.append(blob[at:start])
            out.append(text)
            at = self.ends[i]
        out.append(blob[at:])
        out.append(self._lsm(events))
        out.append(self._sysctls(result))
        out.append(b'},"options":' + self.options + b","
                   + self.encoder.encode(result, self.warnings)[1:].encode() + b"\n")
        return out
