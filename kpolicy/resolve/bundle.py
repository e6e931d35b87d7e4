"""Resolve models on disk: deterministic gzip'd JSON (resolve/codec.py), the bundled ones in
kpolicy/bundled/ and the choice among them. Reading one imports neither lark nor kconfiglib.

A model (resolve/model.py, made by resolve/compact.py) holds the Kconfig symbols the features
and families involve, with the transitive closure of their dependencies, defaults and selects,
the values Kconfig gives them with no input config, the tree's boot-parameter registrations,
the families and COMMAND_LINE_SIZE.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path
from typing import Optional

from kpolicy.cache import Cache, content_key
from kpolicy.errors import KpolicyError
from kpolicy.kconfig.model import LazySymbols
from kpolicy.kernel import fold_param, parse_version
from kpolicy.longlived import long_lived
from kpolicy.resolve.codec import compact_json, dataclass_decoder, decoder, encode
from kpolicy.resolve.lazy import LazyRegistrations
from kpolicy.resolve.model import ResolveModel
from kpolicy.textio import gunzip, read_bytes

SCHEMA = "kpolicy-resolve-model"
SCHEMA_VERSION = 1
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "bundled"
MAX_MODEL_BYTES = 8 * 1024 * 1024  # gzip'd; the bundled ones are well under 2 MB
MAX_MODEL_JSON_BYTES = 128 * 1024 * 1024  # once gunzipped: a bound on gzip bombs


def model_to_bytes(model: ResolveModel) -> bytes:
    """The model as deterministic gzip'd JSON (same model, same bytes)."""
    doc = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        **encode(dataclasses.replace(model, origin="")),
    }
    doc.pop("origin", None)
    # Each symbol is a JSON text of its own: readers decode only the symbols they look up.
    doc["kconfig"]["symbols"] = {n: compact_json(s) for n, s in doc["kconfig"]["symbols"].items()}
    # Registrations likewise, behind what selecting them needs: [built_if, folded name, JSON].
    doc["catalog"]["registrations"] = [
        [r.get("built_if"), fold_param(r["name"]), compact_json(r)]
        for r in doc["catalog"]["registrations"]
    ]
    text = compact_json(doc)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def model_from_bytes(data: bytes, *, file: str) -> ResolveModel:
    """Decode a model written by model_to_bytes, or raise KpolicyError naming FILE."""
    if data[:2] == b"\x1f\x8b":
        data = gunzip(data, file=file, what="resolve model", limit=MAX_MODEL_JSON_BYTES)
    try:
        doc = json.loads(data)
    except (OSError, EOFError, ValueError, RecursionError) as exc:
        raise KpolicyError(f"not a kpolicy resolve model: {exc}", file=file) from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise KpolicyError("not a kpolicy resolve model", file=file)
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise KpolicyError(
            f"resolve model schema {doc.get('schema_version')} is not supported "
            f"(this kpolicy reads {SCHEMA_VERSION}); rebuild it with `kpolicy model build`",
            file=file,
        )
    try:
        symbols, doc["kconfig"]["symbols"] = doc["kconfig"]["symbols"], {}
        rows, doc["catalog"]["registrations"] = doc["catalog"]["registrations"], []
        model: ResolveModel = dataclass_decoder(ResolveModel)(doc)
        decode = decoder("Symbol")
        kconfig = dataclasses.replace(
            model.kconfig, symbols={n: decode(json.loads(t)) for n, t in symbols.items()}
        )
        catalog = dataclasses.replace(model.catalog, registrations=LazyRegistrations(rows))
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
        raise KpolicyError(f"damaged resolve model: {exc!r}", file=file) from None
    return dataclasses.replace(model, kconfig=kconfig, catalog=catalog, origin=file)


