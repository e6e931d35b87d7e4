"""resolve's front door: pick a model, read a config and a command line, answer as JSON or text."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from kpolicy.cache import Cache, content_key
from kpolicy.kernel import fold_param
from kpolicy.resolve.bundle import LazyRegistrations, ResolveModel, pick_bundled, read_model
from kpolicy.resolve.engine import (
    FeatureState,
    config_side,
    resolve_feature,
    resolve_features,
    state_word,
)
from kpolicy.resolve.features import (
    NO_MACHINE,
    FeatureSpec,
    Machine,
    inferred_features,
    load_features,
    stale_declarations,
)
from kpolicy.textio import decode_text, gunzip, read_bytes

JSON_SCHEMA_VERSION = 1
_WORDS = re.compile(r'[^\s="]+')


@dataclass(frozen=True)
class ConfigInput:
    """A .config as resolve uses it: its values and what its header says."""

    path: Optional[str]  # None: the model's own Kconfig defaults
    values: Mapping[str, str]
    version: Optional[str]  # from the "Linux/<arch> <version> Kernel Configuration" header
    warnings: tuple[str, ...] = ()
    lines: Mapping[str, int] = field(default_factory=dict)  # line of each symbol's assignment


@dataclass(frozen=True)
class Resolution:
    """One resolve answer: the features and the command line's fate."""

    model: ResolveModel
    config: ConfigInput
    features: tuple[FeatureState, ...]
    cmdline: Any  # kpolicy.cmdline's CmdlineResult
    warnings: tuple[str, ...]


def read_config(path: Path) -> ConfigInput:
    """The .config at PATH (plain, or gzip'd like /proc/config.gz); errors name the line."""
    from kpolicy.kconfig.dotconfig import parse_dotconfig

    data = read_bytes(path, what="kernel config")
    if data[:2] == b"\x1f\x8b":
        data = gunzip(data, file=path, what="kernel config")
    dot = parse_dotconfig(decode_text(data, file=path, what="kernel config"), file=str(path))
    return ConfigInput(
        str(path), dict(dot.values), dot.header_version, tuple(dot.warnings), dict(dot.lines)
    )


def defaults_config(model: ResolveModel) -> ConfigInput:
    """The model's Kconfig defaults standing in for a config."""
    return ConfigInput(None, model.kconfig.values, model.version)


def running_machine() -> Machine:
    """This machine's usable RAM (/proc/meminfo MemTotal) and Secure Boot state, where readable."""
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    secure = None
    for var in Path("/sys/firmware/efi/efivars").glob("SecureBoot-*"):
        with contextlib.suppress(OSError):
            secure = var.read_bytes()[-1:] == b"\x01"
    return Machine(ram_mib=ram, secure_boot=secure)


def running_system_inputs() -> tuple[Optional[Path], Optional[Path], list[str]]:
    """This machine's config (/proc/config.gz, /boot/config-$(uname -r)) and /proc/cmdline."""
    notes = []
    config: Optional[Path] = None
    for candidate in (Path("/proc/config.gz"), Path(f"/boot/config-{os.uname().release}")):
        if candidate.is_file():
            config = candidate
            break
    if config is None:
        notes.append(
            "no /proc/config.gz or /boot/config-$(uname -r): using the newest bundled "
            "model's x86_64 Kconfig defaults"
        )
    cmdline = Path("/proc/cmdline")
    return config, (cmdline if cmdline.is_file() else None), notes


def choose_model(
    config: Optional[ConfigInput], model_file: Optional[Path], cache: Optional[Cache] = None
) -> tuple[ResolveModel, list[str]]:
    """MODEL_FILE's model, else the bundled one matching CONFIG's version (warning if not exact);
    CACHE keeps models decoded."""
    if model_file is not None:
        return read_model(model_file, cache), []
    path, warning = pick_bundled(config.version if config else None)
    model = read_model(path, cache)
    return model, [warning] if warning else []


def shipped_rules(cache: Optional[Cache] = None) -> tuple[tuple[FeatureSpec, ...], tuple[Any, ...]]:
    """The shipped feature and parameter declarations (rules/), parsed once per content in CACHE."""
    from kpolicy.cmdline.semantics import load_declarations
    from kpolicy.resources import data_dir

    def parse() -> tuple[tuple[FeatureSpec, ...], tuple[Any, ...]]:
        return load_features(), load_declarations()

    if cache is None or not cache.enabled:
        return parse()
    rules = data_dir("rules")
    files = sorted([*rules.glob("features/*.toml"), *rules.glob("params/*.toml")])
    key = content_key("rules", *((str(p), p.read_bytes()) for p in files))
    return cache.get_or_build("resolve-rules", key, parse, tuple)  # no TOML parser to import or run


