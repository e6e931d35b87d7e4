"""rules/params declarations against the real trees' registrations; the real catalog end to end."""

from __future__ import annotations

import pytest
from conftest import real_configs, real_tree

from kpolicy.cache import Cache
from kpolicy.cmdline import kernel_params, process_cmdline
from kpolicy.kconfig.dotconfig import read_dotconfig
from kpolicy.kernel import parse_version
from kpolicy.params.catalog import build_catalog
from kpolicy.params.model import Catalog
from kpolicy.params.semantics import load_param_rules, stale_declarations
from kpolicy.tree import open_tree

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def catalog72() -> Catalog:
    return build_catalog(open_tree(real_tree("7.2")), Cache(None, enabled=True))


def test_every_declaration_names_a_registration_of_7_2(catalog72: Catalog) -> None:
    # in 7.2 itself: a declaration bounded by since/until is checked where it applies
    assert stale_declarations(load_param_rules().declarations, catalog72.registrations, "x86",
                              parse_version(catalog72.version)) == ()


def test_debian_amd64_7_2_builds_the_parameters_the_engine_relies_on(catalog72: Catalog) -> None:
    config = read_dotconfig(real_configs("7.2") / "config.amd64_none_amd64").values
    kp = kernel_params(catalog72, config, (7, 2, 13), "x86")
    assert kp.declaration_problems == ()
    assert kp.command_line_size == 2048 and kp.init_env_arg_limit == 32
    r = process_cmdline(kp, "nokaslr randomize_kstack_offset=maybe root=/dev/vda1 ro "
                            "zswap.enabled=1 hardened_usercopy=bogus")
    # nokaslr is handled by x86's decompressor, not by the kernel proper: init gets it
    assert r.unknown == ("nokaslr",)
    assert r.malformed_early == ("randomize_kstack_offset",)
    assert r.invalid == ()
    # another arch's early_param("nokaslr") (arm64, riscv, loongarch) is not x86's
    assert not any(e.registration and e.registration.location.file.startswith("arch/arm64")
                   for e in r.events)
