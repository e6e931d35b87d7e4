"""Boot parameters documented in Documentation/ outside the parameter lists.

Subsystem documents describe some __setup/early_param parameters themselves, not in
kernel-parameters.txt (stmmac.rst: "stmmaceth=watchdog:100,chain_mode=1"; kgdb.rst:
"specifying ``kgdbts=`` as a kernel boot argument"). A word counts as documented there only in
two shapes, so a registration is not taken as documented by the coincidence of a common word:
- `name=` (a value assignment), not part of a longer word, a path, a C member (`.name=`,
  `->name=`), a shell variable (`$name=`) or a CONFIG_ assignment;
- the bare word (for registrations without "=") on a line that says it is a boot or kernel
  command-line parameter, argument or option, or as a term of a boot-options page's option list
  (6.12's arch/x86/x86_64/boot-options.rst, "AMD64 Specific Boot Options": "  notsc" above its
  indented description). There a term counts only in a list that a section heading or a plain
  paragraph opens, at that list's own indent: the values of one option listed under a line
  ending in ":" ("General iommu options:" then "off", "force", "panic") and the indented
  sub-terms of an entry (reboot='s "bios", "warm") are not parameters.

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
_SCHEMA = "mentions-3"
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
# A boot-options page: its title (the first heading) says so.
_OPTIONS_TITLE = re.compile(r"\bboot\s+options\s*$", re.IGNORECASE)
_UNDERLINE = re.compile(r"^([=\-~^*#])\1{2,}\s*$")
# An option-list term: one word, maybe `=value` and a parenthesised note ("nomce (for
# compatibility with i386)"), alone on an indented line.
_TERM = re.compile(r"([A-Za-z][\w.\-]*[A-Za-z0-9_])(=\S*)?(?:\s+\([^)]*\))?\s*")


def _files(tree: KernelTree) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every .rst/.txt file under Documentation/ but the lists."""
    out: list[tuple[str, int, int]] = []
    for rel_dir, _, files in treefs.walk(tree.root, DOCS_DIR,
                                         wanted=lambda name: name.endswith(_SUFFIXES)):
        for name, st in sorted(files.items()):
            rel = f"{rel_dir}/{name}"
            if name.endswith(_SUFFIXES) and rel not in _LISTS and st.st_size <= _MAX_DOC:
                out.append((rel, st.st_size, st.st_mtime_ns))
    return out


def _mentions(text: str) -> Iterator[tuple[str, int, bool]]:
    """(word, line, assigned) for each `word=` of TEXT, each word of a boot-context line and,
    on a boot-options page, each bare term of its option lists."""
    lines = text.split("\n")
    if is_options_page(lines):
        for word, number in option_terms(lines):
            yield word, number, False
    for number, line in enumerate(lines, 1):
        if "=" in line:
            for m in _ASSIGNED.finditer(line):
                if not m.group(1).startswith("CONFIG_"):
                    yield m.group(1), number, True
        if _BOOT_CONTEXT.search(line):
            for m in _WORD.finditer(line):
                yield m.group(1), number, False


def _indent(line: str) -> int:
    expanded = line.expandtabs(8)
    return len(expanded) - len(expanded.lstrip())


def is_options_page(lines: list[str]) -> bool:
    """Whether the title of the document of LINES (its first underlined line) names boot
    options."""
    for i in range(1, len(lines)):
        if _UNDERLINE.match(lines[i]) and lines[i - 1].strip() \
                and not _UNDERLINE.match(lines[i - 1]):
            return bool(_OPTIONS_TITLE.search(lines[i - 1].strip()))
    return False


def option_terms(lines: list[str]) -> Iterator[tuple[str, int]]:
    """(word, line) of each bare term of the top-level option lists of a boot-options page:
    an indented line holding one word (no "=") whose next non-blank line is indented deeper
    (an entry; any other entry, "reboot=b[ios] | t[riple]", has its description skipped too),
    in a list opened by a section heading or a paragraph not ending in ":", at the list's
    first term's indent; literal blocks (after "::") and entries' bodies are skipped."""
    opened, level = False, -1  # whether a list may start here; the open list's term indent
    body = -1  # indent of the term whose description is being read
    literal = False
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        indent = _indent(raw)
        if literal and indent > 0:
            continue
        literal = False
        if body >= 0 and indent > body:
            continue  # the description (and sub-terms) of the current term
        body = -1
        nxt = next((ln for ln in lines[i + 1:] if ln.strip()), "")
        if _UNDERLINE.match(raw) or (nxt and _UNDERLINE.match(nxt)):
            opened, level = True, -1  # a heading: a list may start below it
            continue
        if indent > 0 and nxt and _indent(nxt) > indent:  # an entry: its description follows
            term = _TERM.fullmatch(raw.strip())
            if opened and level in (-1, indent):
                level = indent
                if term is not None and term.group(2) is None:
                    yield term.group(1), i + 1
            body = indent
            continue
        if raw.strip() == "::" or raw.rstrip().endswith("::"):
            literal, opened, level = True, False, -1
            continue
        if level < 0 or indent <= level:  # a paragraph: the list ends; may open another
            opened, level = not raw.rstrip().endswith(":"), -1


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
