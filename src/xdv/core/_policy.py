"""Scheduler policies: the order in which ready processes are dispatched and waiting
reservations admitted.

A policy maps a process that has become ready (or that waits for admission) to a sort key; the
kernel dispatches the ready process with the smallest key, and grants waiting reservations in
the same order. Keys must be total and deterministic: they may use only the process's
orchestration data (priority, pid, VHM, deadline, logical times) and the policy's own
accounting, never wall time or randomness. The kernel appends a unique sequence number to every
key, so no two entries ever compare equal and the process itself is never compared.

Policies are plug-ins behind :class:`SchedulerPolicy`; :func:`parse_policy` builds one from a
spec string ``NAME[:key=value,...][+NAME...]`` and :func:`register_policy` adds a new name
(the Q domain registers ``fidelity``). The spec of a composed policy is its parts joined with
``+``: the composed key is the parts' keys concatenated left to right (lexicographic order), an
associative, explicitly ordered composition. The canonical spec (:attr:`SchedulerPolicy.spec`)
is recorded in RUN_START and is all a replay needs to rebuild the policy.

Policies here: ``round-robin`` (the default), ``priority`` (strict priority with aging),
``fair-share`` (weighted fair share across VHMs over K, Q and Φ: start-time fair queueing on a
per-VHM weighted virtual time) and ``edf`` (earliest deadline first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from xdv.core._process import _Process
from xdv.errors import ErrorCode, XdvError
from xdv.trace import Domain

__all__ = [
    "ComposedPolicy",
    "EarliestDeadlinePolicy",
    "FairSharePolicy",
    "PlacementPolicy",
    "PriorityPolicy",
    "RoundRobinPolicy",
    "SchedulerPolicy",
    "parse_policy",
    "policy_names",
    "register_policy",
    "vhm_of",
]

WeightLookup = Callable[[int], int]
PolicyFactory = Callable[[Mapping[str, str]], "SchedulerPolicy"]


def _where(name: str) -> str:
    return f"scheduler policy {name}"


def _invalid(name: str, message: str) -> XdvError:
    return XdvError(message, code=ErrorCode.POLICY_INVALID, where=_where(name))


def _int_param(name: str, params: Mapping[str, str], key: str, default: int, low: int) -> int:
    text = params.get(key)
    if text is None:
        return default
    try:
        value = int(text, 10)
    except ValueError:
        raise _invalid(name, f"{key} must be an integer, got {text!r}") from None
    if not low <= value <= 2**40:
        raise _invalid(name, f"{key} must be in [{low}, 2**40], got {value}")
    return value


def _no_params(name: str, params: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise _invalid(
            name,
            f"unknown parameters {unknown} (known: {', '.join(allowed) or 'none'})",
        )


def _spec(name: str, params: Mapping[str, Any]) -> str:
    if not params:
        return name
    return name + ":" + ",".join(f"{key}={value}" for key, value in sorted(params.items()))


def vhm_of(process: _Process) -> int:
    """The VHM a process belongs to (its own field once VHMs exist, else its info's)."""
    vhm = getattr(process, "vhm", None)
    return int(vhm) if isinstance(vhm, int) else process.info.vhm


@runtime_checkable
class SchedulerPolicy(Protocol):
    """Orders ready processes and waiting reservations.

    ``name`` and ``spec`` (the name with canonical parameters) are recorded in RUN_START;
    :meth:`key` is called once each time a process becomes ready (``process.ready_at`` is set)
    or starts waiting for admission. A policy must be deterministic and must not change any
    kernel state: its only side effects are on its own accounting (:meth:`charge`).
    """

    name: str

    @property
    def spec(self) -> str:
        """The canonical spec string that :func:`parse_policy` turns back into this policy."""
        ...

    def key(self, process: _Process, now: int) -> tuple[Any, ...]:
        """Sort key of ``process`` (smaller runs first); ``now`` is the current logical time."""
        ...

    def charge(self, vhm: int, domain: Domain, units: float) -> None:
        """Account ``units`` of normalized resource use of ``domain`` to ``vhm``."""
        ...

    def attach(self, weight: WeightLookup) -> None:
        """Receive the kernel's VHM weight lookup (called once, before the run)."""
        ...

    def dispatched(self, process: _Process) -> None:
        """``process`` was taken from the ready queue to run (policies that keep a virtual
        time advance it here)."""
        ...

    def starvation_bound(self, processes: int, quantum: int, priority_span: int) -> int | None:
        """Logical steps within which a ready process is dispatched, or None if unbounded."""
        ...


class _Base:
    """Shared no-op hooks."""

    name = "base"

    def charge(self, vhm: int, domain: Domain, units: float) -> None:
        return None

    def attach(self, weight: WeightLookup) -> None:
        return None

    def dispatched(self, process: _Process) -> None:
        return None

    def params(self) -> dict[str, Any]:
        return {}

    @property
    def spec(self) -> str:
        return _spec(self.name, self.params())


class RoundRobinPolicy(_Base):
    """The default: oldest-ready first, then higher priority, then lower pid.

    A process preempted at the end of its time slice becomes ready one step later than the
    step it was preempted at, so every process that was already waiting runs before it again;
    a ready process therefore waits at most (live processes - 1) x quantum steps.
    """

    name = "round-robin"

    def key(self, process: _Process, now: int) -> tuple[Any, ...]:
        return (process.ready_at, -process.priority, process.pid)

    def starvation_bound(self, processes: int, quantum: int, priority_span: int) -> int | None:
        return max(processes - 1, 0) * quantum


class PriorityPolicy(_Base):
    """Strict priority with aging (XDV-012 §4.3: stable priority plus a deterministic aging
    function).

    The key is ``ready-at L - aging x priority``: a process of higher priority starts ``aging``
    steps ahead per priority level, and since every key is fixed when the process becomes
    ready, a process of lower priority is overtaken only by processes that became ready less
    than ``aging x (priority difference)`` steps after it. Its wait is therefore bounded by
    ``aging x priority span + (live processes - 1) x quantum`` steps. ``aging=0`` turns aging
    off: pure strict priority, where a low-priority process may wait without bound (a
    policy-defined starvation, XDV-012 §9.5).
    """

    name = "priority"

    def __init__(self, aging: int = 64) -> None:
        self.aging = aging

    def params(self) -> dict[str, Any]:
        return {"aging": self.aging}

    def key(self, process: _Process, now: int) -> tuple[Any, ...]:
        if self.aging == 0:
            return (-process.priority, process.ready_at, process.pid)
        return (process.ready_at - self.aging * process.priority, process.pid)

    def starvation_bound(self, processes: int, quantum: int, priority_span: int) -> int | None:
        if self.aging == 0:
            return None if priority_span else max(processes - 1, 0) * quantum
        return self.aging * priority_span + max(processes - 1, 0) * quantum


class EarliestDeadlinePolicy(_Base):
    """Earliest deadline first, on deadlines in logical time (``Spawn(..., deadline=L)``).

    A process without a deadline gets the implicit deadline ``ready-at L + horizon``, so it
    competes with deadline work instead of starving behind it. (No fixed bound in steps holds
    for every workload: a process whose own deadline lies far ahead, or an endless stream of
    earlier deadlines, can keep it waiting; that order is what EDF means.) Ties go to the
    earlier ready time, then the lower pid.
    """

    name = "edf"

    def __init__(self, horizon: int = 1024) -> None:
        self.horizon = horizon

    def params(self) -> dict[str, Any]:
        return {"horizon": self.horizon}

    def key(self, process: _Process, now: int) -> tuple[Any, ...]:
        deadline = process.deadline
        if deadline is None:
            deadline = process.ready_at + self.horizon
        return (deadline, process.ready_at, process.pid)

    def starvation_bound(self, processes: int, quantum: int, priority_span: int) -> int | None:
        return None


class FairSharePolicy(_Base):
    """Weighted fair share across VHMs over all three domains.

    Start-time fair queueing on weighted virtual time: each VHM ``v`` has a processor finish tag
    ``F_v`` and the policy a virtual time ``V`` (the start tag of the work in service). A process
    of ``v`` that becomes ready gets the start tag ``S = max(V, F_v)``, and ``F_v`` advances by
    ``1 / weight(v)`` (one time slice). Resource use (:meth:`charge`) accumulates apart, in
    ``U_v``: Q qubit-steps divided by ``q`` (the Q capacity in qubits), Φ window-steps divided by
    ``phi`` (windows at a time), K lane-steps, each in time slices of ``quantum`` steps and
    divided by the weight. The key is ``S + U_v``, so a VHM of weight 2 gets twice the service
    of a VHM of weight 1 when both are backlogged, whatever domain the service is in.

    Dispatch keys are fixed when a process becomes ready, so dispatch costs one heap operation
    (logarithmic in the number of queued items). Waiting reservations are ordered by
    :meth:`rank`, the VHM's current tag, which the admission queue re-reads lazily when it
    decides (tags only grow, so a stored rank is a lower bound). Q and Φ reservations are
    charged when granted, with the contract's duration or ``hold`` steps as the estimate, and
    settled at release against the time actually held.
    """

    name = "fair-share"

    def __init__(self, q: int = 27, phi: int = 1, quantum: int = 8, hold: int = 64) -> None:
        self.q = q
        self.phi = phi
        self.quantum = quantum
        self.hold = hold
        self.virtual = 0.0
        self.finish: dict[int, float] = {}  # processor finish tags, per VHM
        self.used: dict[int, float] = {}  # weighted Q, Φ and lane use, in time slices
        self.started: dict[int, float] = {}
        self._weight: WeightLookup = lambda vhm: 1

    def params(self) -> dict[str, Any]:
        return {"hold": self.hold, "phi": self.phi, "q": self.q, "quantum": self.quantum}

    def attach(self, weight: WeightLookup) -> None:
        self._weight = weight

    def weight(self, vhm: int) -> int:
        weight = self._weight(vhm)
        return weight if type(weight) is int and weight >= 1 else 1

    def key(self, process: _Process, now: int) -> tuple[Any, ...]:
        vhm = vhm_of(process)
        finish = self.finish.get(vhm, 0.0)
        start = finish if finish > self.virtual else self.virtual
        self.finish[vhm] = start + 1.0 / self.weight(vhm)
        self.started[process.pid] = start
        return (start + self.used.get(vhm, 0.0), process.ready_at, process.pid)

    def dispatched(self, process: _Process) -> None:
        # The virtual time is the start tag of the work in service (start-time fair queueing):
        # a VHM that was idle starts again level with the others, with no banked credit.
        start = self.started.pop(process.pid, None)
        if start is not None and start > self.virtual:
            self.virtual = start

    def charge(self, vhm: int, domain: Domain, units: float) -> None:
        if domain is Domain.Q:
            slices = units / (self.q * self.quantum)
        elif domain is Domain.PHI:
            slices = units / (self.phi * self.quantum)
        else:
            slices = units / self.quantum
        # Resource use is kept apart from the processor's tags: catching up with the virtual
        # time when a VHM is idle on the processor must not erase what it holds elsewhere.
        self.used[vhm] = max(0.0, self.used.get(vhm, 0.0) + slices / self.weight(vhm))

    def rank(self, process: _Process) -> tuple[Any, ...]:
        """What ``process``'s VHM has consumed, weighted (its processor tag plus its resource
        use): the admission queue orders waiting requests by it, re-reading it when it
        decides (it only grows while they wait)."""
        vhm = vhm_of(process)
        return (self.finish.get(vhm, 0.0) + self.used.get(vhm, 0.0),)

    def starvation_bound(self, processes: int, quantum: int, priority_span: int) -> int | None:
        return None  # bounded in virtual time (weights), not in a fixed number of steps


class PlacementPolicy(Protocol):
    """A policy that also chooses where a reservation goes (the Q ``fidelity`` policy).

    :meth:`place` returns the terms to reserve with (``terms`` itself to leave them) and a
    record of the decision for the trace, or None when it made none.
    """

    def place(
        self, domain: Domain, amount: int, terms: Mapping[str, Any], context: Any
    ) -> tuple[Mapping[str, Any], dict[str, Any] | None]: ...


class ComposedPolicy(_Base):
    """Parts applied left to right: the key is the parts' keys concatenated (lexicographic),
    so the first part decides and each later part breaks the ties of those before it.
    Composition is associative: ``(a+b)+c`` and ``a+(b+c)`` give the same keys."""

    def __init__(self, parts: list[SchedulerPolicy]) -> None:
        flat: list[SchedulerPolicy] = []
        for part in parts:
            flat.extend(part.parts if isinstance(part, ComposedPolicy) else [part])
        self.parts: list[SchedulerPolicy] = flat
        self.name = "+".join(part.name for part in flat)

    @property
    def spec(self) -> str:
        return "+".join(part.spec for part in self.parts)

    def key(self, process: _Process, now: int) -> tuple[Any, ...]:
        key: tuple[Any, ...] = ()
        for part in self.parts:
            key += part.key(process, now)
        return key

    def charge(self, vhm: int, domain: Domain, units: float) -> None:
        for part in self.parts:
            part.charge(vhm, domain, units)

    def attach(self, weight: WeightLookup) -> None:
        for part in self.parts:
            part.attach(weight)

    def dispatched(self, process: _Process) -> None:
        for part in self.parts:
            part.dispatched(process)

    def place(
        self, domain: Domain, amount: int, terms: Mapping[str, Any], context: Any
    ) -> tuple[Mapping[str, Any], dict[str, Any] | None]:
        for part in self.parts:
            place = getattr(part, "place", None)
            if place is not None:
                placed: tuple[Mapping[str, Any], dict[str, Any] | None] = place(
                    domain, amount, terms, context
                )
                return placed
        return terms, None

    def starvation_bound(self, processes: int, quantum: int, priority_span: int) -> int | None:
        return self.parts[0].starvation_bound(processes, quantum, priority_span)


def _round_robin(params: Mapping[str, str]) -> SchedulerPolicy:
    _no_params("round-robin", params, ())
    return RoundRobinPolicy()


def _priority(params: Mapping[str, str]) -> SchedulerPolicy:
    _no_params("priority", params, ("aging",))
    return PriorityPolicy(_int_param("priority", params, "aging", 64, 0))


def _edf(params: Mapping[str, str]) -> SchedulerPolicy:
    _no_params("edf", params, ("horizon",))
    return EarliestDeadlinePolicy(_int_param("edf", params, "horizon", 1024, 1))


def _fair_share(params: Mapping[str, str]) -> SchedulerPolicy:
    _no_params("fair-share", params, ("q", "phi", "quantum", "hold"))
    return FairSharePolicy(
        q=_int_param("fair-share", params, "q", 27, 1),
        phi=_int_param("fair-share", params, "phi", 1, 1),
        quantum=_int_param("fair-share", params, "quantum", 8, 1),
        hold=_int_param("fair-share", params, "hold", 64, 1),
    )


_FACTORIES: dict[str, PolicyFactory] = {
    "round-robin": _round_robin,
    "priority": _priority,
    "edf": _edf,
    "fair-share": _fair_share,
}


def register_policy(name: str, factory: PolicyFactory) -> None:
    """Make ``name`` usable in policy specs (``factory`` gets the parsed parameters)."""
    _FACTORIES[name] = factory


def policy_names() -> tuple[str, ...]:
    """The registered policy names, sorted."""
    return tuple(sorted(_FACTORIES))


def parse_policy(spec: str) -> SchedulerPolicy:
    """Build the policy ``spec`` names: ``NAME[:key=value,...]``, parts joined with ``+``.

    Unknown names, unknown or malformed parameters are refused with POLICY_INVALID. The
    result's :attr:`~SchedulerPolicy.spec` is canonical (parameters sorted, defaults filled).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise _invalid("?", f"a policy spec is a non-empty string, got {spec!r}")
    if len(spec) > 1024:
        raise _invalid("?", f"a policy spec is at most 1024 characters, got {len(spec)}")
    parts: list[SchedulerPolicy] = []
    for text in spec.strip().split("+"):
        name, _, rest = text.strip().partition(":")
        factory = _FACTORIES.get(name)
        if factory is None:
            raise _invalid(
                name or "?", f"unknown policy {name!r} (known: {', '.join(policy_names())})"
            )
        params: dict[str, str] = {}
        for item in rest.split(",") if rest else ():
            key, equals, value = item.partition("=")
            if not equals or not key.strip() or key.strip() in params:
                raise _invalid(name, f"parameter {item!r} is not a single key=value")
            params[key.strip()] = value.strip()
        parts.append(factory(params))
    if len(parts) == 1:
        return parts[0]
    return ComposedPolicy(parts)
