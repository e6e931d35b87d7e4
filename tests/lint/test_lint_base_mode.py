"""Pre-submit `--base REV`: only the findings a change introduces, on a real git repository."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from kplint_testkit import (
    make_tree,
    write_rules,
)

from kpolicy.cli import main
from kpolicy.errors import KpolicyError
from kpolicy.lint import gitbase

pytestmark = pytest.mark.usefixtures("stubbed")


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose kernel tree is in linux/; base commit has one violation, the patch
    commit moves it down and adds a new one."""
    root = tmp_path / "repo"
    tree = make_tree(root / "linux", {
        "mm/Kconfig": "config A\n\tbool\n# BAD(symbol=OLD)\n",
        "init/main.c": "int x;\n",
        "docs.txt": "unchanged\n",
    })
    (root / "README").write_text("outside the tree\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    (tree / "mm" / "Kconfig").write_text(
        "config Z\n\tbool\n\nconfig A\n\tbool\n# BAD(symbol=OLD)\n")
    (tree / "init" / "main.c").write_text("int x;\n/* EVIL(param=seal) */\n")
    git(root, "commit", "-q", "-am", "patch")
    return root


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("cache", ["--no-cache", "--cache-dir"])
def test_base_reports_only_what_the_change_introduces(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], cache: str
) -> None:
    rules = write_rules(tmp_path / "rules")
    tree = repo / "linux"
    cache_args = [cache] if cache == "--no-cache" else [cache, str(tmp_path / "cache")]
    argv = ["lint", "--tree", str(tree), "--rules-dir", str(rules), *cache_args,
            "--format", "json"]
    code, out, _ = _run(argv, capsys)
    assert code == 1 and len(json.loads(out)["findings"]) == 2  # without --base: both
    code, out, err = _run([*argv, "--base", "HEAD~1"], capsys)
    assert (code, err) == (1, "")
    doc = json.loads(out)
    assert [(f["file"], f["line"], f["param"]) for f in doc["findings"]] == [
        ("init/main.c", 2, "seal")]
    assert doc["summary"]["already_known"] == 1
    # Uncommitted edits count as part of the change; the committed violation is now known.
    (tree / "docs.txt").write_text("BAD(symbol=DIRTY)\n")
    code, out, _ = _run([*argv, "--base", "HEAD"], capsys)
    assert [f["symbol"] for f in json.loads(out)["findings"]] == ["DIRTY"]
    # No change at all: clean.
    (tree / "docs.txt").write_text("unchanged\n")
    assert _run([*argv, "--base", "HEAD"], capsys)[0] == 0


def test_sync_rebuilds_the_base_without_running_repository_programs(
    repo: Path, tmp_path: Path
) -> None:
    tree = repo / "linux"
    marker = tmp_path / "ran"
    # Programs the repository configures: a smudge filter, fsmonitor, and hooks.
    (repo / ".gitattributes").write_text("* filter=evil\n")
    git(repo, "config", "filter.evil.smudge", f"touch {marker}; cat")
    git(repo, "config", "filter.evil.clean", f"touch {marker}; cat")
    git(repo, "config", "core.fsmonitor", f"touch {marker}; true")
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    (tree / "init" / "main.c").write_text("changed in the working tree\n")
    dest = tmp_path / "base"
    dest.mkdir()
    commit, _manifest = gitbase.sync_tree(tree, "HEAD~1", dest)
    assert commit == git(repo, "rev-parse", "HEAD~1").strip()
    assert not marker.exists()
    assert (dest / "mm" / "Kconfig").read_text() == "config A\n\tbool\n# BAD(symbol=OLD)\n"
    assert (dest / "init" / "main.c").read_text() == "int x;\n"
    assert (dest / "docs.txt").read_text() == "unchanged\n"
    assert not (dest / "README").exists()  # only the tree's part of the repository


