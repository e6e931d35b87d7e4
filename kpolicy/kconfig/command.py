"""`kpolicy kconfig`: evaluate a tree's Kconfig as the kernel does (olddefconfig, why)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kpolicy.cliargs import add_cache_arguments, add_tree_argument, cache_from_args


def _common(parser: argparse.ArgumentParser) -> None:
    add_tree_argument(parser)
    parser.add_argument("--arch", required=True, help="ARCH as given to make (x86_64, arm64, ...)")
    parser.add_argument("--config", type=Path, metavar="IN",
                        help="input .config (default: none, every symbol takes its default)")
    tools = parser.add_mutually_exclusive_group()
    tools.add_argument("--toolchain-from", type=Path, metavar="FILE",
                       help="take tool-derived values (CC_IS_GCC, GCC_VERSION, CC_HAS_*, ...) "
                            "from this existing .config")
    tools.add_argument("--allow-shell", action="store_true",
                       help="run the tree's $(shell,...) commands for real")
    add_cache_arguments(parser)


_TARGETS = {
    "olddefconfig": ("write the configuration `make olddefconfig` would",
                     "Write the fully evaluated configuration, as `make ARCH=ARCH olddefconfig` "
                     "would from IN."),
    "alldefconfig": ("write the configuration `make alldefconfig` would",
                     "Write the configuration with every symbol at its default."),
    "allnoconfig": ("write the configuration `make allnoconfig` would",
                    "Write the configuration with as many symbols off as the tree allows."),
    "allyesconfig": ("write the configuration `make allyesconfig` would",
                     "Write the configuration with as many symbols set to y as the tree allows."),
    "allmodconfig": ("write the configuration `make allmodconfig` would",
                     "Write the configuration with as many symbols set to m as the tree allows."),
    "savedefconfig": ("write the minimal defconfig `make savedefconfig` would",
                      "Write the defconfig of IN: the symbols that differ from their defaults."),
    "listnewconfig": ("list the symbols IN does not set yet",
                      "List the symbols IN does not set (what `make listnewconfig` lists), with "
                      "the value olddefconfig gives them, where they are defined and the first "
                      "line of their help; hardening-related ones first."),
}


def configure_kconfig(parser: argparse.ArgumentParser) -> None:
    """Sub-subcommands: the config targets and why."""
    from kpolicy.kconfig import toolchain

    profiles = "Toolchain profiles:\n" + (toolchain.__doc__ or "").split("\n", 1)[1]
    raw = argparse.RawDescriptionHelpFormatter
    parser.formatter_class = raw
    parser.epilog = profiles
    sub = parser.add_subparsers(dest="kconfig_command", metavar="ACTION", required=True)
    for target, (help_text, description) in _TARGETS.items():
        p = sub.add_parser(target, epilog=profiles, formatter_class=raw, help=help_text,
                           description=description)
        _common(p)
        if target != "listnewconfig":
            p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT",
                           help="where to write the result")
            p.add_argument("--warn-changed-input", action="store_true",
                           help="warn about the values of IN that Kconfig changed (what "
                                "KCONFIG_WARN_CHANGED_INPUT does for make)")
    why = sub.add_parser("why", epilog=profiles, formatter_class=raw,
                         help="a symbol's value and everything that decided it",
                         description="Show the value of SYMBOL and each prompt, dependency, "
                                     "default, select and imply behind it, with file:line and the "
                                     "value of every term.")
    why.add_argument("symbol", metavar="SYMBOL", help="symbol name, with or without CONFIG_")
    _common(why)


def run_kconfig(args: argparse.Namespace) -> int:
    """Run `kpolicy kconfig ACTION`; 0 on success, 2 on bad input (raised as KpolicyError)."""
    from kpolicy.kconfig.load import load_model
    from kpolicy.kconfig.targets import run_target
    from kpolicy.kconfig.toolchain import (
        default_toolchain,
        shell_toolchain,
        toolchain_from_config,
    )
    from kpolicy.kconfig.why import explain, format_why
    from kpolicy.textio import atomic_write_bytes
    from kpolicy.tree import open_tree

    tree = open_tree(args.tree)
    if args.allow_shell:
        toolchain = shell_toolchain()
    elif args.toolchain_from is not None:
        toolchain = toolchain_from_config(args.toolchain_from)
    else:
        toolchain = default_toolchain()
    if args.kconfig_command in _TARGETS:
        result = run_target(tree, args.arch, args.kconfig_command, config=args.config,
                            toolchain=toolchain, cache=cache_from_args(args),
                            warn_changed_input=getattr(args, "warn_changed_input", False))
        for message in result.messages:
            print(message, file=sys.stderr)
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if args.kconfig_command == "listnewconfig":
            sys.stdout.write(result.text)
        else:
            atomic_write_bytes(args.output, result.text.encode())
        return 0
    model = load_model(tree, args.arch, config=args.config, toolchain=toolchain,
                       cache=cache_from_args(args))
    for message in model.messages:
        print(message, file=sys.stderr)
    for warning in model.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    name = args.symbol[len("CONFIG_"):] if args.symbol.startswith("CONFIG_") else args.symbol
    sys.stdout.write(format_why(explain(model, name)))
    return 0
