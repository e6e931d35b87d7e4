"""Handlers whose value is more than one word or list: the kernel's parser, one small function
each, named by rules/params/ (`accept = "function"`, `function = "<name>"`).

A function takes the value (None: no "=") and returns the state the handler sets, or None when
the handler consumes the value and changes nothing. The handlers here return 0 (the kernel never
refuses the word) unless REFUSES names them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional, Union

from kpolicy.kernel import KSTRTOBOOL_ENABLE_DISABLE, kstrtobool

State = Union[bool, int, str]
ValueParser = Callable[[Optional[str]], Optional[State]]

# kernel/cpu.c (7.2) global_mitigations[]: matched by strncmp in this order
_GLOBAL_72 = ("auto,nosmt", "auto", "off")


def _split_mitigations_72(value: Optional[str]) -> tuple[Optional[str], Optional[list[str]]]:
    """7.2 mitigations_parse_cmdline: (the global option matched, the attack-vector items that
    follow it, or None where the rest is refused with "Unsupported mitigations=")."""
    arg = value or ""
    hit = next((g for g in _GLOBAL_72 if arg.startswith(g)), None)
    rest = arg[len(hit):] if hit else arg
    if not rest:
        return hit, []
    if not rest.startswith(","):
        return hit, None
    return hit, rest[1:].split(",")


def mitigations_global_72(value: Optional[str]) -> Optional[State]:
    """cpu_mitigations after mitigations=VALUE in 7.2: the global option its prefix names."""
    return _split_mitigations_72(value)[0]


_VECTOR_ITEMS_72 = ("no_user_kernel", "no_user_user", "no_guest_host", "no_guest_guest",
                    "no_cross_thread")


def _vector_72(vector: str, value: Optional[str]) -> Optional[State]:
    """attack_vectors[VECTOR] after mitigations=VALUE in 7.2: cleared by mitigations=off (the
    memset, which a later mitigations=auto does not undo) and by a no_<vector> item read before
    the first item match_token() refuses."""
    hit, items = _split_mitigations_72(value)
    if hit == "off":
        return False
    for item in items or ():
        if item == "no_" + vector:
            return False
        if item not in _VECTOR_ITEMS_72:
            return None  # pr_crit("Unsupported mitigations options"): the rest is not read
    return None


def mitigations_user_kernel_72(value: Optional[str]) -> Optional[State]:
    """attack_vectors[CPU_MITIGATE_USER_KERNEL] after mitigations=VALUE in 7.2."""
    return _vector_72("user_kernel", value)


def mitigations_user_user_72(value: Optional[str]) -> Optional[State]:
    """attack_vectors[CPU_MITIGATE_USER_USER] after mitigations=VALUE in 7.2."""
    return _vector_72("user_user", value)


def mitigations_guest_host_72(value: Optional[str]) -> Optional[State]:
    """attack_vectors[CPU_MITIGATE_GUEST_HOST] after mitigations=VALUE in 7.2."""
    return _vector_72("guest_host", value)


def mitigations_guest_guest_72(value: Optional[str]) -> Optional[State]:
    """attack_vectors[CPU_MITIGATE_GUEST_GUEST] after mitigations=VALUE in 7.2."""
    return _vector_72("guest_guest", value)


def mitigations_smt_72(value: Optional[str]) -> Optional[State]:
    """smt_mitigations after mitigations=VALUE in 7.2: off with mitigations=off, on with
    auto,nosmt (a later plain auto leaves it), off again with a no_cross_thread item read before
    the first item match_token() refuses."""
    hit, items = _split_mitigations_72(value)
    state: Optional[State] = {"off": "off", "auto,nosmt": "on"}.get(hit or "")
    for item in items or ():
        if item == "no_cross_thread":
            state = "off"
        elif item not in _VECTOR_ITEMS_72:
            break
    return state


def _retbleed_items(value: Optional[str], modes: tuple[str, ...]) -> tuple[Optional[str], bool]:
    """retbleed_parse_cmdline: (the last mode word of the comma list, whether "nosmt" is in
    it); other items are logged and skipped (6.12 and 7.2 also take "force")."""
    mode: Optional[str] = None
    nosmt = False
    for item in (value or "").split(","):
        if item in modes:
            mode = item
        elif item == "nosmt":
            nosmt = True
    return mode, nosmt


_RETBLEED_61 = ("off", "auto", "unret", "ibpb")
_RETBLEED_612 = (*_RETBLEED_61, "stuff")


def retbleed_61(value: Optional[str]) -> Optional[State]:
    """retbleed_cmd after retbleed=VALUE in 6.1 (no "stuff" yet)."""
    return _retbleed_items(value, _RETBLEED_61)[0]


def retbleed_612(value: Optional[str]) -> Optional[State]:
    """retbleed_cmd (7.2: retbleed_mitigation) after retbleed=VALUE from 6.12."""
    return _retbleed_items(value, _RETBLEED_612)[0]


def retbleed_nosmt(value: Optional[str]) -> Optional[State]:
    """retbleed_nosmt after retbleed=VALUE: set by a "nosmt" item, never cleared."""
    return True if _retbleed_items(value, _RETBLEED_612)[1] else None


def nosmt(value: Optional[str]) -> Optional[State]:
    """kernel/cpu.c smt_cmdline_disable: cpu_smt_disable(str && !strcmp(str, "force"))."""
    return "forceoff" if value == "force" else "off"


def srbds(value: Optional[str]) -> Optional[State]:
    """srbds_parse_cmdline: srbds_off = !strcmp(str, "off"), so any other word turns it on."""
    return "off" if value == "off" else "on"


def _simple_strtoul(value: str, saturate: bool) -> int:
    """simple_strtoul(VALUE, NULL, 0): the base from the prefix (0x with a hex digit after it:
    16, 0: 8, else 10), then the longest run of digits of that base; no sign, no blanks. On
    overflow 6.1 and 6.12 wrap modulo 2**64, 7.2 saturates at ULLONG_MAX (lib/kstrtox.c
    _parse_integer_limit)."""
    base = 10
    if value.startswith("0"):
        hexa = value[1:2].lower() == "x" and value[2:3] in set("0123456789abcdefABCDEF")
        base = 16 if hexa else 8
        value = value[2:] if hexa else value
    result = 0
    for ch in value:
        digit = int(ch, 16) if ch in "0123456789abcdefABCDEF" else base
        if digit >= base:
            break
        result = result * base + digit
        if result >= 1 << 64:
            result = (1 << 64) - 1 if saturate else result % (1 << 64)
    return result


def _vdso32(value: Optional[str], saturate: bool) -> Optional[State]:
    """vdso32_enabled after vdso32=VALUE (arch/x86/entry/vdso/vdso32-setup.c vdso32_setup): the
    unsigned long stored in an unsigned int (the low 32 bits), on when 1; above 1 warns "no
    longer allowed" and turns it off."""
    return _simple_strtoul(value or "", saturate) % (1 << 32) == 1


