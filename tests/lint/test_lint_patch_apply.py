"""`lint --patch`: kpolicy's own patch applier on small trees, and the CLI around it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from kplint_testkit import make_tree, write_rules

from kpolicy import treefs
from kpolicy.cache import store_sealed
from kpolicy.cli import main
from kpolicy.errors import KpolicyError
from kpolicy.lint import scratch
from kpolicy.lint.patchfile import apply_all, parse_patches

OLD = "".join(f"line {i}\n" for i in range(1, 31))

TWO_HUNKS = """\
From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: T <t@example.org>
Subject: [PATCH] two hunks

---
 f.txt | 2 +-
diff --git a/f.txt b/f.txt
index 1111111..2222222 100644
--- a/f.txt
+++ b/f.txt
@@ -2,3 +2,4 @@
 line 2
 line 3
+inserted after 3
 line 4
@@ -25,3 +26,3 @@ context text
 line 25
-line 26
+LINE 26
 line 27
--\x20
2.43.0
"""

NEW_AND_DELETE = """\
diff --git a/new/dir/added.c b/new/dir/added.c
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/new/dir/added.c
@@ -0,0 +1,2 @@
+int added;
+/* BAD(symbol=ADDED) */
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
index 4444444..0000000
--- a/gone.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-to be removed
-no newline at the end
\\ No newline at end of file
diff --git a/old-name.txt b/renamed.txt
similarity index 90%
rename from old-name.txt
rename to renamed.txt
index 5555555..6666666 100644
--- a/old-name.txt
+++ b/renamed.txt
@@ -1 +1 @@
-kept
+kept, renamed
"""

MBOX = """\
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: T <t@example.org>
Subject: [PATCH 0/2] cover letter

Nothing to apply here.
--\x20
2.43.0

From aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa Mon Sep 17 00:00:00 2001
From: T <t@example.org>
Subject: [PATCH 1/2] first

---
diff --git a/f.txt b/f.txt
--- a/f.txt
+++ b/f.txt
@@ -1,2 +1,2 @@
-line 1
+first patch
 line 2
--\x20
2.43.0

From bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb Mon Sep 17 00:00:00 2001
From: T <t@example.org>
Subject: [PATCH 2/2] second, on top of the first

---
diff --git a/f.txt b/f.txt
--- a/f.txt
+++ b/f.txt
@@ -1,2 +1,3 @@
 first patch
+second patch
 line 2
--\x20
2.43.0
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "linux", {
        "f.txt": OLD, "gone.txt": "to be removed\nno newline at the end",
        "old-name.txt": "kept\n", "mm/Kconfig": "config A\n\tbool\n# BAD(symbol=OLD)\n",
    })


def changes(tree: Path, tmp_path: Path, *texts: str) -> dict[str, bytes | None]:
    files = []
    for i, text in enumerate(texts):
        files.append(tmp_path / f"{i:04}.patch")
        files[-1].write_text(text)
    return {p: c.content for p, c in scratch.patch_changes(tree, files).items()}


def test_two_hunks_apply_at_an_offset(tree: Path, tmp_path: Path) -> None:
    # Two lines added at the top: every hunk sits two lines below where its header says.
    (tree / "f.txt").write_text("extra 1\nextra 2\n" + OLD)
    new = changes(tree, tmp_path, TWO_HUNKS)["f.txt"]
    assert new is not None
    lines = new.decode().splitlines()
    assert lines[:6] == ["extra 1", "extra 2", "line 1", "line 2", "line 3", "inserted after 3"]
    assert "LINE 26" in lines and "line 26" not in lines and len(lines) == 33


def test_new_file_deletion_and_rename(tree: Path, tmp_path: Path) -> None:
    got = changes(tree, tmp_path, NEW_AND_DELETE)
    assert got == {"new/dir/added.c": b"int added;\n/* BAD(symbol=ADDED) */\n",
                   "gone.txt": None, "old-name.txt": None, "renamed.txt": b"kept, renamed\n"}


def test_mbox_series_applies_in_order_and_skips_the_cover_letter(
        tree: Path, tmp_path: Path) -> None:
    new = changes(tree, tmp_path, MBOX)["f.txt"]
    assert new is not None and new.startswith(b"first patch\nsecond patch\nline 2\n")
    # the same two patches as two files, given in order, give the same result
    first, second = MBOX.split("\nFrom bbbb")
    assert changes(tree, tmp_path, first, "From bbbb" + second)["f.txt"] == new


