"""Reading DIR: a JSON document → typed nodes (:func:`parse_dir`).

The parser accepts exactly the documents :func:`~xdv.dpl._dir.dir_document` writes and refuses
anything else with a :class:`DirFormatError` naming the place (``docs/dpl.md`` §9). The two are
inverses: ``parse_dir(dir_document(p)) == p`` for every program, and
``dir_document(parse_dir(d)) == d`` for every document ``parse_dir`` accepts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from xdv.dpl._dir import (
    DIR_FORMAT,
    DIR_VERSION,
    ArrayLiteral,
    Assign,
    Binary,
    Break,
    Call,
    ClauseValue,
    Constrain,
    Continue,
    CrossCall,
    DecisionVariable,
    DirBind,
    DirClause,
    DirProcess,
    DirProgram,
    DirShape,
    DirUse,
    DirWalker,
    Effect,
    Expression,
    ExpressionStatement,
    FieldAccess,
    For,
    If,
    IndexAccess,
    Interpolation,
    Let,
    Literal,
    Prove,
    QuantumOperation,
    Return,
    Scalar,
    ShapeLiteral,
    Statement,
    Unary,
    Variable,
    While,
)
from xdv.dpl._types import CLAUSES, RESOURCES
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import limit

__all__ = [
    "EXPRESSION_TAGS",
    "STATEMENT_TAGS",
    "DirFormatError",
    "parse_dir",
]

REGIMES = ("K", "Q", "Φ")
EFFECT_KINDS = ("emit", "observe", "seal")


class DirFormatError(XdvError):
    """A DIR document that is not one this implementation writes: malformed, of another format
    or version, with a dangling reference, or with a digest that does not match. ``where`` is
    the path of the offending value (``processes[0].body[2].e``)."""

    default_code = ErrorCode.DPL_DIR_INVALID


# ---------------------------------------------------------------------- JSON → typed


def parse_dir(document: object) -> DirProgram:
    """The typed program of a DIR document (a JSON value, as ``json.loads`` gives it).

    Accepts exactly what :func:`dir_document` writes: every key present with a value of its
    type, no unknown keys, optional flags only when true, references that resolve (called and
    bound processes, bind numbers, slots), and a ``sha256`` equal to the document's digest.
    Anything else raises :class:`DirFormatError` with the path of the offending value.
    """
    _check_depth(document)
    root = _object(
        document, "", ("format", "version", "shapes", "processes", "binds", "sha256"), ()
    )
    if root["format"] != DIR_FORMAT:
        raise _malformed("format", f"is {_shown(root['format'])}, not {DIR_FORMAT!r}")
    if type(root["version"]) is not int or root["version"] != DIR_VERSION:
        raise _malformed(
            "version",
            f"is {_shown(root['version'])}; this implementation reads version {DIR_VERSION}",
        )
    shapes = tuple(
        _shape(item, f"shapes[{index}]")
        for index, item in enumerate(_list(root["shapes"], "shapes"))
    )
    processes = tuple(
        _process(item, f"processes[{index}]")
        for index, item in enumerate(_list(root["processes"], "processes"))
    )
    binds = tuple(
        _bind(item, f"binds[{index}]") for index, item in enumerate(_list(root["binds"], "binds"))
    )
    digest = _string(root["sha256"], "sha256")
    program = DirProgram(shapes=shapes, processes=processes, binds=binds)
    _check_references(program)
    # The program's own digest (of its canonical form, written afresh) must be the one the
    # document claims: this also catches a document the program would not write back as is.
    if program.sha256 != digest:
        raise _malformed("sha256", "does not match the document's digest")
    return program


# The deepest document the compiler writes: two JSON levels per expression level (a node and
# an argument list) and per block (a statement and its body list), and a few for the frame.
_DEPTH_MAX = 2 * (limit("dpl_expression_depth_max") + limit("dpl_block_depth_max")) + 8
_MAGNITUDE = 1 << limit("dpl_int_bits_max")
_QUBITS_MAX = limit("dpl_qubits_max")


def _check_depth(document: object) -> None:
    """Refuse a value nested deeper than any document the compiler writes, before the
    recursive reader meets it (measured with an explicit stack, not recursion)."""
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > _DEPTH_MAX:
            raise _malformed("", f"is nested deeper than {_DEPTH_MAX} levels")
        if isinstance(value, dict):
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list | tuple):
            pending.extend((item, depth + 1) for item in value)


def _shown(value: object) -> str:
    """A short repr of a value from the document (an integer too large to write, or a long
    string, is never written out whole)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return "a very large integer"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _malformed(path: str, problem: str) -> DirFormatError:
    place = path or "the document"
    return DirFormatError(f"malformed DIR: {place} {problem}", where=path or "$")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(
    value: object, path: str, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(path, f"must be an object, not {_kind(value)}")
    missing = [key for key in required if key not in value]
    if missing:
        raise _malformed(path, f"lacks {', '.join(repr(key) for key in missing)}")
    unknown = sorted(str(key) for key in value if key not in required and key not in optional)
    if unknown:
        raise _malformed(path, f"has unknown key(s) {', '.join(repr(key) for key in unknown)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _malformed(path, f"must be an array, not {_kind(value)}")
    return value


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _malformed(path, f"must be a string, not {_kind(value)}")
    return value


def _boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _malformed(path, f"must be true or false, not {_kind(value)}")
    return value


def _count(value: object, path: str, most: int = 1 << 31) -> int:
    if type(value) is not int or not 0 <= value <= most:
        shown = repr(value) if type(value) is not int or value.bit_length() < 64 else "larger"
        raise _malformed(path, f"must be an integer from 0 to {most}, not {shown[:40]}")
    return value


def _flag(fields: dict[str, Any], key: str, path: str) -> bool:
    """An optional flag: absent (false) or ``true`` (``false`` is not canonical)."""
    if key not in fields:
        return False
    if fields[key] is not True:
        raise _malformed(_join(path, key), "is present only as true")
    return True


def _scalar(value: object, path: str) -> Scalar:
    if isinstance(value, int) and not isinstance(value, bool):
        if not -_MAGNITUDE < value < _MAGNITUDE:
            raise _malformed(path, "is an integer beyond dpl_int_bits_max")
        return value
    if isinstance(value, bool | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _malformed(path, "must be a finite number")
        return value
    raise _malformed(path, f"must be a number, a string or a boolean, not {_kind(value)}")


def _pair(value: object, path: str) -> tuple[str, str]:
    items = _list(value, path)
    if len(items) != 2:
        raise _malformed(path, "must be a [name, type] pair")
    return _string(items[0], f"{path}[0]"), _string(items[1], f"{path}[1]")


def _shape(value: object, path: str) -> DirShape:
    fields = _object(value, path, ("name", "fields"), ())
    return DirShape(
        name=_string(fields["name"], _join(path, "name")),
        fields=tuple(
            _pair(item, f"{path}.fields[{index}]")
            for index, item in enumerate(_list(fields["fields"], _join(path, "fields")))
        ),
    )


_PROCESS_KEYS = (
    "name",
    "regime",
    "forge",
    "params",
    "returns",
    "linear",
    "uses",
    "effects",
    "slots",
    "qubits",
    "body",
)


def _process(value: object, path: str) -> DirProcess:
    fields = _object(value, path, _PROCESS_KEYS, ())
    name = _string(fields["name"], _join(path, "name"))
    regime = _string(fields["regime"], _join(path, "regime"))
    if regime not in REGIMES:
        raise _malformed(_join(path, "regime"), f"is {_shown(regime)}, not one of K, Q, Φ")
    if not name.startswith(f"{regime}::") or len(name) == len(regime) + 2:
        raise _malformed(_join(path, "name"), f"must be {regime}::NAME")
    forge = fields["forge"]
    if forge is not None:
        forge = _string(forge, _join(path, "forge"))
    effects = tuple(
        _string(item, f"{path}.effects[{index}]")
        for index, item in enumerate(_list(fields["effects"], _join(path, "effects")))
    )
    if any(effect not in EFFECT_KINDS for effect in effects) or list(effects) != sorted(
        set(effects)
    ):
        raise _malformed(_join(path, "effects"), "must be distinct effect kinds, sorted")
    params = tuple(
        _pair(item, f"{path}.params[{index}]")
        for index, item in enumerate(_list(fields["params"], _join(path, "params")))
    )
    slots = _count(fields["slots"], _join(path, "slots"))
    if len(params) > slots:
        raise _malformed(_join(path, "slots"), "is fewer than the parameters")
    return DirProcess(
        name=name,
        regime=regime,
        forge=forge,
        params=params,
        returns=_string(fields["returns"], _join(path, "returns")),
        linear=_boolean(fields["linear"], _join(path, "linear")),
        uses=tuple(
            _use(item, f"{path}.uses[{index}]", regime)
            for index, item in enumerate(_list(fields["uses"], _join(path, "uses")))
        ),
        effects=effects,
        slots=slots,
        qubits=_count(fields["qubits"], _join(path, "qubits"), _QUBITS_MAX),
        body=_block(fields["body"], _join(path, "body")),
    )


def _mapping(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise _malformed(path, f"must be an object, not {_kind(value)}")
    return value


def _use(value: object, path: str, regime: str) -> DirUse:
    fields = _object(value, path, ("name", "args"), ())
    name = _string(fields["name"], _join(path, "name"))
    spec = RESOURCES[regime].get(name)
    if spec is None:
        raise _malformed(_join(path, "name"), f"is not a resource of {regime} processes")
    arguments = _mapping(fields["args"], _join(path, "args"))
    for key, item in arguments.items():
        kind = spec.get(key)
        if (
            kind is None
            or not isinstance(item, kind)
            or (isinstance(item, bool) and kind is not bool)
        ):
            raise _malformed(f"{path}.args.{key}", f"is not an argument of {name}")
    return DirUse(
        name=name,
        arguments=tuple(
            (key, _scalar(arguments[key], f"{path}.args.{key}")) for key in sorted(arguments)
        ),
    )


def _bind(value: object, path: str) -> DirBind:
    fields = _object(value, path, ("source", "target", "contract"), ())
    contract = _mapping(fields["contract"], _join(path, "contract"))
    clauses = []
    for name in sorted(contract):
        clause_path = f"{path}.contract.{name}"
        clause = _object(contract[name], clause_path, ("op", "value"), ())
        raw = clause["value"]
        value_path = _join(clause_path, "value")
        spec = CLAUSES.get(name)
        if spec is None:
            raise _malformed(clause_path, "is not a contract clause")
        operators, valid, description = spec
        op = _string(clause["op"], _join(clause_path, "op"))
        if op not in operators:
            raise _malformed(_join(clause_path, "op"), f"must be one of {sorted(operators)}")
        if not valid(raw):
            raise _malformed(value_path, f"must be {description}")
        parsed: ClauseValue
        if isinstance(raw, list):
            parsed = tuple(_scalar(item, f"{value_path}[{i}]") for i, item in enumerate(raw))
        else:
            parsed = _scalar(raw, value_path)
        clauses.append(DirClause(name=name, op=op, value=parsed))
    return DirBind(
        source=_string(fields["source"], _join(path, "source")),
        target=_string(fields["target"], _join(path, "target")),
        contract=tuple(clauses),
    )


def _block(value: object, path: str) -> tuple[Statement, ...]:
    return tuple(
        _statement(item, f"{path}[{index}]") for index, item in enumerate(_list(value, path))
    )


def _statement(value: object, path: str) -> Statement:
    if not isinstance(value, dict) or not isinstance(value.get("s"), str):
        raise _malformed(path, "must be a statement object with a string 's'")
    parser = _STATEMENTS.get(value["s"])
    if parser is None:
        raise _malformed(_join(path, "s"), f"names no statement: {_shown(value['s'])}")
    return parser(value, path)


def _expression(value: object, path: str) -> Expression:
    if not isinstance(value, dict) or not isinstance(value.get("k"), str):
        raise _malformed(path, "must be an expression object with a string 'k'")
    tag = value["k"]
    if tag == "std":
        namespace = value.get("ns")
        parser = _STANDARD.get(namespace) if isinstance(namespace, str) else None
        if parser is None:
            raise _malformed(_join(path, "ns"), f"names no library: {_shown(namespace)}")
        return parser(value, path)
    found = _EXPRESSIONS.get(tag)
    if found is None:
        raise _malformed(_join(path, "k"), f"names no expression: {_shown(tag)}")
    return found(value, path)


def _expressions(value: object, path: str) -> tuple[Expression, ...]:
    return tuple(
        _expression(item, f"{path}[{index}]") for index, item in enumerate(_list(value, path))
    )


def _type(fields: dict[str, Any], path: str) -> str:
    return _string(fields["t"], _join(path, "t"))


def _name(fields: dict[str, Any], path: str, key: str = "name") -> str:
    return _string(fields[key], _join(path, key))


# -- expressions


def _literal(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "v", "t"), ())
    return Literal(type=_type(fields, path), value=_scalar(fields["v"], _join(path, "v")))


def _variable(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "name", "slot", "t"), ("sym", "size"))
    return Variable(
        type=_type(fields, path),
        name=_name(fields, path),
        slot=_count(fields["slot"], _join(path, "slot")),
        is_symbolic=_flag(fields, "sym", path),
        size=_count(fields["size"], _join(path, "size"), _QUBITS_MAX) if "size" in fields else None,
    )


def _binary(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "op", "l", "r", "t"), ("sym",))
    return Binary(
        type=_type(fields, path),
        op=_name(fields, path, "op"),
        left=_expression(fields["l"], _join(path, "l")),
        right=_expression(fields["r"], _join(path, "r")),
        is_symbolic=_flag(fields, "sym", path),
    )


def _unary(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "op", "e", "t"), ("sym",))
    return Unary(
        type=_type(fields, path),
        op=_name(fields, path, "op"),
        operand=_expression(fields["e"], _join(path, "e")),
        is_symbolic=_flag(fields, "sym", path),
    )


