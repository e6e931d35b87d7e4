"""Distro review rows: renamed Kconfig symbols are one row; `kpolicy diff` on Debian's 6.12 and
7.2 cloud-amd64 configs reports features, options, sysctls and hardening symbols by category."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import real_configs, real_tree

from kpolicy import treefs
from kpolicy.cli import main
from kpolicy.resolve.renames import Rename, Renames, load_renames

CLOUD = "config.amd64_none_cloud-amd64"


def test_rename_lookup_goes_by_version() -> None:
    r = Renames((Rename("A", "B", (6, 16, 0), "x"), Rename("B", "C", (7, 1, 0), "y")))
    assert r.canonical("A") == r.canonical("B") == r.canonical("C") == "C"
    assert [r.name_in("A", v) for v in ((6, 12, 0), (6, 16, 0), (7, 2, 0))] == ["A", "B", "C"]
    assert r.name_in("OTHER", (6, 1, 0)) == "OTHER"
    assert [x.old for x in r.before("A")] == ["B", "A"]
    loop = Renames((Rename("X", "Y", (6, 1, 0), ""), Rename("Y", "X", (6, 2, 0), "")))
    assert loop.canonical("X") in ("X", "Y")  # data with a loop does not hang


def _defined(tree_dir: Path, rel: str, symbol: str) -> bool:
    text = treefs.read_text(tree_dir, rel, what="Kconfig")
    return re.search(rf"^config {symbol}\s*$", text, re.M) is not None


@pytest.mark.real
def test_shipped_renames_hold_in_the_trees() -> None:
    old, new = real_tree("6.12"), real_tree("7.2")
    renames = load_renames().renames
    assert renames, "rules/renames/kconfig.toml is empty"
    for r in renames:
        rel = r.evidence.split(":")[0]
        assert _defined(new, rel, r.new), f"7.2 {rel} does not define {r.new}"
        assert not _defined(old, rel, r.new), f"6.12 {rel} already defines {r.new}"
        old_file = "arch/Kconfig" if r.old.startswith("HAVE_ARCH") else rel
        assert _defined(old, old_file, r.old), f"6.12 {old_file} does not define {r.old}"
        assert (6, 12, 1 << 30) < r.since <= (7, 2, 0)


@pytest.mark.real
def test_diff_612_72_cloud_against_kspp(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = real_configs("6.12") / CLOUD, real_configs("7.2") / CLOUD
    code = main(["diff", "--format", "json", "--policy", "kspp", str(a), str(b)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["policy"] == "kspp"
    rows = {(c["category"], c["key"]): c for c in doc["changes"]}
    keys = [k for _c, k in rows]
    assert len(keys) == len(set(keys)), "a setting appears in two rows"
    assert {c for c, _k in rows} == {"feature", "option", "sysctl", "kconfig", "cmdline"}
    # the renamed stack-erasing option: one row, each side under its own version's name
    erase = rows[("kconfig", "CONFIG_KSTACK_ERASE")]
    assert erase["a"]["name"] == "CONFIG_GCC_PLUGIN_STACKLEAK"
    assert erase["b"]["name"] == "CONFIG_KSTACK_ERASE"
    assert not any("STACKLEAK" in k for k in keys)
    # neither Debian config can build it (no GCC plugins, no sanitizer-coverage callback)
    assert erase["a"]["policy"]["status"] == erase["b"]["policy"]["status"] == "fail"
    # the build-only feature of the same option is aligned the same way: unchanged, no row
    assert ("feature", "KSTACK_ERASE") not in rows
    # a real difference between the versions (Debian turned on UBSAN for 7.2), with the lines
    ubsan = rows[("kconfig", "CONFIG_UBSAN_BOUNDS")]
    assert ubsan["changed"] and (ubsan["a"]["value"], ubsan["b"]["value"]) == ("n", "y")
    assert re.search(rf"7\.2/{CLOUD}:\d+: CONFIG_UBSAN_BOUNDS=y$", ubsan["b"]["why"])
    assert ubsan["b"]["policy"]["status"] == "pass"
    assert rows[("sysctl", "sysctl.kernel.kptr_restrict")]["a"]["policy"]["status"] == "fail"
    # text: grouped by category, the renamed row says what it was called
    code = main(["diff", "--policy", "kspp", str(a), str(b)])
    text = capsys.readouterr().out
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Features (on/off)" and "## Hardening Kconfig symbols" in headings
    assert "CONFIG_KSTACK_ERASE" in text and "(A: CONFIG_GCC_PLUGIN_STACKLEAK)" in text
