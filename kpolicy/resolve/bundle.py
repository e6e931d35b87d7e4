"""Compact resolve models: what `kpolicy resolve` needs from a tree, as deterministic gzip'd JSON.

A model holds the Kconfig symbols the features and families involve (with the transitive
closure of their dependencies, defaults and selects), the values Kconfig gives them with no
input config, the tree's boot-parameter registrations, the families and COMMAND_LINE_SIZE.
It is made of kpolicy's own frozen model types, so the engine reads a bundled model and a
freshly loaded tree the same way. Reading one imports neither lark nor kconfiglib.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import marshal
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from kpolicy.cache import Cache, content_key
from kpolicy.errors import KpolicyError
from kpolicy.families import model as families_model
from kpolicy.families.model import Family
from kpolicy.kconfig import model as kconfig_model
from kpolicy.kconfig.model import Definition, Expr, KconfigModel, LazySymbols, Location
from kpolicy.kernel import fold_param, parse_version
from kpolicy.params import model as params_model
from kpolicy.params.model import Catalog, Registration
from kpolicy.textio import gunzip, read_bytes

SCHEMA = "kpolicy-resolve-model"
SCHEMA_VERSION = 1
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "bundled"
MAX_MODEL_BYTES = 8 * 1024 * 1024  # gzip'd; the bundled ones are well under 2 MB
MAX_MODEL_JSON_BYTES = 128 * 1024 * 1024  # once gunzipped: a bound on gzip bombs

# Symbols the command-line side needs beyond the features' own: the built-in command line
# and init's argument limit.
CMDLINE_SYMBOLS = (
    "CMDLINE_BOOL",
    "CMDLINE",
    "CMDLINE_OVERRIDE",
    "CMDLINE_EXTEND",
    "CMDLINE_FORCE",
    "CMDLINE_FROM_BOOTLOADER",
    "INIT_ENV_ARG_LIMIT",
    "LSM",
    "MODULES",
    "64BIT",
)


@dataclass(frozen=True)
class ResolveModel:
    """Everything resolve reads about one (tree, arch)."""

    version: str  # KERNELVERSION, e.g. "7.2.13"
    arch: str
    srcarch: str
    command_line_size: int
    kconfig: KconfigModel  # the involved symbols; values = Kconfig's answer with no input config
    catalog: Catalog
    families: tuple[Family, ...] = ()
    origin: str = ""  # where the model came from, for messages ("bundled", a path, a tree)

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        """(VERSION, PATCHLEVEL, SUBLEVEL) of the tree the model was made from."""
        return parse_version(self.version)


# --- encoding ---------------------------------------------------------------------------------


def _encode(value: object) -> Any:
    if isinstance(value, Expr):
        return [value.op, *(_encode(a) for a in value.args)]
    if isinstance(value, Location):
        return [value.file, value.line]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.default is not dataclasses.MISSING and v == f.default:
                continue  # defaults stay implicit: smaller, and new fields do not churn old models
            if f.default_factory is not dataclasses.MISSING and v == f.default_factory():
                continue
            out[f.name] = _encode(v)
        return out
    if isinstance(value, (tuple, list, LazyRegistrations)):
        return [_encode(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_encode(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in sorted(value.items())}
    return value


_CLASSES: dict[str, type] = {
    name: obj
    for module in (kconfig_model, params_model, families_model)
    for name, obj in vars(module).items()
    if isinstance(obj, type) and dataclasses.is_dataclass(obj)
}
_DECODERS: dict[str, Callable[[Any], Any]] = {}


def _decoder(type_text: str) -> Callable[[Any], Any]:
    """A function turning JSON back into the annotated type TYPE_TEXT (cached per annotation)."""
    hit = _DECODERS.get(type_text)
    if hit is not None:
        return hit
    t = type_text.replace(" ", "")
    fn: Callable[[Any], Any]
    if t.startswith("Optional[") and t.endswith("]"):
        inner = _decoder(t[len("Optional[") : -1])
        fn = lambda v: None if v is None else inner(v)  # noqa: E731
    elif t.startswith("tuple[") and t.endswith(",...]"):
        item = _decoder(t[len("tuple[") : -len(",...]")])
        fn = lambda v: tuple(item(x) for x in v)  # noqa: E731
    elif t.startswith("Mapping[str,") or t.startswith("dict[str,"):
        item = _decoder(t[t.index(",") + 1 : -1])
        fn = lambda v: {k: item(x) for k, x in v.items()}  # noqa: E731
    elif t in ("Expr", "Union[Expr,str]"):
        fn = _decode_expr
    elif t == "Location":
        fn = lambda v: Location(v[0], v[1])  # noqa: E731
    elif t in _CLASSES:
        fn = _dataclass_decoder(_CLASSES[t])
    elif t.startswith("tuple[") or t.startswith("frozenset["):
        fn = tuple if t.startswith("tuple[") else frozenset
    else:  # str, int, bool
        fn = _identity
    _DECODERS[type_text] = fn
    return fn


def _decode_expr(v: Any) -> Any:
    if isinstance(v, str):
        return v
    return Expr(v[0], tuple(_decode_expr(a) for a in v[1:]))


def _identity(v: Any) -> Any:
    return v


def _dataclass_decoder(cls: type) -> Callable[[Any], Any]:
    """Decode JSON objects into CLS; fields left out take their defaults.

    Objects are filled through __dict__, as unpickling does: a frozen dataclass's __init__
    costs a call per field, and a model holds thousands of registrations.
    """
    annotations = [
        (f.name, f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "object"))
        for f in dataclasses.fields(cls)
    ]
    defaults = {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }
    factories = [
        (f.name, f.default_factory)
        for f in dataclasses.fields(cls)
        if f.default_factory is not dataclasses.MISSING
    ]
    required = {f.name for f in dataclasses.fields(cls)} - set(defaults) - {n for n, _ in factories}
    converters: dict[str, Callable[[Any], Any]] = {}  # filled on first use: types may recurse

    def decode(v: Any) -> Any:
        if not converters:
            converters.update((name, _decoder(text)) for name, text in annotations)
        if not required <= v.keys():
            raise KeyError(f"{cls.__name__} needs {', '.join(sorted(required - v.keys()))}")
        obj: Any = object.__new__(cls)
        state = dict(defaults)
        state.update((name, factory()) for name, factory in factories)
        for name, value in v.items():
            convert = converters.get(name)
            if convert is not None:  # a field this kpolicy does not know is dropped
                state[name] = value if convert is _identity or value is None else convert(value)
        obj.__dict__.update(state)
        return obj

    return decode


class LazyRegistrations(Sequence[Registration]):
    """A model's registrations, decoded all at once on first use, or a chosen few with select().

    A config builds in about a tenth of the registrations a tree has; resolving one command
    line needs only those and the few the command line names.
    """

    def __init__(self, rows: Sequence[Sequence[Any]]) -> None:
        # rows: [built_if or null, folded name, the registration as JSON text (a model file's)
        # or marshal'd (a cached model's: many times faster to decode)], kept as three
        # columns: a cached model loads them much faster than thousands of small lists.
        self._built_if, self._names, self._texts = (
            tuple(column) for column in (zip(*rows) if rows else ((), (), ()))
        )
        self._all: Optional[tuple[Registration, ...]] = None
        self._named: dict[frozenset[str], tuple[Registration, ...]] = {}

    def _decoded(self) -> tuple[Registration, ...]:
        if self._all is None:
            self._all = tuple(map(_registration, self._texts))
        return self._all

    def packed(self) -> LazyRegistrations:
        """The same registrations with each one marshal'd (and equal built_if strings shared)."""
        return LazyRegistrations(
            [
                (built_if and sys.intern(built_if), name, _pack_registration(reg))
                for built_if, name, reg in zip(self._built_if, self._names, self._decoded())
            ]
        )

    def select(self, built: Mapping[str, str], names: frozenset[str]) -> tuple[Registration, ...]:
        """The registrations built in under BUILT (config values), plus those named in NAMES."""
        everything = bool(built)  # an empty BUILT selects by name only
        if self._all is not None:
            return tuple(
                r
                for r in self._all
                if (everything and (r.built_if is None or built.get(r.built_if) == "y"))
                or fold_param(r.name) in names
            )
        return tuple(
            _registration(text)
            for built_if, name, text in zip(self._built_if, self._names, self._texts)
            if (everything and (built_if is None or built.get(built_if) == "y")) or name in names
        )

    def named(self, names: frozenset[str]) -> tuple[Registration, ...]:
        """Only the registrations whose ('-'/'_'-folded) name is in NAMES."""
        hit = self._named.get(names)  # a batch asks for the features' names once per line
        if hit is None:
            if len(self._named) >= 64:
                self._named.clear()
            hit = self._named[names] = (
                self.select({}, names)
                if self._all is None
                else tuple(r for r in self._all if fold_param(r.name) in names)
            )
        return hit

    def __getitem__(self, index: Any) -> Any:
        return self._decoded()[index]

    def __len__(self) -> int:
        return len(self._texts)

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._decoded())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]


