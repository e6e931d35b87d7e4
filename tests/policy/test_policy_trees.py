"""What `kpolicy check` reads from real trees: the kernel's own hardening.config (the `hardening`
policy, 6.7 and later)."""

from __future__ import annotations

import pytest
from conftest import real_configs, real_tree

from kpolicy.errors import KpolicyError
from kpolicy.policy.fragment import hardening_policy
from kpolicy.textio import read_text
from kpolicy.tree import open_tree


@pytest.mark.real
@pytest.mark.parametrize("version", ["6.12", "7.2"])
def test_hardening_policy_is_the_trees_fragment(version: str) -> None:
    tree = open_tree(real_tree(version))
    policy = hardening_policy(tree, "x86_64")
    refs = {i.reference.split(":")[0] for i in policy.items}
    assert refs == {"kernel/configs/hardening.config", "arch/x86/configs/hardening.config"}
    # each item is the fragment's own line, with its value as written there
    for item in policy.items:
        rel, line = item.reference.rsplit(":", 1)
        text = read_text(tree.root / rel, what="fragment").splitlines()[int(line) - 1]
        if item.value == "n":
            assert text.strip() == f"# CONFIG_{item.subject} is not set"
        else:
            assert text.strip() == f"CONFIG_{item.subject}={item.value}"
    by_symbol = {i.subject: i for i in policy.items}
    assert by_symbol["STACKPROTECTOR_STRONG"].value == "y"
    assert by_symbol["INIT_ON_ALLOC_DEFAULT_ON"].value == "y"
    # 7.2 added init_on_free to the fragment; 6.12 does not ask for it
    assert ("INIT_ON_FREE_DEFAULT_ON" in by_symbol) == (version == "7.2")
    assert by_symbol["COMPAT_BRK"].value == "n"


@pytest.mark.real
def test_hardening_check_on_debian_cloud(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from kpolicy.cli import main

    config = real_configs("7.2") / "config.amd64_none_cloud-amd64"
    code = main(["check", "--policy", "hardening", "--config", str(config), "--tree",
                 str(real_tree("7.2")), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["policy"] == "hardening"
    r = {x["id"]: x for x in doc["results"]}
    assert r["hardening-init-on-free-default-on"]["status"] == "fail"
    assert r["hardening-init-on-free-default-on"]["fix"]["config"] == {
        "CONFIG_INIT_ON_FREE_DEFAULT_ON": "y"}
    # the fragment asks for it, this arch and toolchain cannot have it: not-applicable, and why
    assert r["hardening-kstack-erase"]["status"] == "not-applicable"
    assert "no config can change" in r["hardening-kstack-erase"]["why"]
    assert r["hardening-stackprotector-strong"]["status"] == "pass"


@pytest.mark.real
def test_hardening_policy_needs_6_7() -> None:
    with pytest.raises(KpolicyError, match=r"arrived in 6\.7"):
        hardening_policy(open_tree(real_tree("6.1")), "x86_64")
