"""The kernel's passes over its command line (init/main.c, kernel/params.c) as one pure function.

Order, as start_kernel() runs them: the arch merges CONFIG_CMDLINE (builtin.py); the early pass
calls every early_param of each word; the main pass sets built-in module and core params, then
hands the rest to unknown_bootoption() (sysctl aliases, boot loader words, `__setup` prefix
matches, dotted names, init's argv/envp); words after `--` and bootconfig's init.* keys go to
init's argv; last, `sysctl.*` words are written to /proc/sys.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple, Optional

from kpolicy.cmdline.bootconfig import bootconfig_cmdline
from kpolicy.cmdline.builtin import merge_builtin
from kpolicy.cmdline.tokens import SPACES, Token, next_arg, to_bytes_str, to_display, tokenize
from kpolicy.errors import KpolicyError
from kpolicy.kernel import command_line_size, fold_param
from kpolicy.params.model import Catalog, Registration
from kpolicy.params.semantics import (
    Declaration,
    HandlerSemantics,
    for_version,
    infer_semantics,
    load_param_rules,
    merge_state,
    stale_declarations,
)

# fs/proc/proc_sysctl.c sysctl_aliases[] (unchanged from 6.1 to 7.2)
SYSCTL_ALIASES: dict[str, str] = {
    "hardlockup_all_cpu_backtrace": "kernel.hardlockup_all_cpu_backtrace",
    "hung_task_panic": "kernel.hung_task_panic",
    "numa_zonelist_order": "vm.numa_zonelist_order",
    "softlockup_all_cpu_backtrace": "kernel.softlockup_all_cpu_backtrace",
}
_SYSCTL_FIRST = frozenset("s" + "".join(a[0] for a in SYSCTL_ALIASES))
# what a command line holding a word the sysctl pass takes holds (a word's name is a run of
# its line's bytes): most lines have none and skip the pass
_SYSCTL_TEXT = re.compile("|".join(map(re.escape, ["sysctl", *SYSCTL_ALIASES])))
# init/main.c unknown_bootoption(): words boot loaders add, dropped by prefix
BOOTLOADER_PREFIXES = ("BOOT_IMAGE=", "kexec")
DEFAULT_INIT_ENV_ARG_LIMIT = 32
CHARP_MAXLEN = 1024  # kernel/params.c param_set_charp
# A command line far beyond any COMMAND_LINE_SIZE is refused before any work is done on it.
MAX_INPUT = 1 << 20
SETUP_CACHE_LIMIT = 100_000


# Where a word went: a pass whose handler ran (early, main, setup), or where it ended up instead.
Stage = Literal["early", "main", "setup", "dropped", "init-argv", "init-env", "after-dashdash",
                "sysctl"]
# What happened to it there ("accepted-malformed": the handler applied the value, or part of it,
# and returned non-zero: the kernel prints "Malformed early option" all the same).
Outcome = Literal["accepted", "accepted-malformed", "refused", "malformed", "invalid", "too-large",
                  "ignored", "unknown", "replaced", "overflow"]
# the outcomes whose handler applied the value: the resolver merges their states
APPLIED: frozenset[Outcome] = frozenset({"accepted", "accepted-malformed"})


@dataclass(frozen=True)
class Handler:
    """A registration built into this kernel, with what its handler does with values."""

    registration: Registration
    semantics: HandlerSemantics
    setup_str: str  # what the kernel matches: the name, plus "=" for __setup("name=")
    order: int  # position in the tree's registrations (the link order approximates it)
    where: str  # "<kind> <name> (<file>:<line>)", for reasons


# an event's fields after its word's own (Token's): what a word's plan holds per event
_Tail = tuple[Stage, Outcome, Optional[Registration], str, str]


class _Plan(NamedTuple):
    """A word's main-pass answer: its events' fields after the word's own, invalid entries,
    and why unknown_bootoption() then passes it to init (None: it does not)."""

    events: tuple[_Tail, ...]
    invalid: tuple[tuple[str, str], ...]
    init: Optional[str]


class _EarlyPlan(NamedTuple):
    """A word's early-pass answer (every early_param of its name): its events' fields after
    the word's own, and what "Malformed early option" prints for it."""

    events: tuple[_Tail, ...]
    malformed: tuple[str, ...]


