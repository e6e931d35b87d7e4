"""kpolicy's frozen model types as JSON data and back, driven by the dataclasses' annotations:
what resolve models are written in. A field type it was not taught is an error."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, Callable

from kpolicy.families import model as families_model
from kpolicy.kconfig import model as kconfig_model
from kpolicy.kconfig.model import Expr, Location
from kpolicy.params import model as params_model


def encode(value: object) -> Any:
    """VALUE (kpolicy's model types, containers, scalars) as JSON data; defaults left out."""
    if isinstance(value, Expr):
        return [value.op, *(encode(a) for a in value.args)]
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
            out[f.name] = encode(v)
        return out
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [encode(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(encode(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in sorted(value.items())}
    return value


_CLASSES: dict[str, type] = {
    name: obj
    for module in (kconfig_model, params_model, families_model)
    for name, obj in vars(module).items()
    if isinstance(obj, type) and dataclasses.is_dataclass(obj)
}
_DECODERS: dict[str, Callable[[Any], Any]] = {}


def decoder(type_text: str) -> Callable[[Any], Any]:
    """A function turning JSON back into the annotated type TYPE_TEXT (cached per annotation)."""
    hit = _DECODERS.get(type_text)
    if hit is not None:
        return hit
    t = type_text.replace(" ", "")
    fn: Callable[[Any], Any]
    if t.startswith("Optional[") and t.endswith("]"):
        inner = decoder(t[len("Optional[") : -1])
        fn = lambda v: None if v is None else inner(v)  # noqa: E731
    elif t.startswith("tuple[") and t.endswith(",...]"):
        item = decoder(t[len("tuple[") : -len(",...]")])
        fn = lambda v: tuple(item(x) for x in v)  # noqa: E731
    elif t.startswith("Sequence[") and t.endswith("]"):
        item = decoder(t[len("Sequence[") : -1])
        fn = lambda v: tuple(item(x) for x in v)  # noqa: E731
    elif t.startswith("Mapping[str,") or t.startswith("dict[str,"):
        item = decoder(t[t.index(",") + 1 : -1])
        fn = lambda v: {k: item(x) for k, x in v.items()}  # noqa: E731
    elif t in ("Expr", "Union[Expr,str]"):
        fn = _decode_expr
    elif t == "Location":
        fn = lambda v: Location(v[0], v[1])  # noqa: E731
    elif t in _CLASSES:
        fn = dataclass_decoder(_CLASSES[t])
    elif t.startswith("tuple[") or t.startswith("frozenset["):
        fn = tuple if t.startswith("tuple[") else frozenset
    elif t in ("str", "int", "bool"):
        fn = _identity
    else:  # a field type this codec was never taught: fail here, not with a wrong model
        raise TypeError(f"resolve model codec: no decoder for {type_text!r}")
    _DECODERS[type_text] = fn
    return fn


def _decode_expr(v: Any) -> Any:
    """An Expr (or a constant's text) from encode()'s nested lists."""
    if isinstance(v, str):
        return v
    return Expr(v[0], tuple(_decode_expr(a) for a in v[1:]))


def _identity(v: Any) -> Any:
    """Scalars decode as themselves."""
    return v


def dataclass_decoder(cls: type) -> Callable[[Any], Any]:
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
            converters.update((name, decoder(text)) for name, text in annotations)
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


def compact_json(value: Any) -> str:
    """VALUE as deterministic JSON text: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
