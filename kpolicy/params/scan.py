"""Finding the C side of a tree's boot parameters: walking the tree, sifting the files worth
reading, sharing them between forked workers, and caching the result.

Two caches. The whole-tree result is keyed on the (path, size, mtime_ns) of every C file,
header and Makefile, not their contents: hashing 730 MB of C on every run would cost more than
the scan saves; the stat changes whenever a file is written by any ordinary means (an edit
keeping both the size and the nanosecond mtime is the one change this misses). When that key
misses (a patched tree: kpolicy lint --patch), the per-file cache says what can be kept: a
file's sift (its #included .c files, raw command-line reads, whether it may register anything)
holds while its (size, mtime_ns, inode) does; a candidate's registrations hold while its bytes
(sha256, checked when the stat changed), its BuildInfo (from the kbuild files, worked out each
such run) and the stat of every header its scan read or looked for are the same. So one
patched .c file is read and scanned again, not the 35,000 of the tree.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, TypeVar

from kpolicy import treefs
from kpolicy.cache import Cache, content_key
from kpolicy.errors import KpolicyError
from kpolicy.filemap import FileMap, Stat, file_stat
from kpolicy.forked import map_in_parts
from kpolicy.params.cunit import KEYWORDS, MAX_C_FILE, RAW_READ_HINTS, Wrapper, raw_reads
from kpolicy.params.kbuild import BuildInfo, KbuildMap
from kpolicy.params.model import Registration, StaticKey
from kpolicy.params.registrations import FileScanner
from kpolicy.tree import KernelTree

R = TypeVar("R")


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
    ino: int


def _is_source(name: str) -> bool:
    """A C file, a header, a kbuild file or one a kbuild file may include."""
    return name.endswith((".c", ".h", ".mk")) or name.startswith("Makefile") or name == "Kbuild"


def _walk(root: Path) -> tuple[list[_SourceFile], dict[str, list[str]], dict[str, Stat]]:
    """Regular (non-symlink) C files, each directory's kbuild file names, and the stat of
    every header (a registration or a wrapper macro there reaches the files including it)
    and of every Makefile.* or *.mk file (a kbuild file may include it)."""
    c_files: list[_SourceFile] = []
    makefiles: dict[str, list[str]] = {}
    headers: dict[str, Stat] = {}
    # treefs.walk lists regular files only: symlinks and special files are not read
    for rel_dir, dirnames, filenames in treefs.walk(root, prune=_PRUNE, wanted=_is_source):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        names: list[str] = [n for n in ("Kbuild", "Makefile") if n in filenames]
        if names:
            makefiles[rel_dir] = names
        for name in sorted(filenames):
            is_c = name.endswith(".c")
            # a Makefile may `include` a Makefile.* or *.mk file (virt/kvm/Makefile.kvm)
            if not is_c and not name.endswith(".h") and not (
                    name.startswith("Makefile.") or name.endswith(".mk")):
                continue
            st = filenames[name]
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if is_c:
                c_files.append(_SourceFile(rel, str(root), st.st_size, st.st_mtime_ns,
                                           st.st_ino))
            else:
                headers[rel] = file_stat(st)
    return c_files, makefiles, headers


def _stat_key(root: Path, rel: str) -> tuple[str, int, int]:
    st = os.lstat(root / rel)  # REL came from treefs.walk: no symlink among its directories
    return (rel, st.st_size, st.st_mtime_ns)


_Scan = tuple[tuple[Registration, ...], tuple[StaticKey, ...], frozenset[str]]
@dataclass(frozen=True)
class _Sifted:
    """What one C file's bytes alone give: the .c files it #includes, its raw command-line
    reads, and (files that may register something) the digest of its bytes."""

    stat: Stat
    includes: tuple[str, ...]
    reads: frozenset[str]
    digest: Optional[bytes]  # None: no registration keyword, nothing to scan


@dataclass(frozen=True)
class _Scanned:
    """One candidate file's registrations and keys, with all they were computed from besides
    the scanner's code: the file's bytes (DIGEST), its BuildInfo, and the stat of every header
    it read or looked for (None: absent)."""

    digest: bytes
    info: BuildInfo
    deps: tuple[tuple[str, Optional[Stat]], ...]
    regs: tuple[Registration, ...]
    keys: tuple[StaticKey, ...]


_FileMap = dict[str, tuple[_Sifted, Optional[_Scanned]]]


def _cached_scan(tree: KernelTree, cache: Optional[Cache], jobs: int = 1) -> _Scan:
    """The whole-tree result, from the cache when no C file, header or kbuild file changed;
    otherwise from the per-file cache, scanning only the files whose inputs changed."""
    c_files, makefiles, headers = _walk(tree.root)
    key_parts: list[tuple[str, int, int]] = [(f.rel, f.size, f.mtime_ns) for f in c_files]
    makefile_key = tuple(_stat_key(tree.root, posixpath.join(d, n) if d else n)
                         for d, names in sorted(makefiles.items()) for n in names)
    key_parts.extend(makefile_key)
    header_parts = tuple((rel, st[0], st[1]) for rel, st in headers.items())
    key = content_key(_SOURCE_DIGEST, tree.version, tuple(key_parts), header_parts)
    if cache is not None:
        hit = cache.load("params-registrations", key)
        if isinstance(hit, tuple) and len(hit) == 2 and _same_included(tree.root, hit[1]):
            return hit[0]  # type: ignore[no-any-return]
    # kpolicy.filemap: written back when many files changed (a patched tree's few files are
    # done again next time; its whole-tree entry is stored either way)
    file_map: FileMap[tuple[_Sifted, Optional[_Scanned]]] = FileMap(
        cache, "params-files", content_key(_SOURCE_DIGEST, "per-file", tree.version))
    value, changed, included = _scan(tree.root, c_files, makefiles, makefile_key, headers,
                                     file_map.entries, cache, jobs)
    file_map.save(changed)
    if cache is not None:
        cache.store("params-registrations", key, (value, included))
    return value


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


def _read_kbuild(root: Path, makefiles: dict[str, list[str]],
                 included: dict[str, Optional[bytes]]) -> KbuildMap:
    """The kbuild map of the tree; INCLUDED gets the sha256 of each file a kbuild file
    `include`s (None: missing, special or outside the tree)."""
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
        text = _included_text(root, rel)
        included[rel] = None if text is None else hashlib.sha256(text.encode()).digest()
        return text

    return KbuildMap(texts, read_included)


def _included_text(root: Path, rel: str) -> Optional[str]:
    try:
        return treefs.read_text(root, rel, what="included kbuild file")
    except KpolicyError:
        return None


_Infos = dict[str, BuildInfo]
_Included = tuple[tuple[str, Optional[bytes]], ...]  # (path, sha256 or None: absent)


def _same_included(root: Path, included: object) -> bool:
    """Whether each file of INCLUDED (what kbuild files `include`d) still has its digest."""
    return isinstance(included, tuple) and all(
        (None if (text := _included_text(root, rel)) is None
         else hashlib.sha256(text.encode()).digest()) == digest for rel, digest in included)


def _build_infos(root: Path, makefiles: dict[str, list[str]], makefile_key: tuple[object, ...],
                 included_by: dict[str, str], rels: list[str], wanted: list[str],
                 cache: Optional[Cache]) -> tuple[_Infos, _Included]:
    """The BuildInfo of each C file of WANTED, worked out for every file of RELS (every C file
    of the tree: a file that starts to register something keeps the entry). Cached on the stat
    of every Kbuild/Makefile (MAKEFILE_KEY) and which .c file #includes which; an entry also
    records the digest of each file the kbuild files `include` (scripts/Kbuild.include,
    arch/mips/Kbuild.platforms) and holds only while they are the same (returned with the
    infos) and it has every file of RELS (a new C file: worked out again)."""
    key = content_key(_SOURCE_DIGEST, "build-info", makefile_key,
                      tuple(sorted(included_by.items())))
    hit = cache.load("params-kbuild", key) if cache is not None else None
    if isinstance(hit, tuple) and len(hit) == 2 and isinstance(hit[1], dict) \
            and all(rel in hit[1] for rel in rels) and _same_included(root, hit[0]):
        return {rel: BuildInfo(*hit[1][rel]) for rel in wanted}, hit[0]
    included: dict[str, Optional[bytes]] = {}
    kbuild = _read_kbuild(root, makefiles, included)

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

    infos = {rel: build_info(rel) for rel in rels}
    included_digests = tuple(sorted(included.items()))
    if cache is not None:  # as plain tuples: unpickling 33,000 dataclasses took 0.3 s
        cache.store("params-kbuild", key, (included_digests, {
            rel: (i.modname, i.chain, i.module_only) for rel, i in infos.items()}))
    return {rel: infos[rel] for rel in wanted}, included_digests


def _scan(root: Path, c_files: list[_SourceFile], makefiles: dict[str, list[str]],
          makefile_key: tuple[object, ...], headers: dict[str, Stat], file_map: _FileMap,
          cache: Optional[Cache], jobs: int = 1) -> tuple[_Scan, int, _Included]:
    """The registrations, static keys and raw command-line reads of C_FILES; how many files
    of FILE_MAP (per-file results of earlier scans, brought up to date here to hold exactly
    C_FILES) were read or scanned anew; and the digests of the files the kbuild files include.
    A file is read again only when its stat differs from the one recorded; it is scanned again
    only when its digest, its BuildInfo or the stat of a header it read differs. With JOBS > 1,
    forked workers share the files (the result is the same)."""
    old = dict(file_map)
    file_map.clear()
    to_sift: list[_SourceFile] = []
    for f in c_files:
        entry = old.get(f.rel)
        if entry is not None and entry[0].stat == (f.size, f.mtime_ns, f.ino):
            file_map[f.rel] = entry
        else:
            to_sift.append(f)
    changed = len(to_sift)
    for part in _in_parts(_sift, to_sift, jobs):
        for rel, sifted in part:
            previous = old.get(rel)
            # same bytes under a new stat (a rewritten or relinked file): its scan still holds
            scanned = previous[1] if previous is not None and previous[1] is not None \
                and previous[1].digest == sifted.digest else None
            file_map[rel] = (sifted, scanned)

    # A .c file #included by other .c files builds as its first includer, in walk order.
    included_by: dict[str, str] = {}
    reads: set[str] = set()
    for f in c_files:
        sifted = file_map[f.rel][0]
        for target in sifted.includes:
            included_by.setdefault(target, f.rel)
        reads |= sifted.reads
    candidates = [f for f in c_files if file_map[f.rel][0].digest is not None]
    infos, included = _build_infos(root, makefiles, makefile_key, included_by,
                                   [f.rel for f in c_files], [f.rel for f in candidates],
                                   cache)
    to_scan = [f for f in candidates if not _still_valid(file_map[f.rel][1], infos[f.rel],
                                                          headers)]
    changed += len(to_scan)
    fresh: dict[str, tuple[tuple[Registration, ...], tuple[StaticKey, ...]]] = {}
    for scans in _in_parts(lambda fs: _scan_files(root, infos, fs), to_scan, jobs):
        for rel, found_regs, found_keys, deps in scans:
            sifted = file_map[rel][0]
            assert sifted.digest is not None
            dep_stats = _dep_stats(root, deps, headers)
            # a file that read a header the walk does not list is scanned anew every run
            file_map[rel] = (sifted, None if dep_stats is None else _Scanned(
                sifted.digest, infos[rel], dep_stats, found_regs, found_keys))
            fresh[rel] = (found_regs, found_keys)
    regs: list[Registration] = []
    keys: list[StaticKey] = []
    for f in candidates:
        if f.rel in fresh:
            file_regs, file_keys = fresh[f.rel]
        else:
            scanned = file_map[f.rel][1]
            assert scanned is not None  # else it was scanned (_still_valid)
            file_regs, file_keys = scanned.regs, scanned.keys
        regs += file_regs
        keys += file_keys
    regs.sort(key=lambda r: (r.location.file, r.location.line, r.kind, r.name))
    keys.sort(key=lambda k: (k.location.file, k.location.line, k.name))
    return (tuple(regs), tuple(keys), frozenset(reads)), changed, included


def _in_parts(fn: Callable[[list[_SourceFile]], list[R]], files: list[_SourceFile],
              jobs: int) -> list[list[R]]:
    """FN of FILES split among up to JOBS processes, each taking every JOBS-th file."""
    if not files:
        return []
    jobs = max(1, min(jobs, len(files)))
    return map_in_parts(fn, [files[i::jobs] for i in range(jobs)])


def _sift(files: list[_SourceFile]) -> list[tuple[str, _Sifted]]:
    """What each of FILES' bytes give on their own (_Sifted)."""
    out: list[tuple[str, _Sifted]] = []
    for f in files:
        data = treefs.read_bytes(f.root, f.rel, what="C file", limit=MAX_C_FILE)
        includes: dict[str, None] = {}
        if b'.c"' in data:
            base = posixpath.dirname(f.rel)
            for m in _C_INCLUDE.finditer(data):
                includes[posixpath.normpath(
                    posixpath.join(base, m.group(1).decode("latin-1")))] = None
        reads: set[str] = set()
        if any(hint in data for hint in RAW_READ_HINTS):
            reads = raw_reads(data)
        digest = hashlib.sha256(data).digest() if any(k in data for k in KEYWORDS) else None
        out.append((f.rel, _Sifted((f.size, f.mtime_ns, f.ino), tuple(includes),
                                   frozenset(reads), digest)))
    return out


