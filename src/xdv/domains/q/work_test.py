"""The work bound of Q jobs (qasm_work_max): which circuits run shot by shot, what a pass
costs, and refusals before anything runs, in the manager and at ``q_job``."""

from __future__ import annotations

import functools
import time
from collections.abc import Generator
from typing import Any

import pytest

from xdv.core import KDomainManager, Operation, ResourceRequest
from xdv.domains.q import (
    JobWork,
    QDomainManager,
    QHandle,
    check_job_work,
    job_work,
    load_profile,
    parse_circuit,
)
from xdv.domains.q._aer import AerProvider, build_noise_model
from xdv.domains.q._stim import StimProvider
from xdv.domains.q._work import (
    DEFAULT_METHODS,
    NOISE_FACTOR,
    OPERATION_FLOOR,
    PASS_SETUP,
    _operations,
    _standard_names,
)
from xdv.errors import ContractError, XdvError
from xdv.inputs import limit
from xdv.runtime import make_kernel, q_job
from xdv.security import AttestationVerifier, attest
from xdv.syscalls import Emit
from xdv.trace import Domain

HEAD = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\n'
# Minimal circuits, and whether Aer samples them (ideal, statevector).
CASES = {
    "final": ("h q[0]; cx q[0], q[1]; c = measure q;", True),
    "other_qubit_after": ("h q[0]; c[0] = measure q[0]; h q[1]; c[1] = measure q[1];", True),
    "barrier_after": ("h q[0]; c[0] = measure q[0]; barrier q; c[1] = measure q[1];", True),
    "measured_again": ("h q[0]; c[0] = measure q[0]; c[1] = measure q[0];", True),
    "used_after": ("h q[0]; c[0] = measure q[0]; h q[0]; c[1] = measure q[0];", False),
    "two_qubit_after": ("h q[0]; c[0] = measure q[0]; cx q[1], q[0]; c[1] = measure q[1];", False),
    "reset": ("reset q[0]; h q[0]; c = measure q;", False),
    "conditional": ("h q[0]; c[0] = measure q[0]; if (c[0]) x q[1]; c[1] = measure q[1];", False),
}
# One conditional on a 3-qubit circuit: a teleportation's feed-forward in miniature.
CONDITIONAL = HEAD.replace("[2]", "[3]") + (
    "h q[0];\ncx q[0], q[1];\nc[0] = measure q[0];\nif (c[0]) x q[2];\nc[1] = measure q[1];\n"
    "c[2] = measure q[2];\n"
)
_AER = AerProvider()


@functools.cache
def circuit(name: str) -> Any:
    return parse_circuit(HEAD + CASES[name][0] + "\n")


@functools.cache
def noise_model() -> Any:
    return build_noise_model(load_profile("fake_manila"), (0, 1))


def aer_samples(name: str, method: str, noise: bool) -> bool:
    """Whether Aer itself sampled the circuit (its result metadata), run as the provider runs
    it: translated to the calibration's gates and with its noise model when noisy."""
    from qiskit import transpile
    from qiskit_aer import AerSimulator

    simulator = AerSimulator(method=method)
    options: dict[str, Any] = {"shots": 4, "seed_simulator": 1}
    source = circuit(name).circuit
    if noise:
        profile = load_profile("fake_manila")
        basis = [*profile.basis, "measure", "reset", "delay", "if_else"]
        source = transpile(source, basis_gates=basis, optimization_level=0, seed_transpiler=0)
        options["noise_model"] = noise_model()
    # Ideal, the gates of these circuits are Aer's own: the provider runs them as written.
    result = simulator.run(source, **options).result()
    return bool(result.results[0].metadata["measure_sampling"])


@pytest.mark.parametrize("method", ["statevector", "density_matrix"])
@pytest.mark.parametrize("noise", [False, True])
@pytest.mark.parametrize("name", sorted(CASES))
def test_shot_by_shot_is_predicted_as_aer_decides(name: str, method: str, noise: bool) -> None:
    """The estimate's rule (from the circuit's description alone) agrees with what Aer does."""
    work = job_work(circuit(name), 1000, provider="aer", method=method, noise=noise)
    sampled = aer_samples(name, method, noise)
    assert (work.passes == 1) is sampled, work.reasons
    assert not work.reasons if sampled else work.passes == 1000
    if method == "statevector" and not noise:
        assert sampled is CASES[name][1]


def test_a_pass_costs_its_operations_on_the_state_plus_a_setup() -> None:
    parsed = circuit("used_after")  # h, measure, h, measure on 2 qubits
    ideal = job_work(parsed, 10, provider="aer", method="statevector", noise=False)
    assert ideal == JobWork(4, 4 * OPERATION_FLOOR + PASS_SETUP, 10, ideal.reasons)
    assert ideal.repeated == 9 * ideal.pass_work
    assert ideal.reasons == ("acts on a qubit after measuring it",)
    noisy = job_work(parsed, 10, provider="aer", method="statevector", noise=True)
    assert noisy.pass_work == 4 * OPERATION_FLOOR * NOISE_FACTOR + PASS_SETUP
    wide = parse_circuit(
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[10];\ncreg c[10];\nh q;\nbarrier q;\n'
        "measure q -> c;\nreset q[0];\n"
    )
    # h and measure broadcast over 10 qubits, a reset; the barrier is free.
    for method, state in (("statevector", 1 << 10), ("density_matrix", 1 << 20)):
        work = job_work(wide, 5, provider="aer", method=method, noise=False)
        assert work.pass_work == 21 * state + PASS_SETUP
    stabilizer = job_work(wide, 5, provider="aer", method="stabilizer", noise=False)
    assert stabilizer.pass_work == 21 * OPERATION_FLOOR + PASS_SETUP  # 10 qubits: the floor
    # Stim samples every shot of a job in one batch.
    assert job_work(wide, 5, provider="stim", method="stabilizer", noise=True).passes == 1


