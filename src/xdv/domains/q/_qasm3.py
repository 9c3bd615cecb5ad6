"""An OpenQASM 3 front-end for the subset Q jobs use, built on the reference parser.

The ``openqasm3`` package turns the text into an AST; this module walks that AST and builds a
``qiskit.QuantumCircuit``:

* classical values that are known before the circuit runs (``uint[4] a = 15;``, ``const``
  declarations, loop variables, casts, bit indexing of integers, arithmetic with ``pi``) are
  evaluated here, and ``if`` statements over them choose their branch here;
* ``for`` loops over ranges or sets are unrolled, under a bound on the total number of
  statements executed (:data:`STATEMENTS_MAX`, the input limit ``qasm_statements_max``), so a
  hostile program cannot blow up;
* gate definitions are inlined at each call (parameters bound to their values);
* ``include "stdgates.inc"`` brings in the standard gates, mapped onto Qiskit's gate classes;
* ``if`` statements over measured bits become ``QuantumCircuit.if_test`` blocks: one bit
  against 0/1, or a whole bit register (possibly through an ``int[n]``/``uint[n]`` cast)
  against an integer.

Everything else is refused with :class:`Qasm3Unsupported`, which names the construct and the
line and column of the statement it occurs in. Callers turn it into CIRCUIT_INVALID, and its
subclass :class:`Qasm3Limit` (a program past one of the input limits of :mod:`xdv.inputs`) into
INPUT_LIMIT_EXCEEDED.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from xdv.inputs import limit

__all__ = [
    "STATEMENTS_MAX",
    "Qasm3Limit",
    "Qasm3Unsupported",
    "parse_program",
    "translate",
]

# Statements executed while building one circuit (loop iterations, inlined gate bodies and
# broadcast applications each count): past this, the program is refused.
STATEMENTS_MAX = limit("qasm_statements_max")
# Declared qubits and bits, all registers together.
QUBITS_MAX = limit("qasm_qubits_max")
CLBITS_MAX = limit("qasm_clbits_max")
# Integers stay below 2**INT_BITS_MAX in magnitude (no ``2 ** 10**9``).
INT_BITS_MAX = limit("qasm_int_bits_max")

_CONSTANTS = {"pi": math.pi, "π": math.pi, "tau": math.tau, "τ": math.tau, "euler": math.e}
_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "arcsin": math.asin,
    "arccos": math.acos,
    "arctan": math.atan,
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "floor": math.floor,
    "ceiling": math.ceil,
}


class Qasm3Unsupported(Exception):
    """A program outside the supported subset (or ill-formed): the message names the place."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"{where}{message}")
        self.line = line
        self.column = column


class Qasm3Limit(Qasm3Unsupported):
    """A program past the input limit called ``limit`` (the message says by how much)."""

    def __init__(self, limit_name: str, message: str, line: int | None, column: int | None):
        super().__init__(message, line, column)
        self.limit = limit_name


@dataclass
class _Const:
    """A value known before the circuit runs; ``width`` is the bit width of a sized integer."""

    value: int | float | bool
    width: int | None = None
    mutable: bool = True


@dataclass
class _Scope:
    names: dict[str, Any] = field(default_factory=dict)
    parent: _Scope | None = None

    def lookup(self, name: str) -> Any:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def owner(self, name: str) -> _Scope | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope
            scope = scope.parent
        return None


@dataclass
class _GateDef:
    params: list[str]
    qubits: list[str]
    body: list[Any]


@dataclass
class _Bits:
    """A declared bit register (``bit[n] c;`` or ``bit c;``)."""

    register: Any  # qiskit ClassicalRegister


@dataclass
class _Qubits:
    register: Any  # qiskit QuantumRegister
    single: bool  # declared without a size: ``qubit q;`` names one qubit


