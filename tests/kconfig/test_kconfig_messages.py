"""What a tree's Kconfig prints, as `kpolicy kconfig` shows it: `$(info)`, `$(warning-if)` and
`$(error-if)` on stderr in conf's words (`file:line: message`), never on stdout, control
characters escaped; `$(error-if,y,...)` stops with exit status 2 and kpolicy's one
`file:line: error: message` line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpolicy.cli import main


def _tree(root: Path, kconfig: str) -> Path:
    root.mkdir()
    (root / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 0\n")
    (root / "arch" / "x86").mkdir(parents=True)
    (root / "arch" / "x86" / "Kconfig").write_text('$(info,from arch)\n')
    (root / "Kconfig").write_text(kconfig)
    return root


def test_messages_go_to_stderr_in_conf_words(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    tree = _tree(tmp_path / "t", 'mainmenu "M"\n$(info,hello)\n'
                 '$(warning-if,y,careful \x1b[2Jnow)\n$(warning-if,n,silent)\n'
                 'source "arch/$(SRCARCH)/Kconfig"\nconfig A\n\tbool "a"\n')
    out = tmp_path / "o.config"
    assert main(["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
                 "-o", str(out), "--no-cache"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["Kconfig:2: hello", "Kconfig:3: careful \\x1b[2Jnow",
                                         "arch/x86/Kconfig:1: from arch"]
    assert "# CONFIG_A is not set" in out.read_text()


def test_error_if_stops_with_status_2(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    tree = _tree(tmp_path / "t", '$(info,before)\n$(error-if,y,Sorry$(comma) no)\n'
                 'comma := ,\n$(error-if,$(success,true),stop here)\nconfig A\n\tbool "a"\n')
    assert main(["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
                 "-o", str(tmp_path / "o.config"), "--no-cache"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["Kconfig:1: before", f"{tree}/Kconfig:2: error: Sorry no"]
    assert not (tmp_path / "o.config").exists()
