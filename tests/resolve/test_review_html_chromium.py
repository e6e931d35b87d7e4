"""The review report in headless Chromium: rows grouped by category, the policy column, and the
client-side filters (differences, policy failures) applied by the page's own script."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import real_configs
from test_resolve_html_chromium import FLAGS, chromium

from kpolicy.cli import main

CLOUD = "config.amd64_none_cloud-amd64"


class Rows(HTMLParser):
    """The rendered table: each body row's attributes (with `hidden`) and its cells' attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.cells: list[list[dict[str, str]]] = []
        self.headers: list[str] = []
        self.shown = ""
        self._in: str = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr" and "data-category" in a:
            self.rows.append(a)
            self.cells.append([])
        elif tag == "td" and "data-feature" in a and self.cells:
            self.cells[-1].append(a)
        elif tag == "th" and a.get("class") == "policy":
            self._in = "policy"
        elif tag == "span" and a.get("id") == "shown":
            self._in = "shown"

    def handle_data(self, data: str) -> None:
        if self._in == "policy":
            self.headers.append(data)
        elif self._in == "shown":
            self.shown = data
        self._in = ""


def _dom(base: list[str], url: str) -> Rows:
    dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    rows = Rows()
    rows.feed(dom)
    return rows


@pytest.mark.real
def test_review_report_filters_in_chromium(tmp_path: Path) -> None:
    browser = chromium()
    a, b = real_configs("6.12") / CLOUD, real_configs("7.2") / CLOUD
    page = tmp_path / "review.html"
    assert main(["report", "--policy", "kspp", str(a), str(b), "-o", str(page)]) == 0
    base = [browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]

    everything = _dom(base, page.as_uri())
    assert everything.headers == ["policy kspp"]
    assert f"6.12/{CLOUD}" in page.read_text()  # same file names: the directory tells them apart
    heads = [r["data-category"] for r in everything.rows if r.get("class") == "category"]
    assert heads == ["feature", "option", "sysctl", "kconfig", "cmdline"]
    body = [(r, c) for r, c in zip(everything.rows, everything.cells)
            if r.get("class") != "category"]
    assert not any("hidden" in r for r, _c in body)
    assert everything.shown == str(len(body))
    # a category's rows follow its heading; the renamed symbol is one row with both names
    erase = [c for _r, c in body if c and c[0]["data-feature"] == "CONFIG_KSTACK_ERASE"]
    assert len(erase) == 1
    names = [x["data-name"] for x in erase[0]]
    assert names == ["CONFIG_GCC_PLUGIN_STACKLEAK", "CONFIG_KSTACK_ERASE"]
    assert [x["data-policy"] for x in erase[0]] == ["fail", "fail"]

    # #diff: the page's script hides every row whose columns agree, and empty headings
    diff = _dom(base, page.as_uri() + "#diff")
    kept = [(r, c) for r, c in zip(diff.rows, diff.cells)
            if r.get("class") != "category" and "hidden" not in r]
    assert kept and all(r["data-changed"] == "true" for r, _c in kept)
    assert len(kept) == sum(r["data-changed"] == "true" for r, _c in body) < len(body)
    assert diff.shown == str(len(kept))
    ubsan = [c for _r, c in kept if c[0]["data-feature"] == "CONFIG_UBSAN_BOUNDS"]
    assert [x["data-state"] for x in ubsan[0]] == ["n", "y"]
    assert [x["data-policy"] for x in ubsan[0]] == ["fail", "pass"]

    # #fail: only rows the policy fails in some column
    fail = _dom(base, page.as_uri() + "#fail")
    kept = [(r, c) for r, c in zip(fail.rows, fail.cells)
            if r.get("class") != "category" and "hidden" not in r]
    assert kept and all(any(x.get("data-policy") == "fail" for x in c) for _r, c in kept)
    assert len(kept) == sum(r["data-failed"] == "true" for r, _c in body)
    hidden_heads = [r["data-category"] for r in fail.rows
                    if r.get("class") == "category" and "hidden" in r]
    shown_cats = {r["data-category"] for r, _c in kept}
    assert set(hidden_heads).isdisjoint(shown_cats)

    shot = tmp_path / "review.png"
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1400,1400",
                    page.as_uri() + "#diff,fail"], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"review screenshot: {shot}")