def _standard_gates() -> dict[str, tuple[Any, int, int]]:
    """stdgates.inc names: (gate class, parameter count, qubit count)."""
    from qiskit.circuit import library as lib

    return {
        "p": (lib.PhaseGate, 1, 1),
        "phase": (lib.PhaseGate, 1, 1),
        "x": (lib.XGate, 0, 1),
        "y": (lib.YGate, 0, 1),
        "z": (lib.ZGate, 0, 1),
        "h": (lib.HGate, 0, 1),
        "s": (lib.SGate, 0, 1),
        "sdg": (lib.SdgGate, 0, 1),
        "t": (lib.TGate, 0, 1),
        "tdg": (lib.TdgGate, 0, 1),
        "sx": (lib.SXGate, 0, 1),
        "rx": (lib.RXGate, 1, 1),
        "ry": (lib.RYGate, 1, 1),
        "rz": (lib.RZGate, 1, 1),
        "cx": (lib.CXGate, 0, 2),
        "CX": (lib.CXGate, 0, 2),
        "cy": (lib.CYGate, 0, 2),
        "cz": (lib.CZGate, 0, 2),
        "cp": (lib.CPhaseGate, 1, 2),
        "cphase": (lib.CPhaseGate, 1, 2),
        "crx": (lib.CRXGate, 1, 2),
        "cry": (lib.CRYGate, 1, 2),
        "crz": (lib.CRZGate, 1, 2),
        "ch": (lib.CHGate, 0, 2),
        "swap": (lib.SwapGate, 0, 2),
        "ccx": (lib.CCXGate, 0, 3),
        "cswap": (lib.CSwapGate, 0, 3),
        "cu": (lib.CUGate, 4, 2),
        "id": (lib.IGate, 0, 1),
        "u1": (lib.U1Gate, 1, 1),
        "u2": (lib.U2Gate, 2, 1),
        "u3": (lib.U3Gate, 3, 1),
    }


def parse_program(source: str) -> Any:
    """The reference parser's AST, or :class:`Qasm3Unsupported` naming where parsing stopped."""
    from antlr4 import CommonTokenStream, InputStream
    from antlr4.error.ErrorListener import ErrorListener
    from antlr4.error.ErrorStrategy import BailErrorStrategy
    from openqasm3._antlr.qasm3Lexer import qasm3Lexer
    from openqasm3._antlr.qasm3Parser import qasm3Parser
    from openqasm3.parser import QASMNodeVisitor

    class Raise(ErrorListener):  # type: ignore[misc]
        def syntaxError(  # ANTLR's method name
            self, recognizer: Any, symbol: Any, line: int, column: int, msg: str, e: Any
        ) -> None:
            raise Qasm3Unsupported(f"syntax error: {msg}", line, column)

    lexer = qasm3Lexer(InputStream(source))
    lexer.removeErrorListeners()
    lexer.addErrorListener(Raise())
    parser = qasm3Parser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser._errHandler = BailErrorStrategy()
    try:
        tree = parser.program()
    except Qasm3Unsupported:
        raise
    except RecursionError:
        raise Qasm3Unsupported("the program nests too deeply to parse", None, None) from None
    except Exception as error:
        token = _offending_token(error)
        if token is None:
            raise Qasm3Unsupported("syntax error", None, None) from None
        raise Qasm3Unsupported(
            f"syntax error at {token.text!r}", token.line, token.column
        ) from None
    try:
        return QASMNodeVisitor().visitProgram(tree)  # type: ignore[no-untyped-call]
    except RecursionError:
        raise Qasm3Unsupported("the program nests too deeply to parse", None, None) from None
    except Exception as error:
        raise Qasm3Unsupported(f"the program is not well formed: {error}", None, None) from None


def _offending_token(error: BaseException) -> Any:
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        token = getattr(item, "offendingToken", None)
        if token is not None:
            return token
        pending.extend([getattr(item, "__cause__", None), getattr(item, "__context__", None)])
        pending.extend(arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException))
    return None


def translate(source: Any) -> Any:
    """Build the ``QuantumCircuit`` that OpenQASM 3 text, or the reference parser's AST of it,
    describes (see the module doc)."""
    program = parse_program(source) if isinstance(source, str) else source
    return _Translator().run(program)


