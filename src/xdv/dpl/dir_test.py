"""Typed DIR: the JSON round trip (corpus and generated programs), the parser's refusal of
malformed documents, and the visitor's coverage of every node type."""

from __future__ import annotations

import abc
import contextlib
import copy
import dataclasses
import functools
import hashlib
import importlib
import inspect
import json
import os
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xdv.dpl
from xdv.dpl import (
    DirFormatError,
    DirProgram,
    DplRuntimeFailure,
    Program,
    analyze,
    canonical_bytes,
    compile_dir,
    compile_k,
    dir_document,
    disassemble,
    lower_q,
    parse_dir,
)
from xdv.dpl import _dir as ir
from xdv.dpl._dir_parse import EXPRESSION_TAGS, STATEMENT_TAGS
from xdv.errors import ErrorCode, XdvError

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "dpl" / "golden"
SOURCES = sorted((ROOT / "tests" / "dpl").rglob("*.ds"))
CORPUS: list[DirProgram] = []
for _path in SOURCES:
    _program = analyze(_path.read_text("utf-8")).program
    if _program is not None:
        CORPUS.append(_program)
LONG = os.environ.get("XDV_LONG") == "1"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _round_trip(program: DirProgram) -> DirProgram:
    return parse_dir(json.loads(canonical_bytes(program)))


def _assert_same(parsed: DirProgram, program: DirProgram) -> None:
    # `==` alone would take 1 for True or 1.0; the repr tells every value's type apart.
    assert parsed == program
    assert repr(parsed) == repr(program)
    assert canonical_bytes(parsed) == canonical_bytes(program)


# ---------------------------------------------------------------------- round trip


def test_the_corpus_is_large_enough_to_mean_something() -> None:
    assert len(CORPUS) >= 30
    seen = {type(node) for program in CORPUS for node in _nodes(program)}
    # Every node type occurs in some corpus program.
    assert seen == set(ir.EXPRESSION_TYPES) | set(ir.STATEMENT_TYPES)


@pytest.mark.spec("XDV-050-4.2")
def test_every_golden_dir_parses_and_writes_back_byte_for_byte() -> None:
    goldens = sorted(GOLDEN.glob("*.dir.json"))
    assert len(goldens) >= 30
    for path in goldens:
        text = path.read_text("utf-8")
        program = parse_dir(json.loads(text))
        assert canonical_bytes(program).decode("utf-8") + "\n" == text, path.name
        assert dir_document(program) == json.loads(text), path.name


def test_every_corpus_program_round_trips() -> None:
    for program in CORPUS:
        _assert_same(_round_trip(program), program)
        # The digest is over the document without it.
        body = dir_document(program)
        digest = body.pop("sha256")
        assert hashlib.sha256(canonical_bytes(body)).hexdigest() == digest == program.sha256


def test_the_dir_document_and_the_typed_program_disassemble_alike() -> None:
    for program in CORPUS:
        assert disassemble(dir_document(program)) == disassemble(program)


# -- generated programs

_NAMES = st.text("abcxyzé_Φ", min_size=1, max_size=5)
_TYPES = st.sampled_from(["Int", "Float", "Bool", "String", "Any", "Qubits", "Pair", "Int[2]"])
_SCALARS = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)