def test_base_errors_are_kpolicy_errors(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(KpolicyError, match="git rev-parse failed"):
        gitbase.sync_tree(repo / "linux", "no-such-branch", tmp_path)
    with pytest.raises(KpolicyError, match="not a revision"):
        gitbase.sync_tree(repo / "linux", "--output=/tmp/x", tmp_path)
    plain = make_tree(tmp_path / "plain")
    with pytest.raises(KpolicyError, match="needs a git checkout"):
        gitbase.sync_tree(plain, "HEAD", tmp_path)


def test_sync_keeps_only_symlinks_that_stay_inside_the_tree(
    repo: Path, tmp_path: Path
) -> None:
    tree = repo / "linux"
    (tree / "include").mkdir()
    (tree / "include" / "inside").symlink_to("../mm/Kconfig")
    (tree / "include" / "absolute").symlink_to("/etc/passwd")
    (tree / "include" / "escapes").symlink_to("../../README")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "links")
    dest = tmp_path / "base"
    dest.mkdir()
    gitbase.sync_tree(tree, "HEAD", dest)
    assert (dest / "include" / "inside").is_symlink()
    assert (dest / "include" / "inside").read_text() == (tree / "mm" / "Kconfig").read_text()
    assert not (dest / "include" / "absolute").exists()
    assert not (dest / "include" / "escapes").is_symlink()


def test_kept_base_tree_is_updated_file_by_file(repo: Path, tmp_path: Path) -> None:
    tree = repo / "linux"
    cache_root = tmp_path / "cache"
    with gitbase.base_tree(tree, "HEAD", cache_root) as first:
        kept = (first / "docs.txt").stat()
        assert (first / "init" / "main.c").read_text() == "int x;\n/* EVIL(param=seal) */\n"
    with gitbase.base_tree(tree, "HEAD~1", cache_root) as second:
        assert second == first
        assert (second / "init" / "main.c").read_text() == "int x;\n"
        assert (second / "mm" / "Kconfig").read_text() == "config A\n\tbool\n# BAD(symbol=OLD)\n"
        # Untouched between the revisions: the same inode and mtime, so caches keyed on them hit.
        again = (second / "docs.txt").stat()
        assert (again.st_ino, again.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)
    # A file removed at the newer revision, and a damaged kept file, are both put right.
    git(repo, "rm", "-q", "linux/docs.txt")
    git(repo, "commit", "-q", "-m", "drop docs")
    with gitbase.base_tree(tree, "HEAD", cache_root) as third:
        assert not (third / "docs.txt").exists()
        (third / "init" / "main.c").write_text("tampered, longer than before\n")
    with gitbase.base_tree(tree, "HEAD", cache_root) as fourth:
        assert (fourth / "init" / "main.c").read_text() == "int x;\n/* EVIL(param=seal) */\n"
    with pytest.raises(KpolicyError, match="git rev-parse failed"), \
            gitbase.base_tree(tree, "nope", cache_root):
        pass


def test_kept_base_trees_unused_for_weeks_are_removed(repo: Path, tmp_path: Path) -> None:
    import fcntl
    import time

    from kpolicy.cache import UNUSED_DAYS

    slots = tmp_path / "cache" / "base-trees"
    weeks_ago = time.time() - (UNUSED_DAYS + 1) * 86400
    for name in ("stale", "stale-but-in-use", "recent"):
        (slots / name / "tree" / "mm").mkdir(parents=True)
        (slots / name / "tree" / "mm" / "Kconfig").write_text("config A\n")
        (slots / name / "lock").touch()
        if name.startswith("stale"):
            os.utime(slots / name / "lock", (weeks_ago, weeks_ago))
    with open(slots / "stale-but-in-use" / "lock") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another kpolicy linting that checkout right now
        with gitbase.base_tree(repo / "linux", "HEAD~1", tmp_path / "cache") as dest:
            assert (dest / "init" / "main.c").read_text() == "int x;\n"
    left = {p.name for p in slots.iterdir()}
    assert {"stale-but-in-use", "recent"} <= left and "stale" not in left
    assert (slots / "stale-but-in-use" / "tree" / "mm" / "Kconfig").is_file()
    assert len(left) == 3  # and the slot of this checkout, just used
