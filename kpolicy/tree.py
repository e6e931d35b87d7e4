"""A kernel source tree: where it is, which version it is, which arches it has."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from kpolicy import treefs
from kpolicy.errors import KpolicyError
from kpolicy.kernel import parse_version

# ARCH values the top-level Makefile maps onto another arch/ directory (SRCARCH).
ARCH_ALIASES = {
    "i386": "x86",
    "x86_64": "x86",
    "sparc32": "sparc",
    "sparc64": "sparc",
    "parisc64": "parisc",
}

_MAKEFILE_VAR = re.compile(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=[ \t]*(\S*)", re.M)


@dataclass(frozen=True)
class KernelTree:
    """A validated kernel source tree (it has a top Makefile with a version, Kconfig and arch/)."""

    root: Path
    version: str  # KERNELVERSION as the Makefile builds it, e.g. "7.2.13"

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        """(VERSION, PATCHLEVEL, SUBLEVEL) as integers."""
        return parse_version(self.version)

    @property
    def srcarches(self) -> tuple[str, ...]:
        """The arch/ directories that carry a Kconfig, sorted."""
        return tuple(d for d in treefs.listdir(self.root, "arch") if self._has_kconfig(d))

    def _has_kconfig(self, srcarch: str) -> bool:
        try:
            return treefs.kind(self.root, f"arch/{srcarch}/Kconfig") == "file"
        except treefs.OutsideTree:
            return True  # listed, so that its `source` line is refused, by file and line

    @property
    def arches(self) -> tuple[str, ...]:
        """Every valid ARCH= value: the arch/ directories plus the Makefile's aliases."""
        src = set(self.srcarches)
        return tuple(sorted(src | {a for a, s in ARCH_ALIASES.items() if s in src}))

    def srcarch(self, arch: str) -> str:
        """SRCARCH for ARCH, as the top-level Makefile derives it; unknown arches are an error."""
        src = ARCH_ALIASES.get(arch, arch)
        if src not in self.srcarches:
            raise KpolicyError(
                f"unknown arch '{arch}' for the tree at {self.root}; "
                f"valid: {', '.join(self.arches)}"
            )
        return src

    def relpath(self, path: Union[str, Path]) -> str:
        """PATH relative to the tree root when it lies inside it, else PATH unchanged."""
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.root))
        except ValueError:
            return str(p)


def open_tree(path: Union[str, Path]) -> KernelTree:
    """Validate PATH as a kernel source tree, or raise one clear KpolicyError."""
    root = Path(path)
    makefile = root / "Makefile"
    try:
        if not root.exists():
            raise KpolicyError(f"kernel tree not found: {root}")
        if not root.is_dir():
            raise KpolicyError(f"not a directory, so not a kernel tree: {root}")
        if not (treefs.is_file(root, "Makefile") and treefs.is_file(root, "Kconfig")
                and treefs.is_dir(root, "arch")):
            raise KpolicyError(
                f"not a kernel source tree (needs Makefile, Kconfig and arch/): {root}"
            )
    except OSError as exc:  # pathlib only hides "not found": EACCES and the like end up here
        raise KpolicyError(f"cannot read kernel tree: {exc.strerror}", file=root) from None
    head = treefs.read_text(root, "Makefile", what="top-level Makefile")[:4096]
    fields = dict(_MAKEFILE_VAR.findall(head))
    if "VERSION" not in fields or "PATCHLEVEL" not in fields:
        raise KpolicyError("not a kernel Makefile: no VERSION/PATCHLEVEL", file=makefile)
    version = f"{fields['VERSION']}.{fields['PATCHLEVEL']}"
    if fields.get("SUBLEVEL"):
        version += f".{fields['SUBLEVEL']}"
    version += fields.get("EXTRAVERSION", "")
    return KernelTree(root=root.resolve(), version=version)
