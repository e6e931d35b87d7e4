"""arm64 on the real 6.1, 6.12 and 7.2 trees with Debian's cloud-arm64 configs: what differs
between the versions, pinned. The 7.2 outcomes are also confirmed by the arm64 boot oracle
(tests/boot/observed-arm64.json)."""

from __future__ import annotations

import pytest
from conftest import real_configs, real_tree

from kpolicy.cache import Cache
from kpolicy.cmdline import KernelParams, kernel_params, process_cmdline
from kpolicy.kconfig.dotconfig import read_dotconfig
from kpolicy.params.catalog import build_catalog
from kpolicy.params.semantics import load_param_rules, stale_declarations
from kpolicy.resolve.api import resolve
from kpolicy.resolve.bundle import pick_bundled, read_model
from kpolicy.resolve.features import Machine
from kpolicy.resolve.inputs import read_config
from kpolicy.tree import open_tree

pytestmark = pytest.mark.real
VERSIONS = ("6.1", "6.12", "7.2")
CONFIG = "config.arm64_none_cloud-arm64"
_KP: dict[str, KernelParams] = {}


def arm64_params(version: str) -> KernelParams:
    if version not in _KP:
        tree = open_tree(real_tree(version))
        catalog = build_catalog(tree, Cache(None, enabled=True))
        config = read_dotconfig(real_configs(version, "arm64") / CONFIG).values
        _KP[version] = kernel_params(catalog, config, tree.version_tuple, "arm64")
    return _KP[version]


@pytest.mark.parametrize("version", VERSIONS)
def test_arm64_early_options_per_version(version: str) -> None:
    kp = arm64_params(version)
    r = process_cmdline(kp, "nokaslr kpti=maybe ssbd=sometimes nospectre_bhb rodata=full "
                            "arm64.nobti id_aa64pfr1.bt=0 kaslr.disabled=1 -- x")
    # 6.1 registers no nokaslr parameter (its kaslr_early.c searches the command line for the
    # word): the generic parser passes it to init. 6.12 added early_param("nokaslr").
    assert r.unknown == (("nokaslr",) if version == "6.1" else ())
    assert r.init_argv == (("nokaslr", "x") if version == "6.1" else ("x",))
    # kpti takes (k)strtobool and ssbd a word of its table: both return -EINVAL otherwise
    assert r.malformed_early == ("kpti", "ssbd")
    # the id-register overrides and their aliases have a dot: the generic parser drops them
    # silently as parameters of built-in modules that do not exist
    assert r.invalid == ()


@pytest.mark.parametrize("version", ["6.12", "7.2"])
def test_arm64_declarations_name_registrations(version: str) -> None:
    """Every declaration that holds in VERSION on arm64 names a registration of the tree (a
    declaration of a later version, such as 7.2's hash_pointers, is not stale in 6.12)."""
    tree = open_tree(real_tree(version))
    catalog = build_catalog(tree, Cache(None, enabled=True))
    stale = stale_declarations(load_param_rules().declarations, catalog.registrations, "arm64",
                               tree.version_tuple)
    assert stale == ()


@pytest.mark.parametrize("version", VERSIONS)
def test_nokaslr_is_registered_from_6_12(version: str) -> None:
    """6.1 has no nokaslr registration on arm64 (kaslr reads the word directly, so its
    declaration is not stale there either); 6.12 and 7.2 have arch/arm64/kernel/kaslr.c's."""
    catalog = build_catalog(open_tree(real_tree(version)), Cache(None, enabled=True))
    files = {r.location.file for r in catalog.registrations if r.name == "nokaslr"}
    assert ("arch/arm64/kernel/kaslr.c" in files) is (version != "6.1")
    stale = stale_declarations(load_param_rules().declarations, catalog.registrations, "arm64")
    assert not any("'nokaslr'" in p for p in stale)


# command line -> KASLR on (a seed found), per version: 6.1's kaslr_early.c finds "nokaslr" with
# strstr() anywhere (a word starting with it, also after "--"); 6.12 and 7.2 match the exact
# alias before a lone "--". kaslr.disabled=1 never moves the image: 6.1 only keeps the module
# region from being randomized, 6.12 and 7.2 have no such register.
KASLR = {
    "": (True, True, True),
    "nokaslr": (False, False, False),
    "nokaslr=1": (False, True, True),
    "nokaslrx": (False, True, True),
    "-- nokaslr": (False, True, True),
    '"nokaslr"': (True, True, True),
    "kaslr.disabled=1": (True, True, True),
}


