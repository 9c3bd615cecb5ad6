"""Nothing in a DPL program reaches Python: hostile names, strings and DIR documents.

The VM compiles K processes to Python source. These tests check the guarantee that
``docs/dpl.md`` (§10, "What reaches the generated code") states: every name in the generated
source is one the code generator chose (``v`` + slot, ``_t`` + number, a mangled process name,
the VM's helpers, ``range`` and ``BaseException``), every string is an ASCII Python literal, the
source is one function definition, and it runs with no builtins but those two. Hostile input
comes from DPL source (names the lexer accepts) and from DIR documents, which can carry any text
and are what ``xdv run`` loads from a file.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import keyword
import re
import tokenize
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.core import Kernel
from xdv.dpl import DirProgram, Program, compile_k, compile_source, dir_document, parse_dir
from xdv.dpl._codegen import GENERATED_BUILTINS, HELPERS, python_name
from xdv.dpl._dir import Binary, Effect, Let, Literal, Unary
from xdv.dpl._dir_parse import _bind, _process, _shape
from xdv.errors import XdvError

# Every name the generated source may contain.
_OURS = re.compile(r"v\d+|_t\d+|(k|q|phi)_[A-Za-z0-9_]+")
_FIXED = {*HELPERS, *GENERATED_BUILTINS, "_n", "_program", "_steps_left", "values"}


def generated_names(source: str) -> set[str]:
    """The NAME tokens of ``source`` that are not Python keywords."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {
        token.string
        for token in tokens
        if token.type == tokenize.NAME and not keyword.iskeyword(token.string)
    }


def assert_contained(source: str) -> None:
    """``source`` is one ``_program`` definition, names only what the generator chose, and
    writes every string as printable ASCII."""
    assert source.isascii()
    module = ast.parse(source)
    assert len(module.body) == 1
    definition = module.body[0]
    assert isinstance(definition, ast.FunctionDef) and definition.name == "_program"
    for name in generated_names(source):
        assert name in _FIXED or _OURS.fullmatch(name), name
    for node in ast.walk(module):
        if isinstance(node, ast.Attribute):
            assert node.attr == "values", node.attr  # a shape's field map, nothing else
        assert not isinstance(node, ast.Import | ast.ImportFrom | ast.Global)


def run(program: DirProgram | dict[str, Any]) -> list[str]:
    """The ``emit`` texts of one run (a failure is recorded by the kernel, not raised)."""
    lines: list[str] = []

    def sink(pid: int, value: Any) -> None:
        if isinstance(value, dict) and value.get("effect") == "emit":
            lines.append(value["value"])

    kernel = Kernel(0, emit=sink)
    kernel.spawn(Program(program).anchor)
    kernel.run()
    return lines


def with_body(program: DirProgram, index: int, body: tuple[Any, ...]) -> DirProgram:
    processes = list(program.processes)
    processes[index] = dataclasses.replace(processes[index], body=body)
    return dataclasses.replace(program, processes=tuple(processes))


def renamed(program: DirProgram, old: str, new: str) -> DirProgram:
    """``program`` with process ``old`` called ``new`` (its calls follow), via its JSON form."""
    text = json.dumps(dir_document(program)).replace(json.dumps(old), json.dumps(new))
    document = json.loads(text)
    return parse_dir({**document, "sha256": _digest(document)})


def _digest(document: dict[str, Any]) -> str:
    """The digest a document without one would carry: its program's, built with the parser's
    own pieces (the parser checks a claimed digest; here the document is edited on purpose)."""
    program = DirProgram(
        shapes=tuple(_shape(item, "s") for item in document["shapes"]),
        processes=tuple(_process(item, "p") for item in document["processes"]),
        binds=tuple(_bind(item, "b") for item in document["binds"]),
    )
    return program.sha256


# ---------------------------------------------------------------------- hostile DPL source