def test_defined_gates_count_their_definitions_and_loops_their_iterations() -> None:
    parsed = parse_circuit(
        'OPENQASM 2.0;\ninclude "qelib1.inc";\ngate pair a, b { h a; cx a, b; }\n'
        "gate quad a, b { pair a, b; pair b, a; }\nqreg q[2];\ncreg c[2];\nquad q[0], q[1];\n"
        "measure q -> c;\n"
    )
    assert job_work(parsed, 1, provider="aer", method="statevector", noise=False).operations == 6
    from qiskit import QuantumCircuit

    looped = QuantumCircuit(1, 1)
    with looped.for_loop(range(7)):
        looped.h(0)
        looped.x(0)
    looped.measure(0, 0)
    assert _operations(looped, _standard_names()) == 15


def test_each_provider_default_method_is_known() -> None:
    assert {"aer": AerProvider.methods[0], "stim": StimProvider.methods[0]} == DEFAULT_METHODS


def run_jobs(*jobs: tuple[str, int], **terms: Any) -> tuple[list[Any], AerProvider, float]:
    """Run each (circuit, shots) as a job of one container on a counting Aer; the outputs
    (counts or [code, message]), the provider and the processor seconds the run took."""

    class Counting(AerProvider):
        jobs = 0

        def run(self, job, profile):  # type: ignore[no-untyped-def]
            Counting.jobs += 1
            return super().run(job, profile)

    provider = Counting()

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(3, **terms)
        for text, shots in jobs:
            try:
                result = yield from handle.run(text, shots)
                yield Emit(result["counts"])
            except XdvError as error:
                yield Emit([error.code.name, error.message])

    verifier = AttestationVerifier()
    verifier.register(attest(provider, provider.identity))
    manager = QDomainManager({"aer": provider})
    kernel = make_kernel(0, domains=[KDomainManager(), manager], attestation=verifier)
    pid = kernel.spawn(anchor, domains=("K", "Q"))
    kernel.grant(pid, Operation.MEASURE, "Q", "K")
    start = time.process_time()
    result = kernel.run()
    seconds = time.process_time() - start
    assert result.ok, result.exits
    return [value for _, value in result.outputs], provider, seconds


def test_the_manager_refuses_a_job_over_the_work_bound_before_the_provider_runs() -> None:
    # 100,000 shots of a circuit with a conditional: about 30 s of Aer before the bound.
    (refused, counts), provider, seconds = run_jobs((CONDITIONAL, 100_000), (CONDITIONAL, 1000))
    code, message = refused
    assert code == "INPUT_LIMIT_EXCEEDED"
    assert f"qasm_work_max = {limit('qasm_work_max')}" in message
    assert "once per shot because it uses classical control" in message
    # Six operations (h, cx, three measurements, the conditional x) on 3 qubits: the floor.
    assert (
        f"at most {1 + limit('qasm_work_max') // (6 * OPERATION_FLOOR + PASS_SETUP):,} shots"
        in message
    )
    assert sum(counts.values()) == 1000  # the same circuit within the bound runs
    assert type(provider).jobs == 1  # only the second job reached Aer
    assert seconds < 2.0


def test_a_sampled_circuit_is_not_bounded_by_its_shots() -> None:
    ghz = HEAD + CASES["final"][0] + "\n"
    assert check_job_work(
        parse_circuit(ghz), 100_000, provider="aer", method=None, noise=False, where="t"
    ) == JobWork(4, 4 * OPERATION_FLOOR + PASS_SETUP, 1, ())


def test_the_contract_term_work_max_lowers_or_raises_the_bound() -> None:
    (refused,), _, _ = run_jobs((CONDITIONAL, 2), work_max=1000)
    assert refused[0] == "INPUT_LIMIT_EXCEEDED"
    assert "contract's work_max = 1000" in refused[1] and "at most 1 shots" in refused[1]
    parsed = parse_circuit(CONDITIONAL)
    with pytest.raises(XdvError, match="qasm_work_max"):
        check_job_work(parsed, 100_000, provider="aer", method=None, noise=False, where="t")
    raised = check_job_work(
        parsed, 100_000, provider="aer", method=None, noise=False, where="t", work_max=1 << 30
    )
    assert raised.repeated > limit("qasm_work_max")


@pytest.mark.parametrize("value", [0, -1, "big", 1.5, (1 << 40) + 1])
def test_a_bad_work_max_term_is_refused(value: Any) -> None:
    manager = QDomainManager({"aer": _AER})
    request = ResourceRequest(1, Domain.Q, "qubits", 2, None, 0, terms={"work_max": value})
    with pytest.raises(ContractError, match="work_max"):
        manager.request_resources(request)


def test_q_job_refuses_before_the_run_and_names_what_to_change() -> None:
    deep = (
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[12];\ncreg c[12];\n'
        "measure q[0] -> c[0];\nif (c==1) x q[1];\n"
        + "ry(0.3) q;\ncx q[0],q[1];\n" * 20
        + "measure q -> c;\n"
    )
    start = time.process_time()
    with pytest.raises(XdvError) as caught:
        q_job(deep, name="deep.qasm", shots=1000)
    assert time.process_time() - start < 2.0
    error = caught.value
    assert error.code.name == "INPUT_LIMIT_EXCEEDED" and error.where == "deep.qasm"
    assert (
        "qasm_work_max" in error.message and "acts on a qubit after measuring it" in error.message
    )
    assert "measure each qubit only at the end" in error.message
    q_job(deep, name="deep.qasm", shots=10)  # within the bound
