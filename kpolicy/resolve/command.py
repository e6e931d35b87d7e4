"""`kpolicy resolve`, `diff`, `report` and `model`: argument handling; the work is in api/engine."""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

from kpolicy.cliargs import add_cache_arguments, add_jobs_argument, cache_from_args
from kpolicy.errors import KpolicyError
from kpolicy.longlived import long_lived
from kpolicy.params.semantics import Declaration, FeatureSpec
from kpolicy.resolve.api import (
    Resolution,
    ResolveMemo,
    all_features,
    kernel_params_for,
    resolve,
    shipped_lsms,
    shipped_rules,
    shipped_rules_key,
)
from kpolicy.resolve.batch import BatchResolver
from kpolicy.resolve.features import Machine
from kpolicy.resolve.inputs import (
    ConfigInput,
    check_arch,
    choose_model,
    defaults_config,
    read_config,
    running_machine,
    running_system_inputs,
    tree_arch,
)
from kpolicy.resolve.model import ResolveModel
from kpolicy.resolve.output import resolution_json, resolution_text
from kpolicy.sysctl.spec import use_sysctl_cache
from kpolicy.textio import read_bytes, read_text

if TYPE_CHECKING:
    from kpolicy.cache import Cache
    from kpolicy.resolve.review import Verdict

DEFAULT_ARCH = "x86_64"


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        type=Path,
        metavar="FILE",
        help="a model made by `kpolicy model build` (default: the bundled one matching "
        "the config's version)",
    )
    p.add_argument(
        "--tree",
        type=Path,
        metavar="DIR",
        help="resolve against a kernel source tree instead of a model",
    )
    p.add_argument(
        "--arch", help=f"ARCH with --tree (default: the config's, else {DEFAULT_ARCH})"
    )
    add_cache_arguments(p)


def configure_resolve(p: argparse.ArgumentParser) -> None:
    """Arguments of `kpolicy resolve`."""
    p.description = (
        "What a .config plus kernel command line really puts in force, and why. "
        "Without --config/--cmdline it reads this machine's config and /proc/cmdline."
    )
    p.add_argument("--config", type=Path, metavar="FILE", help=".config (plain or gzip'd)")
    line = p.add_mutually_exclusive_group()
    line.add_argument("--cmdline", metavar="STRING", help="the boot loader's command line")
    line.add_argument(
        "--cmdline-file",
        type=Path,
        metavar="FILE",
        help="a file holding the command line (/proc/cmdline style)",
    )
    line.add_argument(
        "--cmdlines",
        type=Path,
        metavar="FILE.jsonl",
        help='batch: one command line per line (a JSON string or {"cmdline": ..., '
        '"id": ...}); one JSON result per line',
    )
    p.add_argument("--bootconfig", type=Path, metavar="FILE", help="bootconfig text")
    add_jobs_argument(p, "answer --cmdlines")
    p.add_argument(
        "--ram",
        type=int,
        metavar="MIB",
        help="the machine's memory in MiB (outcomes like transparent hugepages depend "
        "on it; default: this machine's when reading its own config)",
    )
    p.add_argument(
        "--secure-boot",
        choices=("on", "off"),
        help="whether the machine boots with UEFI Secure Boot (lockdown depends on it)",
    )
    p.add_argument(
        "--sysctl",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="after boot: a sysctl -a dump, a sysctl.conf, a sysctl.d directory or a root "
        "holding etc/, run/, usr/lib/sysctl.d (read as systemd-sysctl does); repeatable, "
        "applied in order",
    )
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="text: the chain default -> config -> command line -> effective",
    )
    _add_model_arguments(p)


def _read_cmdline_file(path: Path) -> str:
    text = read_text(path, what="command line file")
    return text[:-1] if text.endswith("\n") else text  # /proc/cmdline ends with one newline


def _always_fresh() -> bool:
    return True


