"""Where splitting a command line on whitespace and comparing strings goes wrong; kpolicy's answer.

`naive` below is the approach of string-matching checkers (kernel-hardening-checker among them):
split on whitespace, cut each word at its first "=", keep the last value per exact name. Each test
shows a command line where that reading differs from what the kernel does, and that kpolicy's
resolve gives the kernel's answer. The README's comparison table cites these test names.
"""

from __future__ import annotations

from resolve_synthetic import CLOUD, model_file_fixture, model_fixture  # noqa: F401 (fixtures)

from kpolicy.resolve.api import resolve
from kpolicy.resolve.engine import FeatureState
from kpolicy.resolve.inputs import ConfigInput
from kpolicy.resolve.model import ResolveModel


def naive(cmdline: str) -> dict[str, str]:
    out = {}
    for word in cmdline.split():
        name, _eq, value = word.partition("=")
        out[name] = value
    return out


def kpolicy(model: ResolveModel, cmdline: str, **config: str) -> dict[str, FeatureState]:
    res = resolve(model, ConfigInput("cloud.config", {**CLOUD, **config}, "7.2.13"), cmdline)
    return {f.name: f for f in res.features}


def test_quoted_token_is_still_the_parameter(model: ResolveModel) -> None:
    line = '"init_on_alloc=0"'
    assert "init_on_alloc" not in naive(line)
    assert kpolicy(model, line)["init_on_alloc"].effective is False


def test_quoted_value_with_spaces_is_one_token(model: ResolveModel) -> None:
    line = 'init_on_free="1 (see ticket 42)"'
    assert naive(line)["init_on_free"] == '"1'  # cut inside the quotes
    assert kpolicy(model, line)["init_on_free"].effective is True


def test_dashes_and_underscores_are_the_same_name(model: ResolveModel) -> None:
    line = "init-on-alloc=0"
    assert "init_on_alloc" not in naive(line)
    assert kpolicy(model, line)["init_on_alloc"].effective is False


def test_words_after_double_dash_go_to_init(model: ResolveModel) -> None:
    line = "quiet -- init_on_alloc=0"
    assert naive(line)["init_on_alloc"] == "0"
    f = kpolicy(model, line)["init_on_alloc"]
    assert f.effective is True
    [token] = [s for s in f.sources if s.kind == "cmdline"]
    assert token.state is None and token.outcome == "after-dashdash"  # never reached the handler


def test_invalid_value_keeps_the_default(model: ResolveModel) -> None:
    line = "init_on_alloc=maybe"
    assert naive(line)["init_on_alloc"] == "maybe"  # a string compare calls this "not 1"
    f = kpolicy(model, line)["init_on_alloc"]
    assert f.effective is True
    assert [s.outcome for s in f.sources if s.kind == "cmdline"] == ["malformed"]


def test_kstrtobool_accepts_more_than_fixed_strings(model: ResolveModel) -> None:
    line = "init_on_free=true"  # first character 't': true
    assert naive(line)["init_on_free"] == "true"
    assert kpolicy(model, line)["init_on_free"].effective is True


def test_parameter_not_built_in_does_nothing(model: ResolveModel) -> None:
    line = "randomize_kstack_offset=1"
    assert naive(line)["randomize_kstack_offset"] == "1"
    f = kpolicy(model, line, RANDOMIZE_KSTACK_OFFSET="n")["randomize_kstack_offset"]
    assert f.built is False and f.effective is False
    assert [s.outcome for s in f.sources if s.kind == "cmdline"] == ["init-env"]


def test_raise_only_parameter_ignores_a_later_lower_value(model: ResolveModel) -> None:
    line = "lockdown=confidentiality lockdown=integrity"
    assert naive(line)["lockdown"] == "integrity"  # last one wins for a dictionary
    assert kpolicy(model, line)["lockdown"].effective == "confidentiality"


def test_enable_only_parameter_cannot_be_switched_off(model: ResolveModel) -> None:
    line = "module.sig_enforce=1 module.sig_enforce=0"
    assert naive(line)["module.sig_enforce"] == "0"
    assert kpolicy(model, line)["module.sig_enforce"].effective is True


def test_setup_without_equals_matches_any_suffix(model: ResolveModel) -> None:
    line = "slab_nomerge=0"  # __setup("slab_nomerge") ignores what follows: still "no merge"
    assert naive(line)["slab_nomerge"] == "0"
    assert kpolicy(model, line)["slab_nomerge"].effective is True
