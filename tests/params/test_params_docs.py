"""kernel-parameters.txt parsing on hand-written fixtures: every construct and irregularity."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from kpolicy.cache import Cache
from kpolicy.errors import KpolicyError
from kpolicy.params.docs import (
    BUILTIN_TAGS,
    DOC_FILE,
    TAGS_FILE,
    load_docs,
    parse_kernel_parameters,
    parse_tag_list,
)
from kpolicy.params.model import DocCondition, DocEntry
from kpolicy.tree import KernelTree, open_tree

CONSTRUCTS = (FIXTURES / "params" / "kernel-parameters-constructs.txt").read_text()
TAGS_RST = (FIXTURES / "params" / "kernel-parameters-tags.rst").read_text()


@pytest.fixture(scope="module")
def entries() -> dict[str, DocEntry]:
    return {name: e for e in parse_kernel_parameters(CONSTRUCTS) for name in e.names}


def line_of(text: str) -> int:
    """1-based line of the fixture line that starts with TEXT after its indentation."""
    for number, line in enumerate(CONSTRUCTS.split("\n"), 1):
        if line.strip().startswith(text):
            return number
    raise AssertionError(text)


def kinds(entry: DocEntry) -> list[str]:
    return sorted(i.kind for i in entry.irregularities)


def test_preamble_and_trailer_give_no_entries(entries: dict[str, DocEntry]) -> None:
    assert not {"ACPI", "EARLY", "HW", "KNL", "MM", "notanentry"} & set(entries)
    first = parse_kernel_parameters(CONSTRUCTS)[0]
    assert first.name == "alpha"
    assert first.location.line == line_of("alpha=")


def test_regular_entry(entries: dict[str, DocEntry]) -> None:
    alpha = entries["alpha"]
    assert alpha.names == ("alpha",)
    assert alpha.takes_value
    assert alpha.tags == ("KNL", "EARLY")
    assert alpha.format is not None and alpha.format.kind == "bool"
    assert alpha.default_symbols == ("ALPHA_DEFAULT",)
    assert alpha.config_symbols == ("ALPHA_DEFAULT",)
    assert alpha.location.file == DOC_FILE
    assert (alpha.location.line, alpha.end_line) == (line_of("alpha="), line_of("Default is"))
    assert alpha.body.split("\n")[0] == "Switch alpha on or off."
    assert kinds(alpha) == ["description-on-name-line"]


def test_stacked_entry(entries: dict[str, DocEntry]) -> None:
    beta = entries["beta.one"]
    assert beta is entries["beta.two"]
    assert beta.names == ("beta.one", "beta.two")
    assert beta.spellings == ("beta.one=", "beta.two=")
    assert beta.format is not None and beta.format.choices == ("no", "yes")
    assert kinds(beta) == ["stacked-entry"]


def test_tags_on_next_line(entries: dict[str, DocEntry]) -> None:
    gamma = entries["gamma"]
    assert gamma.tags == ("MM",)
    assert gamma.body.split("\n")[0] == "The tags sit below the name."
    assert gamma.format is not None and (gamma.format.kind, gamma.format.choices) == (
        "size", ("K", "M", "G"))
    (irregular,) = gamma.irregularities
    assert (irregular.kind, irregular.location.line) == ("tags-on-next-line", line_of("[MM]"))


def test_seal_system_mappings_shape(entries: dict[str, DocEntry]) -> None:
    seal = entries["exec.seal_system_mappings"]
    assert seal.takes_value and seal.tags == ("KNL",)
    assert seal.format is not None and seal.format.choices == ("no", "yes")
    assert seal.default_symbols == ("SEAL_SYSTEM_MAPPINGS",)
    assert seal.config_symbols == ("SEAL_SYSTEM_MAPPINGS", "64BIT")
    assert seal.conditions == (
        DocCondition("64BIT", "y", "This option has no effect if CONFIG_64BIT=n"),)
    assert kinds(seal) == ["spaces-around-equals"]


def test_odd_tag_spacing_and_unknown_tags(entries: dict[str, DocEntry]) -> None:
    assert entries["delta"].tags == ("KNL",)
    assert kinds(entries["delta"]) == ["description-on-name-line", "tags-without-blank"]
    assert entries["epsilon"].tags == ("HW", "ACPI")
    assert kinds(entries["epsilon"]) == ["space-in-tags"]
    epsilon_format = entries["epsilon"].format
    assert epsilon_format is not None and epsilon_format.kind == "list"
    assert entries["eta"].tags == ("BOGUS",)
    assert kinds(entries["eta"]) == ["description-on-name-line", "unknown-tag"]
    assert not entries["zeta"].takes_value and entries["zeta"].tags == ()
    assert kinds(entries["zeta"]) == ["description-on-name-line", "missing-tags"]


def test_names_with_values_and_patterns(entries: dict[str, DocEntry]) -> None:
    theta = entries["theta.trust"]
    assert theta.takes_value and kinds(theta) == ["value-in-name"]
    iota = entries["iota"]
    assert iota.takes_value and iota.value_optional
    assert [(c.symbol, c.value) for c in iota.conditions] == [("IOTA_SUPPORT", "y")]
    assert iota.format is not None and iota.format.kind == "cpu-list"
    assert entries["kappa.map"].names == ("kappa.map", "kappa.map2", "kappa.map3")
    lam = entries["lambda-one.x"]
    assert lam.names == ("lambda-one.x", "lambda-two.x")
    # No Format: line: the brace list opening the body is the format.
    assert lam.format is not None and lam.format.choices == ("off", "on")
    # No Format: line either: the value pattern in the name is.
    mu = entries["mu.mode"]
    assert mu.format is not None and mu.format.choices == ("fast", "slow")
    assert mu.tags == ("KNL",) and kinds(mu) == ["tags-on-next-line"]


def test_known_tags_argument_and_fallback() -> None:
    only_knl = parse_kernel_parameters(CONSTRUCTS, known_tags=frozenset({"KNL"}))
    hw = next(e for e in only_knl if e.name == "beta.one")
    assert kinds(hw) == ["stacked-entry", "unknown-tag", "unknown-tag"]
    # Without a preamble the built-in tag list applies: MM is not in it, HW is.
    body = CONSTRUCTS[CONSTRUCTS.index("Kernel parameters") + len("Kernel parameters") :]
    bare = {e.name: e for e in parse_kernel_parameters(body.lstrip("\n"))}
    assert "unknown-tag" in kinds(bare["gamma"]) and "HW" in BUILTIN_TAGS
    assert "unknown-tag" not in kinds(bare["beta.one"])


def test_tag_list_from_rst() -> None:
    assert parse_tag_list(TAGS_RST) == frozenset({"HW", "KNL", "BUGS"})
    assert parse_tag_list("no tags here\n") == frozenset()


def test_name_line_outside_the_grammar_is_kept() -> None:
    (entry,) = parse_kernel_parameters("\t]odd= name\n\t\t\tText.\n")
    assert entry.names == ("]odd",) and entry.spellings == ("]odd=",)
    assert "unparsable-name-line" in kinds(entry)
    assert entry.body == "Text."


def test_lower_case_words_before_the_tags_make_a_topic() -> None:
    """`watchdog timers\t[HW,WDT] For information ...` (6.1-7.2): the tags are read, the title
    is kept as a topic; a description that merely follows the name stays a description."""
    (topic,) = parse_kernel_parameters(
        "\twatchdog timers\t[HW,WDT] For information on watchdog timers,\n"
        "\t\t\tsee Documentation/watchdog/watchdog-parameters.rst.\n")
    assert (topic.names, topic.tags, topic.topic) == (("watchdog",), ("HW", "WDT"),
                                                      "watchdog timers")
    assert kinds(topic) == ["description-on-name-line"]
    assert topic.body.startswith("For information on watchdog timers,")
    (plain,) = parse_kernel_parameters("\tnosmp\tturns SMP off [see below]\n")
    assert plain.topic == "" and plain.tags == ()


def test_empty_and_prose_only_files() -> None:
    assert parse_kernel_parameters("") == ()
    assert parse_kernel_parameters("Just prose.\n\tindented=\t[KNL]\n") == ()


def make_tree(root: Path, doc: str, rst: Optional[str]) -> KernelTree:
    (root / "arch" / "x86").mkdir(parents=True)
    (root / "arch" / "x86" / "Kconfig").write_text("")
    (root / "Kconfig").write_text("")
    (root / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 0\n")
    (root / DOC_FILE).parent.mkdir(parents=True)
    (root / DOC_FILE).write_text(doc)
    if rst is not None:
        (root / TAGS_FILE).write_text(rst)
    return open_tree(root)


def test_load_docs_uses_rst_tags_and_cache(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux", CONSTRUCTS, TAGS_RST)
    cache = Cache(tmp_path / "cache")
    docs = load_docs(tree, cache)
    by_name = {e.name: e for e in docs}
    assert "unknown-tag" in kinds(by_name["gamma"])  # MM is not in the .rst list
    assert "unknown-tag" not in kinds(by_name["beta.one"])
    assert load_docs(tree, cache) == docs
    assert len(list((tmp_path / "cache" / "params-docs").iterdir())) == 1
    # A changed file is a new key, never a stale hit.
    (tree.root / DOC_FILE).write_text(CONSTRUCTS.replace("alpha=", "alpha2="))
    assert load_docs(tree, cache)[0].name == "alpha2"
    assert load_docs(tree, None)[0].name == "alpha2"


def test_load_docs_bad_input(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux", "\tok=\t[KNL]\n\tbad=\0\n", None)
    with pytest.raises(KpolicyError) as err:
        load_docs(tree)
    assert err.value.line == 2 and err.value.file is not None
    (tree.root / DOC_FILE).unlink()
    with pytest.raises(KpolicyError, match="not found"):
        load_docs(tree)


PIECES = [*"\t\n =[]|,{}()<>aZK_-.:\"%\r\x0c\u00a0", "CONFIG_X", "Kernel parameters", "Format:",
          "default ", "\tname=\t[KNL]\n", "\t\t\t"]
LAYOUT = st.lists(st.sampled_from(PIECES), max_size=120).map("".join)


@settings(max_examples=300, deadline=None)
@given(LAYOUT)
def test_any_text_gives_entries_or_kpolicy_error(text: str) -> None:
    try:
        result = parse_kernel_parameters(text)
    except KpolicyError:
        return
    assert isinstance(result, tuple)
    for entry in result:
        assert isinstance(entry, DocEntry) and entry.names
        assert 1 <= entry.location.line <= entry.end_line


def test_tags_inside_the_size_suffix_bracket() -> None:
    """6.12's `mtrr_gran_size=nn[KMG,X86,EARLY]`: KMG are the value's suffixes, X86 and EARLY the
    entry's tags (a layout irregularity, not a missing EARLY); memmap=nn[KMG]!ss[KMG,EARLY] too."""
    text = ("\tmtrr_gran_size=nn[KMG,X86,EARLY]\n\t\t\tUsed for mtrr cleanup.\n\n"
            "\tmemmap=nn[KMG]!ss[KMG,EARLY]\n\t\t\tMark specific memory as reserved.\n\n"
            "\tplain=nn[KMG]\t[KNL]\n\t\t\tA plain size.\n")
    got = {e.names[0]: e for e in parse_kernel_parameters(text)}
    gran = got["mtrr_gran_size"]
    assert gran.tags == ("X86", "EARLY") and gran.takes_value
    assert gran.spellings == ("mtrr_gran_size=nn[KMG,X86,EARLY]",)  # as written
    assert gran.format is not None and gran.format.kind == "size"
    assert kinds(gran) == ["tags-in-size-suffix"]
    assert got["memmap"].tags == ("EARLY",)
    assert got["memmap"].spellings == ("memmap=nn[KMG]!ss[KMG,EARLY]",)
    assert got["plain"].tags == ("KNL",) and kinds(got["plain"]) == []
