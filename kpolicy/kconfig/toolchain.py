"""Toolchain profiles: who answers `$(shell,...)` and the macros built on it while Kconfig is read.

The kernel's Kconfig probes the compiler at parse time (scripts/Kconfig.include: cc-option,
as-instr, ld-option, cc-version, ...), which means running commands named by the tree. kpolicy
never does that by default. A profile answers instead:

default profile ("gcc-14-default", what `kpolicy kconfig` uses without options)
    CC=gcc, LD=ld, GCC 14.2.0 with GNU binutils 2.44, no Rust, no Clang:
    `cc-version.sh` -> "GCC 140200", `as-version.sh` -> "GNU 24400", `ld-version.sh` ->
    "BFD 24400", rustc/pahole version scripts -> "0"; `command -v`, `test -z/-n`, `test A = B`,
    `expr A OP B` and `set -- WORDS && echo $N` are evaluated in Python; every other probe
    (a compiler, assembler or linker flag) is answered "supported", except probes that need
    rustc, bindgen or clang, answered "not supported".
--toolchain-from FILE
    the same, plus: every symbol whose definition uses a tool probe (a `$(shell,...)` result or a
    variable the Makefile derives from a tool, e.g. CC_VERSION_TEXT) and that has no prompt takes
    its value from FILE (an existing .config, e.g. the one the kernel build wrote): CC_IS_GCC,
    GCC_VERSION, CC_HAS_*, AS_HAS_*, LD_*, RUSTC_*, ...; one absent from FILE has no default.
    A symbol with a prompt whose dependencies probe the tools (CFI, STACKPROTECTOR, ...) and
    that FILE does not mention at all is taken as unavailable with that toolchain.
--allow-shell
    runs every command for real with /bin/sh, in an empty temporary directory, 30 s each.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from kpolicy.errors import KpolicyError
from kpolicy.kconfig.dotconfig import read_dotconfig

DEFAULT_NAME = "gcc-14-default"
DEFAULT_CC_VERSION_TEXT = "gcc (Debian 14.2.0-19) 14.2.0"
SHELL_TIMEOUT = 30

# Variables the top-level Makefile exports to Kconfig that describe the tools, not the tree.
DEFAULT_ENV = {
    "CC": "gcc",
    "LD": "ld",
    "AR": "ar",
    "NM": "nm",
    "OBJCOPY": "objcopy",
    "OBJDUMP": "objdump",
    "READELF": "readelf",
    "STRIP": "strip",
    "CPP": "gcc -E",
    "HOSTCC": "gcc",
    "HOSTCXX": "g++",
    "RUSTC": "rustc",
    "BINDGEN": "bindgen",
    "PAHOLE": "pahole",
    "CC_VERSION_TEXT": DEFAULT_CC_VERSION_TEXT,
    "RUSTC_VERSION_TEXT": "",
    "PAHOLE_VERSION": "0",
}
# The Makefile computes these from the tools before it starts conf (its commands, as sh).
MAKEFILE_PROBES = {
    "CC_VERSION_TEXT": 'LC_ALL=C "$CC" --version 2>/dev/null | head -n 1 | tr -d "#"',
    "RUSTC_VERSION_TEXT": '"$RUSTC" --version 2>/dev/null | tr -d "#"',
    "PAHOLE_VERSION": '"$srctree/scripts/pahole-version.sh" "$PAHOLE"',
}

_VERSION_SCRIPTS = {
    "cc-version.sh": "GCC 140200",
    "as-version.sh": "GNU 24400",
    "ld-version.sh": "BFD 24400",
    "rustc-version.sh": "0",
    "rustc-llvm-version.sh": "0",
    "pahole-version.sh": "0",
}
# `{ CMD; } >/dev/null 2>&1 && echo "YES" || echo "NO"`, split with str.rfind (a regular
# expression with three `.*` backtracks cubically on a long line)
_IF_OPEN, _IF_THEN, _IF_ELSE = "{ ", '; } >/dev/null 2>&1 && echo "', '" || echo "'
_INTMAX = 2**63  # expr(1) computes in intmax_t
_SET_ECHO = re.compile(r"^set -- (.*) && echo \$(\d)$", re.S)
_UNSUPPORTED = re.compile(r"rustc|rust_is_available|bindgen|clang", re.I)


@dataclass(frozen=True)
class Toolchain:
    """Answers for what Kconfig asks the tools: environment, command outputs, symbol values."""

    name: str
    env: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ENV))
    symbols: Mapping[str, str] = field(default_factory=dict)  # tool-derived values from a .config
    allow_shell: bool = False

    def key(self) -> str:
        """A string that changes whenever any answer of this profile could change."""
        h = hashlib.sha256(repr((self.name, sorted(self.env.items()),
                                 sorted(self.symbols.items()), self.allow_shell)).encode())
        return h.hexdigest()

    def variable(self, name: str, srctree: Path) -> Optional[str]:
        """The value of the environment variable NAME the kernel's Makefile would export."""
        if self.allow_shell and name in MAKEFILE_PROBES:
            return _run(MAKEFILE_PROBES[name], self.env, srctree).rstrip("\n")
        return self.env.get(name)

    def shell(self, command: str, srctree: Path) -> str:
        """The output of `$(shell,COMMAND)` as C conf would see it (newlines become spaces)."""
        out = _run(command, self.env, srctree) if self.allow_shell else _emulate(command)
        return out.rstrip("\n").replace("\n", " ")