_REGISTRATION_FIELDS = tuple(f.name for f in dataclasses.fields(Registration))


def _pack_registration(reg: Registration) -> bytes:
    """REG's field values, the location as (file, line), marshal'd."""
    values = [getattr(reg, name) for name in _REGISTRATION_FIELDS]
    return marshal.dumps(tuple((v.file, v.line) if isinstance(v, Location) else v for v in values))


def _registration(row: Any) -> Registration:
    """A registration from its JSON text or from _pack_registration()'s bytes."""
    if not isinstance(row, bytes):
        return _decoder("Registration")(json.loads(row))  # type: ignore[no-any-return]
    # filled through __dict__ like _dataclass_decoder(): a frozen __init__ costs a call per field
    state = dict(zip(_REGISTRATION_FIELDS, marshal.loads(row)))
    state["location"] = Location(*state["location"])
    reg: Any = object.__new__(Registration)
    reg.__dict__.update(state)
    return reg  # type: ignore[no-any-return]


def _compact_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- reading and writing ----------------------------------------------------------------------


def model_to_bytes(model: ResolveModel) -> bytes:
    """The model as deterministic gzip'd JSON (same model, same bytes)."""
    doc = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        **_encode(dataclasses.replace(model, origin="")),
    }
    doc.pop("origin", None)
    # Each symbol is a JSON text of its own: readers decode only the symbols they look up.
    doc["kconfig"]["symbols"] = {n: _compact_json(s) for n, s in doc["kconfig"]["symbols"].items()}
    # Registrations likewise, behind what selecting them needs: [built_if, folded name, JSON].
    doc["catalog"]["registrations"] = [
        [r.get("built_if"), fold_param(r["name"]), _compact_json(r)]
        for r in doc["catalog"]["registrations"]
    ]
    text = _compact_json(doc)
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
        model = _dataclass_decoder(ResolveModel)(doc)
        model.catalog.__dict__["registrations"] = LazyRegistrations(rows)
        decode = _decoder("Symbol")
        model.kconfig.__dict__["symbols"] = {n: decode(json.loads(t)) for n, t in symbols.items()}
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
        raise KpolicyError(f"damaged resolve model: {exc!r}", file=file) from None
    return dataclasses.replace(model, origin=file)  # type: ignore[no-any-return]


