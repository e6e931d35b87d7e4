"""Bootconfig (lib/bootconfig.c) as far as the kernel's command line is concerned.

The kernel turns the `kernel.*` keys into words placed before the command line's (main pass
only: the early pass never sees them) and the `init.*` keys into words for init's argv.
"""

from __future__ import annotations

from typing import Optional

from kpolicy.errors import KpolicyError

# include/linux/bootconfig.h, the same in 6.1 (lines 60-64), 6.12 and 7.2 (61-65)
XBC_DATA_MAX = (1 << 15) - 1  # bigger data is refused
XBC_NODE_MAX = 8192  # key words and values together
XBC_KEYLEN_MAX = 256  # a full key, each word counted with its dot (or final NUL)
XBC_DEPTH_MAX = 16  # braces open at once, and words in one key
# Before this version (6.1 and 6.12 do so, 7.2 does not) a value could start after the end of
# its key's line: `key =` then a comment or line break, and the next line's words were the
# value. Since, the first value is on the key's line, and `key = # comment` is an empty value
# (lib/bootconfig.c, xbc_parse_kv and __xbc_parse_value).
SAME_LINE_VALUE = (6, 13, 0)
_DELIMS = frozenset("{}=+;:\n#")
_VALUE_END = frozenset(",;\n#}")
_SPACE = frozenset(" \t\n\v\f\r")
WHERE = "bootconfig"


class _Key:
    __slots__ = ("children", "name", "values")

    def __init__(self, name: str) -> None:
        self.name = name
        self.values: Optional[list[str]] = None
        self.children: list[_Key] = []

    def child(self, name: str) -> _Key:
        for c in self.children:
            if c.name == name:
                return c
        node = _Key(name)
        self.children.append(node)
        return node


class _Parser:
    def __init__(self, data: str, version: tuple[int, int, int]) -> None:
        self.data = data
        self.same_line_value = version >= SAME_LINE_VALUE
        self.root = _Key("")
        self.parent = self.root
        self.braces: list[_Key] = []

    def error(self, msg: str, pos: int) -> KpolicyError:
        return KpolicyError(msg, file=WHERE, line=self.data.count("\n", 0, pos) + 1)

    def keys(self, text: str, pos: int) -> _Key:
        node = self.parent
        for word in text.strip().split("."):
            if not word or not all(c.isascii() and (c.isalnum() or c in "-_") for c in word):
                raise self.error(f"Invalid keyword {word!r}", pos)
            node = node.child(word)
        return node

    def skip_comment(self, p: int) -> int:
        nl = self.data.find("\n", p)
        return len(self.data) if nl < 0 else nl + 1

    def value(self, p: int) -> tuple[str, int, str]:
        """__xbc_parse_value(): (value, next position, the delimiter that ended it or "")."""
        d, n = self.data, len(self.data)
        quote = d[p] if p < n and d[p] in "\"'" else ""
        start = p + 1 if quote else p
        i = start
        while i < n:
            c = d[i]
            if not (c.isprintable() or c in _SPACE):
                raise self.error("Non printable value", i)
            if quote:
                if c != quote:
                    i += 1
                    continue
                val = d[start:i]
                i += 1
                while i < n and d[i] in _SPACE and d[i] != "\n":
                    i += 1
                if i < n and d[i] not in _VALUE_END:
                    raise self.error("No value delimiter", i)
                c = d[i] if i < n else ""
                return val, (self.skip_comment(i) if c == "#" else i + 1), c
            if c in _VALUE_END:
                return d[start:i].strip(), (self.skip_comment(i) if c == "#" else i + 1), c
            i += 1
        if quote:
            raise self.error("No closing quotes", i)
        return d[start:].strip(), n, ""

    def kv(self, key_text: str, p: int, op: str, at: int) -> int:
        node = self.keys(key_text, at)
        d, n = self.data, len(self.data)
        while p < n and d[p] in _SPACE and (d[p] != "\n" or not self.same_line_value):
            p += 1
        while p < n and d[p] == "#" and not self.same_line_value:
            p = self.skip_comment(p)
            while p < n and d[p] in _SPACE:
                p += 1
        if p < n and d[p] == "#":
            values, p, c = [""], self.skip_comment(p), "\n"
        else:
            v, p, c = self.value(p)
            values = [v]
            while c == ",":
                while p < n and (d[p] in _SPACE or d[p] == "#"):
                    p = self.skip_comment(p) if d[p] == "#" else p + 1
                v, p, c = self.value(p)
                values.append(v)
        if node.values is not None and op == "=":
            raise self.error("Value is redefined", at)
        if op == "+" and node.values is not None:
            node.values.extend(values)
        else:
            node.values = values
        if c == "}":
            self.close(p)
        return p

    def close(self, pos: int) -> None:
        if not self.braces:
            raise self.error("Unexpected closing brace", pos)
        self.parent = self.braces.pop()

    def parse(self) -> _Key:
        d, n, p = self.data, len(self.data), 0
        while p < n:
            q = p
            while q < n and d[q] not in _DELIMS:
                q += 1
            if q == n:
                if d[p:].strip():
                    raise self.error("No delimiter", p)
                break
            c, text = d[q], d[p:q]
            if c in ":+":
                if q + 1 >= n or d[q + 1] != "=":
                    raise self.error(f"Wrong '{c}' operator", q)
                p = self.kv(text, q + 2, c, p)
            elif c == "=":
                p = self.kv(text, q + 1, c, p)
            elif c == "{":
                if len(self.braces) >= XBC_DEPTH_MAX:
                    raise self.error("Exceed max depth of braces", q)
                node = self.keys(text, p)
                self.braces.append(self.parent)
                self.parent = node
                p = q + 1
            else:
                if text.strip():
                    self.keys(text, p)
                if c == "}":
                    self.close(q)
                p = self.skip_comment(q + 1) if c == "#" else q + 1
        if self.braces:
            raise self.error("Brace is not closed", n)
        if not self.root.children:
            raise self.error("Empty config", 0)
        self.check_limits()
        return self.root

    def check_limits(self) -> None:
        """xbc_verify_tree()'s limits, in its words (lib/bootconfig.c, "Key tree limitation
        check"; "Too many nodes" from xbc_add_node)."""
        nodes = 0
        stack = [(c, len(c.name) + 1, 1) for c in reversed(self.root.children)]
        while stack:
            node, length, depth = stack.pop()
            nodes += 1 + len(node.values or ())
            if nodes > XBC_NODE_MAX:
                raise KpolicyError("Too many nodes", file=WHERE)
            if length > XBC_KEYLEN_MAX:
                raise self.error("Too long key length", self.data.find(node.name))
            if depth > XBC_DEPTH_MAX:
                raise self.error("Too many key words", self.data.find(node.name))
            stack += [(c, length + len(c.name) + 1, depth + 1) for c in reversed(node.children)]