@functools.cache
def _expressions(
    slots: int, k_processes: tuple[str, ...], crossings: tuple[tuple[int, str], ...]
) -> st.SearchStrategy[ir.Expression]:
    leaves: list[st.SearchStrategy[ir.Expression]] = [
        st.builds(ir.Literal, type=_TYPES, value=_SCALARS)
    ]
    if slots:
        leaves.append(
            st.builds(
                ir.Variable,
                type=_TYPES,
                name=_NAMES,
                slot=st.integers(0, slots - 1),
                is_symbolic=st.booleans(),
                size=st.none() | st.integers(0, 9),
            )
        )

    def extend(
        children: st.SearchStrategy[ir.Expression],
    ) -> st.SearchStrategy[ir.Expression]:
        several = st.lists(children, max_size=3).map(tuple)
        options: list[st.SearchStrategy[ir.Expression]] = [
            st.builds(
                ir.Binary,
                type=_TYPES,
                op=st.sampled_from(["+", "/", "==", "&&"]),
                left=children,
                right=children,
                is_symbolic=st.booleans(),
            ),
            st.builds(
                ir.Unary,
                type=_TYPES,
                op=st.sampled_from(["-", "!"]),
                operand=children,
                is_symbolic=st.booleans(),
            ),
            st.builds(
                ir.QuantumOperation,
                type=_TYPES,
                function=st.sampled_from(["alloc", "join", "h", "rz"]),
                args=several,
                size=st.none() | st.integers(0, 9),
            ),
            st.builds(
                ir.DecisionVariable,
                type=_TYPES,
                function=st.sampled_from(["int", "bool"]),
                args=several,
            ),
            st.builds(
                ir.Interpolation,
                type=_TYPES,
                parts=st.lists(st.text(max_size=4) | children, max_size=3).map(tuple),
            ),
            st.builds(
                ir.ShapeLiteral,
                type=_TYPES,
                name=_NAMES,
                fields=st.lists(st.tuples(_NAMES, children), max_size=2).map(tuple),
            ),
            st.builds(
                ir.FieldAccess, type=_TYPES, target=children, name=_NAMES, witness=st.booleans()
            ),
            st.builds(ir.ArrayLiteral, type=_TYPES, items=several),
            st.builds(ir.IndexAccess, type=_TYPES, target=children, index=children),
        ]
        if k_processes:
            options.append(
                st.builds(ir.Call, type=_TYPES, process=st.sampled_from(k_processes), args=several)
            )
        if crossings:
            options.append(
                st.sampled_from(crossings).flatmap(
                    lambda crossing: st.builds(
                        ir.CrossCall,
                        type=_TYPES,
                        target=st.just(crossing[1]),
                        bind=st.just(crossing[0]),
                        args=several,
                    )
                )
            )
        return st.one_of(options)

    return st.recursive(st.one_of(leaves), extend, max_leaves=6)


@functools.cache
def _statements(
    slots: int, k_processes: tuple[str, ...], crossings: tuple[tuple[int, str], ...]
) -> st.SearchStrategy[tuple[ir.Statement, ...]]:
    expressions = _expressions(slots, k_processes, crossings)
    slot = st.integers(0, max(slots - 1, 0))
    simple: list[st.SearchStrategy[ir.Statement]] = [
        st.builds(ir.Effect, kind=st.sampled_from(["emit", "observe", "seal"]), value=expressions),
        st.builds(ir.Constrain, condition=expressions),
        st.builds(ir.Return, value=st.none() | expressions),
        st.builds(ir.Break),
        st.builds(ir.Continue),
        st.builds(ir.ExpressionStatement, value=expressions),
    ]
    if slots:
        simple += [
            st.builds(
                ir.Let,
                name=_NAMES,
                slot=slot,
                type=_TYPES,
                value=expressions,
                mutable=st.booleans(),
                decision=st.booleans(),
            ),
            st.builds(ir.Assign, name=_NAMES, slot=slot, value=expressions),
            st.builds(ir.Prove, name=_NAMES, slot=slot, source=expressions),
        ]

    def extend(
        children: st.SearchStrategy[tuple[ir.Statement, ...]],
    ) -> st.SearchStrategy[tuple[ir.Statement, ...]]:
        nested: list[st.SearchStrategy[ir.Statement]] = [
            st.builds(ir.If, condition=expressions, then=children, otherwise=st.none() | children),
            st.builds(ir.While, condition=expressions, body=children),
        ]
        if slots:
            nested.append(
                st.builds(
                    ir.For, name=_NAMES, slot=slot, low=expressions, high=expressions, body=children
                )
            )
        return st.lists(st.one_of(nested) | st.one_of(simple), max_size=3).map(tuple)

    return st.recursive(st.lists(st.one_of(simple), max_size=3).map(tuple), extend, max_leaves=5)


