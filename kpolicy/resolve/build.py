"""Making a ResolveModel from a real tree (imports kconfiglib and lark: not on the bundled path)."""

from __future__ import annotations

from pathlib import Path

from kpolicy.cache import Cache
from kpolicy.params.docs import DOC_FILE, OTHER_DOC_FILES
from kpolicy.params.semantics import FeatureSpec
from kpolicy.resolve.compact import compact_model
from kpolicy.resolve.model import ResolveModel


def feature_roots(specs: tuple[FeatureSpec, ...]) -> set[str]:
    """Every Kconfig symbol the feature declarations name."""
    roots: set[str] = set()
    for s in specs:
        roots |= {n for n in (s.build, s.default_symbol, s.lsm_early) if n}
        roots |= set(s.build_renamed_from)
        roots |= {m for m, _w in s.default_choice}
        roots |= {m.symbol for m in s.machine if m.symbol}
    return roots


def build_resolve_model(
    tree_path: Path, arch: str, specs: tuple[FeatureSpec, ...], cache: Cache
) -> ResolveModel:
    """The compact model of (TREE_PATH, ARCH): Kconfig defaults, registrations, families, sizes."""
    return build_resolve_model_and_sources(tree_path, arch, specs, cache)[0]


def build_resolve_model_and_sources(
    tree_path: Path, arch: str, specs: tuple[FeatureSpec, ...], cache: Cache
) -> tuple[ResolveModel, set[str]]:
    """build_resolve_model, and the tree's C files (relative paths) the catalog's registrations
    and static keys come from (the files a cached model must watch beyond the Kconfig files)."""
    from kpolicy.analysis import analyse, select_arches
    from kpolicy.kernel import command_line_size
    from kpolicy.tree import open_tree

    tree = open_tree(tree_path)
    analysis = analyse(tree, select_arches(tree, (arch,), False), cache)
    kconfig = analysis.models[arch]
    families = tuple(sorted(analysis.families, key=lambda f: f.name))
    size = command_line_size(kconfig.srcarch, kconfig.values)
    sources = {r.location.file for r in analysis.catalog.registrations}
    sources |= {k.location.file for k in analysis.catalog.static_keys}
    sources |= {DOC_FILE, *OTHER_DOC_FILES}  # documented elsewhere is documented (crosscheck)
    sources |= {where.file for _, where in analysis.catalog.doc_mentions}  # subsystem docs too
    return compact_model(kconfig, analysis.catalog, families, feature_roots(specs), size), sources
