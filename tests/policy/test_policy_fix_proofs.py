"""The cheap proof of a fix is the proof: re-resolving with a fix applied reuses the config's
parameter tables (when the fix changes no symbol they read), the config's cached evaluation and
an incremental Kconfig evaluation; each must give exactly what resolving from scratch gives.

On Debian's 7.2 cloud-amd64 config with the bundled model: every fix of `--policy kspp` is
applied both ways and compared. About 3 s of CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import _missing, real_configs

from kpolicy.cache import Cache
from kpolicy.kconfig.evaluate import evaluate, user_values
from kpolicy.kernel import has_new_choices
from kpolicy.policy.check import Checker, run_check
from kpolicy.policy.schema import load_policy
from kpolicy.resolve.api import all_features, resolve, shipped_rules
from kpolicy.resolve.inputs import choose_model, read_config


def _checker(path: Path, cache: Cache) -> Checker:
    config = read_config(path)
    model, _ = choose_model(config, None, cache)
    rules = shipped_rules(cache)
    return Checker(model=model, kconfig=model.kconfig, complete=False, config=config,
                   cmdline="", specs=all_features(model, rules.features),
                   declarations=rules.declarations, cache=cache)


@pytest.mark.real
def test_every_fix_proof_matches_resolving_from_scratch(tmp_path: Path) -> None:
    path = real_configs("7.2") / "config.amd64_none_cloud-amd64"
    if not path.is_file():
        _missing(f"Debian config {path}")
    cache = Cache(tmp_path / "cache")
    policy = load_policy("kspp")
    cold = run_check(policy, _checker(path, cache))
    checker = _checker(path, cache)  # warm: the evaluation and index come from the cache
    warm = run_check(policy, checker)
    assert [(r.item.id, r.status, r.fix) for r in warm.results] == [
        (r.item.id, r.status, r.fix) for r in cold.results]
    fixes = [r.fix for r in warm.results if r.fix is not None]
    assert len(fixes) >= 30
    assert any(f.change.config for f in fixes) and any(f.change.cmdline for f in fixes)
    kconfig = checker.model.kconfig
    types = {n: s.type for n, s in kconfig.symbols.items()}
    legacy = not has_new_choices(checker.model.version_tuple)
    base = evaluate(kconfig.symbols, kconfig.choices,
                    user_values(checker.config.values, types, lambda _m: None),
                    legacy=legacy).values
    reused = 0
    for fix in fixes:
        new, changed = checker.apply(fix.change)
        if fix.change.config:
            raw = dict(checker.config.values)
            for name, value in fix.change.config:
                raw.pop(name, None)
                raw[name] = value
            full = evaluate(kconfig.symbols, kconfig.choices,
                            user_values(raw, types, lambda _m: None), legacy=legacy).values
            assert changed == {n: (base.get(n, "n"), v) for n, v in full.items()
                               if v != base.get(n, "n")}, fix.change
        kp = checker._kernel_params(new.resolution.config, fix.change.cmdline, changed)
        reused += kp.early is checker._kernel_params(checker.config, (), ()).early
        fresh = resolve(checker.model, new.resolution.config,
                        " ".join(fix.change.cmdline), specs=checker.specs,
                        declarations=checker.declarations)
        assert new.resolution.features == fresh.features, fix.change
        assert new.resolution.cmdline.events == fresh.cmdline.events, fix.change
        assert new.resolution.sysctls == fresh.sysctls, fix.change
    assert reused >= len(fixes) // 2, "most proofs reuse the config's parameter tables"