def all_features(
    model: ResolveModel, declared: Optional[tuple[FeatureSpec, ...]] = None
) -> tuple[FeatureSpec, ...]:
    """The DECLARED features (default: rules/features/) plus those inferred from the model's
    discovered families."""
    declared = load_features() if declared is None else declared
    regs = model.catalog.registrations
    if isinstance(regs, LazyRegistrations):  # decode only the families' parameters
        regs = regs.named(frozenset(fold_param(p) for f in model.families for p in f.params))
    # a declared family may name an option this tree does not have: nothing to resolve there
    families = [f for f in model.families if f.option in model.kconfig.symbols]
    return declared + inferred_features(families, regs, declared)


def kernel_params_for(
    model: ResolveModel,
    config: ConfigInput,
    names: Optional[frozenset[str]] = None,
    declarations: Optional[tuple[Any, ...]] = None,
) -> Any:
    """kpolicy.cmdline's lookup tables for CONFIG under MODEL (reuse them across command lines).

    With NAMES, registrations not built in are kept only when NAMES holds their name: enough
    for command lines made of those names, and much cheaper to decode from a model file.
    """
    from kpolicy.cmdline import kernel_params

    catalog = model.catalog
    if names is not None and isinstance(catalog.registrations, LazyRegistrations):
        catalog = replace(catalog, registrations=catalog.registrations.select(config.values, names))
    return kernel_params(catalog, config.values, model.version_tuple, model.srcarch, declarations)


def resolve(
    model: ResolveModel,
    config: ConfigInput,
    cmdline: str,
    *,
    bootconfig: Optional[str] = None,
    specs: Optional[Sequence[FeatureSpec]] = None,
    warnings: Sequence[str] = (),
    kp: Any = None,
    machine: Machine = NO_MACHINE,
    declarations: Optional[tuple[Any, ...]] = None,
    memo: Optional[dict[Any, Any]] = None,
) -> Resolution:
    """The features in force for CONFIG booted with CMDLINE (and BOOTCONFIG) under MODEL.

    DECLARATIONS: rules/params/'s (see shipped_rules), read from there when not given.
    MEMO: a dict kept across calls with the same MODEL, CONFIG, SPECS and MACHINE (a batch),
    holding what the command line does not change.
    """
    from kpolicy.cmdline import process_cmdline

    specs = tuple(specs) if specs is not None else all_features(model)
    if kp is None:
        # Every word of the command lines is a name the registrations may be looked up by.
        text = " ".join((cmdline, bootconfig or "", config.values.get("CMDLINE", "")))
        names = frozenset(_WORDS.findall(fold_param(text)))
        kp = kernel_params_for(model, config, names, declarations)
    result = process_cmdline(kp, cmdline, bootconfig=bootconfig)
    notes = list(warnings) + list(config.warnings)
    stale = None if memo is None else memo.get("stale")
    if stale is None:
        regs = model.catalog.registrations
        if isinstance(regs, LazyRegistrations):  # only the declared names need decoding
            regs = regs.named(frozenset(fold_param(p) for s in specs for p in s.params))
        stale = stale_declarations(specs, regs, model.srcarch)
        if memo is not None:
            memo["stale"] = stale
    notes += stale
    features = resolve_features(
        specs,
        model,
        config.values,
        result.events,
        config.lines,
        machine,
        None if memo is None else memo.setdefault("features", {}),
        None if memo is None else memo.setdefault("sides", {}),
    )
    return Resolution(model, config, features, result, tuple(notes))


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
        kp: Any,
        machine: Machine = NO_MACHINE,
    ) -> None:
        from kpolicy.cmdline import LineEncoder

        self.model, self.config, self.kp, self.machine = model, config, kp, machine
        self.lines = config.lines or {}
        self.todo = [s for s in specs if not s.arches or model.srcarch in s.arches]
        values = config.values
        base = [
            feature_member(resolve_feature(s, model, values, (), self.lines, machine)).encode()
            for s in self.todo
        ]
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
        self.sides: dict[int, Any] = {}
        self.texts: dict[tuple[Any, ...], bytes] = {}  # touched features' members, by events
        self.seen: dict[tuple[str, Optional[str]], list[Any]] = {}  # answers, by command line
        self.hits: dict[Any, tuple[int, ...]] = {}  # _reaching(), by event name (and param's)
        regs = model.catalog.registrations
        if isinstance(regs, LazyRegistrations):  # only the declared names need decoding
            regs = regs.named(frozenset(fold_param(p) for s in specs for p in s.params))
        self.warnings = (*config.warnings, *stale_declarations(specs, regs, model.srcarch))
        head = {
            "schema_version": JSON_SCHEMA_VERSION,
            "kernel": {"version": model.version, "arch": model.arch, "model": model.origin},
            "config": config.path,
        }
        self.head = _COMPACT(head)[1:-1].encode() + b',"features":{'
        self.encoder = LineEncoder(compact=True)

    def pieces(self, cmdline: str, bootconfig: Optional[str], ident: Any) -> list[Any]:
        """The answer's line for CMDLINE (and BOOTCONFIG, ID) as bytes-like pieces, newline
        included, to be written in order."""
        first = b"{" if ident is None else b'{"id":' + _COMPACT(ident).encode() + b","
        key = (cmdline, bootconfig)
        body = self.seen.get(key)  # fleets repeat the same command line: answer it once
        if body is None:
            body = self._body(cmdline, bootconfig)
            if len(self.seen) >= self.LIMIT // 10:
                self.seen.clear()
            self.seen[key] = body
        return [first, *body]

    def _reaching(self, name: str, registered: Optional[str]) -> tuple[int, ...]:
        """The features an event of NAME (of the parameter REGISTERED) reaches: those with the
        parameter under either name, and the LSMs for lsm= (which read every event anyway)."""
        found = [*self.by_key.get(fold_param(name or ""), ())]
        if registered is not None:
            found += [i for i in self.by_key.get(fold_param(registered), ()) if i not in found]
        if name == "lsm":
            found += [i for i in self.lsm if i not in found]
        return tuple(found)

    def _body(self, cmdline: str, bootconfig: Optional[str]) -> list[Any]:
        from kpolicy.cmdline import process_cmdline

        result = process_cmdline(self.kp, cmdline, bootconfig=bootconfig)
        events = result.events
        reached: dict[int, list[Any]] = {}  # feature -> the events reaching its parameters
        hits = self.hits
        for ev in events:
            reg = ev.registration
            name = ev.name if reg is None else (ev.name, reg.name)
            hit = hits.get(name)
            if hit is None:
                hit = self._reaching(ev.name, None if reg is None else reg.name)
                if len(hits) >= self.LIMIT:
                    hits.clear()
                hits[name] = hit
            for i in hit:
                reached.setdefault(i, []).append(ev)
        out: list[Any] = [self.head]
        blob, at = self.blob, 0
        for i in sorted(reached):
            spec = self.todo[i]
            # the events' fields resolve_feature reads (an LSM's reads every event's)
            seen = events if spec.lsm else reached[i]
            key = (i, *((e.index, e.raw, e.name, e.value, e.stage, e.reason,
                         e.registration and e.registration.name) for e in seen))
            text = self.texts.get(key)
            if text is None:
                side = self.sides.get(i)
                if side is None:
                    side = self.sides[i] = config_side(
                        spec, self.model, self.config.values, self.lines
                    )
                state = resolve_feature(
                    spec, self.model, self.config.values, seen, self.lines, self.machine, side
                )
                if len(self.texts) >= self.LIMIT:
                    self.texts.clear()
                text = self.texts[key] = feature_member(state).encode()
            start = self.starts[i]
            if start > at:
                out.append(blob[at:start])
            out.append(text)
            at = self.ends[i]
        out.append(blob[at:])
        out.append(b"}," + self.encoder.encode(result, self.warnings)[1:].encode() + b"\n")
        return out