def _words(node: _Key, prefix: str, out: list[str]) -> None:
    """xbc_snprint_cmdline(): each leaf key (one with a value or no subkeys), then its subkeys."""
    for c in node.children:
        key = f"{prefix}{c.name}"
        if c.values is not None:
            for v in c.values:
                q = '"' if any(ch in v for ch in " \t\r\n") else ""
                out.append(f"{key}={q}{v}{q} ")
        elif not c.children:
            out.append(f"{key} ")
        _words(c, f"{key}.", out)


def _parse(text: str, version: tuple[int, int, int]) -> _Key:
    if not text:
        raise KpolicyError("Config data is empty", file=WHERE)
    if len(text.encode("utf-8", "surrogateescape")) > XBC_DATA_MAX:
        raise KpolicyError(f"bootconfig data is larger than {XBC_DATA_MAX} bytes", file=WHERE)
    return _Parser(text, version).parse()


def bootconfig_keys(text: str, version: tuple[int, int, int]
                    ) -> dict[str, Optional[tuple[str, ...]]]:
    """Every key of bootconfig TEXT, with its values (None: a key without a value), as the
    parser of Linux VERSION reads them; KpolicyError where that kernel refuses TEXT."""
    out: dict[str, Optional[tuple[str, ...]]] = {}
    stack = [("", _parse(text, version))]
    while stack:
        prefix, node = stack.pop()
        for c in reversed(node.children):
            key = prefix + c.name
            if c.values is not None or not c.children:
                out[key] = tuple(c.values) if c.values is not None else None
            stack.append((key + ".", c))
    return out


def bootconfig_cmdline(text: str, version: tuple[int, int, int]) -> tuple[str, str]:
    """The words bootconfig TEXT adds in Linux VERSION: (kernel.* words for the main pass,
    init.* words for init)."""
    root = _parse(text, version)
    lines = []
    for key in ("kernel", "init"):
        out: list[str] = []
        for c in root.children:
            if c.name == key:
                _words(c, "", out)
        lines.append("".join(out))
    return lines[0], lines[1]
