"""The catalog, its lookup and `kpolicy params` on tests/fixtures/params_c."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kpolicy.cli import main
from kpolicy.kconfig.model import Location
from kpolicy.kernel import fold_param
from kpolicy.params.catalog import build_catalog, catalog_lookup
from kpolicy.params.docs import parse_kernel_parameters
from kpolicy.params.model import Catalog, Registration
from kpolicy.tree import open_tree

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "params_c"
DOC = "Documentation/admin-guide/kernel-parameters.txt"


def _line_of(rel: str, prefix: str) -> int:
    lines = (FIXTURE / rel).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(prefix))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog(open_tree(FIXTURE))


def test_build_catalog_joins_the_three_sources(catalog: Catalog) -> None:
    assert catalog.version == "7.2.0"
    assert {d.name for d in catalog.docs} >= {"randomize_kstack_offset", "orphaned"}
    assert "module.sig_enforce" in {r.name for r in catalog.registrations}
    assert any(k.name == "randomize_kstack_offset" for k in catalog.static_keys)
    assert {"ZSWAP", "RANDOMIZE_KSTACK_OFFSET_DEFAULT", "X86"} <= catalog.kconfig_symbols
    assert "THP_NEVER_DEFINED" not in catalog.kconfig_symbols


def test_lookup_joins_docs_and_registrations_by_canonical_name(catalog: Catalog) -> None:
    lookup = catalog_lookup(catalog)
    assert list(lookup) == sorted(lookup)
    rko = lookup["randomize_kstack_offset"]
    assert rko.doc is not None and rko.doc.tags == ("KNL", "EARLY")
    assert [r.location.file for r in rko.registrations] == ["init/main.c"]
    assert lookup["orphaned"].registrations == ()
    assert lookup["quietish"].doc is None
    # a registration spelt with dashes meets a doc spelt with underscores
    dashed = Registration("__setup", "no-steal-acc", Location("a.c", 1))
    joined = catalog_lookup(Catalog(catalog.version, catalog.docs, (dashed,), ()))
    assert joined["no_steal_acc"].registrations == (dashed,)


def test_a_boot_spelling_of_a_documented_module_parameter_is_documented_there() -> None:
    """printk.c (6.12, 7.2): early_param("debug_non_panic_cpus") beside
    module_param(debug_non_panic_cpus), documented as printk.debug_non_panic_cpus=; the same
    early_param in another file is not."""
    doc = parse_kernel_parameters("\tprintk.debug_non_panic_cpus=\n\t\t\t[KNL] Allow it.\n")
    early = Registration("early_param", "debug_non_panic_cpus", Location("printk.c", 2417))
    module = Registration("module_param", "printk.debug_non_panic_cpus",
                          Location("printk.c", 2418))
    alone = Registration("early_param", "debug_non_panic_cpus", Location("other.c", 9))
    same_file = catalog_lookup(Catalog("7.2.0", doc, (early, module), ()))
    assert same_file["debug_non_panic_cpus"].elsewhere == doc[0].location
    other_file = catalog_lookup(Catalog("7.2.0", doc, (alone, module), ()))
    assert other_file["debug_non_panic_cpus"].elsewhere is None


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["params", "--tree", str(FIXTURE), "--no-cache", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--format", "json", "randomize-kstack-offset", "zswap.enabled=")
    assert code == 0
    data = json.loads(out)
    assert data["schema_version"] == 1
    rko, zswap = data["params"]
    assert rko == {
        "name": "randomize_kstack_offset",
        "doc": {"file": DOC, "line": _line_of(DOC, "\trandomize_kstack_offset="),
                "tags": ["KNL", "EARLY"],
                "format": "<bool> (1/Y/y=enable, 0/N/n=disable)",
                "default_symbols": ["CONFIG_RANDOMIZE_KSTACK_OFFSET_DEFAULT"]},
        "registrations": [{"kind": "early_param", "file": "init/main.c",
                           "line": _line_of("init/main.c", 'early_param("randomize'),
                           "built_if": None, "parser": "kstrtobool"}],
        "documented_elsewhere": None,
    }
    assert zswap["registrations"][0]["built_if"] == "CONFIG_ZSWAP"


def test_cli_text_all_is_sorted_and_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys)
    assert code == 0
    heads = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert heads == sorted(heads, key=fold_param)
    assert "page_alloc.shuffle" in heads and "orphaned" in heads
    assert "    (registered nowhere)" in out
    assert _run(capsys)[1] == out


def test_cli_unknown_name_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "no_such_param")
    assert code == 2 and out == ""
    assert err.strip() == ("kpolicy: error: no such parameter: no_such_param "
                           "(neither documented nor registered)")


def test_cli_check_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--check", "thp_mode")
    assert code == 1
    assert "tags: thp_mode: tagged EARLY but registered only as __setup" in out
    code, out, _ = _run(capsys, "--check", "quietish", "--format", "json")
    data = json.loads(out)
    assert code == 1 and [i["kind"] for i in data["issues"]] == ["undocumented"]
    assert _run(capsys, "--check", "page_alloc.shuffle")[0] == 0
