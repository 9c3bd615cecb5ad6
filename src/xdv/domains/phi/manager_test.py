from __future__ import annotations

import copy
import itertools
import pickle
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.core import DomainManager, KDomainManager, Kernel, Operation
from xdv.core._interface import Invocation, ResourceContract, ResourceRequest
from xdv.domains._registry import manager_from_description
from xdv.domains.phi import PhiDomainManager
from xdv.domains.testing import assert_manager_consistent, assert_provider_consistent
from xdv.errors import ErrorCode, InvariantViolation, XdvError
from xdv.runtime import make_kernel
from xdv.security import AttestationVerifier, HybridKeyPair, ProviderRegistry
from xdv.syscalls import Emit, Invoke, Release, Reserve, Sleep
from xdv.trace import Domain, EventType, TraceEntry, read_trace

RING = {"kind": "ising", "n": 6, "J": [[i, (i + 1) % 6, 1.0] for i in range(6)]}
SMALL = {"steps": 200, "replicas": 4}
PROBLEM = {
    "variables": [{"name": "x", "kind": "bool"}, {"name": "n", "kind": "int", "lo": 0, "hi": 9}],
    "constraints": [
        {"op": ">=", "lhs": {"op": "+", "args": [{"var": "x"}, {"var": "n"}]}, "rhs": {"const": 4}}
    ],
}

Anchor = Callable[..., Generator[Any, Any, Any]]


def run(
    *anchors: Anchor, manager: PhiDomainManager | None = None, seed: int = 5
) -> tuple[Any, list[TraceEntry], Kernel]:
    kernel = make_kernel(seed, domains=[KDomainManager(), manager or PhiDomainManager()])
    for anchor in anchors:
        pid = kernel.spawn(anchor, domains=("K", "Φ"))
        kernel.grant(pid, Operation.PROJECT, "Φ", "K")
    result = kernel.run()
    return result, read_trace(result.trace_bytes).entries, kernel


def results(items: list[TraceEntry]) -> list[TraceEntry]:
    return [e for e in items if e.event_type is EventType.DOMAIN_RESULT]


def caught(call: Any) -> Generator[Any, Any, Any]:
    """Run one system call and return the typed error's code name (or the value)."""
    try:
        value = yield call
    except XdvError as error:
        return error.code.name
    return value


@pytest.mark.spec("XDV-061-3.2")
def test_the_phi_manager_implements_the_domain_interface_and_attestation_surface() -> None:
    manager = PhiDomainManager()
    assert isinstance(manager, DomainManager)
    assert_manager_consistent(manager, resource="envelope", operation="solve")
    assert_manager_consistent(PhiDomainManager(), resource="envelope", operation="stability")
    for name, provider in manager.providers().items():
        assert_provider_consistent(provider)
        assert isinstance(provider.provider_id, str) and len(provider.measurement()) == 64
        declaration = provider.declaration()
        assert declaration["transforms"] == sorted(provider.transforms), name
    assert manager.rights("readout") == {"PROJECT"} and manager.rights("shift") == frozenset()
    rebuilt = manager_from_description("Φ", manager.describe())
    assert isinstance(rebuilt, PhiDomainManager) and rebuilt.describe() == manager.describe()


@pytest.mark.spec("XDV-081-5.3")
@pytest.mark.spec("XDV-023-4.2")
@pytest.mark.spec("XDV-023-4.4")
@pytest.mark.spec("XDV-061-4.2")
def test_a_reservation_grants_a_coherence_window_contract() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 20})
        yield Emit(dict(contract.terms))

    _, items, kernel = run(anchor)
    terms = kernel.outputs[0][1]
    assert terms["provider"] == "phase-oscillator" and terms["envelope"] == 1
    assert terms["window"]["duration"] == 20
    assert terms["window"]["end"] == terms["window"]["start"] + 20
    assert terms["tolerance"] == 0.5 and not terms["share"]
    assert len(terms["measurement"]) == 64 and "anneal" in terms["transforms"]
    reserve = next(e for e in items if e.event_type is EventType.RESOURCE_RESERVE)
    assert reserve.metadata["terms"] == terms