@dataclass(frozen=True)
class KernelParams:
    """One kernel's parameter tables (tree x config x arch), precomputed for many command lines.

    The dicts are read-only by convention; names are keyed with "-" folded to "_" (parameq()).
    """

    version: tuple[int, int, int]
    srcarch: str
    config: Mapping[str, str]
    command_line_size: int
    init_env_arg_limit: int
    early: Mapping[str, tuple[Handler, ...]]
    params: Mapping[str, Handler]
    # every early_param and __setup, as (folded setup_str, handler) by the string's first two
    # characters (one for one-character strings), for obsolete_checksetup()'s prefix match
    setups: Mapping[str, tuple[tuple[str, Handler], ...]]
    not_built: Mapping[str, Registration]  # folded name -> a registration not built in
    boot_config: bool
    boot_config_force: bool
    # rules/params declarations naming a parameter this tree does not register
    declaration_problems: tuple[str, ...] = ()
    # obsolete_checksetup()'s matches per folded word, filled as words are seen (a pure cache)
    setup_matches: dict[str, tuple[Handler, ...]] = field(default_factory=dict, compare=False,
                                                          repr=False)
    # the main pass's answer per source and raw word for words whose answer depends on nothing
    # but the word and init's argv/envp (see _Run.plan), or None for words that need the full
    # path, _DASHES for `--` (a pure cache)
    word_plans: dict[str, dict[str, Optional[_Plan]]] = field(default_factory=dict,
                                                              compare=False, repr=False)
    # the early pass's answer per raw word (a pure cache: a word's name and value are its raw
    # text's, and do_early_param() reads nothing else): None for a word no early_param has,
    # _END for `--`
    early_plans: dict[str, Optional[_EarlyPlan]] = field(default_factory=dict, compare=False,
                                                         repr=False)


_new_tuple = tuple.__new__
_UNSEEN: Any = object()
_END = _EarlyPlan((), ())  # the early plan of `--`: the pass stops there
_DASHES = _Plan((), (), None)  # the main-pass plan of `--`: likewise


class Event(NamedTuple):
    """What happened to one word at one stage."""

    # index shadows tuple.index on purpose (a NamedTuple: cheap to build by the million)
    index: int  # type: ignore[assignment]  # the word's index in its source's tokens
    position: int  # byte offset of the word in its command line
    raw: str
    name: str
    value: Optional[str]
    stage: Stage
    outcome: Outcome
    registration: Optional[Registration]
    reason: str
    source: str = "cmdline"  # "cmdline" or "bootconfig"


@dataclass(frozen=True)
class CmdlineResult:
    """Everything the kernel does with one command line, in the kernel's order."""

    effective: str  # the command line after the built-in merge and truncation
    truncated: bool
    merge: str  # how the built-in command line was merged
    tokens: tuple[Token, ...]
    events: tuple[Event, ...]
    init_argv: tuple[str, ...]  # without argv[0]
    init_envp: tuple[str, ...]  # without HOME=/ and TERM=linux
    unknown: tuple[str, ...]  # as "Unknown kernel command line parameters" prints them
    malformed_early: tuple[str, ...]
    invalid: tuple[tuple[str, str], ...]  # (param, value) as "invalid for parameter" prints them
    sysctls: tuple[tuple[str, str], ...]  # (path under /proc/sys with dots, value), in order
    errors: tuple[str, ...]  # e.g. the "Too many boot init vars" panic
    warnings: tuple[str, ...] = field(default=())
    # /proc/cmdline: EFFECTIVE with the words bootconfig adds where the kernel puts them
    proc_cmdline: str = ""


# setup_command_line() strips the trailing space of bootconfig's init.* words in 6.12 and 7.2,
# not in 6.1 (init/main.c); the versions between were not checked and take 6.12's behaviour.
INIT_ARGS_STRIPPED = (6, 12, 0)


def saved_command_line(version: tuple[int, int, int], boot: str, tokens: tuple[Token, ...],
                       kernel_words: str, init_words: str) -> str:
    """/proc/cmdline as init/main.c's setup_command_line() builds it: bootconfig's kernel.*
    words, the boot command line, and bootconfig's init.* words in front of the command line's
    own init arguments (after its `--`), or after an added ` -- `."""
    if version >= INIT_ARGS_STRIPPED:
        init_words = init_words.strip("".join(SPACES))
    saved = kernel_words + boot
    if not init_words:
        return saved
    dashes = next((t for t in tokens if t.value is None and t.name == "--"), None)
    if dashes is None:
        return f"{saved} -- {init_words}"
    # initargs_offs: where parse_args("bootconfig") stopped, just after the `--` and its spaces
    offs = next_arg(boot, dashes.offset)[3]
    return kernel_words + boot[:offs] + init_words + boot[offs - 1:]


def _normalize_config(config: Mapping[str, str]) -> dict[str, str]:
    """CONFIG without "CONFIG_" prefixes and with string values unquoted."""
    if "\0CONFIG_" not in "\0" + "\0".join(config):
        # the usual case (kpolicy's readers drop the prefix), without a Python loop over the
        # symbols (an olddefconfig evaluation has ~19,000): each distinct quoted value unquoted
        unquoted = {v: _unquote(v) for v in set(config.values()) if _unquote(v) is not v}
        if not unquoted:
            return dict(config)
        return dict(zip(config, map(unquoted.get, config.values(), config.values())))
    out: dict[str, str] = {}
    for key, value in config.items():
        if key.startswith("CONFIG_"):
            key = key[len("CONFIG_"):]
        out[key] = _unquote(value)
    return out