_USES = {
    "K": st.builds(
        ir.DirUse,
        name=st.just("steps"),
        arguments=st.just(()) | st.tuples(st.tuples(st.just("max"), st.integers(0, 99))),
    ),
    "Q": st.builds(
        ir.DirUse,
        name=st.just("qubits"),
        arguments=st.just(()) | st.tuples(st.tuples(st.just("n"), st.integers(1, 9))),
    ),
    "Φ": st.builds(
        ir.DirUse,
        name=st.just("envelope"),
        arguments=st.just((("provider", "exact"), ("tolerance", 0.5), ("window", 8))),
    ),
}
_CLAUSES = st.lists(
    st.sampled_from(
        [
            ir.DirClause(name="effects_allowed", op="==", value=("emit", "seal")),
            ir.DirClause(name="effects_allowed", op="==", value=True),
            ir.DirClause(name="latency_us", op="<=", value=40),
            ir.DirClause(name="observation", op="==", value="counts"),
            ir.DirClause(name="record", op="==", value=False),
            ir.DirClause(name="shots", op="<=", value=512),
            ir.DirClause(name="tolerance", op="==", value=0.25),
        ]
    ),
    max_size=3,
    unique_by=lambda clause: clause.name,
).map(lambda clauses: tuple(sorted(clauses, key=lambda clause: clause.name)))


@st.composite
def generated_programs(draw: st.DrawFn) -> DirProgram:
    """Well-formed typed programs (every reference resolves), not necessarily ones the checker
    would accept: the JSON form must carry any tree faithfully."""
    regimes = draw(st.lists(st.sampled_from(["K", "Q", "Φ"]), min_size=1, max_size=3))
    names = [f"{regime}::p{index}" for index, regime in enumerate(regimes)]
    binds = draw(
        st.lists(
            st.builds(
                ir.DirBind,
                source=st.sampled_from(names),
                target=st.sampled_from(names),
                contract=_CLAUSES,
            ),
            max_size=3,
        )
    )
    k_processes = tuple(name for name in names if name.startswith("K::"))
    processes = []
    for name, regime in zip(names, regimes, strict=True):
        slots = draw(st.integers(0, 4))
        crossings = tuple((i, bind.target) for i, bind in enumerate(binds) if bind.source == name)
        processes.append(
            ir.DirProcess(
                name=name,
                regime=regime,
                forge=draw(st.none() | _NAMES),
                params=tuple(
                    draw(st.lists(st.tuples(_NAMES, _TYPES), max_size=slots)),
                ),
                returns=draw(_TYPES),
                linear=draw(st.booleans()),
                uses=tuple(draw(st.lists(_USES[regime], max_size=1))),
                effects=tuple(sorted(draw(st.sets(st.sampled_from(["emit", "observe", "seal"]))))),
                slots=slots,
                qubits=draw(st.integers(0, 9)),
                body=draw(_statements(slots, k_processes, crossings)),
            )
        )
    shapes = draw(
        st.lists(
            st.builds(
                ir.DirShape, name=_NAMES, fields=st.lists(st.tuples(_NAMES, _TYPES)).map(tuple)
            ),
            max_size=2,
        )
    )
    return DirProgram(shapes=tuple(shapes), processes=tuple(processes), binds=tuple(binds))


@settings(max_examples=2000 if LONG else 100)
@given(st.one_of(st.sampled_from(CORPUS), generated_programs()))
def test_typed_dir_and_its_json_are_inverses(program: DirProgram) -> None:
    document = json.loads(canonical_bytes(program))
    parsed = parse_dir(document)
    _assert_same(parsed, program)
    assert dir_document(parsed) == document
    disassemble(program)  # every node has a listing


# ---------------------------------------------------------------------- malformed documents


def _reseal(document: dict[str, Any]) -> dict[str, Any]:
    body = {key: value for key, value in document.items() if key != "sha256"}
    with contextlib.suppress(XdvError):  # not JSON at all (a NaN): no digest to give it
        document["sha256"] = hashlib.sha256(canonical_bytes(body)).hexdigest()
    return document


def _containers(value: Any, found: list[Any]) -> list[Any]:
    if isinstance(value, dict | list):
        found.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            _containers(item, found)
    return found