def _model_and_config(
    args: argparse.Namespace, config_path: Optional[Path],
    tree_inputs: Optional[Callable[[argparse.Namespace, Optional[Path]], TreeInputs]] = None,
) -> tuple[ResolveModel, ConfigInput, list[str], Callable[[], bool]]:
    """The model to resolve with and the config input, from --tree (through TREE_INPUTS, by
    default fresh_tree_model_and_config)/--model/bundled, and a wait for whether they are still
    the tree's (TreeInputs.fresh)."""
    if args.tree is not None:
        got = (tree_inputs or fresh_tree_model_and_config)(args, config_path)
        return got.model, got.config, got.warnings, got.fresh
    config = read_config(config_path) if config_path is not None else None
    model, warnings = choose_model(config, args.model, cache_from_args(args))
    return model, config or defaults_config(model), warnings, _always_fresh


class TreeInputs(NamedTuple):
    """--tree's model and evaluated .config, the tree's fingerprint (a key for what else is
    derived from its files) and a wait for whether they are still the tree's."""

    model: ResolveModel
    config: ConfigInput
    warnings: list[str]
    fingerprint: str
    fresh: Callable[[], bool]


def fresh_tree_model_and_config(args: argparse.Namespace,
                                config_path: Optional[Path]) -> TreeInputs:
    """tree_model_and_config, its freshness waited for."""
    got = tree_model_and_config(args, config_path)
    return got if got.fresh() else tree_model_and_config(args, config_path, reuse=False)


def tree_model_and_config(
    args: argparse.Namespace, config_path: Optional[Path], *, reuse: bool = True
) -> TreeInputs:
    """--tree: the compact model and the .config as `make olddefconfig` values it, both cached
    per tree content (kpolicy.resolve.treecache); the analysis runs only on a miss. With REUSE,
    cached ones come before their freshness is known: act on them only once fresh() is true, else
    ask again without REUSE."""
    from kpolicy.resolve.treecache import cached_evaluation, cached_tree_model
    from kpolicy.tree import open_tree

    args.arch = tree_arch(args.arch, config_path)
    cache = cache_from_args(args)
    tree = open_tree(args.tree)

    def build_model() -> tuple[ResolveModel, set[str]]:
        from kpolicy.resolve.build import build_resolve_model_and_sources

        specs = shipped_rules(cache).features  # cached, as run_resolve reads it
        return build_resolve_model_and_sources(args.tree, args.arch, specs, cache)

    # The model holds Kconfig's defaults under the default toolchain, like a bundled one;
    # the config's own values are evaluated with the config as its toolchain profile.
    got = cached_tree_model(tree, args.arch, shipped_rules_key(), cache, build_model,
                            reuse=reuse)
    model = got.model.__class__(**{**got.model.__dict__, "origin": f"tree {args.tree}"})
    if config_path is None:
        return TreeInputs(model, defaults_config(model), [], got.fingerprint, got.fresh)

    def evaluate() -> ConfigInput:
        from kpolicy.kconfig.load import load_model
        from kpolicy.kconfig.toolchain import toolchain_from_config

        assert config_path is not None
        given = read_config(config_path)
        check_arch(given, model)
        evaluated = load_model(tree, args.arch, config=config_path,
                               toolchain=toolchain_from_config(config_path), cache=cache)
        # the evaluation's warnings repeat the .config's own and add what needs the tree
        # (unknown symbols, invalid values)
        return ConfigInput(given.path, dict(evaluated.values), given.version,
                           tuple(dict.fromkeys(given.warnings + tuple(evaluated.warnings))),
                           given.lines, given.header_arch)

    # kept whole, the .config's own reading included: a warm run does not parse it
    config = cached_evaluation(got, args.arch, str(config_path),
                               read_bytes(config_path, what="kernel config"), cache, evaluate)
    if config is None:  # not cached, and the cached model turned out stale
        return tree_model_and_config(args, config_path, reuse=False)
    return TreeInputs(model, config, [], got.fingerprint, got.fresh)


def _emit(res: Resolution, args: argparse.Namespace) -> None:
    if args.format == "json":
        sys.stdout.write(json.dumps(resolution_json(res), indent=2, sort_keys=False) + "\n")
    else:
        sys.stdout.write(resolution_text(res, verbose=args.verbose))


