"""A small hand-made ResolveModel shaped like Linux 7.2 x86_64, for tests that need no tree."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest

from kpolicy.kconfig.model import Choice, Definition, Expr, KconfigModel, Location, Symbol
from kpolicy.params.model import Catalog, Registration
from kpolicy.resolve.bundle import model_to_bytes
from kpolicy.resolve.model import ResolveModel


def _sym(
    name: str,
    dep: Optional[Expr] = None,
    type_: str = "bool",
    choice: Optional[str] = None,
    line: int = 1,
) -> Symbol:
    loc = Location("Kconfig.test", line)
    return Symbol(
        name=name, type=type_, definitions=(Definition(loc, dep),), direct_dep=dep, choice=choice
    )


def _and(*names: str) -> Expr:
    terms = [Expr("not", (Expr.sym(n[1:]),)) if n.startswith("!") else Expr.sym(n) for n in names]
    out = terms[0]
    for t in terms[1:]:
        out = Expr("and", (out, t))
    return out


SYMBOLS = [
    _sym("HAVE_ARCH_RANDOMIZE_KSTACK_OFFSET", line=10),
    _sym("RANDOMIZE_KSTACK_OFFSET", _and("HAVE_ARCH_RANDOMIZE_KSTACK_OFFSET"), line=11),
    _sym("RANDOMIZE_KSTACK_OFFSET_DEFAULT", _and("RANDOMIZE_KSTACK_OFFSET"), line=12),
    _sym("INIT_ON_ALLOC_DEFAULT_ON", line=20),
    _sym("INIT_ON_FREE_DEFAULT_ON", line=21),
    _sym("64BIT", line=30),
    _sym("CHECKPOINT_RESTORE", line=31),
    _sym("ARCH_SUPPORTS_MSEAL_SYSTEM_MAPPINGS", line=32),
    _sym(
        "MSEAL_SYSTEM_MAPPINGS",
        _and("64BIT", "ARCH_SUPPORTS_MSEAL_SYSTEM_MAPPINGS", "!CHECKPOINT_RESTORE"),
        line=33,
    ),
    _sym("SECURITY_LOCKDOWN_LSM", line=40),
    _sym("SECURITY_LOCKDOWN_LSM_EARLY", _and("SECURITY_LOCKDOWN_LSM"), line=41),
    _sym("LOCK_DOWN_KERNEL_FORCE_NONE", _and("SECURITY_LOCKDOWN_LSM"), choice="LOCKDOWN", line=42),
    _sym(
        "LOCK_DOWN_KERNEL_FORCE_INTEGRITY",
        _and("SECURITY_LOCKDOWN_LSM"),
        choice="LOCKDOWN",
        line=43,
    ),
    _sym(
        "LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY",
        _and("SECURITY_LOCKDOWN_LSM"),
        choice="LOCKDOWN",
        line=44,
    ),
    _sym("LSM", type_="string", line=45),
    _sym("TRANSPARENT_HUGEPAGE", line=50),
    _sym("TRANSPARENT_HUGEPAGE_ALWAYS", _and("TRANSPARENT_HUGEPAGE"), choice="THP", line=51),
    _sym("TRANSPARENT_HUGEPAGE_MADVISE", _and("TRANSPARENT_HUGEPAGE"), choice="THP", line=52),
    _sym("TRANSPARENT_HUGEPAGE_NEVER", _and("TRANSPARENT_HUGEPAGE"), choice="THP", line=53),
    _sym("ZSWAP", line=60),
    _sym("ZSWAP_DEFAULT_ON", _and("ZSWAP"), line=61),
    _sym("MODULE_SIG", line=70),
    _sym("MODULE_SIG_FORCE", _and("MODULE_SIG"), line=71),
    _sym("SHUFFLE_PAGE_ALLOCATOR", line=80),
    _sym("X86_VSYSCALL_EMULATION", line=90),
    _sym("LEGACY_VSYSCALL_XONLY", _and("X86_VSYSCALL_EMULATION"), choice="VSYSCALL", line=91),
    _sym("LEGACY_VSYSCALL_NONE", _and("X86_VSYSCALL_EMULATION"), choice="VSYSCALL", line=92),
    _sym("SLAB_MERGE_DEFAULT", line=100),
    _sym("HARDENED_USERCOPY", line=110),
    _sym("HARDENED_USERCOPY_DEFAULT_ON", _and("HARDENED_USERCOPY"), line=111),
]

CHOICES = tuple(
    Choice(
        name=n,
        type="bool",
        prompt=None,
        members=tuple(s.name for s in SYMBOLS if s.choice == n),
        defaults=(),
        direct_dep=None,
        location=Location("Kconfig.test", 1),
    )
    for n in ("LOCKDOWN", "THP", "VSYSCALL")
)


def _reg(
    kind: str,
    name: str,
    built_if: Optional[str] = None,
    parser: Optional[str] = None,
    param_type: Optional[str] = None,
    eq: bool = False,
) -> Registration:
    return Registration(
        kind=kind,
        name=name,
        location=Location("src.c", 1),
        handler=f"h_{kind}",
        built_if=built_if,
        parser=parser,
        param_type=param_type,
        setup_has_equals=eq,
    )


REGISTRATIONS = (
    _reg("early_param", "init_on_alloc", parser="kstrtobool"),
    _reg("early_param", "init_on_free", parser="kstrtobool"),
    _reg("early_param", "randomize_kstack_offset", "RANDOMIZE_KSTACK_OFFSET", "kstrtobool"),
    _reg("early_param", "lockdown", "SECURITY_LOCKDOWN_LSM", "strcmp"),
    _reg("__setup", "transparent_hugepage", "TRANSPARENT_HUGEPAGE", "strcmp", eq=True),
    _reg("module_param", "zswap.enabled", "ZSWAP", param_type="bool"),
    _reg("module_param", "module.sig_enforce", "MODULE_SIG", param_type="bool_enable_only"),
    _reg("module_param", "page_alloc.shuffle", "SHUFFLE_PAGE_ALLOCATOR", param_type="bool"),
    _reg("early_param", "vsyscall", "X86_VSYSCALL_EMULATION", "strcmp"),
    _reg("__setup", "slab_nomerge"),
    _reg("__setup", "slub_nomerge"),
    _reg("__setup", "slab_merge"),
    _reg("__setup", "slub_merge"),
    _reg("__setup", "hardened_usercopy", "HARDENED_USERCOPY", "kstrtobool", eq=True),
    _reg("__setup", "lsm", eq=True),
)

# What Kconfig gives with no input config.
DEFAULTS = {
    "HAVE_ARCH_RANDOMIZE_KSTACK_OFFSET": "y",
    "RANDOMIZE_KSTACK_OFFSET": "y",
    "64BIT": "y",
    "ARCH_SUPPORTS_MSEAL_SYSTEM_MAPPINGS": "y",
    "LOCK_DOWN_KERNEL_FORCE_NONE": "y",
    "SECURITY_LOCKDOWN_LSM": "n",
    "TRANSPARENT_HUGEPAGE": "n",
    "SLAB_MERGE_DEFAULT": "y",
    "X86_VSYSCALL_EMULATION": "y",
    "LEGACY_VSYSCALL_XONLY": "y",
    "LSM": "landlock,lockdown,yama",
}

# A Debian-cloud-like config.
CLOUD = {
    **DEFAULTS,
    "RANDOMIZE_KSTACK_OFFSET_DEFAULT": "y",
    "INIT_ON_ALLOC_DEFAULT_ON": "y",
    "CHECKPOINT_RESTORE": "y",
    "SECURITY_LOCKDOWN_LSM": "y",
    "SECURITY_LOCKDOWN_LSM_EARLY": "y",
    "TRANSPARENT_HUGEPAGE": "y",
    "TRANSPARENT_HUGEPAGE_ALWAYS": "y",
    "ZSWAP": "y",
    "MODULE_SIG": "y",
    "SHUFFLE_PAGE_ALLOCATOR": "y",
    "LEGACY_VSYSCALL_XONLY": "n",
    "LEGACY_VSYSCALL_NONE": "y",
    "HARDENED_USERCOPY": "y",
    "HARDENED_USERCOPY_DEFAULT_ON": "y",
}


def synthetic_model() -> ResolveModel:
    """The hand-made model (Linux 7.2.13, x86_64)."""
    kconfig = KconfigModel(
        version="7.2.13",
        arch="x86_64",
        srcarch="x86",
        toolchain="default",
        symbols={s.name: s for s in SYMBOLS},
        choices=CHOICES,
        values={k: v for k, v in DEFAULTS.items() if v != "n"},
    )
    catalog = Catalog(version="7.2.13", docs=(), registrations=REGISTRATIONS, static_keys=())
    return ResolveModel(
        version="7.2.13",
        arch="x86_64",
        srcarch="x86",
        command_line_size=2048,
        kconfig=kconfig,
        catalog=catalog,
        origin="synthetic",
    )


@pytest.fixture(scope="session", name="model")
def model_fixture() -> ResolveModel:
    """The hand-made model, shared by a session."""
    return synthetic_model()


@pytest.fixture(scope="session", name="model_file")
def model_file_fixture(tmp_path_factory: pytest.TempPathFactory, model: ResolveModel) -> Path:
    """The hand-made model written as a model file."""
    path = tmp_path_factory.mktemp("model") / "synthetic.json.gz"
    path.write_bytes(model_to_bytes(model))
    return path