def _unquote(value: str) -> str:
    """A .config string value without its quotes and escapes (VALUE itself if not one)."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


_CPP_TOKEN = re.compile(r"\s*(\|\||&&|!|\(|\)|defined|IS_ENABLED|IS_BUILTIN|IS_MODULE|"
                        r"IS_REACHABLE|CONFIG_\w+|MODULE|\w+)")


@functools.lru_cache(maxsize=4096)
def _cpp_tokens(cond: str) -> Optional[tuple[str, ...]]:
    """The tokens of an #if condition, or None when it holds other C (tokenized once: each
    config's tables evaluate the same conditions again)."""
    toks = _CPP_TOKEN.findall(cond)
    return tuple(toks) if "".join(toks) == re.sub(r"\s+", "", cond) else None


def _cpp_true(cond: str, cfg: Mapping[str, str]) -> bool:
    """Evaluate an #if condition over CONFIG_ macros as autoconf.h defines them; unknown -> true."""
    toks = _cpp_tokens(cond)
    if toks is None:
        return True  # arithmetic or other C: not decided here, assume the code is there

    def macro(name: str, test: str) -> bool:
        if name == "MODULE":
            return False  # built-in code is never compiled with -DMODULE
        sym = name[len("CONFIG_"):]
        if sym.endswith("_MODULE") and test == "defined" and cfg.get(sym[:-7]) == "m":
            return True
        v = cfg.get(sym, "n")
        if test == "IS_MODULE":
            return v == "m"
        if test in ("IS_ENABLED", "IS_REACHABLE"):
            return v in ("y", "m")
        return v not in ("n", "m", "")  # defined / IS_BUILTIN: CONFIG_X is defined only for y

    pos = 0

    def primary() -> bool:
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t == "!":
            return not primary()
        if t == "(":
            v = disjunction()
            pos += 1
            return v
        if t in ("defined", "IS_ENABLED", "IS_BUILTIN", "IS_MODULE", "IS_REACHABLE"):
            paren = toks[pos] == "("
            pos += 1 if paren else 0
            v = macro(toks[pos], t)
            pos += 2 if paren else 1
            return v
        if t.startswith("CONFIG_") or t == "MODULE":
            return macro(t, "defined")
        raise ValueError(t)

    def chain(op: str, operand: Callable[[], bool]) -> bool:
        """OPERAND (op OPERAND)*: every operand is evaluated, as the original loop did."""
        nonlocal pos
        v = operand()
        while pos < len(toks) and toks[pos] == op:
            pos += 1
            w = operand()
            v = (w and v) if op == "&&" else (w or v)
        return v

    def conjunction() -> bool:
        return chain("&&", primary)

    def disjunction() -> bool:
        return chain("||", conjunction)

    try:
        v = disjunction()
    except (IndexError, ValueError):
        return True
    return v if pos == len(toks) else True


def _built_in(reg: Registration, cfg: Mapping[str, str]) -> bool:
    """Whether REG's code is compiled into vmlinux under CFG (Makefile chain and #ifdefs)."""
    if reg.module_only:
        return False
    if any(cfg.get(sym) != "y" for sym in reg.built_with):
        return False
    return all(_cpp_true(c, cfg) for c in reg.cpp_conditions)


# what kernel_params() reads of the config besides the registrations' conditions
_TABLE_SYMBOLS = frozenset({"INIT_ENV_ARG_LIMIT", "BOOT_CONFIG", "BOOT_CONFIG_FORCE",
                            "COMMAND_LINE_SIZE", "SPARC64"})  # the last two: command_line_size()
_CONFIG_MACRO = re.compile(r"CONFIG_(\w+)")


def table_symbols(registrations: Iterable[Registration]) -> frozenset[str]:
    """The config symbols kernel_params() reads to build its tables from REGISTRATIONS: two
    configs that differ in no other symbol have the same tables (see with_config)."""
    out = set(_TABLE_SYMBOLS)
    for reg in registrations:
        if reg.built_if:
            out.add(reg.built_if)
        out.update(reg.built_if_chain)
        for cond in reg.cpp_conditions:
            for name in _CONFIG_MACRO.findall(cond):
                out.add(name)
                if name.endswith("_MODULE"):
                    out.add(name[: -len("_MODULE")])
    return frozenset(out)


def with_config(kp: KernelParams, config: Mapping[str, str],
                changed: Iterable[str]) -> KernelParams:
    """KP for CONFIG, which differs from KP's config in the symbols CHANGED, none of its
    table_symbols(): the same tables; the boot reads the config itself as it goes
    (CONFIG_CMDLINE, enable-only params)."""
    cfg = dict(kp.config)
    for name in changed:
        cfg.pop(name, None)
    cfg.update(_normalize_config({n: config[n] for n in changed if n in config}))
    return replace(kp, config=cfg, setup_matches={}, word_plans={}, early_plans={})


# What kernel_params() derives from a built-in registration alone, whatever the config: its
# semantics, setup string, folded key and description. Kept per
# (declarations, version, srcarch) for the registrations decoded from a model, which are the
# same objects each time (`check` builds the tables of each config a fix makes).
_Static = tuple[HandlerSemantics, str, str, str]
_STATICS: dict[int, tuple[object, tuple[int, int, int], str,
                          dict[int, tuple[Registration, _Static]]]] = {}


