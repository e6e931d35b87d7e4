"""Policy files (rules/policies/NAME.toml, or any FILE): items, `extends`, waivers.

One schema, checked on load; each error names the file and line:

    [policy]
    name = "kspp"
    description = "..."
    reference = "https://..."        # the default reference of every item
    extends = ["baseline"]           # optional: items of other policies (bundled names or paths)

    [[item]]
    id = "stackprotector-strong"     # stable; unique once the extended policies are merged
    require = "CONFIG_STACKPROTECTOR_STRONG = y"
    why = "..."
    reference = "..."                # optional
    arch = ["x86_64", "arm64"]       # optional: where the item applies (arch or srcarch names)
    since = "6.2"                    # optional: first kernel version the item applies to
    until = "6.12"                   # optional: last one
    severity = "error"               # or "warning"; --fail-on picks what fails the check
    affects = ["..."]                # optional: what else one failure of this item stands for
    when = "CONFIG_MODULES = y"      # optional: the item applies only where this holds

    [[waiver]]
    id = "modules-off"               # an item id (of this policy or one it extends)
    reason = "..."

`require` is `SUBJECT OP VALUE`. SUBJECT is `CONFIG_<SYMBOL>` (the config's value, as Kconfig
evaluates it), `sysctl.<name>` (the value in force at boot: --sysctl, then the command line's
sysctl.* words, then the kernel's default from rules/sysctl/defaults.toml), `cmdline.<param>`
(the value the kernel's handler for the parameter was given) or a feature name of
`kpolicy resolve` (its effective state). OP is one of = != >= <= contains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional, Union

from kpolicy.errors import KpolicyError
from kpolicy.kernel import Version, parse_version
from kpolicy.textio import entry_lines, key_line, parse_toml, reject_unknown_keys

if TYPE_CHECKING:
    from kpolicy.cache import Cache

Kind = Literal["kconfig", "sysctl", "cmdline", "feature"]
Value = Union[str, int, bool]
OPS = ("=", "!=", ">=", "<=", "contains")
SEVERITIES = ("warning", "error")
_POLICY_KEYS = {"name", "description", "reference", "extends"}
_ITEM_KEYS = {"id", "require", "why", "reference", "arch", "since", "until", "severity", "affects",
              "when"}
_WAIVER_KEYS = {"id", "reason"}
_REQUIRE = re.compile(r"^\s*([A-Za-z0-9_.\-*]+)\s+(=|!=|>=|<=|contains)\s+(\S.*?)\s*$")
_PREFIXES = {"kconfig": "CONFIG_", "sysctl": "sysctl.", "cmdline": "cmdline."}
_ID = re.compile(r"^[a-z0-9][a-z0-9.\-_]*$")


@dataclass(frozen=True)
class Item:
    """One requirement of a policy."""

    id: str
    kind: Kind
    subject: str  # the symbol (no CONFIG_), sysctl, parameter or feature name
    op: str
    value: Value
    why: str
    reference: str
    policy: str  # the policy that defines it
    source: str  # file:line of its [[item]]
    arches: tuple[str, ...] = ()
    since: Optional[Version] = None
    until: Optional[Version] = None
    severity: str = "error"
    affects: tuple[str, ...] = ()
    when: Optional[tuple[Kind, str, str, Value]] = None  # parsed like require

    @property
    def require(self) -> str:
        """The requirement as written: SUBJECT OP VALUE."""
        prefix = _PREFIXES.get(self.kind, "")
        return f"{prefix}{self.subject} {self.op} {value_text(self.value)}"


@dataclass(frozen=True)
class Waiver:
    """A reviewed exception: item ID is not required, for REASON."""

    id: str
    reason: str
    source: str


@dataclass(frozen=True)
class Policy:
    """A policy with its extended policies merged in (their items first)."""

    name: str
    description: str
    reference: str
    items: tuple[Item, ...]
    waivers: tuple[Waiver, ...] = ()
    origin: str = ""  # the file, or "bundled"


def value_text(value: Value) -> str:
    """VALUE as a requirement writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_require(text: str) -> tuple[Kind, str, str, Value]:
    """(kind, subject, op, value) of a requirement; ValueError when it is not one."""
    m = _REQUIRE.match(text)
    if m is None:
        raise ValueError(f"'{text}' is not 'SUBJECT OP VALUE' (OP one of {' '.join(OPS)})")
    subject, op, raw = m.groups()
    kind: Kind
    if subject.startswith("CONFIG_"):
        kind, subject = "kconfig", subject[len("CONFIG_"):]
    elif subject.startswith("sysctl."):
        kind, subject = "sysctl", subject[len("sysctl."):]
    elif subject.startswith("cmdline."):
        kind, subject = "cmdline", subject[len("cmdline."):]
    else:
        kind = "feature"
    if not subject:
        raise ValueError(f"'{text}' names no subject")
    value: Value = raw
    if raw == "is not set" and kind == "kconfig":
        value = "n"
    elif raw in ("true", "false") and kind == "feature":
        value = raw == "true"
    elif re.fullmatch(r"-?\d+", raw) and kind in ("sysctl", "feature"):
        value = int(raw)
    if op in (">=", "<=") and kind == "kconfig" and not (
        raw in ("y", "m", "n") or re.fullmatch(r"-?(0x)?[0-9a-fA-F]+", raw)
    ):
        raise ValueError(f"'{text}': {op} needs y/m/n or a number")
    return kind, subject, op, value


