"""The feature "lsm": which LSMs start, in the order /sys/kernel/security/lsm lists them.

The kernel builds the order from CONFIG_LSM or the last lsm= (which makes security= ignored):
the early LSMs first (DEFINE_EARLY_LSM: started before the rest), then LSM_ORDER_FIRST, the
list's names that are built, in the list's order, the LSM security= names (after it disabled
every other legacy major), then LSM_ORDER_LAST in link order. An LSM its own parameter turned
off (apparmor=0, selinux=0) does not start; of the exclusive LSMs only the first to start does.
rules/lsm/lsms.toml says which LSMs each version has; this module is the algorithm (6.1 and 6.12
security/security.c ordered_lsm_parse/ordered_lsm_init, 7.2 security/lsm_init.c lsm_order_parse:
the same outcome).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from kpolicy.cmdline.lsm import HANDLER_STAGES
from kpolicy.cmdline.passes import Event
from kpolicy.errors import KpolicyError
from kpolicy.kernel import fold_param, kstrtobool, kstrtoint
from kpolicy.params.semantics import Group, Version, in_versions
from kpolicy.resolve.engine import FeatureState, Source
from kpolicy.textio import TOML_LIMIT, entry_lines, parse_toml_text, read_text, reject_unknown_keys

FEATURE = "lsm"
GROUP: Group = "lsm"
Order = Literal["first", "mutable", "last"]
Parse = Literal["kstrtoul", "kstrtobool"]
_ORDERS: tuple[Order, ...] = ("first", "mutable", "last")
_PARSES: tuple[Parse, ...] = ("kstrtoul", "kstrtobool")
_FLAGS = ("legacy-major", "exclusive")
_KEYS = {"name", "build", "order", "early", "flags", "listed", "enable", "since", "until", "source"}


@dataclass(frozen=True)
class EnableParam:
    """An LSM's own boot switch (apparmor=, selinux=): the parameter and how it reads values."""

    param: str
    parse: Parse


@dataclass(frozen=True)
class LsmSpec:
    """One LSM of rules/lsm/lsms.toml."""

    name: str
    build: Optional[str]  # None: built with CONFIG_SECURITY
    order: Order
    early: Optional[str]
    legacy_major: bool
    exclusive: bool
    listed: bool
    enable: tuple[EnableParam, ...]
    since: Optional[Version]
    until: Optional[Version]
    source: str

    def built(self, values: Mapping[str, str]) -> bool:
        return self.build is None or values.get(self.build) == "y"


def _version(raw: object, where: str) -> Optional[Version]:
    if raw is None:
        return None
    parts = str(raw).split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise KpolicyError(f"{where}: a version is MAJOR.MINOR, not {raw!r}")
    return int(parts[0]), int(parts[1])


def parse_lsms(text: str, file: str) -> tuple[LsmSpec, ...]:
    """The [[lsm]] entries of TEXT (FILE names it in errors), each key checked."""
    data = parse_toml_text(text, file)
    out = []
    for raw, line in zip(data.get("lsm", []), entry_lines(text, "lsm")):
        where = f"{file}:{line}: [[lsm]]"
        reject_unknown_keys(raw, _KEYS, file=file, text=text, where="[[lsm]]: ", start=line)
        if "name" not in raw or "source" not in raw:
            raise KpolicyError("[[lsm]]: 'name' and 'source' are required", file=file, line=line)
        flags = tuple(raw.get("flags", ()))
        order = raw.get("order", "mutable")
        if order not in _ORDERS or set(flags) - set(_FLAGS):
            raise KpolicyError(f"{where}: bad order {order!r} or flags {list(flags)}")
        enable = []
        for item in raw.get("enable", ()):
            if set(item) != {"param", "parse"} or item["parse"] not in _PARSES:
                raise KpolicyError(f"{where}: an enable entry is {{param, parse}}, not {item}")
            enable.append(EnableParam(str(item["param"]), item["parse"]))
        out.append(LsmSpec(
            name=str(raw["name"]), build=raw.get("build"), order=order, early=raw.get("early"),
            legacy_major="legacy-major" in flags, exclusive="exclusive" in flags,
            listed=bool(raw.get("listed", True)), enable=tuple(enable),
            since=_version(raw.get("since"), where), until=_version(raw.get("until"), where),
            source=str(raw["source"]),
        ))
    return tuple(out)


def load_lsms(path: Optional[Path] = None) -> tuple[LsmSpec, ...]:
    """rules/lsm/lsms.toml (or PATH)."""
    if path is None:
        from kpolicy.resources import data_dir

        path = data_dir("rules") / "lsm" / "lsms.toml"
    return parse_lsms(read_text(path, what="LSM table", limit=TOML_LIMIT), str(path))


def _last_value(events: Sequence[Event], name: str) -> Optional[Event]:
    """The last word whose handler NAME ran (the kernel keeps the last value of these)."""
    hit = None
    for ev in events:
        reg = ev.registration.name if ev.registration is not None else ev.name
        if fold_param(reg) == fold_param(name) and ev.stage in HANDLER_STAGES:
            hit = ev
    return hit