_JUNK = [None, True, False, -1, 7, 2.5, "", "x", "K::p0", [], {}, {"k": "lit"}, {"s": "break"}]


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    program = draw(st.one_of(st.sampled_from(CORPUS), generated_programs()))
    document = copy.deepcopy(dir_document(program))
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(_containers(document, [])))
        junk = copy.deepcopy(draw(st.sampled_from(_JUNK)))
        if isinstance(target, dict):
            keys = sorted(target)
            action = draw(st.sampled_from(["delete", "replace", "add"] if keys else ["add"]))
            if action == "add":
                target[draw(st.sampled_from(["zz", "sym", "mut", "size", "witness"]))] = junk
            else:
                key = draw(st.sampled_from(keys))
                if action == "delete":
                    del target[key]
                else:
                    target[key] = junk
        else:
            action = draw(
                st.sampled_from(["append", "replace", "delete"] if target else ["append"])
            )
            if action == "append":
                target.append(junk)
            else:
                position = draw(st.integers(0, len(target) - 1))
                if action == "delete":
                    del target[position]
                else:
                    target[position] = junk
    return _reseal(document) if draw(st.booleans()) else document


@settings(max_examples=2000 if LONG else 120)
@given(mutated_documents())
def test_the_parser_accepts_exactly_canonical_documents(document: dict[str, Any]) -> None:
    # A changed document is either refused with a typed error, or is itself a document the
    # writer produces (the change happened to be a valid edit): never another exception.
    try:
        program = parse_dir(document)
    except DirFormatError as error:
        assert error.code is ErrorCode.DPL_DIR_INVALID
        assert error.where
        return
    assert dir_document(program) == document
    assert canonical_bytes(program) == canonical_bytes(document)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["format", "version", "k", "s", "e", "t", "processes", "body", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=2000 if LONG else 100)
@given(_JSON)
def test_arbitrary_json_is_refused_with_a_typed_error(document: Any) -> None:
    with pytest.raises(DirFormatError):
        parse_dir(document)


def _hello() -> dict[str, Any]:
    return dir_document(compile_dir("K main { mut let x = 1; x = x + 2; emit x; }"))


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (lambda d: d.update(format="xir"), "format", "not 'xdv-dir'"),
        (lambda d: d.update(version=2), "version", "reads version 1"),
        (lambda d: d.pop("binds"), "$", "lacks 'binds'"),
        (lambda d: d["processes"][0].update(regime="R"), "processes[0].regime", "not one of"),
        (lambda d: d["processes"][0]["body"][0].pop("e"), "processes[0].body[0]", "lacks 'e'"),
        (
            lambda d: d["processes"][0]["body"][0].update(mut=False),
            "processes[0].body[0].mut",
            "only as true",
        ),
        (
            lambda d: d["processes"][0]["body"][1]["e"].update(k="mul"),
            "processes[0].body[1].e.k",
            "names no expression",
        ),
        (
            lambda d: d["processes"][0]["body"][1]["e"]["l"].update(slot=9),
            "processes[0]",
            "beyond its 1 slots",
        ),
        (
            lambda d: d["processes"][0]["body"][0]["e"].update(v=float("nan")),
            "processes[0].body[0].e.v",
            "finite",
        ),
        (lambda d: d["processes"][0].update(effects=["print"]), "processes[0].effects", "sorted"),
        (lambda d: d["processes"][0].update(uses=[{"name": "disk", "args": {}}]), "", "resource"),
    ],
)
def test_malformed_documents_are_refused_with_the_place(
    change: Any, where: str, message: str
) -> None:
    document = _hello()
    assert parse_dir(copy.deepcopy(document)) is not None
    change(document)
    _reseal(document)
    with pytest.raises(DirFormatError, match=re.escape(message)) as refused:
        parse_dir(document)
    assert refused.value.code is ErrorCode.DPL_DIR_INVALID
    assert str(refused.value.where).startswith(where)


