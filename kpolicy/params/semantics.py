"""What boot parameters mean, in one vocabulary: rules/params/*.toml loaded into typed dataclasses.

Static scanning finds a parameter's handler and the parser it calls; it cannot tell which values
the handler refuses and what it does then, which state the parameter sets, how repeats merge, or
where the boot default comes from. One rules/params/<name>.toml file says all of that for one
piece of kernel state (a *feature*, such as `lockdown`) and the parameters that set it, or only
for handlers (`ro`, `init=`). The command-line engine (kpolicy.cmdline) decides from these
declarations whether a value is accepted; the resolver (kpolicy.resolve) only merges the states
of accepted values. Every declaration is checked against the tree's registrations
(`stale_declarations`), so a parameter that moved or vanished is reported, not believed.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Optional, TypeVar, Union, get_args

from kpolicy.errors import KpolicyError
from kpolicy.kernel import INTEGER_TYPES, fold_param, kstrtobool, kstrtoint
from kpolicy.params.model import Registration
from kpolicy.textio import TOML_LIMIT, parse_toml_text, read_text, reject_unknown_keys

State = Union[bool, int, str]

# "direct": no registration; the kernel reads the word itself from the command line
# (cmdline_find_option_bool() in the x86 decompressor and early arch code): an exact word,
# no "-"/"_" folding, no quotes, anywhere in the boot loader's line (also after "--").
Kind = Literal["early_param", "__setup", "module_param", "core_param", "direct"]
# match: where a direct read finds its word in the boot loader's line (split at whitespace,
# quotes not special).
#   "word"               the exact word anywhere, also after "--" (x86's
#                        cmdline_find_option_bool)
#   "word-before-dashes" the exact word before a lone "--" (arm64's id-register override parser,
#                        arch/arm64/kernel/{pi/}idreg-override.c __parse_cmdline)
#   "word-start"         a word starting with it, anywhere, also after "--" (strstr() preceded by
#                        the line's start or a space: 6.1 arm64 kaslr_early.c's nokaslr)
#   "last-option"        x86's cmdline_find_option(name): only the LAST word starting "<name>="
#                        is read, anywhere, also after "--". It sets nothing itself: the feature's
#                        direct "<name>=<word>" reads count only for that last word, so a last
#                        value none of them names (even an empty one) leaves every earlier
#                        "<name>=" word counting for nothing.
Match = Literal["word", "word-before-dashes", "word-start", "last-option"]
# accept: which values the handler takes.
#   "any"        every value, also none (the handler ignores it)
#   "present"    any value, but a missing value (no "=") is refused
#   "empty"      only no value at all (a __setup flag such as "ro": "root=..." falls through)
#   "kstrtobool" what kstrtobool() takes, in the tree's version (sets a bool)
#   "words"      exactly one of `words` (strcmp; sets the word)
#   "prefix"     a value starting with one of `words`, the first in order that it starts with
#                (strncmp over the word's length; sets that word)
#   "list"       comma-separated items, each one of `words` (any item when `words` is empty)
#   "integer"    what kstrto<param_type>() takes (sets the number)
#   "function"   every value; the state is what kpolicy/params/valueparsers.py's `function` says
Accept = Literal["any", "present", "empty", "kstrtobool", "words", "prefix", "list", "integer",
                 "function"]
# on_invalid: what the kernel does with a value the handler does not take.
#   "malformed"   early_param returns non-zero: `Malformed early option '<name>'`
#   "ignored"     the handler consumes it and keeps its previous state, silently or with a warning
#   "fallthrough" a __setup handler returns 0: the word goes on, usually to init
#   "invalid"     a module/core param's set() fails: `... invalid for parameter ...`
# malformed_after (an accepted value's other fate): the name of a predicate in
# kpolicy/params/valueparsers.py (PARTIAL_ERRORS) saying when an early_param handler applies part
# of the value and then returns non-zero: the state is set AND the kernel prints `Malformed early
# option '<name>'` (x86 iommu=...,usedac returns 1 after the items before it).
OnInvalid = Literal["malformed", "ignored", "fallthrough", "invalid"]
# merge: how a feature's state takes a new value.
#   "last-wins"   every accepted value replaces the state
#   "raise-only"  a value not above the current one (in `values` order) is refused
#   "enable-only" once on, an off is refused (param_set_bool_enable_only: -EROFS)
Merge = Literal["last-wins", "raise-only", "enable-only"]
Effect = Literal["none", "clear-init-argv"]
Unknown = Literal["keep", "depends"]  # a [[machine]] dependency whose machine fact is unknown
# values: the feature's state. "bool", a list of words (lowest first), "int", or "text".
ValueType = Literal["bool", "words", "int", "text"]
# group: where a hardening review looks for the feature; resolve's text output follows this order.
Group = Literal["memory", "cpu-mitigations", "address-space", "iommu-dma", "attack-surface",
                "integrity-lockdown", "lsm", "other"]
GROUPS: tuple[Group, ...] = get_args(Group)

KINDS: tuple[Kind, ...] = get_args(Kind)
ACCEPTS: tuple[Accept, ...] = get_args(Accept)
ON_INVALID: tuple[OnInvalid, ...] = get_args(OnInvalid)
MERGES: tuple[Merge, ...] = get_args(Merge)
EFFECTS: tuple[Effect, ...] = get_args(Effect)
UNKNOWNS: tuple[Unknown, ...] = get_args(Unknown)
MATCHES: tuple[Match, ...] = get_args(Match)
# Registration kinds a declared kind may be realised as (core_param is module_param's twin).
_REALISED_AS: dict[Kind, tuple[str, ...]] = {
    "early_param": ("early_param",), "__setup": ("__setup",),
    "module_param": ("module_param", "core_param"), "core_param": ("core_param", "module_param"),
    "direct": (),
}
Version = tuple[int, int]


def in_versions(version: tuple[int, ...], since: Optional[Version],
                until: Optional[Version]) -> bool:
    """Whether Linux VERSION lies in [SINCE, UNTIL) (None: unbounded)."""
    v = tuple(version[:2])
    return (since is None or v >= since) and (until is None or v < until)


@dataclass(frozen=True)
class HandlerSemantics:
    """How one parameter's handler treats values, and the state an accepted value sets."""

    accept: Accept = "any"
    words: tuple[str, ...] = ()
    on_invalid: OnInvalid = "ignored"
    # what the kernel does with the bare word (no "="), where that differs from on_invalid
    # (spectre_v2: a missing value is -EINVAL, an unknown word only a warning)
    on_missing: Optional[OnInvalid] = None
    noarg: bool = True  # a module param takes a bare name (KERNEL_PARAM_OPS_FL_NOARG)
    merge: Merge = "last-wins"  # the feature's merge, for the engine's enable-only refusals
    initial: Optional[str] = None  # Kconfig symbol giving an enable-only param's initial value
    effect: Effect = "none"
    param_type: Optional[str] = None  # integer type for accept="integer"
    sets: Optional[State] = None  # the constant a flag parameter sets, whatever its value
    mapping: tuple[tuple[str, State], ...] = ()  # word -> state where the word is not the state
    function: Optional[str] = None  # accept="function": the value parser's name
    malformed_after: Optional[str] = None  # PARTIAL_ERRORS predicate: applied, then -EINVAL/1
    # the handler's comma-separated items act on kernel state that later occurrences of the
    # parameter keep (x86 cfi=): the parser reads every value so far, joined by commas
    accumulate: bool = False
    declared_in: Optional[str] = None  # rules/params file, when not inferred

    def refusal(self, value: Optional[str]) -> OnInvalid:
        """What the kernel does with VALUE (None: no "=") when the handler does not take it."""
        if value is None and self.on_missing is not None:
            return self.on_missing
        return self.on_invalid

    def takes(self, value: Optional[str], version: tuple[int, int, int]) -> bool:
        """Whether the handler accepts VALUE (None: no "=" in the word)."""
        a = self.accept
        if a == "function" and self.function is not None:
            from kpolicy.params.valueparsers import REFUSES

            if self.function in REFUSES:  # a handler that can return an error
                return not REFUSES[self.function](value, version)
        if a in ("any", "function"):
            # a declared on_missing refuses the bare word (retbleed: `if (!str) return -EINVAL`)
            return value is not None or self.on_missing is None
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
        if a == "prefix":
            return self.prefix_word(value) is not None
        if a == "list":
            return all(item in self.words for item in value.split(",")) if self.words else True
        return kstrtoint(value, self.param_type or "int") is not None

    def state_of(self, value: Optional[str], version: tuple[int, int, int],
                 earlier: tuple[Optional[str], ...] = ()) -> Optional[State]:
        """The state an accepted VALUE sets (None when the handler sets no state kpolicy knows);
        a bare module bool with KERNEL_PARAM_OPS_FL_NOARG reads as "1", as parse_one() does.
        EARLIER: the values this parameter's handler accepted before VALUE (read only with
        `accumulate`)."""
        if self.sets is not None:
            return self.sets
        if self.function is not None:
            from kpolicy.params.valueparsers import PARSERS

            if self.accumulate:
                value = ",".join(v or "" for v in (*earlier, value))
            return PARSERS[self.function](value)
        for word, state in self.mapping:
            if value == word:
                return state
        if self.accept == "kstrtobool":
            return kstrtobool("1" if value is None and self.noarg else value, version)
        if self.accept == "integer":
            return kstrtoint(value, self.param_type or "int")
        if self.accept in ("words", "list"):
            return value
        if self.accept == "prefix" and value is not None:
            return self.prefix_word(value)
        return None

    def applied_malformed(self, value: Optional[str]) -> bool:
        """Whether the handler, having taken VALUE, still returns non-zero (malformed_after)."""
        if self.malformed_after is None:
            return False
        from kpolicy.params.valueparsers import PARTIAL_ERRORS

        return PARTIAL_ERRORS[self.malformed_after](value)

    def prefix_word(self, value: str) -> Optional[str]:
        """The first of `words` VALUE starts with (accept = "prefix"), or None."""
        return next((w for w in self.words if value.startswith(w)), None)


