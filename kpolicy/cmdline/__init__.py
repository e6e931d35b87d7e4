"""The kernel's command-line processing as a pure function: each word's fate, init's argv."""

from kpolicy.cmdline.output import LineEncoder, cmdline_json, cmdline_text, resolve_cmdlines_jsonl
from kpolicy.cmdline.passes import (
           CmdlineResult,
           Event,
           KernelParams,
           kernel_params,
           process_cmdline,
)

__all__ = ["CmdlineResult", "Event", "KernelParams", "LineEncoder", "cmdline_json", "cmdline_text",
           "kernel_params", "process_cmdline", "resolve_cmdlines_jsonl"]