def default_toolchain() -> Toolchain:
    """The documented default profile: GCC 14.2 and binutils 2.44, answered without running."""
    return Toolchain(name=DEFAULT_NAME)


def shell_toolchain() -> Toolchain:
    """The profile that runs the tree's `$(shell,...)` commands for real (--allow-shell)."""
    env = {k: v for k, v in DEFAULT_ENV.items() if k not in MAKEFILE_PROBES}
    return Toolchain(name="shell", env=env, allow_shell=True)


def toolchain_from_config(path: Path) -> Toolchain:
    """The default profile with tool-derived symbol values taken from the .config at PATH."""
    dot = read_dotconfig(path)
    env = dict(DEFAULT_ENV)
    version_text = dot.values.get("CC_VERSION_TEXT")
    if version_text is not None:
        env["CC_VERSION_TEXT"] = version_text
    digest = hashlib.sha256(repr(sorted(dot.values.items())).encode()).hexdigest()[:12]
    return Toolchain(name=f"from-config-{digest}", env=env, symbols=dict(dot.values))


def _run(command: str, env: Mapping[str, str], srctree: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="kpolicy-shell-") as tmp:
        # A private TMPDIR too: the compiler's temporary files are nobody else's business.
        run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", **env,
                   "srctree": str(srctree), "TMPDIR": tmp}
        try:
            proc = subprocess.run(["/bin/sh", "-c", command], cwd=tmp, env=run_env,
                                  capture_output=True, timeout=SHELL_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KpolicyError(f"$(shell,{command[:60]}...) failed: {exc}") from None
    return proc.stdout.decode("utf-8", "replace")


def _if_success(command: str) -> Optional[tuple[str, str, str]]:
    """(CMD, YES, NO) of `{ CMD; } >/dev/null 2>&1 && echo "YES" || echo "NO"`, splitting where
    a greedy match would (the last separators that fit), or None; linear time."""
    if not command.startswith(_IF_OPEN) or not command.endswith('"') or len(command) < 2:
        return None
    j = command.rfind(_IF_ELSE, 0, len(command) - 1)
    i = command.rfind(_IF_THEN, len(_IF_OPEN), j) if j >= 0 else -1
    if i < 0:
        return None
    return (command[len(_IF_OPEN):i], command[i + len(_IF_THEN):j],
            command[j + len(_IF_ELSE):-1])


def _emulate(command: str) -> str:
    parts = _if_success(command)
    if parts is not None:
        return parts[1] if _succeeds(parts[0]) else parts[2]
    m = _SET_ECHO.match(command)
    if m:
        words = m.group(1).split()
        index = int(m.group(2)) - 1
        return words[index] if 0 <= index < len(words) else ""
    words = command.split()
    if len(words) == 4 and words[0] == "expr":
        return _expr(words[1:])
    first = words[0] if words else ""
    answer = _VERSION_SCRIPTS.get(os.path.basename(first))
    if answer is not None:
        return answer
    if "--version" in command:
        return DEFAULT_CC_VERSION_TEXT
    return ""


def _expr(args: list[str]) -> str:
    """expr(1) on `A OP B` with integers, the only form Kconfig uses."""
    a, op, b = args
    if len(a) > 20 or len(b) > 20:  # beyond intmax_t: expr fails, printing nothing
        return ""
    try:
        x, y = int(a), int(b)
    except ValueError:
        return ""
    quotient = None
    if y:  # C division truncates toward zero
        quotient = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
    results = {"+": x + y, "-": x - y, "*": x * y, "/": quotient,
               "%": x - y * quotient if quotient is not None else None}
    value = results.get(op)
    if value is None or not -_INTMAX <= value < _INTMAX:
        return ""
    return str(value)


def _succeeds(command: str) -> bool:
    """Whether a probe command would succeed with the default profile's toolchain."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    if words[:2] == ["command", "-v"]:
        return True
    if words[:1] == ["test"]:
        return _test(words[1:])
    return _UNSUPPORTED.search(command) is None


def _test(args: list[str]) -> bool:
    if len(args) == 2 and args[0] in ("-z", "-n"):
        return (args[1] == "") == (args[0] == "-z")
    if len(args) == 3 and args[1] in ("=", "!="):
        return (args[0] == args[2]) == (args[1] == "=")
    return False

