"""Making a ResolveModel from a real tree (imports kconfiglib and lark: not on the bundled path)."""

from __future__ import annotations

from pathlib import Path

from kpolicy.cache import Cache
from kpolicy.resolve.bundle import ResolveModel, compact_model
from kpolicy.resolve.features import FeatureSpec


def feature_roots(specs: tuple[FeatureSpec, ...]) -> set[str]:
    """Every Kconfig symbol the feature declarations name."""
    roots: set[str] = set()
    for s in specs:
        roots |= {n for n in (s.build, s.default_symbol, s.lsm_early) if n}
        roots |= {m for m, _w in s.default_choice}
        roots |= {m.symbol for m in s.machine if m.symbol}
    return roots


def build_resolve_model(
    tree_path: Path, arch: str, specs: tuple[FeatureSpec, ...], cache: Cache
) -> ResolveModel:
    """The compact model of (TREE_PATH, ARCH): Kconfig defaults, registrations, families, sizes."""
    from kpolicy.families.discover import discover_families
    from kpolicy.kconfig.load import load_model
    from kpolicy.kernel import command_line_size
    from kpolicy.lint.rules_loader import load_declarations
    from kpolicy.params.catalog import build_catalog  # type: ignore[import-untyped,unused-ignore]
    from kpolicy.tree import open_tree

    tree = open_tree(tree_path)
    tree.srcarch(arch)  # an unknown arch is an error listing the valid ones
    kconfig = load_model(tree, arch, cache=cache)
    catalog = build_catalog(tree, cache)
    families = tuple(
        sorted(
            discover_families({arch: kconfig}, catalog, load_declarations(), tree=tree),
            key=lambda f: f.name,
        )
    )
    size = command_line_size(kconfig.srcarch, kconfig.values)
    return compact_model(kconfig, catalog, families, feature_roots(specs), size)
