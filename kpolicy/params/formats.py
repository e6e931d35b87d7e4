"""The `Format:` value specs of kernel-parameters.txt, through grammars/param_format.lark.

A spec the grammar does not cover is kind "unknown" with its raw text kept: never an error.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Optional

from kpolicy.kernel import kstrtobool_everywhere
from kpolicy.params.model import ParamFormat
from kpolicy.resources import grammar_path

if TYPE_CHECKING:
    from lark import Lark, Token, Tree

# What a <type> placeholder (or a bare type word, "Format: integer") stands for.
_TYPE_KINDS = {
    "bool": "bool",
    "int": "int",
    "integer": "int",
    "uint": "int",
    "unsigned": "int",
    "unsigned int": "int",
    "unsigned integer": "int",
    "long": "int",
    "ulong": "int",
    "num": "int",
    "number": "int",
    "hex": "int",
    "string": "string",
    "str": "string",
    "command": "string",
    "full_path": "string",
    "path": "string",
    "cpu-list": "cpu-list",
    "cpulist": "cpu-list",
}
# Bare words that name a number in size specs: nn[KMG], size[KMG], ss[KMG].
_SIZE_WORDS = frozenset({"nn", "n", "size", "ss", "mm", "ll"})
# Inputs longer than this are prose, not a value spec.
_MAX_SPEC = 400

# kstrtoint/kstrtoul with base 0, and memparse(): a number, then an optional size suffix.
_INTEGER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)")
_SIZE = re.compile(r"(?:0[xX][0-9a-fA-F]+|[0-9]+)([KMGTPEkmgtpe]?)")
_PERCENT = re.compile(r"[0-9]+%")
# lib/bitmap.c bitmap_parselist(): N, N-M, N-M:used/group, with N for the last CPU, or "all".
_CPU_LIST = re.compile(
    r"(?:all|(?:[0-9]+|N)(?:-(?:[0-9]+|N)(?::[0-9]+/[0-9]+)?)?)"
    r"(?:,(?:[0-9]+|N)(?:-(?:[0-9]+|N)(?::[0-9]+/[0-9]+)?)?)*"
)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    from lark import Lark

    return Lark(
        grammar_path("param_format.lark").read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
    )


def _unknown(raw: str) -> ParamFormat:
    return ParamFormat(raw=raw, kind="unknown")


def _element_kind(node: Tree[Token]) -> str:
    text = str(node.children[0]).strip().lower()
    if node.data == "typed":
        return _TYPE_KINDS.get(text, "unknown")
    return _TYPE_KINDS.get(text, "word")


def _unquote(token: str) -> str:
    return token[1:-1] if token.startswith('"') else token


def _term(node: Tree[Token], raw: str) -> ParamFormat:
    """The format one grammar term describes (RAW is the whole spec, kept on every result)."""
    if node.data == "enum":
        choices: list[str] = []
        default = None
        for choice in node.children:
            word = _unquote(str(choice.children[0]))  # type: ignore[union-attr]
            if word not in choices:
                choices.append(word)
            if len(choice.children) > 1:  # type: ignore[union-attr]
                default = word
        return ParamFormat(raw=raw, kind="enum", choices=tuple(choices), default=default)
    if node.data == "size":
        number, suffixes = node.children
        assert not isinstance(number, str)
        unit = str(number.children[0]).lower()
        if number.data == "typed" and _TYPE_KINDS.get(unit) != "int" and unit != "size":
            return _unknown(raw)
        if number.data == "word" and unit not in _SIZE_WORDS:
            return _unknown(raw)
        return ParamFormat(raw=raw, kind="size", choices=tuple(str(suffixes)))
    if node.data == "percent":
        return ParamFormat(raw=raw, kind="percent")
    if node.data == "list":
        first, second = (c for c in node.children if not isinstance(c, str))
        if str(first.children[0]) != str(second.children[0]):
            return _unknown(raw)
        kind = _element_kind(first)
        element = ParamFormat(raw=str(first.children[0]),
                              kind="unknown" if kind == "word" else kind)
        return ParamFormat(raw=raw, kind="list", element=element)
    kind = _element_kind(node)
    if kind == "word":  # "Format: off": a one-word enum
        return ParamFormat(raw=raw, kind="enum", choices=(_unquote(str(node.children[0])),))
    return ParamFormat(raw=raw, kind=kind)


@lru_cache(maxsize=4096)  # a pure function of RAW; a file repeats "<bool>" and "<int>" often
def parse_format(raw: str) -> ParamFormat:
    """The format RAW (the text after "Format:") describes; kind "unknown" when not understood."""
    from lark.exceptions import LarkError

    spec = " ".join(raw.split())
    if not spec or len(spec) > _MAX_SPEC:
        return _unknown(raw)
    try:
        tree = _parser().parse(spec)
    except LarkError:
        return _unknown(raw)
    node = next(c for c in tree.children if not isinstance(c, str))
    if node.data != "union":
        return _term(node, raw)
    members = tuple(_term(c, raw) for c in node.children if not isinstance(c, str))
    if all(m.kind == "enum" for m in members):  # "0 | 1", "off | on"
        words = tuple(dict.fromkeys(w for m in members for w in m.choices))
        return ParamFormat(raw=raw, kind="enum", choices=words)
    return ParamFormat(raw=raw, kind="union", alternatives=members)


def format_accepts(fmt: ParamFormat, value: str) -> Optional[bool]:
    """Whether VALUE is valid for FMT; None when FMT (or the kernel's answer) is unknown."""
    if fmt.kind == "bool":
        return kstrtobool_everywhere(value)
    if fmt.kind == "enum":
        return value in fmt.choices
    if fmt.kind == "int":
        return _INTEGER.fullmatch(value) is not None
    if fmt.kind == "size":
        m = _SIZE.fullmatch(value)
        return m is not None and (not m.group(1) or m.group(1).upper() in fmt.choices)
    if fmt.kind == "percent":
        return _PERCENT.fullmatch(value) is not None
    if fmt.kind == "cpu-list":
        return _CPU_LIST.fullmatch(value) is not None
    if fmt.kind == "string":
        return True
    if fmt.kind == "list" and fmt.element is not None:
        answers = {format_accepts(fmt.element, item) for item in value.split(",")}
        return False if False in answers else (None if None in answers else True)
    if fmt.kind == "union":
        answers = {format_accepts(m, value) for m in fmt.alternatives}
        return True if True in answers else (None if None in answers else False)
    return None
