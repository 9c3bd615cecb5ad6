from __future__ import annotations

import copy
import dataclasses
import hashlib
import pickle
from collections.abc import Callable, Generator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.core import (
    Invocation,
    KDomainManager,
    Operation,
    ResourceContract,
    ResourceRequest,
    RunResult,
)
from xdv.domains.q import (
    CalibrationContract,
    QDomainManager,
    QHandle,
    job_diagnostics,
    parse_circuit,
)
from xdv.domains.q._aer import AerProvider
from xdv.domains.q._signing import CALIBRATION_CONTEXT
from xdv.domains.q.testing import BELL
from xdv.domains.testing import assert_manager_consistent
from xdv.errors import DomainError, ErrorCode, InvariantViolation, XdvError
from xdv.runtime import make_kernel
from xdv.security import HybridKeyPair, ProviderIdentity, ProviderRegistry
from xdv.security._attestation import _EMBEDDED, AttestationVerifier, attest
from xdv.syscalls import (
    Delegate,
    Emit,
    Invoke,
    Release,
    Reserve,
    Sleep,
    Spawn,
    Transition,
    Wait,
)
from xdv.trace import Domain, TraceEntry, read_trace

GHZ = """OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
bit[3] c;
h q[0];
cx q[0], q[1];
cx q[1], q[2];
c = measure q;
"""


SHARED_AER = AerProvider()