def _call(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "proc", "args", "t"), ())
    return Call(
        type=_type(fields, path),
        process=_name(fields, path, "proc"),
        args=_expressions(fields["args"], _join(path, "args")),
    )


def _cross_call(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "target", "bind", "args", "t"), ())
    return CrossCall(
        type=_type(fields, path),
        target=_name(fields, path, "target"),
        bind=_count(fields["bind"], _join(path, "bind")),
        args=_expressions(fields["args"], _join(path, "args")),
    )


def _quantum_operation(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "ns", "fn", "args", "size", "t"), ())
    size = fields["size"]
    return QuantumOperation(
        type=_type(fields, path),
        function=_name(fields, path, "fn"),
        args=_expressions(fields["args"], _join(path, "args")),
        size=None if size is None else _count(size, _join(path, "size"), _QUBITS_MAX),
    )


def _decision_variable(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "ns", "fn", "args", "sym", "t"), ())
    if fields["sym"] is not True:
        raise _malformed(_join(path, "sym"), "must be true (a decision variable is symbolic)")
    return DecisionVariable(
        type=_type(fields, path),
        function=_name(fields, path, "fn"),
        args=_expressions(fields["args"], _join(path, "args")),
    )


def _interpolation(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "parts", "t"), ())
    parts: list[str | Expression] = []
    for index, part in enumerate(_list(fields["parts"], _join(path, "parts"))):
        parts.append(part if isinstance(part, str) else _expression(part, f"{path}.parts[{index}]"))
    return Interpolation(type=_type(fields, path), parts=tuple(parts))


