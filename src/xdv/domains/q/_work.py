"""How much simulation a Q job asks for, estimated from its circuit before anything runs.

A simulator that can *sample* a circuit prepares its final state once and draws every shot from
it, so the shot count barely matters. Aer cannot do that for a circuit that acts on a qubit
after measuring it, resets a qubit, conditions an operation on a classical value, or runs under
a noise model (the noise is drawn anew for every shot): it then simulates the whole circuit
again for every shot, and a modest circuit with many shots runs for minutes. The shot limit
alone does not see this, so the Q manager (and ``xdv qrun``, before the run starts) refuses a
job whose repeated work passes the limit ``qasm_work_max``, with INPUT_LIMIT_EXCEEDED.

The estimate is a pure function of the circuit's description, the method, the noise setting
and the shots (never of a clock), in *work units*, roughly one amplitude update each:

* one operation (a gate, a measurement, a reset, a delay; barriers are free; a gate the circuit
  defines counts the operations of its definition; a block of classical control counts all its
  branches, a loop its body times its iterations) costs the size of the state the method keeps:
  ``2**n`` amplitudes for ``statevector`` and ``matrix_product_state`` (whose bond dimension
  can grow to that at worst), ``4**n`` for ``density_matrix``, ``n`` for ``stabilizer``, and at
  least :data:`OPERATION_FLOOR` (an operation's fixed cost);
* under noise every operation counts :data:`NOISE_FACTOR` times (translation to the device's
  native gates makes several of each, and each is followed by a noise channel);
* one pass over the circuit costs its operations plus :data:`PASS_SETUP` (a fresh state and the
  bookkeeping of a shot).

The first pass is what every job pays, sampled or not, and is bounded by the qubit and statement
limits; the limit applies to the rest: ``(shots - 1)`` passes when the job runs shot by shot,
nothing when the provider samples it (Stim samples every shot of a job in one bit-parallel
batch, whatever the circuit). On a 2-core machine one unit is a few nanoseconds of processor
time, so the limit is about a second of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from xdv.domains.q._circuit import ParsedCircuit
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import exceeded, limit

__all__ = ["NOISE_FACTOR", "OPERATION_FLOOR", "PASS_SETUP", "JobWork", "check_job_work", "job_work"]

OPERATION_FLOOR = 64
"""Work units one operation costs at least, whatever the state's size."""
NOISE_FACTOR = 16
"""How many times an operation counts under a noise model."""
PASS_SETUP = 8192
"""Work units of one pass over the circuit beyond its operations (a fresh state, a shot)."""

# Each provider's default method (its first), so that a job can be judged before its provider
# is built; providers_test checks these against the providers.
DEFAULT_METHODS = {"aer": "statevector", "stim": "stabilizer"}
_FREE = frozenset({"barrier"})
_PRIMITIVES = frozenset({"measure", "reset", "delay"})
_NEUTRAL_AFTER_MEASURE = frozenset({"barrier", "delay", "measure"})
# Aer keeps sampling a circuit with resets, and under noise, with this method (it evolves the
# density matrix, noise channels included, once).
_SAMPLES_RESETS_AND_NOISE = frozenset({"density_matrix"})
_MEMO_MAX = 256


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the estimate needs of a circuit: its operations and why Aer could not sample it."""

    operations: int
    measured_then_used: bool
    resets: bool
    conditional: bool


# Shapes of the circuits seen last, by canonical hash (a shape is a pure function of it).
_memo: dict[str, _Shape] = {}


@dataclass(frozen=True, slots=True)
class JobWork:
    """The simulation a job asks for: ``passes`` over the circuit of ``pass_work`` units each
    (``passes`` is 1 when the provider samples the circuit), ``reasons`` why it cannot be sampled
    (empty when it can), and ``repeated`` = ``(passes - 1) * pass_work``, the units that
    ``qasm_work_max`` bounds."""

    operations: int
    pass_work: int
    passes: int
    reasons: tuple[str, ...]

    @property
    def repeated(self) -> int:
        """Work units beyond the first pass."""
        return (self.passes - 1) * self.pass_work

    def shots_max(self, work_max: int) -> int | None:
        """The most shots this job could ask for within ``work_max`` units of repeated work
        (None: any number, the circuit is sampled)."""
        if not self.reasons:
            return None
        return 1 + work_max // self.pass_work


def _standard_names() -> frozenset[str]:
    from qiskit.circuit.library import get_standard_gate_name_mapping

    return frozenset(get_standard_gate_name_mapping())


def _operations(circuit: Any, standard: frozenset[str]) -> int:
    """The operations of ``circuit`` as the estimate counts them (see the module doc).

    Iterative: definitions and blocks nest as deep as the program makes them, and each is walked
    with the number of times it runs (the walk is as long as the circuit inlined, which the
    statement limit bounds)."""
    total = 0
    stack: list[tuple[Iterator[Any], int]] = [(iter(circuit.data), 1)]
    while stack:
        pending, times = stack[-1]
        instruction = next(pending, None)
        if instruction is None:
            stack.pop()
            continue
        operation = instruction.operation
        name = operation.name
        blocks = getattr(operation, "blocks", ())
        if blocks:
            repeat = max(1, len(operation.params[0])) if name == "for_loop" else 1
            stack.extend((iter(block.data), times * repeat) for block in blocks)
        elif name in _FREE:
            continue
        elif name in standard or name in _PRIMITIVES:
            total += times
        else:
            definition = getattr(operation, "definition", None)
            if definition is None:
                total += times
            else:
                stack.append((iter(definition.data), times))
    return total


def _qubits(circuit: Any, instruction: Any) -> Iterator[int]:
    for qubit in instruction.qubits:
        yield circuit.find_bit(qubit).index


def _shape(parsed: ParsedCircuit) -> _Shape:
    """The circuit's :class:`_Shape`, memoized by its canonical hash (a pure function of it)."""
    found = _memo.get(parsed.sha256)
    if found is not None:
        return found
    circuit = parsed.circuit
    measured: set[int] = set()
    measured_then_used = resets = conditional = False
    for instruction in circuit.data:
        operation = instruction.operation
        name = operation.name
        if getattr(operation, "blocks", ()) or getattr(operation, "condition", None) is not None:
            conditional = True
            continue
        if name == "reset":
            resets = True
        qubits = set(_qubits(circuit, instruction))
        if name == "measure":
            measured |= qubits
        elif name not in _NEUTRAL_AFTER_MEASURE and qubits & measured:
            measured_then_used = True
    found = _Shape(_operations(circuit, _standard_names()), measured_then_used, resets, conditional)
    if len(_memo) >= _MEMO_MAX:
        _memo.pop(next(iter(_memo)))
    _memo[parsed.sha256] = found
    return found