def read_model(path: Path, cache: Optional[Cache] = None) -> ResolveModel:
    """The resolve model stored in PATH, decoded once per content into CACHE when one is given."""
    if cache is None or not cache.enabled:
        return model_from_bytes(read_bytes(path, what="resolve model", limit=MAX_MODEL_BYTES),
                                file=str(path))
    if path.parent == BUNDLED_DIR:
        # shipped with kpolicy: keyed as its code is (cache.code_fingerprint), by name, size
        # and modification time, without reading and hashing it on every run
        st = path.stat()
        key = content_key("resolve-model", str(path), st.st_size, st.st_mtime_ns)
    else:
        key = content_key("resolve-model", read_bytes(path, what="resolve model",
                                                      limit=MAX_MODEL_BYTES))

    def build() -> ResolveModel:
        data = read_bytes(path, what="resolve model", limit=MAX_MODEL_BYTES)
        return _quick_to_load(model_from_bytes(data, file=str(path)))

    # the model lives as long as the run: the cyclic collector is kept off it (long_lived), or
    # each collection of the whole heap would rescan its ~100,000 objects
    with long_lived():
        model = cache.get_or_build("resolve-model", key, build, ResolveModel)
    return dataclasses.replace(model, origin=str(path))


def cache_form(model: ResolveModel, *, file: str) -> ResolveModel:
    """MODEL (built from a tree) as a bundled model is cached: through the bundle format (its
    compact registrations), then packed for a quick load; FILE names it in decoding errors."""
    return _quick_to_load(model_from_bytes(model_to_bytes(model), file=file))


def _quick_to_load(model: ResolveModel) -> ResolveModel:
    """MODEL as the cache keeps it: symbols and registrations packed one by one, decoded on
    first use (a run reads a few dozen symbols and a tenth of the registrations), and without
    the catalog's kconfig_symbols, which resolve never reads (20,000 names to unpickle)."""
    regs = model.catalog.registrations
    assert isinstance(regs, LazyRegistrations)
    kconfig = dataclasses.replace(model.kconfig, symbols=LazySymbols.of(model.kconfig.symbols))
    catalog = dataclasses.replace(
        model.catalog, registrations=regs.packed(), kconfig_symbols=frozenset()
    )
    return dataclasses.replace(model, kconfig=kconfig, catalog=catalog, origin="")


# The ARCH (as given to make) of each bundled model set; a config's header names its SRCARCH.
BUNDLED_ARCHES = ("x86_64", "arm64")
DEFAULT_ARCH = "x86_64"
_ARCH_OF_SRCARCH = {"x86": "x86_64", "x86_64": "x86_64", "arm64": "arm64"}
# os.uname().machine of the bundled arches
_ARCH_OF_MACHINE = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def bundled_arch(srcarch: Optional[str]) -> Optional[str]:
    """The bundled models' ARCH for a config header's SRCARCH ("x86", "arm64"), or None."""
    return _ARCH_OF_SRCARCH.get(srcarch or "")


def machine_arch(machine: str) -> Optional[str]:
    """The bundled models' ARCH for a machine name as uname gives it ("aarch64"), or None."""
    return _ARCH_OF_MACHINE.get(machine)


def bundled_models(arch: str = DEFAULT_ARCH) -> dict[str, Path]:
    """Shipped models of ARCH by kernel version ("7.2.13" -> path), oldest first."""
    found = {}
    suffix = f"-{arch}.json.gz"
    for path in BUNDLED_DIR.glob(f"linux-*{suffix}"):
        found[path.name[len("linux-") : -len(suffix)]] = path
    return dict(sorted(found.items(), key=lambda kv: parse_version(kv[0])))


def pick_bundled(version: Optional[str], arch: str = DEFAULT_ARCH) -> tuple[Path, Optional[str]]:
    """The bundled ARCH model for a config of VERSION, and a warning when it is not an exact
    match."""
    models = bundled_models(arch)
    if not models:
        raise KpolicyError(
            f"this kpolicy ships no bundled {arch} models (it has {', '.join(BUNDLED_ARCHES)}); "
            "pass --model FILE or --tree DIR"
        )
    newest = next(reversed(models))
    if version is None:
        return models[newest], f"the config names no kernel version; using the Linux {newest} model"
    if version in models:
        return models[version], None
    want = parse_version(version)
    same_series = [v for v in models if parse_version(v)[:2] == want[:2]]
    if same_series:
        v = same_series[-1]
        return models[v], f"no bundled model for Linux {version}; using {v} (same series)"
    older = [v for v in models if parse_version(v) <= want]
    v = older[-1] if older else next(iter(models))
    return models[v], f"no bundled model for Linux {version}; using the nearest, {v}"
