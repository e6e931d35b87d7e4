"""rules/sysctls/security.toml as typed specs: one SysctlSpec per /proc/sys file."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional, get_args

from kpolicy.errors import KpolicyError
from kpolicy.kernel import parse_version
from kpolicy.textio import TOML_LIMIT, parse_toml_text, read_text

if TYPE_CHECKING:
    from kpolicy.cache import Cache

Handler = Literal["int", "int-minmax", "bool", "ulong", "u8"]

_KEYS = frozenset({
    "path", "hardens", "built", "since", "initial", "initial_symbol", "initial_y", "initial_n",
    "initial_from", "machine", "handler", "min", "max", "lock", "always", "always_value",
    "params", "lsm", "patch", "evidence", "always_on_symbol",
})


@dataclass(frozen=True)
class SetByParam:
    """A boot parameter whose handler sets the sysctl's variable."""

    name: str
    value: str


@dataclass(frozen=True)
class Evidence:
    """Where the initial value is in a tree: a file (per version) and a line it holds."""

    files: tuple[tuple[str, str], ...]  # ((version "6.1", file), ...); version "" = every one
    text: str

    def file_for(self, version: tuple[int, int, int]) -> str:
        """The file of EVIDENCE for VERSION (the entry of the newest version not above it)."""
        best = ""
        for ver, file in sorted(self.files, key=lambda vf: parse_version(vf[0] or "0")):
            if not ver or parse_version(ver) <= version:
                best = file
        return best


@dataclass(frozen=True)
class SysctlSpec:
    """One security sysctl: how the kernel sets it up and which writes it takes."""

    path: str  # dotted, as sysctl(8) writes it
    hardens: str
    built: tuple[str, ...]
    handler: Handler
    evidence: Evidence
    since: Optional[str] = None
    initial: Optional[str] = None
    initial_symbol: Optional[str] = None
    initial_y: str = "1"
    initial_n: str = "0"
    initial_from: Optional[str] = None
    machine: Optional[str] = None
    min: Optional[int] = None
    max: Optional[int] = None
    lock: Optional[int] = None
    always: Optional[str] = None
    always_value: Optional[str] = None
    always_on_symbol: Optional[str] = None
    params: tuple[SetByParam, ...] = ()
    lsm: Optional[str] = None
    patch: Optional[str] = None

    @property
    def feature(self) -> str:
        """The name resolve reports it under: sysctl.<dotted path>."""
        return "sysctl." + self.path

    def exists_in(self, version: tuple[int, int, int]) -> bool:
        """Whether the kernel of VERSION has this sysctl at all."""
        return self.since is None or parse_version(self.since) <= version


def _str(raw: dict[str, object], key: str, where: str) -> Optional[str]:
    v = raw.get(key)
    if v is None or isinstance(v, str):
        return v
    raise KpolicyError(f"{where}: '{key}' must be a string")


def _int(raw: dict[str, object], key: str, where: str) -> Optional[int]:
    v = raw.get(key)
    if v is None or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    raise KpolicyError(f"{where}: '{key}' must be an integer")


def _spec(raw: dict[str, object], file: str) -> SysctlSpec:
    where = f"{file}: sysctl {raw.get('path')!r}"
    unknown = set(raw) - _KEYS
    if unknown:
        raise KpolicyError(f"{where}: unknown keys {sorted(unknown)}")
    handler = raw.get("handler")
    if handler not in get_args(Handler):
        raise KpolicyError(f"{where}: handler must be one of {list(get_args(Handler))}")
    starts = [k for k in ("initial", "initial_symbol", "initial_from", "machine") if k in raw]
    if len(starts) != 1:
        raise KpolicyError(
            f"{where}: exactly one of initial, initial_symbol, initial_from, machine")
    ev = raw.get("evidence")
    if not isinstance(ev, dict) or not isinstance(ev.get("text"), str):
        raise KpolicyError(f"{where}: evidence = {{ file = ..., text = ... }} is required")
    files = ev.get("file")
    if isinstance(files, str):
        pairs: tuple[tuple[str, str], ...] = (("", files),)
    elif isinstance(files, dict) and all(isinstance(v, str) for v in files.values()):
        pairs = tuple(sorted((str(k), str(v)) for k, v in files.items()))
    else:
        raise KpolicyError(f"{where}: evidence.file must be a path or a table of version = path")
    params = raw.get("params", [])
    built = raw.get("built", [])
    if not isinstance(params, list) or not isinstance(built, list):
        raise KpolicyError(f"{where}: params and built must be lists")
    path = _str(raw, "path", where)
    hardens = _str(raw, "hardens", where)
    if not path or not hardens:
        raise KpolicyError(f"{where}: path and hardens are required")
    return SysctlSpec(
        path=path, hardens=hardens, built=tuple(str(b) for b in built),
        handler=handler,  # type: ignore[arg-type]  # checked against Handler above
        evidence=Evidence(pairs, ev["text"]), since=_str(raw, "since", where),
        initial=_str(raw, "initial", where), initial_symbol=_str(raw, "initial_symbol", where),
        initial_y=_str(raw, "initial_y", where) or "1",
        initial_n=_str(raw, "initial_n", where) or "0",
        initial_from=_str(raw, "initial_from", where), machine=_str(raw, "machine", where),
        min=_int(raw, "min", where), max=_int(raw, "max", where), lock=_int(raw, "lock", where),
        always=_str(raw, "always", where), always_value=_str(raw, "always_value", where),
        always_on_symbol=_str(raw, "always_on_symbol", where),
        params=tuple(SetByParam(str(p["name"]), str(p["value"])) for p in params),
        lsm=_str(raw, "lsm", where), patch=_str(raw, "patch", where),
    )


def parse_sysctl_rules(text: str, file: str) -> tuple[SysctlSpec, ...]:
    """The specs of one rules/sysctls/security.toml text; a bad or repeated entry is a
    KpolicyError."""
    data = parse_toml_text(text, file)
    specs = tuple(_spec(raw, file) for raw in data.get("sysctl", []))
    seen: set[str] = set()
    for s in specs:
        if s.path in seen:
            raise KpolicyError(f"{file}: sysctl {s.path!r} is declared twice")
        seen.add(s.path)
    return specs


@cache
def load_sysctl_rules(path: Optional[Path] = None) -> tuple[SysctlSpec, ...]:
    """The shipped rules/sysctls/security.toml (or PATH), parsed once (and, after
    use_sysctl_cache, once per content)."""
    if path is None:
        path = _shipped_path()
        if _CACHE:
            from kpolicy.cache import content_key

            text = read_text(path, what="sysctl declarations", limit=TOML_LIMIT)
            return _CACHE[0].get_or_build(
                "sysctl-rules", content_key("sysctls", (str(path), text.encode())),
                lambda: parse_sysctl_rules(text, str(path)), tuple)
    text = read_text(path, what="sysctl declarations", limit=TOML_LIMIT)
    return parse_sysctl_rules(text, str(path))


def _shipped_path() -> Path:
    from kpolicy.resources import data_dir

    return data_dir("rules") / "sysctls" / "security.toml"


_CACHE: list[Cache] = []


def use_sysctl_cache(cache: Cache) -> None:
    """Keep the parsed shipped rules in CACHE (no TOML parser to import or run on a warm start)."""
    if cache.enabled and not _CACHE:
        _CACHE.append(cache)