def read_model(path: Path, cache: Optional[Cache] = None) -> ResolveModel:
    """The resolve model stored in PATH, decoded once per content into CACHE when one is given."""
    data = read_bytes(path, what="resolve model", limit=MAX_MODEL_BYTES)
    if cache is None or not cache.enabled:
        return model_from_bytes(data, file=str(path))
    model = cache.get_or_build(
        "resolve-model",
        content_key("resolve-model", data),
        lambda: _quick_to_load(model_from_bytes(data, file=str(path))),
        ResolveModel,
    )
    return dataclasses.replace(model, origin=str(path))


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


def bundled_models() -> dict[str, Path]:
    """Shipped models by kernel version ("7.2.13" -> path), oldest first."""
    found = {}
    for path in BUNDLED_DIR.glob("linux-*-x86_64.json.gz"):
        found[path.name[len("linux-") : -len("-x86_64.json.gz")]] = path
    return dict(sorted(found.items(), key=lambda kv: _version_key(kv[0])))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version)[:3])


def pick_bundled(version: Optional[str]) -> tuple[Path, Optional[str]]:
    """The bundled model for a config of VERSION, and a warning when it is not an exact match."""
    models = bundled_models()
    if not models:
        raise KpolicyError("this kpolicy ships no bundled models; pass --model FILE or --tree DIR")
    newest = next(reversed(models))
    if version is None:
        return models[newest], f"the config names no kernel version; using the Linux {newest} model"
    if version in models:
        return models[version], None
    want = _version_key(version)
    same_series = [v for v in models if _version_key(v)[:2] == want[:2]]
    if same_series:
        v = same_series[-1]
        return models[v], f"no bundled model for Linux {version}; using {v} (same series)"
    older = [v for v in models if _version_key(v) <= want]
    v = older[-1] if older else next(iter(models))
    return models[v], f"no bundled model for Linux {version}; using the nearest, {v}"


