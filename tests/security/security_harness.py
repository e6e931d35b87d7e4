"""Shared by the security tests: a tiny kernel tree, and kpolicy run as an untrusted-input
victim would run it (a separate process, address space capped at ~2 GB, a timeout, optionally
without the right to read files it was denied)."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

ADDRESS_SPACE_LIMIT = 2 * 1024**3
TIMEOUT = 240  # seconds; a tiny tree takes ~1 s, so this only catches hangs

KPARAMS = "Documentation/admin-guide/kernel-parameters.txt"

# The RANDOMIZE_KSTACK_OFFSET shape in miniature (doc entry, early_param, static key), plus
# SEAL_FOO, which breaks the pattern (its parameter overrides the build option itself) and an
# undocumented parameter: every command has something to report.
TINY_TREE: dict[str, str] = {
    "Makefile": "VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 0\nEXTRAVERSION =\n",
    "Kconfig": (
        'mainmenu "kpolicy security fixture"\n'
        "\n"
        'source "arch/$(SRCARCH)/Kconfig"\n'
        'source "init/Kconfig"\n'
    ),
    "arch/x86/Kconfig": (
        "config X86\n\tdef_bool y\n\tselect HAVE_ARCH_RANDOMIZE_KSTACK_OFFSET\n"
        "\tselect HAVE_ARCH_SEAL_FOO\n"
        "\nconfig 64BIT\n\tdef_bool y\n\nconfig X86_64\n\tdef_bool y\n"
    ),
    "arch/arm64/Kconfig": "config ARM64\n\tdef_bool y\n",
    "init/Kconfig": (
        'config EXPERT\n\tbool "Configure standard kernel features (expert users)"\n'
        "\n"
        "config HAVE_ARCH_RANDOMIZE_KSTACK_OFFSET\n\tdef_bool n\n"
        "\n"
        "config RANDOMIZE_KSTACK_OFFSET\n"
        '\tbool "Support for randomizing kernel stack offset on syscall entry" if EXPERT\n'
        "\tdefault y\n"
        "\tdepends on HAVE_ARCH_RANDOMIZE_KSTACK_OFFSET\n"
        "\n"
        "config RANDOMIZE_KSTACK_OFFSET_DEFAULT\n"
        '\tbool "Default state of kernel stack offset randomization"\n'
        "\tdepends on RANDOMIZE_KSTACK_OFFSET\n"
        "\n"
        "config HAVE_ARCH_SEAL_FOO\n\tbool\n"
        "\n"
        'config SEAL_FOO\n\tbool "Seal foo"\n\tdefault y\n\tdepends on HAVE_ARCH_SEAL_FOO\n'
        "\n"
        'config BOOT_CONFIG\n\tbool "Boot config support"\n'
        "\n"
        "config CMDLINE_BOOL\n\tbool \"Built-in kernel command line\"\n"
        "\n"
        'config CMDLINE\n\tstring "Built-in kernel command string"\n'
        "\tdepends on CMDLINE_BOOL\n\tdefault \"\"\n"
    ),
    KPARAMS: (
        "\trandomize_kstack_offset=\n"
        "\t\t\t[KNL,EARLY] Enable or disable kernel stack offset\n"
        "\t\t\trandomization.\n"
        "\t\t\tFormat: <bool>  (1/Y/y=enable, 0/N/n=disable)\n"
        "\t\t\tDefault is CONFIG_RANDOMIZE_KSTACK_OFFSET_DEFAULT.\n"
        "\n"
        "\tquiet\t\t[KNL,EARLY] Disable most log messages\n"
        "\n"
        "\tseal_foo=\t[KNL,EARLY] Seal foo.\n"
        "\t\t\tFormat: <bool>\n"
        "\t\t\tDefault is CONFIG_SEAL_FOO.\n"
    ),
    "init/Makefile": "obj-y += main.o\n",
    "init/main.c": (
        "DEFINE_STATIC_KEY_MAYBE_RO(CONFIG_RANDOMIZE_KSTACK_OFFSET_DEFAULT,\n"
        "\t\t\t   randomize_kstack_offset);\n"
        "\n"
        "static int __init early_randomize_kstack_offset(char *buf)\n"
        "{\n"
        "\tint ret;\n"
        "\tbool bool_result;\n"
        "\n"
        "\tret = kstrtobool(buf, &bool_result);\n"
        "\tif (ret)\n"
        "\t\treturn ret;\n"
        "\n"
        "\tif (bool_result)\n"
        "\t\tstatic_branch_enable(&randomize_kstack_offset);\n"
        "\telse\n"
        "\t\tstatic_branch_disable(&randomize_kstack_offset);\n"
        "\treturn 0;\n"
        "}\n"
        'early_param("randomize_kstack_offset", early_randomize_kstack_offset);\n'
        "\n"
        "static int __init quiet_kernel(char *str)\n{\n\treturn 0;\n}\n"
        'early_param("quiet", quiet_kernel);\n'
        "\n"
        "static bool seal_foo = IS_ENABLED(CONFIG_SEAL_FOO);\n"
        "static int __init seal_foo_setup(char *str)\n{\n"
        "\treturn kstrtobool(str, &seal_foo);\n}\n"
        'early_param("seal_foo", seal_foo_setup);\n'
        "\n"
        "static int __init undocumented_setup(char *str)\n{\n\treturn 1;\n}\n"
        '__setup("undocumented_knob=", undocumented_setup);\n'
    ),
}

TINY_CONFIG = ("CONFIG_X86=y\nCONFIG_64BIT=y\nCONFIG_RANDOMIZE_KSTACK_OFFSET=y\n"
               "CONFIG_BOOT_CONFIG=y\n")


def write_files(root: Path, files: dict[str, str]) -> Path:
    """Write FILES (relative path -> text) under ROOT; return ROOT."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def write_tiny_tree(root: Path) -> Path:
    """The tiny tree at ROOT."""
    return write_files(root, TINY_TREE)


