"""CmdlineResult as JSON and as text, and the batch path (one JSON result per input line)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Optional

from kpolicy.cmdline.passes import CmdlineResult, Event, KernelParams, process_cmdline
from kpolicy.cmdline.tokens import to_display
from kpolicy.errors import KpolicyError
from kpolicy.params.model import Registration


def _registration_json(reg: Registration) -> dict[str, Any]:
    return {"kind": reg.kind, "name": reg.name, "location": str(reg.location),
            "handler": reg.handler, "built_if": reg.built_if}


def _event_rest(e: Event) -> dict[str, Any]:
    """An event's JSON fields other than its index and position."""
    reg = e.registration
    return {
        "raw": to_display(e.raw), "name": to_display(e.name),
        "value": None if e.value is None else to_display(e.value),
        "stage": e.stage, "outcome": e.outcome, "source": e.source, "reason": to_display(e.reason),
        "registration": None if reg is None else _registration_json(reg),
    }


def _summary_json(result: CmdlineResult) -> dict[str, Any]:
    return {
        "init": {"argv": list(result.init_argv), "envp": list(result.init_envp)},
        "unknown": list(result.unknown),
        "malformed_early": list(result.malformed_early),
        "invalid": [{"param": p, "value": v} for p, v in result.invalid],
        "sysctls": [{"path": p, "value": v} for p, v in result.sysctls],
        "errors": list(result.errors),
        "warnings": list(result.warnings),
        "cmdline": {"effective": result.effective, "proc_cmdline": result.proc_cmdline,
                    "truncated": result.truncated, "merge": result.merge},
    }


def cmdline_json(result: CmdlineResult) -> dict[str, Any]:
    """RESULT as kpolicy's JSON: init, unknown, malformed_early, invalid, cmdline, events."""
    out = _summary_json(result)
    out["events"] = [{"index": e.index, "position": e.position, **_event_rest(e)}
                     for e in result.events]
    return out


class LineEncoder:
    """cmdline_json() rendered straight to one line of text; an event's fields other than its
    index and position are encoded once per batch, since batches repeat the same words."""

    LIMIT = 200_000  # cached event encodings kept before starting afresh (bounded memory)

    def __init__(self, compact: bool = False) -> None:
        """COMPACT: json.dumps(..., separators=(",", ":")) text, else ensure_ascii=False's."""
        self.dumps = json.JSONEncoder(
            ensure_ascii=compact,
            check_circular=False,
            separators=(",", ":") if compact else (", ", ": "),
        ).encode
        self.item, self.key = (",", ":") if compact else (", ", ": ")
        self.rest: dict[tuple[Any, ...], str] = {}
        # the summary's text up to the command line's own strings, by the fields it holds:
        # most lines of a batch share one
        self.heads: dict[tuple[Any, ...], str] = {}
        self.string = json.encoder.encode_basestring_ascii if compact else (
            json.encoder.encode_basestring)
        k, i = self.key, self.item
        # an event's text from its index, position and rest_text()
        self.event_format = f'{{{{"index"{k}{{}}{i}"position"{k}{{}}{i}{{}}'

    def rest_text(self, e: Event) -> str:
        """E's encoding but its index and position (what event() caches)."""
        return self.dumps(_event_rest(e))[1:]

    def event(self, e: Event) -> str:
        """E's encoding."""
        key = (e.raw, e.name, e.value, e.stage, e.outcome, id(e.registration), e.reason,
               e.source)
        text = self.rest.get(key)
        if text is None:
            if len(self.rest) >= self.LIMIT:
                self.rest.clear()
            text = self.rest[key] = self.rest_text(e)
        return self.event_format.format(e.index, e.position, text)

    def encode(self, result: CmdlineResult, warnings: tuple[str, ...] = (),
               encoded: Optional[Iterable[str]] = None) -> str:
        """cmdline_json(RESULT) as text, WARNINGS put before its own warnings; ENCODED: each
        event's text (event()), when the caller has them."""
        k, i = self.key, self.item
        key = (result.init_argv, result.init_envp, result.unknown, result.malformed_early,
               result.invalid, result.sysctls, result.errors, warnings, result.warnings)
        head = self.heads.get(key)
        if head is None:
            # the summary with an empty effective command line, cut where that string starts
            summary = _summary_json(result)
            if warnings:
                summary["warnings"] = [*warnings, *summary["warnings"]]
            summary["cmdline"] = {"effective": ""}
            head = self.dumps(summary)[:-4]
            if len(self.heads) >= self.LIMIT:
                self.heads.clear()
            self.heads[key] = head
        string, effective, proc = self.string, result.effective, result.proc_cmdline
        shown = string(effective)
        tail = (f'{i}"proc_cmdline"{k}{shown if proc == effective else string(proc)}'
                f'{i}"truncated"{k}{"true" if result.truncated else "false"}'
                f'{i}"merge"{k}{string(result.merge)}}}')
        events = i.join(map(self.event, result.events) if encoded is None else encoded)
        return f'{head}{shown}{tail}{i}"events"{k}[{events}]}}'


def cmdline_text(result: CmdlineResult) -> str:
    """RESULT as text: one line per event, in the kernel's order, then what init receives."""
    lines = [f"command line ({result.merge}{', truncated' if result.truncated else ''}): "
             f"{result.effective}"]
    if result.proc_cmdline != result.effective:
        lines.append(f"/proc/cmdline: {result.proc_cmdline}")
    lines += [f"warning: {w}" for w in result.warnings]
    for e in result.events:
        where = f"#{e.index}" if e.source == "cmdline" else f"bootconfig #{e.index}"
        lines.append(f"{where} {to_display(e.raw)}: {e.stage} {e.outcome} - {to_display(e.reason)}")
    lines.append(f"init argv: {json.dumps(list(result.init_argv))}")
    lines.append(f"init envp: {json.dumps(list(result.init_envp))}")
    lines += [f"error: {err}" for err in result.errors]
    return "\n".join(lines) + "\n"


def resolve_cmdlines_jsonl(kp: KernelParams, lines: Iterable[str]) -> Iterator[str]:
    """One JSON result per LINES entry: a JSON string or {"cmdline", "bootconfig"?, "id"?}."""
    encoder = LineEncoder()
    seen: dict[tuple[str, Optional[str]], str] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise KpolicyError(f"not JSON: {exc.msg}", file="--cmdlines", line=n) from None
        except (ValueError, RecursionError) as exc:  # an integer of 5000 digits, [[[[...
            raise KpolicyError(f"not JSON: {exc}", file="--cmdlines", line=n) from None
        bootconfig: Optional[str] = None
        ident: Any = None
        if isinstance(item, dict):
            cmdline, bootconfig, ident = item.get("cmdline"), item.get("bootconfig"), item.get("id")
            if bootconfig is not None and not isinstance(bootconfig, str):
                raise KpolicyError("\"bootconfig\" must be a string", file="--cmdlines", line=n)
        else:
            cmdline = item
        if not isinstance(cmdline, str):
            raise KpolicyError("expected a JSON string or an object with a \"cmdline\" string",
                               file="--cmdlines", line=n)
        key = (cmdline, bootconfig)
        text = seen.get(key)  # fleets repeat the same command line: answer it once
        if text is None:
            try:
                result = process_cmdline(kp, cmdline, bootconfig=bootconfig)
            except KpolicyError as exc:
                raise KpolicyError(exc.message, file="--cmdlines", line=n) from None
            if len(seen) >= LineEncoder.LIMIT:
                seen.clear()
            text = seen[key] = encoder.encode(result)
        yield text if ident is None else f'{{"id": {encoder.dumps(ident)}, {text[1:]}'

