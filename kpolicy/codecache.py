"""Compiled dataclass methods, kept across runs.

The standard dataclasses module writes the source of each dataclass's methods (__init__,
__repr__, __eq__, __hash__, and __setattr__/__delattr__ when frozen) and compiles it when the
class is defined, on every run: for the ~50 dataclasses `kpolicy resolve` imports that was ~40 %
of its start-up (README "Speed"). install() makes the module's exec() take the code compiled
from the very same source text by an earlier run; nothing else changes (same text, same
compiler flags, same globals, so the same methods). The code is kept in the kpolicy cache,
sealed with its key like every entry (kpolicy.cache): marshalled code is code, so a file
kpolicy did not write is never loaded. `--no-cache` leaves dataclasses alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
import sys
from pathlib import Path
from types import CodeType
from typing import Any, Optional

from kpolicy.cache import read_entry, seal, unseal
from kpolicy.errors import KpolicyError
from kpolicy.textio import atomic_write_bytes

MAX_CODES = 4096  # kpolicy defines a few hundred methods; past this, start over (old versions)


class CodeCache:
    """exec() for dataclasses: source texts compiled once, kept in FILE under the cache ROOT."""

    def __init__(self, root: Path) -> None:
        self.root = root
        tag = hashlib.sha256(sys.version.encode()).hexdigest()[:16]  # bytecode is per version
        self.file = root / "dataclass-code" / f"{tag}.marshal"
        self.codes: dict[str, CodeType] = {}
        self.compiled = 0  # texts compiled by this process (to save)
        data = read_entry(self.file)
        payload = unseal(root, data) if data is not None else None
        if payload is not None:
            try:
                codes = marshal.loads(payload)
            except (EOFError, ValueError, TypeError):
                codes = None
            if isinstance(codes, dict):
                self.codes = {k: v for k, v in codes.items()
                              if isinstance(k, str) and isinstance(v, CodeType)}

    def exec(self, source: Any, globals: Optional[dict[str, Any]] = None,
             locals: Optional[dict[str, Any]] = None) -> None:
        """builtins.exec as dataclasses calls it, with a str SOURCE compiled at most once."""
        if globals is None:  # exec's default: the caller's globals, i.e. the dataclasses module's
            globals = vars(dataclasses)
        if isinstance(source, str):
            code = self.codes.get(source)
            if code is None:
                # dont_inherit: compiled as exec() in dataclasses would, without this module's
                # `from __future__ import annotations` (which would turn annotations to strings)
                code = compile(source, "<string>", "exec", dont_inherit=True)
                self.codes[source] = code
                self.compiled += 1
            source = code
        exec(source, globals, locals)  # dataclasses' own generated code, as it would run it

    def save(self) -> None:
        """Keep what this process compiled for the next run (silently skipped if unwritable)."""
        if not self.compiled:
            return
        codes = self.codes if len(self.codes) <= MAX_CODES else {}
        sealed = seal(self.root, marshal.dumps(codes))
        if sealed is None:
            return
        try:
            atomic_write_bytes(self.file, sealed)
        except KpolicyError:
            return
        self.compiled = 0


_INSTALLED: list[CodeCache] = []


def install(root: Path) -> CodeCache:
    """Make dataclasses use a CodeCache kept under ROOT (patched once per process; a later
    call, as from another main() in the same process, only moves where it is saved)."""
    if not _INSTALLED:
        _INSTALLED.append(CodeCache(root))
        vars(dataclasses)["exec"] = _INSTALLED[0].exec  # shadows the builtin in that module only
    elif _INSTALLED[0].root != root:
        cache = _INSTALLED[0]
        cache.root, cache.file = root, root / cache.file.parent.name / cache.file.name
        cache.compiled = max(cache.compiled, 1)  # the new place has none of them yet
    return _INSTALLED[0]


def save() -> None:
    """Save the installed CodeCache, if any."""
    for cache in _INSTALLED:
        cache.save()