@pytest.mark.spec("XDV-023-4.3")
@pytest.mark.spec("XDV-061-4.3")
def test_windows_on_one_provider_never_overlap_without_a_sharing_contract() -> None:
    manager = PhiDomainManager()
    manager.init(1)
    manager.init(2)

    def reserve(pid: int, **terms: Any) -> Any:
        return manager.request_resources(
            ResourceRequest(pid, Domain.PHI, "envelope", 1, None, 10, terms)
        ).detail

    first = reserve(1, provider="phase", window=10)
    assert first["window"] == {"start": 10, "duration": 10, "end": 20}
    second = reserve(2, provider="phase", window=5)  # placed after the first, deterministically
    assert second["window"] == {"start": 20, "duration": 5, "end": 25}
    with pytest.raises(XdvError) as conflict:
        reserve(2, provider="phase", window=5, start=12)
    assert conflict.value.code is ErrorCode.PHI_ERR_WINDOW_CONFLICT
    shared_a = reserve(1, provider="phase", window=5, start=30, share=True)
    shared_b = reserve(2, provider="phase", window=5, start=31, share=True)
    assert shared_a["window"]["start"] == 30 and shared_b["window"]["start"] == 31
    exact = [reserve(pid, provider="exact") for pid in (1, 2)]  # exact windows share by default
    assert exact[0]["window"]["start"] == exact[1]["window"]["start"] == 10
    with pytest.raises(XdvError) as bad:
        reserve(1, provider="phase", tolerance=0)
    assert bad.value.code is ErrorCode.CONTRACT_INVALID


@pytest.mark.spec("XDV-081-5.3")
@pytest.mark.spec("XDV-061-5.2")
@pytest.mark.spec("XDV-061-5.3")
@pytest.mark.spec("XDV-061-6.2")
@pytest.mark.spec("XDV-013-6.1")
def test_every_transform_returns_a_structured_result_with_a_stability_report() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 40})
        yield Invoke(contract, "load", (RING, {"replicas": 3}))
        yield Invoke(contract, "shift", (0.3, [0, 2]))
        yield Invoke(contract, "couple", (50, 1.0))
        yield Invoke(contract, "lock", (200, 2.0))
        readout = yield Invoke(contract, "readout")
        yield Emit(readout)

    outcome, items, kernel = run(anchor)
    assert outcome.ok
    readout = kernel.outputs[0][1]
    assert sorted(readout["transform"]) == ["L", "flow", "id", "op", "status"]
    assert readout["transform"]["flow"] == [
        "capability",
        "contract",
        "compatibility",
        "logged",
        "execute",
        "monitor",
        "verify",
        "witness",
        "result",
    ]
    spins = np.array(readout["spins"])
    assert set(spins.tolist()) <= {-1, 1} and len(spins) == 6
    ring_energy = float(sum(spins[i] * spins[(i + 1) % 6] for i in range(6)))
    assert readout["energy"] == ring_energy
    report = readout["stability"]
    assert {"stability", "noise_index", "checksum", "L", "envelope", "drift"} <= set(report)
    assert 0 <= report["noise_index"] < 0.1 and report["stability"] > 0.5
    for entry in results(items):  # every transform carries its stability report
        assert entry.status == 0 and "stability" in entry.metadata["value"]


def test_annealing_a_frustration_free_ring_finds_its_ground_state() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase"})
        result = yield Invoke(contract, "anneal", (RING, SMALL))
        yield Emit(result["energy"])

    _, _, kernel = run(anchor)
    assert kernel.outputs[0][1] == -6.0


@pytest.mark.spec("XDV-081-5.3")
@pytest.mark.spec("XDV-081-12")
@pytest.mark.spec("XDV-033-4.1")
@pytest.mark.spec("XDV-061-4.3")
@pytest.mark.spec("XDV-004-6.1")
def test_a_transform_outside_the_window_is_rejected_and_invalidates_the_envelope() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 5})
        first = yield from caught(Invoke(contract, "load", (RING,)))
        yield Sleep(10)
        late = yield from caught(Invoke(contract, "shift", (0.1,)))
        again = yield from caught(Invoke(contract, "shift", (0.1,)))
        yield Emit([first["transform"]["status"], late, again])
        yield Release(contract)
        fresh = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 5})
        yield Emit(fresh.terms["window"]["start"])

    _, items, kernel = run(anchor)
    assert kernel.outputs[0][1] == [
        "OK",
        "PHI_ERR_COHERENCE_TIMEOUT",
        "PHI_ERR_ENVELOPE_INVALID",
    ]
    failed = [e for e in results(items) if e.status == ErrorCode.PHI_ERR_COHERENCE_TIMEOUT]
    assert len(failed) == 1 and "outside" in failed[0].metadata["error"]
    assert kernel.outputs[1][1] > 10