def bundled_policy_dir() -> Path:
    """rules/policies/ as shipped."""
    from kpolicy.resources import data_dir

    return data_dir("rules") / "policies"


def bundled_names() -> tuple[str, ...]:
    """The bundled policies' names (`hardening` is made from the kernel's own fragment)."""
    return (*sorted(p.stem for p in bundled_policy_dir().glob("*.toml")), "hardening")


def _fail(msg: str, path: Path, text: str, key: Optional[str] = None,
          start: int = 1) -> KpolicyError:
    line = key_line(text, key, start=start) if key else None
    return KpolicyError(msg, file=path, line=line or (start if start > 1 else None))


def _strings(value: Any) -> Optional[tuple[str, ...]]:
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    return None


def _item(entry: Any, policy: str, reference: str, path: Path, text: str, line: int) -> Item:
    def fail(msg: str, key: Optional[str] = None) -> KpolicyError:
        return _fail(f"item: {msg}", path, text, key, line)

    if not isinstance(entry, dict):
        raise fail("not a table")
    reject_unknown_keys(entry, _ITEM_KEYS, file=path, text=text, where="item: ", start=line)
    for key in ("id", "require", "why"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise fail(f"'{key}' is missing or empty", key if key in entry else None)
    if not _ID.match(entry["id"]):
        raise fail(f"id '{entry['id']}' is not lower-case words joined by - . _", "id")
    try:
        kind, subject, op, value = parse_require(entry["require"])
    except ValueError as exc:
        raise fail(str(exc), "require") from None
    arches = _strings(entry.get("arch", []))
    affects = _strings(entry.get("affects", []))
    if arches is None:
        raise fail("'arch' is not a list of arch names", "arch")
    if affects is None:
        raise fail("'affects' is not a list of strings", "affects")
    when = None
    if "when" in entry:
        if not isinstance(entry["when"], str):
            raise fail("'when' is not a requirement string", "when")
        try:
            when = parse_require(entry["when"])
        except ValueError as exc:
            raise fail(f"when: {exc}", "when") from None
    versions: dict[str, Optional[Version]] = {}
    for key in ("since", "until"):
        raw = entry.get(key)
        if raw is not None and (not isinstance(raw, str) or not re.fullmatch(r"\d+\.\d+", raw)):
            raise fail(f"'{key}' is not a version like \"6.12\"", key)
        versions[key] = parse_version(raw) if raw else None
    until = versions["until"]
    if until is not None:  # "until 6.12" covers every 6.12.x
        until = (until[0], until[1], 1 << 30)
    severity = entry.get("severity", "error")
    if severity not in SEVERITIES:
        raise fail(f"severity '{severity}' is not one of {', '.join(SEVERITIES)}", "severity")
    ref = entry.get("reference", reference)
    if not isinstance(ref, str) or not ref:
        raise fail("no 'reference' (here or in [policy])", "reference")
    return Item(
        id=entry["id"], kind=kind, subject=subject, op=op, value=value, why=entry["why"].strip(),
        reference=ref, policy=policy, source=f"{path.name}:{line}", arches=arches,
        since=versions["since"], until=until, severity=severity, affects=affects, when=when,
    )


def _waiver(entry: Any, path: Path, text: str, line: int) -> Waiver:
    if not isinstance(entry, dict):
        raise _fail("waiver: not a table", path, text, None, line)
    reject_unknown_keys(entry, _WAIVER_KEYS, file=path, text=text, where="waiver: ", start=line)
    if not isinstance(entry.get("id"), str) or not entry["id"]:
        raise _fail("waiver: 'id' is missing", path, text, "id", line)
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise _fail("waiver: a waiver needs a non-empty 'reason'", path, text, "reason", line)
    return Waiver(entry["id"], reason.strip(), f"{path.name}:{line}")


def _resolve_name(name: str, relative_to: Optional[Path]) -> Path:
    """The file of policy NAME: a bundled name, or a path (relative to the extending file)."""
    if "/" not in name and not name.endswith(".toml"):
        path = bundled_policy_dir() / f"{name}.toml"
        if not path.is_file():
            raise KpolicyError(
                f"no bundled policy '{name}' (bundled: {', '.join(bundled_names())})"
            )
        return path
    path = Path(name)
    if relative_to is not None and not path.is_absolute():
        path = relative_to.parent / path
    return path


def load_policy(name: str, *, _chain: tuple[Path, ...] = ()) -> Policy:
    """Policy NAME (bundled) or the policy file at path NAME, with what it extends merged in.

    `hardening` is not a file: see kpolicy.policy.fragment.
    """
    path = _resolve_name(name, _chain[-1] if _chain else None)
    if path.resolve() in {p.resolve() for p in _chain}:
        raise KpolicyError(f"'extends' loops back to {path}", file=_chain[-1])
    data, text = parse_toml(path, what="policy")
    head = data.get("policy")
    if not isinstance(head, dict):
        raise _fail("no [policy] table", path, text)
    reject_unknown_keys(head, _POLICY_KEYS, file=path, text=text, where="[policy]: ")
    extra = sorted(set(data) - {"policy", "item", "waiver"})
    if extra:
        raise _fail(f"unknown table '{extra[0]}' (expected policy, item, waiver)", path, text)
    pname = head.get("name")
    if not isinstance(pname, str) or not pname:
        raise _fail("[policy]: 'name' is missing", path, text, "name")
    reference = head.get("reference", "")
    extends = _strings(head.get("extends", []))
    if extends is None:
        raise _fail("[policy]: 'extends' is not a list of policy names", path, text, "extends")
    items: list[Item] = []
    waivers: list[Waiver] = []
    for parent in extends:
        if parent == "hardening":
            raise _fail("'hardening' is made per kernel tree and cannot be extended",
                        path, text, "extends")
        base = load_policy(parent, _chain=(*_chain, path))
        items += base.items
        waivers += base.waivers
    entries = data.get("item", [])
    if not isinstance(entries, list):
        raise _fail("'item' must be [[item]] tables", path, text)
    lines = entry_lines(text, "item")
    seen = {i.id for i in items}
    for n, entry in enumerate(entries):
        item = _item(entry, pname, reference, path, text, lines[n] if n < len(lines) else 1)
        if item.id in seen:
            raise _fail(f"item id '{item.id}' is defined twice", path, text, None,
                        lines[n] if n < len(lines) else 1)
        seen.add(item.id)
        items.append(item)
    wlines = entry_lines(text, "waiver")
    for n, entry in enumerate(data.get("waiver", [])):
        w = _waiver(entry, path, text, wlines[n] if n < len(wlines) else 1)
        if w.id not in seen:
            raise _fail(f"waiver: no item '{w.id}' in this policy or those it extends",
                        path, text, "id", wlines[n] if n < len(wlines) else 1)
        waivers.append(w)
    description = head.get("description", "")
    return Policy(pname, description if isinstance(description, str) else "", reference,
                  tuple(items), tuple(waivers), str(path))


def load_policy_cached(name: str, cache: Cache) -> Policy:
    """load_policy(NAME), kept in CACHE per content of the bundled files when NAME is a
    bundled policy (a warm `check` then neither imports nor runs a TOML parser)."""
    if not cache.enabled or "/" in name or name.endswith(".toml"):
        return load_policy(name)
    from kpolicy.cache import content_key

    files = sorted(bundled_policy_dir().glob("*.toml"))
    key = content_key("policy", name, *((p.name, p.read_bytes()) for p in files))
    return cache.get_or_build("policy", key, lambda: load_policy(name), Policy)


def with_items(policy: Policy, items: tuple[Item, ...]) -> Policy:
    """POLICY holding ITEMS instead of its own."""
    return replace(policy, items=items)