def test_a_hunk_that_does_not_apply_names_patch_file_target_and_hunk(
        tree: Path, tmp_path: Path) -> None:
    (tree / "f.txt").write_text(OLD.replace("line 26\n", "line twenty-six\n"))
    with pytest.raises(KpolicyError) as err:
        changes(tree, tmp_path, TWO_HUNKS)
    assert str(err.value).startswith(f"{tmp_path / '0000.patch'}:16: error: f.txt: hunk #2 "
                                     "(@@ -25,3 +26,3 @@ context text) does not apply")
    # fuzz is off: one changed context line is enough to refuse
    (tree / "f.txt").write_text(OLD.replace("line 27\n", "line 27 \n"))
    with pytest.raises(KpolicyError, match="hunk #2"):
        changes(tree, tmp_path, TWO_HUNKS)


def test_conflicts_between_patch_and_tree(tree: Path, tmp_path: Path) -> None:
    (tree / "new" / "dir").mkdir(parents=True)
    (tree / "new" / "dir" / "added.c").write_text("already here\n")
    with pytest.raises(KpolicyError, match=r":1: error: new/dir/added.c: the patch creates it"):
        changes(tree, tmp_path, NEW_AND_DELETE)
    (tree / "new" / "dir" / "added.c").unlink()
    (tree / "gone.txt").write_text("to be removed\nno newline at the end\nand more\n")
    with pytest.raises(KpolicyError, match=r"gone\.txt: hunk #1"):
        changes(tree, tmp_path, NEW_AND_DELETE)
    (tree / "f.txt").unlink()
    with pytest.raises(KpolicyError, match=r"f\.txt: the patch changes it, but it does not exist"):
        changes(tree, tmp_path, TWO_HUNKS)


@pytest.mark.parametrize("bad", ["../outside", "/etc/passwd", "a/../../x", "./x", ".git/config"])
def test_paths_leaving_the_tree_are_refused(bad: str) -> None:
    plus = bad if bad.startswith("/") else f"b/{bad}"
    text = f"--- /dev/null\n+++ {plus}\n@@ -0,0 +1 @@\n+x\n"
    with pytest.raises(KpolicyError, match="escapes the tree") as err:
        parse_patches(text.encode(), "evil.patch")
    assert err.value.file == "evil.patch" and err.value.line == 2


@pytest.mark.parametrize(("text", "line", "what"), [
    ("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n line 1\n-line 2\n", 4,
     "hunk ends early"),
    ("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n line 1\n*line 2\n+x\n", 6,
     "malformed line"),
    ("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -x +1 @@\n", 4, "malformed hunk header"),
    ("diff --git a/f b/f\n--- a/f\n+++ b/f\nindex\n", 3, "has no hunk"),
    ("diff --git a/f b/f\nindex 1..2\nGIT binary patch\nliteral 3\n", 3, "binary"),
    ("Subject: x\nContent-Transfer-Encoding: base64\n\nZGlmZg==\n", 2, "base64"),
])
def test_malformed_patches_name_file_and_line(text: str, line: int, what: str) -> None:
    with pytest.raises(KpolicyError, match=what) as err:
        parse_patches(text.encode(), "bad.patch")
    assert (err.value.file, err.value.line) == ("bad.patch", line)
    with pytest.raises(KpolicyError, match="no diff found"):
        parse_patches(b"Subject: just a mail\n\nhello\n", "mail.eml")


def test_no_newline_markers_and_empty_context_lines() -> None:
    text = (b"--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n\n-c\n\\ No newline at end of file\n"
            b"+c\n")
    sections = parse_patches(text, "p")
    got = apply_all(sections, lambda path: b"a\n\nc")
    assert got["f"].content == b"a\n\nc\n"