@dataclass(frozen=True)
class Declaration:
    """One parameter of rules/params/: its handler's semantics as a person read them in the C."""

    name: str
    kind: Kind
    semantics: HandlerSemantics
    source: str  # where this was read, e.g. "mm/huge_memory.c setup_transparent_hugepage"
    file: str
    arches: tuple[str, ...] = ()  # SRCARCHes where it is registered; () = all
    priority: int = 0  # a value of a lower-priority parameter cannot replace a higher one's
    since: Optional[Version] = None  # the first Linux version with these semantics
    until: Optional[Version] = None  # the first Linux version without them
    # direct: the word counts only once these words are on the line too (in any order): one
    # outcome several id-register fields hold together, such as pointer authentication's
    together: tuple[str, ...] = ()
    match: Match = "word"  # direct: where the word is found

    def applies(self, version: tuple[int, ...]) -> bool:
        """Whether this declaration holds in Linux VERSION."""
        return in_versions(version, self.since, self.until)


def for_version(declarations: Iterable[Declaration],
                version: tuple[int, ...]) -> tuple[Declaration, ...]:
    """The DECLARATIONS that hold in Linux VERSION."""
    return tuple(d for d in declarations if d.applies(version))


@dataclass(frozen=True)
class Override:
    """Another feature's state that forces this one, whatever its own parameters say."""

    feature: str  # the other feature
    equals: State  # ... when its effective state is this
    sets: State  # this feature's state then
    source: str  # where in the kernel, e.g. "mm/mm_init.c mem_debugging_and_hardening_init"
    if_state: tuple[State, ...] = ()  # only when this feature's own state is one of these
    since: Optional[Version] = None
    until: Optional[Version] = None
    also: tuple[tuple[str, State], ...] = ()  # ... and only when these features are these too
    # ... and only when no command-line word set this feature (6.1's pti=on and pti=auto keep
    # mitigations=off from turning PTI off: pti_check_boottime_disable reads them first)
    unless_cmdline: bool = False

    @property
    def features(self) -> tuple[str, ...]:
        """Every feature whose state this override reads."""
        return (self.feature, *(name for name, _ in self.also))

    def applies(self, version: tuple[int, ...]) -> bool:
        """Whether this override holds in Linux VERSION."""
        return in_versions(version, self.since, self.until)


