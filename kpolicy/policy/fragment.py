"""The `hardening` policy: the kernel's own `make hardening.config`, read from the tree.

`make hardening.config` merges kernel/configs/hardening.config and
arch/<SRCARCH>/configs/hardening.config (Linux 6.7 and later). Each assignment there is one
item, `CONFIG_X = value` as the fragment states it, referenced by its file:line, so the policy
is checked exactly as that kernel version states it. Where an item cannot apply to the arch or
toolchain, the Kconfig evaluation says so (evaluate.py: not-applicable, with the reason).
"""

from __future__ import annotations

import re

from kpolicy import treefs
from kpolicy.errors import KpolicyError
from kpolicy.policy.schema import Item, Policy
from kpolicy.tree import KernelTree

FIRST_VERSION = (6, 7, 0)  # the first release with kernel/configs/hardening.config
_SET = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set\s*$")


def fragment_files(tree: KernelTree, srcarch: str) -> list[str]:
    """The fragment files `make hardening.config` merges for SRCARCH, relative to the tree."""
    files = ["kernel/configs/hardening.config"]
    arch_file = f"arch/{srcarch}/configs/hardening.config"
    if treefs.is_file(tree.root, arch_file):
        files.append(arch_file)
    return files


def _items(tree: KernelTree, rel: str) -> list[tuple[str, str, int]]:
    """(symbol, value, line) of each assignment in fragment REL; later ones win, as in merging."""
    out = []
    text = treefs.read_text(tree.root, rel, what="config fragment")
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        m = _SET.match(line)
        if m:
            value = m.group(2)
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            out.append((m.group(1), value, number))
            continue
        m = _UNSET.match(line)
        if m:
            out.append((m.group(1), "n", number))
    return out


def hardening_policy(tree: KernelTree, arch: str) -> Policy:
    """The hardening.config policy of TREE for ARCH (Linux 6.7 and later)."""
    if tree.version_tuple < FIRST_VERSION:
        raise KpolicyError(
            f"Linux {tree.version} has no hardening.config (it arrived in 6.7)", file=tree.root
        )
    srcarch = tree.srcarch(arch)
    merged: dict[str, Item] = {}
    for rel in fragment_files(tree, srcarch):
        for symbol, value, line in _items(tree, rel):
            merged[symbol] = Item(
                id=f"hardening-{symbol.lower().replace('_', '-')}",
                kind="kconfig",
                subject=symbol,
                op="=",
                value=value,
                why=f"`make hardening.config` sets it ({rel}:{line})",
                reference=f"{rel}:{line}",
                policy="hardening",
                source=f"{rel}:{line}",
            )
    return Policy(
        name="hardening",
        description=f"make hardening.config of Linux {tree.version} ({arch})",
        reference="kernel/configs/hardening.config",
        items=tuple(merged.values()),
        origin=f"{tree.root} (Linux {tree.version}, {arch})",
    )