def _shape_literal(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "name", "fields", "t"), ())
    pairs = []
    for index, item in enumerate(_list(fields["fields"], _join(path, "fields"))):
        item_path = f"{path}.fields[{index}]"
        pair = _list(item, item_path)
        if len(pair) != 2:
            raise _malformed(item_path, "must be a [name, expression] pair")
        pairs.append((_string(pair[0], f"{item_path}[0]"), _expression(pair[1], f"{item_path}[1]")))
    return ShapeLiteral(type=_type(fields, path), name=_name(fields, path), fields=tuple(pairs))


def _field_access(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "e", "name", "t"), ("witness",))
    return FieldAccess(
        type=_type(fields, path),
        target=_expression(fields["e"], _join(path, "e")),
        name=_name(fields, path),
        witness=_flag(fields, "witness", path),
    )


def _array_literal(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "items", "t"), ())
    return ArrayLiteral(
        type=_type(fields, path), items=_expressions(fields["items"], _join(path, "items"))
    )


def _index_access(value: dict[str, Any], path: str) -> Expression:
    fields = _object(value, path, ("k", "e", "i", "t"), ())
    return IndexAccess(
        type=_type(fields, path),
        target=_expression(fields["e"], _join(path, "e")),
        index=_expression(fields["i"], _join(path, "i")),
    )