def _state_size(method: str, qubits: int) -> int:
    if method == "density_matrix":
        return 1 << (2 * qubits)
    if method == "stabilizer":
        return qubits
    return 1 << qubits  # statevector, matrix_product_state (at worst), anything else


def job_work(
    circuit: ParsedCircuit, shots: int, *, provider: str, method: str, noise: bool
) -> JobWork:
    """The :class:`JobWork` of running ``circuit`` for ``shots`` shots with ``provider``'s
    ``method``, with or without noise (see the module doc for the units)."""
    shape = _shape(circuit)
    reasons: list[str] = []
    if provider != "stim":
        if shape.measured_then_used:
            reasons.append("acts on a qubit after measuring it")
        if shape.conditional:
            reasons.append("uses classical control (a condition or a loop)")
        if method not in _SAMPLES_RESETS_AND_NOISE:
            if shape.resets:
                reasons.append(f"resets a qubit (with method {method})")
            if noise:
                reasons.append(f"runs under the calibration's noise (with method {method})")
    operation = max(_state_size(method, circuit.qubits), OPERATION_FLOOR)
    if noise:
        operation *= NOISE_FACTOR
    pass_work = shape.operations * operation + PASS_SETUP
    return JobWork(shape.operations, pass_work, shots if reasons else 1, tuple(reasons))


def check_job_work(
    circuit: ParsedCircuit,
    shots: int,
    *,
    provider: str,
    method: str | None,
    noise: bool,
    where: str,
    work_max: int | None = None,
) -> JobWork:
    """The job's :class:`JobWork`; INPUT_LIMIT_EXCEEDED naming ``qasm_work_max`` if its repeated
    work passes the limit (the message gives the estimate, why the circuit runs shot by shot,
    and the most shots that fit). ``work_max`` is a bound the job's contract set instead of the
    limit (the ``work_max`` reservation term). ``method`` None means the provider's default; a
    provider or method this module does not know is left to the Q manager to refuse."""
    if method is None:
        method = DEFAULT_METHODS.get(provider, "")
    if not method:
        return JobWork(0, 0, 1, ())
    work = job_work(circuit, shots, provider=provider, method=method, noise=noise)
    bound = limit("qasm_work_max") if work_max is None else work_max
    if work.repeated > bound:
        raise _refusal(work, circuit, shots, method, noise, where, work_max)
    return work


def _refusal(
    work: JobWork,
    circuit: ParsedCircuit,
    shots: int,
    method: str,
    noise: bool,
    where: str,
    work_max: int | None,
) -> XdvError:
    bound = limit("qasm_work_max") if work_max is None else work_max
    changes = [f"ask for at most {work.shots_max(bound) or 1:,} shots"]
    for reason, change in (
        ("after measuring", "measure each qubit only at the end"),
        ("classical control", "drop the classical control"),
        ("resets", "drop the resets or use method density_matrix"),
        ("noise", "drop the noise or use method density_matrix"),
    ):
        if any(reason in text for text in work.reasons):
            changes.append(change)
    found = (
        f"{work.repeated:,} units: Aer must simulate the circuit once per shot because it "
        f"{' and '.join(work.reasons)}, and {shots:,} shots of {work.operations:,} operations "
        f"on {circuit.qubits} qubits ({method}{', noisy' if noise else ''}) cost "
        f"{work.pass_work:,} units each; to fit, {', or '.join(changes)}"
    )
    if work_max is None:
        return exceeded("qasm_work_max", found, where)
    return XdvError(
        f"the job exceeds its contract's work_max = {work_max} work units (in place of the "
        f"limit qasm_work_max): found {found}",
        code=ErrorCode.INPUT_LIMIT_EXCEEDED,
        where=where,
    )
