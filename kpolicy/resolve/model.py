"""The compact model resolve reads: one (tree, arch) reduced to what features and the command
line need. Built by resolve/compact.py, stored by resolve/bundle.py."""

from __future__ import annotations

from dataclasses import dataclass

from kpolicy.families.model import Family
from kpolicy.kconfig.model import KconfigModel
from kpolicy.kernel import parse_version
from kpolicy.params.model import Catalog


@dataclass(frozen=True)
class ResolveModel:
    """Everything resolve reads about one (tree, arch)."""

    version: str  # KERNELVERSION, e.g. "7.2.13"
    arch: str
    srcarch: str
    command_line_size: int
    kconfig: KconfigModel  # the involved symbols; values = Kconfig's answer with no input config
    catalog: Catalog
    families: tuple[Family, ...] = ()
    origin: str = ""  # where the model came from, for messages ("bundled", a path, a tree)

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        """(VERSION, PATCHLEVEL, SUBLEVEL) of the tree the model was made from."""
        return parse_version(self.version)
