"""The fidelity-aware Q placement policy (``--policy fidelity``).

In the spirit of QOS (OSDI '25) and Qonductor: where a Q reservation goes (which calibration
profile, which physical qubits) is a trade between the estimated fidelity of the work it will
run and how long it will wait for those qubits. For each candidate profile the policy finds the
best *chain* of physical qubits (a path on the device's coupling map, scored with the profile's
real calibration data: single-qubit gate and readout errors of each qubit, the two-qubit gate
error of each coupled pair, and decoherence over the chain's GHZ-like duration) twice: among
the qubits free now, and among all the device's qubits. The latter may be held by other
contracts; its wait is estimated from their issue times and the expected hold ``hold`` (or
their expiry). Every option is scored ``log(fidelity) - wait_cost x estimated wait`` and the
best wins (ties: profile name, then mapping). Choosing a held chain makes the reservation wait
in the admission queue (with ``wait=True``) for higher fidelity; it is placed again at every
retry, so it takes the free chain once waiting no longer pays.

Dispatch order is round-robin's. Reservations whose terms already fix both ``calibration`` and
``mapping`` are left alone. Everything here is a deterministic function of the calibration
data, the live contracts and logical time; the decision is recorded as PLACEMENT.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from xdv.core import PlacementContext, ResourceContract, register_policy
from xdv.domains.q._calibration import CalibrationProfile, load_profile
from xdv.errors import ErrorCode, XdvError
from xdv.trace import Domain

__all__ = ["FidelityPlacementPolicy", "chain_log_fidelity", "circuit_placement"]


def _node(profile: CalibrationProfile, qubit: int) -> float:
    calibration = profile.qubits[qubit]
    return math.log1p(-min(calibration.gate_error, 0.999)) + math.log1p(
        -min(calibration.readout_error, 0.999)
    )


def _edge(profile: CalibrationProfile, a: int, b: int) -> float:
    error, _ = profile.pair(a, b)
    return math.log1p(-min(error, 0.999))


def chain_log_fidelity(profile: CalibrationProfile, chain: Sequence[int]) -> float:
    """Log of the estimated success probability of a GHZ-like job on ``chain``: a gate and a
    readout per qubit, a two-qubit gate per consecutive pair, and each qubit decaying over the
    whole (sequential) duration at its T2 rate."""
    total = sum(_node(profile, q) for q in chain)
    duration = 0.0
    for a, b in itertools.pairwise(chain):
        total += _edge(profile, a, b)
        duration += profile.pair(a, b)[1]
    if chain:
        duration += max(profile.qubits[q].gate_ns for q in chain)
        duration += max(profile.qubits[q].readout_ns for q in chain)
    for q in chain:
        total -= duration / profile.qubits[q].t2_ns
    return total


@cache
def _neighbours(profile: CalibrationProfile) -> tuple[tuple[int, ...], ...]:
    adjacent: list[set[int]] = [set() for _ in range(profile.size)]
    for a, b in profile.pairs:
        if a != b and 0 <= a < profile.size and 0 <= b < profile.size:
            adjacent[a].add(b)
            adjacent[b].add(a)
    return tuple(tuple(sorted(found)) for found in adjacent)


def best_chain(
    profile: CalibrationProfile, amount: int, allowed: Iterable[int]
) -> tuple[float, tuple[int, ...]] | None:
    """The best chain of ``amount`` qubits among ``allowed`` (greedy from every start qubit,
    then the best whole chain; ties go to the lower qubit numbers), or the best ``amount``
    qubits by their own errors when no such chain exists; None if fewer are allowed."""
    free = sorted(set(allowed))
    if len(free) < amount:
        return None
    usable = set(free)
    neighbours = _neighbours(profile)
    best: tuple[float, tuple[int, ...]] | None = None
    for start in free:
        chain = [start]
        used = {start}
        while len(chain) < amount:
            tail = chain[-1]
            options = [
                (_edge(profile, tail, b) + _node(profile, b), -b, b)
                for b in neighbours[tail]
                if b in usable and b not in used
            ]
            if not options:
                break
            _, _, chosen = max(options)
            chain.append(chosen)
            used.add(chosen)
        if len(chain) < amount:
            continue
        score = chain_log_fidelity(profile, chain)
        candidate = (score, tuple(chain))
        if best is None or score > best[0] or (score == best[0] and candidate[1] < best[1]):
            best = candidate
    if best is not None:
        return best
    ranked = sorted(free, key=lambda q: (-_node(profile, q), q))[:amount]
    return chain_log_fidelity(profile, ranked), tuple(ranked)


class FidelityPlacementPolicy:
    """Fidelity-aware Q placement (see the module docstring); parameters ``profiles``
    (candidate calibration profiles joined with ``/``; default: the Q manager's default),
    ``wait_cost`` (log-fidelity given up per logical step of estimated wait) and ``hold``
    (expected steps a Q contract is held)."""

    name = "fidelity"

    def __init__(
        self, profiles: tuple[str, ...] = (), wait_cost: float = 0.002, hold: int = 64
    ) -> None:
        for profile in profiles:
            load_profile(profile)  # refuses an unknown profile now, not at the first Reserve
        self.profiles = profiles
        self.wait_cost = wait_cost
        self.hold = hold
        self.placements = 0

    @property
    def spec(self) -> str:
        params = [f"hold={self.hold}"]
        if self.profiles:
            params.append("profiles=" + "/".join(self.profiles))
        params.append(f"wait_cost={self.wait_cost!r}")
        return "fidelity:" + ",".join(params)

    def key(self, process: Any, now: int) -> tuple[Any, ...]:
        return (process.ready_at, -process.priority, process.pid)

    def charge(self, vhm: int, domain: Domain, units: float) -> None:
        return None

    def attach(self, weight: Any) -> None:
        return None

    def dispatched(self, process: Any) -> None:
        return None

    def starvation_bound(self, processes: int, quantum: int, priority_span: int) -> int | None:
        return max(processes - 1, 0) * quantum

    # ------------------------------------------------------------------ placement

    def _remaining(self, contract: ResourceContract, now: int) -> int:
        if contract.expires_at is not None:
            return max(0, contract.expires_at - now)
        return max(1, contract.issued_at + self.hold - now)

    def place(
        self, domain: Domain, amount: int, terms: Mapping[str, Any], context: Any
    ) -> tuple[Mapping[str, Any], dict[str, Any] | None]:
        """The terms to reserve with, and the decision record (see the module docstring)."""
        if domain is not Domain.Q or not isinstance(context, PlacementContext):
            return terms, None
        if "mapping" in terms and "calibration" in terms:
            return terms, None
        manager = context.manager
        in_use = getattr(manager, "in_use", None)
        if in_use is None:
            return terms, None
        fixed = terms.get("calibration")
        names = (
            (fixed,)
            if isinstance(fixed, str)
            else self.profiles or (str(getattr(manager, "default_calibration", "")),)
        )
        now = context.now
        options: list[tuple[float, str, tuple[int, ...], float, float]] = []
        for name in sorted(set(names)):
            profile = load_profile(name)
            taken = in_use(profile.name)
            holders: list[tuple[frozenset[int], int]] = []
            for contract in context.live:
                calibration = contract.terms.get("calibration")
                mapping = contract.terms.get("mapping")
                if (
                    isinstance(calibration, Mapping)
                    and calibration.get("profile") == profile.name
                    and isinstance(mapping, list)
                ):
                    holders.append((frozenset(mapping), self._remaining(contract, now)))
            # Requests queued ahead on this profile add their expected hold to any wait.
            ahead = sum(
                1
                for _, waiting in context.waiting
                if waiting.get("calibration", names[0]) == profile.name
            )
            queue_wait = ahead * self.hold * amount / max(profile.size, 1)
            free = [q for q in range(profile.size) if q not in taken]
            choices = []
            now_choice = best_chain(profile, amount, free)
            if now_choice is not None:
                choices.append((now_choice, 0.0 if not ahead else queue_wait))
            any_choice = best_chain(profile, amount, range(profile.size))
            if any_choice is not None and (now_choice is None or any_choice[1] != now_choice[1]):
                wanted = set(any_choice[1])
                held_for = max((rest for held, rest in holders if held & wanted), default=0)
                choices.append((any_choice, held_for + queue_wait))
            for (chain_fidelity, chain_), chain_wait in choices:
                score = chain_fidelity - self.wait_cost * chain_wait
                options.append((score, profile.name, chain_, chain_fidelity, chain_wait))
        if not options:
            return terms, None
        score, name, chain, log_fidelity, wait = min(
            options, key=lambda option: (-option[0], option[1], option[2])
        )
        self.placements += 1
        placed = {**terms, "calibration": name, "mapping": list(chain)}
        return placed, {
            "profile": name,
            "mapping": list(chain),
            "fidelity": round(math.exp(log_fidelity), 6),
            "wait": round(wait, 3),
            "options": len(options),
        }


def _fidelity(params: Mapping[str, str]) -> FidelityPlacementPolicy:
    unknown = sorted(set(params) - {"profiles", "wait_cost", "hold"})
    where = "scheduler policy fidelity"
    if unknown:
        raise XdvError(
            f"unknown parameters {unknown} (known: hold, profiles, wait_cost)",
            code=ErrorCode.POLICY_INVALID,
            where=where,
        )
    profiles = tuple(p for p in params.get("profiles", "").split("/") if p)
    try:
        wait_cost = float(params.get("wait_cost", "0.002"))
        hold = int(params.get("hold", "64"), 10)
    except ValueError as error:
        raise XdvError(str(error), code=ErrorCode.POLICY_INVALID, where=where) from None
    if not (math.isfinite(wait_cost) and wait_cost >= 0) or not 1 <= hold <= 2**40:
        raise XdvError(
            f"wait_cost must be a finite number >= 0 and hold in [1, 2**40], got "
            f"{wait_cost!r} and {hold}",
            code=ErrorCode.POLICY_INVALID,
            where=where,
        )
    try:
        return FidelityPlacementPolicy(profiles, wait_cost, hold)
    except XdvError as error:
        raise XdvError(error.message, code=ErrorCode.POLICY_INVALID, where=where) from None


register_policy("fidelity", _fidelity)


_TARGETS: dict[str, Any] = {}


def _target(profile: CalibrationProfile) -> Any:
    """A Qiskit transpiler target holding the profile's calibration (gate and readout errors and
    durations, couplings), as a device's own target does: what noise-aware layout reads."""
    found = _TARGETS.get(profile.digest)
    if found is not None:
        return found
    from qiskit.circuit import Measure, Parameter
    from qiskit.circuit.library import CXGate, CZGate, ECRGate, RZGate, SXGate, XGate
    from qiskit.transpiler import InstructionProperties, Target

    target = Target(num_qubits=profile.size)
    single = {"sx": SXGate(), "x": XGate()}
    for name, gate in single.items():
        if name in profile.basis:
            target.add_instruction(
                gate,
                {
                    (q,): InstructionProperties(
                        error=profile.qubits[q].gate_error,
                        duration=profile.qubits[q].gate_ns * 1e-9,
                    )
                    for q in range(profile.size)
                },
            )
    target.add_instruction(
        RZGate(Parameter("θ")),
        {(q,): InstructionProperties(error=0.0) for q in range(profile.size)},
    )
    two = {"ecr": ECRGate(), "cx": CXGate(), "cz": CZGate()}[profile.two_qubit_gate]
    target.add_instruction(
        two,
        {
            (a, b): InstructionProperties(error=error, duration=ns * 1e-9)
            for (a, b), (error, ns) in sorted(profile.pairs.items())
        },
    )
    target.add_instruction(
        Measure(),
        {
            (q,): InstructionProperties(
                error=profile.qubits[q].readout_error, duration=profile.qubits[q].readout_ns * 1e-9
            )
            for q in range(profile.size)
        },
    )
    _TARGETS[profile.digest] = target
    return target


def circuit_placement(profile: CalibrationProfile, circuit: Any) -> tuple[int, ...] | None:
    """The physical qubits a noisy run of ``circuit`` should hold on ``profile``: where Qiskit's
    noise-aware layout (optimization level 1, fixed seed, on a target built from the calibration)
    puts its qubits, in order, then the qubits its routing passes through. None when the circuit
    does not fit or the layout fails (the Q manager then takes the best chain)."""
    from qiskit import transpile

    if circuit.num_qubits < 2 or circuit.num_qubits > profile.size:
        return None
    try:
        compiled = transpile(
            circuit, target=_target(profile), optimization_level=1, seed_transpiler=0
        )
        layout = compiled.layout.initial_index_layout(filter_ancillas=True)
    except Exception:  # no layout: the manager's own placement applies
        return None
    placed = list(layout[: circuit.num_qubits])
    used: set[int] = set()
    for instruction in compiled.data:
        if instruction.operation.num_qubits == 2:
            used.update(compiled.find_bit(qubit).index for qubit in instruction.qubits)
    extra = sorted(used - set(placed))
    return tuple(placed + extra)