HOSTILE_SOURCE = r"""
forge hostile {
    shape Exception { exec: i64; eval: i64; }
    proc K::eval(range: i64) -> i64 { return range + 1; }
    proc K::exec(input: i64) -> i64 { return eval(input) * 2; }
    proc K::BaseException() -> i64 { return 7; }
    proc K::k_main() -> i64 { return 100; }
    proc K::v0() -> i64 { return 5; }
    proc K::print() -> i64 { return 3; }
    proc K::main() {
        let compile = Exception { exec: exec(1), eval: BaseException() };
        let globals = "'); import os; ('\" \\ \n {compile.exec} Φ";
        emit compile.exec + compile.eval + k_main() + v0() + print();
        emit globals;
        emit "\"\"\" ''' \\n";
    }
}
"""


def test_hostile_names_in_source_are_data() -> None:
    document = compile_source(HOSTILE_SOURCE)
    source = compile_k(parse_dir(document), "K::main")
    assert_contained(source)
    names = generated_names(source)
    for word in (
        "eval",
        "exec",
        "Exception",
        "input",
        "range",
        "print",
        "compile",
        "globals",
        "os",
    ):
        assert word not in names
    assert "k_k__main" in names and "k_main" in names  # distinct, as their processes are
    assert run(document) == [
        "119",
        "'); import os; ('\" \\ \n 4 Φ",
        "\"\"\" ''' \\n",
    ]


@pytest.mark.spec("XDV-080-12")
def test_generated_code_runs_without_builtins() -> None:
    program = Program(compile_source("K main { emit 1; }"))
    function = program._entry_function
    assert set(function.__globals__["__builtins__"]) == {"range", "BaseException"}
    assert function.__globals__.keys() <= {"__builtins__", "_program"}


# ---------------------------------------------------------------------- hostile DIR documents


def base() -> DirProgram:
    return parse_dir(compile_source('K main { let a = 1 + 2; let s = "x"; emit a; emit s; }'))


@pytest.mark.parametrize(
    "op",
    [
        "+ __import__('os').getpid() +",
        "if",
        "or __import__",
        "**",
        "+\n",
        ".__class__",
    ],
)
def test_an_operator_outside_the_table_is_refused(op: str) -> None:
    program = base()
    let = program.processes[0].body[0]
    assert isinstance(let, Let) and isinstance(let.value, Binary)
    hostile = with_body(
        program,
        0,
        (
            dataclasses.replace(let, value=dataclasses.replace(let.value, op=op)),
            *program.processes[0].body[1:],
        ),
    )
    # The document form parses (DIR does not restrict operator text): the VM refuses it.
    parsed = parse_dir(json.loads(json.dumps(dir_document(hostile))))
    with pytest.raises(XdvError, match="operator"):
        Program(parsed)


def test_a_unary_operator_outside_the_table_is_refused() -> None:
    program = base()
    let = program.processes[0].body[0]
    assert isinstance(let, Let)
    hostile = Unary(type="Int", op="__import__('os').getpid() or -", operand=let.value)
    with pytest.raises(XdvError, match="operator"):
        Program(with_body(program, 0, (dataclasses.replace(let, value=hostile),)))


@pytest.mark.parametrize(
    "text",
    [
        "'); __import__('os').system('true'); ('",
        '"""\nimport os\n"""',
        "\\x00\\u2028\u2028\u0085\r\n\x0c\x1c",
        "{compile}",
        "Φ名" * 50,
    ],
)
def test_strings_are_data(text: str) -> None:
    program = base()
    body = program.processes[0].body
    let_string = body[1]
    assert isinstance(let_string, Let)
    hostile = with_body(
        program,
        0,
        (
            body[0],
            dataclasses.replace(let_string, value=Literal(type="String", value=text)),
            body[2],
            Effect(kind="emit", value=Literal(type="String", value=text)),
        ),
    )
    source = compile_k(hostile, "K::main")
    assert_contained(source)
    assert run(hostile) == ["3", text]


