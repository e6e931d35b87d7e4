"""A model's registrations decoded only when used: all at once, or the few a command line needs."""

from __future__ import annotations

import dataclasses
import json
import marshal
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Optional

from kpolicy.kconfig.model import Location
from kpolicy.kernel import fold_param
from kpolicy.params.model import Registration
from kpolicy.resolve.codec import decoder


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
        self._rows: dict[int, Registration] = {}  # decoded by select(), by row
        self._selects = 0  # select() calls: the index below is built for a third one
        self._groups: Optional[tuple[dict[Optional[str], list[int]], dict[str, list[int]]]] = None

    def _row(self, index: int) -> Registration:
        """Row INDEX decoded, once: `check` selects for many configs that differ a little."""
        reg = self._rows.get(index)
        if reg is None:
            reg = self._rows[index] = _registration(self._texts[index])
        return reg

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
        self._selects += 1
        if self._groups is None and self._selects <= 2:  # resolve's two: a scan is cheaper
            return tuple(
                self._row(index)
                for index, (built_if, name) in enumerate(zip(self._built_if, self._names))
                if (everything and (built_if is None or built.get(built_if) == "y"))
                or name in names
            )
        groups, by_name = self._index()
        rows: set[int] = set()
        if everything:
            for built_if, indices in groups.items():
                if built_if is None or built.get(built_if) == "y":
                    rows.update(indices)
        for name in names:
            rows.update(by_name.get(name, ()))
        return tuple(map(self._row, sorted(rows)))

    def _index(self) -> tuple[dict[Optional[str], list[int]], dict[str, list[int]]]:
        """The rows by built_if and by folded name, once: select() reads the groups a config
        builds in (a few hundred symbols) instead of testing every row."""
        if self._groups is None:
            groups: dict[Optional[str], list[int]] = {}
            by_name: dict[str, list[int]] = {}
            for index, (built_if, name) in enumerate(zip(self._built_if, self._names)):
                groups.setdefault(built_if, []).append(index)
                by_name.setdefault(name, []).append(index)
            self._groups = (groups, by_name)
        return self._groups

    def built_if_symbols(self) -> frozenset[str]:
        """The symbols select() tests (each registration's built_if), without decoding any."""
        return frozenset(b for b in self._built_if if b)

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
        return decoder("Registration")(json.loads(row))  # type: ignore[no-any-return]
    # filled through __dict__ like dataclass_decoder(): a frozen __init__ costs a call per field
    state = dict(zip(_REGISTRATION_FIELDS, marshal.loads(row)))
    state["location"] = Location(*state["location"])
    if state["help_at"] is not None:
        state["help_at"] = Location(*state["help_at"])
    reg: Any = object.__new__(Registration)
    reg.__dict__.update(state)
    return reg  # type: ignore[no-any-return]
