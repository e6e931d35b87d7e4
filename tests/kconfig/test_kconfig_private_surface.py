"""kconfiglib's private surface: parse.py uses only what kconfiglib_surface.py lists, and
kconfiglib still has all of it. Fails by name when a kconfiglib upgrade moves any of it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import kconfiglib

from kpolicy.kconfig import kconfiglib_surface as surface
from kpolicy.kconfig import parse

SOURCES = [Path(parse.__file__), Path(surface.__file__)]


def private_names(path: Path) -> tuple[set[str], set[str], set[str]]:
    """(private attributes PATH reads, names it defines, methods its Kconfig subclass defines)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and n.attr.startswith("_") and not n.attr.startswith("__")}
    defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    methods = {f.name for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
               and any(isinstance(b, ast.Attribute) and b.attr == "Kconfig" for b in c.bases)
               for f in c.body if isinstance(f, ast.FunctionDef)}
    return used, defined, methods


def test_the_version_the_surface_was_read_from() -> None:
    assert tuple(kconfiglib.VERSION) == surface.KCONFIGLIB_VERSION


def test_every_private_name_parse_uses_is_listed() -> None:
    listed = set(surface.OVERRIDDEN) | set(surface.CALLED) | set(surface.STATE)
    unlisted = set()
    for path in SOURCES:
        used, defined, _methods = private_names(path)
        # kconfiglib's own names: token constants (listed by being built in the surface) and
        # Kconfig's methods and state
        kconfig_private = {n for n in used - defined if hasattr(kconfiglib.Kconfig, n)}
        unlisted |= kconfig_private - listed
        tokens = {n for n in used - defined if n.startswith("_T_")}
        if path != Path(surface.__file__):
            unlisted |= tokens  # parse.py reads tokens only through the surface
    assert sorted(unlisted) == []


def test_kconfiglib_still_has_every_listed_name() -> None:
    used, _defined, _methods = private_names(Path(surface.__file__))
    missing = [n for n in (*surface.CALLED, *surface.STATE) if not hasattr(kconfiglib.Kconfig, n)]
    missing += [n for n in used if n.startswith("_T_") and not hasattr(kconfiglib, n)]
    assert missing == []


def test_overridden_methods_keep_their_parameters() -> None:
    _used, _defined, methods = private_names(Path(parse.__file__))
    overridden = {m for m in methods if hasattr(kconfiglib.Kconfig, m) and m != "__init__"}
    assert overridden == set(surface.OVERRIDDEN)
    for name, params in surface.OVERRIDDEN.items():
        assert tuple(inspect.signature(getattr(kconfiglib.Kconfig, name)).parameters) == params