def _statics_of(declarations: tuple[Declaration, ...], version: tuple[int, int, int],
                srcarch: str) -> dict[int, tuple[Registration, _Static]]:
    hit = _STATICS.get(id(declarations))
    if hit is None or hit[0] is not declarations or hit[1] != version or hit[2] != srcarch:
        if len(_STATICS) >= 8:
            _STATICS.clear()
        hit = _STATICS[id(declarations)] = (declarations, version, srcarch, {})
    if len(hit[3]) > 100_000:  # registrations not decoded once (fresh objects each time)
        hit[3].clear()
    return hit[3]


def _static(reg: Registration, declared: Mapping[tuple[str, str], HandlerSemantics]) -> _Static:
    sem = declared.get((reg.kind, reg.name)) or infer_semantics(reg)
    setup_str = reg.name + ("=" if reg.kind == "__setup" and reg.setup_has_equals else "")
    return sem, setup_str, fold_param(setup_str), f"{reg.kind} {setup_str} ({reg.location})"


def kernel_params(catalog: Catalog, config: Mapping[str, str], version: tuple[int, int, int],
                  srcarch: str,
                  declarations: Optional[tuple[Declaration, ...]] = None) -> KernelParams:
    """Lookup tables for the parameters built into this kernel, to answer many command lines fast.

    DECLARATIONS default to rules/params/ (handler semantics scanning cannot infer).
    """
    if declarations is None:
        declarations = load_param_rules().declarations
    cfg = _normalize_config(config)
    statics = _statics_of(declarations, version, srcarch)
    declared: Optional[dict[tuple[str, str], HandlerSemantics]] = None
    early: dict[str, list[Handler]] = {}
    params: dict[str, Handler] = {}
    setups: dict[str, list[tuple[str, Handler]]] = {}
    not_built: dict[str, Registration] = {}
    for order, reg in enumerate(catalog.registrations):
        parts = reg.location.file.split("/")
        if parts[0] == "arch" and len(parts) > 1 and parts[1] != srcarch:
            continue  # another architecture's code
        if not _built_in(reg, cfg):
            not_built.setdefault(fold_param(reg.name), reg)
            continue
        got = statics.get(id(reg))
        if got is None or got[0] is not reg:
            if declared is None:
                declared = {(d.kind, d.name): d.semantics
                            for d in for_version(declarations, version)}
            got = statics[id(reg)] = (reg, _static(reg, declared))
        sem, setup_str, key, where = got[1]
        h = Handler(reg, sem, setup_str, order, where)
        if reg.kind in ("module_param", "core_param"):
            params.setdefault(key, h)  # parse_one() takes the first match
            continue
        if reg.kind == "early_param":
            early.setdefault(key, []).append(h)
        setups.setdefault(key[:2], []).append((key, h))
    if "console" not in early and "earlycon" in early:
        # Before early_param("console") existed (6.x), do_early_param() itself also handed a
        # word named exactly "console" to the earlycon handler.
        early["console"] = early["earlycon"]
    try:
        limit = int(cfg.get("INIT_ENV_ARG_LIMIT", str(DEFAULT_INIT_ENV_ARG_LIMIT)), 0)
    except ValueError:
        limit = DEFAULT_INIT_ENV_ARG_LIMIT
    return KernelParams(
        version=version, srcarch=srcarch, config=cfg,
        command_line_size=command_line_size(srcarch, cfg), init_env_arg_limit=limit,
        early={k: tuple(v) for k, v in early.items()}, params=params,
        setups={k: tuple(v) for k, v in setups.items()},
        not_built=not_built,
        boot_config=cfg.get("BOOT_CONFIG") == "y",
        boot_config_force=cfg.get("BOOT_CONFIG_FORCE") == "y",
        declaration_problems=stale_declarations(declarations, catalog.registrations, srcarch,
                                                 version),
    )