_FileScan = tuple[str, tuple[Registration, ...], tuple[StaticKey, ...], frozenset[str]]


def _scan_files(root: Path, infos: dict[str, BuildInfo],
                files: list[_SourceFile]) -> list[_FileScan]:
    """Each of FILES' registrations, static keys and the headers its scan depended on."""
    out: list[_FileScan] = []
    header_wrappers: dict[str, dict[str, list[Wrapper]]] = {}  # shared: headers read once
    for f in files:
        data = treefs.read_bytes(f.root, f.rel, what="C file", limit=MAX_C_FILE)
        regs: list[Registration] = []
        keys: list[StaticKey] = []
        scanner = FileScanner(root, infos[f.rel], regs, keys, header_wrappers)
        scanner.scan_file(f.rel, data, depth=0)
        out.append((f.rel, tuple(regs), tuple(keys), frozenset(scanner.headers)))
    return out


def _still_valid(scanned: Optional[_Scanned], info: BuildInfo,
                 headers: dict[str, Stat]) -> bool:
    """Whether SCANNED (for a file whose bytes are unchanged) holds for INFO and HEADERS."""
    return scanned is not None and scanned.info == info and all(
        headers.get(rel) == st for rel, st in scanned.deps)


def _dep_stats(root: Path, deps: frozenset[str], headers: dict[str, Stat]
               ) -> Optional[tuple[tuple[str, Optional[Stat]], ...]]:
    """The recorded stat of each header of DEPS (None: absent from the tree); None when one
    exists but the walk does not list it (a symlink, a pruned directory): no stat to key on."""
    out: list[tuple[str, Optional[Stat]]] = []
    for rel in sorted(deps):
        st = headers.get(rel)
        if st is None and treefs.kind(root, rel, what="C header") is not None:
            return None
        out.append((rel, st))
    return tuple(out)
