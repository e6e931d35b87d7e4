"""Feature semantics as data: rules/features/<feature>.toml loaded into FeatureSpec.

What static scanning cannot tell — a parameter's value domain, how repeats merge, how the
Kconfig default maps onto the boot state, what the machine can still change — is declared
once per feature. Each declaration is checked against the tree's registrations
(`stale_declarations`), so a parameter that moved or vanished is reported, not believed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Union

from kpolicy.errors import KpolicyError
from kpolicy.families.model import Family
from kpolicy.kernel import fold_param
from kpolicy.params.model import Registration
from kpolicy.textio import read_text

State = Union[bool, str]

PARSERS = ("kstrtobool", "param_bool", "words", "flag")
MERGES = ("last-wins", "raise-only", "enable-only")
ON_INVALID = ("malformed", "ignored", "init", "invalid")
# Registration kinds a declared kind may be realised as (module_param covers core_param).
_KINDS = {
    "early_param": ("early_param",),
    "__setup": ("__setup",),
    "module_param": ("module_param", "core_param"),
}


@dataclass(frozen=True)
class MachineDependency:
    """An outcome the running machine can still force, whatever config and command line say."""

    when: str
    effect: State
    ram_below_mib: Optional[int] = None  # applies when the machine has less RAM than this
    secure_boot: Optional[bool] = None  # applies when UEFI Secure Boot is (or is not) on
    symbol: Optional[str] = None  # ... and only if this Kconfig symbol is y


@dataclass(frozen=True)
class Machine:
    """What resolve knows about the machine that boots; None: unknown."""

    ram_mib: Optional[int] = None  # memory the kernel can use (MemTotal), or installed RAM
    secure_boot: Optional[bool] = None


NO_MACHINE = Machine()  # nothing known about the machine


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its parameters, how values parse and merge, where its default comes from."""

    name: str  # key in resolve's "features" (the parameter name, or the build option's)
    params: tuple[str, ...]
    domain: tuple[str, ...]  # () for bool; enumeration words in the kernel's order otherwise
    accepts: tuple[str, ...]  # words the handler takes (a subset of domain)
    parser: str
    merge: str
    on_invalid: str
    registration: Optional[str]  # the registration kind the tree must have
    build: Optional[str]  # build option; None means always built
    arches: tuple[str, ...]  # SRCARCHes where the feature exists; () = all
    default_symbol: Optional[str]
    default_invert: bool
    default_choice: tuple[tuple[str, str], ...]  # (member symbol, state word)
    default_value: Optional[State]  # when no symbol/choice member decides
    unbuilt: State  # effective state when the code is not built
    flags: tuple[tuple[str, bool], ...]  # parser "flag": parameter -> constant it sets
    lsm: Optional[str]  # LSM name that must be started for the feature to act
    lsm_early: Optional[str]  # symbol making the LSM an early one (always started)
    machine: tuple[MachineDependency, ...]
    file: str  # the declaration, or "discovered" for a family with no declaration
    noarg: bool = True  # param_bool: a bare name means true (KERNEL_PARAM_OPS_FL_NOARG)
    inferred: bool = False  # semantics guessed from discovery, not declared

    @property
    def is_bool(self) -> bool:
        return not self.domain

    @property
    def build_only(self) -> bool:
        return not self.params

    def rank(self, state: State) -> int:
        """Position of STATE in the domain (raise-only merges compare these)."""
        if self.is_bool:
            return int(bool(state))
        return self.domain.index(str(state))


def _field(
    data: Mapping[str, object], key: str, kind: type, file: str, default: object = None
) -> object:
    value = data.get(key, default)
    if value is not None and not isinstance(value, kind):
        raise KpolicyError(f"'{key}' must be a {kind.__name__}", file=file)
    return value


def _strings(data: Mapping[str, object], key: str, file: str) -> tuple[str, ...]:
    value = _field(data, key, list, file, [])
    assert isinstance(value, list)
    if not all(isinstance(v, str) for v in value):
        raise KpolicyError(f"'{key}' must be a list of strings", file=file)
    return tuple(value)


