"""`kpolicy resolve|diff|report|model` end to end on the hand-made model (no tree needed)."""

from __future__ import annotations

import json
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from resolve_synthetic import CLOUD, model_file_fixture, model_fixture  # noqa: F401 (fixtures)

from kpolicy.cli import main


def write_config(path: Path, values: dict[str, str]) -> Path:
    lines = [
        "#",
        "# Automatically generated file; DO NOT EDIT.",
        "# Linux/x86 7.2.13 Kernel Configuration",
        "#",
    ]
    for name, value in sorted(values.items()):
        if value == "n":
            lines.append(f"# CONFIG_{name} is not set")
        elif value in ("y", "m") or value.isdigit():
            lines.append(f"CONFIG_{name}={value}")
        else:
            lines.append(f'CONFIG_{name}="{value}"')
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def cloud(tmp_path: Path) -> Path:
    return write_config(tmp_path / "cloud.config", CLOUD)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def resolve_with(
    capsys: pytest.CaptureFixture[str], model_file: Path, config: Path, *argv: str
) -> tuple[int, str, str]:
    """`kpolicy resolve --model MODEL_FILE --config CONFIG ARGV...`: (exit code, stdout, stderr)."""
    return run(capsys, "resolve", "--model", str(model_file), "--config", str(config), *argv)


def batch_argv(model_file: Path, config: Path, batch: Path, jobs: int) -> list[str]:
    """`kpolicy resolve --cmdlines BATCH --jobs JOBS`, to run in a process of its own."""
    return [
        sys.executable,
        "-m",
        "kpolicy",
        "resolve",
        "--model",
        str(model_file),
        "--config",
        str(config),
        "--cmdlines",
        str(batch),
        "--jobs",
        str(jobs),
    ]


def test_resolve_json_contract(
    capsys: pytest.CaptureFixture[str], model_file: Path, cloud: Path
) -> None:
    code, out, _err = resolve_with(
        capsys,
        model_file,
        cloud,
        "--cmdline",
        "init_on_alloc=0 foo=bar -- x",
        "--format",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["schema_version"] == 2
    for key in ("init", "unknown", "malformed_early", "invalid", "cmdline", "events"):
        assert key in doc
    f = doc["features"]["init_on_alloc"]
    assert f["effective"] is False and f["built"] is True and f["default"] is True
    assert [s["kind"] for s in f["sources"]] == ["kconfig-default", "config", "cmdline"]
    config_step = f["sources"][1]
    assert config_step["symbol"] == "INIT_ON_ALLOC_DEFAULT_ON" and config_step["config_line"] > 0
    assert doc["features"]["lockdown"]["effective"] == "none"
    assert doc["init"]["envp"] == ["foo=bar"] and doc["init"]["argv"] == ["x"]
    # a discovered option has a Kconfig value only, never an effective state
    assert all(set(o) <= {"value", "semantics", "params", "default_companion"}
               and o["semantics"] == "unknown" for o in doc["options"].values())
    assert not set(doc["options"]) & set(doc["features"])


def test_resolve_text_and_verbose(
    capsys: pytest.CaptureFixture[str], model_file: Path, cloud: Path
) -> None:
    code, out, _ = resolve_with(
        capsys,
        model_file,
        cloud,
        "--cmdline",
        "lockdown=integrity",
    )
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("lockdown "))
    assert "integrity" in line and "lockdown=integrity" in line
    _code, verbose, _ = resolve_with(
        capsys,
        model_file,
        cloud,
        "--cmdline",
        "lockdown=integrity",
        "-v",
    )
    assert "kconfig-default" in verbose and "LOCK_DOWN_KERNEL_FORCE_NONE" in verbose


def test_cmdline_file_and_batch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_file: Path, cloud: Path
) -> None:
    cmdfile = tmp_path / "cmdline"
    cmdfile.write_text("init_on_free=1\n")
    _c, out, _ = resolve_with(
        capsys,
        model_file,
        cloud,
        "--cmdline-file",
        str(cmdfile),
        "--format",
        "json",
    )
    assert json.loads(out)["features"]["init_on_free"]["effective"] is True
    batch = tmp_path / "lines.jsonl"
    batch.write_text('"init_on_free=1"\n{"id": "b", "cmdline": "init_on_free=0"}\n')
    code, out, _ = resolve_with(
        capsys,
        model_file,
        cloud,
        "--cmdlines",
        str(batch),
    )
    rows = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and len(rows) == 2 and rows[1]["id"] == "b"
    assert [r["features"]["init_on_free"]["effective"] for r in rows] == [True, False]