class _Run:
    """The mutable state of one boot: init's argv/envp, the panic flag, enable-only params."""

    def __init__(self, kp: KernelParams) -> None:
        self.kp = kp
        self.events: list[Event] = []
        self.argv: list[str] = ["init"]
        self.argv_from: list[int] = [-1]
        self.envp: list[str] = ["HOME=/", "TERM=linux"]
        self.envp_from: list[int] = [-1, -1]
        self.panic_later: Optional[str] = None
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.malformed: list[str] = []
        self.invalid: list[tuple[str, str]] = []
        self.sysctls: list[tuple[str, str]] = []
        self.enable_only: dict[str, bool] = {}

    def event(self, tok: Token, stage: Stage, outcome: Outcome, reg: Optional[Registration],
              reason: str,
              source: str) -> None:
        # An Event starts with a Token's five fields: built as one tuple, skipping the
        # NamedTuple's Python-level __new__ (this runs for every word of every line).
        self.events.append(_new_tuple(Event, (*tok, stage, outcome, reg, reason, source)))

    # -- the early pass: do_early_param() ---------------------------------------------------
    def early_pass(self, tokens: tuple[Token, ...]) -> None:
        plans = self.kp.early_plans
        events = self.events
        for tok in tokens:
            plan = plans.get(tok.raw, _UNSEEN)
            if plan is _UNSEEN:
                plan = self.early_plan(tok)
                if len(plans) >= SETUP_CACHE_LIMIT:
                    plans.clear()
                plans[tok.raw] = plan
            if plan is None:
                continue
            if plan is _END:
                return
            tails, malformed = plan
            for tail in tails:
                events.append(_new_tuple(Event, (*tok, *tail)))
            if malformed:
                self.malformed.extend(malformed)

    def early_plan(self, tok: Token) -> Optional[_EarlyPlan]:
        """TOK's early-pass answer, worked out on a fresh boot (see KernelParams.early_plans)."""
        if tok.value is None and tok.name == "--":
            return _END
        handlers = self.kp.early.get(fold_param(tok.name))
        if handlers is None:
            return None
        fresh = _Run(self.kp)
        fresh.early_word(tok, handlers)
        return _EarlyPlan(tuple(e[5:] for e in fresh.events), tuple(fresh.malformed))

    def early_word(self, tok: Token, handlers: tuple[Handler, ...]) -> None:
        """do_early_param() for TOK: each of HANDLERS (the early_params of its name) in order."""
        for h in handlers:
            if h.semantics.takes(tok.value, self.kp.version):
                if h.semantics.applied_malformed(tok.value):
                    self.malformed.append(to_display(tok.name))
                    self.event(tok, "early", "accepted-malformed", h.registration,
                               f"{h.where} applies {_shown(tok.value)}, then returns "
                               f"non-zero: Malformed early option '{tok.name}'", "cmdline")
                    continue
                self.event(tok, "early", "accepted", h.registration, h.where, "cmdline")
            elif h.semantics.refusal(tok.value) == "malformed":
                self.malformed.append(to_display(tok.name))
                self.event(tok, "early", "malformed", h.registration,
                           f"handler refuses {_shown(tok.value)}: Malformed early option "
                           f"'{tok.name}'", "cmdline")
            else:
                self.event(tok, "early", "ignored", h.registration,
                           f"{h.where} ignores {_shown(tok.value)}", "cmdline")

    # -- the main pass: parse_args() with the built-in params, then unknown_bootoption() -----
    def main_pass(self, tokens: tuple[Token, ...], source: str) -> Optional[int]:
        """Run the main pass; the index just after a `--`, if one ends it."""
        plans = self.kp.word_plans.setdefault(source, {})
        events = self.events
        for n, tok in enumerate(tokens):
            plan = plans.get(tok.raw, _UNSEEN)
            if plan is _UNSEEN:
                plan = self.plan(tok, source)
                if len(plans) >= SETUP_CACHE_LIMIT:
                    plans.clear()
                plans[tok.raw] = plan
            if plan is None:
                self.word(tok, source)
                continue
            if plan is _DASHES:
                self.event(tok, "after-dashdash", "accepted", None,
                           "`--` ends the kernel's parameters: the rest goes to init's argv",
                           source)
                return n + 1
            tails, invalid, init = plan
            for tail in tails:
                events.append(_new_tuple(Event, (*tok, *tail)))
            if invalid:
                self.invalid.extend(invalid)
            if init is not None:
                self.to_init(tok, init, source)
        return None

    def word(self, tok: Token, source: str) -> None:
        """The main pass's handling of one word (not `--`)."""
        h = self.kp.params.get(fold_param(tok.name))
        if h is not None:
            self.param(tok, h, source)
            return
        reason = self.unknown_bootoption(tok, source)
        if reason is not None:
            self.to_init(tok, reason, source)

    def plan(self, tok: Token, source: str) -> Optional[_Plan]:
        """TOK's main-pass answer when it depends on the word alone, else None: the word is
        run on a fresh boot, and kept only if its path reads and writes no boot state but
        init's argv and envp, which to_init() fills for each line."""
        kp = self.kp
        if tok.value is None and tok.name == "--":
            return _DASHES
        h = kp.params.get(fold_param(tok.name))
        if h is not None:
            if h.semantics.merge == "enable-only":  # reads what earlier words enabled
                return None
        else:
            line = tok.name if tok.value is None else f"{tok.name}={tok.value}"
            matches = kp.setup_matches.get(line)
            if matches is None:
                matches = _setup_matches(kp, line)
            if any(m.semantics.effect == "clear-init-argv" for m in matches):  # edits argv
                return None
        fresh = _Run(kp)
        init = None
        if h is not None:
            fresh.param(tok, h, source)
        else:  # up to init's argv or envp, which depend on the words before
            init = fresh.unknown_bootoption(tok, source)
        if (fresh.argv != ["init"] or fresh.envp != ["HOME=/", "TERM=linux"]
                or fresh.panic_later is not None or fresh.errors or fresh.warnings
                or fresh.malformed or fresh.sysctls or fresh.enable_only):
            return None  # other boot state: the full path each time
        return _Plan(tuple(e[5:] for e in fresh.events), tuple(fresh.invalid), init)

    def param(self, tok: Token, h: Handler, source: str) -> None:
        sem, reg, val = h.semantics, h.registration, tok.value
        kind = reg.kind
        if val is None and not sem.noarg:
            return self.refuse_param(tok, reg, "", f"{kind} {reg.name} needs a value", source)
        if val is not None and reg.param_type == "charp" and len(val) > CHARP_MAXLEN:
            self.event(tok, "main", "too-large", reg, f"longer than {CHARP_MAXLEN} bytes", source)
            return None
        if not sem.takes("1" if val is None and sem.noarg else val, self.kp.version):
            return self.refuse_param(tok, reg, val or "", f"{kind} {reg.name} refuses the value",
                                     source)
        if sem.merge == "enable-only":  # the one merge whose refusal the kernel reports
            new = sem.state_of(val, self.kp.version) is True
            old = self.enable_only.get(reg.name)
            if old is None:
                old = self.kp.config.get(sem.initial or "", "n") == "y"
            if merge_state(sem.merge, int, old, new) is None:
                return self.refuse_param(tok, reg, val or "",
                                         f"{reg.name} is enable-only and already on", source)
            self.enable_only[reg.name] = new
        self.event(tok, "main", "accepted", reg, h.where, source)
        return None

    def refuse_param(self, tok: Token, reg: Registration, shown: str, why: str,
                     source: str) -> None:
        self.invalid.append((to_display(tok.name), to_display(shown)))
        self.event(tok, "main", "invalid", reg,
                   f"{why}: `{shown}' invalid for parameter `{tok.name}'", source)

    def unknown_bootoption(self, tok: Token, source: str) -> Optional[str]:
        """unknown_bootoption() up to init's argv and envp: why it passes TOK on to them (see
        to_init), or None when it handles the word itself."""
        name, val = tok.name, tok.value
        if name in SYSCTL_ALIASES:
            self.event(tok, "dropped", "ignored", None,
                       f"sysctl alias of {SYSCTL_ALIASES[name]}: set by the sysctl pass", source)
            return None
        line = name if val is None else f"{name}={val}"  # repair_env_string()
        if line.startswith(BOOTLOADER_PREFIXES):
            self.event(tok, "dropped", "ignored", None, "a boot loader's identifier", source)
            return None
        if self.checksetup(tok, line, source):
            return None
        if "." in name:
            reg = self.kp.not_built.get(fold_param(name))
            why = (f"{reg.kind} {reg.name} is not built in ({reg.built_if} is not y)"
                   if reg is not None else "dotted name: left for modprobe")
            self.event(tok, "dropped", "ignored", reg, why, source)
            return None
        return self.unknown_reason(name)

    def to_init(self, tok: Token, reason: str, source: str) -> None:
        """The rest of unknown_bootoption(): TOK into init's envp (with a value) or argv, for
        REASON, unless they already overflowed."""
        if self.panic_later:
            self.event(tok, "dropped", "ignored", None, "init's vars already overflowed", source)
            return
        name, val = tok.name, tok.value
        line = name if val is None else f"{name}={val}"
        limit = self.kp.init_env_arg_limit
        if val is not None:
            i = 0
            replaced = False
            while i < len(self.envp):
                if i == limit:
                    self.arm_panic("env", line, tok, source)
                if self.envp[i].startswith(name + "="):
                    replaced = True
                    break
                i += 1
            if replaced:
                self.envp[i] = line
                self.envp_from[i] = tok.index
                self.event(tok, "init-env", "replaced", None,
                           f"{reason}; replaces an earlier {name}= in init's environment", source)
            else:
                self.envp.append(line)
                self.envp_from.append(tok.index)
                self.event(tok, "init-env", "unknown", None,
                           f"{reason}: passed to init's environment", source)
        else:
            if len(self.argv) > limit:
                self.arm_panic("init", line, tok, source)
            self.argv.append(line)
            self.argv_from.append(tok.index)
            self.event(tok, "init-argv", "unknown", None, f"{reason}: passed to init's argv",
                       source)

    def unknown_reason(self, name: str) -> str:
        reg = self.kp.not_built.get(fold_param(name))
        if reg is not None:
            return f"{reg.kind} {reg.name} is not built in ({reg.built_if} is not y)"
        return "no built-in parameter has this name"

    def arm_panic(self, what: str, line: str, tok: Token, source: str) -> None:
        if self.panic_later is None:
            self.panic_later = what
            self.errors.append(f"Too many boot {what} vars at `{line}'")
            self.event(tok, "init-argv" if what == "init" else "init-env", "overflow", None,
                       f"more than CONFIG_INIT_ENV_ARG_LIMIT={self.kp.init_env_arg_limit} "
                       f"entries: the kernel panics", source)

    def checksetup(self, tok: Token, line: str, source: str) -> bool:
        """obsolete_checksetup(): every __setup whose string prefixes LINE, in order."""
        matches = self.kp.setup_matches.get(line)
        if matches is None:
            matches = _setup_matches(self.kp, line)
        had_early = False
        for h in matches:
            reg, sem = h.registration, h.semantics
            n = len(h.setup_str)
            if reg.kind == "early_param":
                if len(line) == n or line[n] == "=":
                    had_early = True
                continue
            arg = line[n:]
            if sem.takes(arg, self.kp.version):
                if sem.effect == "clear-init-argv":
                    del self.argv[1:]
                    del self.argv_from[1:]
                self.event(tok, "setup", "accepted", reg, h.where
                           + ("; init's earlier argv is discarded"
                              if sem.effect == "clear-init-argv" else ""), source)
                return True
            if sem.refusal(arg) == "fallthrough":
                self.event(tok, "setup", "refused", reg,
                           f"__setup {h.setup_str} returns 0 for {_shown(arg)}: not handled",
                           source)
                continue
            self.event(tok, "setup", "ignored", reg,
                       f"__setup {h.setup_str} ignores {_shown(arg)}", source)
            return True
        if had_early:
            # the early pass saw every word of the command line before the first `--`, as
            # the main pass does, and ran the early_params of its name (if any)
            if source != "cmdline" or fold_param(tok.name) not in self.kp.early:
                self.event(tok, "dropped", "ignored", None,
                           "an early parameter outside the early pass's reach: never applied",
                           source)
            return True
        return False

    # -- after `--` and bootconfig's init.*: parse_args() with set_init_arg() ---------------
    def init_args(self, tokens: tuple[Token, ...], source: str) -> None:
        for n, tok in enumerate(tokens):
            if tok.value is None and tok.name == "--":  # parse_args() stops here too
                for rest in tokens[n:]:
                    self.event(rest, "dropped", "ignored", None,
                               "after a second `--`: parse_args() stops, nobody gets it", source)
                return
            self.init_arg(tok, source)

    def init_arg(self, tok: Token, source: str) -> None:
        if self.panic_later:
            self.event(tok, "after-dashdash", "ignored", None, "init's vars already overflowed",
                       source)
            return
        line = tok.name if tok.value is None else f"{tok.name}={tok.value}"
        if len(self.argv) > self.kp.init_env_arg_limit:  # this one is refused, not stored
            self.panic_later = "init"
            self.errors.append(f"Too many boot init vars at `{line}'")
            self.event(tok, "after-dashdash", "overflow", None,
                       f"more than CONFIG_INIT_ENV_ARG_LIMIT={self.kp.init_env_arg_limit} "
                       "entries: the kernel panics", source)
            return
        self.argv.append(line)
        self.argv_from.append(tok.index)
        self.event(tok, "after-dashdash", "accepted", None, "after `--`: passed to init's argv",
                   source)

    # -- do_sysctl_args() -------------------------------------------------------------------
    def sysctl_pass(self, tokens: tuple[Token, ...], source: str) -> bool:
        """Run do_sysctl_args() over TOKENS; whether a `--` ended it."""
        for tok in tokens:
            name, val = tok.name, tok.value
            if val is None and name == "--":
                return True
            if name[:1] not in _SYSCTL_FIRST:
                continue
            if name.startswith("sysctl") and name[6:7] in ("/", "."):
                path = name[7:]
            elif name in SYSCTL_ALIASES:
                path = SYSCTL_ALIASES[name]
            else:
                continue
            if not val:
                self.invalid.append((to_display(name), ""))
                self.event(tok, "sysctl", "invalid", None,
                           f"a sysctl needs a value: `' invalid for parameter `{name}'", source)
                continue
            path = path.replace("/", ".")
            self.sysctls.append((to_display(path), to_display(val)))
            self.event(tok, "sysctl", "accepted", None,
                       f"written to /proc/sys/{path.replace('.', '/')} after the other parameters",
                       source)
        return False


