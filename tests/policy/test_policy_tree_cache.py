"""`kpolicy check --tree` on resolve's warm tree cache: a warm run answers what an uncached run
answers, reads no Kconfig file (the tree's whole Kconfig comes from the cache, by the tree's
fingerprint), and an edited Kconfig file is noticed. On the small compat fixture tree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import kpolicy.kconfig.load as load_module
from kpolicy.cli import main

COMPAT = Path(__file__).resolve().parent.parent / "fixtures" / "kconfig" / "compat"
POLICY = """
[policy]
name = "t"
reference = "https://example.org/policy"

[[item]]
id = "bar"
require = "CONFIG_BAR = y"
why = "bar built in"

[[item]]
id = "newsym"
require = "CONFIG_NEWSYM = y"
why = "a symbol the tree gains"
"""


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each parse-or-load of a tree's whole Kconfig (it reads every Kconfig file)."""
    calls: list[str] = []
    real = load_module.load_model

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(str(args[0].root))
        return real(*args, **kw)

    monkeypatch.setattr(load_module, "load_model", counting)
    return calls


def test_warm_check_tree_reads_no_kconfig_and_notices_an_edit(
        tmp_path: Path, loads: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "linux"
    shutil.copytree(COMPAT, tree)
    docs = tree / "Documentation" / "admin-guide"  # resolve's tree model reads it
    docs.mkdir(parents=True)
    (docs / "kernel-parameters.txt").write_text("\tfoo=\t\t[KNL] Enable foo.\n\n")
    config = tmp_path / "config"
    config.write_text("# Linux/x86 7.2.13 Kernel Configuration\nCONFIG_64BIT=y\n")
    policy = tmp_path / "p.toml"
    policy.write_text(POLICY)
    cache = tmp_path / "cache"

    def check(*opts: str) -> dict[str, Any]:
        main(["check", "--policy", str(policy), "--tree", str(tree), "--arch", "x86_64",
              "--config", str(config), "--format", "json", *opts])
        answer: dict[str, Any] = json.loads(capsys.readouterr().out)
        return {r["id"]: (r["status"], r["fix"]) for r in answer["results"]}

    def both() -> dict[str, Any]:
        cached = check("--cache-dir", str(cache))
        assert cached == check("--no-cache")
        return cached

    first = both()
    assert first["bar"][0] == "fail" and first["bar"][1]["config"] == {"CONFIG_BAR": "y"}
    assert first["newsym"][0] == "not-applicable"  # no such symbol in this tree
    runs = len(loads)
    assert check("--cache-dir", str(cache)) == first
    assert len(loads) == runs, "a warm check --tree read the tree's Kconfig again"

    with (tree / "arch" / "x86" / "Kconfig").open("a") as f:
        f.write("\nconfig NEWSYM\n\tdef_bool y\n")
    edited = both()
    assert edited["newsym"] == ("pass", None)