def _switched_off(lsm: LsmSpec, events: Sequence[Event],
                  version: tuple[int, ...]) -> Optional[Event]:
    """The word that left LSM's own switch off (the last one that changed it), if any."""
    v3 = (version[0], version[1], version[2] if len(version) > 2 else 0)
    off: Optional[Event] = None
    for ev in events:
        if ev.stage not in HANDLER_STAGES:
            continue
        reg = fold_param(ev.registration.name if ev.registration is not None else ev.name)
        for switch in lsm.enable:
            if reg != fold_param(switch.param):
                continue
            if switch.parse == "kstrtoul":
                number = kstrtoint(ev.value, "ulong")
                state = None if number is None else number != 0
            else:
                # param_set_bool: no value is "1"
                state = kstrtobool(ev.value if ev.value is not None else "1", v3)
            if state is not None:
                off = None if state else ev
    return off


@dataclass(frozen=True)
class LsmOrder:
    """The outcome: the LSMs securityfs lists, in order, and why each other one is missing."""

    active: tuple[str, ...]
    dropped: tuple[tuple[str, str], ...]  # (name, why)
    origin: str  # where the list came from


def lsm_order(lsms: Sequence[LsmSpec], version: tuple[int, ...], values: Mapping[str, str],
              events: Sequence[Event]) -> LsmOrder:
    """Which LSMs start under VALUES (the config) and EVENTS (the command line), in order."""
    known = [s for s in lsms if in_versions(version, s.since, s.until) and s.built(values)]
    early = [s for s in known if s.early and values.get(s.early) == "y"]
    normal = [s for s in known if s not in early]
    chosen = _last_value(events, "lsm")
    legacy_ev = None if chosen is not None else _last_value(events, "security")
    legacy = legacy_ev.value or "" if legacy_ev is not None else None
    text = (chosen.value or "") if chosen is not None else values.get("LSM", "")
    origin = "lsm= on the command line" if chosen is not None else "CONFIG_LSM"
    dropped: list[tuple[str, str]] = []
    disabled: dict[str, str] = {}
    for s in normal:
        ev = _switched_off(s, events, version)
        if ev is not None:
            disabled[s.name] = f"turned off by {ev.raw}"
        elif legacy is not None and s.legacy_major and s.name != legacy:
            disabled[s.name] = f"security={legacy} disables the other legacy major LSMs"
    order: list[LsmSpec] = [s for s in normal if s.order == "first"]
    for name in text.split(","):
        order += [s for s in normal if s.order == "mutable" and s.name == name and s not in order]
    if legacy is not None:
        order += [s for s in normal if s.name == legacy and s not in order]
    order += [s for s in normal if s.order == "last" and s not in order]
    active = [s.name for s in early]
    exclusive: Optional[str] = None
    for s in order:
        if s.name in disabled:
            dropped.append((s.name, disabled[s.name]))
        elif s.exclusive and exclusive is not None:
            dropped.append((s.name, f"exclusive, and {exclusive} started first"))
        elif s.listed:
            exclusive = s.name if s.exclusive else exclusive
            active.append(s.name)
    dropped += [(s.name, f"not named in {origin}") for s in normal if s not in order]
    if chosen is not None and _last_value(events, "security") is not None:
        origin += " (security= is ignored when lsm= is given)"
    return LsmOrder(tuple(active), tuple(dropped), origin)


def lsm_params(lsms: Sequence[LsmSpec]) -> frozenset[str]:
    """The parameters the feature "lsm" reads (folded): lsm=, security= and the LSMs' switches."""
    return frozenset(fold_param(n) for n in ("lsm", "security", *(e.param for s in lsms
                                                                   for e in s.enable)))


def lsm_feature(lsms: Sequence[LsmSpec], version: tuple[int, ...], values: Mapping[str, str],
                events: Sequence[Event], lines: Mapping[str, int]) -> FeatureState:
    """The feature "lsm": the active LSMs as securityfs lists them ("a,b,c"), with its chain."""
    built = values.get("SECURITY") == "y"
    default = lsm_order(lsms, version, values, ()) if built else LsmOrder((), (), "")
    outcome = lsm_order(lsms, version, values, events) if built else default
    sources = [Source("config", ",".join(default.active),
                      f"CONFIG_LSM={values.get('LSM', '')!r} with the LSMs this config builds",
                      symbol="LSM", value=values.get("LSM"), config_line=lines.get("LSM"))]
    names = lsm_params(lsms)
    for ev in events:
        reg = ev.registration.name if ev.registration is not None else ev.name
        if fold_param(reg) in names:
            sources.append(Source("cmdline", None, f"{ev.raw}: {ev.stage} {ev.outcome}",
                                  position=ev.index, token=ev.raw, outcome=ev.outcome))
    why = (f"from {outcome.origin}" + "".join(f"; {n}: {w}" for n, w in outcome.dropped)
           if built else "CONFIG_SECURITY is not set: no LSM framework")
    return FeatureState(
        name=FEATURE, effective=",".join(outcome.active), built=built,
        default=",".join(default.active), kconfig_default=None, option="LSM",
        params=tuple(sorted(names)), sources=tuple(sources), why=why,
    )
