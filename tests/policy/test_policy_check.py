"""`kpolicy check` on the bundled Linux 7.2 model's Kconfig defaults: the schema, each kind of
item, fixes proven by resolving again, waivers, `extends`, exit status and every output format.
No tree needed; each check takes about a second."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import sarif_schema

from kpolicy.cli import main
from kpolicy.errors import KpolicyError
from kpolicy.policy.schema import bundled_names, load_policy, parse_require

POLICY = """
[policy]
name = "t"
reference = "https://example.org/policy"

[[item]]
id = "init-on-free"
require = "init_on_free = true"
why = "freed memory is wiped"

[[item]]
id = "lockdown"
require = "lockdown >= integrity"
why = "no raw kernel memory access for root"

[[item]]
id = "vmap-stack"
require = "CONFIG_VMAP_STACK = y"
why = "guard pages"

[[item]]
id = "kptr"
require = "sysctl.kernel.kptr_restrict >= 1"
why = "hide kernel pointers"

[[item]]
id = "mitigations"
require = "cmdline.mitigations = auto,nosmt"
why = "mitigations with SMT off where needed"
affects = ["mds", "l1tf"]

[[item]]
id = "sig-if-modules"
require = "CONFIG_MODULE_SIG_FORCE = y"
when = "CONFIG_MODULES = y"
why = "signed modules only, where there are modules"

[[item]]
id = "arm-only"
require = "CONFIG_ARM64_BTI_KERNEL = y"
why = "arm64 branch target identification"
arch = ["arm64"]
"""


def _write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def defaults_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled 7.2 model's Kconfig defaults as a .config, with CONFIG_PRINTK=y (which the
    model does not carry: the printk sysctls need it)."""
    from kpolicy.resolve.bundle import pick_bundled, read_model

    model = read_model(pick_bundled("7.2.13")[0])
    lines = [f"# Linux/x86 {model.version} Kernel Configuration"]
    for name, value in model.kconfig.values.items():
        if value != "n":
            sym = model.kconfig.symbols.get(name)
            string = sym is not None and sym.type == "string"
            lines.append(f'CONFIG_{name}="{value}"' if string else f"CONFIG_{name}={value}")
    path = tmp_path_factory.mktemp("config") / "defaults.config"
    path.write_text("\n".join([*lines, "CONFIG_PRINTK=y", ""]))
    return path


_CONFIG: list[Path] = []


@pytest.fixture(autouse=True)
def _with_config(defaults_config: Path) -> None:
    _CONFIG[:] = [defaults_config]


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["check", "--no-cache", "--config", str(_CONFIG[0]), *args])
    return code, capsys.readouterr().out


def check_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code, out = check(capsys, *args, "--format", "json")
    return code, json.loads(out)


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    return _write(tmp_path, POLICY)


def by_id(doc: dict) -> dict:  # type: ignore[type-arg]
    return {r["id"]: r for r in doc["results"]}


def test_parse_require_kinds_and_values() -> None:
    assert parse_require("CONFIG_X = is not set") == ("kconfig", "X", "=", "n")
    assert parse_require("sysctl.kernel.kptr_restrict >= 1") == (
        "sysctl", "kernel.kptr_restrict", ">=", 1)
    assert parse_require("lockdown >= integrity") == ("feature", "lockdown", ">=", "integrity")
    assert parse_require("init_on_free = true") == ("feature", "init_on_free", "=", True)
    assert parse_require("cmdline.mitigations = auto,nosmt")[:2] == ("cmdline", "mitigations")
    assert parse_require("CONFIG_LSM contains lockdown")[2] == "contains"
    for bad in ("CONFIG_X", "CONFIG_X ~ y", "CONFIG_X >= maybe"):
        with pytest.raises(ValueError):
            parse_require(bad)