def test_bad_inputs_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_file: Path
) -> None:
    code, _out, err = run(
        capsys, "resolve", "--model", str(model_file), "--config", str(tmp_path / "missing")
    )
    assert code == 2 and err.count("\n") == 1 and "error" in err
    batch = tmp_path / "bad.jsonl"
    batch.write_text('"ok"\n{broken\n')
    code, _out, err = run(capsys, "resolve", "--model", str(model_file), "--cmdlines", str(batch))
    assert code == 2 and f"{batch}:2: error" in err


def test_diff_reports_changes_and_exit_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_file: Path, cloud: Path
) -> None:
    hardened = write_config(tmp_path / "hard.config", {**CLOUD, "INIT_ON_FREE_DEFAULT_ON": "y"})
    cmd = tmp_path / "cmd"
    cmd.write_text("lockdown=integrity\n")
    code, out, _ = run(capsys, "diff", "--model", str(model_file), str(cloud), f"{hardened}:{cmd}")
    assert code == 1
    changed = [x.split()[1] for x in out.splitlines() if x.startswith("! ")]
    assert changed == ["init_on_free", "lockdown"]
    code, out, _ = run(capsys, "diff", "--model", str(model_file), str(cloud), str(cloud))
    assert code == 0 and "no difference" in out
    code, out, _ = run(
        capsys,
        "diff",
        "--model",
        str(model_file),
        "--format",
        "json",
        str(cloud),
        str(cloud),
        "--b-cmdline",
        "init_on_alloc=0",
    )
    doc = json.loads(out)
    assert code == 1 and doc["schema_version"] == 2
    assert [(c["category"], c["key"]) for c in doc["changes"]] == [("feature", "init_on_alloc")]
    change = doc["changes"][0]
    assert (change["a"]["value"], change["b"]["value"]) == ("on", "off")


class Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "td" and "data-feature" in a:
            self.cells.append(a)


def test_report_html_is_self_contained_and_deterministic(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_file: Path, cloud: Path
) -> None:
    other = write_config(
        tmp_path / "other.config",
        {**CLOUD, "TRANSPARENT_HUGEPAGE_ALWAYS": "n", "TRANSPARENT_HUGEPAGE_MADVISE": "y"},
    )
    out1, out2 = tmp_path / "a.html", tmp_path / "b.html"
    for out in (out1, out2):
        assert (
            main(["report", "--model", str(model_file), str(cloud), str(other), "-o", str(out)])
            == 0
        )
    page = out1.read_text()
    assert page == out2.read_text()
    # one inline script (the filters), nothing loaded from anywhere
    assert "http://" not in page and "https://" not in page and " src=" not in page
    assert page.count("<script>") == 1
    parser = Cells()
    parser.feed(page)
    thp = [c for c in parser.cells if c["data-feature"] == "transparent_hugepage"]
    assert [c["data-state"] for c in thp] == ["always", "madvise"]
    assert all("changed" in c["class"] for c in thp)
    assert all(c["title"] for c in parser.cells)