def run_resolve(args: argparse.Namespace, reuse_tree: bool = True) -> int:
    """Resolve one config and command line (or a batch of command lines). A --tree model from
    the cache is resolved with while its freshness is checked; when stale, all is done again
    (REUSE_TREE false), and nothing was output."""
    notes: list[str] = []
    config_path: Optional[Path] = args.config
    cmdline: Optional[str] = args.cmdline
    if args.cmdline_file is not None:
        cmdline = _read_cmdline_file(args.cmdline_file)
    machine = Machine(
        ram_mib=args.ram, secure_boot=None if args.secure_boot is None else args.secure_boot == "on"
    )
    live = False
    if (
        config_path is None
        and cmdline is None
        and args.cmdlines is None
        and args.model is None
        and args.tree is None
    ):
        config_path, cmdline_path, notes = running_system_inputs()
        live = True
        if cmdline_path is not None:
            cmdline = _read_cmdline_file(cmdline_path)
        here = running_machine()
        machine = Machine(
            ram_mib=machine.ram_mib if machine.ram_mib is not None else here.ram_mib,
            secure_boot=machine.secure_boot
            if machine.secure_boot is not None
            else here.secure_boot,
            cpu_features=here.cpu_features,
            cpu_known=here.cpu_known,
        )
    bootconfig = read_text(args.bootconfig, what="bootconfig") if args.bootconfig else None
    use_sysctl_cache(cache_from_args(args))  # the sysctl rules without a TOML parser when warm
    shipped_lsms(cache_from_args(args))  # the LSM table likewise
    # with a --tree model from the cache, before its freshness is known: nothing is output or
    # stored until fresh() says so
    model, config, warnings, fresh = _model_and_config(
        args, config_path, functools.partial(tree_model_and_config, reuse=reuse_tree))
    notes += warnings
    rules = shipped_rules(cache_from_args(args))
    specs = all_features(model, rules.features)
    declarations = rules.declarations
    if args.cmdlines is not None:
        if not fresh():
            return run_resolve(args, reuse_tree=False)
        return _run_batch(
            args.cmdlines, model, config, bootconfig, notes, machine, specs, declarations,
            args.jobs,
        )
    try:
        res = resolve(
            model,
            config,
            cmdline or "",
            bootconfig=bootconfig,
            warnings=notes,
            machine=machine,
            specs=specs,
            declarations=declarations,
        )
    except KpolicyError as err:
        if not fresh():
            return run_resolve(args, reuse_tree=False)
        raise _name_bootconfig(err, args.bootconfig) from None
    if not fresh():
        return run_resolve(args, reuse_tree=False)
    res = _after_boot(res, args.sysctl, live)
    if args.tree is not None:
        res = _check_sysctl_rules(res, args.tree, cache_from_args(args))
    # the command line's own warnings (control bytes, truncation) too: text output has no place
    for w in (*res.warnings, *res.cmdline.warnings):
        print(f"kpolicy: warning: {w}", file=sys.stderr)
    _emit(res, args)
    return 0


def _check_sysctl_rules(res: Resolution, tree_path: Path, cache: Cache) -> Resolution:
    """RES with a warning for each sysctl whose initial value is not where
    rules/sysctls/security.toml says in the tree at TREE_PATH (a distribution patch the rules
    assume, not applied); cached per (rules, stat of the C files they name)."""
    from dataclasses import replace

    from kpolicy.cache import content_key
    from kpolicy.sysctl.evidence import tree_problems
    from kpolicy.sysctl.spec import load_sysctl_rules
    from kpolicy.tree import open_tree

    tree, specs = open_tree(tree_path), load_sysctl_rules()
    stats = []
    for rel in sorted({s.evidence.file_for(tree.version_tuple) for s in specs}):
        try:
            st = os.lstat(tree.root / rel)
            stats.append((rel, st.st_size, st.st_mtime_ns, st.st_mode))
        except OSError:
            stats.append((rel, -1, -1, 0))
    key = content_key("tree-sysctl", str(tree.root), tree.version, repr(specs), tuple(stats))
    problems = cache.get_or_build("tree-sysctl", key, lambda: tree_problems(tree, specs), list)
    notes = [f"{p}: its predicted value may be wrong for this tree" for p in problems]
    return replace(res, warnings=res.warnings + tuple(notes))


