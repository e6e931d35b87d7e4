"""What a parameter's handler does with a value: inferred, or declared in rules/params/.

Static scanning tells kpolicy a handler's name and the parser it calls; it cannot tell whether the
handler returns an error for a value it does not like. Where that matters (a `Malformed early
option`, an `invalid for parameter`, a `__setup` that returns 0 and lets the word fall through to
init), rules/params/<name>.toml declares it. Every declaration is checked against the tree's
registrations, so a stale one is reported instead of believed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kpolicy.errors import KpolicyError
from kpolicy.kernel import INTEGER_TYPES, kstrtobool, kstrtoint
from kpolicy.params.model import Registration
from kpolicy.textio import read_text

# accept: which values the handler takes.
#   "any"        every value, also none (the handler ignores it)
#   "present"    any value, but a missing value (no "=") is refused
#   "empty"      only no value at all (a __setup flag such as "ro": "root=..." falls through)
#   "kstrtobool" what kstrtobool() takes, in the tree's version
#   "words"      exactly one of `words` (strcmp)
#   "integer"    what kstrto<param_type>() takes
ACCEPTS = ("any", "present", "empty", "kstrtobool", "words", "integer")
# on_invalid: what the kernel does with a value the handler does not take.
#   "malformed"   early_param returns non-zero: `Malformed early option '<name>'`
#   "ignored"     the handler consumes it and keeps its previous state, silently or with a warning
#   "fallthrough" a __setup handler returns 0: the word goes on, usually to init
#   "invalid"     a module/core param's set() fails: `... invalid for parameter ...`
ON_INVALID = ("malformed", "ignored", "fallthrough", "invalid")
MERGES = ("last-wins", "raise-only", "enable-only")
EFFECTS = ("none", "clear-init-argv")
KINDS = ("early_param", "__setup", "module_param", "core_param")


@dataclass(frozen=True)
class HandlerSemantics:
    """How one registration's handler treats values."""

    accept: str = "any"
    words: tuple[str, ...] = ()
    on_invalid: str = "ignored"
    noarg: bool = True  # a module param takes a bare name (KERNEL_PARAM_OPS_FL_NOARG)
    merge: str = "last-wins"
    initial: Optional[str] = None  # Kconfig symbol giving an enable-only param's initial value
    effect: str = "none"
    param_type: Optional[str] = None  # integer type for accept="integer"
    declared_in: Optional[str] = None  # rules/params file, when not inferred

    def takes(self, value: Optional[str], version: tuple[int, int, int]) -> bool:
        """Whether the handler accepts VALUE (None: no "=" in the word)."""
        a = self.accept
        if a == "any":
            return True
        if a == "empty":
            return not value
        if value is None:
            return False
        if a == "present":
            return True
        if a == "kstrtobool":
            return kstrtobool(value, version) is not None
        if a == "words":
            return value in self.words
        return kstrtoint(value, self.param_type or "int") is not None


@dataclass(frozen=True)
class Declaration:
    """A rules/params/*.toml entry: handler semantics as a person read them in the C."""

    name: str
    kind: str
    semantics: HandlerSemantics
    source: str  # where this was read, e.g. "mm/huge_memory.c setup_transparent_hugepage"
    file: str


_BOOL_TYPES = {"bool": True, "bint": True, "bool_enable_only": True, "invbool": False}


def infer_semantics(reg: Registration) -> HandlerSemantics:
    """The semantics a registration implies when nothing is declared for it."""
    if reg.kind in ("module_param", "core_param"):
        t = reg.param_type
        if t in _BOOL_TYPES:
            merge = "enable-only" if t == "bool_enable_only" else "last-wins"
            return HandlerSemantics("kstrtobool", on_invalid="invalid", noarg=_BOOL_TYPES[t],
                                    merge=merge)
        if t in INTEGER_TYPES:
            return HandlerSemantics("integer", on_invalid="invalid", noarg=False, param_type=t)
        if t is None and reg.parser in ("param_set_bool", "kstrtobool"):
            # custom ops whose set() ends in param_set_bool(): no NOARG flag unless declared
            return HandlerSemantics("kstrtobool", on_invalid="invalid", noarg=False)
        # charp, string and custom ops without NOARG: a bare name is -EINVAL in parse_one()
        return HandlerSemantics("present", on_invalid="invalid", noarg=False)
    if reg.kind == "early_param" and reg.parser == "kstrtobool":
        # the common `return kstrtobool(arg, &x);`
        return HandlerSemantics("kstrtobool", on_invalid="malformed")
    return HandlerSemantics()