@dataclass(frozen=True)
class MachineDependency:
    """An outcome the running machine can still force, whatever config and command line say."""

    when: str
    effect: State
    ram_below_mib: Optional[int] = None  # applies when the machine has less RAM than this
    secure_boot: Optional[bool] = None  # applies when UEFI Secure Boot is (or is not) on
    kaslr_seed: Optional[bool] = None  # applies when the boot has (or lacks) a KASLR seed
    cpu_lacks: Optional[str] = None  # applies when the CPU lacks it (Machine.cpu_features)
    cpu_has: tuple[str, ...] = ()  # ... and (when given) only when the CPU has all of these
    symbol: Optional[str] = None  # ... and only if this Kconfig symbol is y
    unless_symbol: Optional[str] = None  # ... and only if this Kconfig symbol is not y
    # ... and only when these other features' effective states are these (read after they are
    # resolved); with no machine fact above, the dependency applies on these alone
    features: tuple[tuple[str, State], ...] = ()
    unless_cmdline: bool = False  # ... and only when no command-line word set the feature
    # ... and only when the state the command line and overrides left is one of these
    if_state: tuple[State, ...] = ()
    # ... and only when the command line has all these words before any "--" (words the
    # feature's own direct readers look for, so every path that feeds them feeds these)
    if_words: tuple[str, ...] = ()
    since: Optional[Version] = None  # ... and only in these Linux versions (until exclusive)
    until: Optional[Version] = None
    # an unknown machine fact: "keep" the state (the dependency is a note), or "depends": the
    # outcome is unknown (effective None, "depends on the machine") unless a later one decides
    unknown: Unknown = "keep"

    def applies(self, version: tuple[int, ...]) -> bool:
        """Whether this dependency holds in Linux VERSION."""
        return in_versions(version, self.since, self.until)


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: the parameters that set it, how its state merges, where its default comes
    from, and what the machine can still change."""

    name: str  # key in resolve's "features" (the parameter name, or the build option's)
    handlers: tuple[Declaration, ...]  # the parameters that set it
    value_type: ValueType
    domain: tuple[str, ...]  # value_type "words": the words, lowest first
    merge: Merge
    build: Optional[str]  # build option; None means always built
    arches: tuple[str, ...]  # SRCARCHes where the feature exists; () = all
    default_symbol: Optional[str]
    default_invert: bool
    default_choice: tuple[tuple[str, State], ...]  # (member symbol, state)
    default_value: Optional[State]  # when no symbol/choice member decides
    unbuilt: State  # effective state when the code is not built
    lsm: Optional[str]  # LSM name that must be started for the feature to act
    lsm_early: Optional[str]  # symbol making the LSM an early one (always started)
    machine: tuple[MachineDependency, ...]
    file: str  # the rules/params declaration
    overrides: tuple[Override, ...] = ()
    since: Optional[Version] = None  # the first Linux version kpolicy knows it for exactly
    until: Optional[Version] = None
    group: Group = "other"
    # choice members a version may lack: where such a symbol does not exist, the C source of
    # that version had no switch and behaved as if it were y (6.1 has no MITIGATION_RETBLEED)
    absent_means_y: tuple[str, ...] = ()
    # the build option's earlier names (6.1's PAGE_TABLE_ISOLATION, renamed
    # MITIGATION_PAGE_TABLE_ISOLATION in 6.9): a version whose Kconfig lacks `build` uses the
    # first of these it defines; a `build` listed in absent_means_y that the version lacks under
    # every name means the code is always built there (6.1 has no MITIGATION_SPECTRE_V1)
    build_renamed_from: tuple[str, ...] = ()
    # the build option builds a loadable module whose parameters kmod's modprobe takes from the
    # kernel command line (name.param=) when it loads the module: with the option m the feature
    # is built and those words act at load time, each checked by its handler (kvm)
    modprobe: bool = False

    def build_in(self, symbols: Container[str]) -> Optional[str]:
        """The build option as a version whose Kconfig defines SYMBOLS names it (None: always
        built there)."""
        if self.build is None or self.build in symbols:
            return self.build
        old = next((n for n in self.build_renamed_from if n in symbols), None)
        if old is not None:
            return old
        return None if self.build in self.absent_means_y else self.build

    def applies(self, version: tuple[int, ...]) -> bool:
        """Whether kpolicy knows this feature in Linux VERSION."""
        return in_versions(version, self.since, self.until)

    @property
    def params(self) -> tuple[str, ...]:
        """The names of the parameters that set the feature."""
        return tuple(d.name for d in self.handlers)

    @property
    def build_only(self) -> bool:
        return not self.handlers

    @property
    def reads(self) -> tuple[str, ...]:
        """The other features whose effective states its [[machine]] dependencies read."""
        return tuple(dict.fromkeys(n for m in self.machine for n, _ in m.features))

    def handler(self, param: str, version: tuple[int, ...]) -> Optional[Declaration]:
        """The declaration of PARAM (one of self.params) in Linux VERSION, if it has one."""
        return next((d for d in self.handlers if d.name == param and d.applies(version)), None)

    def rank(self, state: State) -> int:
        """Where STATE stands in the feature's order (raise-only merges compare these)."""
        if self.value_type == "words":
            return self.domain.index(str(state))
        return int(state)

    def merged(self, current: State, wanted: State) -> Optional[State]:
        """The state after WANTED arrives on top of CURRENT, or None where the merge refuses it."""
        return merge_state(self.merge, self.rank, current, wanted)