@pytest.mark.spec("XDV-061-4.3")
def test_a_transform_before_the_window_opens_is_rejected() -> None:
    def holder() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 50})
        yield Sleep(60)
        yield Release(contract)

    def early() -> Generator[Any, Any, Any]:
        yield Sleep(1)
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 5})
        code = yield from caught(Invoke(contract, "load", (RING,)))
        yield Emit([contract.terms["window"]["start"], code])

    _, _, kernel = run(holder, early)
    start, code = kernel.outputs[0][1]
    assert start >= 50 and code == "PHI_ERR_COHERENCE_TIMEOUT"


def breach_workload() -> Generator[Any, Any, Any]:
    contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 40})
    yield Invoke(contract, "load", (RING, {"replicas": 2}))
    yield Invoke(contract, "lock", (100, 2.0))
    code = yield from caught(Invoke(contract, "readout"))
    after = yield from caught(Invoke(contract, "stability"))
    yield Emit([code, after])
    yield Release(contract)


@pytest.mark.spec("XDV-033-4.2")
@pytest.mark.spec("XDV-061-6.3")
@pytest.mark.spec("XDV-033-6.3")
@pytest.mark.spec("XDV-013-6.3")
def test_an_injected_instability_halts_invalidates_reports_and_releases() -> None:
    _, _, clean_kernel = run(breach_workload)
    assert clean_kernel.outputs[0][1][0]["transform"]["status"] == "OK"

    manager = PhiDomainManager(instability_at=(5,))  # the readout runs over [4, 5]
    _, items, kernel = run(breach_workload, manager=manager)
    code, after = kernel.outputs[0][1]
    assert code == "PHI_ERR_STABILITY_BREACH" and after == "PHI_ERR_ENVELOPE_INVALID"
    failed = [e for e in results(items) if e.status == ErrorCode.PHI_ERR_STABILITY_BREACH]
    assert len(failed) == 1
    assert "value" not in failed[0].metadata  # no partial projection
    assert "invalidated" in failed[0].metadata["error"]
    retired = manager.diagnostics()["retired"][0]
    assert retired["state"] == "invalid"
    assert any(point.get("injected") for point in retired["timeline"])
    assert any(step.get("status") == "breach" for step in retired["history"])
    # The window went back at once: a new reservation may take the same slot.
    fresh = manager.request_resources(
        ResourceRequest(9, Domain.PHI, "envelope", 1, None, 5, {"provider": "phase"})
    )
    assert fresh.detail["window"]["start"] == 5


@pytest.mark.spec("XDV-033-3.2")
@pytest.mark.spec("XDV-061-7")
@pytest.mark.spec("XDV-013-6.2")
def test_envelopes_do_not_alias_across_processes() -> None:
    shared: dict[str, Any] = {}

    def owner() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 30})
        shared["contract"] = contract
        yield Invoke(contract, "load", (RING,))
        yield Sleep(5)

    def intruder() -> Generator[Any, Any, Any]:
        yield Sleep(3)
        code = yield from caught(Invoke(shared["contract"], "readout"))
        yield Emit(code)

    _, _, kernel = run(owner, intruder)
    assert kernel.outputs[0][1] == "CONTRACT_INVALID"  # the kernel refuses a foreign contract

    # Below the kernel, the manager refuses an envelope used under another process's id.
    manager = PhiDomainManager()
    grant = manager.request_resources(
        ResourceRequest(1, Domain.PHI, "envelope", 1, None, 0, {"provider": "phase"})
    )
    contract = ResourceContract(1, 1, Domain.PHI, "envelope", 1, 0, None, 1, grant.detail)
    foreign = Invocation(1, 2, Domain.PHI, contract, "load", (RING,), 0, 1)
    with pytest.raises(XdvError) as aliasing:
        manager.execute(foreign)
    assert aliasing.value.code is ErrorCode.PHI_ERR_ENVELOPE_ALIASING


