"""The `make` config targets a distro maintainer runs, computed as scripts/kconfig/conf does.

- olddefconfig: the .config with every new symbol at its default;
- alldefconfig: the same from no .config at all;
- allnoconfig / allyesconfig / allmodconfig: every bool and tristate symbol with a prompt that
  is not a choice member is given n / y / m as if the user had set it (conf.c,
  conf_set_all_new_symbols), then everything is evaluated.
The all*config targets are modelled from Linux 6.11 on; before, conf_set_all_new_symbols also
set choices in a way kpolicy does not model, and older trees are refused.
- savedefconfig: the minimal defconfig (confdata.c, conf_write_defconfig);
- listnewconfig: the symbols the .config does not set yet (conf.c, check_conf), with the value
  olddefconfig gives them and the first line of their help, hardening-related ones first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from kpolicy.cache import Cache
from kpolicy.errors import KpolicyError
from kpolicy.kconfig.evaluate import (
    UserValue,
    defconfig_symbols,
    evaluate,
    evaluator,
    new_symbols,
    tri_of,
    value_lookup,
)
from kpolicy.kconfig.load import dotconfig_text, load_model, symbol_line
from kpolicy.kconfig.model import KconfigModel, MenuEntry, Message
from kpolicy.kconfig.toolchain import Toolchain
from kpolicy.textio import printable
from kpolicy.tree import KernelTree

TARGETS = ("olddefconfig", "alldefconfig", "allnoconfig", "allyesconfig", "allmodconfig",
           "savedefconfig", "listnewconfig")
_ALL = {"allnoconfig": "n", "allyesconfig": "y", "allmodconfig": "m"}
# conf_set_all_new_symbols leaves choices to their defaults only since the 6.11 rewrite.
_ALL_SINCE = (6, 11, 0)
# Where a new symbol is hardening-related: defined under security/, or named for a hardening
# mechanism (the words of Documentation/security/self-protection.rst and of the features
# kpolicy resolves).
_HARDENING_DIRS = ("security/",)
_HARDENING_WORDS = ("HARDEN", "RANDOMIZE", "STACKPROTECTOR", "FORTIFY", "INIT_ON_", "INIT_STACK",
                    "MITIGATION", "CFI", "SHADOW_CALL_STACK", "KASLR", "LOCKDOWN", "USERCOPY",
                    "SEAL", "STRICT_", "VMAP_STACK", "SLAB_FREELIST", "SECURITY", "ZERO_CALL",
                    "BUG_ON_DATA_CORRUPTION", "PAGE_TABLE_ISOLATION", "RETPOLINE", "SPECULATION")


@dataclass(frozen=True)
class TargetResult:
    """What a target produced: the file text (listnewconfig: its report) and the messages the
    Kconfig files printed."""

    text: str
    messages: tuple[Message, ...]
    warnings: tuple[str, ...]  # what reading the input .config warned about


def run_target(tree: KernelTree, arch: str, target: str, *, config: Optional[Path] = None,
               toolchain: Optional[Toolchain] = None, cache: Optional[Cache] = None,
               warn_changed_input: bool = False) -> TargetResult:
    """TARGET (one of TARGETS) of TREE for ARCH, from the .config CONFIG where it reads one.

    WARN_CHANGED_INPUT: warn about the .config values Kconfig changed, as conf does with
    KCONFIG_WARN_CHANGED_INPUT set."""
    if target not in TARGETS:
        raise KpolicyError(f"unknown target {target}; known: {', '.join(TARGETS)}")
    reads_config = target in ("olddefconfig", "savedefconfig", "listnewconfig")
    model = load_model(tree, arch, config=config if reads_config else None,
                       toolchain=toolchain, cache=cache)
    legacy = tree.version_tuple < _ALL_SINCE
    if legacy and target.startswith("all"):
        raise KpolicyError(f"{target} is modelled from Linux 6.11 on; this tree is "
                           f"{tree.version}")
    if target in _ALL:
        model = all_config(model, _ALL[target])
    if target in ("savedefconfig", "listnewconfig"):
        ev = evaluator(model.symbols, model.choices, _user(model), legacy=legacy)
        if target == "savedefconfig":
            text = "".join(symbol_line(model, n)
                           for n in defconfig_symbols(ev, menu_order(model.menu)))
        else:
            text = listnew_text(model, new_symbols(ev, menu_order(model.menu, model)))
    else:
        text = dotconfig_text(model)
    warnings = model.warnings
    if warn_changed_input and target != "listnewconfig":
        warnings += changed_input(model)
    return TargetResult(text, model.messages, warnings)


def changed_input(model: KconfigModel) -> tuple[str, ...]:
    """The .config values MODEL's evaluation changed (confdata.c, conf_append_changed_input_
    warning), each symbol once, in menu order."""
    changed = [printable(f"  CONFIG_{name}: {model.user[name]} -> {model.values.get(name, '')}")
               for name in menu_order(model.menu)
               if name in model.user and model.user[name] != model.values.get(name)]
    return ("user-provided values changed by Kconfig:\n" + "\n".join(changed),) if changed else ()


def _user(model: KconfigModel) -> dict[str, UserValue]:
    return {name: UserValue(value, order) for order, (name, value) in enumerate(model.user.items())}


def all_config(model: KconfigModel, value: str) -> KconfigModel:
    """MODEL evaluated with VALUE given to every prompted bool/tristate outside a choice."""
    user = {name: UserValue(value, 0) for name, sym in model.symbols.items()
            if sym.prompts and sym.type in ("bool", "tristate") and sym.choice is None
            and not sym.transitional}
    result = evaluate(model.symbols, model.choices, user)
    return replace(model, values=result.values, written=result.written,
                   user={name: u.value for name, u in user.items()})


def menu_order(entries: tuple[MenuEntry, ...],
               visible_in: Optional[KconfigModel] = None) -> list[str]:
    """The symbols of a menu tree in Kconfig order, each once; with VISIBLE_IN, only those
    outside menus and comments that model hides (C's check_conf does not enter them)."""
    lookup = value_lookup(visible_in.values, visible_in.types) if visible_in else None
    seen: dict[str, None] = {}

    def walk(entries: tuple[MenuEntry, ...]) -> None:
        for e in entries:
            if e.kind in ("menu", "comment") and lookup is not None \
                    and tri_of(e.visible, lookup) == 0:
                continue
            if e.kind == "symbol":
                seen.setdefault(e.name)
            walk(e.children)

    walk(entries)
    return list(seen)


def is_hardening(model: KconfigModel, name: str) -> bool:
    sym = model.symbols[name]
    return any(d.location.file.startswith(_HARDENING_DIRS) for d in sym.definitions) or \
        any(word in name for word in _HARDENING_WORDS)


def listnew_text(model: KconfigModel, names: list[str]) -> str:
    """One line per new symbol: its .config line as olddefconfig writes it (`=n` for off, as
    conf's listnewconfig does), where it is defined and its help's first line."""
    ordered = sorted(names, key=lambda n: not is_hardening(model, n))
    out = []
    for name in ordered:
        sym = model.symbols[name]
        line = symbol_line(model, name).rstrip("\n")
        if line.startswith("# "):
            line = f"CONFIG_{name}=n"
        help_line = next((ln.strip() for ln in sym.help.splitlines() if ln.strip()), "")
        mark = "hardening" if is_hardening(model, name) else "new"
        about = f"{mark}, {sym.location}" + (f": {help_line}" if help_line else "")
        out.append(printable(f"{line}\t# {about}") + "\n")
    return "".join(out)