def test_scratch_tree_links_unchanged_files_and_never_writes_the_tree(
        tree: Path, tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    (tree / "link").symlink_to("/etc/passwd")
    patch = tmp_path / "p.patch"
    patch.write_text(TWO_HUNKS + NEW_AND_DELETE)
    with scratch.patched_tree(tree, scratch.patch_changes(tree, [patch])) as copy:
        assert (copy / "Makefile").stat().st_ino == (tree / "Makefile").stat().st_ino
        assert (copy / "f.txt").stat().st_ino != (tree / "f.txt").stat().st_ino
        assert b"LINE 26" in (copy / "f.txt").read_bytes()
        assert not (copy / "gone.txt").exists() and (copy / "renamed.txt").is_file()
        assert (copy / "new" / "dir" / "added.c").is_file()
        assert not (copy / "link").exists()  # symlinks are not carried over
    assert not copy.exists()
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file() and not p.is_symlink()} \
        == before


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.usefixtures("stubbed")
def test_cli_reports_only_what_the_patches_introduce(
        tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write_rules(tmp_path / "rules")
    patch = tmp_path / "series.mbx"
    patch.write_text(NEW_AND_DELETE)
    argv = ["lint", "--tree", str(tree), "--rules-dir", str(rules), "--no-cache",
            "--format", "json"]
    code, out, _ = run(argv, capsys)
    assert code == 0 and [f["symbol"] for f in json.loads(out)["findings"]] == ["OLD"]
    code, out, err = run([*argv, "--patch", str(patch)], capsys)
    doc = json.loads(out)
    assert (code, err) == (1, "")  # a new warning fails a patch run
    assert [(f["file"], f["symbol"]) for f in doc["findings"]] == [("new/dir/added.c", "ADDED")]
    assert doc["summary"]["already_known"] == 1
    # A patch that does not apply, and one that leaves the tree: exit 2, one error line.
    patch.write_text(TWO_HUNKS.replace(" line 27\n", " line 28\n"))
    code, out, err = run([*argv, "--patch", str(patch)], capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"{patch}:16: error: f.txt: hunk #2 (@@ -25,3 +26,3 @@")
    patch.write_text("--- a/x\n+++ b/../../etc/cron.d/x\n@@ -0,0 +1 @@\n+x\n")
    code, out, err = run([*argv, "--patch", str(patch)], capsys)
    assert code == 2 and f"{patch}:2: error: path escapes the tree" in err
    assert not (tmp_path / "etc").exists()
    code, _out, err = run([*argv, "--patch", str(patch), "--base", "HEAD"], capsys)
    assert code == 2 and "cannot be combined" in err


@pytest.mark.usefixtures("stubbed")
def test_a_patch_cannot_waive_its_own_findings(
        tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write_rules(tmp_path / "rules")
    patch = tmp_path / "waive.patch"
    patch.write_text(NEW_AND_DELETE + """\
diff --git a/.kpolicy.toml b/.kpolicy.toml
new file mode 100644
--- /dev/null
+++ b/.kpolicy.toml
@@ -0,0 +1,4 @@
+[[waiver]]
+rule = "bad-thing"
+symbol = "ADDED"
+reason = "the patch waives itself"
""")
    code, out, _ = run(["lint", "--tree", str(tree), "--rules-dir", str(rules), "--no-cache",
                        "--format", "json", "--patch", str(patch)], capsys)
    assert code == 1 and [f["symbol"] for f in json.loads(out)["findings"]] == ["ADDED"]


def test_kept_link_farm_is_brought_up_to_date(tree: Path, tmp_path: Path) -> None:
    cache_root = tmp_path / "cache"
    patch = tmp_path / "p.patch"
    patch.write_text(NEW_AND_DELETE)
    with scratch.patched_tree(tree, scratch.patch_changes(tree, [patch]), cache_root) as first:
        assert (first / "new" / "dir" / "added.c").is_file() and not (first / "gone.txt").exists()
        (first / "planted").symlink_to("/etc")  # whatever is left in the farm is not trusted
    # Meanwhile the tree changes: a file replaced (new inode), one removed, one added.
    (tree / "f.txt").unlink()
    (tree / "f.txt").write_text("replaced\n")
    (tree / "old-name.txt").unlink()
    (tree / "mm" / "extra.c").write_text("int extra;\n")
    with scratch.patched_tree(tree, {}, cache_root) as second:
        assert second == first
        assert not (second / "new").exists() and not (second / "planted").is_symlink()
        for rel in ("gone.txt", "f.txt", "mm/extra.c", "Makefile"):
            assert (second / rel).stat().st_ino == (tree / rel).stat().st_ino, rel
        assert not (second / "old-name.txt").exists()
        assert (second / "f.txt").read_text() == "replaced\n"


RACY_NS = 50_000_000  # the test's racy window (2 s in use): a directory changed within it is
SETTLE = 0.1  # listed again; after SETTLE seconds it is not


def test_kept_link_farm_lists_only_the_directories_that_changed(
        tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for rel in ("drivers/net/a.c", "lib/b.c"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(f"/* {rel} */\n")
    listed: list[str] = []
    real = treefs.list_inodes

    def spy(root: Path, rel: str, prune: frozenset[str] = frozenset()) -> object:
        listed.append(rel)
        return real(root, rel, prune)

    monkeypatch.setattr(treefs, "list_inodes", spy)
    monkeypatch.setattr(scratch, "_RACY_NS", RACY_NS)
    cache_root = tmp_path / "cache"

    def sync(patch: str = "", settle: bool = True) -> Path:
        if settle:
            time.sleep(SETTLE)
        listed.clear()
        found = changes(tree, tmp_path, patch) if patch else {}
        with scratch.patched_tree(tree, {p: scratch.Change(c) for p, c in found.items()},
                                  cache_root) as farm:
            return farm

    every = ["", "arch", "arch/arm64", "arch/x86", "drivers", "drivers/net", "lib", "mm"]
    farm = sync(NEW_AND_DELETE)
    assert sorted(listed) == every and (farm / "new/dir/added.c").is_file()
    # Edited in place (same inode): no directory changes, the link shows the new bytes.
    with open(tree / "lib/b.c", "w") as f:
        f.write("edited in place\n")
    sync()
    assert listed == [""]  # the top, where the last patch added, removed and renamed
    assert not (farm / "new").exists() and (farm / "gone.txt").is_file()
    assert (farm / "lib/b.c").read_text() == "edited in place\n"
    # A file added; one replaced by a rename, its directory's mtime set back as `rsync -a`
    # does (the ctime still moves); one planted in the farm; a patch to mm/.
    time.sleep(SETTLE)
    (tree / "drivers/net/c.c").write_text("int c;\n")
    before = (tree / "lib").stat()
    (tree / "lib/b.new").write_text("replaced\n")
    os.rename(tree / "lib/b.new", tree / "lib/b.c")
    os.utime(tree / "lib", ns=(before.st_atime_ns, before.st_mtime_ns))
    (farm / "arch/x86/planted").write_text("not from the tree\n")
    sync("--- a/mm/Kconfig\n+++ b/mm/Kconfig\n@@ -1 +1 @@\n-config A\n+config B\n")
    assert sorted(listed) == ["", "arch/x86", "drivers/net", "lib"]
    for rel in ("drivers/net/c.c", "lib/b.c"):
        assert (farm / rel).stat().st_ino == (tree / rel).stat().st_ino, rel
    assert not (farm / "arch/x86/planted").exists()
    assert (farm / "mm/Kconfig").read_text().startswith("config B")
    # mm/ again, to undo the patch; a directory changed just before a run is listed again
    # by the next one too.
    (tree / "lib/d.c").write_text("int d;\n")
    sync(settle=False)
    assert sorted(listed) == ["", "lib", "mm"]
    assert (farm / "mm/Kconfig").stat().st_ino == (tree / "mm/Kconfig").stat().st_ino
    sync()
    assert sorted(listed) == ["", "lib"] and (farm / "lib/d.c").is_file()
    # A record that does not verify, or of another format: every directory is listed again.
    record = (cache_root / "patch-trees").joinpath(
        os.listdir(cache_root / "patch-trees")[0], "manifest.pickle")
    record.write_bytes(b"forged")
    sync()
    assert sorted(listed) == every
    store_sealed(cache_root, record, ("farm-mtimes-0", "", b""))
    sync()
    assert sorted(listed) == every


@pytest.mark.parametrize("target", ["evil/passwd", "evil/new-file"])
def test_a_patch_through_a_tree_symlink_leading_out_is_refused(
        tree: Path, tmp_path: Path, target: str) -> None:
    (tree / "evil").symlink_to("/etc")
    if target.endswith("new-file"):
        text = f"--- /dev/null\n+++ b/{target}\n@@ -0,0 +1 @@\n+x\n"
    else:
        text = f"--- a/{target}\n+++ b/{target}\n@@ -1,1 +1 @@\n-root:x:0:0::/root:/bin/sh\n+x\n"
    patch = tmp_path / "through-link.patch"
    patch.write_text(text)
    with pytest.raises(KpolicyError, match="outside the tree"):
        scratch.patch_changes(tree, [patch])
