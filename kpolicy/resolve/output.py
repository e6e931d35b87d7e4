"""resolve's answers as JSON (a versioned contract) and as text."""

from __future__ import annotations

import json
from typing import Any

from kpolicy.resolve.api import Resolution
from kpolicy.resolve.engine import FeatureState, state_word

# 2: "options" (discovered, semantics unknown) apart from "features" (declared, exact)
JSON_SCHEMA_VERSION = 2


def resolution_json(res: Resolution) -> dict[str, Any]:
    """The JSON contract: schema_version, kernel, config, features, warnings + cmdline_json."""
    head, tail = _json_head_tail(res)
    return {**head, "features": {f.name: f.as_json() for f in res.features},
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
    for f in res.features:
        lines.append(f"{f.name:<{width}}  {state_word(f.effective):<15}  {f.why}")
        if verbose:
            for s in f.sources:
                where = f" [{s.location}]" if s.location else ""
                state = "" if s.state is None else f" -> {state_word(s.state)}"
                lines.append(f"    {s.kind:<16}{s.reason}{where}{state}")
            for m in f.machine:
                lines.append(f"    machine         {m}")
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