@pytest.mark.parametrize("version", VERSIONS)
def test_bundled_arm64_kaslr(version: str) -> None:
    """The bundled arm64 model: KASLR on by default, off with nokaslr as each version reads it,
    or without a seed."""
    config = read_config(real_configs(version, "arm64") / CONFIG)
    path, warning = pick_bundled(config.version, "arm64")
    assert warning is None
    model = read_model(path)
    assert model.arch == "arm64"
    specs = load_param_rules().features

    def kaslr(cmdline: str, seed: bool = True) -> object:
        res = resolve(model, config, cmdline, specs=specs, machine=Machine(kaslr_seed=seed))
        return next(f.effective for f in res.features if f.name == "kaslr")

    column = VERSIONS.index(version)
    assert {c: kaslr(c) for c in KASLR} == {c: want[column] for c, want in KASLR.items()}
    assert kaslr("", seed=False) is False


@pytest.mark.parametrize("version", VERSIONS)
def test_idreg_overrides_stop_at_dashes(version: str) -> None:
    """Every version's id-register parser stops at a lone "--": arm64.nobti after it hides
    nothing (the word goes to init)."""
    config = read_config(real_configs(version, "arm64") / CONFIG)
    model = read_model(pick_bundled(config.version, "arm64")[0])
    specs = load_param_rules().features
    for cmdline, bti in (("arm64.nobti", False), ("-- arm64.nobti", True),
                         ("arm64.nobti -- x", False)):
        res = resolve(model, config, cmdline, specs=specs)
        assert next(f.effective for f in res.features if f.name == "arm64.bti") is bti, cmdline


# (CONFIG_CMDLINE, CMDLINE_FORCE, boot loader's line) -> (kaslr, arm64.bti, arm64.pauth), per
# version. arm64 has no CMDLINE_EXTEND: drivers/of/fdt.c takes the boot loader's line, else
# CONFIG_CMDLINE, or CONFIG_CMDLINE alone under CMDLINE_FORCE, and the early readers agree
# (idreg-override.c parse_cmdline; 6.1's kaslr_early.c is_kaslr_disabled_cmdline). 6.1's strstr
# also finds nokaslr after "--" in CONFIG_CMDLINE.
BUILTIN = {
    ("nokaslr arm64.nobti", True, "arm64.nopauth"): ((False, False, True),) * 3,
    ("nokaslr arm64.nobti", False, "arm64.nopauth"): ((True, True, False),) * 3,
    ("nokaslr arm64.nobti", False, ""): ((False, False, True),) * 3,
    ("kpti=1 -- nokaslr", True, "nokaslr"): ((False, True, True), (True, True, True),
                                            (True, True, True)),
}


@pytest.mark.parametrize("version", VERSIONS)
def test_builtin_command_line_merge(version: str) -> None:
    """CONFIG_CMDLINE and CMDLINE_FORCE on arm64: the words the early id-register parser and
    KASLR read come from the same merged line as the kernel proper's."""
    import dataclasses

    config = read_config(real_configs(version, "arm64") / CONFIG)
    assert not config.values.get("CMDLINE") and config.values.get("CMDLINE_FORCE") != "y"
    model = read_model(pick_bundled(config.version, "arm64")[0])
    specs = load_param_rules().features
    cpu = Machine(kaslr_seed=True, cpu_features=frozenset({"bti", "pauth", "e0pd",
                                                           "meltdown_safe"}))
    column = VERSIONS.index(version)
    for (builtin, force, line), want in BUILTIN.items():
        values = {**config.values, "CMDLINE": builtin, "CMDLINE_FORCE": "y" if force else "n"}
        res = resolve(model, dataclasses.replace(config, values=values), line, specs=specs,
                      machine=cpu)
        states = {f.name: f.effective for f in res.features}
        got = tuple(states[n] for n in ("kaslr", "arm64.bti", "arm64.pauth"))
        assert got == want[column], (builtin, force, line)
        if builtin.startswith("kpti=1"):  # the boot loader's nokaslr is ignored under FORCE
            assert states["kpti"] is True