def _field(data: Mapping[str, object], key: str, file: str, choices: Iterable[str],
           default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or value not in choices:
        raise KpolicyError(f"{key} must be one of {', '.join(choices)}", file=file)
    return value


def parse_declaration(text: str, file: str) -> Declaration:
    """One rules/params/*.toml file's declaration, or a KpolicyError naming the file."""
    if sys.version_info >= (3, 11):  # imported here: a cached resolve never parses TOML
        import tomllib
    else:  # pragma: no cover - the package supports 3.9+
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KpolicyError(f"bad TOML: {exc}", file=file,
                           line=getattr(exc, "lineno", None)) from None
    known = {"name", "kind", "accept", "words", "on_invalid", "noarg", "merge", "initial", "effect",
             "param_type", "source"}
    extra = sorted(set(data) - known)
    if extra:
        raise KpolicyError(f"unknown key(s): {', '.join(extra)}", file=file)
    name, source = data.get("name"), data.get("source")
    if not isinstance(name, str) or not name:
        raise KpolicyError("name must be a non-empty string", file=file)
    if not isinstance(source, str) or not source:
        raise KpolicyError("source must say where in the kernel the semantics were read", file=file)
    words = data.get("words", [])
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise KpolicyError("words must be a list of strings", file=file)
    noarg = data.get("noarg", True)
    initial = data.get("initial")
    param_type = data.get("param_type")
    if not isinstance(noarg, bool):
        raise KpolicyError("noarg must be true or false", file=file)
    if initial is not None and not isinstance(initial, str):
        raise KpolicyError("initial must be a Kconfig symbol name", file=file)
    if param_type is not None and param_type not in INTEGER_TYPES:
        raise KpolicyError(f"param_type must be one of {', '.join(INTEGER_TYPES)}", file=file)
    sem = HandlerSemantics(
        accept=_field(data, "accept", file, ACCEPTS, "any"),
        words=tuple(words),
        on_invalid=_field(data, "on_invalid", file, ON_INVALID, "ignored"),
        noarg=noarg,
        merge=_field(data, "merge", file, MERGES, "last-wins"),
        initial=initial,
        effect=_field(data, "effect", file, EFFECTS, "none"),
        param_type=param_type,
        declared_in=file,
    )
    if sem.accept == "words" and not sem.words:
        raise KpolicyError("accept = \"words\" needs a non-empty words list", file=file)
    return Declaration(name, _field(data, "kind", file, KINDS, ""), sem, source, file)


def load_declarations(directory: Optional[Path] = None) -> tuple[Declaration, ...]:
    """Every declaration in DIRECTORY (default: the shipped rules/params/), by file name."""
    if directory is None:
        from kpolicy.resources import data_dir

        directory = data_dir("rules") / "params"
    if not directory.is_dir():
        return ()
    return tuple(parse_declaration(read_text(p, what="parameter declaration"), str(p))
                 for p in sorted(directory.glob("*.toml")))


def check_declarations(declarations: Iterable[Declaration],
                       registrations: Iterable[Registration]) -> tuple[str, ...]:
    """One message per declaration the tree does not register (same kind and name)."""
    have = {(r.kind, r.name) for r in registrations}
    return tuple(f"{d.file}: {d.kind} {d.name!r} is not registered in this tree"
                 for d in declarations if (d.kind, d.name) not in have)