def test_no_arguments_reads_the_running_system(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cloud: Path
) -> None:
    from kpolicy.resolve import command
    from kpolicy.resolve.bundle import bundled_models

    if not bundled_models():
        pytest.skip("no bundled models yet")
    proc_cmdline = tmp_path / "cmdline"
    proc_cmdline.write_text("BOOT_IMAGE=/vmlinuz init_on_free=1\n")
    monkeypatch.setattr(command, "running_system_inputs", lambda: (cloud, proc_cmdline, []))
    code, out, _err = run(capsys, "resolve", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["config"] == str(cloud)
    assert doc["features"]["init_on_free"]["effective"] is True
    assert doc["cmdline"]["effective"] == "BOOT_IMAGE=/vmlinuz init_on_free=1"
    note = "no /proc/config.gz: using the newest bundled model's x86_64 Kconfig defaults"
    monkeypatch.setattr(command, "running_system_inputs", lambda: (None, None, [note]))
    code, out, err = run(capsys, "resolve", "--format", "json")
    assert code == 0 and json.loads(out)["config"] is None
    assert note in err


def test_model_show_summarizes_a_model(
    capsys: pytest.CaptureFixture[str], model_file: Path
) -> None:
    code, out, _ = run(capsys, "model", "show", str(model_file))
    assert code == 0
    assert "Linux 7.2.13 x86_64" in out and "COMMAND_LINE_SIZE 2048" in out


def test_batch_workers_answer_like_one_process(
    tmp_path: Path, model_file: Path, cloud: Path
) -> None:
    # real processes: the workers write to the file descriptor, which capsys does not see
    import subprocess

    from kpolicy.resolve.command import BATCH_BLOCK

    words = ["init_on_free=1", "init_on_free=0", "quiet", "lockdown=integrity", "-- x", "a=b"]
    lines = [
        json.dumps(" ".join(words[(n + k) % len(words)] for k in range(n % 4 + 1)))
        for n in range(2 * BATCH_BLOCK + 17)
    ]
    batch = tmp_path / "lines.jsonl"

    def resolve_batch(jobs: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            batch_argv(model_file, cloud, batch, jobs),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    batch.write_text("\n".join(lines) + "\n")
    alone, together = resolve_batch(1), resolve_batch(3)
    assert alone.returncode == together.returncode == 0, together.stderr
    assert together.stdout == alone.stdout and alone.stdout.count("\n") == len(lines)
    bad = 2 * BATCH_BLOCK + 3  # in the third block, answered by the third worker
    batch.write_text("\n".join([*lines[: bad - 1], "{broken", *lines[bad:]]) + "\n")
    failed = resolve_batch(3)
    assert failed.returncode == 2 and failed.stderr.startswith(f"{batch}:{bad}: error: not JSON")
    assert failed.stdout.splitlines() == alone.stdout.splitlines()[: bad - 1]


def test_batch_workers_stop_quietly_when_the_reader_goes_away(
    tmp_path: Path, model_file: Path, cloud: Path
) -> None:
    import subprocess

    from kpolicy.resolve.command import BATCH_BLOCK

    batch = tmp_path / "lines.jsonl"
    batch.write_text('"init_on_free=1 quiet"\n' * (3 * BATCH_BLOCK))
    proc = subprocess.Popen(
        batch_argv(model_file, cloud, batch, 2),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(100)  # like `| head -c 100`
    proc.stdout.close()
    assert proc.wait(timeout=300) == 0  # as with one process: no error, no traceback
    assert proc.stderr.read() == b""


def test_kpti_is_a_boot_outcome_on_arm64_only(
    capsys: pytest.CaptureFixture[str], model_file: Path, cloud: Path
) -> None:
    """arm64's KPTI in force is a feature of resolve's output: null ("depends") with its reason
    while the CPU is unknown, decided by kpti= or by mitigations=off without KASLR; an x86_64
    model has no such feature."""
    from kpolicy.resolve.bundle import bundled_models

    arm = bundled_models("arm64")
    if not arm:
        pytest.skip("no bundled arm64 models")
    model = str(arm[list(arm)[-1]])
    for cmdline, want, why in (("", None, "depends on the CPU"),
                               ("kpti=0", False, "kpti=0"),
                               ("nokaslr mitigations=off", False, "mitigations=off")):
        code, out, _ = run(capsys, "resolve", "--model", model, "--cmdline", cmdline,
                           "--format", "json")
        kpti = json.loads(out)["features"]["kpti"]
        assert code == 0 and kpti["effective"] is want and why in kpti["why"], cmdline
        assert kpti["built"] is True and any(s["kind"] == "machine" for s in kpti["sources"])
    _code, text, _ = run(capsys, "resolve", "--model", model, "--cmdline", "", "-v")
    line = next(x for x in text.splitlines() if x.startswith("kpti "))
    assert line.split()[1] == "depends" and "depends on the CPU" in line
    assert "mitigations=off forces it off: does not apply (mitigations is auto)" in text
    _code, out, _ = resolve_with(capsys, model_file, cloud, "--cmdline", "kpti=1",
                                 "--format", "json")
    assert "kpti" not in json.loads(out)["features"]
    x86 = bundled_models("x86_64")
    _code, out, _ = run(capsys, "resolve", "--model", str(x86[list(x86)[-1]]), "--format", "json",
                        "--cmdline", "kpti=1")
    doc = json.loads(out)
    assert "kpti" not in doc["features"] and "pti" in doc["features"]


def test_kpti_batch_answers_like_one_resolve(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--cmdlines resolves kpti after kaslr and mitigations, line by line, as resolve does."""
    from kpolicy.resolve.bundle import bundled_models

    arm = bundled_models("arm64")
    if not arm:
        pytest.skip("no bundled arm64 models")
    model = str(arm[list(arm)[-1]])
    lines = ["", "kpti=1", "nokaslr mitigations=off", "mitigations=off", "kpti=0 kpti=1"]
    batch = tmp_path / "lines.jsonl"
    batch.write_text("".join(json.dumps(x) + "\n" for x in lines))
    _code, out, _ = run(capsys, "resolve", "--model", model, "--cmdlines", str(batch),
                        "--jobs", "1")
    rows = [json.loads(x)["features"]["kpti"] for x in out.splitlines()]
    single = []
    for line in lines:
        _code, one, _ = run(capsys, "resolve", "--model", model, "--cmdline", line,
                            "--format", "json")
        single.append(json.loads(one)["features"]["kpti"])
    assert rows == single
    # the model's Kconfig defaults leave KASLR (RANDOMIZE_BASE) off: mitigations=off decides
    assert [r["effective"] for r in rows] == [None, True, False, False, True]
