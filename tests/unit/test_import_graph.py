"""The package dependencies the README's "How it works" diagram draws: every package imports only
packages drawn below it, and every package is drawn."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import kpolicy

ROOT = Path(kpolicy.__file__).resolve().parent
README = ROOT.parent / "README.md"
_MEMBER = re.compile(r"kpolicy/(\*/command\.py|\w+)")


def node(module: str) -> str:
    """The diagram's node for MODULE: its package, or "command" for every <package>.command."""
    parts = module.split(".")
    if parts[-1] == "command":
        return "command"
    return parts[1] if len(parts) > 1 else "kpolicy"


def diagram_layers() -> dict[str, int]:
    """Node -> its height in the README's diagram (0 is the bottom line)."""
    text = README.read_text(encoding="utf-8")
    block = text.split("## How it works", 1)[1].split("```\n", 2)[1]
    # a line starting with kpolicy/ draws one layer: the packages it names
    rows = [["command" if m == "*/command.py" else m for m in _MEMBER.findall(line)]
            for line in block.splitlines() if line.startswith("kpolicy/")]
    names = [name for row in rows for name in row]
    assert len(names) == len(set(names)), f"a package drawn twice: {sorted(names)}"
    return {name: height for height, row in enumerate(reversed(rows)) for name in row}


def imports() -> set[tuple[str, str, str]]:
    """(importer node, imported node, importing file) of every kpolicy import in kpolicy/."""
    out = set()
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(p for p in rel.parts if p != "__init__")
        for item in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(item, ast.ImportFrom) and item.module:
                names = [item.module]
            elif isinstance(item, ast.Import):
                names = [a.name for a in item.names]
            for name in names:
                if name.startswith("kpolicy.") and node(name) != node(module):
                    out.add((node(module), node(name), str(rel)))
    return out


def test_the_diagram_draws_every_package() -> None:
    drawn = diagram_layers()
    packages = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
                if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert packages | {"command"} <= set(drawn), sorted(packages - set(drawn))


def test_no_package_imports_one_drawn_above_it() -> None:
    height = diagram_layers()
    upward = sorted(f"{f}: {a} imports {b}" for a, b, f in imports()
                    if height[b] >= height[a])
    assert upward == []
