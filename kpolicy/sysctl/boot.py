"""The security sysctls at the start of init: C initializer or config, then the boot parameters
that set their variables, then the command line's `sysctl.*` writes (do_sysctl_args(), after
every other parameter), each step kept as the reason for the value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Optional

from kpolicy.cmdline.lsm import HANDLER_STAGES, lsm_listed
from kpolicy.cmdline.passes import APPLIED, CmdlineResult, Event
from kpolicy.kernel import fold_param
from kpolicy.sysctl.spec import SysctlSpec
from kpolicy.sysctl.write import write


@dataclass(frozen=True)
class SysctlSource:
    """One step of a sysctl's value, and why."""

    kind: str  # "source", "config", "param", "cmdline", "absent", "sysctl.d", "running"
    value: Optional[str]  # what the file reads after this step (None: no file / unknown)
    reason: str
    symbol: Optional[str] = None
    config_line: Optional[int] = None
    location: Optional[str] = None  # file:line (the tree's file, or a sysctl.d file's line)
    position: Optional[int] = None  # token index on the command line
    token: Optional[str] = None
    error: Optional[str] = None  # the write was refused (EINVAL, EPERM), or "replaced"

    def as_json(self) -> dict[str, Any]:
        """This step as JSON (None fields left out)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class SysctlState:
    """A sysctl's value and the chain that led there."""

    spec: SysctlSpec
    effective: Optional[str]  # as /proc/sys prints it; None: no such file, or unknown
    built: bool
    default: Optional[str]  # the boot value of the config alone
    sources: tuple[SysctlSource, ...]
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.feature

    @property
    def why(self) -> str:
        """The last step that decided the value."""
        decided = [s for s in self.sources if s.error is None]
        return (decided or self.sources)[-1].reason

    def as_json(self) -> dict[str, Any]:
        """The sysctl's entry in resolve's JSON "features" object."""
        out: dict[str, Any] = {
            "effective": self.effective,
            "built": self.built,
            "default": self.default,
            "hardens": self.spec.hardens,
            "option": _option(self.spec),
            "why": self.why,
            "sources": [s.as_json() for s in self.sources],
        }
        if self.spec.patch:
            out["patch"] = self.spec.patch
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def _option(spec: SysctlSpec) -> Optional[str]:
    return spec.initial_symbol or spec.initial_from


def _config_value(values: Mapping[str, str], name: str) -> str:
    return values.get(name, "n") or "n"


def _number(text: str) -> str:
    """A numeric Kconfig value (hex or decimal) as the kernel prints the int."""
    try:
        return str(int(text, 0))
    except ValueError:
        return text


def initial_source(spec: SysctlSpec, values: Mapping[str, str],
                   lines: Mapping[str, int], version: tuple[int, int, int]) -> SysctlSource:
    """Where SPEC's value at boot starts: the C initializer, or the config symbol it reads."""
    where = spec.evidence.file_for(version)
    patched = f" ({spec.patch})" if spec.patch else ""
    if spec.machine:
        return SysctlSource("machine", None, f"depends on the machine: {spec.machine}")
    if spec.initial is not None:
        return SysctlSource("source", spec.initial, f"initial value {spec.initial} in {where}: "
                            f"`{spec.evidence.text}`{patched}", location=where)
    name = spec.initial_symbol or spec.initial_from or ""
    val = _config_value(values, name)
    if spec.initial_from:
        value = _number(val)
        return SysctlSource("config", value, f"CONFIG_{name}={val} ({where})", symbol=name,
                            config_line=lines.get(name), location=where)
    value = spec.initial_y if val == "y" else spec.initial_n
    return SysctlSource("config", value, f"CONFIG_{name}={val} gives {value} ({where}){patched}",
                        symbol=name, config_line=lines.get(name), location=where)


def _absent(spec: SysctlSpec, values: Mapping[str, str], events: Sequence[Event],
            version: tuple[int, int, int]) -> Optional[str]:
    """Why SPEC's file does not exist at boot, or None."""
    if not spec.exists_in(version):
        return f"{spec.path} does not exist before Linux {spec.since}"
    for sym in spec.built:
        val = _config_value(values, sym)
        if val != "y":
            return (f"not built in: CONFIG_{sym}={val}" if val != "m" else
                    f"CONFIG_{sym}=m: the file appears only once the module is loaded")
    if spec.lsm:
        started, why = lsm_listed(spec.lsm, values, events)
        if not started:
            return f"registered by the {spec.lsm} LSM, which does not start: {why}"
    return None


def _param_ran(ev: Event, name: str) -> bool:
    reg = ev.registration
    return (ev.stage in HANDLER_STAGES and ev.outcome in APPLIED and reg is not None
            and fold_param(reg.name) == fold_param(name))


def boot_sysctls(specs: Sequence[SysctlSpec], version: tuple[int, int, int],
                 values: Mapping[str, str], lines: Mapping[str, int],
                 cmdline: CmdlineResult) -> tuple[SysctlState, ...]:
    """Every spec's value at the start of init for a config with VALUES and a command line."""
    writes = [ev for ev in cmdline.events if ev.stage == "sysctl" and ev.outcome == "accepted"]
    out = []
    for spec in specs:
        absent = _absent(spec, values, cmdline.events, version)
        mine = [(ev, val) for ev, (path, val) in zip(writes, cmdline.sysctls) if path == spec.path]
        if absent is not None:
            sources = [SysctlSource("absent", None, absent)]
            sources += [SysctlSource("cmdline", None, f"Failed to set sysctl parameter "
                                     f"'{spec.path}={val}': parameter not found",
                                     position=ev.index, token=ev.raw, error="ENOENT")
                        for ev, val in mine]
            out.append(SysctlState(spec, None, False, None, tuple(sources)))
            continue
        first = initial_source(spec, values, lines, version)
        sources = [first]
        value = first.value
        for ev in cmdline.events:
            for p in spec.params:
                if _param_ran(ev, p.name):
                    value = p.value
                    sources.append(SysctlSource("param", value, f"{p.name} sets {value}",
                                                position=ev.index, token=ev.raw))
        default = value
        bounds: tuple[Optional[int], Optional[int]] = (None, None)
        if spec.always_on_symbol and _config_value(values, spec.always_on_symbol) == "y":
            bounds = (1, 1)
        for ev, val in mine:
            # a machine-dependent value is unknown before: a taken write makes it known
            res = write(spec, value or "", val, bounds)
            if res.accepted:
                value = res.value
                why = f"{ev.raw} on the command line (sysctl.*, after the other parameters)"
                if res.short:
                    why += f"; {res.why}: the kernel logs a short write"
                sources.append(SysctlSource("cmdline", value, why, position=ev.index,
                                            token=ev.raw))
            else:
                sources.append(SysctlSource("cmdline", value, f"{ev.raw} refused "
                                            f"({res.error}): {res.why}", position=ev.index,
                                            token=ev.raw, error=res.error))
        shown = value
        if spec.always and any(_param_ran(ev, spec.always) for ev in cmdline.events):
            shown = spec.always_value
            sources.append(SysctlSource("param", shown, f"{spec.always} on the command line: "
                                        f"the file reads {shown} whatever was written"))
        out.append(SysctlState(spec, shown, True, default, tuple(sources)))
    return tuple(out)


def with_sources(state: SysctlState, effective: Optional[str],
                 more: Sequence[SysctlSource], warnings: Sequence[str] = ()) -> SysctlState:
    """STATE after more steps (sysctl.d, the running system)."""
    return replace(state, effective=effective, sources=state.sources + tuple(more),
                   warnings=state.warnings + tuple(warnings))