# -- statements


def _let(value: dict[str, Any], path: str) -> Statement:
    fields = _object(value, path, ("s", "name", "slot", "t", "e"), ("mut", "decision"))
    return Let(
        name=_name(fields, path),
        slot=_count(fields["slot"], _join(path, "slot")),
        type=_type(fields, path),
        value=_expression(fields["e"], _join(path, "e")),
        mutable=_flag(fields, "mut", path),
        decision=_flag(fields, "decision", path),
    )


def _assign(value: dict[str, Any], path: str) -> Statement:
    fields = _object(value, path, ("s", "name", "slot", "e"), ())
    return Assign(
        name=_name(fields, path),
        slot=_count(fields["slot"], _join(path, "slot")),
        value=_expression(fields["e"], _join(path, "e")),
    )


def _effect(value: dict[str, Any], path: str) -> Statement:
    fields = _object(value, path, ("s", "effect", "e"), ())
    kind = _name(fields, path, "effect")
    if kind not in EFFECT_KINDS:
        raise _malformed(
            _join(path, "effect"), f"is {_shown(kind)}, not one of emit, observe, seal"
        )
    return Effect(kind=kind, value=_expression(fields["e"], _join(path, "e")))


def _constrain(value: dict[str, Any], path: str) -> Statement:
    fields = _object(value, path, ("s", "e"), ())
    return Constrain(condition=_expression(fields["e"], _join(path, "e")))


