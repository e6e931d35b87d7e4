"""Finding the C side of a tree's boot parameters: walking the tree, sifting the files worth
reading, sharing them between forked workers, and caching the result.

Cache key: the (path, size, mtime_ns) of every C file, header and Makefile, not their
contents. Hashing 730 MB of C on every run would cost more than the scan saves; the stat
triple changes whenever a file is written by any ordinary means (an edit keeping both the size
and the nanosecond mtime is the one change this misses).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kpolicy import treefs
from kpolicy.cache import Cache, content_key
from kpolicy.errors import KpolicyError
from kpolicy.forked import map_in_parts
from kpolicy.params.cunit import KEYWORDS, MAX_C_FILE, RAW_READ_HINTS, Wrapper, raw_reads
from kpolicy.params.kbuild import BuildInfo, KbuildMap
from kpolicy.params.model import Registration, StaticKey
from kpolicy.params.registrations import FileScanner
from kpolicy.tree import KernelTree


def _source_digest() -> str:
    """A digest of the scanner's own code, read once at import: part of the cache key, so
    results are never read back by (or stored for) a different scanner than the one running."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in ("scan.py", "registrations.py", "cunit.py", "ctokens.py", "kbuild.py", "model.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()


_SOURCE_DIGEST = _source_digest()


# Directories that are not part of a kernel build.
_PRUNE = frozenset({".git", "Documentation", "tools", "LICENSES"})


_C_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]+"([^"\n]+\.c)"', re.M)


@dataclass(frozen=True)
class _SourceFile:
    rel: str
    root: str  # of the tree: read through treefs
    size: int
    mtime_ns: int


def _walk(
    root: Path,
) -> tuple[list[_SourceFile], dict[str, list[str]], list[tuple[str, int, int]]]:
    """Regular (non-symlink) C files, each directory's kbuild file names, and the stat triples
    of every header (a registration or a wrapper macro there reaches the files including it)
    and of every Makefile.* or *.mk file (a kbuild file may include it)."""
    c_files: list[_SourceFile] = []
    makefiles: dict[str, list[str]] = {}
    headers: list[tuple[str, int, int]] = []
    # treefs.walk lists regular files only: symlinks and special files are not read
    for rel_dir, dirnames, filenames in treefs.walk(root, prune=_PRUNE):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        names: list[str] = [n for n in ("Kbuild", "Makefile") if n in filenames]
        if names:
            makefiles[rel_dir] = names
        for name in sorted(filenames):
            is_c = name.endswith(".c")
            if name.startswith("Makefile.") or name.endswith(".mk"):
                st = filenames[name]  # a Makefile may `include` it (virt/kvm/Makefile.kvm)
                headers.append((f"{rel_dir}/{name}" if rel_dir else name, st.st_size,
                                st.st_mtime_ns))
                continue
            if not is_c and not name.endswith(".h"):
                continue
            st = filenames[name]
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if is_c:
                c_files.append(_SourceFile(rel, str(root), st.st_size, st.st_mtime_ns))
            else:
                headers.append((rel, st.st_size, st.st_mtime_ns))
    return c_files, makefiles, headers


def _stat_key(root: Path, rel: str) -> tuple[str, int, int]:
    st = os.lstat(root / rel)  # REL came from treefs.walk: no symlink among its directories
    return (rel, st.st_size, st.st_mtime_ns)


_Scan = tuple[tuple[Registration, ...], tuple[StaticKey, ...], frozenset[str]]


def _cached_scan(tree: KernelTree, cache: Optional[Cache], jobs: int = 1) -> _Scan:
    c_files, makefiles, headers = _walk(tree.root)
    if cache is None:
        return _scan(tree.root, c_files, makefiles, jobs)
    key_parts: list[tuple[str, int, int]] = [(f.rel, f.size, f.mtime_ns) for f in c_files]
    for d, names in sorted(makefiles.items()):
        key_parts.extend(_stat_key(tree.root, posixpath.join(d, n) if d else n) for n in names)
    key = content_key(_SOURCE_DIGEST, tree.version, tuple(key_parts), tuple(headers))
    return cache.get_or_build(
        "params-registrations", key, lambda: _scan(tree.root, c_files, makefiles, jobs), tuple
    )


def scan_registrations(
    tree: KernelTree, cache: Optional[Cache] = None
) -> tuple[tuple[Registration, ...], tuple[StaticKey, ...]]:
    """Every boot-parameter registration and static key in the tree's C files, sorted by place."""
    regs, keys, _reads = _cached_scan(tree, cache)
    return regs, keys


def scan_all(tree: KernelTree, cache: Optional[Cache] = None, jobs: int = 1) -> _Scan:
    """scan_registrations plus command_line_reads, from one scan (by JOBS processes)."""
    return _cached_scan(tree, cache, jobs)


def command_line_reads(tree: KernelTree, cache: Optional[Cache] = None) -> frozenset[str]:
    """Names the kernel looks up in the raw command line without registering them: string
    arguments of cmdline_find_option()/cmdline_find_option_bool() (the x86 decompressor's in
    arch/x86/boot/ too) and of strstr(boot_command_line, ...) (or of an arch's early copy of
    the line, cunit._STRSTR), and the names of alias tables (fs/proc/proc_sysctl.c
    sysctl_aliases[], arm64 idreg-override aliases[])."""
    return _cached_scan(tree, cache)[2]