def test_dangling_references_and_wrong_digests_are_refused() -> None:
    source = (ROOT / "examples" / "hybrid.ds").read_text("utf-8")
    document = dir_document(compile_dir(source))
    tampered = copy.deepcopy(document)
    tampered["processes"][0]["body"].append({"s": "expr", "e": {"k": "lit", "v": 1, "t": "Int"}})
    with pytest.raises(DirFormatError, match="digest"):
        parse_dir(tampered)  # a valid shape, but the digest no longer matches
    crossing = copy.deepcopy(document)
    bad_bind = json.dumps(crossing).replace('"bind": 0', '"bind": 7')
    with pytest.raises(DirFormatError, match="crosses bind 7"):
        parse_dir(_reseal(json.loads(bad_bind)))
    calling = json.loads(json.dumps(document).replace('"target": "Q::bell"', '"target": "Q::x"'))
    with pytest.raises(DirFormatError, match="names no process"):
        parse_dir(_reseal(calling))


def test_the_vm_runs_a_document_and_its_typed_program_alike() -> None:
    program = compile_dir("K f(K[Int] n) -> K[Int] { n * 2 }\nK main { emit f(21); }")
    from_document = Program(dir_document(program))
    from_program = Program(program)
    assert from_document.source == from_program.source == compile_k(program, "K::main")
    assert from_document.program == program


# ---------------------------------------------------------------------- the visitor


def _nodes(value: Any) -> list[ir.Node]:
    """Every expression and statement under ``value``, found through the dataclass fields
    (independently of the visitor under test)."""
    found: list[ir.Node] = []
    if isinstance(value, ir.Expression | ir.Statement):
        found.append(value)
    if isinstance(value, tuple | list):
        for item in value:
            found += _nodes(item)
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            found += _nodes(getattr(value, field.name))
    return found


def _all_subclasses(base: type) -> set[type]:
    """The subclasses of ``base`` that their module defines (``dataclass(slots=True)`` leaves
    the class it replaced behind as a subclass too)."""
    found: set[type] = set()
    for child in base.__subclasses__():
        found |= _all_subclasses(child)
        if getattr(sys.modules[child.__module__], child.__qualname__, None) is child:
            found.add(child)
    return found


def _sample(kind: type) -> ir.Node:
    """One instance of node type ``kind``."""
    literal = ir.Literal(type="Int", value=1)
    values: dict[str, Any] = {}
    for name, declared in ((f.name, f.type) for f in dataclasses.fields(kind)):
        declared = str(declared)
        if name in ("slot", "bind"):
            values[name] = 0
        elif name in ("size",):
            values[name] = 2
        elif declared == "Scalar":
            values[name] = 1
        elif "tuple[Statement" in declared:
            values[name] = (ir.Break(),)
        elif "tuple[tuple[str, Expression]" in declared:
            values[name] = (("a", literal),)
        elif "tuple[str | Expression" in declared:
            values[name] = ("text", literal)
        elif "tuple[Expression" in declared:
            values[name] = (literal,)
        elif "Expression" in declared:
            values[name] = literal
        elif declared == "bool":
            values[name] = True
        elif name == "kind":
            values[name] = "emit"
        elif name == "process":
            values[name] = "K::main"
        elif name == "target" and kind is ir.CrossCall:
            values[name] = "Q::q"
        else:
            values[name] = "x"
    node: ir.Node = kind(**values)
    return node


def test_the_node_registry_lists_every_node_type() -> None:
    assert set(ir.EXPRESSION_TYPES) == _all_subclasses(ir.Expression)
    assert set(ir.STATEMENT_TYPES) == _all_subclasses(ir.Statement)
    # Every node type is immutable and slotted.
    for kind in (*ir.EXPRESSION_TYPES, *ir.STATEMENT_TYPES):
        assert kind.__dataclass_params__.frozen, kind  # type: ignore[attr-defined]
        assert "__slots__" in kind.__dict__, kind


def test_the_visitor_has_exactly_one_case_per_node_type_and_each_node_reaches_its_own() -> None:
    kinds = (*ir.EXPRESSION_TYPES, *ir.STATEMENT_TYPES)
    expected = {f"visit_{_snake(kind.__name__)}" for kind in kinds}
    assert ir.DirVisitor.__abstractmethods__ == expected

    # A visitor whose every case answers its own name: each node type dispatches to its case.
    cases = {name: (lambda self, node, _name=name: _name) for name in expected}
    Echo = abc.ABCMeta("Echo", (ir.DirVisitor,), cases)
    echo = Echo()
    for kind in kinds:
        node = _sample(kind)
        reached = echo.expression(node) if isinstance(node, ir.Expression) else echo.statement(node)
        assert reached == f"visit_{_snake(kind.__name__)}", kind


