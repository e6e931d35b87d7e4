"""Reading untrusted input files: bounded in size; every failure a KpolicyError naming the file."""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Optional, Union

from kpolicy.errors import KpolicyError, printable

__all__ = ["printable"]  # re-exported: errors.py defines it, KpolicyError applies it

# kernel-parameters.txt is ~300 KB and the largest Kconfig file ~100 KB; a .config ~300 KB.
# Anything far beyond that is not a kernel input, and reading it whole would cost memory.
DEFAULT_LIMIT = 16 * 1024 * 1024

PathLike = Union[str, Path]


def read_bytes(path: PathLike, *, what: str = "file", limit: int = DEFAULT_LIMIT) -> bytes:
    """The bytes of PATH; KpolicyError if it is missing, not a file, unreadable or too big."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise KpolicyError(f"{what} not found", file=p) from None
    except OSError as exc:
        raise KpolicyError(f"cannot read {what}: {exc.strerror}", file=p) from None
    if not p.is_file():
        kind = "a directory" if p.is_dir() else "not a regular file"
        raise KpolicyError(f"{what} is {kind}", file=p)
    if st.st_size > limit:
        raise KpolicyError(f"{what} is too large ({st.st_size} bytes; limit {limit})", file=p)
    try:
        with open(p, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise KpolicyError(f"cannot read {what}: {exc.strerror}", file=p) from None
    if len(data) > limit:  # grew while we read it (a pipe or a growing file)
        raise KpolicyError(f"{what} is too large (limit {limit} bytes)", file=p)
    return data


def line_of_offset(data: bytes, offset: int) -> int:
    """1-based line number of byte OFFSET in DATA."""
    return data.count(b"\n", 0, offset) + 1


def decode_text(data: bytes, *, file: PathLike, what: str = "file") -> str:
    """Decode DATA as UTF-8 text; NUL bytes and invalid UTF-8 are errors naming the line."""
    nul = data.find(b"\0")
    if nul >= 0:
        raise KpolicyError(f"{what} contains a NUL byte (binary data?)", file=file,
                           line=line_of_offset(data, nul))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KpolicyError(f"{what} is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                           file=file, line=line_of_offset(data, exc.start)) from None


def gunzip(data: bytes, *, file: PathLike, what: str = "file", limit: int = DEFAULT_LIMIT) -> bytes:
    """DATA gunzipped, or KpolicyError naming FILE if it is damaged or inflates beyond LIMIT."""
    import gzip
    import io
    import zlib

    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            out = f.read(limit + 1)  # bounded: a few KB of gzip can inflate to gigabytes
    except (OSError, EOFError, zlib.error) as exc:
        raise KpolicyError(f"{what} is damaged gzip data: {exc}", file=file) from None
    if len(out) > limit:
        raise KpolicyError(f"{what} is too large once decompressed (limit {limit} bytes)",
                           file=file)
    return out


def read_text(path: PathLike, *, what: str = "file", limit: int = DEFAULT_LIMIT) -> str:
    """Return PATH as text, or raise KpolicyError naming the file (and line) of the problem."""
    return decode_text(read_bytes(path, what=what, limit=limit), file=path, what=what)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write DATA to PATH so that readers see either the old file or the whole new one.

    A PATH that exists and is not a regular file (/dev/null, /dev/stdout, a FIFO) is written in
    place: renaming over it would replace the device with a plain file.
    """
    p = Path(path)
    try:
        if p.exists() and not p.is_file():
            if p.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
            with open(p, "wb") as f:
                f.write(data)
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        finally:
            if tmp.exists():
                tmp.unlink()
    except OSError as exc:  # an output path that cannot be written is the user's to fix
        raise KpolicyError(f"cannot write: {exc.strerror}", file=p) from None


# A TOML file of kpolicy's (a rule, a declaration, a config) is a few KB; far bigger is not one.
TOML_LIMIT = 1024 * 1024
_TOML_LINE = re.compile(r"\(at line (\d+)")


def parse_toml_text(text: str, file: PathLike) -> dict[str, Any]:
    """TEXT (of FILE) parsed as TOML; a syntax error is a KpolicyError at its line."""
    if sys.version_info >= (3, 11):  # imported here: a cached resolve never parses TOML
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_LINE.search(str(exc))
        raise KpolicyError(f"invalid TOML: {exc}", file=file,
                           line=int(m.group(1)) if m else None) from None
    except RecursionError:
        raise KpolicyError("invalid TOML: nested too deeply", file=file) from None
    except ValueError as exc:  # an integer beyond Python's 4300-digit conversion limit
        raise KpolicyError(f"invalid TOML: {exc}", file=file) from None


def key_line(text: str, key: str, *, start: int = 1) -> Optional[int]:
    """The line (from START on) where KEY is assigned in TOML TEXT, if it can be found."""
    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
    for number, line in enumerate(text.splitlines()[start - 1:], start=start):
        if pattern.match(line):
            return number
    return None


def entry_lines(text: str, table: str) -> list[int]:
    """Line numbers of each [[TABLE]] header of TOML TEXT, in order."""
    pattern = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
    return [n for n, line in enumerate(text.splitlines(), 1) if pattern.match(line)]


def reject_unknown_keys(table: Mapping[str, object], known: Collection[str], *, file: PathLike,
                        text: Optional[str] = None, where: str = "", start: int = 1) -> None:
    """Refuse a TOML TABLE with a key outside KNOWN: the error names the first such key, what
    was expected and, when TEXT is given, the key's line (searched from START on)."""
    unknown = sorted(set(table) - set(known))
    if unknown:
        line = key_line(text, unknown[0], start=start) if text is not None else None
        expected = ", ".join(sorted(known))
        raise KpolicyError(f"{where}unknown key '{unknown[0]}' (expected {expected})",
                           file=file, line=line or (start if start > 1 else None))


def parse_toml(path: Path, *, what: str) -> tuple[dict[str, Any], str]:
    """PATH parsed as TOML, with its text; a syntax error is a KpolicyError at its line."""
    text = read_text(path, what=what, limit=TOML_LIMIT)
    return parse_toml_text(text, path), text


