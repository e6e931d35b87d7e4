"""A warm `resolve --tree` on the real 7.2 tree: the cached model, used while the forked freshness
check stats the tree's ~11,000 directories and files, answers exactly what the run that built it
answered, without analysing the tree again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import real_configs, real_tree

import kpolicy.resolve.build as build_module
from kpolicy.cli import main

pytestmark = pytest.mark.real


def test_a_warm_tree_resolve_answers_as_the_run_that_built_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    builds: list[str] = []
    real = build_module.build_resolve_model_and_sources

    def counting(*args: Any, **kw: Any) -> Any:
        builds.append(str(args[0]))
        return real(*args, **kw)

    monkeypatch.setattr(build_module, "build_resolve_model_and_sources", counting)
    argv = ["resolve", "--tree", str(real_tree("7.2")), "--arch", "x86_64",
            "--config", str(real_configs("7.2") / "config.amd64_none_cloud-amd64"),
            "--cmdline", "init_on_free=1 lockdown=integrity nosmt", "--format", "json",
            "--cache-dir", str(tmp_path / "cache")]

    def answer() -> dict[str, Any]:
        assert main(argv) == 0
        got: dict[str, Any] = json.loads(capsys.readouterr().out)
        return got

    cold = answer()
    assert len(builds) == 1
    warm = answer()
    assert len(builds) == 1, "a warm run analysed the unchanged tree again"
    assert warm == cold
    assert warm["features"]["init_on_free"]["effective"] is True
