"""`resolve --cmdlines` memoizes each feature's answer by the words reaching it with their token
indices left out, and writes the indices back into a template: random command lines (declared
parameters with good, bad and quoted values, repeated words, `--`, words holding the digits the
templates stand in with, bootconfig) must give, byte for byte, what resolve() of each line gives
alone."""

from __future__ import annotations

import json
import random
from typing import Optional

import pytest
from conftest import real_configs

from kpolicy.resolve.api import all_features, kernel_params_for, resolve, shipped_rules
from kpolicy.resolve.batch import FIRST, SECOND, BatchResolver
from kpolicy.resolve.bundle import bundled_models, pick_bundled, read_model
from kpolicy.resolve.inputs import ConfigInput, choose_model, defaults_config, read_config
from kpolicy.resolve.model import ResolveModel

VALUES = ["", "on", "off", "0", "1", "2", "auto", "force", "full", "none", "madvise", "always",
          "integrity", "confidentiality", "-1", "0x10", "yes", "bogus", '"a b"', '"on"', "=on",
          "on,nosmt", "auto,nosmt", "strict", "lazy", "pt", str(FIRST), str(SECOND + 1),
          "1" + str(FIRST)]
OTHER = ["--", "--", "quiet", "ro", "root=/dev/vda1", "console=ttyS0", 'x="a b"', '"quoted word"',
         'unbalanced="yes', "=x", "a==b", "lsm=landlock,lockdown,yama", "lsm=apparmor",
         "security=selinux", "apparmor=0", "selinux=1", "sysctl.kernel.panic=5",
         "sysctl.kernel.kptr_restrict=2", "sysctl.vm.nope=1", "FOO=bar", "foo.bar=1",
         "init=/bin/sh", "nokaslrx", "x nokaslr=1", f"panic={FIRST}", str(FIRST + 2),
         "mitigations=off", "mitigations=auto,nosmt", "nopti", "pti=on", "nokaslr", "nosmt",
         "spectre_v2=on", "spectre_v2=off", "nospectre_v2", "spec_store_bypass_disable=on",
         "nospec_store_bypass_disable", "nousershstk", "lockdown=integrity", "\x01ctl"]
BOOTCONFIG = ["kernel.init_on_free = 1\ninit.foo = bar\n", "kernel.nokaslr\n",
              'kernel.lockdown = "confidentiality"\nkernel.pti = off\n']


def _words(model: ResolveModel, rng: random.Random) -> list[str]:
    """The words random lines are made of: each declared parameter, bare and with values."""
    rules = shipped_rules()
    params = sorted({p for s in all_features(model, rules.features) for p in s.params})
    words = [*OTHER]
    for p in params:
        words.append(p)
        words += [f"{p}={v}" for v in rng.sample(VALUES, 4)]
    return words


def _lines(words: list[str], rng: random.Random, count: int) -> list[tuple[str, Optional[str]]]:
    out: list[tuple[str, Optional[str]]] = []
    for _ in range(count):
        picked = [rng.choice(words) for _ in range(rng.randint(0, 12))]
        if picked and rng.random() < 0.3:  # the same word again, later
            picked.insert(rng.randint(0, len(picked)), rng.choice(picked))
        boot = rng.choice(BOOTCONFIG) if rng.random() < 0.1 else None
        out.append((" ".join(picked), boot))
    # each line again with its words in another order (the templates' other positions)
    for line, boot in out[: count // 2]:
        shuffled = line.split(" ")
        rng.shuffle(shuffled)
        out.append((" ".join(shuffled), boot))
    rng.shuffle(out)
    return [*out, *out[:20]]  # and some lines answered twice (the per-line memo)


def _check(model: ResolveModel, config: ConfigInput, seed: int, count: int) -> None:
    rules = shipped_rules()
    specs = all_features(model, rules.features)
    kp = kernel_params_for(model, config, declarations=rules.declarations)
    batch = BatchResolver(model, config, specs, kp)
    rng = random.Random(seed)
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    from kpolicy.resolve.output import resolution_json

    for n, (line, boot) in enumerate(_lines(_words(model, rng), rng, count)):
        ident = n if n % 7 == 0 else None
        got = b"".join(bytes(p) for p in batch.pieces(line, boot, ident))
        want = dumps(resolution_json(resolve(model, config, line, bootconfig=boot, specs=specs,
                                             kp=kp)))
        if ident is not None:
            want = f'{{"id":{dumps(ident)},{want[1:]}'
        assert got.decode() == want + "\n", (line, boot)


@pytest.mark.parametrize("version", sorted(bundled_models()))
def test_batch_equals_resolve_on_random_lines_with_kconfig_defaults(version: str) -> None:
    model, _ = choose_model(None, bundled_models()[version])
    _check(model, defaults_config(model), 18, 150)


@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2"])
def test_batch_equals_resolve_on_random_lines_with_a_real_config(version: str) -> None:
    config = read_config(real_configs(version) / "config.amd64_none_cloud-amd64")
    path, _warning = pick_bundled(config.version)
    _check(read_model(path), config, int(version.replace(".", "")), 250)


def test_a_word_holding_a_stand_in_is_answered_exactly() -> None:
    """A word whose value is a stand-in index: its template does not check out, so the feature
    it reaches is answered afresh each time (and still exactly)."""
    version = sorted(bundled_models())[-1]
    model, _ = choose_model(None, bundled_models()[version])
    config = defaults_config(model)
    rules = shipped_rules()
    specs = all_features(model, rules.features)
    kp = kernel_params_for(model, config, declarations=rules.declarations)
    batch = BatchResolver(model, config, specs, kp)
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    from kpolicy.resolve.output import resolution_json

    for line in (f"quiet randomize_kstack_offset={FIRST}", f"randomize_kstack_offset={FIRST} ro",
                 f"sysctl.kernel.panic={FIRST} quiet", f"quiet sysctl.kernel.panic={FIRST}"):
        got = b"".join(bytes(p) for p in batch.pieces(line, None, None)).decode()
        want = dumps(resolution_json(resolve(model, config, line, specs=specs, kp=kp)))
        assert got == want + "\n", line
