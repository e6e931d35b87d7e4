"""JSON and text renderings, and the batch path."""

from __future__ import annotations

import json

import pytest
from cmdline_synthetic import synthetic

from kpolicy.cmdline import (
    cmdline_json,
    cmdline_text,
    process_cmdline,
    resolve_cmdlines_jsonl,
)
from kpolicy.errors import KpolicyError

KP = synthetic()


def test_json_has_the_contract_keys_and_values() -> None:
    out = cmdline_json(process_cmdline(KP, "foo X=1 panic=x init_on_free=z"))
    assert out["init"] == {"argv": ["foo"], "envp": ["X=1"]}
    assert out["unknown"] == ["foo", "X=1"]
    assert out["malformed_early"] == ["init_on_free"]
    assert out["invalid"] == [{"param": "panic", "value": "x"}]
    assert out["cmdline"]["effective"] == "foo X=1 panic=x init_on_free=z"
    assert out["cmdline"]["truncated"] is False
    assert [e["stage"] for e in out["events"]] == ["early", "init-argv", "init-env", "main"]
    assert out["events"][-1]["registration"]["name"] == "panic"
    json.dumps(out)


def test_text_explains_every_word() -> None:
    text = cmdline_text(process_cmdline(KP, "foo init_on_free=z -- bar"))
    for needle in ("#0 foo: init-argv unknown", "#1 init_on_free=z: early malformed",
                   "#3 bar: after-dashdash accepted", 'init argv: ["foo", "bar"]'):
        assert needle in text


def test_batch_gives_one_json_line_per_input_line() -> None:
    lines = ['"foo"', "", '{"id": 7, "cmdline": "X=1 panic=q"}', '"X=1 panic=q"']
    out = [json.loads(x) for x in resolve_cmdlines_jsonl(KP, lines)]
    assert len(out) == 3 and out[2] == {k: v for k, v in out[1].items() if k != "id"}
    assert out[0]["init"]["argv"] == ["foo"]
    assert out[1]["id"] == 7 and out[1]["invalid"] == [{"param": "panic", "value": "q"}]


@pytest.mark.parametrize("line", ["{", "42", '{"cmdline": 1}', '{"cmdline": "a", "bootconfig": 2}'])
def test_batch_bad_lines_name_the_line(line: str) -> None:
    with pytest.raises(KpolicyError) as exc:
        list(resolve_cmdlines_jsonl(KP, ['"ok"', line]))
    assert exc.value.line == 2


def test_batch_lines_equal_cmdline_json() -> None:
    lines = ["foo X=1 X=2 panic=x init_on_free=z", 'a "b c" -- d',
             "foo X=1 X=2 panic=x init_on_free=z",
             "caf\u00e9=\u00e9 module.sig_enforce=1 module.sig_enforce=0"]
    got = [json.loads(x) for x in resolve_cmdlines_jsonl(KP, [json.dumps(x) for x in lines])]
    assert got == [cmdline_json(process_cmdline(KP, x)) for x in lines]


@pytest.mark.parametrize("compact", [True, False])
def test_line_encoder_is_json_dumps_byte_for_byte(compact: bool) -> None:
    """LineEncoder keeps the summary's text up to the command line's strings, by the fields it
    holds: every line, each after the others (cached heads), is json.dumps' text exactly."""
    from kpolicy.cmdline import LineEncoder

    lines = ["foo X=1 X=2 panic=x init_on_free=z", 'a "b c" -- d', "a -- d", "a b -- d e",
             "foo X=1 X=2 panic=x init_on_free=z", "quiet", "quiet ro", 'x="\\\\ \\"" \x01',
             "caf\u00e9=\u00e9 module.sig_enforce=1 module.sig_enforce=0", "", "--",
             "sysctl.kernel.panic=5", "sysctl.kernel.panic=6", "a" * 5000, "a\0b"]
    many = " ".join(f"u{n}" for n in range(40))  # more unknown words than init may get
    lines += [f"{many} -- x", f"{many} -- y", f"{many} v=1 -- x", f"{many} v=1"]
    encoder = LineEncoder(compact=compact)
    dumps = json.JSONEncoder(ensure_ascii=compact,
                             separators=(",", ":") if compact else (", ", ": ")).encode
    for warnings in ((), ("w1",), ("w2", "\u00e9")):
        for line in lines * 2:
            result = process_cmdline(KP, line)
            want = cmdline_json(result)
            want["warnings"] = [*warnings, *want["warnings"]]
            assert encoder.encode(result, warnings) == dumps(want), (line, warnings)
