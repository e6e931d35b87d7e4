"""sysctl.d as systemd-sysctl reads it, on tests/fixtures/sysctl/root: file order across
/etc, /run, /usr/local/lib and /usr/lib, name overrides and masks, later-wins, glob keys,
`-` prefixes, and the warnings for settings that cannot take effect."""

from __future__ import annotations

from pathlib import Path

import pytest
from sysctl_testkit import boot

from kpolicy.errors import KpolicyError
from kpolicy.sysctl.boot import SysctlState
from kpolicy.sysctl.sysctld import (
    apply_sysctl_files,
    normalize_key,
    parse_conf,
    read_sysctl_inputs,
    sysctl_d_files,
)

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "sysctl" / "root"


def after(*paths: Path, cmdline: str = "") -> dict[str, SysctlState]:
    states = apply_sysctl_files(boot(cmdline).sysctls, read_sysctl_inputs(paths))
    return {s.spec.path: s for s in states}


def test_file_order_overrides_and_masks() -> None:
    files = [str(p.relative_to(ROOT)) for p in sysctl_d_files(ROOT)]
    assert files == [
        "usr/lib/sysctl.d/10-base.conf",
        "usr/local/lib/sysctl.d/40-local.conf",
        "run/sysctl.d/50-default.conf",  # /run hides /usr/lib's file of the same name
        "etc/sysctl.d/60-local.conf",
    ]  # 30-masked.conf: /etc's link to /dev/null masks /usr/lib's; README is not *.conf


def test_values_and_provenance() -> None:
    s = after(ROOT)
    kptr = s["kernel.kptr_restrict"]
    assert kptr.effective == "2"  # 60-local.conf sorts after 10-base.conf
    assert kptr.why.endswith("etc/sysctl.d/60-local.conf:2)")
    assert any(src.error == "replaced" and "10-base.conf:2" in (src.location or "")
               for src in kptr.sources)
    assert s["fs.protected_fifos"].effective == "1"
    assert s["kernel.dmesg_restrict"].effective == "0"
    assert s["fs.protected_regular"].effective == "2"
    assert s["kernel.yama.ptrace_scope"].effective == "2"  # the /-separated key
    assert s["kernel.kexec_load_disabled"].effective == "0"  # masked file never read
    assert s["dev.tty.ldisc_autoload"].effective == "0"
    assert s["net.ipv4.conf.all.rp_filter"].effective == "1"  # the exact key beats the glob
    assert s["net.ipv4.conf.all.log_martians"].effective == "1"  # the glob reaches it
    assert s["net.ipv4.conf.all.accept_redirects"].effective == "1"  # nothing touches it


def test_warnings_for_settings_that_cannot_take_effect() -> None:
    s = after(ROOT)
    mods = s["kernel.modules_disabled"]
    assert mods.effective == "0"
    assert len(mods.warnings) == 1 and "60-local.conf:4" in mods.warnings[0]
    assert "outside 1..1" in mods.warnings[0]
    uring = s["kernel.io_uring_disabled"]  # `-` prefix: refused, but no warning
    assert (uring.effective, uring.warnings) == ("0", ())
    assert uring.sources[-1].error == "EINVAL"
    locked = after(ROOT, cmdline="sysctl.kernel.yama.ptrace_scope=3")["kernel.yama.ptrace_scope"]
    assert locked.effective == "3"
    assert "one-way switch already set" in locked.warnings[0]
    absent = after(ROOT, cmdline="lsm=lockdown")["kernel.yama.ptrace_scope"]
    assert absent.effective is None and "cannot take effect" in absent.warnings[0]


def test_files_apply_in_the_order_given(tmp_path: Path) -> None:
    one = tmp_path / "sysctl.conf"
    one.write_text("kernel.kptr_restrict = 1\n")
    dump = tmp_path / "dump"
    dump.write_text("kernel.kptr_restrict = 2\nkernel.sysrq = 0\n")
    assert after(one, dump)["kernel.kptr_restrict"].effective == "2"
    assert after(dump, one)["kernel.kptr_restrict"].effective == "1"
    assert after(dump)["kernel.sysrq"].effective == "0"


def test_keys_and_lines() -> None:
    assert normalize_key("kernel/yama/ptrace_scope") == "kernel.yama.ptrace_scope"
    assert normalize_key("kernel.yama.ptrace_scope") == "kernel.yama.ptrace_scope"
    (a,) = parse_conf("  -net.core.bpf_jit_harden   =  2  \n# x\n; y\n\n", "f")
    assert (a.key, a.value, a.ignore_errors, a.line) == ("net.core.bpf_jit_harden", "2", True, 1)
    with pytest.raises(KpolicyError, match="without '='"):
        parse_conf("kernel.sysrq\n", "f")


def test_the_cli_reads_sysctl_d(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from kpolicy.cli import main

    config = Path(__file__).resolve().parent.parent / "fixtures" / "sysctl" / "debian-like.config"
    code = main(["resolve", "--config", str(config), "--sysctl", str(ROOT), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0
    feats = json.loads(out)["features"]
    assert feats["sysctl.kernel.kptr_restrict"]["effective"] == "2"
    assert feats["sysctl.kernel.kptr_restrict"]["default"] == "0"
    assert "60-local.conf:4" in err  # the modules_disabled warning


def test_batch_answers_carry_the_same_sysctls(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from kpolicy.cli import main

    config = Path(__file__).resolve().parent.parent / "fixtures" / "sysctl" / "debian-like.config"
    lines = ["", "sysctl.kernel.yama.ptrace_scope=3 sysctl.kernel.yama.ptrace_scope=1",
             "lsm=lockdown norandmaps", "sysrq_always_enabled sysctl.kernel.sysrq=0", ""]
    batch = tmp_path / "lines.jsonl"
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["resolve", "--config", str(config), "--cmdlines", str(batch), "--jobs", "1"]) == 0
    answers = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(answers) == len(lines)
    for line, answer in zip(lines, answers):
        assert main(["resolve", "--config", str(config), "--cmdline", line,
                     "--format", "json"]) == 0
        single = json.loads(capsys.readouterr().out)
        assert answer["features"] == single["features"]
        assert "sysctl.kernel.sysrq" in answer["features"]
    assert answers[1]["features"]["sysctl.kernel.yama.ptrace_scope"]["effective"] == "3"
    assert answers[2]["features"]["sysctl.kernel.yama.ptrace_scope"]["effective"] is None
    assert answers[3]["features"]["sysctl.kernel.sysrq"]["effective"] == "1"