def world_readable_tmpdir(prefix: str = "kpolicy-sec-") -> Path:
    """A fresh directory every user can enter (pytest's tmp_path is 0700, closed to the victim)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


@functools.lru_cache(maxsize=1)
def unprivileged_prefix() -> tuple[str, ...]:
    """How to run a command that file permissions bind, or () if we already are bound by them.

    As root: setpriv to nobody when nobody can import kpolicy; else stay uid 0 but drop every
    capability (no CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH), which binds root to mode bits too.
    """
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's file access")
    nobody = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
    probe = subprocess.run([*nobody, sys.executable, "-c", "import kpolicy, kconfiglib, lark"],
                           capture_output=True, cwd="/", timeout=60)
    if probe.returncode == 0:
        return nobody
    return (setpriv, "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs")


# Runs the CLI with an audit hook that reports every file opened or directory listed under
# $KPOLICY_TEST_FORBIDDEN (after resolving symlinks) as an "OUTSIDE-READ" line on stderr.
_WATCHED = r"""
import os, sys
FORBIDDEN = os.path.realpath(os.environ["KPOLICY_TEST_FORBIDDEN"]) + os.sep
def hook(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and args[0] is not None \
            and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if os.path.realpath(path).startswith(FORBIDDEN):
            sys.stderr.write(f"OUTSIDE-READ {event} {path}\n")
sys.addaudithook(hook)
from kpolicy.cli import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str

    def describe(self) -> str:
        return f"kpolicy {' '.join(self.args)}\n-> exit {self.returncode}\n{self.stderr[-3000:]}"


def run_kpolicy(
    args: list[str],
    *,
    cwd: Optional[Path] = None,
    unprivileged: bool = False,
    env: Optional[dict[str, str]] = None,
    timeout: int = TIMEOUT,
    forbidden: Optional[Path] = None,
) -> Run:
    """Run the kpolicy CLI in a fresh, memory-capped interpreter and capture what it said.

    With FORBIDDEN, every read under that directory is reported on stderr (see outside_reads).
    """
    prefix = unprivileged_prefix() if unprivileged else ()
    full_env = dict(os.environ)
    full_env.pop("CI", None)
    full_env["PYTHONDONTWRITEBYTECODE"] = "1"
    if env:
        full_env.update(env)
    entry = ["-m", "kpolicy"]
    if forbidden is not None:
        full_env["KPOLICY_TEST_FORBIDDEN"] = str(forbidden)
        entry = ["-c", _WATCHED]
    try:
        done = subprocess.run(
            [*prefix, sys.executable, *entry, *args],
            cwd=cwd or Path(tempfile.gettempdir()), capture_output=True, timeout=timeout,
            preexec_fn=_limit_address_space, env=full_env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"kpolicy {' '.join(args)} did not finish in {timeout} s")
    return Run(tuple(args), done.returncode, done.stdout,
               done.stderr.decode("utf-8", "backslashreplace"))


_ERROR_LINE = re.compile(r"^(?P<where>.+?): error: (?P<msg>.+)$")


def error_location(run: Run) -> tuple[str, Optional[int], str]:
    """(file, line, message) of the one error line of a run that failed cleanly, asserting it did.

    An error with no file in front (`kpolicy: error: ...`) gives file "kpolicy"."""
    assert "Traceback" not in run.stderr, run.describe()
    assert run.returncode == 2, run.describe()
    errors = [ln for ln in run.stderr.splitlines() if ": error: " in ln]
    assert len(errors) == 1, run.describe()
    m = _ERROR_LINE.match(errors[0])
    assert m is not None, run.describe()
    where, msg = m.group("where"), m.group("msg")
    m_line = re.match(r"^(.*):(\d+)$", where)
    if m_line:
        return m_line.group(1), int(m_line.group(2)), msg
    return where, None, msg


def names_file(where: str, path: Path, tree: Optional[Path] = None, message: str = "") -> bool:
    """Whether an error at WHERE names PATH (absolute or relative to TREE), there or in MESSAGE."""
    candidates = {str(path), os.path.realpath(path)}
    if tree is not None:
        for root in (str(tree), os.path.realpath(tree)):
            with contextlib.suppress(ValueError):
                candidates.add(os.path.relpath(path, root))
    return where in candidates or any(c in message.split() for c in candidates)


def outside_reads(run: Run) -> list[str]:
    """The reads outside the allowed area that a run with `forbidden=` reported."""
    return [ln for ln in run.stderr.splitlines() if ln.startswith("OUTSIDE-READ ")]
