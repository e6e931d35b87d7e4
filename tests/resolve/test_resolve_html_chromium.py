"""The HTML report in headless Chromium: the page renders and the matrix holds the states."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import in_ci, real_configs

from kpolicy.cli import main

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if in_ci():
        pytest.fail("chromium is not installed", pytrace=False)
    pytest.skip("chromium is not installed")


class Matrix(HTMLParser):
    """The cells of the rendered table: (feature, column index) -> data-state."""

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[tuple[str, int], str] = {}
        self.columns: list[str] = []
        self._col = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr":
            self._col = 0
        if tag == "td" and "data-feature" in a:
            self.states[(a["data-feature"], self._col)] = a["data-state"]
            self._col += 1


@pytest.mark.real
def test_report_renders_in_chromium(tmp_path: Path) -> None:
    browser = chromium()
    new, old = real_configs("7.2"), real_configs("6.12")
    columns = [
        new / "config.amd64_none_amd64",
        new / "config.amd64_none_cloud-amd64",
        new / "config.amd64_none_rt-amd64",
        old / "config.amd64_none_amd64",
    ]
    page = tmp_path / "report.html"
    assert main(["report", *map(str, columns), "-o", str(page)]) == 0
    profile = tmp_path / "profile"
    base = [browser, *FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    matrix = Matrix()
    matrix.feed(dom)
    # Debian's 7.2 configs: MSEAL blocked by CHECKPOINT_RESTORE everywhere, THP always,
    # init_on_alloc on, vsyscall none on the 7.2 ones.
    for col in range(3):
        assert matrix.states[("MSEAL_SYSTEM_MAPPINGS", col)] == "off"
        assert matrix.states[("init_on_alloc", col)] == "on"
        assert matrix.states[("lockdown", col)] == "none"
    assert (
        "MSEAL_SYSTEM_MAPPINGS",
        3,
    ) in matrix.states  # 6.12 has no such option: reported absent/off
    shot = tmp_path / "report.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1400,1000", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"report screenshot: {shot}")
