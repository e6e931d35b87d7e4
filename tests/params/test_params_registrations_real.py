"""The C registration scanner on the real 6.1, 6.12 and 7.2 trees (each scanned once, cached)."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import pytest
from conftest import real_tree

from kpolicy.cache import Cache
from kpolicy.params.model import Registration, StaticKey
from kpolicy.params.scan import scan_registrations
from kpolicy.tree import open_tree

pytestmark = pytest.mark.real
VERSIONS = ("6.1", "6.12", "7.2")
Scan = tuple[tuple[Registration, ...], tuple[StaticKey, ...]]


@functools.cache  # one scan per tree per session (then the on-disk cache)
def _scan(version: str) -> Scan:
    return scan_registrations(open_tree(real_tree(version)), Cache(None))


def _grep_names(root: Path) -> set[str]:
    """Names a plain grep finds in early_param("...") and __setup("...") in the C files."""
    out = subprocess.run(
        ["grep", "-rhoE", "--include=*.c", "--exclude-dir=tools", "--exclude-dir=Documentation",
         r'(early_param|__setup)\("[^"]*"', str(root)],
        capture_output=True, text=True, errors="replace", check=False).stdout
    return {re.search(r'"([^"]*)"', line).group(1).rstrip("=")  # type: ignore[union-attr]
            for line in out.splitlines()}


@pytest.mark.parametrize("version", VERSIONS)
def test_grep_names_are_in_the_scan(version: str) -> None:
    grepped = _grep_names(real_tree(version))
    scanned = {r.name for r in _scan(version)[0]}
    missing = sorted(grepped - scanned)
    print(f"{version}: {len(grepped)} grepped names, missing: {missing}")
    assert len(grepped) > 500
    assert len(missing) <= 0.02 * len(grepped), missing


# name -> (kind, file, built_if) on every version
BUILTIN = {
    "page_alloc.shuffle": ("module_param", "mm/shuffle.c", "SHUFFLE_PAGE_ALLOCATOR"),
    "zswap.enabled": ("module_param", "mm/zswap.c", "ZSWAP"),
    "module.sig_enforce": ("module_param", "kernel/module/signing.c", "MODULE_SIG"),
    "workqueue.power_efficient": ("module_param", "kernel/workqueue.c", None),
    "printk.time": ("module_param", "kernel/printk/printk.c", None),
    "rcupdate.rcu_expedited": ("module_param", "kernel/rcu/update.c", None),
    "rcutree.kthread_prio": ("module_param", "kernel/rcu/tree.c", "TREE_RCU"),
    "randomize_kstack_offset": ("early_param", "init/main.c", None),
    "hardened_usercopy": ("__setup", "mm/usercopy.c", "HARDENED_USERCOPY"),
    "initcall_debug": ("core_param", "init/main.c", None),
}


@pytest.mark.parametrize("version", VERSIONS)
def test_builtin_params_have_their_real_names(version: str) -> None:
    regs = _scan(version)[0]
    by_name: dict[str, list[Registration]] = {}
    for r in regs:
        by_name.setdefault(r.name, []).append(r)
    for name, (kind, rel, built_if) in BUILTIN.items():
        assert [(r.kind, r.location.file, r.built_if) for r in by_name[name]] == [
            (kind, rel, built_if)], name
    assert by_name["randomize_kstack_offset"][0].parser == "kstrtobool"
    assert by_name["page_alloc.shuffle"][0].parser == "kstrtobool"
    # init_on_alloc moved from mm/page_alloc.c to mm/mm_init.c in 6.4
    init_on_alloc = by_name["init_on_alloc"][0]
    assert init_on_alloc.kind == "early_param" and init_on_alloc.parser == "kstrtobool"
    assert init_on_alloc.location.file in ("mm/page_alloc.c", "mm/mm_init.c")
    # rcupdate.* from kernel/rcu/tasks.h, a header update.c includes under its own prefix
    assert any(r.location.file == "kernel/rcu/tasks.h" for r in regs
               if r.name.startswith("rcupdate."))
    # torture_param() from include/linux/torture.h
    assert "rcutorture.verbose" in by_name and "locktorture.verbose" in by_name


@pytest.mark.parametrize("version", VERSIONS)
def test_the_kstack_static_key(version: str) -> None:
    keys = [k for k in _scan(version)[1] if k.name == "randomize_kstack_offset"]
    assert [(k.symbol, k.initial, k.location.file) for k in keys] == [
        ("RANDOMIZE_KSTACK_OFFSET_DEFAULT", "config", "init/main.c")]


def test_workers_scan_the_real_tree_as_one_process_does() -> None:
    from kpolicy.params.scan import scan_all

    tree = open_tree(real_tree("7.2"))
    regs, keys, _reads = scan_all(tree, None, jobs=2)  # no cache: the workers really scan
    assert (regs, keys) == _scan("7.2")