def _read_kbuild(root: Path, makefiles: dict[str, list[str]]) -> KbuildMap:
    texts: dict[str, str] = {}
    for d, names in makefiles.items():
        # Kbuild wins over Makefile for obj- lists; the root and arch/<a> Makefiles also carry
        # the core-y/drivers-y/libs-y lists the top Makefile reads, so read both there.
        both = d == "" or (d.startswith("arch/") and d.count("/") == 1)
        chosen = names if both else names[:1]
        texts[d] = "\n".join(
            treefs.read_text(root, f"{d}/{n}" if d else n, what="kbuild file")
            for n in chosen
        )

    def read_included(rel: str) -> Optional[str]:
        """A file a Makefile `include`s (virt/kvm/Makefile.kvm): None when it is missing,
        special or outside the tree."""
        try:
            return treefs.read_text(root, rel, what="included kbuild file")
        except KpolicyError:
            return None

    return KbuildMap(texts, read_included)


def _scan(
    root: Path, c_files: list[_SourceFile], makefiles: dict[str, list[str]], jobs: int = 1
) -> _Scan:
    """The registrations, static keys and raw command-line reads of C_FILES. With JOBS > 1,
    forked workers share the files, each reading every JOBS-th one (the result is the same)."""
    kbuild = _read_kbuild(root, makefiles)
    jobs = max(1, min(jobs, len(c_files)))
    numbered = list(enumerate(c_files))
    sifted = map_in_parts(_sift, [numbered[i::jobs] for i in range(jobs)])
    # A .c file #included by other .c files builds as its first includer, in walk order.
    first_includer: dict[str, tuple[int, str]] = {}
    reads: set[str] = set()
    candidates: list[tuple[int, _SourceFile]] = []
    for part_includes, part_reads, part_candidates in sifted:
        for target, (index, rel) in part_includes.items():
            if target not in first_includer or index < first_includer[target][0]:
                first_includer[target] = (index, rel)
        reads |= part_reads
        candidates += part_candidates
    included_by = {target: rel for target, (_index, rel) in first_includer.items()}
    candidates.sort(key=lambda c: c[0])
    files = [f for _index, f in candidates]

    def scan_part(part: list[_SourceFile]) -> tuple[list[Registration], list[StaticKey]]:
        return _scan_candidates(root, kbuild, included_by, part)

    regs: list[Registration] = []
    keys: list[StaticKey] = []
    for part_regs, part_keys in map_in_parts(scan_part, [files[i::jobs] for i in range(jobs)]):
        regs += part_regs
        keys += part_keys
    regs.sort(key=lambda r: (r.location.file, r.location.line, r.kind, r.name))
    keys.sort(key=lambda k: (k.location.file, k.location.line, k.name))
    return tuple(regs), tuple(keys), frozenset(reads)


def _sift(files: list[tuple[int, _SourceFile]]) -> tuple[
    dict[str, tuple[int, str]], set[str], list[tuple[int, _SourceFile]]
]:
    """Of FILES (each with its index in walk order): which .c files each #includes (target ->
    the first includer's index and path), the raw command-line reads, and the files that may
    register something."""
    includes: dict[str, tuple[int, str]] = {}
    reads: set[str] = set()
    candidates: list[tuple[int, _SourceFile]] = []
    for index, f in files:
        data = treefs.read_bytes(f.root, f.rel, what="C file", limit=MAX_C_FILE)
        if b'.c"' in data:
            base = posixpath.dirname(f.rel)
            for m in _C_INCLUDE.finditer(data):
                target = posixpath.normpath(posixpath.join(base, m.group(1).decode("latin-1")))
                includes.setdefault(target, (index, f.rel))
        if any(k in data for k in KEYWORDS):
            candidates.append((index, f))
        if any(hint in data for hint in RAW_READ_HINTS):
            reads.update(raw_reads(data))
    return includes, reads, candidates


def _scan_candidates(root: Path, kbuild: KbuildMap, included_by: dict[str, str],
                     files: list[_SourceFile]) -> tuple[list[Registration], list[StaticKey]]:
    """The registrations and static keys of FILES, in no particular order."""

    def build_info(rel: str) -> BuildInfo:
        seen: set[str] = set()
        cur = rel
        while cur not in seen:
            seen.add(cur)
            info = kbuild.build_info(cur)
            if info is not None:
                return info
            if cur not in included_by:
                break
            cur = included_by[cur]
        return kbuild.fallback(rel)

    regs: list[Registration] = []
    keys: list[StaticKey] = []
    header_wrappers: dict[str, dict[str, list[Wrapper]]] = {}
    for f in files:
        data = treefs.read_bytes(f.root, f.rel, what="C file", limit=MAX_C_FILE)
        scanner = FileScanner(root, build_info(f.rel), regs, keys, header_wrappers)
        scanner.scan_file(f.rel, data, depth=0)
    return regs, keys
