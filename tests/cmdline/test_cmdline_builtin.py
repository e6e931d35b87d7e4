"""CONFIG_CMDLINE merges per arch and COMMAND_LINE_SIZE truncation."""

from __future__ import annotations

from kpolicy.cmdline.builtin import merge_builtin
from kpolicy.kernel import command_line_size


def test_x86_cmdline_bool_prepends_and_override_replaces() -> None:
    cfg = {"CMDLINE_BOOL": "y", "CMDLINE": "quiet"}
    assert merge_builtin("x86", cfg, "ro", 2048).cmdline == "quiet ro"
    assert merge_builtin("x86", {**cfg, "CMDLINE_OVERRIDE": "y"}, "ro", 2048).cmdline == "quiet"
    assert merge_builtin("x86", {"CMDLINE": "quiet"}, "ro", 2048).cmdline == "ro"
    assert merge_builtin("x86", {**cfg, "CMDLINE": ""}, "ro", 2048).cmdline == "ro"


def test_arm64_uses_the_builtin_line_only_when_forced_or_given_none() -> None:
    cfg = {"CMDLINE": "console=ttyAMA0"}
    assert merge_builtin("arm64", cfg, "ro", 2048).cmdline == "ro"
    assert merge_builtin("arm64", cfg, "", 2048).cmdline == "console=ttyAMA0"
    assert merge_builtin("arm64", {**cfg, "CMDLINE_FORCE": "y"}, "ro", 2048).cmdline == \
        "console=ttyAMA0"


def test_riscv_extend_appends_the_builtin_line() -> None:
    cfg = {"CMDLINE": "earlycon", "CMDLINE_EXTEND": "y"}
    assert merge_builtin("riscv", cfg, "ro", 2048).cmdline == "ro earlycon"
    assert merge_builtin("riscv", {"CMDLINE": "earlycon", "CMDLINE_FALLBACK": "y"}, "ro",
                         2048).cmdline == "ro"


def test_truncation_keeps_size_minus_one_bytes() -> None:
    m = merge_builtin("x86", {}, "a" * 3000, 2048)
    assert m.truncated and len(m.cmdline) == 2047
    m = merge_builtin("x86", {"CMDLINE_BOOL": "y", "CMDLINE": "b" * 2000}, "c" * 100, 2048)
    assert m.truncated and len(m.cmdline) == 2047 and m.cmdline.endswith(" " + "c" * 46)
    assert not merge_builtin("x86", {}, "a" * 2047, 2048).truncated


def test_command_line_size_per_arch() -> None:
    assert command_line_size("x86", {}) == 2048
    assert command_line_size("loongarch", {}) == 4096
    assert command_line_size("s390", {"COMMAND_LINE_SIZE": "896"}) == 896
    assert command_line_size("sparc", {"SPARC64": "y"}) == 2048
    assert command_line_size("hexagon", {}) == 512
