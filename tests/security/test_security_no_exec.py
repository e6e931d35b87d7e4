"""A hostile tree runs nothing: every command, on a tree whose Kconfig asks for $(shell,...) in
preprocessor variables, prompts and defaults, spawns no process (trapped with an audit hook) and
leaves no marker file; only --allow-shell runs the commands, which proves the trap would see
them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Runs kpolicy's CLI in a fresh interpreter whose audit hook kills the process on any attempt to
# run a program; exit 97 means one was attempted. A plain fork runs no program: it is how `lint`
# starts its Kconfig workers, copies of kpolicy that inherit this hook, so a program run from a
# worker is trapped too. Each fork is logged, so a test can tell the workers were there.
_TRAPPED = r"""
import os, sys
SPAWN_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                "os.forkpty", "pty.spawn"}
def hook(event, args):
    if event == "os.fork":
        sys.stderr.write("forked a worker\n")
    elif event in SPAWN_EVENTS:
        sys.stderr.write(f"TRAPPED process creation: {event} {args!r:.200}\n")
        sys.stderr.flush()
        os._exit(97)
sys.addaudithook(hook)
from kpolicy.cli import main
sys.exit(main(sys.argv[1:]))
"""


def write_hostile_tree(root: Path, marker_dir: Path) -> Path:
    """A tiny kernel tree whose Kconfig tries to create files in MARKER_DIR at parse time."""
    m = marker_dir
    files = {
        "Makefile": "VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 0\nEXTRAVERSION =\n",
        "Kconfig": (
            f"HOSTILE_VAR := $(shell,touch {m}/var-marker; echo x)\n"
            f"HOSTILE_LAZY = $(shell,touch {m}/lazy-marker)\n"
            "mainmenu \"Hostile $(HOSTILE_LAZY)\"\n"
            'source "arch/$(SRCARCH)/Kconfig"\n'
            "config HAVE_ARCH_HOSTILE\n\tdef_bool n\n"
            "config HOSTILE\n"
            f"\tbool \"hostile prompt $(shell,touch {m}/prompt-marker)\"\n"
            # compared, so the Kconfig stays valid whatever a profile answers for the command
            f"\tdefault \"$(shell,touch {m}/default-marker; echo y)\" = \"y\"\n"
            "\tdepends on HAVE_ARCH_HOSTILE\n"
            "config HOSTILE_STRING\n\tstring \"s\"\n\tdefault \"$(HOSTILE_VAR)\"\n"
            f"config CC_HOSTILE\n\tdef_bool \"$(success,touch {m}/success-marker)\" = \"y\"\n"
        ),
        "arch/x86/Kconfig": "config X86\n\tdef_bool y\n\tselect HAVE_ARCH_HOSTILE\n",
        "Documentation/admin-guide/kernel-parameters.txt": (
            "\thostile=\t[KNL,EARLY] Hostile switch.\n\t\t\tFormat: <bool>\n"
            "\t\t\tDefault is CONFIG_HOSTILE.\n"
        ),
        "kernel/Makefile": "obj-$(CONFIG_HOSTILE) += hostile.o\n",
        "kernel/hostile.c": (
            "static int __init hostile_setup(char *str)\n{\n\treturn kstrtobool(str, &x);\n}\n"
            'early_param("hostile", hostile_setup);\n'
        ),
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run_trapped(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _TRAPPED, *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path, Path]:
    markers = tmp_path / "markers"
    markers.mkdir()
    tree = write_hostile_tree(tmp_path / "tree", markers)
    config = tmp_path / "hostile.config"
    config.write_text("CONFIG_X86=y\nCONFIG_HOSTILE=y\n")
    return tree, markers, config


def commands(tree: Path, config: Path, out: Path, cache: Path) -> list[list[str]]:
    t = ["--tree", str(tree)]
    c = ["--cache-dir", str(cache)]
    return [
        ["kconfig", "olddefconfig", *t, "--arch", "x86_64", "-o", str(out / "olddef"), *c],
        ["kconfig", "olddefconfig", *t, "--arch", "x86_64", "--config", str(config),
         "-o", str(out / "olddef2"), "--no-cache"],
        ["kconfig", "why", "HOSTILE", *t, "--arch", "x86_64", *c],
        ["params", *t, "--format", "json", *c],
        ["families", *t, "--format", "json", *c],
        ["lint", *t, "--format", "json", *c],
        # a cache of its own: both arches to parse, so the Kconfig workers run
        ["lint", *t, "--all-arches", "--format", "sarif", "--cache-dir", f"{cache}-all"],
        ["resolve", *t, "--arch", "x86_64", "--config", str(config),
         "--cmdline", "hostile=1", "--format", "json", *c],
        ["model", "build", *t, "-o", str(out / "model.json"), *c],
    ]


def test_no_command_spawns_a_process_on_a_hostile_tree(
    hostile: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    tree, markers, config = hostile
    out = tmp_path / "out"
    out.mkdir()
    for args in commands(tree, config, out, tmp_path / "cache"):
        result = run_trapped(args, cwd=tmp_path)
        assert "TRAPPED" not in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        assert result.returncode in (0, 1), (args, result.returncode, result.stderr)
        assert list(markers.iterdir()) == [], (args, sorted(markers.iterdir()))
        if "--all-arches" in args:  # two arches to parse: the workers ran, under the trap
            assert "forked a worker" in result.stderr, (args, result.stderr)


def test_allow_shell_really_runs_the_commands(
    hostile: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    tree, markers, _config = hostile
    args = ["kconfig", "olddefconfig", "--tree", str(tree), "--arch", "x86_64",
            "--allow-shell", "-o", str(tmp_path / "out.config"), "--no-cache"]
    trapped = run_trapped(args, cwd=tmp_path)
    assert trapped.returncode == 97 and "TRAPPED" in trapped.stderr
    free = subprocess.run([sys.executable, "-m", "kpolicy", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert free.returncode == 0, free.stderr
    assert {p.name for p in markers.iterdir()} >= {"var-marker", "prompt-marker", "default-marker"}
