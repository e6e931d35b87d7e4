"""A small synthetic catalog shaped like Linux 7.2's registrations, for the cmdline unit tests."""

from __future__ import annotations

from typing import Optional

from kpolicy.cmdline import KernelParams, kernel_params
from kpolicy.kconfig.model import Location
from kpolicy.params.model import Catalog, Registration
from kpolicy.params.semantics import Declaration, HandlerSemantics


def reg(kind: str, name: str, *, parser: Optional[str] = None, param_type: Optional[str] = None,
        built_if: Optional[str] = None, equals: bool = False) -> Registration:
    return Registration(kind, name, Location("x.c", 1), handler=f"h_{name}", built_if=built_if,
                        parser=parser, param_type=param_type, setup_has_equals=equals)


REGISTRATIONS = (
    reg("early_param", "init_on_free", parser="kstrtobool"),
    reg("early_param", "init_on_alloc", parser="kstrtobool"),
    reg("early_param", "lockdown", parser="strcmp"),
    reg("early_param", "quiet"),
    reg("early_param", "early_only_in_module", parser="kstrtobool", built_if="MODULAR"),
    reg("__setup", "transparent_hugepage", equals=True, parser="strcmp"),
    reg("__setup", "norandmaps"),
    reg("__setup", "ro"),
    reg("__setup", "root", equals=True),
    reg("__setup", "init", equals=True),
    reg("__setup", "console", equals=True),
    reg("core_param", "panic", param_type="int"),
    reg("core_param", "crash_kexec_post_notifiers", param_type="bool"),
    reg("module_param", "module.sig_enforce", param_type="bool_enable_only"),
    reg("module_param", "zswap.enabled", parser="kstrtobool", built_if="ZSWAP"),
    reg("module_param", "zswap.max_pool_percent", param_type="uint", built_if="ZSWAP"),
    reg("module_param", "inv.flag", param_type="invbool"),
    reg("module_param", "drv.name", param_type="charp"),
    reg("module_param", "modular.opt", param_type="bool", built_if="MODULAR"),
)

DECLARATIONS = (
    Declaration("lockdown", "early_param",
                HandlerSemantics("words", ("integrity", "confidentiality"), "malformed",
                                 merge="raise-only"), "security/lockdown/lockdown.c", "t"),
    Declaration("transparent_hugepage", "__setup",
                HandlerSemantics("words", ("always", "madvise", "never"), "fallthrough"),
                "mm/huge_memory.c", "t"),
    Declaration("ro", "__setup", HandlerSemantics("empty", on_invalid="fallthrough"),
                "init/do_mounts.c", "t"),
    Declaration("init", "__setup", HandlerSemantics(effect="clear-init-argv"), "init/main.c", "t"),
    Declaration("zswap.enabled", "module_param",
                HandlerSemantics("kstrtobool", on_invalid="invalid", noarg=False), "mm/zswap.c",
                "t"),
    Declaration("module.sig_enforce", "module_param",
                HandlerSemantics("kstrtobool", on_invalid="invalid", merge="enable-only",
                                 initial="MODULE_SIG_FORCE"), "kernel/module/signing.c", "t"),
)

CONFIG = {"CONFIG_ZSWAP": "y", "CONFIG_MODULAR": "m", "CONFIG_INIT_ENV_ARG_LIMIT": "32"}


def synthetic(config: Optional[dict[str, str]] = None, version: tuple[int, int, int] = (7, 2, 0),
              srcarch: str = "x86") -> KernelParams:
    catalog = Catalog("7.2.0", (), REGISTRATIONS, ())
    return kernel_params(catalog, config if config is not None else CONFIG, version, srcarch,
                         declarations=DECLARATIONS)
