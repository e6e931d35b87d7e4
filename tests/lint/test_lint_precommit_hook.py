"""The .pre-commit-hooks.yaml a kernel tree uses runs a `kpolicy lint` command that parses."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from kpolicy.lint.command import configure_lint

HOOKS = Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml"


def test_hook_runs_lint_against_head_on_kernel_files() -> None:
    text = HOOKS.read_text(encoding="utf-8")
    entry = re.search(r"^\s*entry:\s*(.+)$", text, re.M)
    files = re.search(r"^\s*files:\s*'(.+)'$", text, re.M)
    assert re.search(r"^- id: kpolicy-lint$", text, re.M) and entry and files
    words = shlex.split(entry.group(1))
    assert words[:2] == ["kpolicy", "lint"]
    parser = argparse.ArgumentParser()
    configure_lint(parser)
    args = parser.parse_args(words[2:])
    assert (str(args.tree), args.base) == (".", "HEAD")
    pattern = re.compile(files.group(1))
    for path in ("arch/x86/Kconfig", "mm/Kconfig.debug", "init/main.c", "Makefile",
                 "Documentation/admin-guide/kernel-parameters.txt", "include/linux/mm.h"):
        assert pattern.search(path), path
    assert not pattern.search("Documentation/process/changes.rst")