def _setup_matches(kp: KernelParams, line: str) -> tuple[Handler, ...]:
    """Every early_param/__setup whose string prefixes LINE (parameqn()), in link order."""
    folded = fold_param(line)
    setups = kp.setups
    found = [h for key, h in setups.get(folded[:2], ()) + setups.get(folded[:1], ())
             if folded.startswith(key)] if folded else []
    found.sort(key=lambda h: h.order)
    if len(kp.setup_matches) >= SETUP_CACHE_LIMIT:
        kp.setup_matches.clear()
    kp.setup_matches[line] = matches = tuple(found)
    return matches


def _shown(value: Optional[str]) -> str:
    return "a missing value" if value is None else f"{to_display(value)!r}"


_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")


def _prepare(cmdline: str, kp: KernelParams) -> tuple[str, list[str]]:
    if len(cmdline) > MAX_INPUT:
        raise KpolicyError(f"command line is {len(cmdline)} characters; kpolicy reads at most "
                           f"{MAX_INPUT} (the kernel keeps {kp.command_line_size - 1} bytes)")
    warnings: list[str] = []
    line = to_bytes_str(cmdline)
    nul = line.find("\0")
    if nul >= 0:
        warnings.append(f"NUL byte at offset {nul}: the kernel's command line ends there")
        line = line[:nul]
    if _CONTROL.search(line):
        warnings.append("control characters in the command line are passed on as they are")
    return line, warnings


