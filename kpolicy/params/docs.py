"""kernel-parameters.txt as DocEntry records, through grammars/kernel_params.lark.

The grammar describes the layout; this module classifies lines for it, reads the parse trees into
the model, and records every irregular layout as an Irregularity instead of failing.
"""

from __future__ import annotations

import re
from contextlib import suppress
from functools import lru_cache
from itertools import product
from math import prod
from typing import TYPE_CHECKING, Optional

from kpolicy import treefs
from kpolicy.errors import KpolicyError
from kpolicy.kconfig.model import Location
from kpolicy.params.formats import parse_format
from kpolicy.params.model import DocCondition, DocEntry, Irregularity, ParamFormat
from kpolicy.resources import grammar_path

if TYPE_CHECKING:
    from typing import Protocol

    from lark import Lark, Token, Tree

    from kpolicy.cache import Cache
    from kpolicy.tree import KernelTree

    class _Note(Protocol):
        def __call__(self, kind: str, message: str, index: int) -> None: ...

DOC_FILE = "Documentation/admin-guide/kernel-parameters.txt"
TAGS_FILE = "Documentation/admin-guide/kernel-parameters.rst"

# Used when neither kernel-parameters.rst nor the .txt preamble lists the tags: the list of
# Linux 6.1-7.2 (kernel-parameters.rst up to 6.x, the .txt preamble from 7.x).
BUILTIN_TAGS = frozenset(
    {
        "ACPI", "AGP", "ALSA", "APIC", "APM", "APPARMOR", "ARM", "ARM64", "AX25", "BOOT",
        "BUGS", "CLK", "CMA", "DRM", "DYNAMIC_DEBUG", "EARLY", "EDD", "EFI", "EVM", "FB",
        "FTRACE", "GCOV", "HIBERNATION", "HW", "HYPER_V", "IA-64", "IMA", "IP_PNP", "IPV6",
        "ISAPNP", "ISDN", "ISOL", "JOY", "KGDB", "KNL", "KVM", "LIBATA", "LOONGARCH", "LOOP",
        "LP", "M68k", "MDA", "MIPS", "MOUSE", "MSI", "MTD", "NET", "NFS", "NUMA", "NVME", "OF",
        "PARISC", "PCI", "PCIE", "PCMCIA", "PNP", "PPC", "PPT", "PS2", "PV_OPS", "RAM", "RDT",
        "RISCV", "S390", "SCSI", "SDW", "SECURITY", "SELINUX", "SERIAL", "SH", "SMP", "SPARC",
        "SUSPEND", "SWSUSP", "TPM", "UMS", "USB", "USBHID", "V4L", "VGA", "VMMIO", "VT", "WDT",
        "X86", "X86-32", "X86-64", "X86_UV", "XEN", "XTENSA"
    }
)

# Part of the cache key: bump when DocEntry's construction changes without a grammar change.
_SCHEMA = "docs-2"
# The heading that ends the 7.x preamble.
_HEADING = "Kernel parameters"
_NAME_INDENT = 8
# A Format: spec spread over lines stops after this many continuation lines.
_FORMAT_MAX_LINES = 6
# Longer "sentences" are not searched for conditions (bounded time on hostile input).
_MAX_SENTENCE = 2000
# A name with {a,b} groups stands for at most this many names.
_MAX_EXPANSION = 64