def merge_state(merge: Merge, rank: Callable[[State], int], current: State,
                wanted: State) -> Optional[State]:
    """The state after WANTED arrives on top of CURRENT under MERGE, or None where the kernel
    refuses it (RANK orders states for raise-only)."""
    if merge == "raise-only" and rank(wanted) <= rank(current):
        return None
    if merge == "enable-only" and current is True and wanted is False:
        return None
    return wanted


@dataclass(frozen=True)
class ParamRules:
    """Everything rules/params/ declares: the features, and every parameter's declaration
    (the features' own and the handler-only ones)."""

    features: tuple[FeatureSpec, ...]
    declarations: tuple[Declaration, ...]


_BOOL_TYPES = {"bool": True, "bint": True, "bool_enable_only": True, "invbool": False}


def infer_semantics(reg: Registration) -> HandlerSemantics:
    """The semantics a registration implies when nothing is declared for it."""
    if reg.kind in ("module_param", "core_param"):
        t = reg.param_type
        if t in _BOOL_TYPES:
            merge: Merge = "enable-only" if t == "bool_enable_only" else "last-wins"
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
    if reg.kind == "__setup" and reg.parser == "kstrtobool":
        # assumed: a bad value changes nothing and the handler returns 1 (one that returns 0
        # and lets the word fall through needs a rules/params declaration)
        return HandlerSemantics("kstrtobool", on_invalid="ignored")
    return HandlerSemantics()


