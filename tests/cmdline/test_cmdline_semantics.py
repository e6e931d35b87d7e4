"""Handler semantics: inference from registrations, rules/params declarations and their checks."""

from __future__ import annotations

import pytest
from cmdline_synthetic import REGISTRATIONS, reg

from kpolicy.cmdline.semantics import (
    check_declarations,
    infer_semantics,
    load_declarations,
    parse_declaration,
)
from kpolicy.errors import KpolicyError

V72 = (7, 2, 0)


def test_inference_from_param_types_and_parsers() -> None:
    b = infer_semantics(reg("module_param", "m.b", param_type="bool"))
    assert b.noarg and b.takes("y", V72) and not b.takes("x", V72) and b.on_invalid == "invalid"
    inv = infer_semantics(reg("module_param", "m.i", param_type="invbool"))
    assert not inv.noarg
    n = infer_semantics(reg("core_param", "panic", param_type="int"))
    assert n.takes("-1", V72) and not n.takes("x", V72) and not n.noarg
    cb = infer_semantics(reg("module_param", "m.cb", parser="param_set_bool"))
    assert cb.accept == "kstrtobool" and not cb.noarg
    e = infer_semantics(reg("early_param", "x", parser="kstrtobool"))
    assert e.on_invalid == "malformed" and not e.takes(None, V72)
    s = infer_semantics(reg("__setup", "y", equals=True, parser="strcmp"))
    assert s.takes("anything", V72) and s.takes(None, V72)


def test_shipped_declarations_parse_and_name_their_source() -> None:
    decls = load_declarations()
    names = {d.name for d in decls}
    assert {"lockdown", "transparent_hugepage", "module.sig_enforce", "init", "ro"} <= names
    assert all(d.source for d in decls)


def test_a_declaration_for_an_unregistered_parameter_is_reported() -> None:
    decls = load_declarations()
    problems = check_declarations(decls, REGISTRATIONS)
    assert any("rdinit" in p for p in problems)
    assert not any("'lockdown'" in p for p in problems)


@pytest.mark.parametrize("text", [
    'name = "x"\nkind = "__setup"',  # no source
    'name = "x"\nkind = "bogus"\nsource = "s"',
    'name = "x"\nkind = "__setup"\nsource = "s"\naccept = "words"',
    'name = "x"\nkind = "__setup"\nsource = "s"\nsurprise = 1',
    'name = "x"\nkind = "__setup"\nsource = "s"\nnoarg = "yes"',
    "name = [",
])
def test_bad_declarations_are_kpolicy_errors(text: str) -> None:
    with pytest.raises(KpolicyError) as exc:
        parse_declaration(text, "rules/params/x.toml")
    assert exc.value.file == "rules/params/x.toml"
