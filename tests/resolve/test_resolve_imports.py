"""The bundled-model path must not import lark or kconfiglib (startup time is the product)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from resolve_synthetic import CLOUD, model_file_fixture, model_fixture  # noqa: F401 (fixtures)

PROBE = (
    "import sys; from kpolicy.cli import main; code = main(sys.argv[1:]); "
    "print(sorted(m for m in ('lark', 'kconfiglib') if m in sys.modules)); sys.exit(code)"
)


def test_resolve_with_a_model_imports_no_parser(tmp_path: Path, model_file: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "# Linux/x86 7.2.13 Kernel Configuration\n"
        + "".join(f"CONFIG_{k}={v}\n" for k, v in CLOUD.items() if v == "y")
    )
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            "resolve",
            "--model",
            str(model_file),
            "--config",
            str(config),
            "--cmdline",
            "init_on_alloc=0",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"
