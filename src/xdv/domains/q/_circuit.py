"""Q job circuits: OpenQASM 2 or 3 source (or a Qiskit circuit) in, a parsed circuit and its
canonical OpenQASM 3 text out.

The canonical text is what a job *is* for orchestration: its SHA-256 enters the trace, so two
submissions of the same circuit (whatever their spelling) are recognisably the same job. Parsing
is a pure function of the text; the Q manager keeps its own bounded memo of the circuits its
processes submit, so a process resubmitting a circuit pays for parsing once.

Qiskit is imported lazily: importing XDV must stay cheap for workloads that never touch Q.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from xdv.domains.q._bounds import check_qasm2, check_qasm3, check_text
from xdv.domains.q._qasm3 import Qasm3Limit, Qasm3Unsupported, parse_program, translate
from xdv.errors import ErrorCode, XdvError, describe_exception
from xdv.inputs import exceeded

__all__ = [
    "ParsedCircuit",
    "circuit_source",
    "circuit_to_text",
    "parse_circuit",
    "parse_text",
]

_CIRCUIT_CHARS_MAX = 4_000_000
_VERSION_2 = re.compile(r"^\s*OPENQASM\s+2(\.\d+)?\s*;", re.MULTILINE)
# Instructions that would read simulator state out (amplitudes, density matrices) or write it
# in: never part of a Q job (XDV-032).
_STATE_ACCESS_PREFIXES = ("save_", "set_", "snapshot")


class NoCloningViolation(XdvError):
    """An attempt to copy, serialize, snapshot or read out Q state (NO_CLONING_VIOLATION)."""

    default_code = ErrorCode.NO_CLONING_VIOLATION


@dataclass(frozen=True)
class ParsedCircuit:
    """A job circuit: the executable Qiskit circuit and its canonical description."""

    circuit: Any  # qiskit.QuantumCircuit (kept untyped: qiskit is an optional import)
    canonical: str
    sha256: str
    version: int
    qubits: int
    clbits: int
    measures: int

    def record(self) -> dict[str, Any]:
        """What the trace records about the circuit: never the state, only its description."""
        return {"circuit": self.sha256, "qubits": self.qubits}


def _invalid(message: str, where: str) -> XdvError:
    return XdvError(message, code=ErrorCode.CIRCUIT_INVALID, where=where)


def check_no_state_access(circuit: Any, where: str) -> None:
    """Refuse a circuit holding an instruction that saves, sets or snapshots simulator state."""
    for instruction in circuit.data:
        name = instruction.operation.name
        if name.startswith(_STATE_ACCESS_PREFIXES):
            raise NoCloningViolation(
                f"instruction {name!r} would read or write Q state; measurement is the only "
                "way out of the Q domain",
                where=where,
            )
        for block in getattr(instruction.operation, "blocks", ()):
            check_no_state_access(block, where)


def circuit_to_text(circuit: Any, where: str = "Q circuit") -> str:
    """Canonical OpenQASM 3 text of a Qiskit ``QuantumCircuit`` (refusing state access)."""
    from qiskit import qasm3

    check_no_state_access(circuit, where)
    try:
        return str(qasm3.dumps(circuit))
    except Exception as error:
        raise _invalid(
            f"the circuit cannot be written as OpenQASM 3: {describe_exception(error)}", where
        ) from None
    except BaseException as error:
        if not _is_panic(error):
            raise
        raise _invalid(
            f"the circuit cannot be written as OpenQASM 3: {_panic(error)}", where
        ) from None


def _is_panic(error: BaseException) -> bool:
    """Whether ``error`` is a Rust panic surfacing from an extension module (PyO3's
    ``pyo3_runtime.PanicException``, which derives from BaseException so that ``except
    Exception`` lets it through). Matched by name: the class is not importable."""
    kind = type(error)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"


def _panic(error: BaseException) -> str:
    return f"the parser failed internally (PanicException: {_clip(str(error))})"


def circuit_source(source: Any, where: str = "Q circuit") -> str:
    """The OpenQASM text of a job's circuit: text as given, a ``QuantumCircuit`` written as
    OpenQASM 3 (refusing state access); CIRCUIT_INVALID for anything else or oversized text."""
    text: str
    if isinstance(source, str):
        text = source
    else:
        from qiskit import QuantumCircuit

        if not isinstance(source, QuantumCircuit):
            raise _invalid(
                f"a Q job's circuit is OpenQASM text or a QuantumCircuit, got "
                f"{type(source).__name__}",
                where,
            )
        text = circuit_to_text(source, where)
    if len(text) > _CIRCUIT_CHARS_MAX:
        raise _invalid(
            f"the circuit text has {len(text)} characters; at most {_CIRCUIT_CHARS_MAX}", where
        )
    return text


def parse_circuit(source: Any, where: str = "Q circuit") -> ParsedCircuit:
    """Parse OpenQASM 2 or 3 text (or accept a ``QuantumCircuit``) into a :class:`ParsedCircuit`.

    Raise CIRCUIT_INVALID for text that does not parse (the message names the line the parser
    reports), and NO_CLONING_VIOLATION for circuits that would access simulator state.
    """
    return parse_text(circuit_source(source, where), where)


def parse_text(source: str, where: str = "Q circuit") -> ParsedCircuit:
    """Parse OpenQASM text already checked by :func:`circuit_source`.

    The text is first measured against the OpenQASM input limits (INPUT_LIMIT_EXCEEDED, naming
    the limit and the line); whatever the parsers and importers then raise, Rust panics
    included, becomes CIRCUIT_INVALID.
    """
    version = 2 if _VERSION_2.search(source) else 3
    check_text(source, version, where)
    try:
        if version == 2:
            check_qasm2(source, where)
            circuit = _load_qasm2(source)
        else:
            circuit = _load_qasm3(source, where)
    except XdvError:
        raise
    except Qasm3Limit as error:
        raise exceeded(error.limit, _clip(str(error)), where) from None
    except Qasm3Unsupported as error:
        raise _invalid(f"OpenQASM 3 text is not supported: {_clip(str(error))}", where) from None
    except Exception as error:
        # The parsers' messages name the line and column; no Q state exists yet, so the message
        # is safe to show and to record.
        raise _invalid(
            f"OpenQASM {version} text does not parse: {type(error).__name__}: {_clip(str(error))}",
            where,
        ) from None
    except BaseException as error:
        if not _is_panic(error):
            raise  # KeyboardInterrupt, SystemExit and the like are never swallowed
        raise _invalid(f"OpenQASM {version} text does not parse: {_panic(error)}", where) from None
    check_no_state_access(circuit, where)
    if circuit.num_qubits == 0:
        raise _invalid("the circuit declares no qubits", where)
    canonical = circuit_to_text(circuit, where)
    measures = _count_measures(circuit)
    return ParsedCircuit(
        circuit=circuit,
        canonical=canonical,
        sha256=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        version=version,
        qubits=circuit.num_qubits,
        clbits=circuit.num_clbits,
        measures=measures,
    )


def _clip(text: str) -> str:
    return " ".join(text.split())[:400]


def _load_qasm2(source: str) -> Any:
    from qiskit import qasm2

    return qasm2.loads(source, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS, strict=False)


def _load_qasm3(source: str, where: str) -> Any:
    """Qiskit's importer first (it covers what it supports faithfully and fast); programs it
    refuses go through XDV's own front-end (:mod:`xdv.domains.q._qasm3`), whose refusal, naming
    the construct and its line and column, is the one reported. So do programs the importer
    turns into loop instructions: XDV's front-end unrolls loops under a bound on the total
    statements, so a loop of any length is either a finite circuit or refused here.

    The text is parsed once, by the reference parser; its AST is measured against the input
    limits before the importer sees it (the importer allocates every declared qubit and keeps
    gate definitions nested), and programs whose sizes only XDV's front-end can work out go to
    that front-end directly."""
    program = parse_program(source)
    if not check_qasm3(program, where):
        return translate(program)
    try:
        from qiskit_qasm3_import import convert

        circuit = convert(program)
    except Exception:
        return translate(program)
    except BaseException as error:
        if not _is_panic(error):
            raise
        return translate(program)
    if _holds(circuit, _LOOPS):
        return translate(program)
    return circuit


_LOOPS = frozenset({"for_loop", "while_loop"})


def _holds(circuit: Any, names: frozenset[str]) -> bool:
    for instruction in circuit.data:
        if instruction.operation.name in names:
            return True
        if any(_holds(block, names) for block in getattr(instruction.operation, "blocks", ())):
            return True
    return False


def _count_measures(circuit: Any) -> int:
    count = 0
    for instruction in circuit.data:
        if instruction.operation.name == "measure":
            count += 1
        for block in getattr(instruction.operation, "blocks", ()):
            count += _count_measures(block)
    return count
