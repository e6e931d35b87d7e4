"""load_model: a tree's Kconfig for one arch, evaluated like `make olddefconfig`, cached.

Two cache levels. "kconfig-files" maps (tree, arch, toolchain) to the list of Kconfig files the
last parse read, with their hashes; if every one still has the same content, the parse would
read exactly the same files, so their digest keys "kconfig-model" (the parsed model) and
"kconfig-eval" (the model evaluated with one input .config). A warm run hashes ~1700 small
files and unpickles; it never parses Kconfig.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Optional

from kpolicy.cache import Cache, content_key
from kpolicy.kconfig.dotconfig import parse_dotconfig
from kpolicy.kconfig.evaluate import evaluate, user_values
from kpolicy.kconfig.model import KconfigModel, MenuEntry
from kpolicy.kconfig.parse import ParsedKconfig, files_digest, parse_kconfig
from kpolicy.kconfig.toolchain import Toolchain, default_toolchain
from kpolicy.textio import atomic_write_bytes, read_text
from kpolicy.tree import KernelTree

# Bump when parse/evaluate change what they produce, so old cache entries are not reused.
ENGINE_VERSION = "kconfig-1"


def _parsed(tree: KernelTree, arch: str, toolchain: Toolchain, cache: Cache) -> ParsedKconfig:
    index_key = content_key(ENGINE_VERSION, str(tree.root), tree.version, arch, toolchain.key())
    files = cache.load("kconfig-files", index_key)
    if isinstance(files, tuple):
        digest = files_digest(tree.root, files)
        if digest is not None:
            hit = cache.load("kconfig-model", content_key(index_key, digest))
            if isinstance(hit, ParsedKconfig):
                return hit
    parsed = parse_kconfig(tree, arch, toolchain)
    digest = files_digest(tree.root, parsed.files)
    cache.store("kconfig-files", index_key, parsed.files)
    if digest is not None:
        cache.store("kconfig-model", content_key(index_key, digest), parsed)
    return parsed


def load_model(
    tree: KernelTree,
    arch: str,
    *,
    config: Optional[Path] = None,
    toolchain: Optional[Toolchain] = None,
    cache: Optional[Cache] = None,
) -> KconfigModel:
    """TREE's Kconfig for ARCH with every value `make ARCH=arch olddefconfig` gives CONFIG (or none)."""
    toolchain = toolchain or default_toolchain()
    cache = cache or Cache(enabled=False)
    srcarch = tree.srcarch(arch)
    config_text = read_text(config, what=".config") if config is not None else ""
    parsed = _parsed(tree, arch, toolchain, cache)
    eval_key = content_key(ENGINE_VERSION, parsed.files, arch, toolchain.key(),
                           hashlib.sha256(config_text.encode()).hexdigest())

    def build() -> KconfigModel:
        warnings: list[str] = []
        dot = parse_dotconfig(config_text, str(config)) if config is not None else None
        types = {name: sym.type for name, sym in parsed.symbols.items()}
        user = user_values(dot.raw, types, warnings.append) if dot is not None else {}
        result = evaluate(parsed.symbols, parsed.choices, user)
        return KconfigModel(
            version=tree.version,
            arch=arch,
            srcarch=srcarch,
            toolchain=toolchain.name,
            symbols=parsed.symbols,
            choices=parsed.choices,
            values=result.values,
            written=result.written,
            menu=parsed.menu,
            mainmenu=parsed.mainmenu,
            tool_derived=parsed.tool_derived,
            warnings=(dot.warnings if dot is not None else ()) + tuple(warnings),
        )

    model = cache.get_or_build("kconfig-eval", eval_key, build)
    return replace(model, toolchain=toolchain.name) if model.toolchain != toolchain.name else model


def _escape(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dotconfig_text(model: KconfigModel) -> str:
    """The .config C conf_write would write for MODEL: header, menu comments, written symbols."""
    from kpolicy.kconfig.evaluate import tri_of, value_lookup

    types = {n: s.type for n, s in model.symbols.items()}
    lookup = value_lookup(model.values, types)
    out = ["#\n# Automatically generated file; DO NOT EDIT.\n", f"# {model.mainmenu}\n#\n"]
    seen: set[str] = set()
    need_newline = False

    def symbol_line(name: str) -> Optional[str]:
        sym = model.symbols[name]
        value = model.values.get(name, "")
        if sym.type in ("bool", "tristate"):
            return f"# CONFIG_{name} is not set\n" if value == "n" else f"CONFIG_{name}={value}\n"
        if sym.type == "string":
            return f"CONFIG_{name}={_escape(value)}\n"
        return f"CONFIG_{name}={value}\n"

    def walk(entries: tuple[MenuEntry, ...]) -> None:
        nonlocal need_newline
        for e in entries:
            if e.kind in ("menu", "comment"):
                shown = tri_of(e.visible, lookup) > 0
                if shown:
                    out.append(f"\n#\n# {e.name}\n#\n")
                    need_newline = False
                walk(e.children)
                if shown and e.kind == "menu":
                    out.append(f"# end of {e.name}\n")
                    need_newline = True
                continue
            if e.kind == "symbol" and e.name not in seen:
                seen.add(e.name)
                if e.name in model.written and model.symbols[e.name].type != "unknown":
                    line = symbol_line(e.name)
                    if line is not None:
                        if need_newline:
                            out.append("\n")
                            need_newline = False
                        out.append(line)
            walk(e.children)

    walk(model.menu)
    return "".join(out)


def write_dotconfig(model: KconfigModel, path: Path) -> None:
    """Write MODEL's configuration to PATH in the format and order C conf writes a .config."""
    atomic_write_bytes(path, dotconfig_text(model).encode())