def resolution_json(res: Resolution) -> dict[str, Any]:
    """The JSON contract: schema_version, kernel, config, features, warnings + cmdline_json."""
    head, tail = _json_head_tail(res)
    return {**head, "features": {f.name: f.as_json() for f in res.features}, **tail}


def feature_member(f: FeatureState) -> str:
    """F's member of resolution_json's "features" object as compact JSON text ("name":{...})."""
    return f"{_COMPACT(f.name)}:{_COMPACT(f.as_json())}"


_COMPACT = json.JSONEncoder(separators=(",", ":")).encode  # what json.dumps(x, separators=...) does


def _json_head_tail(res: Resolution) -> tuple[dict[str, Any], dict[str, Any]]:
    """resolution_json's keys before "features", and those after it (cmdline_json's, in order)."""
    from kpolicy.cmdline import cmdline_json

    line = cmdline_json(res.cmdline)
    head = {
        "schema_version": JSON_SCHEMA_VERSION,
        "kernel": {"version": res.model.version, "arch": res.model.arch, "model": res.model.origin},
        "config": res.config.path,
    }
    return head, {**line, "warnings": list(res.warnings) + list(line.get("warnings", []))}


def resolution_text(res: Resolution, *, verbose: bool = False) -> str:
    """One line per feature (effective state and why); VERBOSE adds the chain of each."""
    width = max((len(f.name) for f in res.features), default=10)
    source = res.config.path or "Kconfig defaults"
    lines = [f"Linux {res.model.version} {res.model.arch} ({res.model.origin}); config: {source}"]
    for f in res.features:
        lines.append(f"{f.name:<{width}}  {state_word(f.effective):<15}  {f.why}")
        if verbose:
            for s in f.sources:
                where = f" [{s.location}]" if s.location else ""
                state = "" if s.state is None else f" -> {state_word(s.state)}"
                lines.append(f"    {s.kind:<16}{s.reason}{where}{state}")
            for m in f.machine:
                lines.append(f"    machine         {m}")
    if verbose:
        from kpolicy.cmdline import cmdline_text

        text = cmdline_text(res.cmdline).rstrip("\n")
        if text:
            lines += ["", "command line:", text]
    return "\n".join(lines) + "\n"