def test_bundled_policies_load_with_unique_ids_and_references() -> None:
    assert {"baseline", "kspp", "hardening"} <= set(bundled_names())
    for name in ("baseline", "kspp"):
        policy = load_policy(name)
        ids = [i.id for i in policy.items]
        assert len(ids) == len(set(ids)) and len(ids) >= 20
        assert all(i.reference.startswith("https://") and i.why for i in policy.items)
    kspp = load_policy("kspp")
    assert {i.kind for i in kspp.items} == {"kconfig", "feature", "cmdline", "sysctl"}
    # every sysctl a bundled policy names is one kpolicy.sysctl models
    from kpolicy.sysctl.spec import load_sysctl_rules

    named = {i.subject for n in ("baseline", "kspp") for i in load_policy(n).items
             if i.kind == "sysctl"}
    assert named <= {s.path for s in load_sysctl_rules()}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[policy]\nname='x'\n[[item]]\nid='a'\nrequire='CONFIG_X = y'\n", "'why' is missing"),
        ("[policy]\nname='x'\nreference='r'\n[[item]]\nid='a'\nrequire='X'\nwhy='w'\n",
         "is not 'SUBJECT OP VALUE'"),
        ("[policy]\nname='x'\nreference='r'\n[[item]]\nid='a'\nrequire='CONFIG_X = y'\n"
         "why='w'\ncolour='red'\n", "unknown key 'colour'"),
        ("[policy]\nname='x'\nreference='r'\n[[item]]\nid='a'\nrequire='CONFIG_X = y'\n"
         "why='w'\n[[waiver]]\nid='a'\n", "non-empty 'reason'"),
        ("[policy]\nname='x'\nreference='r'\n[[item]]\nid='a'\nrequire='CONFIG_X = y'\n"
         "why='w'\n[[waiver]]\nid='b'\nreason='r'\n", "no item 'b'"),
        ("[policy]\nname='x'\nextends=['p.toml']\n", "loops back"),
    ],
)
def test_policy_errors_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(KpolicyError) as err:
        load_policy(str(path))
    assert message in err.value.message
    assert err.value.file is not None