def process_cmdline(kp: KernelParams, cmdline: str, *,
                    bootconfig: Optional[str] = None) -> CmdlineResult:
    """What this kernel does with CMDLINE (the boot loader's) and optional BOOTCONFIG text."""
    line, warnings = _prepare(cmdline, kp)
    merged = merge_builtin(kp.srcarch, kp.config, line, kp.command_line_size)
    if merged.truncated:
        warnings.append(f"longer than COMMAND_LINE_SIZE-1 = {kp.command_line_size - 1} bytes: "
                        "the kernel cuts the rest")
    tokens = tokenize(merged.cmdline)
    run = _Run(kp)
    extra_kernel: tuple[Token, ...] = ()
    extra_init: tuple[Token, ...] = ()
    saved = merged.cmdline
    if bootconfig is not None:
        words = _bootconfig(kp, tokens, bootconfig)
        if isinstance(words, str):
            warnings.append(words)
        else:
            saved = saved_command_line(kp.version, merged.cmdline, tokens, *words)
            extra_kernel = tokenize(to_bytes_str(words[0]))
            extra_init = tokenize(to_bytes_str(words[1].strip()))
    run.early_pass(tokens)
    after: Optional[int] = None
    if extra_kernel:
        # bootconfig's kernel.* words come first in the main pass, and a `--` in them ends it
        stop = run.main_pass(extra_kernel, "bootconfig")
        if stop is None:
            after = run.main_pass(tokens, "cmdline")
        else:
            run.events.extend(_dropped(tokens, "bootconfig's kernel.* words held a `--`: the "
                                       "main pass never reached this word"))
    else:
        after = run.main_pass(tokens, "cmdline")
    unknown = tuple(run.argv[1:]) + tuple(run.envp[2:]) if run.panic_later is None else ()
    if after is not None and _main_pass_failed(run.events):
        run.events.extend(_dropped(tokens[after:], "a parameter before `--` was refused, so "
                                   "parse_args() returned an error and init gets none of the "
                                   "words after `--`"))
    elif after is not None:
        run.init_args(tokens[after:], "cmdline")
    run.init_args(extra_init, "bootconfig")
    if not run.sysctl_pass(extra_kernel, "bootconfig") and _SYSCTL_TEXT.search(merged.cmdline):
        run.sysctl_pass(tokens, "cmdline")
    envp = run.envp
    envp = envp[2:] if envp[:2] == ["HOME=/", "TERM=linux"] else [
        e for i, e in enumerate(envp) if not (i == 0 and e == "HOME=/")
        and not (i == 1 and e == "TERM=linux")]
    if merged.cmdline.isascii():
        argv, shown_envp = tuple(run.argv[1:]), tuple(envp)
    else:
        argv, shown_envp = tuple(map(to_display, run.argv[1:])), tuple(map(to_display, envp))
        unknown = tuple(map(to_display, unknown))
    disp = to_display
    # Filled through __dict__ (every field given): a frozen dataclass's __init__ costs a
    # setattr call per field, and batches build one result per line.
    result: Any = object.__new__(CmdlineResult)
    result.__dict__.update(
        effective=disp(merged.cmdline), proc_cmdline=disp(saved), truncated=merged.truncated,
        merge=merged.how,
        tokens=tokens, events=tuple(run.events),
        init_argv=argv, init_envp=shown_envp, unknown=unknown, malformed_early=tuple(run.malformed),
        invalid=tuple(run.invalid), sysctls=tuple(run.sysctls), errors=tuple(run.errors),
        warnings=tuple(warnings),
    )
    return result  # type: ignore[no-any-return]