def registration_kind(reg: Registration) -> Kind:
    """REG's kind as the schema names it."""
    if reg.kind not in KINDS:
        raise ValueError(f"unknown registration kind {reg.kind!r}")
    return reg.kind


def stale_declarations(declarations: Iterable[Declaration], registrations: Iterable[Registration],
                       srcarch: Optional[str] = None,
                       version: Optional[tuple[int, ...]] = None) -> tuple[str, ...]:
    """One message per declaration the tree does not register as declared (on SRCARCH, in
    VERSION); a direct read has no registration to check."""
    by_name: dict[str, list[Registration]] = {}
    for reg in registrations:
        by_name.setdefault(fold_param(reg.name), []).append(reg)
    problems = []
    for d in declarations:
        if srcarch is not None and d.arches and srcarch not in d.arches:
            continue
        if d.kind == "direct" or (version is not None and not d.applies(version)):
            continue
        regs = by_name.get(fold_param(d.name), [])
        if not any(r.kind in _REALISED_AS[d.kind] for r in regs):
            found = ", ".join(sorted({f"{r.kind} at {r.location}" for r in regs})) or "nothing"
            problems.append(f"{d.file}: declares {d.kind} '{d.name}' but the tree registers "
                            f"{found}")
    return tuple(problems)


# --- the loader ---------------------------------------------------------------------------------

_T = TypeVar("_T")
_FEATURE_KEYS = {"feature", "build", "arches", "values", "merge", "unbuilt", "default", "lsm",
                 "machine", "param", "override", "since", "until", "group",
                 "build_renamed_from", "modprobe"}
_PARAM_KEYS = {"name", "kind", "source", "accept", "words", "on_invalid", "on_missing", "noarg",
               "effect", "param_type", "sets", "priority", "since", "until", "map", "function",
               "together", "match", "arches", "malformed_after", "accumulate"}


def _version(t: _Table, key: str) -> Optional[Version]:
    raw = t.optional(key, str)
    if raw is None:
        return None
    parts = raw.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise t.error(f"'{key}' must be a version like \"6.7\"")
    return int(parts[0]), int(parts[1])


class _Table:
    """One TOML table read with the checks every key needs, errors naming the file."""

    def __init__(self, data: object, file: str, where: str, known: set[str]) -> None:
        if not isinstance(data, dict):
            raise KpolicyError(f"{where} must be a table", file=file)
        reject_unknown_keys(data, known, file=file, where=f"{where}: ")
        self.data: dict[str, object] = data
        self.file, self.where = file, where

    def error(self, message: str) -> KpolicyError:
        return KpolicyError(f"{self.where}: {message}", file=self.file)

    def get(self, key: str, kind: type[_T], default: _T) -> _T:
        value = self.data.get(key, default)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(f"'{key}' must be a {kind.__name__}")
        return value

    def optional(self, key: str, kind: type[_T]) -> Optional[_T]:
        value = self.data.get(key)
        if value is not None and not isinstance(value, kind):
            raise self.error(f"'{key}' must be a {kind.__name__}")
        return value

    def choice(self, key: str, choices: tuple[_T, ...], default: object = None) -> _T:
        """KEY's value, one of CHOICES (DEFAULT when missing; None: the key is required)."""
        value = self.data.get(key, default)
        if value not in choices:
            raise self.error(f"'{key}' must be one of {', '.join(map(str, choices))}")
        return value  # one of CHOICES

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list, [])
        if not all(isinstance(v, str) for v in value):
            raise self.error(f"'{key}' must be a list of strings")
        return tuple(value)

    def tables(self, key: str) -> list[object]:
        return self.get(key, list, [])