@pytest.mark.parametrize(
    "name",
    [
        "__import__",
        "__class__",
        "_fuel",
        "_n",
        "_program",
        "x():\n    import os\n    def y",
        "a b",
        "main",
        "ma_in",
        "ma__in",
        "Φ",
        "é",
        "",
    ],
)
def test_process_names_are_mangled(name: str) -> None:
    program = parse_dir(
        compile_source("forge f { proc K::g() -> i64 { return 41; } proc K::main() { emit g(); } }")
    )
    if not name:
        with pytest.raises(XdvError):
            python_name("K::")
        return
    hostile = renamed(program, "K::g", f"K::{name}") if name != "main" else program
    source = compile_k(hostile, "K::main")
    assert_contained(source)
    assert run(hostile) == ["41"]


def test_mangling_is_injective() -> None:
    names = ["a_b", "a__b", "a_u5f_b", "a_", "a__", "_a", "a", "A", "a_u61_", "aΦ", "a_u3a6_"]
    assert len({python_name(f"K::{name}") for name in names}) == len(names)


def test_a_slot_that_is_not_a_number_is_refused() -> None:
    program = base()
    let = program.processes[0].body[0]
    hostile = with_body(program, 0, (dataclasses.replace(let, slot="0 = __import__('os')"),))
    with pytest.raises(XdvError, match="slot"):
        compile_k(hostile, "K::main")


def test_non_finite_and_foreign_literals_are_refused() -> None:
    program = base()
    let = program.processes[0].body[0]
    for value in (float("inf"), float("nan"), object()):
        hostile = with_body(
            program, 0, (dataclasses.replace(let, value=Literal(type="Float", value=value)),)
        )
        with pytest.raises(XdvError, match="literal"):
            compile_k(hostile, "K::main")


def test_a_huge_literal_in_a_document_is_refused_before_code() -> None:
    document = compile_source("K main { emit 1; }")
    document["processes"][0]["body"][0]["e"]["v"] = 10**5000
    with pytest.raises(XdvError, match="dpl_int_bits_max"):
        parse_dir(document)


def test_a_string_with_no_canonical_form_is_refused_as_a_typed_error() -> None:
    program = base()
    body = program.processes[0].body
    hostile = with_body(
        program, 0, (Effect(kind="emit", value=Literal(type="String", value="\ud800")),)
    )
    assert_contained(compile_k(hostile, "K::main"))
    with pytest.raises(XdvError):
        Program(hostile)  # its digest (and so its run) needs a canonical encoding
    assert body


# ---------------------------------------------------------------------- property


@pytest.mark.spec("XDV-080-12")
@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    process=st.text(min_size=1, max_size=12),
    shape=st.text(max_size=8),
    field=st.text(max_size=8),
    text=st.text(max_size=24),
)
def test_no_user_text_reaches_the_code_as_a_name(
    process: str, shape: str, field: str, text: str
) -> None:
    program = parse_dir(
        compile_source(
            "forge f { shape S { a: i64; } proc K::g() -> i64 { return 41; } "
            'proc K::main() { let s = S { a: g() }; emit s.a; emit "t"; } }'
        )
    )
    program = renamed(program, "K::g", f"K::{process}") if process != "main" else program
    document = dir_document(program)
    document["shapes"][0] = {"name": shape, "fields": [[field, "Int"]]}
    body = document["processes"][-1]["body"]
    literal = body[0]["e"]
    literal["name"] = shape
    literal["fields"] = [[field, literal["fields"][0][1]]]
    body[1]["e"]["name"] = field
    body[2]["e"]["v"] = text
    document.pop("sha256")
    try:
        hostile = parse_dir({**document, "sha256": _digest(document)})
    except XdvError:
        return  # a document the parser refuses never reaches the generator
    source = compile_k(hostile, "K::main")
    assert_contained(source)
    names = generated_names(source)
    for token in (process, shape, field, text):
        if token.isidentifier() and not keyword.iskeyword(token):
            assert token not in names or token in _FIXED or _OURS.fullmatch(token)
    assert run(hostile) == ["41", text]
