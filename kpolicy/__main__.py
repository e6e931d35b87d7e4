"""`python -m kpolicy`: which puts the current directory first on sys.path. Run inside a kernel
tree, that would let a file of the tree (`lark.py`, `tomllib.py`, ...) be imported in place of a
module kpolicy imports later, so the current directory is dropped before anything else loads,
unless kpolicy itself was found there (a source checkout)."""

import os
import sys


def _drop_cwd() -> None:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path
                   if os.path.abspath(p or ".") != cwd or os.path.abspath(p or ".") == here]


_drop_cwd()

from kpolicy.cli import main  # noqa: E402  (after the path is safe)

sys.exit(main())