def _param(raw: object, file: str, index: int, merge: Merge, initial: Optional[str],
           arches: tuple[str, ...], state: Optional[Callable[[object, str], State]]
           ) -> Declaration:
    t = _Table(raw, file, f"[[param]] {index + 1}", _PARAM_KEYS)
    name, source = t.get("name", str, ""), t.get("source", str, "")
    if not name:
        raise t.error("'name' must be a non-empty string")
    if not source:
        raise t.error("'source' must say where in the kernel the semantics were read")
    param_type = t.optional("param_type", str)
    if param_type is not None and param_type not in INTEGER_TYPES:
        raise t.error(f"'param_type' must be one of {', '.join(INTEGER_TYPES)}")
    raw_sets = t.data.get("sets")
    raw_map = t.get("map", dict, {})
    if raw_map and state is None:
        raise t.error("'map' needs a feature whose state it sets")
    mapping = tuple((str(k), state(v, f"{t.where} 'map'")) for k, v in raw_map.items()
                    ) if state is not None else ()
    sem = HandlerSemantics(
        accept=t.choice("accept", ACCEPTS, "any"),
        words=t.strings("words"),
        on_invalid=t.choice("on_invalid", ON_INVALID, "ignored"),
        on_missing=t.choice("on_missing", ON_INVALID, None) if "on_missing" in t.data else None,
        noarg=t.get("noarg", bool, True),
        merge=merge,
        initial=initial if merge == "enable-only" else None,
        effect=t.choice("effect", EFFECTS, "none"),
        param_type=param_type,
        sets=None if raw_sets is None or state is None else state(raw_sets, f"{t.where} 'sets'"),
        mapping=mapping,
        function=t.optional("function", str),
        malformed_after=t.optional("malformed_after", str),
        accumulate=t.get("accumulate", bool, False),
        declared_in=file,
    )
    if sem.accumulate and sem.function is None:
        raise t.error("'accumulate' feeds earlier values to a value parser: it needs 'function'")
    if (sem.accept == "function") != (sem.function is not None):
        raise t.error("accept = \"function\" and 'function' go together")
    if sem.function is not None:
        from kpolicy.params.valueparsers import PARSERS

        if sem.function not in PARSERS:
            raise t.error(f"no value parser '{sem.function}' in kpolicy/params/valueparsers.py")
    if sem.malformed_after is not None:
        from kpolicy.params.valueparsers import PARTIAL_ERRORS

        if sem.malformed_after not in PARTIAL_ERRORS:
            raise t.error(f"no predicate '{sem.malformed_after}' in PARTIAL_ERRORS "
                          "(kpolicy/params/valueparsers.py)")
    if sem.accept in ("words", "prefix") and not sem.words:
        raise t.error(f"accept = \"{sem.accept}\" needs a non-empty words list")
    if raw_sets is not None and state is None:
        raise t.error("'sets' needs a feature whose state it sets")
    if (state is not None and sem.sets is None and sem.accept in ("any", "present", "empty")
            and t.data.get("match") != "last-option"):
        raise t.error(f"accept = \"{sem.accept}\" sets no state: say which one with 'sets'")
    kind = t.choice("kind", KINDS)
    if sem.malformed_after is not None and kind != "early_param":
        raise t.error("'malformed_after' is an early_param's (do_early_param prints it)")
    together = t.strings("together")
    match = t.choice("match", MATCHES, "word")
    if match == "last-option":
        if sem.sets is not None or together:
            raise t.error("a last-option read sets nothing itself: its <name>=<word> reads do")
    elif kind == "direct" and sem.sets is None:
        raise t.error("a direct read is a word: say the state it sets with 'sets'")
    if (together or "match" in t.data) and kind != "direct":
        raise t.error("'together' and 'match' say how a direct read finds its words")
    own = t.strings("arches")
    if own and arches and not set(own) <= set(arches):
        raise t.error("'arches' must be among the feature's")
    return Declaration(name, kind, sem, source, file, own or arches, t.get("priority", int, 0),
                       _version(t, "since"), _version(t, "until"), together, match)


def _facts(t: _Table, key: str) -> tuple[str, ...]:
    """KEY's CPU facts: one word or a list of words (all must hold)."""
    raw = t.data.get(key)
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    return t.strings(key)