def _after_boot(res: Resolution, files: Sequence[Path], live: bool) -> Resolution:
    """RES's sysctls after the --sysctl FILES, and compared with /proc/sys when LIVE."""
    from dataclasses import replace

    sysctls = res.sysctls
    if files:  # imported only then: neither module is on a plain resolve's path
        from kpolicy.sysctl.sysctld import apply_sysctl_files, read_sysctl_inputs

        sysctls = apply_sysctl_files(sysctls, read_sysctl_inputs(files))
    if live:
        from kpolicy.sysctl.running import compare_running

        sysctls = compare_running(sysctls, Path("/proc/sys"))
    for s in sysctls:
        for w in s.warnings:
            print(f"kpolicy: warning: {w}", file=sys.stderr)
    return replace(res, sysctls=sysctls)


def _name_bootconfig(err: KpolicyError, path: Optional[Path]) -> KpolicyError:
    """ERR with the --bootconfig file named, when the bootconfig parser raised it."""
    from kpolicy.cmdline.bootconfig import WHERE

    if path is None or err.file != WHERE:
        return err
    return KpolicyError(err.message, file=path, line=err.line)


# Command lines a --cmdlines worker answers at a time: large enough that passing blocks between
# processes costs little, small enough that answers are written as they come.
BATCH_BLOCK = 2000


def _run_batch(
    path: Path,
    model: ResolveModel,
    config: ConfigInput,
    bootconfig: Optional[str],
    notes: list[str],
    machine: Machine,
    specs: tuple[FeatureSpec, ...],
    declarations: tuple[Declaration, ...],
    jobs: int,
) -> int:
    with long_lived():  # the model and the tables every line reads (10% of a batch's time)
        kp = kernel_params_for(model, config, declarations=declarations)
        # BatchResolver's text is resolution_json's when feature names are distinct (JSON keys)
        batch = (
            BatchResolver(model, config, specs, kp, machine)
            if len({s.name for s in specs}) == len(specs)
            else None
        )
    memo = ResolveMemo()  # what every line shares: the config's side of each feature
    dumps = json.JSONEncoder(separators=(",", ":")).encode

    def answer(line: str) -> list[Any]:
        try:
            item: Any = json.loads(line)
        except (ValueError, RecursionError) as exc:  # RecursionError: [[[[... nested too deep
            raise KpolicyError(f"not JSON: {exc}") from None
        ident, boot = None, bootconfig
        if isinstance(item, dict):
            ident, boot, item = (
                item.get("id"),
                item.get("bootconfig", bootconfig),
                item.get("cmdline"),
            )
        if not isinstance(item, str) or not isinstance(boot, (str, type(None))):
            raise KpolicyError(
                'expected a JSON string or an object with a "cmdline" string '
                '(and optionally a "bootconfig" string)'
            )
        if batch is not None:
            return batch.pieces(item, boot, ident)
        res = resolve(
            model, config, item, bootconfig=boot, specs=specs, kp=kp, machine=machine, memo=memo
        )
        text = dumps(resolution_json(res))
        if ident is not None:
            text = f'{{"id":{dumps(ident)},{text[1:]}'
        return [text.encode(), b"\n"]

    def answer_block(block: Sequence[tuple[int, str]]) -> tuple[list[Any], Optional[KpolicyError]]:
        """The answers to BLOCK's lines, up to the first bad one, and that one's error."""
        pieces: list[Any] = []
        for number, line in block:
            try:
                pieces += answer(line)
            except KpolicyError as err:
                return pieces, KpolicyError(err.message, file=path, line=number)
        return pieces, None

    out = sys.stdout.buffer
    sys.stdout.flush()
    for w in notes:
        print(f"kpolicy: warning: {w}", file=sys.stderr)
    lines = [(n, line) for n, line in enumerate(read_text(path, what="command lines file")
                                                .splitlines(), 1) if line.strip()]
    blocks = [lines[at:at + BATCH_BLOCK] for at in range(0, len(lines), BATCH_BLOCK)]
    # BatchResolver makes no reference cycles (see test_batch_makes_no_reference_cycles), so the
    # cyclic GC would only rescan the answer caches that grow with the batch, ~10% of it.
    from kpolicy.forked import write_in_order  # only batches fork: not on resolve's start-up

    if batch is not None:
        gc.disable()
    try:
        error = write_in_order(blocks, answer_block, out, jobs)
    finally:
        gc.enable()
    if error is not None:
        raise error
    return 0


