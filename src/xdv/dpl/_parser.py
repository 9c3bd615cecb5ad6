"""The DPL parser: tokens → :class:`~xdv.dpl._ast.Program`, recovering from errors.

Recursive descent with one token of lookahead (two or three in a few documented places). On a
syntax error the parser records a diagnostic and skips to a synchronisation point (the end of the
statement or the next declaration), so one run reports several errors. It accepts v0.1 forms and
the v0.2 K extensions side by side; see ``docs/dpl.md`` for the grammar actually accepted.
"""

from __future__ import annotations

import math
from typing import Any

from xdv.dpl import _ast as ast
from xdv.dpl._diagnostics import LIMIT_CODE, Diagnostic, Diagnostics, Span, limit_message
from xdv.dpl._lexer import RESERVED_V02, Token, tokenize
from xdv.inputs import limit

__all__ = ["parse", "parse_files"]

_REGIMES = ("K", "Q", "Φ")
_ERRORS_MAX = 50
# Nesting bounds (docs/errors.md section 7), checked here, before any deeper pass runs: every
# later pass recurses over the tree, so bounding its height here bounds them all, and keeps the
# generated K code within CPython's parser limits. The expression bound applies both to the
# parser's own recursion (parentheses, unary operators, sub-expressions) and to the height of
# the tree it builds (a chain `a + b + c` is one level deeper per operator).
_EXPRESSION_MAX = limit("dpl_expression_depth_max")
_BLOCK_MAX = limit("dpl_block_depth_max")
_LOOP_MAX = limit("dpl_loop_depth_max")
_TYPE_MAX = limit("dpl_type_depth_max")
_STATEMENTS_MAX = limit("dpl_statements_max")
_INT_BITS_MAX = limit("dpl_int_bits_max")
# Decimal digits beyond which a literal surely exceeds the integer bound (checked before the
# text is converted, so a huge literal is never converted at all).
_INT_DIGITS_MAX = _INT_BITS_MAX * 30103 // 100000 + 2
_BINARY: dict[str, int] = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 4,
    ">": 4,
    "<=": 4,
    ">=": 4,
    # The bitwise operators of the public dialect bind tighter than comparisons and looser
    # than arithmetic, as in Rust: `a & m == 0` is `(a & m) == 0`.
    "|": 5,
    "^": 6,
    "&": 7,
    "<<": 8,
    ">>": 8,
    "+": 9,
    "-": 9,
    "*": 10,
    "/": 10,
    "%": 10,
}
_STATEMENT_START = frozenset(
    {
        "let",
        "mut",
        "constrain",
        "prove",
        "observe",
        "emit",
        "seal",
        "return",
        "if",
        "while",
        "for",
        "break",
        "continue",
    }
)
_ITEM_START = frozenset({"forge", "shape", "proc", "bind", "K", "Q", "Φ"})


class _Stop(Exception):
    """Raised to abandon the current construct after a diagnostic was recorded."""


