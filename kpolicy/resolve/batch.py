"""Many command lines under one model and config (`resolve --cmdlines`), each answered as the
bytes resolution_json() would give, with what the config alone decides encoded once.

The features a line's words reach are memoized as templates, keyed by those words without
their token indices (only which are equal and which come first): resolving never reads an
index but to tell two events of one word apart, so the answer for `nokaslr` as token 3 is that
for token 7 with 3 written where 7 was.
A template is made by resolving with stand-in indices (large numbers no real line has), cut at
each place the text holds one, and checked by resolving again with other stand-ins: a text
that differs elsewhere (a word holding a stand-in's digits) is not memoized at all."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple, Optional

from kpolicy.cmdline.passes import CmdlineResult, Event, KernelParams
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

# A template: the text's literal parts and, between each two, the ordinal of the distinct
# token index written there (len(parts) == len(slots) + 1).
Template = tuple[tuple[bytes, ...], tuple[int, ...]]
# What one memoized computation answers: (feature number, template) pairs; LSM and SYSCTLS
# stand for the feature "lsm"'s member and the sysctls' members.
Answer = list[tuple[int, Template]]
LSM, SYSCTLS, COUPLED = -1, -2, -3

# the stand-in indices: the k-th smallest index of a key's events is FIRST + k, then SECOND + k
FIRST, SECOND = 3_141_592_653_000_000, 2_718_281_828_000_000
_DIGITS = re.compile(rb"\d+")
# A memoized answer: (feature, kind, parts, slots) for each member whose text is not the
# config's own; kind _LITERAL: no slots (parts[0] is the text), _ONE: every slot is the same
# distinct index (parts joined by it), _MANY: a template.
Memoized = list[tuple[int, int, tuple[bytes, ...], tuple[int, ...]]]
_LITERAL, _ONE, _MANY = 0, 1, 2
_UNMEMOIZED: Memoized = []  # the memo's value for a key whose template did not check out
_NUMBERS = [str(n).encode() for n in range(4096)]  # token indices as text


def _number(index: int) -> bytes:
    return _NUMBERS[index] if 0 <= index < len(_NUMBERS) else str(index).encode()


def _stand_ins(events: Sequence[Event], distinct: Sequence[int], base: int) -> list[Event]:
    """EVENTS with the k-th of their DISTINCT indices replaced by BASE + k."""
    where = {index: base + k for k, index in enumerate(distinct)}
    return [ev._replace(index=where[ev.index]) for ev in events]


def _cut(text: bytes, names: Mapping[bytes, int]) -> Template:
    """TEXT cut at each run of digits that is one of NAMES (a stand-in's text -> its ordinal)."""
    parts: list[bytes] = []
    slots: list[int] = []
    at = 0
    for m in _DIGITS.finditer(text):
        k = names.get(m.group())
        if k is not None:
            parts.append(text[at:m.start()])
            slots.append(k)
            at = m.end()
    parts.append(text[at:])
    return tuple(parts), tuple(slots)


def render(template: Template, numbers: Sequence[bytes]) -> bytes:
    """TEMPLATE with NUMBERS[k] written in each slot of ordinal k."""
    parts, slots = template
    if not slots:
        return parts[0]
    out = [parts[0]]
    for k, part in zip(slots, parts[1:]):
        out += (numbers[k], part)
    return b"".join(out)


def templates(make: Callable[[Sequence[Event]], list[tuple[int, bytes]]],
              events: Sequence[Event], distinct: Sequence[int]) -> Optional[Answer]:
    """MAKE's answer for EVENTS (whose distinct indices are DISTINCT, ascending) as templates,
    or None when the indices cannot be told from the rest of the text. The stand-ins keep the
    indices' order and equality, which the memo's key holds: MAKE may compare indices, but
    must not read them otherwise (test_batch_equals_resolve_* and the random lines of
    test_resolve_batch_random.py hold it to that)."""
    count = len(distinct)
    first = make(_stand_ins(events, distinct, FIRST))
    second = make(_stand_ins(events, distinct, SECOND))
    names = {str(FIRST + k).encode(): k for k in range(count)}
    others = [str(SECOND + k).encode() for k in range(count)]
    out: Answer = []
    for (i, text), (j, other) in zip(first, second, strict=True):
        template = _cut(text, names)
        if i != j or render(template, others) != other:
            return None
        out.append((i, template))
    return out


def coupled_parts(todo: Sequence[FeatureSpec], coupled: Sequence[int]) -> list[list[int]]:
    """COUPLED (indices into TODO) split into parts, each in TODO's order: two features are in
    one part when one's override or [[machine]] step names the other."""
    names = {todo[i].name: i for i in coupled}
    root = {i: i for i in coupled}

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    for i in coupled:
        spec = todo[i]
        for name in {n for o in spec.overrides for n in o.features} | set(spec.reads):
            j = names.get(name)
            if j is not None:
                root[find(i)] = find(j)
    parts: dict[int, list[int]] = {}
    for i in coupled:
        parts.setdefault(find(i), []).append(i)
    return list(parts.values())


class EventInfo(NamedTuple):
    """What BatchResolver's memos need to know of an event, by its fields but the index."""

    sid: int  # the number standing for those fields in the memos' keys
    # the memoized answers it takes part in (see BatchResolver._answer): the features outside
    # the coupled group it reaches, COUPLED - k for each memoized part k of the group that
    # reads it, LSM if the feature "lsm" does, SYSCTLS if the sysctls do
    tags: tuple[int, ...]
    registration: Any  # its registration (kept alive: the key holds its id)
    text: str  # its encoding in the answer's "events" but its index and position


class BatchResolver:
    """resolve() of many command lines under one MODEL, CONFIG, SPECS (distinct names) and
    MACHINE, each answer as the bytes of json.dumps(resolution_json(...), separators=(",", ":")):
    the features no event of a line reaches are what the config alone decides, so they are
    resolved and encoded once; the others are memoized as templates by the events reaching
    them, token indices left out (see the module's text)."""

    LIMIT = 100_000  # memoized answers kept before starting afresh (bounded memory)

    def __init__(
        self,
        model: ResolveModel,
        config: ConfigInput,
        specs: tuple[FeatureSpec, ...],
        kp: KernelParams,
        machine: Machine = NO_MACHINE,
    ) -> None:
        from kpolicy.cmdline import LineEncoder, process_cmdline

        self.process = process_cmdline

        self.model, self.config, self.kp, self.machine = model, config, kp, machine
        self.lines = config.lines or {}
        specs = for_target(specs, model.srcarch, model.version_tuple)  # one per feature name
        self.todo = [s for s in specs if (not s.arches or model.srcarch in s.arches)
                     and s.applies(model.version_tuple)]
        values = config.values
        alone = resolve_in_order(self.todo, model.version_tuple, lambda s, others: resolve_feature(
            s, model, values, (), self.lines, machine, others=others))
        self.base = [feature_member(state).encode() for state in alone]
        # features whose state other features or every word can change: resolved together
        sources = {n for s in self.todo for o in s.overrides for n in o.features}
        sources |= {n for s in self.todo for n in s.reads}
        self.coupled = [i for i, s in enumerate(self.todo)
                        if s.overrides or s.reads or s.name in sources
                        or any(d.kind == "direct" for d in s.handlers)]
        # The group's parts: features linked by an override or a read are in one part, and
        # resolve_in_order() gives a part alone the states it gives it within the group (no
        # feature of a part names one of another), so each part is memoized by its own events.
        self.parts = coupled_parts(self.todo, self.coupled)
        self.part_of = {i: k for k, part in enumerate(self.parts) for i in part}
        # The words a part's direct readers look for: a command-line event whose text holds
        # none of them (nor "--", which ends some readers' range) cannot change that part.
        self.needles = [tuple({w for i in part for d in self.todo[i].handlers
                               if d.kind == "direct" for w in (d.name, *d.together)} | {"--"})
                        for part in self.parts]
        # An LSM feature reads every event: then its part's answer is not memoized.
        self.part_memo = [not any(self.todo[i].lsm for i in part) for part in self.parts]
        self.unmemoized = [part for k, part in enumerate(self.parts) if not self.part_memo[k]]
        self.coupled_set = frozenset(self.coupled)
        self.coupled_index = {id(self.todo[i]): i for i in self.coupled}
        self.reads_all = frozenset(i for i in self.coupled if self.todo[i].lsm or any(
            d.kind == "direct" for d in self.todo[i].handlers))
        # the features' members joined, so that a run of untouched features is one slice:
        # gaps[p][i] is the text between feature p - 1's member (p = 0: the start) and feature
        # i's (i = len(base): the end), for p <= i; (features + 1)² slices made once, not
        # several per line
        blob = memoryview(b",".join(self.base))
        starts, ends, at = [], [0], 0
        for text in self.base:
            starts.append(at)
            at += len(text)
            ends.append(at)
            at += 1
        starts.append(len(blob))
        self.gaps = [[blob[end:start] for start in starts] for end in ends]
        self.by_key: dict[str, list[int]] = {}
        for i, spec in enumerate(self.todo):
            for key in set(map(fold_param, spec.params)):
                self.by_key.setdefault(key, []).append(i)
        self.lsm = [i for i, spec in enumerate(self.todo) if spec.lsm]
        self.sides: dict[int, ConfigSide] = {}
        self.memo: dict[tuple[Any, ...], Memoized] = {}  # templates, by position-free events
        self.rendered: dict[tuple[Any, ...], list[tuple[int, bytes]]] = {}  # see _answer
        self.seen: dict[tuple[str, Optional[str]], list[Any]] = {}  # answers, by command line
        self.infos: dict[tuple[Any, ...], EventInfo] = {}  # by the event's sig (see _body)
        self.sids = itertools.count()
        regs = model.catalog.registrations
        if isinstance(regs, LazyRegistrations):  # only the declared names need decoding
            regs = regs.named(frozenset(fold_param(p) for s in specs for p in s.params))
        stale = stale_declarations(feature_declarations(specs), regs, model.srcarch,
                                   model.version_tuple)
        self.warnings = (*config.warnings, *stale)
        options = model_options(model, specs, dict(config.values))
        self.options = compact_json({o.option: o.as_json() for o in options}).encode()
        self.tail = b'},"options":' + self.options + b","
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
        self.encoder = LineEncoder(compact=True)
        # the feature "lsm"'s member, by the events it reads (lsm=, security=, apparmor=, ...)
        self.lsms = shipped_lsms()
        self.lsm_names = lsm_params(self.lsms)
        self.lsm_none = self.sysctls_none = b""  # their texts for a line with no word they read
        # each memoized part's members, when no event reaches it, that are not the config's
        # own (resolve_in_order() gives a part alone what it gives it within the group: mostly
        # none, so that a line pays only for the parts its events reach)
        idle = {COUPLED - k: [(i, text) for i, text in self._make_coupled((), part)
                              if text != self.base[i]]
                for k, part in enumerate(self.parts) if self.part_memo[k]}
        self.idle = [(tag, texts) for tag, texts in idle.items() if texts]

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

    # --- what each memoized computation makes from events (stand-ins or real) ------------

    def _make_sysctls(self, result: CmdlineResult) -> Callable[[Sequence[Event]], list[
            tuple[int, bytes]]]:
        def make(events: Sequence[Event]) -> list[tuple[int, bytes]]:
            # boot_sysctls reads the events and the sysctl.* writes (all among EVENTS)
            states = boot_sysctls(self.sysctl_specs, self.model.version_tuple,
                                  self.config.values, self.lines,
                                  replace(result, events=tuple(events)))
            members = [f"{compact_json(s.name)}:{compact_json(s.as_json())}" for s in states]
            joined = ("," if self.todo and members else "") + ",".join(members)
            return [(SYSCTLS, joined.encode())]
        return make

    def _make_lsm(self, events: Sequence[Event]) -> list[tuple[int, bytes]]:
        state = lsm_feature(self.lsms, self.model.version_tuple, self.config.values, events,
                            self.lines)
        return [(LSM, (b"," if self.todo else b"") + feature_member(state).encode())]

    def _make_feature(self, i: int) -> Callable[[Sequence[Event]], list[tuple[int, bytes]]]:
        def make(events: Sequence[Event]) -> list[tuple[int, bytes]]:
            state = resolve_feature(self.todo[i], self.model, self.config.values, events,
                                    self.lines, self.machine, self._side(i))
            return [(i, feature_member(state).encode())]
        return make

    def _make_part(self, k: int) -> Callable[[Sequence[Event]], list[tuple[int, bytes]]]:
        def make(events: Sequence[Event]) -> list[tuple[int, bytes]]:
            return self._make_coupled(events, self.parts[k])
        return make

    def _make_coupled(self, events: Sequence[Event],
                      part: Sequence[int]) -> list[tuple[int, bytes]]:
        """The members of PART (of the coupled group) for EVENTS: resolved together."""
        reached: dict[int, list[Event]] = {}
        for ev in events:
            reg = ev.registration
            for i in self._reaching(ev.name, None if reg is None else reg.name):
                reached.setdefault(i, []).append(ev)

        def one(spec: FeatureSpec, others: Optional[Mapping[str, FeatureState]]) -> FeatureState:
            i = self.coupled_index[id(spec)]
            # the events resolve_feature reads: a direct reader's or an LSM's, every one
            seen = events if i in self.reads_all else reached.get(i, ())
            return resolve_feature(spec, self.model, self.config.values, seen, self.lines,
                                   self.machine, self._side(i), others)

        states = resolve_in_order([self.todo[i] for i in part], self.model.version_tuple, one)
        return [(i, feature_member(state).encode()) for i, state in zip(part, states)]

    # --- the memo ------------------------------------------------------------------------

    def _maker(self, tag: int, result: CmdlineResult) -> Callable[[Sequence[Event]], list[
            tuple[int, bytes]]]:
        """What makes the answer memoized under TAG, for a line whose result is RESULT."""
        if tag <= COUPLED:
            return self._make_part(COUPLED - tag)
        if tag == LSM:
            return self._make_lsm
        if tag == SYSCTLS:
            return self._make_sysctls(result)
        return self._make_feature(tag)

    def _answer(self, tag: int, events: Sequence[Event], js: Sequence[int],
                sids: Sequence[int], result: CmdlineResult) -> list[tuple[int, bytes]]:
        """The (feature, text) pairs of the answer TAG stands for (a feature, COUPLED - k for
        the coupled group's part k, LSM or SYSCTLS) to the events numbered JS of RESULT, but
        for members the config alone gives: memoized by TAG, the events' SIDS (their fields
        but the index, numbered) and which of them share an index; and kept rendered, by that
        and the indices (the same words at the same indices are answered alike)."""
        if len(js) == 1:  # most features: one word reaches them
            key: tuple[Any, ...] = (tag, sids[js[0]])
            distinct = [events[js[0]].index]
        else:
            indices = [events[j].index for j in js]
            distinct = sorted(set(indices))
            if indices == distinct:  # increasing: the events' order says it all
                order: tuple[int, ...] = ()
            else:  # each event's rank among the indices: which are equal, which come first
                rank = {index: k for k, index in enumerate(distinct)}
                order = tuple(rank[index] for index in indices)
            key = (tag, tuple(sids[j] for j in js), order)
        at = (*key, *distinct)  # for one event: (TAG, its sid, its index), as _body reads it
        out = self.rendered.get(at)
        if out is not None:
            return out
        answer = self.memo.get(key)
        if answer is None:
            answer = self._memoize(key, self._maker(tag, result), [events[j] for j in js],
                                   distinct)
        if answer is _UNMEMOIZED:
            return self._maker(tag, result)([events[j] for j in js])
        numbers = [_number(n) for n in distinct]
        out = [(i, parts[0] if kind == _LITERAL else numbers[slots[0]].join(parts)
                if kind == _ONE else render((parts, slots), numbers))
               for i, kind, parts, slots in answer]
        if len(self.rendered) >= self.LIMIT // 10:  # each holds texts, as a line's body does
            self.rendered.clear()
        self.rendered[at] = out
        return out

    def _memoize(self, key: tuple[Any, ...],
                 make: Callable[[Sequence[Event]], list[tuple[int, bytes]]],
                 events: Sequence[Event], distinct: Sequence[int]) -> Memoized:
        """MAKE's answer for EVENTS as templates (see templates()), kept under KEY."""
        made = templates(make, events, distinct)
        answer: Memoized
        if made is None:
            answer = _UNMEMOIZED
        else:  # members with the config's own text are left to the shared blob
            base = self.base
            answer = [(i, _LITERAL if not slots else _ONE if len(set(slots)) == 1 else _MANY,
                       parts, slots)
                      for i, (parts, slots) in made
                      if i < 0 or slots or parts[0] != base[i]]
        if len(self.memo) >= self.LIMIT:
            self.memo.clear()
        self.memo[key] = answer
        return answer

    def _side(self, i: int) -> ConfigSide:
        """config_side() of feature I, computed once."""
        side = self.sides.get(i)
        if side is None:
            side = self.sides[i] = config_side(self.todo[i], self.model, self.config.values,
                                               self.lines)
        return side

    def _reaching(self, name: str, registered: Optional[str]) -> tuple[int, ...]:
        """The features an event of NAME (of the parameter REGISTERED) reaches: those with the
        parameter under either name, and the LSMs for lsm= (which read every event anyway)."""
        found = [*self.by_key.get(fold_param(name or ""), ())]
        if registered is not None:
            found += [i for i in self.by_key.get(fold_param(registered), ()) if i not in found]
        if name == "lsm":
            found += [i for i in self.lsm if i not in found]
        return tuple(found)

    def _info(self, sig: tuple[Any, ...], ev: Event) -> EventInfo:
        """What the memos need to know of EV, whose fields but its index are SIG."""
        reg = ev.registration
        name = ev.name if reg is None else reg.name
        found = self._reaching(ev.name, None if reg is None else reg.name)
        parts = {self.part_of[i] for i in found if i in self.coupled_set}
        if ev.source == "cmdline":
            parts |= {k for k, needles in enumerate(self.needles)
                      if any(n in ev.raw for n in needles)}
        tags = [i for i in found if i not in self.coupled_set]
        tags += [COUPLED - k for k in sorted(parts) if self.part_memo[k]]
        if fold_param(name) in self.lsm_names:
            tags.append(LSM)
        if ev.stage == "sysctl" or ev.name == "lsm" or (
                reg is not None and fold_param(reg.name) in self.sysctl_params):
            tags.append(SYSCTLS)
        info = EventInfo(next(self.sids), tuple(tags), reg, self.encoder.rest_text(ev))
        if len(self.infos) >= self.LIMIT:
            self.infos.clear()
        self.infos[sig] = info
        return info

    def _body(self, cmdline: str, bootconfig: Optional[str]) -> list[Any]:
        result = self.process(self.kp, cmdline, bootconfig=bootconfig)
        events = result.events
        infos, rendered = self.infos, self.rendered
        texts: dict[int, bytes] = {}  # by feature, and LSM and SYSCTLS
        reached: dict[int, list[int]] = {}  # tag (see EventInfo) -> the events taking part
        shared: list[int] = []  # the tags more than one event takes part in
        sids: list[int] = []
        encoded: list[str] = []  # each event's text in the answer's "events"
        for j, ev in enumerate(events):
            index, position, raw, _name, _value, stage, outcome, reg, reason, source = ev
            # the event's fields but its index and position (its name and value are its raw
            # word's: tokenize() splits a word alike wherever it stands); the registration by
            # identity: kept alive by its info, and an info's number is never reused
            sig = (raw, stage, outcome, reason, source, id(reg))
            info = infos.get(sig)
            if info is None or info.registration is not reg:
                info = self._info(sig, ev)
            sid, tags, _reg, text = info
            sids.append(sid)
            # the compact encoder's event text (self.encoder.event_format), as an f-string:
            # this runs for every event of every line
            encoded.append(f'{{"index":{index},"position":{position},{text}')
            for tag in tags:
                js = reached.get(tag)
                if js is None:  # the first event reaching TAG (most are the only one)
                    reached[tag] = [j]
                    answer = rendered.get((tag, sid, index))
                    texts.update(self._answer(tag, events, (j,), sids, result)
                                 if answer is None else answer)
                else:
                    if len(js) == 1:
                        shared.append(tag)
                    js.append(j)
        for tag in shared:  # the first event's answer was written: replaced by all of theirs
            js = reached[tag]
            for i, _text in self._answer(tag, events, js[:1], sids, result):
                del texts[i]
            texts.update(self._answer(tag, events, js, sids, result))
        for tag, idle in self.idle:
            if tag not in reached:
                texts.update(idle)
        for part in self.unmemoized:
            texts.update(self._make_coupled(events, part))
        # most lines have no word the feature "lsm" or the sysctls read: their text is one
        lsm_text = texts.pop(LSM, None)
        if lsm_text is None:
            if not self.lsm_none:
                self.lsm_none = self._answer(LSM, events, (), sids, result)[0][1]
            lsm_text = self.lsm_none
        sysctl_text = texts.pop(SYSCTLS, None)
        if sysctl_text is None:
            if not self.sysctls_none:
                self.sysctls_none = self._answer(SYSCTLS, events, (), sids, result)[0][1]
            sysctl_text = self.sysctls_none
        out: list[Any] = [self.head]
        gaps, p = self.gaps, 0
        for i in sorted(texts):
            out += (gaps[p][i], texts[i])
            p = i + 1
        out += (gaps[p][-1], lsm_text, sysctl_text, self.tail,
                self.encoder.encode(result, self.warnings, encoded)[1:].encode(), b"\n")
        return out