@pytest.mark.spec("XDV-033-5.1")
def test_mutation_outside_the_contracted_transform_set_is_refused() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve(
            "Φ", "envelope", terms={"provider": "phase", "transforms": ["load", "readout"]}
        )
        yield Invoke(contract, "load", (RING,))
        code = yield from caught(Invoke(contract, "shift", (0.5,)))
        yield Emit(code)

    _, items, kernel = run(anchor)
    assert kernel.outputs[0][1] == "PHI_ERR_UNAUTHORIZED_MUTATION"
    assert any(e.status == ErrorCode.PHI_ERR_UNAUTHORIZED_MUTATION for e in results(items))


@pytest.mark.spec("XDV-081-5.3")
@pytest.mark.spec("XDV-061-8")
@pytest.mark.spec("XDV-033-4.3")
def test_raw_phases_never_leave_the_provider() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase"})
        yield Invoke(contract, "anneal", (RING, SMALL))
        codes = []
        for operation in ("phases", "dump", "clone"):
            codes.append((yield from caught(Invoke(contract, operation))))
        yield Emit(codes)

    _, items, kernel = run(anchor)
    assert kernel.outputs[0][1] == ["PHI_ERR_RAW_PHASE_ACCESS"] * 3
    refused = [e for e in items if e.status == ErrorCode.PHI_ERR_RAW_PHASE_ACCESS]
    assert len(refused) == 3  # each refusal is traced
    manager = PhiDomainManager()
    for target in (manager, manager.phase):
        with pytest.raises(XdvError) as raised:
            pickle.dumps(target)
        assert raised.value.code is ErrorCode.PHI_ERR_RAW_PHASE_ACCESS
        with pytest.raises(XdvError):
            copy.deepcopy(target)
    with pytest.raises(XdvError) as projected:
        manager.project(1, (np.zeros(4),))
    assert projected.value.code is ErrorCode.PHI_ERR_RAW_PHASE_ACCESS
    for entry in items:  # no trace entry carries a phase field
        assert "'phases':" not in repr(entry.metadata)


@pytest.mark.spec("XDV-033-9")
@pytest.mark.spec("XDV-004-6.2")
def test_same_seed_same_results_and_same_trace_bytes() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase"})
        annealed = yield Invoke(contract, "anneal", (RING, SMALL))
        exact = yield Reserve("Φ", "envelope")
        solved = yield Invoke(exact, "solve", (PROBLEM,))
        yield Emit([annealed["stability"]["checksum"], solved["witness"]["digest"]])

    first, _, _ = run(anchor, manager=PhiDomainManager(instability_at=(40,)))
    second, _, _ = run(anchor, manager=PhiDomainManager(instability_at=(40,)))
    assert first.trace_bytes == second.trace_bytes
    other, _, _ = run(anchor, seed=6)
    assert other.trace_bytes != first.trace_bytes


@pytest.mark.spec("XDV-072-4.2")
@pytest.mark.spec("XDV-072-6")
def test_diagnostics_report_a_stability_timeline_drift_and_history() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 30})
        yield Invoke(contract, "load", (RING,))
        yield Invoke(contract, "couple", (100, 1.0))
        yield Invoke(contract, "lock", (100, 2.0))
        report = yield Invoke(contract, "diagnostics")
        yield Emit(report)

    _, _, kernel = run(anchor)
    report = kernel.outputs[0][1]
    ops = [point["op"] for point in report["timeline"]]
    assert ops == ["load", "couple", "lock"]
    drifts = [point["drift"] for point in report["timeline"]]
    assert drifts[0] == 0 and drifts[1] < drifts[2]
    noise = [point["noise_index"] for point in report["timeline"]]
    assert noise == sorted(noise) and noise[-1] > 0
    assert all("impact" in point for point in report["timeline"])
    assert [step["op"] for step in report["history"]] == ops
    assert "'phases':" not in repr(report)


@pytest.mark.spec("XDV-072-4.3")
def test_a_breach_found_by_diagnostics_uses_the_stability_breach_code() -> None:
    manager = PhiDomainManager(instability_at=(5,))
    _, items, _ = run(breach_workload, manager=manager)
    codes = [ErrorCode(e.status).name for e in results(items) if e.status]
    assert codes == ["PHI_ERR_STABILITY_BREACH"]
    # Fault containment released the envelope's contract (XDV-024 §4.3): the next use of its
    # handle is refused by the kernel, with the Φ code for an invalid envelope.
    (refusal,) = [e for e in items if e.event_type is EventType.DOMAIN_INVOKE and e.status]
    assert ErrorCode(refusal.status).name == "PHI_ERR_ENVELOPE_INVALID"


