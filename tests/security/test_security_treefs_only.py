"""kpolicy.treefs is the only way kpolicy opens, lists or walks a tree (issue #11). An AST scan of
every module lists each call that opens or lists files outside treefs; each must be on the list
below, with what it reads (never a tree). A new call that reads files fails here until it is
either routed through treefs or listed with a reason that holds."""

from __future__ import annotations

import ast
from pathlib import Path

import kpolicy

FILE_CALLS = frozenset({"open", "read_text", "read_bytes", "rglob", "glob", "iterdir", "walk",
                        "scandir", "listdir", "fwalk"})

# module -> calls (as `base.name`, base "" for a bare name) that read no tree, and why
NOT_TREE_READS: dict[str, dict[str, str]] = {
    "analysis.py": {"root.iterdir": "kpolicy's rules directory", "sub.glob": "rules directory"},
    "cache.py": {"os.open": "cache entries and the cache key",
                 "directory.iterdir": "cache pruning",
                 "os.scandir": "own sources and grammars (the code fingerprint)"},
    "kconfig/dotconfig.py": {"read_text": "a .config the user names (textio)"},
    "kconfig/load.py": {"read_text": "the user's .config (textio)", "walk": "menu tree walk"},
    "kconfig/targets.py": {"walk": "menu tree walk"},
    "lint/baseline.py": {"read_text": "the user's baseline file (textio)"},
    "lint/gitbase.py": {"slots.iterdir": "base-tree slots under the cache",
                        "open": "slot lock files under the cache"},
    "lint/scratch.py": {"read_bytes": "the patch files the user names (textio)",
                        "os.scandir": "the link farm kpolicy owns, by descriptor",
                        "open": "slot lock files under the cache"},
    "lint/treewrite.py": {"os.open": "the base or patched copy kpolicy writes, per-component "
                                     "O_NOFOLLOW"},
    "lint/resultcache.py": {"top.rglob": "rules directories (kpolicy's or the user's): cache key",
                            "path.read_bytes": "rules files (cache key)"},
    "lint/rules_loader.py": {"root.glob": "rules directory (kpolicy's or the user's)"},
    "params/docs.py": {"grammar_path('kernel_params.lark').read_text": "own grammar",
                       "grammar_path(g).read_bytes": "own grammars"},
    "params/formats.py": {"grammar_path('param_format.lark').read_text": "own grammar"},
    "params/scan.py": {"here / name.read_bytes": "own sources (cache key)"},
    "params/semantics.py": {"directory.glob": "declaration directory",
                            "read_text": "declarations (textio)"},
    "resolve/api.py": {"p.read_bytes": "own rules"},
    "resolve/bundle.py": {"read_bytes": "a model file (textio)", "BUNDLED_DIR.glob": "own data"},
    "resolve/command.py": {"read_text": "command-line and bootconfig files the user names",
                           "read_bytes": "the user's kernel config (textio; --tree's cache key)",
                           "bundled_policy_dir().glob": "own policies"},
    "resolve/lsm.py": {"read_text": "the LSM table (rules/lsm, or a path the caller names)"},
    "resolve/inputs.py": {"read_bytes": "the user's kernel config", "var.read_bytes": "efivars",
                          "Path('/sys/firmware/efi/efivars').glob": "efivars",
                          "Path('/proc/meminfo').read_text": "this machine's RAM",
                          "Path('/proc/cpuinfo').read_text": "this machine's CPU flags"},
    "policy/command.py": {"read_text": "command-line and bootconfig files the user names"},
    "policy/schema.py": {"bundled_policy_dir().glob": "own policies",
                         "p.read_bytes": "own policies (cache key)"},
    "sysctl/running.py": {"proc_sys / path.replace('.', '/').read_text": "this machine's sysctls"},
    "sysctl/spec.py": {"read_text": "sysctl declarations (rules)"},
    "sysctl/sysctld.py": {"d.iterdir": "the system's sysctl.d directories",
                          "read_text": "the system's sysctl.d files (textio)"},
    "textio.py": {"read_text": "user-named files", "read_bytes": "user-named files",
                  "open": "user-named files and outputs"},
}


def _file_calls(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in FILE_CALLS:
                found.add(f"{ast.unparse(f.value)}.{f.attr}")
            elif isinstance(f, ast.Name) and f.id in FILE_CALLS:
                found.add(f.id)
    return found


def test_only_treefs_reads_files_of_a_tree() -> None:
    package = Path(kpolicy.__file__).parent
    unlisted: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel == "treefs.py":
            continue
        calls = {c for c in _file_calls(path) if not c.startswith("treefs.")}
        extra = sorted(calls - set(NOT_TREE_READS.get(rel, {})))
        if extra:
            unlisted[rel] = extra
    assert unlisted == {}


def test_the_list_names_only_calls_that_exist() -> None:
    package = Path(kpolicy.__file__).parent
    stale = {rel: sorted(set(calls) - _file_calls(package / rel))
             for rel, calls in NOT_TREE_READS.items()}
    assert {k: v for k, v in stale.items() if v} == {}
