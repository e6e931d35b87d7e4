"""Test-only rules, a marker-scanning check package and tiny kernel trees for the lint engine tests.

The check `scan:markers` reports every line holding `<MARKER>(<subject>=<value>)` (MARKER from the
rule's options, default BAD), so a test controls exactly which findings exist and where.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import pytest

from kpolicy.kconfig.model import KconfigModel
from kpolicy.lint.types import LintContext
from kpolicy.params.model import Catalog
from kpolicy.tree import open_tree

CHECK_PACKAGE = "kplint_testchecks"

_CHECK_SOURCE = '''
import re
from kpolicy.lint.types import Finding

def markers(ctx, rule):
    marker = rule.options.get("marker", "BAD")
    pattern = re.compile(re.escape(marker) + r"\\((family|symbol|param)=([A-Za-z0-9_.]+)\\)")
    for path in sorted(ctx.tree.root.rglob("*")):
        if ".git" in path.parts or not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for m in pattern.finditer(line):
                yield Finding(rule=rule.name, code=rule.code, severity=rule.severity,
                              message=f"{m.group(2)} breaks the pattern, see Kconfig:{number}",
                              file=ctx.tree.relpath(path), line=number,
                              **{m.group(1): m.group(2)})

def explode(ctx, rule):
    raise RuntimeError("must not be called")
    yield
'''


def install_check_package(where: Path) -> None:
    """Write the test check package under WHERE and make it importable."""
    pkg = where / CHECK_PACKAGE
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "scan.py").write_text(_CHECK_SOURCE)
    if str(where) not in sys.path:
        sys.path.insert(0, str(where))


def rule_toml(code: str, name: str, severity: str = "warning", *, check: str = "scan:markers",
              marker: Optional[str] = None, extra: str = "") -> str:
    """The text of a valid rule file."""
    options = f'\n[options]\nmarker = "{marker}"\n' if marker else ""
    return (
        f'code = "{code}"\nname = "{name}"\nseverity = "{severity}"\n'
        f'summary = "Summary of {name}"\ncheck = "{check}"\n{extra}'
        f'[docs]\nwhat = "What {name} checks."\nwhy = "Why {name} matters."\n'
        f'bad = """\nconfig BAD\n\tbool\n"""\ngood = """\nconfig GOOD\n\tdef_bool y\n"""\n'
        f'references = ["arch/Kconfig: RANDOMIZE_KSTACK_OFFSET"]\n{options}'
    )


def write_rules(directory: Path) -> Path:
    """A rules directory with three marker rules of each severity and an empty families/."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "families").mkdir(exist_ok=True)
    (directory / "bad-thing.toml").write_text(rule_toml("KP901", "bad-thing", "warning"))
    (directory / "evil-thing.toml").write_text(
        rule_toml("KP902", "evil-thing", "error", marker="EVIL"))
    (directory / "odd-thing.toml").write_text(rule_toml("KP801", "odd-thing", "note", marker="ODD"))
    return directory


def make_tree(root: Path, files: Optional[dict[str, str]] = None) -> Path:
    """A tiny kernel tree at ROOT with FILES (relative path -> text) added."""
    base = {
        "Makefile": "VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 0\nEXTRAVERSION =\n",
        "Kconfig": 'mainmenu "test"\nsource "arch/$(SRCARCH)/Kconfig"\n',
        "arch/x86/Kconfig": "config X86\n\tdef_bool y\n",
        "arch/arm64/Kconfig": "config ARM64\n\tdef_bool y\n",
    }
    for rel, text in {**base, **(files or {})}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def stub_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the engine run the test checks over stub contexts (no Kconfig, no catalog)."""
    from kpolicy.lint import engine

    monkeypatch.setattr(engine, "CHECK_PACKAGE", CHECK_PACKAGE)
    monkeypatch.setattr(
        engine, "analyse",
        lambda tree, arches, cache=None, **kw: stub_context(tree.root, tuple(arches)))


def stub_context(tree: Path, arches: tuple[str, ...] = ("x86_64",)) -> LintContext:
    """A LintContext over TREE with empty Kconfig models and catalog (the test checks need none)."""
    kt = open_tree(tree)
    models = {a: KconfigModel(version=kt.version, arch=a, srcarch=kt.srcarch(a), toolchain="none",
                              symbols={}, choices=()) for a in arches}
    catalog = Catalog(version=kt.version, docs=(), registrations=(), static_keys=())
    return LintContext(tree=kt, models=models, catalog=catalog, families=())