def test_bad_arguments_are_typed_errors_that_name_the_place() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase"})
        codes = []
        for operation, args in (
            ("anneal", ({"kind": "ising", "n": 2, "J": [[0, 5, 1.0]]},)),
            ("anneal", (RING, {"sweeps": 3})),
            ("shift", ("a lot",)),
            ("couple", (0, 1.0)),
            ("solve", (PROBLEM,)),
            ("teleport", ()),
        ):
            codes.append((yield from caught(Invoke(contract, operation, args))))
        bad = yield from caught(Reserve("Φ", "envelope", terms={"provider": "quantum"}))
        yield Emit([*codes, bad])

    _, _, kernel = run(anchor)
    assert kernel.outputs[0][1] == [
        "PHI_ERR_PROBLEM_INVALID",
        "PHI_ERR_PROBLEM_INVALID",
        "PHI_ERR_PROBLEM_INVALID",
        "PHI_ERR_PROBLEM_INVALID",
        "OPERATION_UNSUPPORTED",
        "OPERATION_UNSUPPORTED",
        "CONTRACT_INVALID",
    ]


def test_a_dimod_bqm_is_accepted() -> None:
    dimod = pytest.importorskip("dimod")
    bqm = dimod.BinaryQuadraticModel.from_ising({"a": 0.5}, {("a", "b"): -1.0, ("b", "c"): -1.0})

    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase"})
        result = yield Invoke(contract, "anneal", (bqm, SMALL))
        yield Emit(result["energy"])

    _, _, kernel = run(anchor)
    assert kernel.outputs[0][1] == pytest.approx(dimod.ExactSolver().sample(bqm).first.energy)


@pytest.mark.spec("XDV-061-10.1")
def test_phi_error_codes_are_stable_and_documented() -> None:
    from pathlib import Path

    codes = {code.name: code.value for code in ErrorCode if code.name.startswith("PHI_ERR_")}
    assert codes["PHI_ERR_COHERENCE_TIMEOUT"] == 900 and codes["PHI_ERR_PROVIDER_FAILED"] == 910
    assert codes["PHI_ERR_WITNESS_UNVERIFIABLE"] == 911
    assert sorted(codes.values()) == list(range(900, 912))
    errors = (Path(__file__).resolve().parents[4] / "docs" / "errors.md").read_text()
    for name, value in codes.items():
        assert f"| {value} | {name} |" in errors, name


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 3),  # pid
            st.integers(1, 20),  # window
            st.one_of(st.none(), st.integers(0, 40)),  # explicit start
            st.booleans(),  # share
            st.booleans(),  # release the oldest envelope first
        ),
        max_size=15,
    )
)
@pytest.mark.spec("XDV-023-4.3")
def test_live_windows_never_overlap_without_sharing(
    steps: list[tuple[int, int, int | None, bool, bool]],
) -> None:
    manager = PhiDomainManager()
    contracts: list[ResourceContract] = []
    for index, (pid, window, start, share, release) in enumerate(steps):
        if release and contracts:
            manager.release(contracts.pop(0))
        terms: dict[str, Any] = {"provider": "phase", "window": window, "share": share}
        if start is not None:
            terms["start"] = start
        try:
            grant = manager.request_resources(
                ResourceRequest(pid, Domain.PHI, "envelope", 1, None, 0, terms)
            )
        except XdvError as error:
            assert error.code is ErrorCode.PHI_ERR_WINDOW_CONFLICT and start is not None
            continue
        contracts.append(
            ResourceContract(index, pid, Domain.PHI, "envelope", 1, 0, None, 1, grant.detail)
        )
        live = [c.terms for c in contracts]
        for a, b in itertools.combinations(live, 2):
            overlap = (
                a["window"]["start"] < b["window"]["end"]
                and b["window"]["start"] < a["window"]["end"]
            )
            assert not overlap or (a["share"] and b["share"])


def test_the_kernel_requires_project_for_readouts_but_not_for_transforms() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase"})
        loaded = yield from caught(Invoke(contract, "load", (RING,)))
        readout = yield from caught(Invoke(contract, "readout"))
        yield Emit([loaded["transform"]["status"], readout])

    kernel = make_kernel(1, domains=[KDomainManager(), PhiDomainManager()])
    kernel.spawn(anchor, domains=("K", "Φ"))  # no PROJECT(Φ→K) granted
    kernel.run()
    assert kernel.outputs[0][1] == ["OK", "DOMAIN_UNAUTHORIZED"]