def _prove(value: dict[str, Any], path: str) -> Statement:
    fields = _object(value, path, ("s", "name", "slot", "e"), ())
    return Prove(
        name=_name(fields, path),
        slot=_count(fields["slot"], _join(path, "slot")),
        source=_expression(fields["e"], _join(path, "e")),
    )


def _return(value: dict[str, Any], path: str) -> Statement:
    fields = _object(value, path, ("s", "e"), ())
    result = fields["e"]
    return Return(value=None if result is None else _expression(result, _join(path, "e")))


def _if(value: dict[str, Any], path: str) -> Statement:
    fields = _object(value, path, ("s", "c", "then", "else"), ())
    otherwise = fields["else"]
    return If(
        condition=_expression(fields["c"], _join(path, "c")),
        then=_block(fields["then"], _join(path, "then")),
        otherwise=None if otherwise is None else _block(otherwise, _join(path, "else")),
    )


def _while(value: dict[str, Any], path: str) -> Statement:
    fields = _object(value, path, ("s", "c", "body"), ())
    return While(
        condition=_expression(fields["c"], _join(path, "c")),
        body=_block(fields["body"], _join(path, "body")),
    )


def _for(value: dict[str, Any], path: str) -> Statement:
    fields = _object(value, path, ("s", "name", "slot", "lo", "hi", "body"), ())
    return For(
        name=_name(fields, path),
        slot=_count(fields["slot"], _join(path, "slot")),
        low=_expression(fields["lo"], _join(path, "lo")),
        high=_expression(fields["hi"], _join(path, "hi")),
        body=_block(fields["body"], _join(path, "body")),
    )


def _break(value: dict[str, Any], path: str) -> Statement:
    _object(value, path, ("s",), ())
    return Break()


def _continue(value: dict[str, Any], path: str) -> Statement:
    _object(value, path, ("s",), ())
    return Continue()


def _expression_statement(value: dict[str, Any], path: str) -> Statement:
    fields = _object(value, path, ("s", "e"), ())
    return ExpressionStatement(value=_expression(fields["e"], _join(path, "e")))