# "name=off" writes a value into the name; "lpj=n" or "name=size" name a placeholder instead.
_LITERAL_VALUE = re.compile(r"[A-Za-z0-9_.\-]{2,}|[0-9]")
_PLACEHOLDERS = frozenset({"size", "seconds", "number", "value", "nn"})
_CONFIG_SYMBOL = re.compile(r"\bCONFIG_([A-Za-z0-9_]*[A-Za-z0-9])")
_DEFAULT_WORD = re.compile(r"\bdefault", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.;])\s+(?=[A-Z(\"'])")
# A condition: CONFIG_X, optionally "=y|n|m" or "is (not) set/enabled/disabled".
_CONDITION_SYMBOL = re.compile(
    r"\bCONFIG_([A-Za-z0-9_]*[A-Za-z0-9])"
    r"(?:\s*=\s*([ynm])\b|\s+is\s+(not\s+set|not\s+enabled|disabled|unset|set|enabled))?",
)
# Sentences saying the parameter does nothing under the condition that follows.
_NO_EFFECT = re.compile(
    r"\b(?:no\s+effect|ignored|not\s+available|not\s+supported|unavailable)\b.*?\b(?:if|when|with)\b",
    re.IGNORECASE,
)
# Sentences saying the parameter needs the condition that follows.
_REQUIRES = re.compile(
    r"\b(?:only\s+(?:on|if|when|with|for|available|effective|valid|works|applies)|requires?|"
    r"must\s+be\s+(?:enabled|set|built)|depends\s+on|needs?|available\s+(?:if|when|with)|"
    r"(?:effect|valid|effective)\s+(?:if|when|with)|"
    r"kernels?\s+(?:where|with|built\s+with))\b",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    from lark import Lark

    return Lark(
        grammar_path("kernel_params.lark").read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        start=["document", "head", "tagline", "tagdef"],
    )


def _indent(line: str) -> tuple[int, str]:
    """(columns of leading blanks with tabs at 8, the rest of the line without trailing blanks)."""
    expanded = line.expandtabs(8).rstrip()
    rest = expanded.lstrip(" ")
    return len(expanded) - len(rest), rest


def _classify(lines: list[str]) -> str:
    """One class character per line, as grammars/kernel_params.lark describes."""
    classes = []
    for line in lines:
        indent, rest = _indent(line)
        if not rest:
            classes.append("E")
        elif indent == 0:
            classes.append("K" if rest == _HEADING else "T")
        elif indent == _NAME_INDENT:
            classes.append("H")
        else:
            classes.append("B")
    text = "".join(classes)
    heading = text.find("K")
    if heading < 0:
        return text
    # Before the heading everything is preamble; a second heading is trailer text.
    return "P" * heading + "K" + text[heading + 1 :].replace("K", "T")


def _tokens(tree: Tree[Token]) -> list[Token]:
    return [c for c in tree.children if isinstance(c, str)]


def _line_indexes(token: Optional[Token]) -> list[int]:
    """0-based line numbers a run-of-lines token covers: each class character is one line."""
    if token is None:
        return []
    start = token.start_pos or 0
    return list(range(start, start + len(token)))


def _subtree(tree: Tree[Token], name: str) -> Optional[Tree[Token]]:
    for c in tree.children:
        if getattr(c, "data", None) == name:
            return c  # type: ignore[return-value]
    return None


def parse_tag_list(text: str) -> frozenset[str]:
    """The tags a kernel-parameters.rst (or the 7.x .txt preamble) defines; empty when none."""
    from lark.exceptions import LarkError

    lines = text.split("\n")
    start = next((i for i, s in enumerate(lines) if s.rstrip().endswith("applicable::")), -1)
    tags: set[str] = set()
    for line in lines[start + 1 :]:
        if line.startswith(".. include::") or line.strip() == _HEADING:
            break
        indent, rest = _indent(line)
        if indent != _NAME_INDENT:
            continue
        try:
            tree = _parser().parse(rest, start="tagdef")
        except LarkError:
            continue
        tags.add(str(_tokens(tree)[0]).rstrip("="))
    return frozenset(tags)


@lru_cache(maxsize=4096)
def _expand_braces(name: str) -> tuple[str, ...]:
    """kvm-{amd,intel}.x -> (kvm-amd.x, kvm-intel.x); names without braces are unchanged."""
    parts = re.split(r"\{([^{}]*)\}", name)
    if len(parts) == 1:
        return (name,)
    options = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    if prod(len(o) for o in options) > _MAX_EXPANSION:  # hostile input, not a kernel name
        return (name,)
    return tuple("".join(combo) for combo in product(*options))


def _sentences(body: str) -> list[str]:
    """BODY's sentences, whitespace collapsed; a blank line or a line ending in "." ends one
    (option tables go on in lower case after a full stop: "...=y.\n off: ...")."""
    out: list[str] = []
    for chunk in re.split(r"\n\s*\n|(?<=\.)\n", body):
        flat = " ".join(chunk.split())
        out.extend(s for s in _SENTENCE_END.split(flat) if s)
    return out


def _symbols(text: str) -> list[str]:
    return [m.group(1) for m in _CONDITION_SYMBOL.finditer(text)]


def _conditions(sentences: list[str]) -> tuple[DocCondition, ...]:
    """Conditions stated as "no effect if CONFIG_X=n" or "only ... CONFIG_X" in SENTENCES."""
    found: dict[str, DocCondition] = {}
    for sentence in sentences:
        # "Default depends on CONFIG_X" is no condition; a huge "sentence" is not prose.
        if _DEFAULT_WORD.search(sentence) or len(sentence) > _MAX_SENTENCE:
            continue
        negated = _NO_EFFECT.search(sentence)
        required = _REQUIRES.search(sentence)
        if not (negated or required):
            continue
        clause_start = (negated or required).end()  # type: ignore[union-attr]
        for m in _CONDITION_SYMBOL.finditer(sentence, clause_start):
            stated = m.group(2) or m.group(3) or "y"
            holds = "n" if stated in ("n", "not set", "not enabled", "disabled", "unset") else "y"
            value = ("n" if holds == "y" else "y") if negated else holds
            found.setdefault(m.group(1), DocCondition(m.group(1), value, sentence))
    return tuple(found.values())


def _dedent(lines: list[str]) -> list[str]:
    expanded = [line.expandtabs(8).rstrip() for line in lines]
    widths = [len(line) - len(line.lstrip(" ")) for line in expanded if line]
    cut = min(widths, default=0)
    return [line[cut:] for line in expanded]


def _format_spec(body_lines: list[str]) -> Optional[str]:
    """The text of the entry's "Format:" line, with the lines it continues on."""
    for i, line in enumerate(body_lines):
        text = line.strip()
        if not text.startswith("Format:"):
            continue
        spec = text[len("Format:") :].strip()
        j = i + 1
        while j < len(body_lines) and j <= i + _FORMAT_MAX_LINES:
            nxt = body_lines[j].strip()
            unbalanced = spec.count("{") > spec.count("}") or spec.count('"') % 2 == 1
            if not nxt or not (not spec or unbalanced or spec.endswith(("|", ","))):
                break
            spec = f"{spec} {nxt}".strip()
            j += 1
        return spec
    return None


class _Builder:
    """Reads the parse trees of one file into DocEntry records."""

    def __init__(self, lines: list[str], file: str, known_tags: frozenset[str]) -> None:
        self.lines = lines
        self.file = file
        self.known_tags = known_tags

    def where(self, index: int) -> Location:
        return Location(self.file, index + 1)

    def entry(self, tree: Tree[Token]) -> DocEntry:
        from lark.exceptions import LarkError

        names_token, *body_token = _tokens(tree)
        head_indexes = _line_indexes(names_token)
        body_indexes = _line_indexes(body_token[0] if body_token else None)
        irregular: list[Irregularity] = []

        def note(kind: str, message: str, index: int) -> None:
            irregular.append(Irregularity(kind, message, self.where(index)))

        names: list[str] = []
        spellings: list[str] = []
        tags: list[str] = []
        preface: list[str] = []  # text written on the name lines
        topic: list[str] = []  # "timers" of "watchdog timers [HW,WDT]"
        value_specs: list[str] = []
        takes_value = value_optional = False
        for index in head_indexes:
            _, rest = _indent(self.lines[index])
            try:
                head = _parser().parse(rest, start="head")
            except LarkError:
                word = rest.split()[0]
                note("unparsable-name-line", f"name line not understood: {rest!r}", index)
                names.append(word.rstrip("=") or word)
                spellings.append(word)
                continue
            spelling = _subtree(head, "spelling")
            assert spelling is not None
            parts = {t.type: str(t) for t in _tokens(spelling)}
            base = parts["NAME"].strip("()") or parts["NAME"]
            size_tags = parts.get("SIZE_TAGS")
            if size_tags is not None:
                # "nn[KMG,X86,EARLY]": the value's size suffixes, then the entry's tags
                suffixes, _, rest = size_tags[1:-1].partition(",")
                parts["VALUE"] = parts.get("VALUE", "") + f"[{suffixes.strip()}]"
                tags += self.tags(f" [{rest}]", index, note)
                note("tags-in-size-suffix", f"tags of {base!r} inside its size suffix "
                     f"{size_tags}", index)
            spellings.append("".join(_tokens(spelling)))  # as written
            bases = [base]
            if "ALTERNATIVES" in parts:
                bases += [base + alt for alt in parts["ALTERNATIVES"][1:-1].split("|") if alt]
            for b in bases:
                names.extend(n for n in _expand_braces(b) if n not in names)
            if "OPTIONAL_VALUE" in parts:
                takes_value = value_optional = True
            if "EQUALS" in parts:
                takes_value = True
                if parts["EQUALS"][0] in " \t":
                    note("spaces-around-equals", f"blank before '=' in {base!r}", index)
            value = parts.get("VALUE")
            if value is not None:
                if _LITERAL_VALUE.fullmatch(value) and value not in _PLACEHOLDERS:
                    note("value-in-name", f"value {value!r} written into the name {base!r}", index)
                else:
                    value_specs.append(value)
            for tok in _tokens(head):
                if tok.type == "TOPIC":
                    topic.append(" ".join((base, *tok.split())))
                elif tok.type == "TAGS":
                    tags += self.tags(str(tok), index, note)
                    if tok[0] not in " \t":
                        note("tags-without-blank", f"no blank between {base!r} and its tags", index)
                elif tok.type == "DESCRIPTION":
                    preface.append(str(tok).strip())
                    note("description-on-name-line", f"description on the name line of {base!r}",
                         index)
        if len(head_indexes) > 1:
            note("stacked-entry", f"{len(head_indexes)} name lines share one description",
                 head_indexes[0])

        body_lines = [self.lines[i] for i in body_indexes]
        while body_lines and not body_lines[-1].strip():
            body_lines.pop()
            body_indexes.pop()
        if not tags and body_lines:
            indent, first = _indent(body_lines[0])
            tagline = None
            if first.startswith("["):
                with suppress(LarkError):
                    tagline = _parser().parse(first, start="tagline")
            if tagline is not None:
                tags_token, *description = _tokens(tagline)
                tags += self.tags(str(tags_token), body_indexes[0], note)
                note("tags-on-next-line", f"tags of {names[0]!r} on the line after its name",
                     body_indexes[0])
                if description:
                    body_lines[0] = " " * indent + str(description[0]).strip()
                else:
                    body_lines.pop(0)
                    body_indexes.pop(0)
        if not tags:
            note("missing-tags", f"no [TAGS] for {names[0]!r}", head_indexes[0])

        body = "\n".join(preface + _dedent(body_lines))
        fmt = self.format(body_lines, value_specs)
        # Only sentences that name a CONFIG_ symbol can state a default symbol or a condition.
        sentences = [s for s in _sentences(body) if "CONFIG_" in s] if "CONFIG_" in body else []
        defaults: list[str] = []
        for sentence in sentences:
            if _DEFAULT_WORD.search(sentence):
                defaults += [s for s in _symbols(sentence) if s not in defaults]
        mentioned = list(dict.fromkeys(m.group(1) for m in _CONFIG_SYMBOL.finditer(body)))
        last = body_indexes[-1] if body_indexes else head_indexes[-1]
        return DocEntry(
            names=tuple(names),
            takes_value=takes_value,
            tags=tuple(dict.fromkeys(tags)),
            body=body,
            format=fmt,
            default_symbols=tuple(defaults),
            config_symbols=tuple(mentioned),
            location=self.where(head_indexes[0]),
            end_line=last + 1,
            irregularities=tuple(irregular),
            conditions=_conditions(sentences),
            spellings=tuple(spellings),
            value_optional=value_optional,
            topic=" / ".join(topic),
        )

    def tags(self, token: str, index: int, note: _Note) -> list[str]:
        inner = token.strip()[1:-1]
        if re.search(r"\s", inner):
            note("space-in-tags", f"blanks inside {token.strip()}", index)
        out = [t.strip() for t in inner.split(",")]
        for t in out:
            # PPC/PSERIES: a subarch of the PPC tag; "Intel and AMD only": prose, which
            # space-in-tags has reported already
            if t.split("/", 1)[0] not in self.known_tags and not re.search(r"\s", t):
                note("unknown-tag", f"tag {t!r} is not in the documented tag list", index)
        return out

    @staticmethod
    def format(body_lines: list[str], value_specs: list[str]) -> Optional[ParamFormat]:
        spec = _format_spec(body_lines)
        if spec is not None:
            return parse_format(spec)
        # Undeclared formats: a body that opens with "{ a | b }" or "<type>", or a value
        # pattern in the name ("printk.devkmsg={on,off,ratelimit}"); only when they parse.
        candidates = [s.strip() for s in body_lines[:1] if s.strip().startswith(("{", "<"))]
        for candidate in candidates + value_specs:
            fmt = parse_format(candidate)
            if fmt.kind != "unknown":
                return fmt
        return None


def parse_kernel_parameters(
    text: str,
    file: str = DOC_FILE,
    known_tags: Optional[frozenset[str]] = None,
) -> tuple[DocEntry, ...]:
    """Every entry of kernel-parameters.txt TEXT, in file order; irregular layouts are recorded."""
    from lark.exceptions import LarkError

    lines = [line.rstrip("\r") for line in text.split("\n")]
    classes = _classify(lines)
    try:
        tree = _parser().parse(classes, start="document")
    except LarkError as exc:  # the grammar accepts every class string: this is a kpolicy bug
        line = getattr(exc, "pos_in_stream", None)
        raise KpolicyError(f"layout not understood: {exc}", file=file,
                           line=None if line is None else line + 1) from None
    if known_tags is None:
        preamble = _subtree(tree, "preamble")
        own = parse_tag_list("\n".join(lines[: len(_tokens(preamble)[0])])) if preamble else None
        known_tags = own or BUILTIN_TAGS
    builder = _Builder(lines, file, known_tags)
    return tuple(builder.entry(c) for c in tree.children
                 if not isinstance(c, str) and c.data == "entry")


# An entry that also documents its old name: "(slub_debug legacy name also accepted for now)"
# under slab_debug (Linux 6.8+ renamed slub_* to slab_* and kept the old names working). The
# only phrasing kernel-parameters.txt uses for this in 6.1-7.2; "X is an alias for Y" entries
# name their own parameter, which has its own entry.
_LEGACY_NAME = re.compile(r"\(\s*([A-Za-z][A-Za-z0-9_.\-]*)\s+legacy\s+names?\s+"
                          r"(?:is\s+)?also\s+accepted\b", re.IGNORECASE)


def legacy_names(entry: DocEntry) -> tuple[str, ...]:
    """The old names ENTRY says are still accepted for its parameter ("(slub_debug legacy name
    also accepted for now)" under slab_debug): documented by ENTRY."""
    return tuple(dict.fromkeys(m.group(1) for m in _LEGACY_NAME.finditer(entry.body)
                               if m.group(1) not in entry.names))


# Documents in kernel-parameters.txt's layout (in an rst literal block after "::") that it
# sends readers to; the SCSI drivers' __setup parameters are documented there.
OTHER_DOC_FILES = ("Documentation/scsi/scsi-parameters.rst",)


def load_other_docs(tree: KernelTree) -> tuple[DocEntry, ...]:
    """The entries of OTHER_DOC_FILES that TREE has, at their own files' lines."""
    out: list[DocEntry] = []
    for rel in OTHER_DOC_FILES:
        if treefs.kind(tree.root, rel, what="parameter document") is None:
            continue
        text = treefs.read_text(tree.root, rel, what="parameter document")
        block = re.search(r"^::[ \t]*$", text, re.M)
        if block is None:
            continue
        # blank lines keep the entries at their line numbers in REL
        out.extend(parse_kernel_parameters("\n" * text.count("\n", 0, block.end())
                                           + text[block.end():], rel, BUILTIN_TAGS))
    return tuple(out)


def load_docs(tree: KernelTree, cache: Optional[Cache] = None) -> tuple[DocEntry, ...]:
    """The entries of TREE's kernel-parameters.txt, checked against the tags its .rst lists."""
    from kpolicy.cache import content_key

    text = treefs.read_text(tree.root, DOC_FILE, what="kernel-parameters.txt")
    rst = (treefs.read_text(tree.root, TAGS_FILE, what="kernel-parameters.rst")
           if treefs.kind(tree.root, TAGS_FILE, what="kernel-parameters.rst") is not None else "")

    def build() -> tuple[DocEntry, ...]:
        return parse_kernel_parameters(text, DOC_FILE, parse_tag_list(rst) or None)

    if cache is None:
        return build()
    grammars = [grammar_path(g).read_bytes() for g in ("kernel_params.lark", "param_format.lark")]
    key = content_key(text, rst, *grammars, _SCHEMA)
    return cache.get_or_build("params-docs", key, build, tuple)