def vdso32_61(value: Optional[str]) -> Optional[State]:
    """vdso32_enabled after vdso32=VALUE in 6.1 and 6.12 (an overflowing number wraps)."""
    return _vdso32(value, saturate=False)


def vdso32_72(value: Optional[str]) -> Optional[State]:
    """vdso32_enabled after vdso32=VALUE in 7.2 (an overflowing number saturates: off)."""
    return _vdso32(value, saturate=True)


def cfi_x86(value: Optional[str]) -> Optional[State]:
    """x86 cfi_mode after cfi=VALUE (6.12, 7.2 cfi_parse_cmdline): the last of auto, off,
    kcfi, fineibt in the comma list; other items set other things or are logged and skipped."""
    mode: Optional[str] = None
    for item in (value or "").split(","):
        if item in ("auto", "off", "kcfi", "fineibt"):
            mode = item
    return mode


_CFI_MODES = ("auto", "off", "kcfi", "fineibt")


def _cfi_walk(value: Optional[str]) -> tuple[Optional[str], bool, bool, bool]:
    """x86 cfi_parse_cmdline over VALUE's items (accumulated: every cfi= so far): the last mode
    item (None: the build's default, which is never fineibt), whether an item cleared cfi_rand
    (off, norand), and whether 7.2's paranoid and bhi items were taken: each only while the mode
    read so far is fineibt ("CFI: ignoring paranoid; depends on fineibt."), and neither is ever
    cleared. bhi also needs FINEIBT_BHI, which cfi.bhi's build option stands for."""
    mode: Optional[str] = None
    norand = paranoid = bhi = False
    for item in (value or "").split(","):
        if item in _CFI_MODES:
            mode = item
            norand = norand or item == "off"
        elif item == "norand":
            norand = True
        elif item == "paranoid" and mode == "fineibt":
            paranoid = True
        elif item == "bhi" and mode == "fineibt":
            bhi = True
    return mode, norand, paranoid, bhi