# --- diff -------------------------------------------------------------------------------------


def configure_diff(p: argparse.ArgumentParser) -> None:
    """Arguments of `kpolicy diff`."""
    p.description = (
        "Compare the effective policy of two configs (each optionally booted with a "
        "command line). A side is CONFIG or CONFIG:CMDLINE_FILE; --a-cmdline/--b-cmdline "
        "give a side's command line as a string instead. Exit 1 when they differ."
    )
    p.add_argument("a", metavar="A", help="CONFIG[:CMDLINE_FILE]")
    p.add_argument("b", metavar="B", help="CONFIG[:CMDLINE_FILE]")
    p.add_argument("--a-cmdline", metavar="STRING")
    p.add_argument("--b-cmdline", metavar="STRING")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--all", action="store_true", help="list unchanged settings too")
    _add_policy_argument(p)
    _add_model_arguments(p)


def split_side(side: str) -> tuple[Path, Optional[Path]]:
    """CONFIG[:CMDLINE_FILE] -> (config, cmdline file); a path that exists whole is never split."""
    if Path(side).exists() or ":" not in side:
        return Path(side), None
    config, _sep, cmdline = side.rpartition(":")
    return Path(config), Path(cmdline)


def _resolve_side(
    args: argparse.Namespace, side: str, cmdline: Optional[str]
) -> tuple[Resolution, str]:
    """SIDE resolved, and the command line it was booted with (before the built-in merge)."""
    config_path, cmdline_path = split_side(side)
    if cmdline is not None and cmdline_path is not None:
        raise KpolicyError(f"'{side}' names a command line file and a --*-cmdline string: pick one")
    if cmdline_path is not None:
        cmdline = _read_cmdline_file(cmdline_path)
    model, config, warnings, _fresh = _model_and_config(args, config_path)
    return resolve(model, config, cmdline or "", warnings=warnings), cmdline or ""


def _add_policy_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", metavar="NAME|FILE",
                   help="also judge each side against this policy (a bundled name or a policy "
                   "file; `hardening` needs --tree)")


def _policy_checks(
    args: argparse.Namespace, sides: Sequence[tuple[Resolution, str]]
) -> list[list[Verdict]]:
    """--policy's verdicts on each side (fixes are not searched: a review, not a repair)."""
    from kpolicy.policy.check import Checker, run_check
    from kpolicy.policy.schema import load_policy
    from kpolicy.resolve.review import Verdict

    if args.policy == "hardening":
        if args.tree is None:
            raise KpolicyError("--policy hardening reads the kernel's hardening.config: "
                               "give --tree DIR (Linux 6.7 or later)")
        from kpolicy.policy.fragment import hardening_policy
        from kpolicy.tree import open_tree

        policy = hardening_policy(open_tree(args.tree), tree_arch(args.arch, None))
    else:
        policy = load_policy(args.policy)
    rules = shipped_rules(cache_from_args(args))
    out = []
    for res, cmdline in sides:
        checker = Checker(
            model=res.model, kconfig=res.model.kconfig, complete=False, config=res.config,
            cmdline=cmdline, specs=all_features(res.model, rules.features),
            declarations=rules.declarations,
        )
        result = run_check(policy, checker, fixes=False)
        out.append([Verdict(r.item.id, r.item.kind, r.item.subject, r.item.require, r.status,
                            r.actual, r.why) for r in result.results])
    return out


def _review_symbols() -> tuple[str, ...]:
    """The Kconfig symbols the bundled policy files name: the hardening rows of diff/report."""
    from kpolicy.policy.schema import bundled_policy_dir, load_policy

    return tuple(sorted({i.subject for p in bundled_policy_dir().glob("*.toml")
                         for i in load_policy(p.stem).items if i.kind == "kconfig"}))


