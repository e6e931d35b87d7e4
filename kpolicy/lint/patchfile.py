"""Patch files read and applied by kpolicy itself, for `kpolicy lint --patch`.

A patch file is what `git format-patch` writes (one mail), an mbox of several such mails (as
`b4 am` writes a series; a cover letter without a diff is skipped), or plain `git diff` /
unified diff output. Every file section of every file is applied in order, to contents held in
memory: no git, no `patch` program, nothing of the tree is run.

Applying is strict like `git apply` without options: every context and removed line must match
exactly (no fuzz, whitespace included); a hunk may sit at an offset from the line its header
names (the nearest match wins, searched after the previous hunk), and a hunk without leading
(trailing) context must match at the start (end) of the file. Git's extended headers are
understood: new and deleted files, renames, copies and mode changes. Binary patches and
mail bodies in a transfer encoding (base64, quoted-printable) are refused: `b4 am` and
`git format-patch` write plain 8-bit text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Optional

from kpolicy.errors import KpolicyError

# path -> content (None: the file does not exist) before the patches
Reader = Callable[[str], Optional[bytes]]

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_EXTENDED = (b"old mode ", b"new mode ", b"deleted file mode ", b"new file mode ",
             b"copy from ", b"copy to ", b"rename from ", b"rename to ", b"similarity index ",
             b"dissimilarity index ", b"index ")
_ENCODED = re.compile(rb"^Content-Transfer-Encoding:\s*(base64|quoted-printable)\s*$", re.I)
_UNQUOTE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Hunk:
    """One `@@` hunk: the lines it expects (OLD) and writes (NEW), each with its line ending."""

    header: str
    line: int  # of the @@ line in the patch file
    old_start: int
    old: tuple[bytes, ...]
    new: tuple[bytes, ...]
    leading: int  # context lines before the first change
    trailing: int  # context lines after the last change


@dataclass(frozen=True)
class FilePatch:
    """The changes of one file section. OLD_PATH None: a new file; NEW_PATH None: a deletion."""

    source: str  # the patch file, as named on the command line
    line: int  # of the section's first line
    old_path: Optional[str]
    new_path: Optional[str]
    new_mode: Optional[str]
    copy: bool
    hunks: tuple[Hunk, ...]


def _lines(data: bytes) -> list[bytes]:
    """DATA split after each b"\\n" (the last line may lack one)."""
    parts = data.split(b"\n")
    out = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _unquote(text: str, source: str, line: int) -> str:
    """A C-quoted path as git writes names with unusual characters ("a/t\\303\\251st")."""
    body, out, i = text[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        nxt = body[i + 1:i + 2]
        if nxt in _UNQUOTE:
            out += _UNQUOTE[nxt].encode()
            i += 2
        elif re.fullmatch(r"[0-7]{3}", body[i + 1:i + 4]):
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
        else:
            raise KpolicyError(f"malformed quoted path {text}", file=source, line=line)
    return out.decode("utf-8", "surrogateescape")


def check_path(path: str, source: str, line: int) -> str:
    """PATH when it names a file inside the tree; an absolute path, a `..` or `.` component, an
    empty component or a NUL is refused."""
    parts = path.split("/")
    if path.startswith("/") or "\0" in path or any(p in ("", ".", "..") for p in parts) \
            or parts[0] == ".git":
        raise KpolicyError(f"path escapes the tree or is not a plain relative path: {path!r}",
                           file=source, line=line)
    return path


def _header_path(raw: bytes, source: str, line: int, strip: bool) -> Optional[str]:
    """The path of a `--- NAME` / `+++ NAME` line (None for /dev/null), STRIP: drop the a/ or b/
    (first component), as `git apply -p1`."""
    text = raw.decode("utf-8", "surrogateescape").rstrip("\n")
    if text.startswith('"'):
        end = text.find('"', 1)
        while end > 0 and text[end - 1] == "\\" and not text[:end].endswith("\\\\"):
            end = text.find('"', end + 1)
        if end < 0:
            raise KpolicyError(f"malformed quoted path {text}", file=source, line=line)
        text = _unquote(text[:end + 1], source, line)
    else:
        text = text.split("\t", 1)[0].rstrip(" ")  # diff -u puts a tab and a date after it
    if text == "/dev/null":
        return None
    if text.startswith("/"):
        check_path(text, source, line)
    if strip:
        if "/" not in text:
            raise KpolicyError(f"path has no a/ or b/ prefix: {text!r}", file=source, line=line)
        text = text.split("/", 1)[1]
    return check_path(text, source, line)


def _git_line_paths(raw: bytes, source: str, line: int) -> Optional[str]:
    """The file of `diff --git a/NAME b/NAME` when both names are the same (the only case git
    leaves without ---/+++ or rename lines: a mode change or an empty new or deleted file)."""
    text = raw[len(b"diff --git "):].decode("utf-8", "surrogateescape").rstrip("\n")
    size = (len(text) - 5) // 2
    if size > 0 and text.startswith("a/") and text[2 + size:5 + size] == " b/" \
            and text[2:2 + size] == text[5 + size:]:
        return check_path(text[2:2 + size], source, line)
    return None


def _parse_hunk(lines: list[bytes], i: int, source: str) -> tuple[Hunk, int]:
    """The hunk whose @@ line is LINES[I], and the index after it."""
    m = _HUNK.match(lines[i])
    if m is None:
        raise KpolicyError("malformed hunk header", file=source, line=i + 1)
    old_count = int(m.group(2)) if m.group(2) is not None else 1
    new_count = int(m.group(4)) if m.group(4) is not None else 1
    header = lines[i].decode("utf-8", "replace").rstrip("\n")
    old: list[bytes] = []
    new: list[bytes] = []
    kinds: list[str] = []
    j = i + 1
    while len(old) < old_count or len(new) < new_count or \
            (j < len(lines) and lines[j].startswith(b"\\")):
        if j >= len(lines):
            raise KpolicyError(f"hunk ends early ({header})", file=source, line=i + 1)
        text = lines[j]
        tag, body = text[:1], text[1:]
        if text in (b"\n", b"\r\n"):  # a context line whose single space a mailer dropped
            tag, body = b" ", text
        if tag == b"\\":  # "\ No newline at end of file": the line before has no line end
            if not kinds:
                raise KpolicyError("no-newline marker without a line before it", file=source,
                                   line=j + 1)
            if kinds[-1] in " -":
                old[-1] = old[-1].rstrip(b"\n")
            if kinds[-1] in " +":
                new[-1] = new[-1].rstrip(b"\n")
            j += 1
            continue
        if tag not in (b" ", b"-", b"+") or (tag != b"+" and len(old) >= old_count) or \
                (tag != b"-" and len(new) >= new_count):
            raise KpolicyError(f"hunk ends early or has a malformed line ({header})",
                               file=source, line=j + 1)
        kinds.append(tag.decode())
        if tag in (b" ", b"-"):
            old.append(body)
        if tag in (b" ", b"+"):
            new.append(body)
        j += 1
    changed = [k for k, t in enumerate(kinds) if t != " "]
    leading = changed[0] if changed else len(kinds)
    trailing = len(kinds) - 1 - changed[-1] if changed else len(kinds)
    return Hunk(header, i + 1, int(m.group(1)), tuple(old), tuple(new), leading, trailing), j


def _is_extended(line: bytes) -> bool:
    return line.startswith(_EXTENDED)


def parse_patches(data: bytes, source: str) -> list[FilePatch]:
    """Every file section of the patch file SOURCE (its bytes DATA), in order. A file without
    any section, or with a section that cannot be read, is a KpolicyError at its line."""
    lines = _lines(data)
    out: list[FilePatch] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _ENCODED.match(line.rstrip(b"\r\n")):
            raise KpolicyError("mail body is base64 or quoted-printable encoded; save the series "
                               "as 8-bit text (b4 am, git format-patch)", file=source, line=i + 1)
        if line.startswith(b"diff --git "):
            section, i = _parse_git_section(lines, i, source)
            out.append(section)
        elif line.startswith(b"--- ") and i + 2 < len(lines) and \
                lines[i + 1].startswith(b"+++ ") and lines[i + 2].startswith(b"@@ "):
            section, i = _parse_section(lines, i, source, i + 1, None, None, None, False, True)
            out.append(section)
        else:
            i += 1
    if not out:
        raise KpolicyError("no diff found in the patch file", file=source)
    return out


def _parse_git_section(lines: list[bytes], i: int, source: str) -> tuple[FilePatch, int]:
    start = i
    same = _git_line_paths(lines[i], source, i + 1)
    old_path: Optional[str] = same
    new_path: Optional[str] = same
    new_mode: Optional[str] = None
    copy = False
    i += 1
    while i < len(lines) and _is_extended(lines[i]):
        text = lines[i].rstrip(b"\n")
        word, value = text.split(b" ", 1)[0], text.rsplit(b" ", 1)[-1].decode("ascii", "replace")
        if text.startswith((b"rename from ", b"copy from ")):
            old_path = _header_path(text.split(b" ", 2)[2], source, i + 1, strip=False)
            copy = word == b"copy"
        elif text.startswith((b"rename to ", b"copy to ")):
            new_path = _header_path(text.split(b" ", 2)[2], source, i + 1, strip=False)
        elif text.startswith(b"new file mode "):
            old_path, new_mode = None, value
        elif text.startswith(b"deleted file mode "):
            new_path = None
        elif text.startswith(b"new mode "):
            new_mode = value
        i += 1
    if i < len(lines) and (lines[i].startswith(b"GIT binary patch")
                           or lines[i].startswith(b"Binary files ")):
        raise KpolicyError("binary patches are not supported", file=source, line=i + 1)
    if i + 1 < len(lines) and lines[i].startswith(b"--- ") and lines[i + 1].startswith(b"+++ "):
        return _parse_section(lines, i, source, start + 1, old_path, new_path, new_mode, copy,
                              True)
    if (old_path is None and new_path is None) or \
            (old_path is None and same is None) or (new_path is None and same is None):
        raise KpolicyError("cannot tell the file names of this diff", file=source, line=start + 1)
    return FilePatch(source, start + 1, old_path, new_path, new_mode, copy, ()), i


def _parse_section(lines: list[bytes], i: int, source: str, first: int,
                   old_path: Optional[str], new_path: Optional[str], new_mode: Optional[str],
                   copy: bool, strip: bool) -> tuple[FilePatch, int]:
    """The ---/+++ lines at LINES[I] and the hunks after them."""
    minus = _header_path(lines[i][4:], source, i + 1, strip)
    plus = _header_path(lines[i + 1][4:], source, i + 2, strip)
    if minus is None and plus is None:
        raise KpolicyError("diff from /dev/null to /dev/null", file=source, line=i + 1)
    renamed = old_path is not None and new_path is not None and old_path != new_path
    if not renamed:  # the ---/+++ names are authoritative, /dev/null included
        old_path, new_path = minus, plus
    i += 2
    hunks: list[Hunk] = []
    while i < len(lines) and lines[i].startswith(b"@@ "):
        hunk, i = _parse_hunk(lines, i, source)
        hunks.append(hunk)
    if not hunks:
        raise KpolicyError("file section has no hunk", file=source, line=i)
    return FilePatch(source, first, old_path, new_path, new_mode, copy, tuple(hunks)), i


def _place(lines: list[bytes], hunk: Hunk, pos: int, offset: int) -> Optional[int]:
    """Where HUNK's old lines sit in LINES at or after POS, nearest to where its header says
    (shifted by OFFSET, what the hunks before it needed); None when nowhere."""
    old = list(hunk.old)
    size = len(old)
    expected = (hunk.old_start - 1 if size else hunk.old_start) + offset
    last = len(lines) - size
    if hunk.leading == 0 and hunk.old_start <= 1 and size:
        candidates: Iterable[int] = (0,)
    elif hunk.trailing == 0 and hunk.leading > 0:
        candidates = (last,)
    else:
        reach = max(expected - pos, last - expected, 0) + 1
        candidates = (k for d in range(reach) for k in (expected - d, expected + d))
    for k in candidates:
        if pos <= k <= last and (not size or lines[k] == old[0]) and lines[k:k + size] == old:
            return k
    return None


def apply_hunks(content: bytes, section: FilePatch, path: str) -> bytes:
    """CONTENT with SECTION's hunks applied; a hunk that does not match is a KpolicyError at its
    @@ line naming PATH."""
    lines = _lines(content)
    out: list[bytes] = []
    pos = offset = 0
    for number, hunk in enumerate(section.hunks, 1):
        k = _place(lines, hunk, pos, offset)
        if k is None:
            raise KpolicyError(
                f"{path}: hunk #{number} ({hunk.header}) does not apply: its context and "
                f"removed lines are not in the file (after the previous hunk, exact match)",
                file=section.source, line=hunk.line)
        offset = k - (hunk.old_start - 1 if hunk.old else hunk.old_start)
        out += lines[pos:k]
        out += hunk.new
        pos = k + len(hunk.old)
    out += lines[pos:]
    return b"".join(out)


@dataclass(frozen=True)
class Change:
    """What the patches leave at one path: CONTENT None means deleted."""

    content: Optional[bytes]
    mode: str = "100644"


def apply_all(sections: list[FilePatch], read: Reader) -> dict[str, Change]:
    """The files SECTIONS change, applied in order over the tree READ gives; every conflict
    (a hunk that does not match, a new file that exists, a missing file) is a KpolicyError
    naming the patch file and line."""
    state: dict[str, Change] = {}

    def current(path: str) -> Optional[bytes]:
        return state[path].content if path in state else read(path)

    for s in sections:
        target = s.new_path if s.new_path is not None else s.old_path
        assert target is not None
        if s.old_path is None:
            if current(target) is not None:
                raise KpolicyError(f"{target}: the patch creates it, but it already exists",
                                   file=s.source, line=s.line)
            before = b""
        else:
            found = current(s.old_path)
            if found is None:
                raise KpolicyError(f"{s.old_path}: the patch changes it, but it does not exist",
                                   file=s.source, line=s.line)
            before = found
        after = apply_hunks(before, s, target)
        if s.new_path is None:
            if after:
                raise KpolicyError(f"{target}: the patch deletes it, but the file has lines the "
                                   f"patch does not remove", file=s.source, line=s.line)
            state[target] = Change(None)
            continue
        if s.old_path is not None and s.old_path != s.new_path:
            if current(s.new_path) is not None:
                raise KpolicyError(f"{s.new_path}: the patch renames or copies {s.old_path} "
                                   f"onto it, but it already exists", file=s.source, line=s.line)
            if not s.copy:
                state[s.old_path] = Change(None)
        mode = s.new_mode or (state[s.new_path].mode if s.new_path in state else "100644")
        state[s.new_path] = Change(after, "100755" if mode == "100755" else
                                   "120000" if mode == "120000" else "100644")
    return state
