"""rules/sysctls/security.toml against a kernel tree: is each sysctl's initial value where the
rules say, and are the distribution patches the rules rely on applied there?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from kpolicy import treefs
from kpolicy.sysctl.spec import SysctlSpec
from kpolicy.tree import KernelTree

C_LIMIT = 16 << 20


def evidence_line(tree: KernelTree, spec: SysctlSpec) -> Optional[tuple[str, int]]:
    """(file, line) of SPEC's evidence text in TREE, or None when the file lacks it."""
    rel = spec.evidence.file_for(tree.version_tuple)
    if not treefs.is_file(tree.root, rel):
        return None
    text = treefs.read_text(tree.root, rel, what="C file", limit=C_LIMIT)
    for number, line in enumerate(text.splitlines(), 1):
        if spec.evidence.text in line:
            return rel, number
    return None


def tree_problems(tree: KernelTree, specs: Sequence[SysctlSpec]) -> list[str]:
    """Every spec of this tree's version whose evidence TREE lacks, in the rules' words."""
    out = []
    for spec in specs:
        if not spec.exists_in(tree.version_tuple):
            continue
        if evidence_line(tree, spec) is None:
            patch = f" (needs the {spec.patch.split(':')[0]} patch)" if spec.patch else ""
            out.append(f"{spec.path}: {spec.evidence.file_for(tree.version_tuple)} has no line "
                       f"with {spec.evidence.text!r}{patch}")
    return out