class _Parser:
    def __init__(self, tokens: list[Token], diagnostics: Diagnostics) -> None:
        self.tokens = tokens
        self.position = 0
        self.diagnostics = diagnostics
        self.depth = 0  # expression recursion
        self.blocks = 0  # nested blocks, else-if links and forges
        self.loops = 0
        self.statements = 0
        self.stopped = False

    # ------------------------------------------------------------------ helpers

    @property
    def token(self) -> Token:
        return self.tokens[self.position]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.position + ahead, len(self.tokens) - 1)]

    def at(self, text: str) -> bool:
        token = self.token
        return token.kind in ("op", "keyword") and token.text == text

    def advance(self) -> Token:
        token = self.token
        if token.kind != "eof":
            self.position += 1
        return token

    def accept(self, text: str) -> Token | None:
        if self.at(text):
            return self.advance()
        return None

    def error(self, code: str, message: str, span: Span) -> None:
        if self.diagnostics.errors() >= _ERRORS_MAX:
            if not self.stopped:
                self.diagnostics.append(
                    Diagnostic("P003", "too many errors; parsing stopped", span)
                )
            self.halt()
        self.diagnostics.append(Diagnostic(code, message, span))

    def halt(self) -> _Stop:
        """Stop parsing altogether: skip to the end of the input."""
        self.stopped = True
        self.position = len(self.tokens) - 1
        raise _Stop

    def beyond(self, name: str, found: str, span: Span) -> _Stop:
        """Record the breach of limit ``name`` (a P004 diagnostic) and abandon the construct."""
        self.error(LIMIT_CODE, limit_message(name, found), span)
        return _Stop()

    def fail(self, expected: str) -> _Stop:
        token = self.token
        found = "end of input" if token.kind == "eof" else repr(token.text)
        if (
            expected == "an expression"
            and token.kind == "keyword"
            and token.text in ("emit", "observe", "seal")
        ):
            self.error(
                "P002",
                f"'{token.text}' is an effect statement and cannot appear inside an expression",
                token.span,
            )
        else:
            self.error("P001", f"expected {expected}, found {found}", token.span)
        return _Stop()

    def expect(self, text: str, what: str | None = None) -> Token:
        if self.at(text):
            return self.advance()
        raise self.fail(what or f"'{text}'")

    def ident(self, what: str = "a name", library: bool = False) -> Token:
        token = self.token
        if token.kind == "ident":
            if token.text in RESERVED_V02 and not library:
                self.error(
                    "U001",
                    f"'{token.text}' belongs to the v0.2 systems-level K extensions, which this "
                    "implementation does not offer",
                    token.span,
                )
            return self.advance()
        raise self.fail(what)

    def regime(self) -> Token:
        if self.token.kind == "keyword" and self.token.text in _REGIMES:
            return self.advance()
        raise self.fail("a regime (K, Q or Φ)")

    def sync_statement(self) -> None:
        """Skip to just after the next ';' at this nesting level, or to a '}' that closes it."""
        depth = 0
        start = self.position
        while self.token.kind != "eof":
            token = self.token
            if token.kind == "op" and token.text in "({[":
                depth += 1
            elif token.kind == "op" and token.text in ")}]":
                if depth == 0 and token.text != "}":
                    # A ')' or ']' opened before the error (the statement was abandoned
                    # inside it): skipping it keeps the rest of the statement from being
                    # reported again as follow-on errors.
                    self.advance()
                    continue
                if depth == 0:
                    return
                depth -= 1
            elif token.kind == "op" and token.text == ";" and depth == 0:
                self.advance()
                return
            elif (
                depth == 0
                and token.kind == "keyword"
                and token.text in _STATEMENT_START
                and self.position > start
            ):
                return
            self.advance()

    def sync_item(self, in_forge: bool = False) -> None:
        """Skip to the next token that can start a declaration at the outer level (inside a
        forge, also stop before the '}' that closes it, which is not part of the error)."""
        depth = 0
        while self.token.kind != "eof":
            token = self.token
            if token.kind == "op" and token.text == "{":
                depth += 1
            elif token.kind == "op" and token.text == "}":
                if in_forge and depth == 0:
                    return
                depth -= 1
                if depth <= 0:
                    self.advance()
                    if depth < 0 or self._item_ahead():
                        return
                    depth = 0
                    continue
            elif depth == 0 and self._item_ahead():
                return
            self.advance()

    def _item_ahead(self) -> bool:
        token = self.token
        if token.kind == "ident" and token.text == "const" and self.peek().kind == "ident":
            return True
        if token.kind != "keyword" or token.text not in _ITEM_START:
            return False
        # A regime starts a declaration (`K main`, `K name(`) but not a type (`K[Int]`).
        return token.text not in _REGIMES or self.peek().kind == "ident"

    def nest(self) -> None:
        self.depth += 1
        if self.depth > _EXPRESSION_MAX:
            self.depth -= 1
            raise self.beyond(
                "dpl_expression_depth_max",
                f"expression nested more than {_EXPRESSION_MAX} levels deep",
                self.token.span,
            )

    def taller(self, height: int, span: Span) -> int:
        """The height of a node over children at most ``height`` tall, refused beyond the
        expression bound (a long operator chain is as deep as it is long)."""
        height += 1
        if height > _EXPRESSION_MAX:
            raise self.beyond(
                "dpl_expression_depth_max",
                f"expression nested more than {_EXPRESSION_MAX} levels deep",
                span,
            )
        return height

    def enter_block(self, span: Span) -> None:
        self.blocks += 1
        if self.blocks > _BLOCK_MAX:
            self.blocks -= 1
            raise self.beyond(
                "dpl_block_depth_max", f"blocks nested more than {_BLOCK_MAX} levels deep", span
            )

    def integer(self, token: Token) -> int:
        """The value of an integer literal, refused beyond ``dpl_int_bits_max``."""
        text = token.text
        if text[:2] in ("0x", "0X", "0b", "0B"):
            # Power-of-two bases convert in linear time; the bit bound below still applies.
            value = int(text, 0) if len(text) <= 4 * _INT_DIGITS_MAX else None
        else:
            value = int(text) if len(text) <= _INT_DIGITS_MAX else None
        if value is None or value.bit_length() > _INT_BITS_MAX:
            raise self.beyond(
                "dpl_int_bits_max", f"an integer literal of {len(text)} digits", token.span
            )
        return value

    def floating(self, token: Token) -> float:
        """The value of a float literal; one beyond the range of a binary64 float is L006."""
        value = float(token.text)
        if not math.isfinite(value):
            self.error(
                "L006",
                f"malformed number: {token.text[:20]}… is beyond the range of a float",
                token.span,
            )
            raise _Stop
        return value

    # ------------------------------------------------------------------ declarations

    def program(self) -> ast.Program:
        program = ast.Program()
        while self.token.kind != "eof":
            start = self.position
            try:
                self.item(program, None)
            except _Stop:
                if self.stopped:
                    break
                if self.position == start:
                    self.advance()
                self.sync_item()
        return program

    def item(self, program: ast.Program, forge: str | None) -> None:
        token = self.token
        if self.at("forge"):
            if forge is not None:
                self.error("P001", "a forge cannot contain another forge", token.span)
            self.advance()
            name = self.ident("a forge name").text
            program.forges.append(name)
            self.expect("{")
            self.enter_block(token.span)
            try:
                while not self.at("}") and self.token.kind != "eof":
                    start = self.position
                    try:
                        self.item(program, name)
                    except _Stop:
                        if self.stopped:
                            raise
                        if self.position == start:
                            self.advance()
                        self.sync_item(in_forge=True)
            finally:
                self.blocks -= 1
            self.expect("}", "'}' closing the forge")
        elif self.at("shape"):
            program.shapes.append(self.shape(forge))
        elif self.at("proc"):
            program.procs.append(self.proc(forge))
        elif self.at("bind"):
            program.binds.append(self.bind(forge))
        elif token.kind == "keyword" and token.text in _REGIMES:
            program.procs.append(self.short_proc(forge))
        elif token.kind == "ident" and token.text == "const" and self.peek().kind == "ident":
            program.consts.append(self.const(forge))
        else:
            raise self.fail("a declaration (forge, shape, proc, bind, or K name …)")

    def const(self, forge: str | None) -> ast.Const:
        """``const NAME (: Type)? = expr ;`` (the public dialect's named constants)."""
        start = self.advance().span
        name = self.ident("a constant name")
        declared = self.type_ref() if self.accept(":") else None
        self.expect("=")
        value = self.expression()
        end = self.expect(";", "';' after the constant").span
        return ast.Const(name.text, declared, value, start.cover(end), name.span, forge)

    def shape(self, forge: str | None) -> ast.Shape:
        start = self.advance().span
        name = self.ident("a shape name").text
        self.expect("{")
        fields: list[tuple[str, ast.TypeRef, Span]] = []
        while not self.at("}") and self.token.kind != "eof":
            field_token = self.ident("a field name")
            self.expect(":")
            declared = self.type_ref()
            fields.append((field_token.text, declared, field_token.span.cover(declared.span)))
            if not self.accept(";") and not self.accept(",") and not self.at("}"):
                raise self.fail("';' after a shape field")
        end = self.expect("}").span
        return ast.Shape(name, fields, start.cover(end), forge)

    def proc(self, forge: str | None) -> ast.Proc:
        start = self.advance().span
        regime = self.regime().text
        self.expect("::")
        name = self.ident("a process name")
        return self.proc_rest(regime, name, start, forge)

    def short_proc(self, forge: str | None) -> ast.Proc:
        regime_token = self.advance()
        name = self.ident("a process name")
        if self.at("="):
            self.error(
                "U001",
                "type aliases ('K Name = K[Struct { … }]') are not supported; declare a shape",
                name.span,
            )
            raise _Stop
        if self.at("{") and name.text == "main":
            body = self.block()
            return ast.Proc(
                regime_token.text,
                name.text,
                [],
                None,
                [],
                False,
                body,
                regime_token.span.cover(body.span),
                name.span,
                forge,
            )
        return self.proc_rest(regime_token.text, name, regime_token.span, forge)

    def proc_rest(self, regime: str, name: Token, start: Span, forge: str | None) -> ast.Proc:
        self.expect("(")
        params: list[ast.Param] = []
        while not self.at(")"):
            params.append(self.param())
            if not self.accept(","):
                break
        self.expect(")", "')' closing the parameter list")
        returns: ast.TypeRef | None = None
        uses: list[ast.Resource] = []
        linear = False
        while True:
            if self.accept("->"):
                if returns is not None:
                    self.error("P001", "a process has one return type", self.token.span)
                returns = self.type_ref()
            elif self.accept("uses"):
                uses.append(self.resource())
                while self.accept(","):
                    uses.append(self.resource())
            elif self.accept("linear"):
                linear = True
            else:
                break
        body = self.block()
        return ast.Proc(
            regime,
            name.text,
            params,
            returns,
            uses,
            linear,
            body,
            start.cover(body.span),
            name.span,
            forge,
        )

    def param(self) -> ast.Param:
        # v0.1: `name: Type`; v0.2: `K[Int] name` (a type first).
        if self.token.kind == "ident" and self.peek().kind == "op" and self.peek().text == ":":
            name = self.advance()
            self.advance()
            declared = self.type_ref()
            return ast.Param(name.text, declared, name.span.cover(declared.span))
        declared = self.type_ref()
        name = self.ident("a parameter name")
        return ast.Param(name.text, declared, declared.span.cover(name.span))

    def resource(self) -> ast.Resource:
        name = self.ident("a resource name")
        arguments: dict[str, Any] = {}
        end = name.span
        if self.accept("("):
            while not self.at(")"):
                key = self.ident("a resource argument name")
                self.expect("=")
                arguments[key.text] = self.constant()
                if not self.accept(","):
                    break
            end = self.expect(")").span
        return ast.Resource(name.text, arguments, name.span.cover(end))

    def constant(self) -> Any:
        """A literal value in a resource argument or contract clause."""
        token = self.token
        negative = False
        if self.at("-"):
            self.advance()
            negative = True
            token = self.token
        if token.kind == "int":
            self.advance()
            return -self.integer(token) if negative else self.integer(token)
        if token.kind == "float":
            self.advance()
            return -self.floating(token) if negative else self.floating(token)
        if negative:
            raise self.fail("a number after '-'")
        if token.kind == "string":
            self.advance()
            return token.text.replace("\x00", "")
        if self.at("true") or self.at("false"):
            self.advance()
            return token.text == "true"
        if token.kind == "ident" or (
            token.kind == "keyword" and token.text in ("emit", "observe", "seal")
        ):
            self.advance()
            return ("name", token.text)
        if self.at("["):
            self.nest_type(token.span)
            try:
                self.advance()
                items: list[Any] = []
                while not self.at("]"):
                    items.append(self.constant())
                    if not self.accept(","):
                        break
                self.expect("]")
            finally:
                self.depth -= 1
            return items
        raise self.fail("a literal value")

    def nest_type(self, span: Span) -> None:
        """One level deeper in a type or a constant list (counted with expression recursion)."""
        self.depth += 1
        if self.depth > _TYPE_MAX:
            self.depth -= 1
            raise self.beyond(
                "dpl_type_depth_max", f"type or list nested more than {_TYPE_MAX} levels", span
            )

    def bind(self, forge: str | None) -> ast.Bind:
        start = self.advance().span
        source = self.proc_ref()
        self.expect("->")
        target = self.proc_ref()
        self.expect("contract")
        self.expect("{")
        clauses: list[ast.Clause] = []
        while not self.at("}") and self.token.kind != "eof":
            begin = self.position
            try:
                clauses.append(self.clause())
            except _Stop:
                if self.position == begin:
                    self.advance()
                self.sync_statement()
        end = self.expect("}").span
        return ast.Bind(source, target, clauses, start.cover(end), forge)

    def proc_ref(self) -> ast.ProcRef:
        regime = self.regime()
        self.expect("::")
        name = self.ident("a process name")
        return ast.ProcRef(regime.text, name.text, regime.span.cover(name.span))

    def clause(self) -> ast.Clause:
        name = self.ident("a contract clause name")
        token = self.token
        if token.kind == "op" and token.text in ("==", "!=", "<", ">", "<=", ">=", "="):
            op = self.advance().text
        else:
            raise self.fail("a clause operator (==, <=, <, …)")
        value = self.constant()
        end = self.expect(";", "';' after the clause").span
        bare = isinstance(value, tuple)
        if bare:
            value = value[1]
        elif isinstance(value, list):
            value = [item[1] if isinstance(item, tuple) else item for item in value]
        return ast.Clause(name.text, "==" if op == "=" else op, value, name.span.cover(end), bare)

    def type_ref(self) -> ast.TypeRef:
        # The depth counter is shared with expressions; a type starts from where it is
        # written, so its own nesting is measured from there.
        outer, self.depth = self.depth, 0
        try:
            return self.nested_type()
        finally:
            self.depth = outer

    def nested_type(self) -> ast.TypeRef:
        token = self.token
        self.nest_type(token.span)
        if token.kind == "keyword" and token.text in _REGIMES and self.peek().text == "[":
            # `K[Int]`: the regime marker of the v0.2 draft wraps the type.
            self.advance()
            self.advance()
            inner = self.nested_type()
            end = self.expect("]").span
            result = ast.TypeRef(inner.name, token.span.cover(end), inner.args, inner.size)
        else:
            name = self.ident("a type")
            result = ast.TypeRef(name.text, name.span)
            if self.at("<") or (self.at("[") and self.peek().kind != "int"):
                self.error("U001", "generic types are not supported", self.token.span)
                raise _Stop
        while self.at("[") and self.peek().kind == "int":
            self.nest_type(self.token.span)
            self.advance()
            size = self.integer(self.advance())
            end = self.expect("]").span
            result = ast.TypeRef("array", result.span.cover(end), [result], size)
        return result

    # ------------------------------------------------------------------ statements

    def block(self) -> ast.Block:
        start = self.expect("{", "'{' opening a block").span
        self.enter_block(start)
        try:
            return self.block_rest(start)
        finally:
            self.blocks -= 1

    def block_rest(self, start: Span) -> ast.Block:
        statements: list[ast.Stmt] = []
        tail: ast.Expr | None = None
        while not self.at("}") and self.token.kind != "eof":
            if tail is not None:
                statements.append(ast.ExprStmt(tail.span, tail))
                tail = None
            begin = self.position
            self.statements += 1
            if self.statements > _STATEMENTS_MAX:
                self.error(
                    LIMIT_CODE,
                    limit_message("dpl_statements_max", f"more than {_STATEMENTS_MAX} statements"),
                    self.token.span,
                )
                self.halt()
            try:
                statement, needs_semicolon = self.statement()
            except _Stop:
                if self.stopped:
                    raise
                if self.position == begin:
                    self.advance()
                self.sync_statement()
                continue
            if isinstance(statement, ast.ExprStmt) and needs_semicolon:
                if self.accept(";"):
                    statements.append(statement)
                elif self.at("}"):
                    tail = statement.value
                else:
                    statements.append(statement)
            else:
                if needs_semicolon:
                    self.accept(";")
                statements.append(statement)
        end = self.expect("}", "'}' closing the block").span
        return ast.Block(statements, tail, start.cover(end))

    def statement(self) -> tuple[ast.Stmt, bool]:
        token = self.token
        if self.at("let") or self.at("mut"):
            mutable = False
            if self.accept("mut"):
                mutable = True
            self.expect("let")
            if self.accept("mut"):
                mutable = True
            name = self.ident("a binding name")
            declared = self.type_ref() if self.accept(":") else None
            self.expect("=")
            value = self.expression()
            return ast.Let(
                token.span.cover(value.span), name.text, mutable, declared, value, name.span
            ), True
        if self.at("constrain"):
            self.advance()
            condition = self.expression()
            return ast.Constrain(token.span.cover(condition.span), condition), True
        if self.at("prove"):
            self.advance()
            name = self.ident("a witness name")
            self.expect("from")
            source = self.expression()
            return ast.Prove(token.span.cover(source.span), name.text, source, name.span), True
        if token.kind == "keyword" and token.text in ("observe", "emit", "seal"):
            self.advance()
            value = self.expression()
            return ast.Effect(token.span.cover(value.span), token.text, value), True
        if self.at("return"):
            self.advance()
            if self.at(";") or self.at("}"):
                return ast.Return(token.span, None), True
            value = self.expression()
            return ast.Return(token.span.cover(value.span), value), True
        if self.at("if"):
            return self.if_statement(), False
        if self.at("while"):
            self.advance()
            condition = self.expression(no_shape=True)
            body = self.loop_body(token.span)
            return ast.While(token.span.cover(body.span), condition, body), False
        if self.at("for"):
            self.advance()
            name = self.ident("a loop variable")
            self.expect("in")
            low = self.expression(no_shape=True)
            self.expect("..", "'..' in a range")
            high = self.expression(no_shape=True)
            body = self.loop_body(token.span)
            return ast.For(
                token.span.cover(body.span), name.text, low, high, body, name.span
            ), False
        if self.at("break"):
            self.advance()
            return ast.Break(token.span), True
        if self.at("continue"):
            self.advance()
            return ast.Continue(token.span), True
        if token.kind == "ident" and self.peek().kind == "op" and self.peek().text == "=":
            name = self.advance()
            self.advance()
            value = self.expression()
            return ast.Assign(name.span.cover(value.span), name.text, value, name.span), True
        value = self.expression()
        return ast.ExprStmt(value.span, value), True

    def loop_body(self, span: Span) -> ast.Block:
        self.loops += 1
        try:
            if self.loops > _LOOP_MAX:
                raise self.beyond(
                    "dpl_loop_depth_max", f"loops nested more than {_LOOP_MAX} levels deep", span
                )
            return self.block()
        finally:
            self.loops -= 1

    def if_statement(self) -> ast.If:
        start = self.advance().span
        condition = self.expression(no_shape=True)
        then = self.block()
        otherwise: ast.Block | None = None
        if self.accept("else"):
            if self.at("if"):
                # `else if` nests the second `if` in the first one's else block.
                self.enter_block(self.token.span)
                try:
                    nested = self.if_statement()
                finally:
                    self.blocks -= 1
                otherwise = ast.Block([nested], None, nested.span)
            else:
                otherwise = self.block()
        end = otherwise.span if otherwise is not None else then.span
        return ast.If(start.cover(end), condition, then, otherwise)

    # ------------------------------------------------------------------ expressions

    def expression(self, no_shape: bool = False) -> ast.Expr:
        return self.measured(no_shape)[0]

    # Each method below returns the expression and its height (a leaf is 1 tall); every
    # node's height is checked as it is built (`taller`), so no tree deeper than the bound
    # ever leaves the parser.

    def measured(self, no_shape: bool = False) -> tuple[ast.Expr, int]:
        self.nest()
        try:
            return self.binary(1, no_shape)
        finally:
            self.depth -= 1

    def binary(self, level: int, no_shape: bool) -> tuple[ast.Expr, int]:
        left, height = self.unary(no_shape)
        while True:
            token = self.token
            precedence = _BINARY.get(token.text) if token.kind == "op" else None
            if precedence is None or precedence < level:
                return left, height
            self.advance()
            self.nest()
            try:
                right, right_height = self.binary(precedence + 1, no_shape)
            finally:
                self.depth -= 1
            span = left.span.cover(right.span)
            height = self.taller(max(height, right_height), span)
            left = ast.Binary(span, token.text, left, right)

    def unary(self, no_shape: bool) -> tuple[ast.Expr, int]:
        token = self.token
        if self.at("-") or self.at("!") or self.at("~"):
            self.advance()
            self.nest()
            try:
                operand, height = self.unary(no_shape)
            finally:
                self.depth -= 1
            span = token.span.cover(operand.span)
            return ast.Unary(span, token.text, operand), self.taller(height, span)
        return self.postfix(*self.primary(no_shape))

    def postfix(self, expr: ast.Expr, height: int) -> tuple[ast.Expr, int]:
        while True:
            if self.at("."):
                self.advance()
                name = self.ident("a field name")
                span = expr.span.cover(name.span)
                height = self.taller(height, span)
                expr = ast.Field(span, expr, name.text)
            elif self.at("["):
                self.advance()
                index, index_height = self.measured()
                end = self.expect("]").span
                span = expr.span.cover(end)
                height = self.taller(max(height, index_height), span)
                expr = ast.Index(span, expr, index)
            elif self.token.kind == "ident" and self.token.text == "as":
                self.error("U001", "casts ('as') are not supported", self.token.span)
                raise _Stop
            else:
                return expr, height

    def arguments(self) -> tuple[list[ast.Expr], Span, int]:
        self.expect("(")
        args: list[ast.Expr] = []
        height = 0
        while not self.at(")"):
            arg, arg_height = self.measured()
            args.append(arg)
            height = max(height, arg_height)
            if not self.accept(","):
                break
        end = self.expect(")", "')' closing the arguments").span
        return args, end, height

    def primary(self, no_shape: bool) -> tuple[ast.Expr, int]:
        token = self.token
        if token.kind == "int":
            self.advance()
            return ast.Literal(token.span, "int", self.integer(token)), 1
        if token.kind == "float":
            self.advance()
            return ast.Literal(token.span, "float", self.floating(token)), 1
        if token.kind == "string":
            self.advance()
            return self.string(token)
        if self.at("true") or self.at("false"):
            self.advance()
            return ast.Literal(token.span, "bool", token.text == "true"), 1
        if self.at("("):
            self.advance()
            inner = self.measured()
            self.expect(")")
            return inner
        if self.at("["):
            self.advance()
            items: list[ast.Expr] = []
            height = 0
            while not self.at("]"):
                item, item_height = self.measured()
                items.append(item)
                height = max(height, item_height)
                if not self.accept(","):
                    break
            end = self.expect("]").span
            span = token.span.cover(end)
            return ast.ArrayLit(span, items), self.taller(height, span)
        if token.kind == "keyword" and token.text in _REGIMES and self.peek().text == "::":
            self.advance()
            self.advance()
            name = self.ident("a process name")
            args, end, height = self.arguments()
            span = token.span.cover(end)
            return ast.Call(span, token.text, name.text, args, name.span), self.taller(height, span)
        if token.kind == "ident":
            name = self.ident()
            if (
                self.at("::")
                and self.peek().kind == "keyword"
                and self.peek().text in _REGIMES
                and self.peek(2).text == "::"
            ):
                return self.qualified(name)
            if self.at("::"):
                self.advance()
                function = self.ident("a library function", library=True)
                args, end, height = self.arguments()
                span = name.span.cover(end)
                where = name.span.cover(function.span)
                call = ast.Call(span, name.text, function.text, args, where)
                return call, self.taller(height, span)
            if self.at("("):
                args, end, height = self.arguments()
                span = name.span.cover(end)
                return ast.Call(span, None, name.text, args, name.span), self.taller(height, span)
            if (
                not no_shape
                and self.at("{")
                and name.text[:1].isupper()
                and self.peek().kind == "ident"
                and self.peek(2).text == ":"
            ):
                return self.shape_literal(name)
            return ast.Name(name.span, name.text), 1
        raise self.fail("an expression")

    def qualified(self, forge: Token) -> tuple[ast.Expr, int]:
        """``Forge::K::name(…)`` (a process of another forge, possibly in another file) or
        ``Forge::K::NAME`` (one of its constants)."""
        self.advance()
        regime = self.advance()
        self.advance()
        name = self.ident("a process or constant name")
        if self.at("("):
            args, end, height = self.arguments()
            span = forge.span.cover(end)
            call = ast.Call(span, regime.text, name.text, args, name.span, forge.text)
            return call, self.taller(height, span)
        return ast.Name(forge.span.cover(name.span), name.text, forge.text), 1

    def shape_literal(self, name: Token) -> tuple[ast.ShapeLit, int]:
        self.expect("{")
        fields: list[tuple[str, ast.Expr, Span]] = []
        height = 0
        while not self.at("}"):
            field_name = self.ident("a field name")
            self.expect(":")
            value, value_height = self.measured()
            height = max(height, value_height)
            fields.append((field_name.text, value, field_name.span.cover(value.span)))
            if not self.accept(","):
                break
        end = self.expect("}").span
        span = name.span.cover(end)
        return ast.ShapeLit(span, name.text, fields), self.taller(height, span)

    def string(self, token: Token) -> tuple[ast.Expr, int]:
        body = token.text
        if "{" not in body.replace("\x00{", ""):
            return ast.Literal(token.span, "string", body.replace("\x00", "")), 1
        parts: list[str | ast.Expr] = []
        height = 0
        text: list[str] = []
        index = 0
        while index < len(body):
            char = body[index]
            if char == "\x00" and index + 1 < len(body):
                text.append(body[index + 1])
                index += 2
                continue
            if char == "{":
                end = body.find("}", index)
                if end < 0:
                    self.error(
                        "P001", "'{' in a string opens a hole that is never closed", token.span
                    )
                    return ast.Literal(token.span, "string", body.replace("\x00", "")), 1
                hole = body[index + 1 : end]
                if text:
                    parts.append("".join(text))
                    text = []
                part, part_height = self.hole(hole, token.span)
                parts.append(part)
                height = max(height, part_height)
                index = end + 1
                continue
            text.append(char)
            index += 1
        if text:
            parts.append("".join(text))
        return ast.Interp(token.span, parts), self.taller(height, token.span)

    def hole(self, text: str, span: Span) -> tuple[ast.Expr, int]:
        tokens, lexical = tokenize(text)
        if lexical or len(tokens) == 1:
            self.error("P001", f"invalid interpolation hole {{{text}}}", span)
            return ast.Literal(span, "string", ""), 1
        # Every token of the hole points at the whole string literal.
        tokens = [Token(t.kind, t.text, span) for t in tokens]
        inner = _Parser(tokens, self.diagnostics)
        inner.depth = self.depth
        try:
            measured = inner.measured()
            if inner.token.kind != "eof":
                raise inner.fail("the end of the interpolation hole")
        except _Stop:
            if inner.stopped:
                self.halt()
            return ast.Literal(span, "string", ""), 1
        return measured