def _main_pass_failed(events: list[Event]) -> bool:
    """parse_args() returns an error, not the text after `--`, once any parameter before the
    `--` was refused (invalid, too large); start_kernel() then gives init none of that text."""
    return any(e.stage == "main" and e.outcome in ("invalid", "too-large") for e in events)


def _dropped(tokens: tuple[Token, ...], reason: str) -> list[Event]:
    """A "dropped" event for each of TOKENS, all for REASON."""
    return [_new_tuple(Event, (*t, "dropped", "ignored", None, reason, "cmdline"))
            for t in tokens]


def _bootconfig(kp: KernelParams, tokens: tuple[Token, ...],
                text: str) -> tuple[str, str] | str:
    """setup_boot_config(): bootconfig's kernel.* and init.* words (as byte strings), if this
    kernel reads them, else why not."""
    if not kp.boot_config:
        return "bootconfig given but CONFIG_BOOT_CONFIG is not set: the kernel ignores it"
    found = False
    for tok in tokens:  # parse_args("bootconfig", ...): stops at `--`
        if tok.value is None and tok.name == "--":
            break
        if tok.name == "bootconfig":
            found = True
    if not (found or kp.boot_config_force):
        return ("bootconfig given but `bootconfig` is not on the command line "
                "(and BOOT_CONFIG_FORCE is not set): the kernel ignores it")
    kernel_line, init_line = bootconfig_cmdline(text, kp.version)
    return to_bytes_str(kernel_line), to_bytes_str(init_line)