def test_extends_and_waivers(tmp_path: Path, policy: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    child = _write(tmp_path, f"""
[policy]
name = "child"
extends = ["{policy.name}"]
reference = "https://example.org/child"

[[item]]
id = "kfence"
require = "CONFIG_KFENCE = y"
why = "sampled memory error detection"

[[waiver]]
id = "mitigations"
reason = "SMT stays on for this fleet: cores are not shared between tenants"
""", "child.toml")
    loaded = load_policy(str(child))
    assert [i.id for i in loaded.items][-1] == "kfence" and len(loaded.items) == 8
    code, doc = check_json(capsys, "--policy", str(child), "--cmdline", "")
    results = by_id(doc)
    assert results["mitigations"]["status"] == "waived"
    assert results["mitigations"]["waiver"].startswith("SMT stays on")
    assert results["init-on-free"]["status"] == "fail"  # still fails: exit 1
    assert code == 1


def test_each_kind_of_item_on_the_model_defaults(policy: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = check_json(capsys, "--policy", str(policy), "--cmdline", "quiet")
    assert code == 1
    assert doc["schema_version"] == 1 and doc["policy"] == "t"
    r = by_id(doc)
    for entry in doc["results"]:  # the documented JSON contract
        assert {"id", "status", "expected", "actual", "why", "fix", "reference"} <= set(entry)
    assert r["vmap-stack"]["status"] == "pass" and r["vmap-stack"]["actual"] == "y"
    assert r["arm-only"]["status"] == "not-applicable"
    assert r["sig-if-modules"]["status"] == "not-applicable"
    assert r["sig-if-modules"]["why"].startswith(
        "applies only when CONFIG_MODULES = y (actual: is not set)")
    assert "arm64 only" in r["arm-only"]["why"]
    assert r["init-on-free"]["status"] == "fail" and r["init-on-free"]["actual"] == "off"
    assert r["lockdown"]["status"] == "fail" and r["lockdown"]["actual"] == "none"
    assert r["kptr"]["status"] == "fail" and r["kptr"]["actual"] == "0"
    assert "lib/vsprintf.c" in r["kptr"]["why"]
    assert r["mitigations"]["actual"] == "absent" and r["mitigations"]["affects"] == ["mds", "l1tf"]


def test_fixes_are_command_line_words_the_kernel_accepts(
        policy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _code, doc = check_json(capsys, "--policy", str(policy), "--cmdline", "")
    fixes = {k: v["fix"] for k, v in by_id(doc).items() if v["fix"]}
    assert fixes["init-on-free"]["cmdline"] == ["init_on_free=1"]
    # Kconfig's defaults leave SECURITY off: lockdown needs building, then the word
    assert fixes["lockdown"]["cmdline"] == ["lockdown=integrity"]
    assert fixes["lockdown"]["config"]["CONFIG_SECURITY_LOCKDOWN_LSM"] == "y"
    assert fixes["lockdown"]["config"]["CONFIG_SECURITY"] == "y"  # what blocked it
    assert "LOCK_DOWN_KERNEL_FORCE_NONE: n -> y" in fixes["lockdown"]["drags"]
    assert fixes["kptr"]["cmdline"] == ["sysctl.kernel.kptr_restrict=1"]
    assert fixes["mitigations"]["cmdline"] == ["mitigations=auto,nosmt"]
    words = " ".join(w for f in fixes.values() for w in f["cmdline"] if not f["config"])
    code, doc = check_json(capsys, "--policy", str(policy), "--cmdline", words)
    statuses = {k: v["status"] for k, v in by_id(doc).items()}
    assert statuses == {"init-on-free": "pass", "lockdown": "fail", "vmap-stack": "pass",
                        "kptr": "pass", "mitigations": "pass", "arm-only": "not-applicable",
                        "sig-if-modules": "not-applicable"}
    assert code == 1
    # without the build change the word alone does nothing: lockdown is not built
    assert "not built" in by_id(doc)["lockdown"]["why"]


def test_a_word_the_kernel_refuses_is_no_pass(policy: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # init_on_free= is read with kstrtobool: "maybe" is refused and changes nothing
    _code, doc = check_json(capsys, "--policy", str(policy), "--cmdline", "init_on_free=maybe")
    free = by_id(doc)["init-on-free"]
    assert free["status"] == "fail" and free["actual"] == "off"
    # the last word wins
    _code, doc = check_json(capsys, "--policy", str(policy), "--cmdline",
                            "init_on_free=1 init_on_free=0")
    assert by_id(doc)["init-on-free"]["status"] == "fail"
    _code, doc = check_json(capsys, "--policy", str(policy), "--cmdline",
                            "init_on_free=0 init_on_free=on")
    assert by_id(doc)["init-on-free"]["status"] == "pass"
    assert any("init_on_free=on" in step for step in by_id(doc)["init-on-free"]["provenance"])


def test_sysctl_file_and_command_line(tmp_path: Path, policy: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    conf = _write(tmp_path, "# hardening\nkernel/kptr_restrict = 2\n", "s.conf")
    _code, doc = check_json(capsys, "--policy", str(policy), "--cmdline", "",
                            "--sysctl", str(conf))
    assert by_id(doc)["kptr"]["status"] == "pass" and by_id(doc)["kptr"]["actual"] == "2"
    _code, doc = check_json(capsys, "--policy", str(policy), "--cmdline",
                            "sysctl.kernel.kptr_restrict=1")
    assert by_id(doc)["kptr"]["status"] == "pass"


def test_fail_on_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    warn = _write(tmp_path, """
[policy]
name = "w"
reference = "https://example.org"
[[item]]
id = "free"
require = "init_on_free = true"
why = "wipe"
severity = "warning"
""")
    assert check(capsys, "--policy", str(warn), "--cmdline", "")[0] == 1
    assert check(capsys, "--policy", str(warn), "--cmdline", "", "--fail-on", "error")[0] == 0
    assert check(capsys, "--policy", str(tmp_path / "missing.toml"), "--cmdline", "")[0] == 2
    assert check(capsys, "--policy", "hardening", "--cmdline", "")[0] == 2  # needs --tree


def test_text_output_names_fixes_and_affected(policy: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _code, out = check(capsys, "--policy", str(policy), "--cmdline", "")
    assert "FAIL   mitigations: cmdline.mitigations = auto,nosmt (actual: absent)" in out
    assert "affects: mds, l1tf" in out
    assert "fix: command line: add init_on_free=1" in out
    assert "vmap-stack" not in out  # passes are listed with --all only
    _code, out = check(capsys, "--policy", str(policy), "--cmdline", "", "--all")
    assert "PASS   vmap-stack" in out and "N/A    arm-only" in out


def test_sarif_junit_github(policy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _code, out = check(capsys, "--policy", str(policy), "--cmdline", "", "--format", "sarif")
    log = json.loads(out)
    import jsonschema

    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    (run,) = log["runs"]
    assert {r["ruleId"] for r in run["results"]} == {"init-on-free", "lockdown", "kptr",
                                                       "mitigations"}
    _code, out = check(capsys, "--policy", str(policy), "--cmdline", "", "--format", "junit")
    suite = ET.fromstring(out).find("testsuite")
    assert suite is not None and suite.get("failures") == "4" and suite.get("tests") == "7"
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == {"init-on-free", "lockdown", "kptr", "mitigations"}
    _code, out = check(capsys, "--policy", str(policy), "--cmdline", "", "--format", "github")
    lines = out.splitlines()
    assert len(lines) == 4 and all(line.startswith("::error ") for line in lines)
    assert any("title=lockdown::" in line for line in lines)


GLOB = """
[policy]
name = "g"
reference = "https://example.org/policy"

[[item]]
id = "vulns"
require = "vulnerabilities.* = true"
exclude = ["vulnerabilities.old_microcode"]
why = "every mitigation on"

[[item]]
id = "nothing"
require = "no_such_feature.* = true"
why = "matches nothing"
"""


def test_a_feature_glob_is_one_item_naming_what_fails(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    path = _write(tmp_path, GLOB)
    code, doc = check_json(capsys, "--policy", str(path))
    r = by_id(doc)
    assert r["nothing"]["status"] == "not-applicable"
    assert "old_microcode" not in r["vulns"]["actual"]
    # (the bundled model's defaults may leave one unbuilt: what the command line adds is named)
    before = r["vulns"]["affects"]
    code, doc = check_json(capsys, "--policy", str(path), "--cmdline", "retbleed=off nospectre_v1")
    r = by_id(doc)
    assert code == 1 and r["vulns"]["status"] == "fail"
    assert r["vulns"]["affects"] == sorted({*before, "retbleed", "spectre_v1"})
    assert r["vulns"]["actual"].startswith(f"{len(before) + 2} of ")
    code, out = check(capsys, "--policy", str(path), "--cmdline", "retbleed=off")
    assert "       affects: " + ", ".join(sorted({*before, "retbleed"})) + "\n" in out


@pytest.mark.parametrize("entry, message", [
    ('require = "CONFIG_X* = y"\nwhy = "w"', "only a feature subject may be a glob"),
    ('require = "CONFIG_X = y"\nwhy = "w"\nexclude = ["a"]', "for a feature glob only"),
])
def test_a_glob_is_a_features_only(tmp_path: Path, entry: str, message: str) -> None:
    path = _write(tmp_path, f'[policy]\nname = "b"\nreference = "https://e"\n[[item]]\n'
                            f'id = "a"\n{entry}\n')
    with pytest.raises(KpolicyError, match=message):
        load_policy(str(path))


def test_a_command_line_fix_goes_before_a_lone_dashdash(capsys: pytest.CaptureFixture[str],
                                                        policy: Path) -> None:
    """Words after a lone `--` are init's arguments: a fix appended there would not take
    effect, so fixes go before it (and are proven there)."""
    _code, doc = check_json(capsys, "--policy", str(policy), "--cmdline",
                           "quiet -- init_on_free=1 --some-init-flag")
    r = by_id(doc)
    assert r["init-on-free"]["status"] == "fail"  # init's argument, not the kernel's
    assert r["init-on-free"]["fix"]["cmdline"] == ["init_on_free=1"]