def cfi_rand_x86(value: Optional[str]) -> Optional[State]:
    """cfi_rand after the cfi= values so far (6.12, 7.2): cleared by "off" and "norand"."""
    return False if _cfi_walk(value)[1] else None


def cfi_paranoid_x86(value: Optional[str]) -> Optional[State]:
    """cfi_paranoid after the cfi= values so far (7.2): "on" once a paranoid item was taken;
    else "auto" when the last mode item is auto (__apply_fineibt may still set it), "off" when
    it is another mode, and unchanged without a mode item."""
    mode, _norand, paranoid, _bhi = _cfi_walk(value)
    if paranoid:
        return "on"
    if mode is None:
        return None
    return "auto" if mode == "auto" else "off"


def cfi_bhi_x86(value: Optional[str]) -> Optional[State]:
    """cfi_bhi after the cfi= values so far (7.2): set by a bhi item taken under fineibt."""
    return True if _cfi_walk(value)[3] else None


def ibt(value: Optional[str]) -> Optional[State]:
    """x86 ibt_setup: "off" clears X86_FEATURE_IBT; any other value leaves IBT as it is."""
    return False if value == "off" else None


def cfi_warn_x86(value: Optional[str]) -> Optional[State]:
    """x86 cfi_warn after cfi=VALUE (7.2 cfi_parse_cmdline): set by a "warn" item."""
    return True if "warn" in (value or "").split(",") else None


# mm/slub.c parse_slub_debug_flags: the letters that set a debug flag ('o' and unknown letters
# set none; '-' clears the block's flags)
_SLUB_FLAG_LETTERS = frozenset("fzputa")


def _slub_debug_blocks(value: str) -> list[tuple[str, bool]]:
    """setup_slub_debug's ';' blocks of VALUE (empty ones skipped): each block's flag letters,
    and whether a ',' slab list follows them."""
    out = []
    for block in value.split(";"):
        if block:
            flags, comma, _slabs = block.partition(",")
            out.append((flags, bool(comma)))
    return out


def slub_debug_flags(value: Optional[str]) -> Optional[State]:
    """Whether slub_debug (the global flags) is non-zero after slub_debug=VALUE
    (setup_slub_debug): no value or an empty one is full debugging; otherwise the last ';' block
    without a slab list sets them, on when any letter after its last '-' sets a flag ('o' and
    unknown letters set none). Blocks with a slab list leave the global flags as they were
    (None) when no block goes without one: slub_debug_slab_list says what they do."""
    if not value:
        return True
    global_on: Optional[bool] = None
    for flags, listed in _slub_debug_blocks(value):
        if listed:
            continue
        on = False
        for letter in flags.lower():
            if letter == "-":
                on = False
            elif letter in _SLUB_FLAG_LETTERS:
                on = True
        global_on = on
    if global_on is None and not any(listed for _f, listed in _slub_debug_blocks(value)):
        return False  # only empty blocks (";;"): the global flags are 0
    return global_on


def slub_debug_slab_list(value: Optional[str]) -> Optional[State]:
    """Whether slub_debug=VALUE names caches to debug (a ';' block with a ',' slab list): it sets
    slub_debug_string, which no later word clears (None: this word leaves it as it was)."""
    return True if any(listed for _f, listed in _slub_debug_blocks(value or "")) else None


def hash_pointers_72(value: Optional[str]) -> Optional[State]:
    """lib/vsprintf.c hash_pointers_mode_parse: "auto", "never" or "always"; any other word,
    or none, is "auto" (with a warning)."""
    return value if value in ("never", "always") else "auto"


