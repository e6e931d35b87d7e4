"""A tree without the distribution patches rules/sysctls/security.toml assumes is noticed."""

from __future__ import annotations

from pathlib import Path

from kpolicy.sysctl.evidence import tree_problems
from kpolicy.sysctl.spec import load_sysctl_rules
from kpolicy.tree import open_tree


def test_a_vanilla_file_is_reported_with_its_patch(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 0\n")
    (tmp_path / "Kconfig").write_text("")
    (tmp_path / "arch" / "x86").mkdir(parents=True)
    (tmp_path / "arch" / "x86" / "Kconfig").write_text("")
    (tmp_path / "kernel").mkdir()
    # upstream: no unprivileged_userns_clone; yama starts at RELATIONAL
    (tmp_path / "kernel" / "user_namespace.c").write_text("int foo;\n")
    (tmp_path / "security" / "yama").mkdir(parents=True)
    (tmp_path / "security" / "yama" / "yama_lsm.c").write_text(
        "static int ptrace_scope = YAMA_SCOPE_RELATIONAL;\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "vsprintf.c").write_text("int kptr_restrict __read_mostly;\n")
    problems = tree_problems(open_tree(tmp_path), load_sysctl_rules())
    text = "\n".join(problems)
    assert "kernel.unprivileged_userns_clone: kernel/user_namespace.c" in text
    assert "kernel.yama.ptrace_scope" in text and "needs the debian patch" in text
    assert "kernel.kptr_restrict" not in text  # its line is there