def run_diff(args: argparse.Namespace) -> int:
    """Print what differs in policy-relevant settings between A and B; 1 when something does."""
    from kpolicy.resolve.compare import diff_json, diff_text
    from kpolicy.resolve.review import review_rows

    (a, a_line), (b, b_line) = (_resolve_side(args, args.a, args.a_cmdline),
                                _resolve_side(args, args.b, args.b_cmdline))
    for w in (*a.warnings, *b.warnings):
        print(f"kpolicy: warning: {w}", file=sys.stderr)
    checks = _policy_checks(args, ((a, a_line), (b, b_line))) if args.policy else None
    rows = review_rows((a, b), _review_symbols(), checks)
    if args.format == "json":
        sys.stdout.write(json.dumps(diff_json(a, b, rows, args.policy), indent=2) + "\n")
    else:
        sys.stdout.write(diff_text(a, b, rows, show_all=args.all, policy=args.policy))
    return 1 if any(r.changed for r in rows) else 0


# --- report -----------------------------------------------------------------------------------


def configure_report(p: argparse.ArgumentParser) -> None:
    """Arguments of `kpolicy report`."""
    p.description = (
        "A policy matrix, features x configs, as one self-contained HTML page. "
        "Each CONFIG may carry a command line file as CONFIG:CMDLINE_FILE."
    )
    p.add_argument("configs", nargs="+", metavar="CONFIG[:CMDLINE_FILE]")
    p.add_argument("--format", choices=("html",), default="html")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout)")
    _add_policy_argument(p)
    _add_model_arguments(p)


def _label(side: str) -> str:
    """A column label: the config's file name (and the command line file's)."""
    config, cmdline = split_side(side)
    return config.name + (f" + {cmdline.name}" if cmdline is not None else "")


def run_report(args: argparse.Namespace) -> int:
    """Write the HTML matrix of the given configs."""
    from kpolicy.resolve.html import report_html
    from kpolicy.resolve.review import review_rows
    from kpolicy.textio import atomic_write_bytes

    sides = [_resolve_side(args, side, None) for side in args.configs]
    labels = [_label(side) for side in args.configs]
    if len(set(labels)) < len(labels):  # the same file name from two directories: say which
        labels = [f"{split_side(side)[0].parent.name}/{label}"
                  for side, label in zip(args.configs, labels)]
    columns = list(zip(labels, (res for res, _line in sides)))
    checks = _policy_checks(args, sides) if args.policy else None
    rows = review_rows([res for res, _line in sides], _review_symbols(), checks)
    page = report_html(columns, rows, args.policy)
    if args.output is None:
        sys.stdout.write(page)
    else:
        atomic_write_bytes(args.output, page.encode("utf-8"))
    return 0


# --- model ------------------------------------------------------------------------------------


def configure_model(p: argparse.ArgumentParser) -> None:
    """Arguments of `kpolicy model build|show`."""
    sub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="make a compact resolve model of a tree")
    b.add_argument("--tree", type=Path, required=True, metavar="DIR")
    b.add_argument("--arch", default=DEFAULT_ARCH)
    b.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    add_cache_arguments(b)
    s = sub.add_parser("show", help="summarize a model file (or the bundled ones)")
    s.add_argument("file", type=Path, nargs="?", metavar="FILE")


def run_model(args: argparse.Namespace) -> int:
    """Build a model file, or describe one."""
    from kpolicy.resolve.bundle import bundled_models, model_to_bytes, read_model

    if args.model_command == "build":
        from kpolicy.params.semantics import load_param_rules
        from kpolicy.resolve.build import build_resolve_model
        from kpolicy.textio import atomic_write_bytes

        specs = load_param_rules().features
        model = build_resolve_model(args.tree, args.arch, specs, cache_from_args(args))
        data = model_to_bytes(model)
        atomic_write_bytes(args.output, data)
        print(
            f"{args.output}: Linux {model.version} {model.arch}: {len(model.kconfig.symbols)} "
            f"symbols, {len(model.catalog.registrations)} registrations, "
            f"{len(model.families)} families, {len(data)} bytes"
        )
        return 0
    paths = [args.file] if args.file else list(bundled_models().values())
    for path in paths:
        m = read_model(path)
        print(
            f"{path}: Linux {m.version} {m.arch}: {len(m.kconfig.symbols)} symbols, "
            f"{len(m.catalog.registrations)} registrations, {len(m.families)} families, "
            f"COMMAND_LINE_SIZE {m.command_line_size}"
        )
    return 0
