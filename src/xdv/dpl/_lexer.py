"""The DPL lexer: source text → tokens with spans, and lexical diagnostics.

Longest match wins (``->`` before ``-``, ``==`` before ``=``, ``..`` before ``.``). Comments
(``//`` to end of line, ``/* … */`` not nested) and whitespace separate tokens. A string literal
keeps its raw text; the parser splits ``{…}`` interpolation holes out of it. Identifiers are
ASCII; ``Φ`` is the one non-ASCII token (the Φ regime keyword). Lexing never stops at an error:
a bad character becomes a diagnostic and is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdv.dpl._diagnostics import Diagnostic, Span

__all__ = ["KEYWORDS", "RESERVED_V02", "Token", "tokenize"]

KEYWORDS = frozenset(
    {
        "forge", "shape", "proc", "bind", "uses", "return", "let", "constrain", "prove",
        "observe", "emit", "seal", "linear", "contract", "K", "Q", "Φ", "from", "true",
        "false", "mut", "if", "else", "while", "for", "in", "break", "continue",
    }
)  # fmt: skip
# Reserved by the v0.2 draft for systems-level K extensions this implementation does not offer.
RESERVED_V02 = frozenset(
    {
        "alloc", "free", "spawn", "join", "mutex_new", "mutex_lock", "mutex_unlock", "open",
        "read", "write", "close", "io_read", "io_write", "mmio_read", "mmio_write", "unsafe",
    }
)  # fmt: skip

_OPERATORS = (
    "::", "->", "=>", "==", "!=", "<=", ">=", "&&", "||", "..",
    "+", "-", "*", "/", "%", "<", ">", "=", "!", ".",
    "{", "}", "(", ")", "[", "]", ";", ",", ":",
)  # fmt: skip
_TWO = frozenset(op for op in _OPERATORS if len(op) == 2)
_ONE = frozenset(op for op in _OPERATORS if len(op) == 1)


@dataclass(frozen=True, slots=True)
class Token:
    """A token: ``kind`` is ``ident``, ``int``, ``float``, ``string``, ``keyword``, ``op`` or
    ``eof``; ``text`` the lexeme (the decoded body for strings, holes still marked)."""

    kind: str
    text: str
    span: Span


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "{": "\x00{", "}": "\x00}"}


def tokenize(text: str) -> tuple[list[Token], list[Diagnostic]]:
    """Split ``text`` into tokens (ending with ``eof``) and the lexical diagnostics found."""
    tokens: list[Token] = []
    diagnostics: list[Diagnostic] = []
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char in " \t\r\n":
            index += 1
            continue
        if text.startswith("//", index):
            end = text.find("\n", index)
            index = length if end < 0 else end
            continue
        if text.startswith("/*", index):
            end = text.find("*/", index + 2)
            if end < 0:
                diagnostics.append(
                    Diagnostic("L003", "block comment is never closed", Span(index, index + 2))
                )
                index = length
            else:
                index = end + 2
            continue
        start = index
        if char.isascii() and (char.isalpha()):
            while index < length and (
                text[index].isascii() and (text[index].isalnum() or text[index] == "_")
            ):
                index += 1
            word = text[start:index]
            kind = "keyword" if word in KEYWORDS else "ident"
            tokens.append(Token(kind, word, Span(start, index)))
            continue
        if char == "Φ":
            index += 1
            tokens.append(Token("keyword", "Φ", Span(start, index)))
            continue
        if char.isascii() and char.isdigit():
            while index < length and text[index].isascii() and text[index].isdigit():
                index += 1
            kind = "int"
            if (
                index + 1 < length
                and text[index] == "."
                and text[index + 1].isascii()
                and text[index + 1].isdigit()
            ):
                index += 1
                while index < length and text[index].isascii() and text[index].isdigit():
                    index += 1
                kind = "float"
            if index < length and text[index].isascii() and (
                text[index].isalpha() or text[index] == "_"
            ):
                while index < length and text[index].isascii() and (
                    text[index].isalnum() or text[index] == "_"
                ):
                    index += 1
                diagnostics.append(
                    Diagnostic("L006", f"malformed number {text[start:index]!r}", Span(start, index))
                )
                tokens.append(Token("int", "0", Span(start, index)))
                continue
            tokens.append(Token(kind, text[start:index], Span(start, index)))
            continue
        if char == '"':
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
            continue
        pair = text[index : index + 2]
        if pair in _TWO:
            tokens.append(Token("op", pair, Span(index, index + 2)))
            index += 2
            continue
        if char in _ONE:
            tokens.append(Token("op", char, Span(index, index + 1)))
            index += 1
            continue
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
        index += 1
    tokens.append(Token("eof", "", Span(length, length)))
    return tokens, diagnostics