def _first_prefix(item: str, words: tuple[str, ...]) -> Optional[str]:
    """The first of WORDS ITEM starts with (the handlers' if/else chain of strncmp), or None."""
    return next((w for w in words if item.startswith(w)), None)


def _items(value: Optional[str]) -> list[str]:
    """The comma-separated items of VALUE, empty ones dropped (the handlers skip commas)."""
    return [item for item in (value or "").split(",") if item]


# arch/x86/kernel/pci-dma.c iommu_setup: each item runs every strncmp test in this order (not an
# else-if chain); "usedac" returns 1 at once, so the items after it are never read.
def _iommu_x86_items(value: Optional[str]) -> list[str]:
    items = []
    for item in _items(value):
        if item.startswith("usedac"):
            break
        items.append(item)
    return items


def iommu_x86_usedac(value: Optional[str]) -> bool:
    """Whether x86's iommu_setup returns 1 for VALUE (an item starting with "usedac"): the items
    before it are applied, and do_early_param prints "Malformed early option 'iommu'"."""
    return any(item.startswith("usedac") for item in _items(value))


def iommu_x86_passthrough(value: Optional[str]) -> Optional[State]:
    """The default domain after x86's iommu=VALUE: "pt" sets passthrough, "nopt" translated
    (iommu_set_default_*(true)), each a prefix; the last item that says one wins."""
    state: Optional[State] = None
    for item in _iommu_x86_items(value):
        if item.startswith("pt"):
            state = True
        if item.startswith("nopt"):
            state = False
    return state


def iommu_x86_off(value: Optional[str]) -> Optional[State]:
    """no_iommu after x86's iommu=VALUE: an item starting with "off" sets it (never cleared),
    and with it the Intel and AMD IOMMU drivers do not start."""
    return False if any(i.startswith("off") for i in _iommu_x86_items(value)) else None


# drivers/iommu/intel/iommu.c intel_iommu_setup: an else-if chain of strncmp, same in 6.1-7.2
_INTEL_IOMMU = ("on", "off", "igfx_off", "intgpu_off", "forcedac", "strict", "sp_off", "sm_on",
                "sm_off", "tboot_noforce")


def _intel_iommu(value: Optional[str], states: dict[str, State]) -> Optional[State]:
    state: Optional[State] = None
    for item in _items(value):
        word = _first_prefix(item, _INTEL_IOMMU)
        if word in states:
            state = states[word]
    return state


def intel_iommu_enabled(value: Optional[str]) -> Optional[State]:
    """!dmar_disabled after intel_iommu=VALUE: "on" clears it, "off" sets it; the last wins."""
    return _intel_iommu(value, {"on": True, "off": False})


def intel_iommu_strict(value: Optional[str]) -> Optional[State]:
    """iommu_dma_strict after intel_iommu=VALUE: the deprecated "strict" item calls
    iommu_set_dma_strict(); nothing clears it."""
    return _intel_iommu(value, {"strict": True})


def intel_iommu_sm(value: Optional[str]) -> Optional[State]:
    """intel_iommu_sm after intel_iommu=VALUE: "sm_on" and "sm_off"; the last wins."""
    return _intel_iommu(value, {"sm_on": True, "sm_off": False})


# drivers/iommu/amd/init.c parse_amd_iommu_options: an else-if chain of strncmp (6.12 and 7.2
# add nohugepages and v2_pgsizes_only, which set neither state read here)
_AMD_IOMMU = ("fullflush", "force_enable", "off", "force_isolation", "pgtbl_v1", "pgtbl_v2",
              "irtcachedis", "nohugepages", "v2_pgsizes_only")


def _amd_iommu(value: Optional[str], word: str, state: State) -> Optional[State]:
    hit = any(_first_prefix(item, _AMD_IOMMU) == word for item in _items(value))
    return state if hit else None


def amd_iommu_strict(value: Optional[str]) -> Optional[State]:
    """iommu_dma_strict after amd_iommu=VALUE: the deprecated "fullflush" item calls
    iommu_set_dma_strict(); nothing clears it."""
    return _amd_iommu(value, "fullflush", True)


def amd_iommu_enabled(value: Optional[str]) -> Optional[State]:
    """!amd_iommu_disabled after amd_iommu=VALUE: "off" sets it; nothing clears it."""
    return _amd_iommu(value, "off", False)