def parse_feature(data: Mapping[str, object], file: str) -> FeatureSpec:
    """A FeatureSpec from one parsed TOML document, or KpolicyError naming FILE."""
    name = _field(data, "feature", str, file)
    if not name:
        raise KpolicyError("missing 'feature' name", file=file)
    assert isinstance(name, str)
    raw_domain = data.get("domain", "bool")
    if raw_domain == "bool":
        domain: tuple[str, ...] = ()
    elif (
        isinstance(raw_domain, list) and raw_domain and all(isinstance(w, str) for w in raw_domain)
    ):
        domain = tuple(raw_domain)
    else:
        raise KpolicyError("'domain' must be \"bool\" or a list of words", file=file)
    parser = str(_field(data, "parser", str, file, "kstrtobool" if not domain else "words"))
    merge = str(_field(data, "merge", str, file, "last-wins"))
    on_invalid = str(_field(data, "on_invalid", str, file, "malformed"))
    for key, value, allowed in (
        ("parser", parser, PARSERS),
        ("merge", merge, MERGES),
        ("on_invalid", on_invalid, ON_INVALID),
    ):
        if value not in allowed:
            raise KpolicyError(
                f"'{key}' is '{value}'; expected one of {', '.join(allowed)}", file=file
            )
    registration = _field(data, "registration", str, file)
    assert registration is None or isinstance(registration, str)
    if registration is not None and registration not in _KINDS:
        raise KpolicyError(f"'registration' must be one of {', '.join(_KINDS)}", file=file)
    accepts = _strings(data, "accepts", file) or domain
    if any(w not in domain for w in accepts):
        raise KpolicyError("'accepts' must be words of 'domain'", file=file)
    default = _field(data, "default", dict, file, {})
    assert isinstance(default, dict)
    choice = _field(default, "choice", dict, file, {})
    assert isinstance(choice, dict)
    default_value = default.get("value")

    def state(value: object, where: str) -> State:
        if domain and value in domain:
            return str(value)
        if not domain and isinstance(value, bool):
            return value
        raise KpolicyError(f"{where}: {value!r} is not in the feature's domain", file=file)

    flags = _field(data, "flags", dict, file, {})
    assert isinstance(flags, dict)
    lsm = _field(data, "lsm", dict, file, {})
    assert isinstance(lsm, dict)
    machine = []
    entries = _field(data, "machine", list, file, [])
    assert isinstance(entries, list)
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("when"), str):
            raise KpolicyError("each [[machine]] needs 'when' and 'effect'", file=file)
        effect = entry.get("effect")
        ram, secure, symbol = (
            entry.get("ram_below_mib"),
            entry.get("secure_boot"),
            entry.get("symbol"),
        )
        if not (ram is None or isinstance(ram, int)) or not (
            secure is None or isinstance(secure, bool)
        ):
            raise KpolicyError(
                "'ram_below_mib' must be an integer, 'secure_boot' a boolean", file=file
            )
        machine.append(
            MachineDependency(
                entry["when"],
                state(
                    effect == "true" if effect in ("true", "false") else effect, "machine effect"
                ),
                ram_below_mib=ram,
                secure_boot=secure,
                symbol=symbol if isinstance(symbol, str) else None,
            )
        )
    params = _strings(data, "params", file)
    if parser == "flag" and set(flags) != set(params):
        raise KpolicyError("a 'flag' feature needs a [flags] value for each parameter", file=file)
    return FeatureSpec(
        name=name,
        params=params,
        domain=domain,
        accepts=accepts,
        parser=parser,
        merge=merge,
        on_invalid=on_invalid,
        registration=registration,
        build=_field(data, "build", str, file),  # type: ignore[arg-type]
        arches=_strings(data, "arches", file),
        default_symbol=_field(default, "symbol", str, file),  # type: ignore[arg-type]
        default_invert=bool(_field(default, "invert", bool, file, False)),
        default_choice=tuple((str(k), str(state(v, "default choice"))) for k, v in choice.items()),
        default_value=None if default_value is None else state(default_value, "default value"),
        unbuilt=state(data.get("unbuilt", domain[-1] if domain else False), "unbuilt"),
        flags=tuple((str(k), bool(v)) for k, v in flags.items()),
        lsm=_field(lsm, "name", str, file),  # type: ignore[arg-type]
        lsm_early=_field(lsm, "early", str, file),  # type: ignore[arg-type]
        machine=tuple(machine),
        file=file,
        noarg=bool(_field(data, "noarg", bool, file, True)),
    )


