"""The DPL lexer: source text → tokens with spans, and lexical diagnostics.

Longest match wins (``->`` before ``-``, ``==`` before ``=``, ``..`` before ``.``). Comments
(``//`` to end of line, ``/* … */`` not nested) and whitespace separate tokens. A string literal
keeps its raw text; the parser splits ``{…}`` interpolation holes out of it. Identifiers are
ASCII; ``Φ`` is the one non-ASCII token (the Φ regime keyword). Lexing never stops at an error:
a bad character becomes a diagnostic and is skipped.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from xdv.dpl._diagnostics import Diagnostic, Diagnostics, Span

__all__ = ["KEYWORDS", "RESERVED_V02", "Token", "tokenize"]

KEYWORDS = frozenset(
    {
        "forge",
        "shape",
        "proc",
        "bind",
        "uses",
        "return",
        "let",
        "constrain",
        "prove",
        "observe",
        "emit",
        "seal",
        "linear",
        "contract",
        "K",
        "Q",
        "Φ",
        "from",
        "true",
        "false",
        "mut",
        "if",
        "else",
        "while",
        "for",
        "in",
        "break",
        "continue",
    }
)
# Reserved by the v0.2 draft for systems-level K extensions this implementation does not offer.
RESERVED_V02 = frozenset(
    {
        "alloc",
        "free",
        "spawn",
        "join",
        "mutex_new",
        "mutex_lock",
        "mutex_unlock",
        "open",
        "read",
        "write",
        "close",
        "io_read",
        "io_write",
        "mmio_read",
        "mmio_write",
        "unsafe",
    }
)

_OPERATORS = (
    "::",
    "->",
    "=>",
    "==",
    "!=",
    "<=",
    ">=",
    "&&",
    "||",
    "..",
    "<<",
    ">>",
    "+",
    "-",
    "*",
    "/",
    "%",
    "<",
    ">",
    "=",
    "!",
    ".",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ";",
    ",",
    ":",
    # Bitwise operators of the public dialect (docs/dpl.md §3): after their two-character
    # neighbours, so that `&&`, `||`, `<=` and `>=` still win.
    "&",
    "|",
    "^",
    "~",
)


class Token(NamedTuple):
    """A token: ``kind`` is ``ident``, ``int``, ``float``, ``string``, ``keyword``, ``op`` or
    ``eof``; ``text`` the lexeme (the decoded body for strings, holes still marked)."""

    kind: str
    text: str
    span: Span


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "{": "\x00{", "}": "\x00}"}


_TOKEN = re.compile(
    r"[ \t\r\n]*(?:(?P<line>//[^\n]*|#[^\n]*)"
    r"|(?P<block>/\*.*?\*/)"
    r"|(?P<open>/\*)"
    r"|(?P<ident>[A-Za-z][A-Za-z0-9_]*)"
    r"|(?P<radix>0[xX][0-9A-Fa-f_]*[0-9A-Fa-f]|0[bB][01_]*[01])(?P<radixjunk>[A-Za-z0-9_]+)?"
    r"|(?P<number>[0-9]+(?:\.[0-9]+)?(?P<junk>[A-Za-z_][A-Za-z0-9_]*)?)"
    r"|(?P<op>" + "|".join(re.escape(op) for op in _OPERATORS) + r")"
    r"|(?P<phi>Φ)|(?P<end>$))",
    re.DOTALL,
)


_SPACE = re.compile(r"[ \t\r\n]*")


def tokenize(text: str) -> tuple[list[Token], Diagnostics]:
    """Split ``text`` into tokens (ending with ``eof``) and the lexical diagnostics found (a
    bounded list: a file of stray characters keeps only the first few)."""
    tokens: list[Token] = []
    diagnostics = Diagnostics(text)
    append = tokens.append
    match_at = _TOKEN.match
    index = 0
    length = len(text)
    while index < length:
        match = match_at(text, index)
        if match is None:
            space = _SPACE.match(text, index)
            index = _irregular(text, space.end() if space else index, tokens, diagnostics)
            continue
        kind = match.lastgroup or "end"
        end = match.end()
        index = match.start(kind)
        if kind == "ident":
            word = match.group(kind)
            append(Token("keyword" if word in KEYWORDS else "ident", word, Span(index, end)))
        elif kind == "radix" or kind == "radixjunk":
            # Hexadecimal and binary literals (`0xFF`, `0b1010`, `_` between digits).
            lexeme = match.group("radix")
            index = match.start("radix")
            if match.group("radixjunk"):
                diagnostics.append(
                    Diagnostic("L006", f"malformed number {text[index:end]!r}", Span(index, end))
                )
                append(Token("int", "0", Span(index, end)))
            else:
                append(Token("int", lexeme, Span(index, end)))
        elif kind == "op":
            append(Token("op", match.group(kind), Span(index, end)))
        elif kind == "number" or kind == "junk":
            lexeme = match.group("number")
            if match.group("junk"):
                diagnostics.append(
                    Diagnostic("L006", f"malformed number {lexeme!r}", Span(index, end))
                )
                append(Token("int", "0", Span(index, end)))
            else:
                append(Token("float" if "." in lexeme else "int", lexeme, Span(index, end)))
        elif kind == "open":
            diagnostics.append(
                Diagnostic("L003", "block comment is never closed", Span(index, end))
            )
            end = length
        elif kind == "phi":
            append(Token("keyword", "Φ", Span(index, end)))
        index = end
    tokens.append(Token("eof", "", Span(length, length)))
    return tokens, diagnostics


def _irregular(text: str, index: int, tokens: list[Token], diagnostics: list[Diagnostic]) -> int:
    """Lex what the fast pattern does not: strings, unclosed comments, stray characters."""
    length = len(text)
    char = text[index]
    if text.startswith("/*", index):
        diagnostics.append(
            Diagnostic("L003", "block comment is never closed", Span(index, index + 2))
        )
        return length
    if char == '"':
        start = index
        index += 1
        body: list[str] = []
        closed = False
        while index < length:
            current = text[index]
            if current == '"':
                index += 1
                closed = True
                break
            if current == "\n":
                break
            if current == "\\":
                escape = text[index + 1] if index + 1 < length else ""
                if escape in _ESCAPES:
                    body.append(_ESCAPES[escape])
                    index += 2
                    continue
                diagnostics.append(
                    Diagnostic(
                        "L004",
                        f"unknown escape sequence '\\{escape}'",
                        Span(index, min(length, index + 2)),
                    )
                )
                index += 2 if escape else 1
                continue
            body.append(current)
            index += 1
        if not closed:
            diagnostics.append(
                Diagnostic("L002", "string literal is never closed", Span(start, index))
            )
        tokens.append(Token("string", "".join(body), Span(start, index)))
        return index
    if not char.isascii():
        diagnostics.append(
            Diagnostic(
                "L005",
                f"non-ASCII character {char!r} is allowed only in comments and strings",
                Span(index, index + 1),
            )
        )
    else:
        diagnostics.append(
            Diagnostic("L001", f"unexpected character {char!r}", Span(index, index + 1))
        )
    return index + 1
