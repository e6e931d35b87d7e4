"""resolve's answers as JSON (a versioned contract) and as text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kpolicy.resolve.api import Resolution
from kpolicy.resolve.engine import FeatureState, state_word
from kpolicy.sysctl.boot import SysctlState

# 2: "options" (discovered, semantics unknown) apart from "features" (declared, exact)
JSON_SCHEMA_VERSION = 2


def resolution_json(res: Resolution) -> dict[str, Any]:
    """The JSON contract: schema_version, kernel, config, features, warnings + cmdline_json."""
    head, tail = _json_head_tail(res)
    features = {f.name: f.as_json() for f in res.features}
    features.update((s.name, s.as_json()) for s in res.sysctls)
    return {**head, "features": features,
            "options": {o.option: o.as_json() for o in res.options}, **tail}


def feature_member(f: FeatureState) -> str:
    """F's member of resolution_json's "features" object as compact JSON text ("name":{...})."""
    return f"{compact_json(f.name)}:{compact_json(f.as_json())}"


# what json.dumps(x, separators=(",", ":")) does
compact_json = json.JSONEncoder(separators=(",", ":")).encode


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
    for group, features in _grouped(res):
        lines.append(f"[{group}]")
        for f in features:
            lines += _feature_lines(f, width, verbose)
    lines += sysctl_text(res.sysctls, verbose=verbose)
    lines += _refused_words(res)
    if res.options:
        lines += ["", "discovered options (Kconfig value only; what they do at boot is not "
                  "declared in rules/params/):"]
        for o in res.options:
            lines.append(f"{o.option:<{width}}  {o.value}")
    if verbose:
        from kpolicy.cmdline import cmdline_text

        text = cmdline_text(res.cmdline).rstrip("\n")
        if text:
            lines += ["", "command line:", text]
    return "\n".join(lines) + "\n"


def _grouped(res: Resolution) -> list[tuple[str, list[FeatureState]]]:
    """RES's features by the group rules/params/ gives each, in the review's order."""
    from kpolicy.params.semantics import GROUPS, for_target, load_param_rules
    from kpolicy.resolve.lsm import FEATURE as LSM_FEATURE
    from kpolicy.resolve.lsm import GROUP as LSM_GROUP

    group_of = {s.name: s.group for s in for_target(load_param_rules().features,
                                                    res.model.srcarch,
                                                    res.model.version_tuple)}
    group_of[LSM_FEATURE] = LSM_GROUP
    return [(g, fs) for g in GROUPS
            if (fs := [f for f in res.features if group_of.get(f.name, "other") == g])]


def _feature_lines(f: FeatureState, width: int, verbose: bool) -> list[str]:
    """F's line, and with VERBOSE its chain default -> config -> command line -> effective."""
    lines = [f"{f.name:<{width}}  {state_word(f.effective):<15}  {f.why}"]
    if verbose:
        for s in f.sources:
            where = f" [{s.location}]" if s.location else ""
            state = "" if s.state is None else f" -> {state_word(s.state)}"
            lines.append(f"    {s.kind:<16}{s.reason}{where}{state}")
        for m in f.machine:
            lines.append(f"    machine         {m}")
    return lines


def _refused_words(res: Resolution) -> list[str]:
    """The command line's words the kernel refuses or does not know, shown without -v."""
    line = res.cmdline
    out = []
    if line.malformed_early:
        out.append("malformed early options: " + " ".join(line.malformed_early))
    if line.invalid:
        out.append("invalid values: " + " ".join(f"{p}={v}" for p, v in line.invalid))
    if line.unknown:
        out.append("unknown (passed to init): " + " ".join(line.unknown))
    return ["", *out] if out else []


def sysctl_text(states: Sequence[SysctlState], *, verbose: bool = False) -> list[str]:
    """The sysctls' lines, grouped under what they harden, each with its value and why."""
    if not states:
        return []
    width = max(len(s.name) for s in states)
    lines = []
    for group in sorted({s.spec.hardens for s in states}):
        lines.append(f"[{group}]")
        for s in (s for s in states if s.spec.hardens == group):
            value = "absent" if not s.built else ("?" if s.effective is None else s.effective)
            lines.append(f"{s.name:<{width}}  {value:<15}  {s.why}")
            for w in s.warnings:
                lines.append(f"    warning: {w}")
            if verbose:
                for src in s.sources:
                    where = f" [{src.location}]" if src.location else ""
                    lines.append(f"    {src.kind:<16}{src.reason}{where}")
    return lines
