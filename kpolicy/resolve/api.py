"""resolve itself: the features in force for a config and a command line under a model.

The inputs (configs, models, the running system) are read by resolve/inputs.py; answers are
written by resolve/output.py; resolve/batch.py answers many command lines at once."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Optional

from kpolicy.cache import Cache, content_key, shipped_files_key
from kpolicy.cmdline.passes import CmdlineResult, KernelParams
from kpolicy.kernel import fold_param
from kpolicy.params.semantics import (
    Declaration,
    FeatureSpec,
    ParamRules,
    for_target,
    load_param_rules,
    stale_declarations,
)
from kpolicy.resolve.engine import (
    FeatureMemo,
    FeatureState,
    resolve_features,
)
from kpolicy.resolve.features import (
    NO_MACHINE,
    DiscoveredOption,
    Machine,
    discovered_options,
)
from kpolicy.resolve.inputs import ConfigInput
from kpolicy.resolve.lazy import LazyRegistrations
from kpolicy.resolve.lsm import LsmSpec, load_lsms, lsm_feature, parse_lsms
from kpolicy.resolve.model import ResolveModel
from kpolicy.sysctl.boot import SysctlState, boot_sysctls
from kpolicy.sysctl.spec import load_sysctl_rules

if TYPE_CHECKING:
    from kpolicy.params.model import Catalog

_WORDS = re.compile(r'[^\s="]+')


@dataclass
class ResolveMemo:
    """What resolve() keeps across the command lines of one batch (same model, config, specs,
    machine): the declarations the tree lacks, and what the config alone decides per feature."""

    stale: Optional[tuple[str, ...]] = None
    options: Optional[tuple[DiscoveredOption, ...]] = None
    features: FeatureMemo = field(default_factory=FeatureMemo)
    # the memo of the config this one differs from in features.changed (check's fix proofs)
    base: Optional[ResolveMemo] = None


@dataclass(frozen=True)
class Resolution:
    """One resolve answer: the features and the command line's fate."""

    model: ResolveModel
    config: ConfigInput
    features: tuple[FeatureState, ...]
    cmdline: CmdlineResult
    warnings: tuple[str, ...]
    sysctls: tuple[SysctlState, ...] = ()  # rules/sysctls/security.toml's, at boot (+ sysctl.d)
    options: tuple[DiscoveredOption, ...] = ()  # discovered, semantics unknown


_RULES: dict[str, ParamRules] = {}


def shipped_rules_key() -> str:
    """A key for the content of the shipped parameter declarations (rules/params/)."""
    from kpolicy.resources import data_dir

    params = data_dir("rules") / "params"
    return content_key("rules", str(params), shipped_files_key(params, ".toml"))


def shipped_rules(cache: Optional[Cache] = None) -> ParamRules:
    """The shipped parameter declarations (rules/params/), parsed once per content in CACHE and
    kept for the process (resolve --tree and check read them twice)."""
    if cache is None or not cache.enabled:
        return load_param_rules()
    key = shipped_rules_key()
    if key not in _RULES:
        # no TOML parser to import or run
        _RULES[key] = cache.get_or_build("resolve-rules", key, load_param_rules, ParamRules)
    return _RULES[key]


_LSMS: list[tuple[LsmSpec, ...]] = []


def shipped_lsms(cache: Optional[Cache] = None) -> tuple[LsmSpec, ...]:
    """rules/lsm/lsms.toml, read once per process and parsed once per content in CACHE (the
    first call decides: run_resolve makes it with the cache, so no TOML parser runs warm)."""
    if not _LSMS:
        _LSMS.append(_read_lsms(cache))
    return _LSMS[0]


def _read_lsms(cache: Optional[Cache]) -> tuple[LsmSpec, ...]:
    from kpolicy.resources import data_dir

    if cache is None or not cache.enabled:
        return load_lsms()
    p = data_dir("rules") / "lsm" / "lsms.toml"
    text = p.read_bytes()
    return cache.get_or_build("lsm-table", content_key("lsms", (str(p), text)),
                              lambda: parse_lsms(text.decode("utf-8"), str(p)), tuple)


def all_features(
    model: ResolveModel, declared: Optional[tuple[FeatureSpec, ...]] = None
) -> tuple[FeatureSpec, ...]:
    """The DECLARED features (default: rules/params/'s): the only ones resolve states exactly,
    one per name: for a name declared per arch or version, MODEL's declaration (for_target).
    The families discovery finds beyond them are options (model_options), never features."""
    # every declared feature is resolved; one absent from the model's arch is skipped
    specs = load_param_rules().features if declared is None else declared
    key = (id(specs), model.srcarch, model.version_tuple)
    hit = _TARGETED.get(key)
    if hit is None or hit[0] is not specs:  # an id is only reused once its object is gone
        if len(_TARGETED) >= 16:
            _TARGETED.clear()
        hit = _TARGETED[key] = (specs, for_target(specs, model.srcarch, model.version_tuple))
    return hit[1]


# all_features() per (declarations, arch, version): check resolves with the same ones ~40 times
_TARGETED: dict[tuple[int, str, tuple[int, int, int]],
                tuple[tuple[FeatureSpec, ...], tuple[FeatureSpec, ...]]] = {}