_EXPRESSIONS: dict[str, Callable[[dict[str, Any], str], Expression]] = {
    Literal.tag: _literal,
    Variable.tag: _variable,
    Binary.tag: _binary,
    Unary.tag: _unary,
    Call.tag: _call,
    CrossCall.tag: _cross_call,
    Interpolation.tag: _interpolation,
    ShapeLiteral.tag: _shape_literal,
    FieldAccess.tag: _field_access,
    ArrayLiteral.tag: _array_literal,
    IndexAccess.tag: _index_access,
}
# The "std" expressions, by library namespace.
_STANDARD: dict[str, Callable[[dict[str, Any], str], Expression]] = {
    QuantumOperation.namespace: _quantum_operation,
    DecisionVariable.namespace: _decision_variable,
}
_STATEMENTS: dict[str, Callable[[dict[str, Any], str], Statement]] = {
    Let.tag: _let,
    Assign.tag: _assign,
    Effect.tag: _effect,
    Constrain.tag: _constrain,
    Prove.tag: _prove,
    Return.tag: _return,
    If.tag: _if,
    While.tag: _while,
    For.tag: _for,
    Break.tag: _break,
    Continue.tag: _continue,
    ExpressionStatement.tag: _expression_statement,
}
# The JSON tags the parser reads (the tests check that they are exactly the node types' tags).
EXPRESSION_TAGS = frozenset(_EXPRESSIONS) | {f"std:{namespace}" for namespace in _STANDARD}
STATEMENT_TAGS = frozenset(_STATEMENTS)


# -- references


def _check_references(program: DirProgram) -> None:
    names: dict[str, DirProcess] = {}
    for index, process in enumerate(program.processes):
        if process.name in names:
            raise _malformed(f"processes[{index}].name", f"repeats {process.name}")
        names[process.name] = process
    for index, bind in enumerate(program.binds):
        for end, name in (("source", bind.source), ("target", bind.target)):
            if name not in names:
                raise _malformed(f"binds[{index}].{end}", f"names no process: {_shown(name)}")
    for index, process in enumerate(program.processes):
        checker = _References(program, names, process, f"processes[{index}]")
        checker.walk_statements(process.body)


class _References(DirWalker):
    """Every slot is within its process, every call names a K process, every cross call a
    bind from this process to its target."""

    def __init__(
        self, program: DirProgram, names: dict[str, DirProcess], process: DirProcess, path: str
    ) -> None:
        self.program = program
        self.names = names
        self.process = process
        self.path = path

    def slot(self, slot: int, name: str) -> None:
        if slot >= self.process.slots:
            raise _malformed(
                self.path, f"uses slot {slot} ({name}) beyond its {self.process.slots} slots"
            )

    def visit_variable(self, node: Variable) -> None:
        self.slot(node.slot, node.name)

    def visit_call(self, node: Call) -> None:
        target = self.names.get(node.process)
        # Calls name K processes; a (linear-value) Q process may also call Q processes.
        if target is None or (
            target.regime != "K" and not (target.regime == "Q" == self.process.regime)
        ):
            raise _malformed(self.path, f"calls {_shown(node.process)}, which is not a K process")
        super().visit_call(node)

    def visit_cross_call(self, node: CrossCall) -> None:
        binds = self.program.binds
        if node.bind >= len(binds) or (binds[node.bind].source, binds[node.bind].target) != (
            self.process.name,
            node.target,
        ):
            raise _malformed(
                self.path,
                f"crosses bind {node.bind}, which is not a bind {self.process.name} -> "
                f"{node.target}",
            )
        super().visit_cross_call(node)

    def visit_let(self, node: Let) -> None:
        self.slot(node.slot, node.name)
        super().visit_let(node)

    def visit_assign(self, node: Assign) -> None:
        self.slot(node.slot, node.name)
        super().visit_assign(node)

    def visit_prove(self, node: Prove) -> None:
        self.slot(node.slot, node.name)
        super().visit_prove(node)

    def visit_for(self, node: For) -> None:
        self.slot(node.slot, node.name)
        super().visit_for(node)
