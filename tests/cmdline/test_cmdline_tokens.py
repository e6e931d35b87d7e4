"""next_arg() splitting: quotes, "=", spaces, and properties over any text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kpolicy.cmdline.tokens import SPACES, Token, next_arg, quote_token, to_bytes_str, tokenize
from kpolicy.errors import KpolicyError


def pairs(line: str) -> list[tuple[str, object]]:
    return [(t.name, t.value) for t in tokenize(line)]


def test_quotes_are_removed_where_next_arg_removes_them() -> None:
    assert pairs('"a b"') == [("a b", None)]
    assert pairs('x="a b"') == [("x", "a b")]
    assert pairs('"x=1 2"') == [("x", "1 2")]
    assert pairs('x=""') == [("x", "")]
    assert pairs('"" tail') == [("", None), ("tail", None)]


def test_a_quote_inside_a_word_toggles_spaces_but_stays() -> None:
    assert pairs('a"b c"d') == [('a"b c"d', None)]
    assert pairs('q="x"y z') == [("q", 'x"y'), ("z", None)]


def test_an_unbalanced_quote_swallows_the_rest_of_the_line() -> None:
    assert pairs('foo="bar baz') == [("foo", "bar baz")]
    assert pairs('"open x=1 y') == [("open x", "1 y")]


def test_only_the_first_equals_splits_and_a_leading_equals_does_not() -> None:
    assert pairs("a=b=c") == [("a", "b=c")]
    assert pairs("=foo") == [("=foo", None)]
    assert pairs("=y=z") == [("=y", "z")]
    assert pairs("--=1") == [("--", "1")]


def test_any_kernel_space_separates_words_and_offsets_point_at_them() -> None:
    toks = tokenize("one\t two   three\n")
    assert [t.name for t in toks] == ["one", "two", "three"]
    assert [t.offset for t in toks] == [0, 5, 11]
    assert [t.index for t in toks] == [0, 1, 2]
    # byte 0xA0 (UTF-8 of U+00A0 ends with it) is isspace() in lib/ctype.c
    assert [t.name for t in tokenize(to_bytes_str("a\u00a0b"))] == ["a\xc2", "b"]


def test_quote_token_refuses_what_the_kernel_cannot_express() -> None:
    for name, value in (('a"b', None), ("x", 'a"b'), ("a=b", None), ("", "v")):
        try:
            quote_token(name, value)
        except KpolicyError:
            continue
        raise AssertionError(f"{name!r}={value!r} was written")


@given(st.text(max_size=200))
def test_any_text_tokenizes_without_error(text: str) -> None:
    line = to_bytes_str(text.replace("\0", ""))
    toks = tokenize(line)
    assert all(t.raw and line[t.offset:].startswith(t.raw) for t in toks)


_word = st.text(alphabet=st.sampled_from(list('ab=- \t"_.x1')), max_size=12)


@given(st.lists(_word, max_size=8))
def test_tokens_rejoined_with_quotes_tokenize_the_same(words: list[str]) -> None:
    toks = tokenize(" ".join(words))
    try:
        rejoined = " ".join(quote_token(t.name, t.value) for t in toks)
    except KpolicyError:
        return  # a word with a double quote inside: the kernel has no way to write it
    assert pairs(rejoined) == [(t.name, t.value) for t in toks]


@given(st.lists(_word, max_size=8))
def test_a_words_name_and_value_are_its_raw_texts_alone(words: list[str]) -> None:
    # the per-word caches (early plans, the batch's event memo) key a word by its raw text
    for t in tokenize(" ".join(words)):
        alone = tokenize(t.raw)
        assert [(a.raw, a.name, a.value) for a in alone] == [(t.raw, t.name, t.value)]


_any_char = st.sampled_from([*'ab=- \t\n\v\f\r"_.x1', "\x1c", "\x1f", "\x85", "\xa0", "\xe9"])


def by_next_arg(line: str) -> tuple[Token, ...]:
    """LINE's tokens as parse_args() takes them: next_arg() from one to the next."""
    out: list[Token] = []
    pos = len(line) - len(line.lstrip("".join(SPACES)))
    while pos < len(line):
        end, name, value, nxt = next_arg(line, pos)
        out.append(Token(len(out), pos, line[pos:end], name, value))
        pos = nxt
    return tuple(out)


@given(st.lists(_any_char, max_size=40).map("".join))
def test_tokenize_is_next_arg_word_after_word(line: str) -> None:
    # tokenize() splits a line without quotes, non-ASCII or \x1c-\x1f by str.split(), others
    # by a regular expression, and caches each word's name and value
    assert tokenize(line) == by_next_arg(line)


def test_the_fast_split_is_refused_exactly_where_str_split_and_next_arg_differ() -> None:
    """tokenize() splits with str.split() unless a word holds one of \\x1c-\\x1f, a quote or a
    non-ASCII character (_NOT_PLAIN); the pattern is written as a complement, so check it."""
    from kpolicy.cmdline.tokens import _NOT_PLAIN

    expected = {chr(c) for c in range(0x1C, 0x20)} | {'"'}
    assert {chr(c) for c in range(0x80) if _NOT_PLAIN.search(chr(c))} == expected
    for c in (0x80, 0x85, 0xA0, 0x3000, 0xD800, 0xFFFF, 0x10000, 0x10FFFF):
        assert _NOT_PLAIN.search(chr(c)), hex(c)