def model_options(model: ResolveModel, specs: Sequence[FeatureSpec],
                  values: dict[str, str]) -> tuple[DiscoveredOption, ...]:
    """The options of MODEL's discovered families SPECS do not cover, with VALUES' values."""
    families = [f for f in model.families if f.option in model.kconfig.symbols]
    return discovered_options(families, specs, values)


def kernel_params_for(
    model: ResolveModel,
    config: ConfigInput,
    names: Optional[frozenset[str]] = None,
    declarations: Optional[tuple[Declaration, ...]] = None,
) -> KernelParams:
    """kpolicy.cmdline's lookup tables for CONFIG under MODEL (reuse them across command lines).

    With NAMES, registrations not built in are kept only when NAMES holds their name: enough
    for command lines made of those names, and much cheaper to decode from a model file.
    """
    from kpolicy.cmdline import kernel_params

    catalog = _catalog_for(model, config, names)
    return kernel_params(catalog, config.values, model.version_tuple, model.srcarch, declarations)


def _catalog_for(model: ResolveModel, config: ConfigInput,
                 names: Optional[frozenset[str]]) -> Catalog:
    catalog = model.catalog
    if names is not None and isinstance(catalog.registrations, LazyRegistrations):
        catalog = replace(catalog, registrations=catalog.registrations.select(config.values, names))
    return catalog


def kernel_params_reads(
    model: ResolveModel,
    config: ConfigInput,
    names: frozenset[str],
    declarations: Optional[tuple[Declaration, ...]] = None,
) -> tuple[KernelParams, frozenset[str]]:
    """kernel_params_for(), and the config symbols its tables were built from: a config that
    differs from CONFIG in none of them has the same tables (kpolicy.cmdline.with_config)."""
    from kpolicy.cmdline.passes import kernel_params, table_symbols

    catalog = _catalog_for(model, config, names)
    reads = table_symbols(catalog.registrations)
    regs = model.catalog.registrations
    if isinstance(regs, LazyRegistrations):  # those not selected: built in by built_if alone
        reads |= regs.built_if_symbols()
    kp = kernel_params(catalog, config.values, model.version_tuple, model.srcarch, declarations)
    return kp, reads


def cmdline_names(*texts: str) -> frozenset[str]:
    """The names registrations may be looked up by for the words of TEXTS (command lines)."""
    return frozenset(_WORDS.findall(fold_param(" ".join(texts))))


def resolve(
    model: ResolveModel,
    config: ConfigInput,
    cmdline: str,
    *,
    bootconfig: Optional[str] = None,
    specs: Optional[Sequence[FeatureSpec]] = None,
    warnings: Sequence[str] = (),
    kp: Optional[KernelParams] = None,
    machine: Machine = NO_MACHINE,
    declarations: Optional[tuple[Declaration, ...]] = None,
    memo: Optional[ResolveMemo] = None,
) -> Resolution:
    """The features in force for CONFIG booted with CMDLINE (and BOOTCONFIG) under MODEL.

    DECLARATIONS: rules/params/'s (see shipped_rules), read from there when not given.
    MEMO: kept across calls with the same MODEL, CONFIG, SPECS and MACHINE (a batch),
    holding what the command line does not change.
    """
    from kpolicy.cmdline import process_cmdline

    specs = all_features(model, None if specs is None else tuple(specs))
    if kp is None:
        # Every word of the command lines is a name the registrations may be looked up by.
        names = cmdline_names(cmdline, bootconfig or "", config.values.get("CMDLINE", ""))
        kp = kernel_params_for(model, config, names, declarations)
    result = process_cmdline(kp, cmdline, bootconfig=bootconfig)
    notes = list(warnings) + list(config.warnings)
    stale = None if memo is None else memo.stale
    if stale is None:
        regs = model.catalog.registrations
        if isinstance(regs, LazyRegistrations):  # only the declared names need decoding
            regs = regs.named(frozenset(fold_param(p) for s in specs for p in s.params))
        stale = stale_declarations(feature_declarations(specs), regs, model.srcarch,
                                   model.version_tuple)
        if memo is not None:
            memo.stale = stale
    notes += stale
    features = resolve_features(
        specs,
        model,
        config.values,
        result.events,
        config.lines,
        machine,
        None if memo is None else memo.features,
    )
    features = (*features, lsm_feature(shipped_lsms(), model.version_tuple, config.values,
                                       result.events, config.lines))
    options = None if memo is None else memo.options
    if options is None and memo is not None and memo.base is not None and (
            memo.base.options is not None
            and memo.features.changed.isdisjoint(f.option for f in model.families)):
        options = memo.options = memo.base.options  # they read only the families' options
    if options is None:
        options = model_options(model, specs, dict(config.values))
        if memo is not None:
            memo.options = options
    sysctls = boot_sysctls(load_sysctl_rules(), model.version_tuple, config.values,
                           config.lines, result)
    return Resolution(model, config, features, result, tuple(notes), sysctls, options)


def feature_declarations(specs: Sequence[FeatureSpec]) -> tuple[Declaration, ...]:
    """The parameter declarations of SPECS (what resolve checks against the model's tree)."""
    return tuple(d for s in specs for d in s.handlers)