# --- building ---------------------------------------------------------------------------------


def symbol_closure(kconfig: KconfigModel, roots: Iterable[str]) -> frozenset[str]:
    """ROOTS plus, transitively, every symbol their dependencies, defaults and selects refer to."""
    seen: set[str] = set()
    work = [r for r in roots if r in kconfig.symbols]
    choices_of = {c.name: c for c in kconfig.choices}
    while work:
        name = work.pop()
        if name in seen:
            continue
        seen.add(name)
        sym = kconfig.symbols[name]
        exprs: list[Optional[Expr]] = [sym.direct_dep]
        exprs += [d.depends_on for d in sym.definitions]
        exprs += [p.condition for p in sym.prompts]
        exprs += [e for d in sym.defaults for e in (d.value, d.condition)]
        exprs += [r.condition for r in sym.selected_by + sym.implied_by]
        refs = {n for e in exprs if e is not None for n in e.symbols()}
        refs |= {r.source for r in sym.selected_by + sym.implied_by}
        if sym.choice and sym.choice in choices_of:
            refs |= set(choices_of[sym.choice].members)
            if choices_of[sym.choice].direct_dep is not None:
                refs |= choices_of[sym.choice].direct_dep.symbols()  # type: ignore[union-attr]
        work.extend(n for n in refs if n in kconfig.symbols and n not in seen)
    return frozenset(seen)


def compact_model(
    kconfig: KconfigModel,
    catalog: Catalog,
    families: tuple[Family, ...],
    roots: Iterable[str],
    command_line_size: int,
) -> ResolveModel:
    """A ResolveModel keeping only the symbols reachable from ROOTS and the families' members."""
    roots = set(roots) | set(CMDLINE_SYMBOLS)
    for fam in families:
        roots |= {fam.option, *(s for s in (fam.capability, fam.default_companion) if s)}
    for c in kconfig.choices:
        if c.name in roots:
            roots |= set(c.members)
    keep = symbol_closure(kconfig, roots)
    choices = tuple(c for c in kconfig.choices if set(c.members) & keep)
    # Values of every symbol the parameter registrations are built under, too: the command-line
    # side needs them to know which parameters exist when no config is given.
    wanted_values = keep | {r.built_if for r in catalog.registrations if r.built_if}
    values = {n: v for n, v in kconfig.values.items() if n in wanted_values and v != "n"}
    # Only what explains a value: no help texts, menus or forward select/imply lists (the
    # reverse edges, selected_by/implied_by, are what decide a symbol's value).
    symbols = {}
    for n in sorted(keep):
        sym = kconfig.symbols[n]
        defs = tuple(Definition(d.location, d.depends_on) for d in sym.definitions)
        symbols[n] = dataclasses.replace(sym, definitions=defs, selects=(), implies=())
    small = KconfigModel(
        version=kconfig.version,
        arch=kconfig.arch,
        srcarch=kconfig.srcarch,
        toolchain=kconfig.toolchain,
        symbols=symbols,
        choices=choices,
        values=values,
    )
    # Registrations under another arch's directory are never built for this one.
    other_arch = tuple(f"arch/{a}/" for a in _arch_dirs(catalog) if a != kconfig.srcarch)
    registrations = tuple(
        r for r in catalog.registrations if not r.location.file.startswith(other_arch)
    )
    docs_wanted = {p for fam in families for p in fam.params}
    small_catalog = dataclasses.replace(
        catalog,
        registrations=registrations,
        docs=tuple(d for d in catalog.docs if set(d.names) & docs_wanted),
        static_keys=tuple(k for k in catalog.static_keys if k.symbol is None or k.symbol in keep),
    )
    # The evidence links explain discovery (`kpolicy families`); resolve needs only the members.
    families = tuple(dataclasses.replace(f, links=()) for f in families)
    return ResolveModel(
        small.version, small.arch, small.srcarch, command_line_size, small, small_catalog, families
    )


def _arch_dirs(catalog: Catalog) -> set[str]:
    """The arch/<dir> names the catalog's registrations live under."""
    return {
        r.location.file.split("/")[1]
        for r in catalog.registrations
        if r.location.file.startswith("arch/") and r.location.file.count("/") >= 2
    }