def parse(text: str) -> tuple[ast.Program, list[Diagnostic]]:
    """Parse DPL source text; return the program and every lexical and syntax diagnostic."""
    bound = limit("dpl_source_bytes_max")
    if len(text) > bound:
        # Refused before lexing: the front-end's time grows with the text.
        found = f"a source of {len(text)} characters"
        span = Span(bound, bound)
        return ast.Program(), [
            Diagnostic(LIMIT_CODE, limit_message("dpl_source_bytes_max", found), span)
        ]
    tokens, diagnostics = tokenize(text)
    parser = _Parser(tokens, diagnostics)
    try:
        program = parser.program()
    except _Stop:
        program = ast.Program()
    return program, diagnostics.final()


def parse_files(texts: list[str]) -> tuple[ast.Program, list[Diagnostic], list[int]]:
    """Parse the files of one source tree as one program (modules, docs/dpl.md §2).

    Each file is lexed on its own (a construct never runs from one file into the next) and
    the tokens are parsed together, their spans offset into the texts joined by newlines;
    the third result is the offset where each file starts in that joined text."""
    joined = "\n".join(texts)
    bound = limit("dpl_source_bytes_max")
    if len(joined) > bound:
        found = f"a source tree of {len(joined)} characters"
        span = Span(bound, bound)
        return (
            ast.Program(),
            [Diagnostic(LIMIT_CODE, limit_message("dpl_source_bytes_max", found), span)],
            [],
        )
    starts: list[int] = []
    tokens: list[Token] = []
    diagnostics = Diagnostics(joined)
    base = 0
    for text in texts:
        starts.append(base)
        file_tokens, file_diagnostics = tokenize(text)
        for token in file_tokens[:-1]:
            tokens.append(
                Token(token.kind, token.text, Span(token.span.start + base, token.span.end + base))
            )
        for diagnostic in file_diagnostics:
            span = Span(diagnostic.span.start + base, diagnostic.span.end + base)
            diagnostics.append(
                Diagnostic(diagnostic.code, diagnostic.message, span, diagnostic.severity)
            )
        base += len(text) + 1
    tokens.append(Token("eof", "", Span(len(joined), len(joined))))
    parser = _Parser(tokens, diagnostics)
    try:
        program = parser.program()
    except _Stop:
        program = ast.Program()
    return program, diagnostics.final(), starts