def efi_disable_pci_dma(value: Optional[str]) -> Optional[State]:
    """efi_disable_pci_dma after the EFI stub reads efi=VALUE (efi_parse_options): the exact
    item "disable_early_pci_dma" sets it, then "no_disable_early_pci_dma" clears it, so with
    both in one value the clear wins."""
    items = (value or "").split(",")
    state: Optional[State] = None
    if "disable_early_pci_dma" in items:
        state = True
    if "no_disable_early_pci_dma" in items:
        state = False
    return state


# Handlers that apply part of a value and then return non-zero (rules/params `malformed_after`):
# whether VALUE is one of those.
PARTIAL_ERRORS: dict[str, Callable[[Optional[str]], bool]] = {
    "iommu_x86_usedac": iommu_x86_usedac,
}


# arch/x86/kvm/mmu/mmu.c set_nx_huge_pages (6.1, 6.12, 7.2 alike): sysfs_streq on these words,
# then kstrtobool (true: force, false: off), else -EINVAL
_NX_HUGE_PAGES_WORDS = ("off", "force", "auto", "never")


def _nx_huge_pages(value: Optional[str], version: tuple[int, int, int]) -> Optional[State]:
    if value in _NX_HUGE_PAGES_WORDS:
        return value
    taken = kstrtobool(value, version)
    if taken is None:
        return None
    return "force" if taken else "off"


def nx_huge_pages_61(value: Optional[str]) -> Optional[State]:
    """kvm's nx_huge_pages mode after kvm.nx_huge_pages=VALUE, kstrtobool before 6.16."""
    return _nx_huge_pages(value, (6, 15, 0))


def nx_huge_pages_616(value: Optional[str]) -> Optional[State]:
    """The same from 6.16, where kstrtobool also takes enable/disable."""
    return _nx_huge_pages(value, KSTRTOBOOL_ENABLE_DISABLE)


# value parsers whose handler can return an error: (value, version) -> whether it refuses
REFUSES: dict[str, Callable[[Optional[str], tuple[int, int, int]], bool]] = {
    "nx_huge_pages_61": lambda v, ver: _nx_huge_pages(v, (6, 15, 0)) is None,
    "nx_huge_pages_616": lambda v, ver: _nx_huge_pages(v, KSTRTOBOOL_ENABLE_DISABLE) is None,
}


PARSERS: dict[str, ValueParser] = {
    "nx_huge_pages_61": nx_huge_pages_61,
    "nx_huge_pages_616": nx_huge_pages_616,
    "cfi_warn_x86": cfi_warn_x86,
    "ibt": ibt,
    "cfi_x86": cfi_x86,
    "cfi_rand_x86": cfi_rand_x86,
    "cfi_paranoid_x86": cfi_paranoid_x86,
    "cfi_bhi_x86": cfi_bhi_x86,
    "vdso32_61": vdso32_61,
    "vdso32_72": vdso32_72,
    "slub_debug_flags": slub_debug_flags,
    "slub_debug_slab_list": slub_debug_slab_list,
    "hash_pointers_72": hash_pointers_72,
    "iommu_x86_passthrough": iommu_x86_passthrough,
    "iommu_x86_off": iommu_x86_off,
    "intel_iommu_enabled": intel_iommu_enabled,
    "intel_iommu_strict": intel_iommu_strict,
    "intel_iommu_sm": intel_iommu_sm,
    "amd_iommu_strict": amd_iommu_strict,
    "amd_iommu_enabled": amd_iommu_enabled,
    "efi_disable_pci_dma": efi_disable_pci_dma,
    "mitigations_smt_72": mitigations_smt_72,
    "retbleed_61": retbleed_61,
    "retbleed_612": retbleed_612,
    "retbleed_nosmt": retbleed_nosmt,
    "nosmt": nosmt,
    "srbds": srbds,
    "mitigations_global_72": mitigations_global_72,
    "mitigations_user_kernel_72": mitigations_user_kernel_72,
    "mitigations_user_user_72": mitigations_user_user_72,
    "mitigations_guest_host_72": mitigations_guest_host_72,
    "mitigations_guest_guest_72": mitigations_guest_guest_72,
}
