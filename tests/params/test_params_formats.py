"""Format: value specs: what each spec means, and which values it admits."""

from __future__ import annotations

from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpolicy.params.formats import format_accepts, parse_format
from kpolicy.params.model import ParamFormat


@pytest.mark.parametrize(
    ("raw", "kind", "choices"),
    [
        ("<bool>", "bool", ()),
        ("<bool>  (1/Y/y=enable, 0/N/n=disable)", "bool", ()),
        ("{ no | yes }", "enum", ("no", "yes")),
        ('{ "0" | "1" | "off" | "on" }', "enum", ("0", "1", "off", "on")),
        ("{ on, no-mount, off }", "enum", ("on", "no-mount", "off")),
        ("[always|madvise|never]", "enum", ("always", "madvise", "never")),
        ("0 | 1", "enum", ("0", "1")),
        ("y|n|Y|N|1|0", "enum", ("y", "n", "Y", "N", "1", "0")),
        ("off", "enum", ("off",)),
        ("<int>", "int", ()),
        ("<unsigned int>", "int", ()),
        ("integer", "int", ()),
        ("<int> (must be >=0)", "int", ()),
        ("nn[KMG]", "size", ("K", "M", "G")),
        ("<size>[KMG]", "size", ("K", "M", "G")),
        ("<string>", "string", ()),
        ("<cpu-list>", "cpu-list", ()),
        ("<irq>,<irq>...", "list", ()),
        ("val[,val...]", "list", ()),
        ("<int>[,<int>...]", "list", ()),
        ("nn[KMGTPE] | nn%", "union", ()),
        # Not covered: kept raw as "unknown".
        ("<io>,<mode>", "unknown", ()),
        ("<irq>", "unknown", ()),
        ("{name of the controller(s) or feature(s) to disable}", "unknown", ()),
        ("[0..2][b][c][t]", "unknown", ()),
        ("", "unknown", ()),
        ("frobnicate[XYZ]", "unknown", ()),
    ],
)
def test_parse_format(raw: str, kind: str, choices: tuple[str, ...]) -> None:
    fmt = parse_format(raw)
    assert (fmt.raw, fmt.kind, fmt.choices) == (raw, kind, choices)


def test_structure_of_compound_formats() -> None:
    assert parse_format("{ quiet (default) | verbose | debug }").default == "quiet"
    element = parse_format("<int>[,<int>...]").element
    assert element is not None and element.kind == "int"
    union = parse_format('nn[KMGTPE] | nn% | "mirror"')
    assert [m.kind for m in union.alternatives] == ["size", "percent", "enum"]


@pytest.mark.parametrize(
    ("raw", "value", "accepted"),
    [
        ("<bool>", "1", True),
        ("<bool>", "on", True),
        ("<bool>", "Yes", True),
        ("<bool>", "maybe", False),
        ("<bool>", "", False),
        ("<bool>", "enable", None),  # kstrtobool took "e" only from 6.16
        ("{ no | yes }", "yes", True),
        ("{ no | yes }", "1", False),
        ("<int>", "-12", True),
        ("<int>", "0x1f", True),
        ("<int>", "12k", False),
        ("nn[KMG]", "64M", True),
        ("nn[KMG]", "64m", True),
        ("nn[KMG]", "64T", False),
        ("nn[KMG]", "4096", True),
        ("<cpu-list>", "0-3,8,10-N:2/4", True),
        ("<cpu-list>", "zero", False),
        ("<string>", "anything at all", True),
        ("<int>[,<int>...]", "1,2,3", True),
        ("<int>[,<int>...]", "1,x", False),
        ("<irq>,<irq>...", "5,7", None),
        ("nn[KMGTPE] | nn%", "10%", True),
        ("nn[KMGTPE] | nn%", "2G", True),
        ("nn[KMGTPE] | nn%", "lots", False),
        ("<io>,<mode>", "1,2", None),
    ],
)
def test_format_accepts(raw: str, value: str, accepted: Optional[bool]) -> None:
    assert format_accepts(parse_format(raw), value) is accepted


def test_unknown_kind_is_never_judged() -> None:
    assert format_accepts(ParamFormat(raw="?", kind="unknown"), "x") is None


SPEC = st.lists(st.sampled_from([*"<>{}[]|,.%() \t\"", "int", "bool", "KMG", "nn", "...",
                                 "(default)", "cpu-list", "a", "0"]), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(SPEC, st.text(max_size=60)), st.text(max_size=20))
def test_any_spec_parses_to_a_format(raw: str, value: str) -> None:
    fmt = parse_format(raw)
    assert isinstance(fmt, ParamFormat) and fmt.raw == raw
    assert format_accepts(fmt, value) in (True, False, None)
