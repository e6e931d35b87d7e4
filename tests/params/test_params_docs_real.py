"""The real 6.1, 6.12 and 7.2 kernel-parameters.txt: every entry parsed, known ones right."""

from __future__ import annotations

import re

import pytest
from conftest import real_tree

from kpolicy.params.docs import DOC_FILE, load_docs
from kpolicy.params.model import DocEntry
from kpolicy.tree import open_tree

VERSIONS = ("6.1", "6.12", "7.2")

pytestmark = pytest.mark.real


@pytest.fixture(scope="session", params=VERSIONS)
def real_docs(request: pytest.FixtureRequest) -> tuple[str, str, tuple[DocEntry, ...]]:
    """(version, file text, entries): each tree parsed once per session, without the cache."""
    tree = open_tree(real_tree(request.param))
    text = (tree.root / DOC_FILE).read_text(encoding="utf-8")
    return request.param, text, load_docs(tree, None)


def name_lines(text: str) -> list[str]:
    """Independently of the grammar: lines indented by exactly one tab (or 8 blanks) after the
    "Kernel parameters" heading when the file has one."""
    lines = text.split("\n")
    if "Kernel parameters" in lines:
        lines = lines[lines.index("Kernel parameters") :]
    return [line.strip() for line in lines if re.match(r"(?:\t| {8})\S", line)]


def test_every_name_line_is_in_an_entry(real_docs: tuple[str, str, tuple[DocEntry, ...]]) -> None:
    _, text, docs = real_docs
    expected = name_lines(text)
    seen = [s for e in docs for s in e.spellings]
    assert len(seen) == len(expected), set(expected) ^ {s.strip() for s in seen}
    for spelling, line in zip(seen, expected):
        assert line.startswith(spelling), (spelling, line)


def test_entries_are_in_order_and_well_formed(
    real_docs: tuple[str, str, tuple[DocEntry, ...]],
) -> None:
    _, text, docs = real_docs
    last = 0
    for entry in docs:
        assert entry.names and all(entry.names)
        assert last < entry.location.line <= entry.end_line
        assert not any(n.endswith("=") for n in entry.names)
        assert not any(s.startswith("CONFIG_") for s in entry.config_symbols)
        assert set(entry.default_symbols) <= set(entry.config_symbols)
        last = entry.end_line
    assert last <= text.count("\n") + 1


def by_name(docs: tuple[DocEntry, ...], name: str) -> DocEntry:
    matches = [e for e in docs if name in e.names]
    assert len(matches) == 1, name
    return matches[0]


def test_randomize_kstack_offset(real_docs: tuple[str, str, tuple[DocEntry, ...]]) -> None:
    version, _, docs = real_docs
    entry = by_name(docs, "randomize_kstack_offset")
    assert entry.takes_value
    # EARLY became a tag in 6.9.
    assert entry.tags == (("KNL",) if version == "6.1" else ("KNL", "EARLY"))
    assert entry.format is not None and entry.format.kind == "bool"
    assert entry.default_symbols == ("RANDOMIZE_KSTACK_OFFSET_DEFAULT",)
    assert [(c.symbol, c.value) for c in entry.conditions] == [
        ("HAVE_ARCH_RANDOMIZE_KSTACK_OFFSET", "y")]
    assert [i.kind for i in entry.irregularities] == ["tags-on-next-line"]


def test_init_on_alloc(real_docs: tuple[str, str, tuple[DocEntry, ...]]) -> None:
    _, _, docs = real_docs
    entry = by_name(docs, "init_on_alloc")
    assert entry.tags[0] == "MM"
    assert entry.format is not None and entry.format.choices == ("0", "1")
    assert entry.default_symbols == ("INIT_ON_ALLOC_DEFAULT_ON",)


def test_lockdown(real_docs: tuple[str, str, tuple[DocEntry, ...]]) -> None:
    _, _, docs = real_docs
    entry = by_name(docs, "lockdown")
    assert entry.tags[0] == "SECURITY"
    assert entry.format is not None
    assert (entry.format.kind, entry.format.choices) == ("enum", ("integrity", "confidentiality"))


def test_transparent_hugepage(real_docs: tuple[str, str, tuple[DocEntry, ...]]) -> None:
    _, _, docs = real_docs
    entry = by_name(docs, "transparent_hugepage")
    assert entry.tags == ("KNL",)
    assert entry.format is not None and entry.format.choices == ("always", "madvise", "never")


def test_hardened_usercopy(real_docs: tuple[str, str, tuple[DocEntry, ...]]) -> None:
    version, _, docs = real_docs
    entry = by_name(docs, "hardened_usercopy")
    assert entry.tags == ("KNL",)
    assert "HARDENED_USERCOPY" in entry.config_symbols
    # HARDENED_USERCOPY_DEFAULT_ON arrived in 6.15.
    expected = () if version in ("6.1", "6.12") else ("HARDENED_USERCOPY_DEFAULT_ON",)
    assert entry.default_symbols == expected


def test_name_patterns(real_docs: tuple[str, str, tuple[DocEntry, ...]]) -> None:
    _, _, docs = real_docs
    assert by_name(docs, "gamecon.map3").names == ("gamecon.map", "gamecon.map2", "gamecon.map3")
    nocbs = by_name(docs, "rcu_nocbs")
    assert nocbs.value_optional and nocbs.spellings == ("rcu_nocbs[=cpu-list]",)
    trust = by_name(docs, "random.trust_cpu")
    assert trust.takes_value


def test_preamble_tags_are_not_entries(real_docs: tuple[str, str, tuple[DocEntry, ...]]) -> None:
    _, _, docs = real_docs
    names = {n for e in docs for n in e.names}
    assert not {"ACPI", "KNL", "EARLY", "X86-64"} & names
    assert {"acpi", "xmon"} <= names