def load_features(directory: Optional[Path] = None) -> tuple[FeatureSpec, ...]:
    """Every rules/features/*.toml, sorted by feature name; a bad file is a KpolicyError."""
    if directory is None:
        from kpolicy.resources import data_dir

        directory = data_dir("rules") / "features"
    if sys.version_info >= (3, 11):  # imported here: a cached resolve never parses TOML
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    specs = []
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(read_text(path, what="feature declaration"))
        except tomllib.TOMLDecodeError as exc:
            raise KpolicyError(f"invalid TOML: {exc}", file=path) from None
        specs.append(parse_feature(data, str(path)))
    names = [s.name for s in specs]
    for n in names:
        if names.count(n) > 1:
            raise KpolicyError(f"feature '{n}' is declared twice", file=directory)
    return tuple(sorted(specs, key=lambda s: s.name))


def stale_declarations(
    specs: Iterable[FeatureSpec], registrations: Iterable[Registration], srcarch: str
) -> tuple[str, ...]:
    """One message per declared parameter the tree does not register as declared."""
    by_name: dict[str, list[Registration]] = {}
    for reg in registrations:
        by_name.setdefault(fold_param(reg.name), []).append(reg)
    problems = []
    for spec in specs:
        if spec.registration is None or (spec.arches and srcarch not in spec.arches):
            continue
        for param in spec.params:
            regs = by_name.get(fold_param(param), [])
            kinds = _KINDS[spec.registration]
            if not any(r.kind in kinds for r in regs):
                found = ", ".join(sorted({f"{r.kind} at {r.location}" for r in regs})) or "nothing"
                problems.append(
                    f"{spec.file}: declares {spec.registration} '{param}' but the tree "
                    f"registers {found}"
                )
    return tuple(problems)


def _bool_parser(reg: Optional[Registration]) -> Optional[tuple[str, str]]:
    """(parser, on_invalid) for a registration whose value is a plain bool, else None."""
    if reg is None:
        return None
    if reg.kind in ("module_param", "core_param"):
        return ("param_bool", "invalid") if reg.param_type == "bool" else None
    if reg.parser != "kstrtobool":
        return None
    return ("kstrtobool", "malformed") if reg.kind == "early_param" else ("kstrtobool", "ignored")


def inferred_features(
    families: Iterable[Family],
    registrations: Iterable[Registration],
    declared: Iterable[FeatureSpec],
) -> tuple[FeatureSpec, ...]:
    """Specs for discovered families no declaration covers: build-only ones, and bool switches."""
    declared = tuple(declared)
    covered = {fold_param(p) for s in declared for p in s.params}
    names = {s.name for s in declared} | {s.build for s in declared if s.build}
    regs = {fold_param(r.name): r for r in registrations}
    out = []
    for fam in families:
        if fam.option in names or any(fold_param(p) in covered for p in fam.params):
            continue
        base = FeatureSpec(
            name=fam.option, params=(), domain=(), accepts=(), parser="kstrtobool",
            merge="last-wins", on_invalid="malformed", registration=None, build=fam.option,
            arches=(), default_symbol=None, default_invert=False, default_choice=(),
            default_value=None, unbuilt=False, flags=(), lsm=None, lsm_early=None, machine=(),
            file="discovered", inferred=True,
        )  # fmt: skip
        if not fam.params:
            out.append(base)  # build-only: the build option is the feature
            continue
        reg = regs.get(fold_param(fam.params[0]))
        parsing = _bool_parser(reg)
        if parsing is None or reg is None or fam.companion_kind == "choice":
            continue  # a value domain discovery cannot know: declare it in rules/features/
        companion = fam.default_companion if fam.companion_kind == "bool" else None
        out.append(replace(
            base, name=fam.params[0], params=(fam.params[0],), parser=parsing[0],
            on_invalid=parsing[1],
            registration="module_param" if reg.kind == "core_param" else reg.kind,
            default_symbol=companion, default_value=None if companion else True,
        ))  # fmt: skip
    return tuple(sorted(out, key=lambda s: s.name))
