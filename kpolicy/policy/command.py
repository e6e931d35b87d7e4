"""`kpolicy check`: a config, command line and sysctls against a policy; the work is in check.py."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from kpolicy.cliargs import add_cache_arguments, cache_from_args
from kpolicy.errors import KpolicyError
from kpolicy.kernel import parse_version
from kpolicy.textio import read_text

if TYPE_CHECKING:
    from kpolicy.cache import Cache
    from kpolicy.kconfig.model import KconfigModel
    from kpolicy.tree import KernelTree

FORMATS = ("text", "json", "sarif", "junit", "github")


def configure_check(p: argparse.ArgumentParser) -> None:
    """Arguments of `kpolicy check`."""
    p.description = (
        "Check a .config, command line and sysctls against a hardening policy: pass, fail or "
        "not-applicable per item, with a fix proven to pass for each failure. Without "
        "--config/--cmdline it checks this machine's running kernel against `baseline`."
    )
    p.add_argument("--policy", default="baseline", metavar="NAME|FILE",
                   help="a bundled policy (baseline, kspp, hardening) or a policy file "
                   "(default: baseline)")
    p.add_argument("--config", type=Path, metavar="FILE", help=".config (plain or gzip'd)")
    line = p.add_mutually_exclusive_group()
    line.add_argument("--cmdline", metavar="STRING", help="the boot loader's command line")
    line.add_argument("--cmdline-file", type=Path, metavar="FILE",
                      help="a file holding the command line (/proc/cmdline style)")
    p.add_argument("--bootconfig", type=Path, metavar="FILE", help="bootconfig text")
    p.add_argument("--sysctl", type=Path, action="append", default=[], metavar="PATH",
                   help="after boot: a sysctl -a dump, a sysctl.conf, a sysctl.d directory or a "
                   "root holding etc/, run/, usr/lib/sysctl.d (read as systemd-sysctl does); "
                   "repeatable")
    p.add_argument("--secure-boot", choices=("on", "off"),
                   help="whether the machine boots with UEFI Secure Boot")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--fail-on", choices=("warning", "error"), default="warning",
                   help="exit 1 when an unwaived failure has this severity or higher "
                   "(default: warning)")
    p.add_argument("--all", action="store_true", help="text: list passing and "
                   "not-applicable items too")
    p.add_argument("--no-fix", action="store_true", help="do not search for fixes")
    p.add_argument("--model", type=Path, metavar="FILE",
                   help="a model made by `kpolicy model build` (default: the bundled one "
                   "matching the config's version)")
    p.add_argument("--tree", type=Path, metavar="DIR",
                   help="a kernel tree whose whole Kconfig judges CONFIG_ items (a symbol it "
                   "lacks does not exist) and whose hardening.config is the `hardening` policy")
    p.add_argument("--arch", help="ARCH with --tree (default: the config's, else x86_64)")
    add_cache_arguments(p)


def _read_cmdline(path: Path) -> str:
    text = read_text(path, what="command line file")
    return text[:-1] if text.endswith("\n") else text


def _tree_kconfig(tree: KernelTree, arch: str, config_path: Optional[Path], fingerprint: str,
                  cache: Cache) -> tuple[KconfigModel, str]:
    """TREE's whole Kconfig for ARCH valued as `make olddefconfig` values CONFIG_PATH: with the
    tree's FINGERPRINT (resolve's freshness index: every Kconfig file's stat), kept in CACHE
    per fingerprint and config, so a warm run reads no Kconfig file. Second, its cache key
    ("" when not cached)."""
    from kpolicy.kconfig.load import load_model
    from kpolicy.kconfig.model import KconfigModel
    from kpolicy.kconfig.toolchain import toolchain_from_config

    def build() -> KconfigModel:
        model = load_model(
            tree, arch, config=config_path,
            toolchain=toolchain_from_config(config_path) if config_path else None, cache=cache,
        )
        # check writes no .config: the menu tree (most of a cached model's load time) goes
        return replace(model, menu=())

    if not fingerprint or not cache.enabled:
        return build(), ""
    from kpolicy.cache import content_key

    text = read_text(config_path, what=".config") if config_path is not None else ""
    key = content_key("check-tree-kconfig", fingerprint, arch, config_path is not None, text)
    return cache.get_or_build("check-tree-kconfig", key, build, KconfigModel), key


def run_check(args: argparse.Namespace) -> int:
    """Check and print; 0 all pass, 1 a failure at or above --fail-on, 2 an error."""
    from kpolicy.policy import output
    from kpolicy.policy.check import Checker
    from kpolicy.policy.check import run_check as check
    from kpolicy.policy.schema import load_policy_cached
    from kpolicy.resolve.api import all_features, shipped_lsms, shipped_rules
    from kpolicy.resolve.features import Machine
    from kpolicy.resolve.inputs import (
        choose_model,
        defaults_config,
        read_config,
        running_machine,
        running_system_inputs,
        tree_arch,
    )
    from kpolicy.sysctl.spec import use_sysctl_cache

    cache = cache_from_args(args)
    use_sysctl_cache(cache)
    shipped_lsms(cache)  # the LSM table from the cache too: no TOML parser when warm
    notes: list[str] = []
    config_path: Optional[Path] = args.config
    cmdline: Optional[str] = args.cmdline
    if args.cmdline_file is not None:
        cmdline = _read_cmdline(args.cmdline_file)
    machine = Machine(secure_boot=None if args.secure_boot is None else args.secure_boot == "on")
    if config_path is None and cmdline is None and args.model is None and args.tree is None:
        config_path, cmdline_path, notes = running_system_inputs()
        if cmdline_path is not None:
            cmdline = _read_cmdline(cmdline_path)
        here = running_machine()
        machine = Machine(ram_mib=here.ram_mib, secure_boot=machine.secure_boot
                          if machine.secure_boot is not None else here.secure_boot)
    kconfig, complete, tree, kconfig_key = None, False, None, ""
    if args.tree is not None:
        from kpolicy.tree import open_tree

        tree = open_tree(args.tree)
        args.arch = tree_arch(args.arch, config_path)
        given = read_config(config_path) if config_path is not None else None
        if given is not None and given.version and (
                parse_version(given.version)[:2] != tree.version_tuple[:2]):
            raise KpolicyError(f"the tree is Linux {tree.version}, the config {given.version}: "
                               "give a tree of the config's version")
    if tree is not None and args.model is None:
        # resolve's warm --tree path: the tree's compact model and the config's evaluation,
        # cached per tree content; the tree's whole Kconfig kept beside them
        from kpolicy.resolve.command import fresh_tree_model_and_config

        model, config, warnings, fingerprint, _fresh = fresh_tree_model_and_config(
            args, config_path)
        kconfig, kconfig_key = _tree_kconfig(tree, args.arch, config_path, fingerprint, cache)
    else:
        read = read_config(config_path) if config_path is not None else None
        model, warnings = choose_model(read, args.model, cache)
        config = read or defaults_config(model)
        if tree is not None:
            if tree.version_tuple[:2] != model.version_tuple[:2]:
                raise KpolicyError(f"the tree is Linux {tree.version}, the model "
                                   f"{model.version}: give a tree of the model's version")
            kconfig, kconfig_key = _tree_kconfig(tree, args.arch, config_path, "", cache)
    notes += warnings
    if kconfig is None:
        kconfig = model.kconfig
    else:
        complete = True
        # the config as Kconfig values it (`make olddefconfig`): a symbol the file leaves out
        # takes its default, as in the build
        config = replace(config, values=dict(kconfig.values),
                         warnings=tuple(dict.fromkeys(config.warnings + kconfig.warnings)))
    if args.policy == "hardening":
        if tree is None:
            raise KpolicyError("--policy hardening reads the kernel's hardening.config: "
                               "give --tree DIR (Linux 6.7 or later)")
        from kpolicy.policy.fragment import hardening_policy

        policy = hardening_policy(tree, args.arch)
    else:
        policy = load_policy_cached(args.policy, cache)
    from kpolicy.sysctl.sysctld import read_sysctl_inputs

    sysctl_files = tuple(read_sysctl_inputs(args.sysctl))
    rules = shipped_rules(cache)
    checker = Checker(
        model=model, kconfig=kconfig, complete=complete, config=config, cmdline=cmdline or "",
        specs=all_features(model, rules.features), declarations=rules.declarations,
        machine=machine, sysctl_files=sysctl_files,
        bootconfig=read_text(args.bootconfig, what="bootconfig") if args.bootconfig else None,
        cache=cache, kconfig_key=kconfig_key,
    )
    result = check(policy, checker, fixes=not args.no_fix)
    for w in (*notes, *result.warnings):
        print(f"kpolicy: warning: {w}", file=sys.stderr)
    if args.format == "text":
        text = output.result_text(result, show_all=args.all)
    elif args.format == "json":
        text = json.dumps(output.result_json(result), indent=2) + "\n"
    else:
        text = {"sarif": output.result_sarif, "junit": output.result_junit,
                "github": output.result_github}[args.format](result)
    sys.stdout.write(text)
    return 1 if result.failed(args.fail_on) else 0