class CountingAer(AerProvider):
    """The real Aer provider, counting the jobs that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs = 0

    def run(self, job, profile):  # type: ignore[no-untyped-def]
        self.jobs += 1
        return super().run(job, profile)


def verifier_for(manager: QDomainManager) -> AttestationVerifier:
    """The instrumented providers of these tests are subclasses of XDV's own, so they are not
    attested automatically: the tests attest them (each with its own identity), as any other
    provider must be."""
    verifier = AttestationVerifier()
    for provider in manager.providers().values():
        if type(provider) not in _EMBEDDED:
            verifier.register(attest(provider, provider.identity))
    return verifier


def run_q(
    anchor: Callable[[], Generator[Any, Any, Any]],
    *,
    seed: int = 0,
    manager: QDomainManager | None = None,
    measure: bool = True,
) -> tuple[RunResult, list[TraceEntry]]:
    manager = manager or QDomainManager()
    kernel = make_kernel(
        seed, domains=[KDomainManager(), manager], attestation=verifier_for(manager)
    )
    pid = kernel.spawn(anchor, domains=("K", "Q"))
    if measure:
        kernel.grant(pid, Operation.MEASURE, "Q", "K")
    result = kernel.run()
    assert result.trace_bytes is not None
    return result, read_trace(result.trace_bytes).entries


def invoke_seed(entries: list[TraceEntry]) -> int:
    return int(next(e for e in entries if e.event_name == "DOMAIN_INVOKE").metadata["seed"])


def statuses(entries: list[TraceEntry]) -> list[str]:
    return [entry.status_name for entry in entries]


@pytest.mark.spec("XDV-023-3.2")
def test_q_manager_implements_the_domain_interface() -> None:
    manager = QDomainManager()
    assert manager.describe()["manager"] == "q"
    assert set(manager.providers()) == {"aer"}
    assert manager.rights("run") == frozenset({"MEASURE"})
    assert_manager_consistent(manager, resource="qubits", operation="run")


@pytest.mark.spec("XDV-023-3.2")
@pytest.mark.spec("XDV-023-3.3")
@pytest.mark.spec("XDV-013-5.1")
def test_reservation_issues_a_contract_with_the_q_resource_set() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve(
            "Q",
            "qubits",
            2,
            terms={
                "calibration": "fake_manila",
                "mapping": [3, 4],
                "budget": {"fidelity_min": 0.5},
            },
        )
        yield Emit(dict(contract.terms))

    result, entries = run_q(anchor)
    terms = result.outputs[0][1]
    assert terms["provider"] == "aer" and terms["method"] == "statevector"
    assert terms["mapping"] == [3, 4] and terms["calibration"]["profile"] == "fake_manila"
    assert terms["budget"]["fidelity_min"] == 0.5 and terms["container"] == 1
    reserve = next(e for e in entries if e.event_name == "RESOURCE_RESERVE")
    assert reserve.metadata["terms"]["calibration"]["digest"] == terms["calibration"]["digest"]


@pytest.mark.spec("XDV-023-3.4")
def test_physical_qubits_are_exclusive_and_allocation_is_deterministic() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        first = yield Reserve("Q", "qubits", 2, terms={"calibration": "fake_manila"})
        second = yield Reserve("Q", "qubits", 2, terms={"calibration": "fake_manila"})
        yield Emit([first.terms["mapping"], second.terms["mapping"]])
        try:
            yield Reserve("Q", "qubits", 2, terms={"calibration": "fake_manila"})
        except XdvError as error:
            yield Emit(error.code.name)
        try:
            yield Reserve("Q", "qubits", 1, terms={"calibration": "fake_manila", "mapping": [0]})
        except XdvError as error:
            yield Emit(error.code.name)

    result, _ = run_q(anchor)
    assert [value for _, value in result.outputs] == [
        [[0, 1], [2, 3]],
        "RESOURCE_EXHAUSTED",
        "RESOURCE_EXHAUSTED",
    ]


def test_bad_terms_are_refused_with_typed_errors() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        for terms in (
            {"colour": "red"},
            {"provider": "nope"},
            {"method": "tensor"},
            {"budget": {"fidelity_min": 2}},
            {"mapping": [0, 0]},
            {"calibration": "fake_nowhere"},
        ):
            try:
                yield Reserve("Q", "qubits", 2, terms=terms)
            except XdvError as error:
                yield Emit(error.code.name)

    result, _ = run_q(anchor)
    assert [value for _, value in result.outputs] == [
        "CONTRACT_INVALID",
        "DOMAIN_UNAVAILABLE",
        "CONTRACT_INVALID",
        "CONTRACT_INVALID",
        "CONTRACT_INVALID",
        "CALIBRATION_INVALID",
    ]


@pytest.mark.spec("XDV-080-7")
@pytest.mark.spec("XDV-081-5.2")
@pytest.mark.spec("XDV-060-5.1")
@pytest.mark.spec("XDV-060-5.2")
@pytest.mark.spec("XDV-060-6")
@pytest.mark.spec("XDV-004-5.1")
def test_a_job_runs_through_the_full_path_and_returns_counts_only() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(3)
        result = yield from handle.run(GHZ, 500)
        yield Emit(result)
        yield from handle.release()

    result, entries = run_q(anchor, seed=4)
    value = result.outputs[0][1]
    assert set(value["counts"]) <= {"000", "111"} and sum(value["counts"].values()) == 500
    assert value["shots"] == 500 and value["seed"] == invoke_seed(entries) >> 1
    invoke = next(e for e in entries if e.event_name == "DOMAIN_INVOKE")
    assert invoke.metadata["circuit"] == parse_circuit(GHZ).sha256
    assert invoke.metadata["shots"] == 500 and invoke.capability > 0
    domain_result = next(e for e in entries if e.event_name == "DOMAIN_RESULT")
    assert domain_result.logical_time == invoke.logical_time + 1  # the contract's latency
    assert set(domain_result.metadata["value"]) == {
        "calibration",
        "counts",
        "diagnostics",
        "job",
        "seed",
        "shots",
    }


@pytest.mark.spec("XDV-032-4.2")
@pytest.mark.spec("XDV-004-5.2")
def test_a_job_needs_the_measure_right() -> None:
    manager = QDomainManager({"aer": CountingAer()})

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2)
        try:
            yield from handle.run(BELL, 10)
        except XdvError as error:
            yield Emit(error.code.name)

    result, entries = run_q(anchor, manager=manager, measure=False)
    assert result.outputs[0][1] == "DOMAIN_UNAUTHORIZED"
    assert manager.providers()["aer"].jobs == 0  # type: ignore[attr-defined]
    assert "DOMAIN_UNAUTHORIZED" in statuses(entries)


@pytest.mark.spec("XDV-060-4.3")
@pytest.mark.spec("XDV-060-9")
def test_an_expired_calibration_rejects_jobs_before_the_provider_and_recalibration_restores() -> (
    None
):
    provider = CountingAer()
    manager = QDomainManager({"aer": provider}, calibration_validity=5)

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2)
        first = yield from handle.run(BELL, 10)
        yield Sleep(10)
        try:
            yield from handle.run(BELL, 10)
        except DomainError as error:
            yield Emit(error.code.name)
        renewed = yield from handle.recalibrate()
        again = yield from handle.run(BELL, 10)
        yield Emit([first["calibration"], renewed["calibration"]["id"], again["calibration"]])

    result, entries = run_q(anchor, manager=manager)
    assert result.outputs[0][1] == "CALIBRATION_EXPIRED"
    assert result.outputs[1][1] == [1, 2, 2]
    assert provider.jobs == 2  # the expired job never reached Aer
    assert "CALIBRATION_EXPIRED" in statuses(entries)


@pytest.mark.spec("XDV-060-4.3")
def test_a_job_admitted_in_time_finishes_within_the_tolerance() -> None:
    provider = CountingAer()
    # Latency 4: a job admitted at the last valid step delivers 4 steps after expiry.
    strict = QDomainManager({"aer": provider}, run_latency=4, calibration_validity=3)
    lenient = QDomainManager(
        {"aer": provider}, run_latency=4, calibration_validity=3, calibration_tolerance=4
    )

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2)
        try:
            yield from handle.run(BELL, 10)
            yield Emit("ran")
        except DomainError as error:
            yield Emit(error.code.name)

    assert run_q(anchor, manager=strict)[0].outputs[0][1] == "CALIBRATION_EXPIRED"
    assert run_q(anchor, manager=lenient)[0].outputs[0][1] == "ran"


@pytest.mark.spec("XDV-080-7")
@pytest.mark.spec("XDV-081-5.2")
@pytest.mark.spec("XDV-081-12")
@pytest.mark.spec("XDV-013-5.3")
@pytest.mark.spec("XDV-072-3.3")
def test_a_job_over_its_budget_is_rejected_before_the_provider_and_invalidates_the_contract() -> (
    None
):
    provider = CountingAer()
    manager = QDomainManager({"aer": provider})

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(3, budget={"duration_ns_max": 500})
        for _ in range(2):
            try:
                yield from handle.run(GHZ, 10)
            except XdvError as error:
                yield Emit([error.code.name, error.message])

    result, entries = run_q(anchor, manager=manager)
    (first_code, first_message), (second_code, second_message) = [v for _, v in result.outputs]
    assert first_code == "DECOHERENCE_EXCEEDED" and "exceeds the budget" in first_message
    assert second_code == "CONTRACT_INVALID" and "invalidated" in second_message
    assert provider.jobs == 0
    assert "DECOHERENCE_EXCEEDED" in statuses(entries)
    assert manager.diagnostics()[0]["status"] == "DECOHERENCE_EXCEEDED"
    refusal = job_diagnostics(read_trace(result.trace_bytes or b""))[0]
    assert refusal["status"] == "DECOHERENCE_EXCEEDED" and "budget" in refusal["error"]


@pytest.mark.spec("XDV-013-5.3")
def test_a_fidelity_floor_rejects_a_noisy_job() -> None:
    provider = CountingAer()

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(3, budget={"fidelity_min": 0.9999})
        try:
            yield from handle.run(GHZ, 10)
        except XdvError as error:
            yield Emit(error.code.name)

    result, _ = run_q(anchor, manager=QDomainManager({"aer": provider}))
    assert result.outputs[0][1] == "DECOHERENCE_EXCEEDED" and provider.jobs == 0


@pytest.mark.spec("XDV-032-4.4")
def test_measurement_rate_limit_per_budget() -> None:
    provider = CountingAer()

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2, budget={"shots_per_window": 150, "window": 50})
        outcomes = []
        for _ in range(2):
            try:
                yield from handle.run(BELL, 100)
                outcomes.append("ran")
            except XdvError as error:
                outcomes.append(error.code.name)
        yield Sleep(60)
        yield from handle.run(BELL, 100)
        outcomes.append("ran")
        yield Emit(outcomes)

    result, _ = run_q(anchor, manager=QDomainManager({"aer": provider}))
    assert result.outputs[0][1] == ["ran", "MEASUREMENT_RATE_EXCEEDED", "ran"]
    assert provider.jobs == 2


@pytest.mark.spec("XDV-072-3.2")
def test_diagnostics_are_structured_records_per_job() -> None:
    manager = QDomainManager()

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(3, calibration="fake_manila", shots_max=64)
        result = yield from handle.run(GHZ, 64)
        yield Emit(result["diagnostics"])
        repeat = yield from handle.run(GHZ, 32)
        yield Emit(repeat["diagnostics"])

    result, _ = run_q(anchor, manager=manager)
    record = result.outputs[0][1]
    full = manager.diagnostics()[0]
    assert {key: full[key] for key in record} == record  # the traced part of the full record
    for key in ("calibration", "profile", "shots", "gates_1q", "gates_2q", "fidelity_min"):
        assert key in full
    for key in (
        "duration_ns",
        "duration_ns_budget",
        "fidelity",
        "t1_margin_ns",
        "t2_margin_ns",
        "readout_error",
    ):
        assert key in record
    assert 0 < record["duration_ns"] < record["duration_ns_budget"]
    assert 0 < record["fidelity"] < 1 and full["shots"] == 64
    # A repeat of the circuit under the same calibration refers to the first job's figures.
    assert result.outputs[1][1] == {"same_as": full["job"]}
    first, repeat = job_diagnostics(read_trace(result.trace_bytes or b""))
    assert first["profile"] == "fake_manila" and first["shots"] == 64
    assert first["status"] == "OK" and first["fidelity"] == record["fidelity"]
    assert repeat["shots"] == 32 and repeat["fidelity"] == record["fidelity"]
    assert len(manager.diagnostics()) == 2
    assert manager.diagnostics()[0]["status"] == "OK"


@pytest.mark.spec("XDV-060-5.1")
def test_qiskit_circuits_are_accepted_and_converted() -> None:
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(2, 2)
    circuit.x(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2)
        result = yield from handle.run(circuit, 20)
        yield Emit(result["counts"])

    result, _ = run_q(anchor)
    assert result.outputs[0][1] == {"11": 20}


@pytest.mark.spec("XDV-060-9")
@pytest.mark.spec("XDV-072-8")
def test_same_seed_same_counts_and_trace_bytes() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(3, noise=True, calibration="fake_manila")
        result = yield from handle.run(GHZ, 300)
        yield Emit(result["counts"])

    first, _ = run_q(anchor, seed=21)
    second, _ = run_q(anchor, seed=21)
    other, _ = run_q(anchor, seed=22)
    assert first.trace_bytes == second.trace_bytes
    assert first.outputs == second.outputs
    assert first.outputs != other.outputs  # noise: the seed matters
    assert len(first.outputs[0][1]) > 2  # noisy GHZ reads more than 000 and 111


def test_threaded_provider_results_enter_at_the_contract_point() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(3)
        result = yield from handle.run(GHZ, 100)
        yield Emit(result["counts"])

    inline, _ = run_q(anchor, seed=3, manager=QDomainManager(workers=0))
    threaded, _ = run_q(anchor, seed=3, manager=QDomainManager(workers=2))
    assert inline.outputs == threaded.outputs
    assert inline.trace_bytes != threaded.trace_bytes  # describe() records the workers
    assert inline.steps == threaded.steps


# ---------------------------------------------------------------------- no-cloning


def refused(entries: list[TraceEntry]) -> list[TraceEntry]:
    return [e for e in entries if e.status_name == "NO_CLONING_VIOLATION"]


def attempt(action: Callable[[QHandle], Any]) -> tuple[RunResult, list[TraceEntry]]:
    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2)
        try:
            action(handle)
        except XdvError as error:
            yield Emit(error.code.name)
        result = yield from handle.run(BELL, 10)  # the refusal is reported first
        yield Emit(sorted(result["counts"]) <= ["00", "11"])

    return run_q(anchor)


@pytest.mark.spec("XDV-032-5")
@pytest.mark.spec("XDV-032-9")
@pytest.mark.parametrize(
    "action",
    [
        pytest.param(copy.copy, id="copy"),
        pytest.param(copy.deepcopy, id="deepcopy"),
        pytest.param(pickle.dumps, id="pickle"),
        pytest.param(lambda handle: handle.__getstate__(), id="getstate"),
        pytest.param(lambda handle: handle.snapshot(), id="snapshot"),
        pytest.param(lambda handle: handle.statevector(), id="statevector"),
        pytest.param(lambda handle: handle.amplitudes(), id="amplitudes"),
        pytest.param(lambda handle: __import__("numpy").asarray(handle), id="array"),
    ],
)
def test_python_level_duplication_is_refused_and_traced(action: Callable[[QHandle], Any]) -> None:
    result, entries = attempt(action)
    assert [value for _, value in result.outputs] == ["NO_CLONING_VIOLATION", True]
    (entry,) = refused(entries)
    assert entry.event_name == "DOMAIN_RESULT" and entry.domain is Domain.Q


@pytest.mark.spec("XDV-032-5")
@pytest.mark.spec("XDV-013-5.2")
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda handle: Emit(handle), id="emit"),
        pytest.param(lambda handle: Emit({"handle": handle}), id="emit-nested"),
        pytest.param(lambda handle: Transition("K", "K", "call", (print, handle)), id="transition"),
    ],
)
def test_serializing_a_handle_into_a_trace_is_refused_and_traced(
    make: Callable[[QHandle], Any],
) -> None:
    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2)
        try:
            yield make(handle)
        except XdvError as error:
            yield Emit(error.code.name)

    result, entries = run_q(anchor)
    assert result.outputs[-1][1] == "NO_CLONING_VIOLATION"
    assert refused(entries)


@pytest.mark.spec("XDV-032-5")
def test_returning_a_handle_as_exit_value_is_refused_and_traced() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2)
        return handle

    result, entries = run_q(anchor)
    assert result.exits[1].code == "NO_CLONING_VIOLATION"
    assert refused(entries)


@pytest.mark.spec("XDV-032-3.2")
@pytest.mark.spec("XDV-032-5")
def test_passing_a_handle_to_another_process_is_refused_and_traced() -> None:
    def child(handle: QHandle) -> Generator[Any, Any, Any]:
        yield from handle.run(BELL, 10)

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2)
        for args in ((handle,), ([handle],)):
            try:
                yield Spawn(child, args, domains=("K", "Q"))
            except XdvError as error:
                yield Emit(error.code.name)

    result, entries = run_q(anchor)
    assert [v for _, v in result.outputs] == ["NO_CLONING_VIOLATION"] * 2
    assert [e.event_name for e in refused(entries)] == ["PROCESS_CREATE"] * 2


@pytest.mark.spec("XDV-032-3.2")
def test_a_handle_used_by_a_process_that_does_not_own_it_is_refused() -> None:
    smuggled: list[QHandle] = []

    def child() -> Generator[Any, Any, Any]:
        yield from smuggled[0].run(BELL, 10)

    def anchor() -> Generator[Any, Any, Any]:
        smuggled.append((yield from QHandle.reserve(2)))
        pid = yield Spawn(child, (), domains=("K", "Q"))
        yield Sleep(5)
        return pid

    result, entries = run_q(anchor)
    assert result.exits[2].code == "NO_CLONING_VIOLATION"
    assert any(e.process == 2 and e.status_name == "NO_CLONING_VIOLATION" for e in entries)


@pytest.mark.spec("XDV-032-3.2")
def test_a_container_crosses_processes_only_by_an_explicit_recorded_transfer() -> None:
    measure: list[int] = []

    def child(contract_id: int) -> Generator[Any, Any, Any]:
        handle = yield from QHandle.adopt(contract_id)
        result = yield from handle.run(BELL, 10)
        yield Emit(f"child {result['shots']}")

    def bystander() -> Generator[Any, Any, Any]:
        yield Sleep(50)

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2)
        unbound = yield Spawn(bystander, ())  # not bound to Q: cannot receive a container
        try:
            yield from handle.transfer(unbound)
        except XdvError as error:
            yield Emit(f"refused {error.code.name}")
        handle = handle.move()  # the refused transfer left the container with this process
        result = yield from handle.run(BELL, 10)
        yield Emit(f"parent {result['shots']}")
        pid = yield Spawn(child, (handle.contract_id,), domains=("K", "Q"))
        yield Delegate(measure[0], pid)  # reading results out of Q needs MEASURE too
        yield from handle.transfer(pid)
        try:
            yield from handle.run(BELL, 10)  # the old handle is dead
        except XdvError as error:
            yield Emit(f"after {error.code.name}")
        yield Wait(pid)

    manager = QDomainManager()
    kernel = make_kernel(0, domains=[KDomainManager(), manager], attestation=verifier_for(manager))
    pid = kernel.spawn(anchor, domains=("K", "Q"))
    measure.append(kernel.grant(pid, Operation.MEASURE, "Q", "K").id)
    result = kernel.run()
    assert result.trace_bytes is not None
    entries = read_trace(result.trace_bytes).entries
    assert [v for _, v in result.outputs] == [
        "refused DOMAIN_NOT_BOUND",
        "parent 10",
        "after NO_CLONING_VIOLATION",
        "child 10",
    ]
    transfers = [e for e in entries if e.event_name == "RESOURCE_TRANSFER"]
    assert [(t.status_name, t.metadata.get("to")) for t in transfers] == [
        ("DOMAIN_NOT_BOUND", None),
        ("OK", 3),
    ]


@pytest.mark.spec("XDV-032-3.1")
def test_moving_a_handle_kills_the_old_one() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2)
        moved = handle.move()
        try:
            yield from handle.run(BELL, 10)
        except XdvError as error:
            yield Emit(error.code.name)
        result = yield from moved.run(BELL, 10)
        yield Emit(result["shots"])

    result, _ = run_q(anchor)
    assert [v for _, v in result.outputs] == ["NO_CLONING_VIOLATION", 10]


@pytest.mark.spec("XDV-032-5")
@pytest.mark.spec("XDV-060-8")
def test_circuits_that_would_read_state_are_refused() -> None:
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(1, 1)
    circuit.h(0)
    circuit.save_statevector()  # type: ignore[attr-defined]
    circuit.measure(0, 0)
    with pytest.raises(XdvError) as raised:
        parse_circuit(circuit)
    assert raised.value.code is ErrorCode.NO_CLONING_VIOLATION


@pytest.mark.spec("XDV-080-7")
@pytest.mark.spec("XDV-032-4.1")
@pytest.mark.spec("XDV-013-5.2")
def test_q_state_has_no_projection_but_measurement() -> None:
    manager = QDomainManager()
    with pytest.raises(XdvError) as raised:
        manager.project(1, ("anything",))
    assert raised.value.code is ErrorCode.NO_CLONING_VIOLATION
    snapshot = manager.snapshot()
    assert set(snapshot) == {"bound", "containers"}


@pytest.mark.spec("XDV-032-10")
@pytest.mark.spec("XDV-060-11")
def test_no_amplitudes_in_traces_or_results() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(3, method="density_matrix")
        result = yield from handle.run(GHZ, 50)
        yield Emit(result)

    _, entries = run_q(anchor)

    def walk(value: Any) -> None:
        assert not isinstance(value, complex)
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            # No vector of 2**n amplitudes or probabilities (a 3-qubit state has 8).
            assert sum(isinstance(item, float) for item in value) < 8
            for item in value:
                walk(item)

    for entry in entries:
        walk(entry.metadata)


def test_bad_job_arguments_are_typed_and_recorded() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Q", "qubits", 2)
        for args in (("not qasm at all", 10), (BELL, 0), (BELL,)):
            try:
                yield Invoke(contract, "run", args)
            except XdvError as error:
                yield Emit(error.code.name)
        yield Release(contract)

    result, _ = run_q(anchor)
    assert [v for _, v in result.outputs] == [
        "CIRCUIT_INVALID",
        "SYSCALL_INVALID",
        "SYSCALL_INVALID",
    ]


@pytest.mark.spec("XDV-023-3.3")
@settings(max_examples=25)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 3)), max_size=12))
def test_reservations_never_share_physical_qubits_and_release_returns_them(
    operations: list[tuple[bool, int]],
) -> None:
    """Any sequence of reservations and releases keeps mappings disjoint and accounted."""
    manager = QDomainManager({"aer": SHARED_AER})
    baseline = manager.snapshot()
    live: list[ResourceContract] = []
    for next_id, (reserve, amount) in enumerate(operations, start=1):
        if reserve or not live:
            request = ResourceRequest(
                1, Domain.Q, "qubits", amount, None, next_id, {"calibration": "fake_manila"}
            )
            try:
                grant = manager.request_resources(request)
            except XdvError as error:
                assert error.code is ErrorCode.RESOURCE_EXHAUSTED
                continue
            live.append(
                ResourceContract(next_id, 1, Domain.Q, "qubits", amount, 0, None, 1, grant.detail)
            )
        else:
            manager.release(live.pop(0))
        mappings = [set(contract.terms["mapping"]) for contract in live]
        assert sum(len(m) for m in mappings) == len(set().union(*mappings))
    for contract in live:
        manager.release(contract)
    assert manager.snapshot() == baseline


@pytest.mark.spec("XDV-060-4.3")
def test_recalibration_requires_the_provider_to_pass_attestation_again() -> None:
    class Tampered(AerProvider):
        tampered = False

        def measurement(self) -> str:
            return "0" * 64 if Tampered.tampered else super().measurement()

    manager = QDomainManager({"aer": Tampered()}, calibration_validity=2)

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2)
        Tampered.tampered = True  # the provider changes after registration
        try:
            yield from handle.recalibrate()
        except XdvError as error:
            yield Emit(error.code.name)

    result, entries = run_q(anchor, manager=manager)
    assert result.outputs[0][1] == "ATTESTATION_FAILED"
    assert "ATTESTATION_FAILED" in statuses(entries)


@pytest.mark.spec("XDV-060-5.2")
def test_a_job_is_parsed_once_by_prepare_and_execute_uses_the_prepared_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import xdv.domains.q._manager as manager_module

    parsed: list[str] = []
    real_parse = manager_module.parse_text

    def counting(source: str, where: str = "Q circuit") -> Any:
        parsed.append(source)
        return real_parse(source, where)

    monkeypatch.setattr(manager_module, "parse_text", counting)
    ghz_bits = GHZ.replace("c = measure q;", "c[0] = measure q[0];\nc[1] = measure q[1];")

    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Q", "qubits", 3)
        for text in (BELL, BELL, ghz_bits, BELL):
            counts = yield Invoke(contract, "run", (text, 20))
            yield Emit(sum(counts["counts"].values()))
        yield Release(contract)

    result, entries = run_q(anchor)
    assert [v for _, v in result.outputs] == [20, 20, 20, 20]
    # Each distinct text is parsed once (a resubmission comes from the manager's memo), and
    # never again when the job executes.
    assert parsed == [BELL, ghz_bits]
    invokes = [e.metadata for e in entries if e.event_name == "DOMAIN_INVOKE"]
    assert [m["circuit"] for m in invokes] == [parse_circuit(t).sha256 for t in (BELL,) * 2] + [
        parse_circuit(ghz_bits).sha256,
        parse_circuit(BELL).sha256,
    ]

    # Below the kernel: execute reads Invocation.parsed, never Invocation.args.
    manager = QDomainManager({"aer": SHARED_AER})
    grant = manager.request_resources(ResourceRequest(1, Domain.Q, "qubits", 2, None, 0))
    contract = ResourceContract(1, 1, Domain.Q, "qubits", 2, 0, None, 1, grant.detail)
    prepared = manager.prepare("run", (BELL, 30))
    assert dict(prepared.record) == {**parse_circuit(BELL).record(), "shots": 30}
    garbage = Invocation(
        1, 1, Domain.Q, contract, "run", ("not a circuit", -1), 7, 0, prepared.parsed
    )
    assert sum(manager.execute(garbage).value["counts"].values()) == 30
    unprepared = Invocation(2, 1, Domain.Q, contract, "run", (BELL, 30), 7, 0)
    with pytest.raises(InvariantViolation):
        manager.execute(unprepared)


def _old_derivation(provider_id: str, measurement: str) -> ProviderIdentity:
    """The key XDV once derived for a provider from its id and measurement, both of which
    every trace holds: anyone with a trace could rebuild it."""
    seed = hashlib.sha256(f"xdv-q-provider\0{provider_id}\0{measurement}".encode()).digest()
    return ProviderIdentity(provider_id, HybridKeyPair.from_seed(seed))


def _signed_by(contract: CalibrationContract, identity: ProviderIdentity) -> CalibrationContract:
    return dataclasses.replace(
        contract, signature=identity.sign(contract.message(), context=CALIBRATION_CONTEXT)
    )


@pytest.mark.spec("XDV-060-4.2")
def test_a_calibration_contract_forged_from_trace_facts_is_refused() -> None:
    manager = QDomainManager({"aer": SHARED_AER})

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(2, calibration="fake_manila")
        yield Emit(handle.terms["calibration"])

    result, entries = run_q(anchor, manager=manager)
    assert result.ok, result.exits
    run_start = entries[0].metadata["domains"]["Q"]["providers"]["aer"]
    genuine = manager.calibration_contract(result.outputs[0][1]["id"])
    manager.verify_calibration(genuine)  # signed by the provider's pinned key
    # A forger holding the trace rebuilds the old derived key from what it records, and signs
    # a contract that stretches the validity window: refused.
    stretched = dataclasses.replace(genuine, valid_until=genuine.valid_until + 10**9)
    forged = _signed_by(stretched, _old_derivation("aer", run_start["measurement"]))
    with pytest.raises(XdvError) as raised:
        manager.verify_calibration(forged)
    assert raised.value.code is ErrorCode.SIGNATURE_INVALID
    # Signed by a key nobody pinned for the provider: refused too.
    unpinned = ProviderIdentity("aer", HybridKeyPair.generate())
    with pytest.raises(XdvError) as raised:
        manager.verify_calibration(_signed_by(genuine, unpinned))
    assert raised.value.code is ErrorCode.SIGNATURE_INVALID
    # And a contract naming a provider the manager never admitted.
    with pytest.raises(XdvError) as raised:
        manager.verify_calibration(dataclasses.replace(genuine, provider_id="elsewhere"))
    assert raised.value.code is ErrorCode.CALIBRATION_INVALID


@pytest.mark.spec("XDV-060-4.2")
def test_a_provider_signing_with_another_key_reserves_nothing() -> None:
    class OldSigner(AerProvider):
        """Signs its contracts with the old derivation instead of its identity key."""

        def calibrate(self, contract_id, profile, now, validity):  # type: ignore[no-untyped-def]
            contract = super().calibrate(contract_id, profile, now, validity)
            return _signed_by(contract, _old_derivation("aer", self.measurement()))

    manager = QDomainManager({"aer": OldSigner()})

    def anchor() -> Generator[Any, Any, Any]:
        try:
            yield from QHandle.reserve(2, calibration="fake_manila")
        except XdvError as error:
            yield Emit(error.code.name)

    result, entries = run_q(anchor, manager=manager)
    assert result.outputs[0][1] == "SIGNATURE_INVALID"
    assert "SIGNATURE_INVALID" in statuses(entries)
    assert manager.snapshot()["containers"] == {}


@pytest.mark.spec("XDV-060-4.2")
def test_a_provider_key_other_than_the_pinned_one_is_refused() -> None:
    registry = ProviderRegistry()
    pinned = QDomainManager({"aer": SHARED_AER}, registry=registry)
    assert registry.pinned("aer") == SHARED_AER.identity.public
    # Another provider presenting itself as "aer" with a key of its own: refused on admission.
    impostor = AerProvider(identity=ProviderIdentity("aer", HybridKeyPair.generate()))
    with pytest.raises(XdvError) as raised:
        QDomainManager({"aer": impostor}, registry=registry)
    assert raised.value.code is ErrorCode.PROVIDER_KEY_MISMATCH
    assert impostor.identity.fingerprint not in raised.value.message
    # A provider whose identity is swapped after admission is refused at its next reservation,
    # before it issues anything.
    swapping = CountingAer()
    manager = QDomainManager({"aer": swapping}, registry=ProviderRegistry())
    swapping._identity = ProviderIdentity("aer", HybridKeyPair.generate())
    with pytest.raises(XdvError) as raised:
        manager.request_resources(ResourceRequest(1, Domain.Q, "qubits", 1, None, 0))
    assert raised.value.code is ErrorCode.ATTESTATION_FAILED
    assert manager.snapshot()["containers"] == {} and pinned.providers()
