"""load_model: a tree's Kconfig for one arch, evaluated like `make olddefconfig`, cached.

Two cache levels. "kconfig-files" maps (version, arch, toolchain) to the lists of Kconfig files
the last few parses read, with their hashes; if every file of one list still has the same
content, the parse would read exactly the same files, so their digest keys "kconfig-model" (the
parsed model) and "kconfig-eval" (the model evaluated with one input .config). A warm run
hashes ~1700 small files and unpickles; it never parses Kconfig.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import select
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from kpolicy.cache import Cache, content_key
from kpolicy.errors import KpolicyError
from kpolicy.forked import Forked, start_forked
from kpolicy.kconfig.dotconfig import parse_dotconfig
from kpolicy.kconfig.evaluate import evaluate, tri_of, user_values, value_lookup
from kpolicy.kconfig.model import KconfigModel, LazySymbols, MenuEntry
from kpolicy.kconfig.parse import ParsedKconfig, files_digest, listed_digest, parse_kconfig
from kpolicy.kconfig.toolchain import Toolchain, default_toolchain
from kpolicy.kernel import has_new_choices
from kpolicy.longlived import leave_garbage_to_exit, long_lived
from kpolicy.textio import atomic_write_bytes, read_text
from kpolicy.tree import KernelTree

# Bump when parse/evaluate change what they produce, so old cache entries are not reused.
ENGINE_VERSION = "kconfig-4"


@dataclass(frozen=True)
class _Evaluated:
    """What one input .config adds to a parsed model (the cached part of evaluation)."""

    values: dict[str, str]
    written: frozenset[str]
    warnings: tuple[str, ...]
    user: dict[str, str]


# File lists the "kconfig-files" index keeps per (version, arch, toolchain), newest first.
KEPT_FILE_LISTS = 4

# The .config part of a "kconfig-eval" key when no .config is given (all defaults).
NO_CONFIG = "-"



def _evaluate(parsed: ParsedKconfig, config: Optional[Path], config_text: str,
              legacy: bool) -> _Evaluated:
    warnings: list[str] = []
    dot = parse_dotconfig(config_text, str(config)) if config is not None else None
    types = {name: sym.type for name, sym in parsed.symbols.items()}
    user = user_values(dot.raw, types, warnings.append) if dot is not None else {}
    try:
        result = evaluate(parsed.symbols, parsed.choices, user, legacy=legacy)
    except RecursionError:
        raise KpolicyError("Kconfig dependencies nest too deeply to evaluate") from None
    return _Evaluated(result.values, result.written,
                      (dot.warnings if dot is not None else ()) + tuple(warnings),
                      {name: u.value for name, u in user.items()})


def _index_key(tree: KernelTree, arch: str, toolchain: Toolchain) -> str:
    # No tree path in the key: a file list is checked against its content hashes anyway, so a
    # copy of the tree (the `lint --base` tree) finds the models of the original. The index
    # keeps the last few lists, so a tree and a copy with a changed Kconfig file both stay warm.
    return content_key(ENGINE_VERSION, tree.version, arch, toolchain.key())


def _known_digest(tree: KernelTree, file_lists: tuple[tuple[tuple[str, str], ...], ...],
                  seen: Optional[dict[str, str]]) -> Optional[str]:
    """The digest of the first of FILE_LISTS whose files are all unchanged in TREE, or None."""
    return next((d for d in (files_digest(tree.root, files, seen) for files in file_lists)
                 if d is not None), None)


def _is_cached(tree: KernelTree, arch: str, toolchain: Toolchain, cache: Cache,
               seen: dict[str, str]) -> bool:
    """Whether load_model, with no .config, would find ARCH's model in CACHE (without loading
    it)."""
    index_key = _index_key(tree, arch, toolchain)
    index = cache.load("kconfig-files", index_key)
    digest = _known_digest(tree, index if isinstance(index, tuple) else (), seen)
    return digest is not None and all(
        cache.has(namespace, content_key(*key))
        for namespace, key in (("kconfig-model", (index_key, digest)),
                               ("kconfig-eval", (index_key, digest, NO_CONFIG))))


def load_model(
    tree: KernelTree,
    arch: str,
    *,
    config: Optional[Path] = None,
    toolchain: Optional[Toolchain] = None,
    cache: Optional[Cache] = None,
    seen: Optional[dict[str, str]] = None,
    keep: bool = True,
) -> KconfigModel:
    """TREE's Kconfig for ARCH, valued as `make ARCH=arch olddefconfig` values CONFIG (or none).

    SEEN: content hashes of TREE's files from earlier calls of this run (see files_digest).
    KEEP: what is parsed or evaluated is stored in CACHE; off for a scratch tree (the patched
    copy of `lint --patch`), whose Kconfig no later run is likely to see again: storing the
    model cost a third as much as parsing it."""
    toolchain = toolchain or default_toolchain()
    cache = cache or Cache(enabled=False)
    srcarch = tree.srcarch(arch)
    config_text = read_text(config, what=".config") if config is not None else ""
    config_key = (hashlib.sha256(config_text.encode()).hexdigest() if config is not None
                  else NO_CONFIG)
    index_key = _index_key(tree, arch, toolchain)
    with long_lived():
        index = cache.load("kconfig-files", index_key)
        known = index if isinstance(index, tuple) else ()
        digest = _known_digest(tree, known, seen)
        parsed: Optional[ParsedKconfig] = None
        evaluated: Optional[_Evaluated] = None
        if digest is not None:
            hit = cache.load("kconfig-model", content_key(index_key, digest))
            parsed = hit if isinstance(hit, ParsedKconfig) else None
            if parsed is not None:
                hit = cache.load("kconfig-eval", content_key(index_key, digest, config_key))
                evaluated = hit if isinstance(hit, _Evaluated) else None
        if parsed is None:
            parsed = parse_kconfig(tree, arch, toolchain)
            # the hashes of what the parse read: the model is exactly that content's (reading
            # the ~1,700 files again cost a tenth of a parse)
            digest = listed_digest(parsed.files) if keep else None
            others = tuple(files for files in known if files != parsed.files)
            if keep:
                cache.store("kconfig-files", index_key,
                            (parsed.files, *others)[:KEPT_FILE_LISTS])
            if digest is not None and cache.enabled:
                try:
                    lazy = replace(parsed, symbols=LazySymbols.of(parsed.symbols))
                except RecursionError:  # dependencies nested hundreds deep: not cached
                    lazy = None
                if lazy is not None:
                    cache.store("kconfig-model", content_key(index_key, digest), lazy)
        if evaluated is None:
            evaluated = _evaluate(parsed, config, config_text,
                                  not has_new_choices(tree.version_tuple))
            if digest is not None:
                cache.store("kconfig-eval", content_key(index_key, digest, config_key), evaluated)
    return KconfigModel(
        version=tree.version,
        arch=arch,
        srcarch=srcarch,
        toolchain=toolchain.name,
        symbols=parsed.symbols,
        choices=parsed.choices,
        values=evaluated.values,
        written=evaluated.written,
        menu=parsed.menu,
        mainmenu=parsed.mainmenu,
        tool_derived=parsed.tool_derived,
        types=parsed.types,
        warnings=evaluated.warnings,
        user=evaluated.user,
        messages=parsed.messages,
    )


def load_models(
    tree: KernelTree,
    arches: Sequence[str],
    *,
    cache: Cache,
    jobs: int = 1,
    progress: Optional[Callable[[str], None]] = None,
    keep: bool = True,
    busy: Sequence[Forked[Any]] = (),
) -> dict[str, KconfigModel]:
    """load_model (no .config, default toolchain) of each of ARCHES, by arch; KEEP as there
    for the arches parsed in this process (workers hand their models over through CACHE).

    With JOBS > 1, the arches CACHE lacks are parsed first by up to JOBS forked copies of this
    process, which store their models in CACHE (a temporary one when CACHE is disabled); this
    process then loads them all from it. A worker runs only kpolicy's own code and executes no
    program, so a hostile tree still runs nothing. A worker that fails leaves its arches
    uncached, and they are parsed here, where any error is reported as usual. BUSY: workers
    the caller started, each taking one of the JOBS places until it has answered (its answer
    is left to the caller)."""
    if jobs > 1 and len(arches) > 1 and not cache.enabled:
        # The workers hand their models over through a cache of this run's own.
        with tempfile.TemporaryDirectory(prefix="kpolicy-models-") as handover:
            return load_models(tree, arches, cache=Cache(Path(handover)), jobs=jobs,
                               progress=progress, keep=keep, busy=busy)
    toolchain = default_toolchain()
    seen: dict[str, str] = {}  # Kconfig file hashes: every arch reads mostly the same files
    if jobs > 1 and cache.enabled:
        missing = [a for a in arches if not _is_cached(tree, a, toolchain, cache, seen)]
        if len(missing) > 1:
            if progress:
                progress(f"parsing Kconfig for {len(missing)} arches in "
                         f"{min(jobs, len(missing))} worker processes")
            _parse_in_workers(tree, missing, toolchain, cache, jobs, progress, busy)
    models = {}
    for arch in arches:
        if progress:
            progress(f"reading Kconfig for ARCH={arch}")
        models[arch] = load_model(tree, arch, toolchain=toolchain, cache=cache, seen=seen,
                                  keep=keep)
    return models


def _parse_in_workers(tree: KernelTree, arches: Sequence[str], toolchain: Toolchain,
                      cache: Cache, jobs: int,
                      progress: Optional[Callable[[str], None]] = None,
                      busy: Sequence[Forked[Any]] = ()) -> None:
    """Fill CACHE with the models of ARCHES, each parsed by a forked process of its own, up to
    JOBS at once with the workers of BUSY that have not answered yet. A process per arch: its
    kconfiglib objects are not even freed, they go with it when it exits."""

    def parse(arch: str) -> None:
        leave_garbage_to_exit()
        if progress:
            progress(f"parsing Kconfig for ARCH={arch} (process {os.getpid()})")
        load_model(tree, arch, toolchain=toolchain, cache=cache)

    pending = list(arches)
    running: list[Forked[None]] = []
    others = list(busy)
    while pending or running:
        while pending and len(running) + len(others) < jobs:
            running.append(start_forked(functools.partial(parse, pending.pop(0))))
        ready, _, _ = select.select([*running, *others], [], [])
        for worker in ready:
            if worker in others:  # its place is free: what it answers is the caller's
                others.remove(worker)
                continue
            running.remove(worker)
            # An error leaves its arch uncached: the caller parses it and reports the error.
            with contextlib.suppress(Exception):
                worker.result()


def _escape(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def symbol_line(model: KconfigModel, name: str) -> str:
    """NAME's line in a .config, as C's print_symbol_for_dotconfig writes it."""
    type_ = model.types.get(name, "unknown")
    value = model.values.get(name, "")
    if type_ in ("bool", "tristate"):
        return f"# CONFIG_{name} is not set\n" if value == "n" else f"CONFIG_{name}={value}\n"
    if type_ == "string":
        return f"CONFIG_{name}={_escape(value)}\n"
    return f"CONFIG_{name}={value}\n"


def dotconfig_text(model: KconfigModel) -> str:
    """The .config C conf_write would write for MODEL: header, menu comments, written symbols."""
    lookup = value_lookup(model.values, model.types)
    out = ["#\n# Automatically generated file; DO NOT EDIT.\n", f"# {model.mainmenu}\n#\n"]
    seen: set[str] = set()
    need_newline = False

    def walk(entries: tuple[MenuEntry, ...]) -> None:
        nonlocal need_newline
        for e in entries:
            if e.kind in ("menu", "comment"):
                shown = tri_of(e.visible, lookup) > 0
                if shown:
                    out.append(f"\n#\n# {e.name}\n#\n")
                    need_newline = False
                walk(e.children)
                if shown and e.kind == "menu":
                    out.append(f"# end of {e.name}\n")
                    need_newline = True
                continue
            if e.kind == "symbol" and e.name not in seen:
                seen.add(e.name)
                if e.name in model.written and model.types.get(e.name, "unknown") != "unknown":
                    if need_newline:
                        out.append("\n")
                        need_newline = False
                    out.append(symbol_line(model, e.name))
            walk(e.children)

    walk(model.menu)
    return "".join(out)


def write_dotconfig(model: KconfigModel, path: Path) -> None:
    """Write MODEL's configuration to PATH in the format and order C conf writes a .config."""
    atomic_write_bytes(path, dotconfig_text(model).encode())