@pytest.mark.spec("XDV-023-4.2")
def test_an_invocation_is_parsed_once_by_prepare_and_execute_uses_the_prepared_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from xdv.domains.phi import ConstraintProblem, IsingProblem

    parses: list[str] = []
    for kind in (ConstraintProblem, IsingProblem):
        real = kind.parse

        def counting(value: Any, _real: Any = real, _name: str = kind.__name__) -> Any:
            parses.append(_name)
            return _real(value)

        monkeypatch.setattr(kind, "parse", staticmethod(counting))

    def anchor() -> Generator[Any, Any, Any]:
        exact = yield Reserve("Φ", "envelope", terms={"window": 50})
        yield Invoke(exact, "solve", (PROBLEM,))
        yield Invoke(exact, "optimize", (RING, {"work_limit": 1}))
        yield Release(exact)
        phase = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 50})
        yield Invoke(phase, "anneal", (RING, SMALL))
        yield Invoke(phase, "load", (RING, {"replicas": 2}))
        yield Release(phase)

    result, _, _ = run(anchor)
    assert result.ok
    assert parses == ["ConstraintProblem", "IsingProblem", "IsingProblem", "IsingProblem"]

    # Below the kernel: execute reads Invocation.parsed, never Invocation.args.
    manager = PhiDomainManager()
    grant = manager.request_resources(
        ResourceRequest(1, Domain.PHI, "envelope", 1, None, 0, {"provider": "phase"})
    )
    contract = ResourceContract(1, 1, Domain.PHI, "envelope", 1, 0, None, 1, grant.detail)
    prepared = manager.prepare("anneal", (RING, SMALL))
    assert prepared.record["problem"]["n"] == 6 and prepared.record["options"] == SMALL
    garbage = Invocation(
        1, 1, Domain.PHI, contract, "anneal", ("no problem",), 3, 1, prepared.parsed
    )
    assert manager.execute(garbage).value["spins"] is not None
    shift = manager.prepare("shift", (0.25, [0, 1]))
    assert dict(shift.record) == {"angle": 0.25, "indices": [0, 1]}
    moved = Invocation(2, 1, Domain.PHI, contract, "shift", ("not an angle",), 3, 2, shift.parsed)
    assert manager.execute(moved).value["transform"]["status"] == "OK"
    with pytest.raises(InvariantViolation):
        manager.execute(Invocation(3, 1, Domain.PHI, contract, "shift", (0.25,), 3, 3))


@pytest.mark.spec("XDV-015-4.2")
@pytest.mark.spec("XDV-034-6.4")
def test_the_node_key_attests_the_embedded_providers_and_the_trace_names_no_key() -> None:
    node_key = HybridKeyPair.from_seed(b"phi node key")
    registry = ProviderRegistry()
    verifier = AttestationVerifier(node_key=node_key, registry=registry)
    manager = PhiDomainManager()

    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope")
        yield Invoke(contract, "solve", (PROBLEM,))

    kernel = make_kernel(2, domains=[KDomainManager(), manager], attestation=verifier)
    pid = kernel.spawn(anchor, domains=("K", "Φ"))
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")
    result = kernel.run()
    assert result.ok and result.trace_bytes is not None
    verdicts = [
        e for e in read_trace(result.trace_bytes).entries if e.event_type is EventType.ATTESTATION
    ]
    assert {v.metadata["provider"] for v in verdicts} == {"exact-cpsat", "phase-oscillator"}
    for provider in manager.providers().values():
        attestation = verifier.attestation(provider.provider_id)
        assert attestation is not None
        # Signed by the node key, over the provider's own (pinned) identity.
        assert attestation.attester == node_key.public
        assert attestation.identity == provider.identity.public
        node_key.public.verify(
            attestation.payload(), attestation.signature, context=b"xdv-attestation"
        )
        assert registry.pinned(provider.provider_id) == provider.identity.public
        for secret in (provider.identity.fingerprint, node_key.public.fingerprint):
            assert secret.encode() not in result.trace_bytes
    for entry in verdicts:
        assert set(entry.metadata) == {"provider", "measurement", "declaration"}