def parse_params_file(text: str,
                      file: str) -> tuple[Optional[FeatureSpec], tuple[Declaration, ...]]:
    """One rules/params/*.toml file: its feature (None for a handlers-only file) and its
    parameters' declarations, or a KpolicyError naming FILE."""
    data = parse_toml_text(text, file)
    top = _Table(data, file, "file", _FEATURE_KEYS)
    params = top.tables("param")
    name = top.optional("feature", str)
    if name is None:
        if set(data) - {"param"}:
            raise top.error("feature keys without 'feature = \"<name>\"'")
        if not params:
            raise top.error("no [[param]] and no feature: nothing declared")
        return None, tuple(_param(p, file, i, "last-wins", None, (), None)
                           for i, p in enumerate(params))
    if not name:
        raise top.error("'feature' must be a non-empty string")
    raw_values = data.get("values", "bool")
    domain: tuple[str, ...] = ()
    value_type: ValueType
    if raw_values in ("bool", "int", "text"):
        value_type = raw_values  # one of the three
    elif isinstance(raw_values, list) and raw_values and all(isinstance(w, str)
                                                             for w in raw_values):
        value_type, domain = "words", tuple(raw_values)
    else:
        raise top.error("'values' must be \"bool\", \"int\", \"text\" or a list of words")
    merge = top.choice("merge", MERGES, "last-wins")
    if merge == "raise-only" and value_type not in ("words", "int", "bool"):
        raise top.error("a raise-only feature needs ordered values")
    if merge == "enable-only" and value_type != "bool":
        raise top.error("an enable-only feature is a bool")

    def state(value: object, where: str) -> State:
        if value_type == "words" and value in domain:
            return str(value)
        if value_type == "bool" and isinstance(value, bool):
            return value
        if value_type == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if value_type == "text" and isinstance(value, str):
            return value
        raise KpolicyError(f"{where}: {value!r} is not a value of the feature", file=file)

    default = _Table(data.get("default", {}), file, "[default]",
                     {"symbol", "invert", "choice", "value", "absent_means_y"})
    choice = default.get("choice", dict, {})
    lsm = _Table(data.get("lsm", {}), file, "[lsm]", {"name", "early"})
    machine = []
    for i, raw in enumerate(top.tables("machine")):
        m = _Table(raw, file, f"[[machine]] {i + 1}",
                   {"when", "effect", "ram_below_mib", "secure_boot", "kaslr_seed", "cpu_lacks",
                    "cpu_has", "symbol", "unless_symbol", "features", "unless_cmdline",
                    "unknown", "if_state", "if_words", "since", "until"})
        features = tuple(m.get("features", dict, {}).items())
        if not all(isinstance(v, (bool, int, str)) for _, v in features):
            raise m.error("'features' maps features to a boolean, a number or a word")
        if name in (n for n, _ in features):
            raise m.error("'features' names the feature itself")
        machine.append(MachineDependency(
            m.get("when", str, ""), state(m.data.get("effect"), f"{m.where} 'effect'"),
            ram_below_mib=m.optional("ram_below_mib", int),
            secure_boot=m.optional("secure_boot", bool), symbol=m.optional("symbol", str),
            kaslr_seed=m.optional("kaslr_seed", bool), cpu_lacks=m.optional("cpu_lacks", str),
            cpu_has=_facts(m, "cpu_has"),
            unless_symbol=m.optional("unless_symbol", str), features=features,
            unless_cmdline=m.get("unless_cmdline", bool, False),
            if_state=tuple(state(v, f"{m.where} 'if_state'")
                           for v in m.get("if_state", list, [])),
            if_words=tuple(m.strings("if_words")),
            since=_version(m, "since"), until=_version(m, "until"),
            unknown=m.choice("unknown", UNKNOWNS, "keep")))
    overrides = []
    for i, raw in enumerate(top.tables("override")):
        o = _Table(raw, file, f"[[override]] {i + 1}",
                   {"feature", "equals", "sets", "source", "if_state", "since", "until", "also",
                    "unless_cmdline"})
        other, source = o.get("feature", str, ""), o.get("source", str, "")
        if not other or not source or "equals" not in o.data:
            raise o.error("needs 'feature', 'equals', 'sets' and 'source'")
        equals = o.data["equals"]
        if not isinstance(equals, (bool, int, str)):
            raise o.error("'equals' must be a boolean, a number or a word")
        if_state = tuple(state(v, f"{o.where} 'if_state'") for v in o.get("if_state", list, []))
        also = tuple(o.get("also", dict, {}).items())
        if not all(isinstance(v, (bool, int, str)) for _, v in also):
            raise o.error("'also' maps features to a boolean, a number or a word")
        overrides.append(Override(other, equals, state(o.data.get("sets"), f"{o.where} 'sets'"),
                                  source, if_state, _version(o, "since"), _version(o, "until"),
                                  also, o.get("unless_cmdline", bool, False)))
    default_symbol = default.optional("symbol", str)
    arches = top.strings("arches")
    handlers = tuple(_param(p, file, i, merge, default_symbol, arches, state)
                     for i, p in enumerate(params))
    if "unbuilt" in data:
        unbuilt = state(data["unbuilt"], "'unbuilt'")
    elif value_type in ("bool", "words"):
        unbuilt = domain[-1] if domain else False
    else:
        raise top.error("an int or text feature needs 'unbuilt'")
    raw_default = default.data.get("value")
    spec = FeatureSpec(
        name=name, handlers=handlers, value_type=value_type, domain=domain, merge=merge,
        build=top.optional("build", str), arches=arches,
        default_symbol=default_symbol, default_invert=default.get("invert", bool, False),
        default_choice=tuple((str(k), state(v, "[default] choice")) for k, v in choice.items()),
        default_value=None if raw_default is None else state(raw_default, "[default] value"),
        unbuilt=unbuilt, lsm=lsm.optional("name", str), lsm_early=lsm.optional("early", str),
        machine=tuple(machine), file=file, overrides=tuple(overrides),
        since=_version(top, "since"), until=_version(top, "until"),
        group=top.choice("group", GROUPS, "other"),
        absent_means_y=default.strings("absent_means_y"),
        build_renamed_from=top.strings("build_renamed_from"),
        modprobe=top.get("modprobe", bool, False),
    )
    if spec.modprobe and spec.build is None:
        raise top.error("'modprobe' says the build option may be m: it needs 'build'")
    read = {w for d in handlers if d.kind == "direct" for w in (d.name, *d.together)}
    for dep in spec.machine:
        if not set(dep.if_words) <= read:
            raise top.error(f"[[machine]] '{dep.when}': 'if_words' names words no direct "
                            f"[[param]] of the feature reads: {sorted(set(dep.if_words) - read)}")
    return spec, handlers