def test_a_visitor_that_misses_a_case_fails_loudly() -> None:
    cases = {
        name: (lambda self, node: None)
        for name in ir.DirVisitor.__abstractmethods__
        if name != "visit_index_access"
    }
    Incomplete = abc.ABCMeta("Incomplete", (ir.DirVisitor,), cases)
    with pytest.raises(TypeError, match="visit_index_access"):
        Incomplete()


def _visitor_classes() -> list[type]:
    for module in pkgutil.iter_modules(xdv.dpl.__path__):
        if not module.name.endswith("_test"):
            importlib.import_module(f"xdv.dpl.{module.name}")
    return sorted(_all_subclasses(ir.DirVisitor), key=lambda kind: kind.__qualname__)


def test_every_pass_over_dir_decides_every_node_type() -> None:
    found = {kind.__qualname__ for kind in _visitor_classes()}
    # The passes: JSON writer, reference check, disassembler, code generator and its call
    # analysis, Q lowering, Φ evaluation (the problem and the witnessed run).
    for name in (
        "_Encoder",
        "_References",
        "_Listing",
        "_Codegen",
        "_Calls",
        "_QLowering",
        "PhiValues",
        "_Problem",
        "_Witnessed",
    ):
        assert name in found, name
    for kind in _visitor_classes():
        if kind.__module__.startswith("xdv.dpl.") and not kind.__module__.endswith("_test"):
            if kind.__qualname__ == "PhiValues":
                continue  # a base: its statements are for its subclasses to run
            assert not inspect.isabstract(kind), (kind, kind.__abstractmethods__)


def test_the_parser_and_the_writer_know_every_node_type() -> None:
    tags = set()
    for kind in ir.EXPRESSION_TYPES:
        namespace = getattr(kind, "namespace", None)
        tags.add(f"std:{namespace}" if kind.tag == "std" else kind.tag)
    assert tags == EXPRESSION_TAGS
    assert {kind.tag for kind in ir.STATEMENT_TYPES} == STATEMENT_TAGS
    # One node of each type survives the trip through JSON inside a program.
    for kind in (*ir.EXPRESSION_TYPES, *ir.STATEMENT_TYPES):
        node = _sample(kind)
        statement = node if isinstance(node, ir.Statement) else ir.ExpressionStatement(value=node)
        processes = (
            _process("K::main", "K", (statement,)),
            _process("Q::q", "Q", ()),
        )
        bind = ir.DirBind(source="K::main", target="Q::q", contract=())
        program = DirProgram(shapes=(), processes=processes, binds=(bind,))
        _assert_same(_round_trip(program), program)


def _process(name: str, regime: str, body: tuple[ir.Statement, ...]) -> ir.DirProcess:
    return ir.DirProcess(
        name=name,
        regime=regime,
        forge=None,
        params=(),
        returns="Unit",
        linear=False,
        uses=(),
        effects=(),
        slots=1,
        qubits=0,
        body=body,
    )


def test_a_pass_that_does_not_take_a_node_says_so() -> None:
    condition = ir.Literal(type="Bool", value=True)
    main = _process("K::main", "K", (ir.Constrain(condition=condition),))
    constrained = DirProgram(shapes=(), processes=(main,), binds=())
    with pytest.raises(DplRuntimeFailure, match="statement 'constrain' cannot run in a K process"):
        compile_k(constrained, "K::main")
    counted = _process(
        "Q::q", "Q", (ir.ExpressionStatement(value=ir.Literal(type="Int", value=1)),)
    )
    with pytest.raises(DplRuntimeFailure, match="a Q process has no expression 'lit'"):
        lower_q(counted)


def test_the_visitor_base_is_abstract() -> None:
    assert issubclass(ir.DirVisitor, abc.ABC)
    with pytest.raises(TypeError):
        ir.DirVisitor()  # type: ignore[abstract]
