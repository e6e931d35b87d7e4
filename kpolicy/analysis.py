"""One kernel tree analysed: a Kconfig model per arch, the boot-parameter catalog, the feature
families and the declarations (rules/families/, rules/evidence/) that discovery reads.

lint, `kpolicy families`, resolve's model build and scripts/build-models all start here; this
module imports none of them.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from kpolicy.cache import Cache
from kpolicy.errors import KpolicyError
from kpolicy.families.model import Family
from kpolicy.kconfig.model import KconfigModel
from kpolicy.longlived import long_lived
from kpolicy.params.model import Catalog
from kpolicy.resources import data_dir
from kpolicy.textio import parse_toml
from kpolicy.tree import KernelTree

# rules/<subdirectory>/<stem>.toml -> its table ("families", "evidence")
Declarations = Mapping[str, Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class Analysis:
    """What kpolicy reads from one tree for some arches."""

    tree: KernelTree
    models: Mapping[str, KconfigModel]  # ARCH -> all-defaults evaluation for that arch
    catalog: Catalog
    families: tuple[Family, ...]
    declarations: Declarations = field(default_factory=dict)


def select_arches(tree: KernelTree, arches: Sequence[str], all_arches: bool) -> tuple[str, ...]:
    """The ARCH values to evaluate: every arch/ directory with ALL_ARCHES (x86 as i386 and
    x86_64, the two ARCH values it is built with), else ARCHES, validated."""
    if all_arches:
        chosen: list[str] = []
        for src in tree.srcarches:
            chosen.extend(("i386", "x86_64") if src == "x86" else (src,))
        return tuple(chosen)
    if not arches:
        raise KpolicyError("no arch to lint")
    for arch in arches:
        tree.srcarch(arch)  # raises, listing the valid ones
    return tuple(dict.fromkeys(arches))


def load_declarations(directory: Optional[Path] = None) -> Declarations:
    """The TOML files in the subdirectories of DIRECTORY (default: the shipped rules/), by
    subdirectory then stem; rules/params/ has its own schema (kpolicy.params.semantics)."""
    root = data_dir("rules") if directory is None else directory
    out: dict[str, dict[str, Mapping[str, Any]]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "params"):
        tables: dict[str, Mapping[str, Any]] = {
            path.stem: parse_toml(path, what="declaration file")[0]
            for path in sorted(sub.glob("*.toml"))}
        if tables:
            out[sub.name] = tables
    return out


def analyse(
    tree: KernelTree,
    arches: Sequence[str],
    cache: Optional[Cache] = None,
    *,
    declarations: Optional[Declarations] = None,
    progress: Optional[Callable[[str], None]] = None,
    jobs: int = 1,
    keep_models: bool = True,
) -> Analysis:
    """TREE analysed for ARCHES; JOBS worker processes parse what CACHE lacks. KEEP_MODELS:
    off for a scratch tree (kpolicy.kconfig.load.load_model's KEEP)."""
    from kpolicy.families.discover import discover_families
    from kpolicy.forked import start_forked
    from kpolicy.kconfig.load import load_models
    from kpolicy.params.catalog import build_catalog

    cache = cache or Cache(enabled=False)
    decl = load_declarations() if declarations is None else declarations
    # With several processes, the catalog (the C scan: as long as a few arches' Kconfig) is
    # built by a worker of its own beside the Kconfig parses (or beside this process parsing a
    # scratch tree's one arch), so that no core waits for it.
    catalog_job = start_forked(functools.partial(_catalog_worker, tree, cache)) \
        if jobs > 1 else None
    if progress and catalog_job:
        progress("reading boot parameters in a worker process")
    try:
        busy = (catalog_job,) if catalog_job else ()
        models = load_models(tree, arches, cache=cache, jobs=jobs, progress=progress,
                             keep=keep_models, busy=busy)
    except BaseException:
        if catalog_job:
            catalog_job.cancel()
        raise
    if catalog_job:
        catalog = catalog_job.result()
    else:
        if progress:
            progress("reading boot parameters")
        catalog = build_catalog(tree, cache, jobs)
    with long_lived():  # discovery decodes every arch's cached symbols: ~1M objects
        families = tuple(discover_families(models, catalog, decl, tree=tree))
    return Analysis(tree, models, catalog, families, decl)


def _catalog_worker(tree: KernelTree, cache: Cache) -> Catalog:
    """build_catalog in a worker process, which exits once it has answered: the cyclic
    collector is left off there (a tenth of the C scan's time)."""
    from kpolicy.params.catalog import build_catalog

    gc.disable()
    return build_catalog(tree, cache)
