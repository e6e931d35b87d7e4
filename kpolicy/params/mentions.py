"""Boot parameters documented in Documentation/ outside the parameter lists.

Subsystem documents describe some __setup/early_param parameters themselves, not in
kernel-parameters.txt (stmmac.rst: "stmmaceth=watchdog:100,chain_mode=1"; kgdb.rst:
"specifying ``kgdbts=`` as a kernel boot argument"). A word counts as documented there only in
two shapes, so a registration is not taken as documented by the coincidence of a common word:
- `name=` (a value assignment), not part of a longer word, a path, a C member (`.name=`,
  `->name=`), a shell variable (`$name=`) or a CONFIG_ assignment;
- the bare word (for registrations without "=") on a line that says it is a boot or kernel
  command-line parameter, argument or option.

The index holds every such word of the tree's documents (not only registered names), so it
depends on the documents alone and is cached by their stats (path, size, mtime) with the
params docs cache.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Optional

from kpolicy import treefs
from kpolicy.errors import KpolicyError
from kpolicy.kconfig.model import Location
from kpolicy.kernel import fold_param

if TYPE_CHECKING:
    from kpolicy.cache import Cache
    from kpolicy.tree import KernelTree

DOCS_DIR = "Documentation"
# The parameter lists themselves: a name written inside another entry of them is not documented.
_LISTS = frozenset({"Documentation/admin-guide/kernel-parameters.txt",
                    "Documentation/scsi/scsi-parameters.rst"})
_SUFFIXES = (".rst", ".txt")
_SCHEMA = "mentions-2"
# Documents larger than this are not read (no kernel document comes close).
_MAX_DOC = 4 << 20

# `name=`: the word may hold dots (module.param) and dashes; the character before it must not
# continue a word, a path, a member access, a variable, an option (-name=, --name=) or another
# parameter's value (stmmaceth=watchdog:100,chain_mode=1 documents no chain_mode=).
_ASSIGNED = re.compile(r"(?<![\w.\-/$>@:%,=])([A-Za-z][\w.\-]*[A-Za-z0-9_])=")
# A line saying what it names is a boot parameter.
_BOOT_CONTEXT = re.compile(
    r"\b(?:boot|kernel|command[- ]line)\s+(?:command[- ]line\s+)?"
    r"(?:parameters?|arguments?|options?|args?)\b|\bkernel\s+command[- ]line\b",
    re.IGNORECASE)
_WORD = re.compile(r"(?<![\w.\-/$>@:%])([A-Za-z][\w.\-]*[A-Za-z0-9_])(?![\w(])")


def _files(tree: KernelTree) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every .rst/.txt file under Documentation/ but the lists."""
    out: list[tuple[str, int, int]] = []
    for rel_dir, _, files in treefs.walk(tree.root, DOCS_DIR):
        for name, st in sorted(files.items()):
            rel = f"{rel_dir}/{name}"
            if name.endswith(_SUFFIXES) and rel not in _LISTS and st.st_size <= _MAX_DOC:
                out.append((rel, st.st_size, st.st_mtime_ns))
    return out


def _mentions(text: str) -> Iterator[tuple[str, int, bool]]:
    """(word, line, assigned) for each `word=` of TEXT, and each word of a boot-context line."""
    for number, line in enumerate(text.split("\n"), 1):
        if "=" in line:
            for m in _ASSIGNED.finditer(line):
                if not m.group(1).startswith("CONFIG_"):
                    yield m.group(1), number, True
        if _BOOT_CONTEXT.search(line):
            for m in _WORD.finditer(line):
                yield m.group(1), number, False


def _own_page(key: str, name: str) -> bool:
    """NAME (a document's file name) is named after parameter KEY's first word."""
    return fold_param(name).startswith(key.split(".", 1)[0])


def _build(tree: KernelTree, files: list[tuple[str, int, int]]
           ) -> tuple[tuple[str, str, int, bool], ...]:
    seen: dict[tuple[str, bool], tuple[str, int]] = {}
    for rel, _, _ in files:
        try:
            text = treefs.read_text(tree.root, rel, what="document", limit=_MAX_DOC)
        except treefs.OutsideTree:
            raise
        except KpolicyError:  # undecodable or gone since the walk: documents nothing
            continue
        stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        for word, line, assigned in _mentions(text):
            key = (fold_param(word), assigned)
            # the parameter's own page (netconsole.rst for netconsole=) over a passing mention
            if key not in seen or (_own_page(key[0], stem)
                                   and not _own_page(key[0], seen[key][0].rsplit("/", 1)[-1])):
                seen[key] = (rel, line)
    return tuple((key, rel, line, assigned) for (key, assigned), (rel, line) in seen.items())


def document_mentions(tree: KernelTree, cache: Optional[Cache] = None
                      ) -> tuple[tuple[str, str, int, bool], ...]:
    """(fold_param(word), file, line, assigned) for the first mention of each word in TREE's
    documents in either shape (in the document named after it when one mentions it, else in
    path order); ASSIGNED: written as `word=`."""
    from kpolicy.cache import content_key

    files = _files(tree)
    if cache is None:
        return _build(tree, files)
    key = content_key(_SCHEMA, repr(files))
    return cache.get_or_build("params-docs", key, lambda: _build(tree, files), tuple)


def documented_in(mentions: tuple[tuple[str, str, int, bool], ...],
                  names: Mapping[str, bool]) -> dict[str, Location]:
    """NAMES (fold_param(name) -> whether its registration takes "=") that MENTIONS document:
    a name taking "=" only as `name=`, a bare name also as a word of a boot-context line."""
    out: dict[str, Location] = {}
    for key, rel, line, assigned in mentions:
        wants = names.get(key)
        if wants is not None and (assigned or not wants) and key not in out:
            out[key] = Location(rel, line)
    return out