class _Translator:
    def __init__(self) -> None:
        from qiskit import QuantumCircuit

        self.circuit = QuantumCircuit()
        self.scope = _Scope()
        self.gates: dict[str, _GateDef] = {}
        self.standard: dict[str, tuple[Any, int, int]] = {}
        self.steps = 0
        self.qubits = 0
        self.clbits = 0
        self.statement: Any = None  # the statement being translated (for error locations)
        self.runtime_depth = 0  # > 0 inside an if_test block

    # ------------------------------------------------------------------ plumbing

    def fail(self, message: str, node: Any = None) -> Qasm3Unsupported:
        span = getattr(self.statement if self.statement is not None else node, "span", None)
        if span is None:
            return Qasm3Unsupported(message, None, None)
        return Qasm3Unsupported(message, span.start_line, span.start_column)

    def beyond(self, limit_name: str, message: str) -> Qasm3Limit:
        """The refusal of a program past the input limit ``limit_name``."""
        span = getattr(self.statement, "span", None)
        if span is None:
            return Qasm3Limit(limit_name, message, None, None)
        return Qasm3Limit(limit_name, message, span.start_line, span.start_column)

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > STATEMENTS_MAX:
            raise self.beyond(
                "qasm_statements_max",
                f"the program unrolls to more than {STATEMENTS_MAX} statements (loops and gate "
                "calls together)",
            )

    def run(self, program: Any) -> Any:
        from qiskit.circuit.exceptions import CircuitError

        try:
            self.block(program.statements)
        except Qasm3Unsupported:
            raise
        except RecursionError:
            raise self.fail("the program nests too deeply") from None
        except (CircuitError, ValueError, TypeError, OverflowError, ZeroDivisionError) as error:
            raise self.fail(f"{type(error).__name__}: {error}") from None
        return self.circuit

    def block(self, statements: Sequence[Any]) -> None:
        for statement in statements:
            outer = self.statement
            self.statement = statement
            self.step()
            self.stmt(statement)
            self.statement = outer

    def scoped_block(self, statements: Sequence[Any], names: dict[str, Any] | None = None) -> None:
        self.scope = _Scope(dict(names or {}), self.scope)
        try:
            self.block(statements)
        finally:
            assert self.scope.parent is not None
            self.scope = self.scope.parent

    # ------------------------------------------------------------------ statements

    def stmt(self, node: Any) -> None:
        from openqasm3 import ast

        handlers: dict[type, Callable[[Any], None]] = {
            ast.Include: self.include,
            ast.QubitDeclaration: self.qubit_declaration,
            ast.ClassicalDeclaration: self.classical_declaration,
            ast.ConstantDeclaration: self.constant_declaration,
            ast.ClassicalAssignment: self.assignment,
            ast.QuantumGateDefinition: self.gate_definition,
            ast.QuantumGate: self.gate_call,
            ast.QuantumPhase: self.global_phase,
            ast.QuantumReset: self.reset,
            ast.QuantumBarrier: self.barrier,
            ast.QuantumMeasurementStatement: self.measure,
            ast.ForInLoop: self.for_loop,
            ast.BranchingStatement: self.branch,
        }
        handler = handlers.get(type(node))
        if handler is None:
            raise self.fail(f"{_describe(node)} is not supported")
        handler(node)

    def include(self, node: Any) -> None:
        if node.filename != "stdgates.inc":
            raise self.fail(f'include "{node.filename}" is not supported (only "stdgates.inc")')
        self.standard = _standard_gates()

    def declare(self, name: str, value: Any) -> None:
        if name in self.scope.names or name in self.gates or name in _CONSTANTS:
            raise self.fail(f"{name!r} is already declared")
        self.scope.names[name] = value

    def qubit_declaration(self, node: Any) -> None:
        from qiskit import QuantumRegister

        if self.scope.parent is not None or self.runtime_depth:
            raise self.fail("qubits are declared only at the top level of the program")
        size = 1 if node.size is None else self.const_int(node.size)
        name = node.qubit.name
        if size < 1:
            raise self.fail(f"qubit register {name!r} of size {size}")
        if self.qubits + size > QUBITS_MAX:
            raise self.beyond(
                "qasm_qubits_max", f"qubit register {name!r} of size {size} (at most {QUBITS_MAX})"
            )
        self.qubits += size
        register = QuantumRegister(size, name)
        self.circuit.add_register(register)
        self.declare(name, _Qubits(register, node.size is None))

    def classical_declaration(self, node: Any) -> None:
        from openqasm3 import ast
        from qiskit import ClassicalRegister

        name = node.identifier.name
        if isinstance(node.type, ast.BitType):
            if node.init_expression is not None:
                raise self.fail(f"bit {name!r} with an initial value is not supported")
            if self.scope.parent is not None or self.runtime_depth:
                raise self.fail("bits are declared only at the top level of the program")
            size = 1 if node.type.size is None else self.const_int(node.type.size)
            if size < 1:
                raise self.fail(f"bit register {name!r} of size {size}")
            if self.clbits + size > CLBITS_MAX:
                raise self.beyond(
                    "qasm_clbits_max",
                    f"bit register {name!r} of size {size} (at most {CLBITS_MAX})",
                )
            self.clbits += size
            register = ClassicalRegister(size, name)
            self.circuit.add_register(register)
            self.declare(name, _Bits(register))
            return
        if node.init_expression is None:
            raise self.fail(
                f"classical variable {name!r} needs an initial value (only values known before "
                "the circuit runs are supported)"
            )
        if isinstance(node.init_expression, ast.QuantumMeasurement):
            raise self.fail("a measurement into a non-bit variable is not supported")
        value, width = self.typed(node.type, self.eval(node.init_expression))
        self.declare(name, _Const(value, width))

    def constant_declaration(self, node: Any) -> None:
        value, width = self.typed(node.type, self.eval(node.init_expression))
        self.declare(node.identifier.name, _Const(value, width, mutable=False))

    def assignment(self, node: Any) -> None:
        from openqasm3 import ast

        if not isinstance(node.lvalue, ast.Identifier):
            raise self.fail("assignment to an indexed variable is not supported")
        name = node.lvalue.name
        target = self.scope.lookup(name)
        if isinstance(target, _Bits):
            raise self.fail(f"assigning a value to bit {name!r} is not supported")
        if not isinstance(target, _Const) or not target.mutable:
            raise self.fail(f"{name!r} is not an assignable classical variable")
        if self.runtime_depth:
            raise self.fail(
                f"assigning {name!r} inside an if on measured bits (its value would depend on "
                "the run) is not supported"
            )
        value = self.eval(node.rvalue)
        op = node.op.name
        if op != "=":
            value = self.binary(op[:-1], target.value, value)
        if target.width is not None:
            value = _wrap(value, target.width, isinstance(target.value, int))
        elif isinstance(target.value, bool):
            value = bool(value)
        target.value = value

    def gate_definition(self, node: Any) -> None:
        if self.scope.parent is not None or self.runtime_depth:
            raise self.fail("gates are defined only at the top level of the program")
        name = node.name.name
        if name in self.gates or self.scope.lookup(name) is not None:
            raise self.fail(f"gate {name!r} is already defined")
        params = [argument.name for argument in node.arguments]
        qubits = [qubit.name for qubit in node.qubits]
        if len(set(qubits)) != len(qubits) or len(set(params)) != len(params):
            raise self.fail(f"gate {name!r} repeats a parameter or qubit name")
        self.gates[name] = _GateDef(params, qubits, list(node.body))

    def global_phase(self, node: Any) -> None:
        if node.modifiers or node.qubits:
            raise self.fail("gphase with modifiers or qubits is not supported")
        if self.runtime_depth:
            raise self.fail("gphase inside an if on measured bits is not supported")
        self.circuit.global_phase += self.const_float(node.argument)

    def gate_call(self, node: Any) -> None:
        if node.modifiers:
            modifier = node.modifiers[0].modifier.name
            raise self.fail(f"gate modifier {modifier!r} is not supported")
        if node.duration is not None:
            raise self.fail("gate durations are not supported")
        name = node.name.name
        params = [self.const_float(argument) for argument in node.arguments]
        operands = [self.qubit_operand(operand) for operand in node.qubits]
        self.apply(name, params, operands)

    def apply(self, name: str, params: list[float], operands: list[list[Any]]) -> None:
        """Apply a gate by name, broadcasting over register operands of equal size."""
        definition = self.gates.get(name)
        if definition is not None:
            arity = (len(definition.params), len(definition.qubits))
        elif name == "U":
            arity = (3, 1)
        elif name in self.standard:
            arity = self.standard[name][1:]
        else:
            hint = "" if self.standard else ' (is include "stdgates.inc" missing?)'
            raise self.fail(f"gate {name!r} is not defined{hint}")
        if (len(params), len(operands)) != arity:
            raise self.fail(
                f"gate {name!r} takes {arity[0]} parameter(s) and {arity[1]} qubit(s), got "
                f"{len(params)} and {len(operands)}"
            )
        sizes = {len(qubits) for qubits in operands if len(qubits) != 1}
        if len(sizes) > 1:
            raise self.fail(f"gate {name!r} is broadcast over registers of different sizes")
        count = sizes.pop() if sizes else 1
        for index in range(count):
            qubits = [group[0] if len(group) == 1 else group[index] for group in operands]
            if count > 1:
                self.step()
            if len(set(qubits)) != len(qubits):
                raise self.fail(f"gate {name!r} is applied to the same qubit twice")
            if definition is not None:
                self.inline(name, definition, params, qubits)
            elif name == "U":
                from qiskit.circuit.library import UGate

                self.circuit.append(UGate(*params), qubits)
            else:
                gate_class = self.standard[name][0]
                self.circuit.append(gate_class(*params), qubits)

    def inline(
        self, name: str, definition: _GateDef, params: list[float], qubits: list[Any]
    ) -> None:
        from openqasm3 import ast

        names: dict[str, Any] = {
            param: _Const(value, mutable=False)
            for param, value in zip(definition.params, params, strict=True)
        }
        names.update(
            (qubit_name, _GateQubit(qubit))
            for qubit_name, qubit in zip(definition.qubits, qubits, strict=True)
        )
        # A gate body sees only its own parameters and qubits (and the built-in constants).
        saved = self.scope
        self.scope = _Scope(names, None)
        try:
            for statement in definition.body:
                self.step()
                if isinstance(statement, ast.QuantumGate):
                    self.gate_call(statement)
                elif isinstance(statement, ast.QuantumPhase) and not statement.qubits:
                    self.global_phase(statement)
                elif isinstance(statement, ast.QuantumBarrier):
                    self.barrier(statement)
                else:
                    raise self.fail(f"{_describe(statement)} inside gate {name!r}")
        finally:
            self.scope = saved

    def reset(self, node: Any) -> None:
        for qubit in self.qubit_operand(node.qubits):
            self.circuit.reset(qubit)

    def barrier(self, node: Any) -> None:
        qubits = [qubit for operand in node.qubits for qubit in self.qubit_operand(operand)]
        self.circuit.barrier(*qubits)

    def measure(self, node: Any) -> None:
        qubits = self.qubit_operand(node.measure.qubit)
        if node.target is None:
            raise self.fail("a measurement whose result is not stored in a bit is not supported")
        clbits = self.bit_operand(node.target)
        if len(qubits) != len(clbits):
            raise self.fail(f"measuring {len(qubits)} qubit(s) into {len(clbits)} bit(s)")
        self.step(len(qubits))
        self.circuit.measure(qubits, clbits)

    def for_loop(self, node: Any) -> None:
        from openqasm3 import ast

        values: Iterator[int | float | bool]
        declared = node.set_declaration
        if isinstance(declared, ast.RangeDefinition):
            if declared.start is None or declared.end is None:
                raise self.fail("a loop range needs a start and an end")
            start = self.const_int(declared.start)
            end = self.const_int(declared.end)
            stride = 1 if declared.step is None else self.const_int(declared.step)
            if stride == 0:
                raise self.fail("a loop range with step 0")
            values = iter(range(start, end + (1 if stride > 0 else -1), stride))
            # Worked out, not len(range(...)): that overflows past 2**63 iterations.
            count = max(0, (end - start) // stride + 1)
        elif isinstance(declared, ast.DiscreteSet):
            items = [self.eval(value) for value in declared.values]
            values, count = iter(items), len(items)
        else:
            raise self.fail("a loop over anything but a range or a set {...} is not supported")
        if count * max(1, len(node.block)) > STATEMENTS_MAX - self.steps:
            raise self.beyond(
                "qasm_statements_max",
                f"the loop runs {count} times; with its body that is more than the "
                f"{STATEMENTS_MAX} statements a program may unroll to",
            )
        loop_type = node.type
        for value in values:
            typed, width = self.typed(loop_type, value) if loop_type is not None else (value, None)
            self.scoped_block(node.block, {node.identifier.name: _Const(typed, width)})

    def branch(self, node: Any) -> None:
        condition = self.runtime_condition(node.condition)
        if condition is None:
            taken = node.if_block if bool(self.eval(node.condition)) else node.else_block
            self.scoped_block(taken)
            return
        self.runtime_depth += 1
        try:
            with self.circuit.if_test(condition) as otherwise:
                self.scoped_block(node.if_block)
            if node.else_block:
                with otherwise:
                    self.scoped_block(node.else_block)
        finally:
            self.runtime_depth -= 1

    # ------------------------------------------------------------------ operands

    def qubit_operand(self, node: Any) -> list[Any]:
        from openqasm3 import ast

        if isinstance(node, ast.Identifier):
            target = self.scope.lookup(node.name)
            if isinstance(target, _GateQubit):
                return [target.qubit]
            if isinstance(target, _Qubits):
                return list(target.register)
            raise self.fail(f"{node.name!r} is not a qubit or qubit register")
        if isinstance(node, ast.IndexedIdentifier):
            target = self.scope.lookup(node.name.name)
            if not isinstance(target, _Qubits) or target.single:
                raise self.fail(f"{node.name.name!r} is not an indexable qubit register")
            return self.select(list(target.register), node.indices, node.name.name)
        raise self.fail(f"{_describe(node)} as a qubit operand is not supported")

    def bit_operand(self, node: Any) -> list[Any]:
        from openqasm3 import ast

        if isinstance(node, ast.Identifier):
            target = self.scope.lookup(node.name)
            if isinstance(target, _Bits):
                return list(target.register)
            raise self.fail(f"{node.name!r} is not a bit or bit register")
        if isinstance(node, ast.IndexedIdentifier):
            target = self.scope.lookup(node.name.name)
            if not isinstance(target, _Bits):
                raise self.fail(f"{node.name.name!r} is not a bit register")
            return self.select(list(target.register), node.indices, node.name.name)
        raise self.fail(f"{_describe(node)} as a measurement target is not supported")

    def select(self, items: list[Any], indices: list[Any], name: str) -> list[Any]:
        from openqasm3 import ast

        if len(indices) != 1:
            raise self.fail(f"multiple indexing of {name!r} is not supported")
        (index,) = indices
        if isinstance(index, ast.DiscreteSet):
            positions = [self.const_int(value) for value in index.values]
        elif len(index) == 1 and isinstance(index[0], ast.RangeDefinition):
            piece = index[0]
            start = 0 if piece.start is None else self.const_int(piece.start)
            end = len(items) - 1 if piece.end is None else self.const_int(piece.end)
            stride = 1 if piece.step is None else self.const_int(piece.step)
            if stride == 0:
                raise self.fail(f"a range with step 0 indexing {name!r}")
            positions = list(range(start, end + (1 if stride > 0 else -1), stride)[: len(items)])
        elif len(index) == 1:
            positions = [self.const_int(index[0])]
        else:
            raise self.fail(f"multi-dimensional indexing of {name!r} is not supported")
        chosen = []
        for position in positions:
            if not -len(items) <= position < len(items):
                raise self.fail(
                    f"index {position} is out of range for {name!r} (size {len(items)})"
                )
            chosen.append(items[position])
        return chosen

    # ------------------------------------------------------------------ conditions

    def runtime_condition(self, node: Any) -> tuple[Any, int] | None:
        """``(clbit or register, value)`` for a condition on measured bits; ``None`` for one
        known before the run. Conditions mixing the two, or comparing measured bits any other
        way, are refused."""
        from openqasm3 import ast

        if not self.reads_bits(node):
            return None
        if isinstance(node, ast.BinaryExpression) and node.op.name == "==":
            lhs, rhs = node.lhs, node.rhs
            if self.reads_bits(rhs) and not self.reads_bits(lhs):
                lhs, rhs = rhs, lhs
            if not self.reads_bits(rhs):
                target, size = self.bits_value(lhs)
                value = self.eval(rhs)
                if isinstance(value, float) or not 0 <= int(value) < 2**size:
                    raise self.fail(
                        f"comparing {size} bit(s) with {value!r}, which they cannot hold"
                    )
                return target, int(value)
        elif not isinstance(node, ast.BinaryExpression | ast.UnaryExpression):
            target, size = self.bits_value(node)
            if size == 1:
                return target, 1
        raise self.fail(
            "a condition on measured bits must be one bit or one bit register compared with ==, "
            f"got {_describe(node)}"
            + (f" with {node.op.name!r}" if isinstance(node, ast.BinaryExpression) else "")
        )

    def bits_value(self, node: Any) -> tuple[Any, int]:
        """The bit or bit register a runtime condition reads, and its width."""
        from openqasm3 import ast

        if isinstance(node, ast.Cast):
            inner, size = self.bits_value(node.argument)
            if isinstance(node.type, ast.BoolType):
                if size != 1:
                    raise self.fail("bool(...) of a bit register is not supported")
                return inner, size
            if not isinstance(node.type, ast.IntType | ast.UintType):
                raise self.fail(f"casting measured bits to {_describe(node.type)}")
            width = None if node.type.size is None else self.const_int(node.type.size)
            if width is not None and width < size:
                raise self.fail(f"a cast to {width} bits of a register of {size} bits")
            return inner, size
        if isinstance(node, ast.Identifier):
            target = self.scope.lookup(node.name)
            if isinstance(target, _Bits):
                register = target.register
                return (register[0], 1) if len(register) == 1 else (register, len(register))
        if isinstance(node, ast.IndexExpression) and isinstance(node.collection, ast.Identifier):
            target = self.scope.lookup(node.collection.name)
            if isinstance(target, _Bits) and isinstance(node.index, list) and len(node.index) == 1:
                (bit,) = self.select(list(target.register), [node.index], node.collection.name)
                return bit, 1
        raise self.fail(f"{_describe(node)} in a condition on measured bits is not supported")

    def reads_bits(self, node: Any) -> bool:
        from openqasm3 import ast

        if isinstance(node, ast.Identifier):
            return isinstance(self.scope.lookup(node.name), _Bits)
        if isinstance(node, ast.BinaryExpression):
            return self.reads_bits(node.lhs) or self.reads_bits(node.rhs)
        if isinstance(node, ast.UnaryExpression):
            return self.reads_bits(node.expression)
        if isinstance(node, ast.Cast):
            return self.reads_bits(node.argument)
        if isinstance(node, ast.IndexExpression):
            return self.reads_bits(node.collection)
        return False

    # ------------------------------------------------------------------ values

    def const_int(self, node: Any) -> int:
        value = self.eval(node)
        if isinstance(value, float):
            raise self.fail(f"an integer is needed, got {value!r}")
        return int(value)

    def const_float(self, node: Any) -> float:
        return float(self.eval(node))

    def typed(self, type_node: Any, value: Any) -> tuple[int | float | bool, int | None]:
        """A value converted to a declared type, with the integer width when it has one."""
        from openqasm3 import ast

        if isinstance(type_node, ast.BoolType):
            return bool(value), None
        if isinstance(type_node, ast.FloatType | ast.AngleType):
            return float(value), None
        if isinstance(type_node, ast.IntType | ast.UintType):
            if isinstance(value, float):
                value = math.trunc(value)
            width = None if type_node.size is None else self.const_int(type_node.size)
            if width is not None:
                if width > INT_BITS_MAX:
                    raise self.beyond("qasm_int_bits_max", f"integer width {width}")
                if width < 1:
                    raise self.fail(f"integer width {width}")
                return _wrap(int(value), width, isinstance(type_node, ast.IntType)), width
            return int(value), None
        raise self.fail(f"classical type {_describe(type_node)} is not supported")

    def eval(self, node: Any) -> int | float | bool:
        from openqasm3 import ast

        if isinstance(node, ast.BooleanLiteral):
            return bool(node.value)
        if isinstance(node, ast.IntegerLiteral):
            return self.checked(int(node.value))
        if isinstance(node, ast.FloatLiteral):
            return float(node.value)
        if isinstance(node, ast.Identifier):
            target = self.scope.lookup(node.name)
            if isinstance(target, _Const):
                return target.value
            if target is None and node.name in _CONSTANTS:
                return _CONSTANTS[node.name]
            if isinstance(target, _Bits):
                raise self.fail(f"measured bit(s) {node.name!r} are read only by an if condition")
            raise self.fail(f"{node.name!r} has no value known before the circuit runs")
        if isinstance(node, ast.UnaryExpression):
            value = self.eval(node.expression)
            op = node.op.name
            if op == "-":
                return -value
            if op == "!":
                return not value
            if op == "~" and not isinstance(value, float):
                return ~int(value)
            raise self.fail(f"unary {op!r} on {value!r}")
        if isinstance(node, ast.BinaryExpression):
            op = node.op.name
            if op in ("&&", "||"):
                lhs = bool(self.eval(node.lhs))
                if (op == "&&" and not lhs) or (op == "||" and lhs):
                    return lhs
                return bool(self.eval(node.rhs))
            return self.binary(op, self.eval(node.lhs), self.eval(node.rhs))
        if isinstance(node, ast.Cast):
            return self.typed(node.type, self.eval(node.argument))[0]
        if isinstance(node, ast.IndexExpression):
            return self.bit_of(node)
        if isinstance(node, ast.FunctionCall):
            function = _FUNCTIONS.get(node.name.name)
            if function is None or len(node.arguments) != 1:
                raise self.fail(f"function {node.name.name!r} is not supported")
            try:
                result = function(float(self.eval(node.arguments[0])))
            except (ValueError, OverflowError) as error:
                raise self.fail(f"{node.name.name}(...): {error}") from None
            return self.checked(result) if isinstance(result, int) else result
        raise self.fail(f"{_describe(node)} in an expression is not supported")

    def bit_of(self, node: Any) -> int:
        """``x[i]`` for an integer ``x`` known before the run: its bit ``i`` (0 or 1)."""
        from openqasm3 import ast

        if not isinstance(node.collection, ast.Identifier):
            raise self.fail(f"indexing {_describe(node.collection)} is not supported")
        name = node.collection.name
        target = self.scope.lookup(name)
        if isinstance(target, _Bits):
            raise self.fail(f"measured bit(s) {name!r} are read only by an if condition")
        if not isinstance(target, _Const) or isinstance(target.value, float | bool):
            raise self.fail(f"{name!r} is not an integer whose bits can be indexed")
        if not isinstance(node.index, list) or len(node.index) != 1:
            raise self.fail(f"indexing {name!r} with a set or several indices is not supported")
        if isinstance(node.index[0], ast.RangeDefinition):
            raise self.fail(f"slicing {name!r} is not supported")
        position = self.const_int(node.index[0])
        width = target.width if target.width is not None else INT_BITS_MAX
        if not 0 <= position < width:
            raise self.fail(f"bit {position} of {name!r} (width {width})")
        return (int(target.value) >> position) & 1

    def binary(self, op: str, lhs: Any, rhs: Any) -> int | float | bool:
        integers = not isinstance(lhs, float) and not isinstance(rhs, float)
        comparisons: dict[str, Callable[[Any, Any], bool]] = {
            "==": lambda a, b: bool(a == b),
            "!=": lambda a, b: bool(a != b),
            "<": lambda a, b: bool(a < b),
            "<=": lambda a, b: bool(a <= b),
            ">": lambda a, b: bool(a > b),
            ">=": lambda a, b: bool(a >= b),
        }
        if op in comparisons:
            return comparisons[op](lhs, rhs)
        if op in ("&&", "||"):
            return bool(lhs) and bool(rhs) if op == "&&" else bool(lhs) or bool(rhs)
        if op in ("+", "-", "*"):
            result = lhs + rhs if op == "+" else lhs - rhs if op == "-" else lhs * rhs
            return self.checked(result) if integers else float(result)
        if op == "/":
            if rhs == 0:
                raise self.fail("division by zero")
            if integers:
                quotient = abs(int(lhs)) // abs(int(rhs))
                return quotient if (lhs < 0) == (rhs < 0) else -quotient
            return float(lhs) / float(rhs)
        if op == "%":
            if rhs == 0 or not integers:
                raise self.fail(f"{lhs!r} % {rhs!r}")
            return int(math.fmod(int(lhs), int(rhs)))
        if op == "**":
            if integers and rhs >= 0:
                if abs(int(lhs)) > 1 and int(rhs) > INT_BITS_MAX:
                    raise self.beyond(
                        "qasm_int_bits_max", f"the integer {lhs!r} ** {rhs!r} is too large"
                    )
                return self.checked(int(lhs) ** int(rhs))
            try:
                power = float(lhs) ** float(rhs)
            except (OverflowError, ZeroDivisionError) as error:
                raise self.fail(f"{lhs!r} ** {rhs!r}: {error}") from None
            if not isinstance(power, float):
                raise self.fail(f"{lhs!r} ** {rhs!r} is not a real number")
            return power
        if integers and op in ("&", "|", "^", "<<", ">>"):
            a, b = int(lhs), int(rhs)
            if op in ("<<", ">>") and b > INT_BITS_MAX:
                raise self.beyond("qasm_int_bits_max", f"shift by {b}")
            if op in ("<<", ">>") and b < 0:
                raise self.fail(f"shift by {b}")
            if op == "&":
                return a & b
            if op == "|":
                return a | b
            if op == "^":
                return a ^ b
            return self.checked(a << b) if op == "<<" else a >> b
        raise self.fail(f"operator {op!r} on {lhs!r} and {rhs!r} is not supported")

    def checked(self, value: int) -> int:
        if abs(value).bit_length() > INT_BITS_MAX:
            raise self.beyond("qasm_int_bits_max", f"an integer wider than {INT_BITS_MAX} bits")
        return value


@dataclass
class _GateQubit:
    qubit: Any


def _wrap(value: Any, width: int, signed: bool) -> int:
    wrapped = int(value) & ((1 << width) - 1)
    if signed and wrapped >= 1 << (width - 1):
        wrapped -= 1 << width
    return wrapped


def _describe(node: Any) -> str:
    """A readable name for an AST node type (``ForInLoop`` -> ``for-in loop``)."""
    names = {
        "WhileLoop": "while loop",
        "SubroutineDefinition": "subroutine definition (def)",
        "ExternDeclaration": "extern declaration",
        "SwitchStatement": "switch statement",
        "AliasStatement": "alias (let)",
        "IODeclaration": "input/output declaration",
        "DelayInstruction": "delay",
        "Box": "box",
        "CalibrationDefinition": "defcal",
        "CalibrationStatement": "cal block",
        "CalibrationGrammarDeclaration": "defcalgrammar",
        "BreakStatement": "break",
        "ContinueStatement": "continue",
        "EndStatement": "end",
        "ReturnStatement": "return",
        "Pragma": "pragma",
        "ExpressionStatement": "expression statement",
        "ClassicalAssignment": "classical assignment",
        "QuantumMeasurement": "measurement",
    }
    kind = type(node).__name__
    return names.get(kind, kind)