def load_param_rules(directory: Optional[Path] = None) -> ParamRules:
    """Every rules/params/*.toml (default: the shipped ones), features sorted by name (then
    arches and versions); a bad file, a feature or a parameter declared twice is a
    KpolicyError. A feature name may have several declarations for disjoint arches or
    versions: for_target() picks a model's."""
    if directory is None:
        from kpolicy.resources import data_dir

        directory = data_dir("rules") / "params"
    features: list[FeatureSpec] = []
    declarations: list[Declaration] = []
    for path in sorted(directory.glob("*.toml")):
        text = read_text(path, what="parameter declaration", limit=TOML_LIMIT)
        feature, decls = parse_params_file(text, str(path))
        if feature is not None:
            if any(f.name == feature.name and not _apart(f, feature) for f in features):
                raise KpolicyError(f"feature '{feature.name}' is declared twice (declarations "
                                   "of one feature need disjoint 'arches' or versions)",
                                   file=path)
            features.append(feature)
        for d in decls:
            if any((e.kind, e.name) == (d.kind, d.name) and _overlap(e, d)
                   and not _same_handler(e, d) for e in declarations):
                raise KpolicyError(f"{d.kind} '{d.name}' is declared twice", file=path)
            declarations.append(d)
    order = sorted(features, key=lambda s: (s.name, s.arches, s.since or (0, 0)))
    return ParamRules(tuple(order), tuple(declarations))


def _apart(a: FeatureSpec, b: FeatureSpec) -> bool:
    """Whether A and B, two declarations of one feature name, never hold together: for disjoint
    arches (each says its arches; vulnerabilities.meltdown is x86's and arm64's, each read from
    that arch's code) or disjoint versions (cfi's build option, renamed in 6.18)."""
    if a.arches and b.arches and not set(a.arches) & set(b.arches):
        return True
    lo = max(a.since or (0, 0), b.since or (0, 0))
    hi = min(a.until or (999, 0), b.until or (999, 0))
    return lo >= hi


def for_target(specs: Iterable[FeatureSpec], srcarch: str,
               version: tuple[int, ...]) -> tuple[FeatureSpec, ...]:
    """SPECS with one declaration per feature name, in SPECS' order: for a name declared per
    arch or per version, the declaration for SRCARCH in Linux VERSION (else one for SRCARCH,
    which resolve skips in VERSION); a name with none for SRCARCH keeps its first, with the
    arches of all of them (resolve skips it; a policy says where it exists). Everything after
    this sees one feature per name."""
    by_name: dict[str, list[FeatureSpec]] = {}
    for s in specs:
        by_name.setdefault(s.name, []).append(s)
    out = []
    for group in by_name.values():
        here = [s for s in group if not s.arches or srcarch in s.arches]
        pick = next((s for s in here if s.applies(version)), here[0] if here else None)
        if pick is None:
            arches = tuple(sorted({a for s in group for a in s.arches}))
            pick = replace(group[0], arches=arches) if len(group) > 1 else group[0]
        out.append(pick)
    return tuple(out)


def _overlap(a: Declaration, b: Declaration) -> bool:
    """Whether A and B hold in some common version, on some common arch."""
    if a.arches and b.arches and not set(a.arches) & set(b.arches):
        return False
    lo = max(a.since or (0, 0), b.since or (0, 0))
    hi = min(a.until or (999, 0), b.until or (999, 0))
    return lo < hi


def _same_handler(a: Declaration, b: Declaration) -> bool:
    """Whether A and B describe one handler read by two features (the command-line engine sees
    the same acceptance in both): two value parsers of one always-accepting handler."""
    return a.semantics.accept == b.semantics.accept == "function" and \
        a.semantics.on_invalid == b.semantics.on_invalid and \
        a.semantics.on_missing == b.semantics.on_missing and \
        a.semantics.malformed_after == b.semantics.malformed_after
