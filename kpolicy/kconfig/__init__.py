"""The Kconfig engine: a tree's Kconfig read with kconfiglib plus Linux 6.1-7.2 compat, evaluated
with the C semantics of scripts/kconfig, into kpolicy's own model (kpolicy.kconfig.model).

Public API (imported lazily, so `from kpolicy.kconfig.dotconfig import read_dotconfig` does not
pay for kconfiglib):

- load_model(tree, arch, *, config=None, toolchain=None, cache=None) -> KconfigModel
- load_models(tree, arches, *, cache, jobs=1) -> {arch: KconfigModel} (worker processes parse
  the arches the cache lacks)
- Toolchain, default_toolchain(), toolchain_from_config(path), shell_toolchain()
  (the profiles answering `$(shell,...)`; see kpolicy.kconfig.toolchain for the default one)
- write_dotconfig(model, path); read_dotconfig(path) -> DotConfig
- eval_expr(expr, values, types) -> "n" | "m" | "y"
- explain(model, name) -> Why; format_why(why) -> str
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_model": "kpolicy.kconfig.load",
    "load_models": "kpolicy.kconfig.load",
    "write_dotconfig": "kpolicy.kconfig.load",
    "Toolchain": "kpolicy.kconfig.toolchain",
    "default_toolchain": "kpolicy.kconfig.toolchain",
    "toolchain_from_config": "kpolicy.kconfig.toolchain",
    "shell_toolchain": "kpolicy.kconfig.toolchain",
    "DotConfig": "kpolicy.kconfig.dotconfig",
    "read_dotconfig": "kpolicy.kconfig.dotconfig",
    "eval_expr": "kpolicy.kconfig.evaluate",
    "Why": "kpolicy.kconfig.why",
    "explain": "kpolicy.kconfig.why",
    "format_why": "kpolicy.kconfig.why",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kpolicy.kconfig' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
