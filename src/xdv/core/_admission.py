"""The admission queue: reservations of scarce resources that wait instead of failing.

A ``Reserve(..., wait=True)`` (or with a ``deadline``) that the domain cannot meet now, because
other contracts hold what it asks for (RESOURCE_EXHAUSTED, or a Φ window conflict), is not
refused: the process blocks and its request joins its domain's admission queue, ordered by the
scheduler policy's key (ADMISSION_WAIT). When a contract of that domain is released the queue
is scanned in policy order and every request the domain can now meet is granted
(ADMISSION_GRANT, then the usual RESOURCE_RESERVE), up to ``backfill`` requests that still do
not fit past the head. Once the head has waited ``patience`` steps nothing overtakes it any
more (no backfill, and new requests queue behind it), so a large request is not starved by a
stream of small ones. A request still waiting at its deadline fails with ADMISSION_TIMEOUT
(ADMISSION_TIMEOUT entry); one whose process ends while waiting is withdrawn
(ADMISSION_CANCEL); one still waiting when the run ends is reported as a deadlock.

A waiting process that its parent suspends keeps its place in the queue but is not granted
anything while suspended (a suspended process acquires nothing, and a grant would hold the
resource for a process that cannot use it); it is passed over without counting against the
backfill limit, and a suspended head does not make new requests queue behind it. Its resumption
retries the grant at once. Its deadline still runs: a deadline is a logical time, so a request
whose deadline passes while its process is suspended fails with ADMISSION_TIMEOUT, which the
process sees once resumed.

Conflicts between contracts (XDV-023 §6) are resolved in this order: capability checked at the
call (and again at the grant), the domain's own answer, a resolution the domain offers when the
request allows one (``resolve=True``: CONFLICT_RESOLVED), then deferral here in policy order,
and only then refusal.

The scheduler policy may also place a reservation (the Q ``fidelity`` policy chooses the
calibration profile and qubit mapping): its decision is recorded as PLACEMENT.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xdv.core._authorization import CapabilityCheck
from xdv.core._capability import Capability, Operation
from xdv.core._clock import LogicalClock
from xdv.core._contracts import ContractBook
from xdv.core._domains import DomainTable
from xdv.core._interface import ResourceContract, ResourceRequest
from xdv.core._lifecycle import ProcessState
from xdv.core._policy import SchedulerPolicy, vhm_of
from xdv.core._process import _Process
from xdv.core._process_table import ProcessTable
from xdv.core._recorder import Recorder
from xdv.errors import ErrorCode, InvariantViolation, ResourceError, XdvError
from xdv.trace import Domain, EventType

__all__ = ["SHORTAGES", "AdmissionQueue", "PlacementContext"]

# The refusals that mean "held by other contracts now", which waiting can cure.
SHORTAGES = frozenset({ErrorCode.RESOURCE_EXHAUSTED, ErrorCode.PHI_ERR_WINDOW_CONFLICT})


@dataclass(slots=True, eq=False)
class _Waiting:
    """One waiting reservation."""

    process: _Process
    domain: Domain
    resource: str
    amount: int
    duration: int | None
    terms: Mapping[str, Any] | None
    resolve: bool
    deadline: int | None
    since: int
    ticket: int
    state: str = "waiting"  # waiting, granted, expired, cancelled, failed
    reason: str = field(default="")


class _Deadline:
    """A ready-queue item: the deadline of one waiting reservation (see ProcessTable.push_timer)."""

    __slots__ = ("queued", "waiting")
    state = None

    def __init__(self, waiting: _Waiting) -> None:
        self.waiting = waiting
        self.queued = True


@dataclass(frozen=True, slots=True)
class PlacementContext:
    """What a placement policy may look at: the domain's manager, the logical time, the live
    contracts of the domain and the reservations waiting for it (read-only)."""

    manager: Any
    now: int
    live: tuple[ResourceContract, ...]
    waiting: tuple[tuple[int, Mapping[str, Any]], ...]  # (amount, terms) in policy order


class AdmissionQueue:
    """Waiting reservations, per domain, in policy order (see the module docstring).

    Invariants: a process has at most one waiting request (``process.admission``); a request
    is in exactly one state; every granted request produced exactly one contract.
    """

    def __init__(
        self,
        *,
        recorder: Recorder,
        clock: LogicalClock,
        table: ProcessTable,
        contracts: ContractBook,
        domains: DomainTable,
        capabilities: CapabilityCheck,
        policy: SchedulerPolicy,
        patience: int = 256,
        backfill: int = 16,
    ) -> None:
        self._recorder = recorder
        self._record = recorder.record
        self._clock = clock
        self._table = table
        self._contracts = contracts
        self._domains = domains
        self._capabilities = capabilities
        self.policy = policy
        self.patience = patience
        self.backfill = backfill
        self._place = getattr(policy, "place", None)
        # Policies whose order of waiting requests changes while they wait (fair share) rank
        # them afresh at every decision; see grant().
        self._rank = getattr(policy, "rank", None)
        self._hold = getattr(policy, "hold", None)
        self._precharged: dict[int, tuple[float, bool]] = {}
        self.queues: dict[Domain, list[tuple[Any, ...]]] = {}
        self._tickets = 0
        self.granted = 0
        self.expired = 0
        table.admission = self
        contracts.on_release = self.released

    # ------------------------------------------------------------------ reserving

    def must_queue(self, domain: Domain) -> bool:
        """Whether a new waiting request must queue behind the domain's head (which has waited
        ``patience`` steps) instead of trying first."""
        head = self.head(domain)
        return (
            head is not None
            and head.process.state is not ProcessState.SUSPENDED
            and self._clock.now - head.since >= self.patience
        )

    def head(self, domain: Domain) -> _Waiting | None:
        """The first waiting request of ``domain`` in policy order, or None."""
        heap = self.queues.get(domain)
        while heap:
            waiting: _Waiting = heap[0][-1]
            if waiting.state == "waiting":
                return waiting
            heapq.heappop(heap)
        return None

    def reserve_now(
        self,
        process: _Process,
        domain: Domain,
        resource: str,
        amount: int,
        duration: int | None,
        terms: Mapping[str, Any] | None,
        resolve: bool,
        capability: Capability,
    ) -> ResourceContract:
        """Reserve now, through the policy's placement and the domain's conflict resolution;
        raise the domain's refusal if neither makes it fit. Records PLACEMENT and
        CONFLICT_RESOLVED (RESOURCE_RESERVE is the caller's)."""
        placement: dict[str, Any] | None = None
        if self._place is not None and amount >= 1:
            context = PlacementContext(
                self._domains.manager(domain),
                self._clock.now,
                self._live(domain),
                self._waiting_terms(domain, process),
            )
            terms, placement = self._place(domain, amount, terms or {}, context)
        reserve = self._contracts.reserve
        try:
            contract = reserve(process, domain, resource, amount, duration, capability, terms=terms)
        except XdvError as error:
            if not resolve or error.code not in SHORTAGES:
                raise
            manager = self._domains.manager(domain)
            resolver = getattr(manager, "resolve_conflict", None)
            if resolver is None:
                raise
            resolved = resolver(resource, amount, dict(terms or {}), self._clock.now)
            if resolved is None:
                raise
            contract = reserve(
                process, domain, resource, amount, duration, capability, terms=resolved
            )
            self._record(
                EventType.CONFLICT_RESOLVED,
                domain,
                process.pid,
                status=error.code,
                meta={"conflict": error.message, "asked": dict(terms or {}), "granted": resolved},
            )
        if placement is not None:
            self._record(
                EventType.PLACEMENT, domain, process.pid, contract=contract.id, meta=placement
            )
        if self._hold is not None and domain is not Domain.K:
            self._precharge(process, contract, duration, terms)
        return contract

    def _precharge(
        self,
        process: _Process,
        contract: ResourceContract,
        duration: int | None,
        terms: Mapping[str, Any] | None,
    ) -> None:
        """Charge a fair-share policy for a grant now, so a VHM cannot take more while its use
        is unaccounted: the domain's own usage figure when it states one (Φ window steps, Q
        qubit-time of a bounded contract), which is final, else amount x the expected hold,
        settled at release (released())."""
        request = ResourceRequest(
            process.pid,
            contract.domain,
            contract.resource,
            contract.amount,
            duration,
            contract.issued_at,
            dict(terms or {}),
        )
        usage = self._domains.usage(request)
        stated = usage.get("window_steps") or usage.get("qubit_time")
        if isinstance(stated, int) and stated > 0:
            estimate, final = float(stated), True
        else:
            estimate, final = float(contract.amount * (duration or self._hold or 1)), False
        self._precharged[contract.id] = (estimate, final)
        self.policy.charge(vhm_of(process), contract.domain, estimate)

    def _live(self, domain: Domain) -> tuple[ResourceContract, ...]:
        return tuple(
            contract
            for pid, process in sorted(self._table.processes.items())
            for _, contract in sorted(process.contracts.items())
            if contract.domain is domain
        )

    def _waiting_terms(
        self, domain: Domain, exclude: _Process
    ) -> tuple[tuple[int, Mapping[str, Any]], ...]:
        heap = self.queues.get(domain) or []
        ordered = sorted(heap, key=lambda item: item[:-1])
        return tuple(
            (item[-1].amount, item[-1].terms or {})
            for item in ordered
            if item[-1].state == "waiting" and item[-1].process is not exclude
        )

    # ------------------------------------------------------------------ waiting

    def wait(
        self,
        process: _Process,
        domain: Domain,
        resource: str,
        amount: int,
        duration: int | None,
        terms: Mapping[str, Any] | None,
        resolve: bool,
        deadline: int | None,
        reason: str,
    ) -> None:
        """Block ``process`` until its request is granted, times out, or it ends."""
        if process.admission is not None:
            raise InvariantViolation(f"process {process.pid} waits for one admission at most")
        now = self._clock.now
        self._tickets += 1
        waiting = _Waiting(
            process,
            domain,
            resource,
            amount,
            duration,
            terms,
            resolve,
            deadline,
            now,
            self._tickets,
            reason=reason,
        )
        process.ready_at = now  # the policy keys a waiting request by when it started waiting
        key = self._rank(process) if self._rank is not None else self.policy.key(process, now)
        heapq.heappush(self.queues.setdefault(domain, []), (*key, self._tickets, waiting))
        process.admission = waiting
        meta: dict[str, Any] = {
            "resource": resource,
            "amount": amount,
            "ticket": self._tickets,
            "reason": reason,
        }
        if deadline is not None:
            meta["deadline"] = deadline
        self._record(EventType.ADMISSION_WAIT, domain, process.pid, meta=meta)
        if deadline is not None:
            self._table.push_timer(deadline, _Deadline(waiting), self._tickets)

    def released(self, holder: _Process, contract: ResourceContract, charge: bool) -> None:
        """A contract of ``contract.domain`` was released: charge its use to the holder's VHM
        and grant what now fits, in policy order."""
        domain = contract.domain
        precharged, final = self._precharged.pop(contract.id, (0.0, False))
        if charge:
            held = max(1, self._clock.now - contract.issued_at)
            used = 0.0 if final else float(contract.amount * held) - precharged
            if used:
                self.policy.charge(vhm_of(holder), domain, used)
        elif precharged:
            self.policy.charge(vhm_of(holder), domain, -precharged)
        if self._table.shutting_down:
            return
        heap = self.queues.get(domain)
        if heap:
            self.grant(domain)

    def grant(self, domain: Domain) -> int:
        """Grant the waiting requests of ``domain`` that fit now, in policy order; returns how
        many were granted."""
        heap = self.queues.get(domain)
        if not heap:
            return 0
        now = self._clock.now
        kept: list[tuple[Any, ...]] = []
        failures = 0
        granted = 0
        head = True
        # The smallest amount refused so far, per (resource, terms): a later request for as
        # much or more under the same terms would be refused too, so it is not tried again.
        refused: dict[tuple[str, str], int] = {}
        while heap and failures <= self.backfill:
            item = heapq.heappop(heap)
            waiting: _Waiting = item[-1]
            if waiting.state != "waiting":
                continue
            process = waiting.process
            if process.state is ProcessState.SUSPENDED:
                kept.append(item)  # keeps its place; granted nothing until resumed
                continue
            if self._rank is not None:
                fresh = (*self._rank(process), waiting.ticket, waiting)
                if heap and fresh[:-1] > heap[0][:-1]:
                    heapq.heappush(heap, fresh)  # its rank grew past another's: decide later
                    continue
                item = fresh
            same = (waiting.resource, repr(sorted((waiting.terms or {}).items())))
            if self._place is None and waiting.amount >= refused.get(same, waiting.amount + 1):
                kept.append(item)
                failures += 1
                head = False
                continue
            try:
                capability = self._capabilities.check(
                    process.pid, Operation.ALLOCATE, Domain.K, domain, waiting.resource
                )
                contract = self.reserve_now(
                    process,
                    domain,
                    waiting.resource,
                    waiting.amount,
                    waiting.duration,
                    waiting.terms,
                    waiting.resolve,
                    capability,
                )
            except XdvError as error:
                if error.code in SHORTAGES:
                    kept.append(item)
                    failures += 1
                    refused[same] = min(refused.get(same, waiting.amount), waiting.amount)
                    if head and now - waiting.since >= self.patience:
                        break  # the head has waited long enough: nothing overtakes it now
                    head = False
                    continue
                self._finish(waiting, "failed")
                self._recorder.record(
                    EventType.RESOURCE_RESERVE,
                    domain,
                    process.pid,
                    status=error.code,
                    meta={"error": error.message, "call": "Reserve"},
                )
                process.throw_error = error
                self._table.enqueue(process, now + 1)
                continue
            head = False
            granted += 1
            self._finish(waiting, "granted")
            self._record(
                EventType.ADMISSION_GRANT,
                domain,
                process.pid,
                contract=contract.id,
                meta={"ticket": waiting.ticket, "waited": now - waiting.since},
            )
            self._record(
                EventType.RESOURCE_RESERVE,
                domain,
                process.pid,
                capability=contract.capability,
                contract=contract.id,
                meta=contract.to_record(),
            )
            process.send_value = contract
            self._table.enqueue(process, now + 1)
        for item in kept:
            heapq.heappush(heap, item)
        self.granted += granted
        return granted

    def _finish(self, waiting: _Waiting, state: str) -> None:
        waiting.state = state
        waiting.process.admission = None

    def expire(self, item: _Deadline) -> None:
        """The deadline of a waiting request has come: fail it if it still waits."""
        waiting = item.waiting
        if waiting.state != "waiting":
            return
        process = waiting.process
        self._finish(waiting, "expired")
        self.expired += 1
        now = self._clock.now
        error = ResourceError(
            f"{waiting.amount} {waiting.resource} of {waiting.domain.label} were not admitted "
            f"by the deadline L={waiting.deadline} (waiting since L={waiting.since})",
            code=ErrorCode.ADMISSION_TIMEOUT,
            where=f"process {process.pid}",
        )
        self._record(
            EventType.ADMISSION_TIMEOUT,
            waiting.domain,
            process.pid,
            status=ErrorCode.ADMISSION_TIMEOUT,
            meta={
                "ticket": waiting.ticket,
                "deadline": waiting.deadline,
                "waited": now - waiting.since,
            },
        )
        process.throw_error = error
        self._table.enqueue(process, now + 1)

    def cancel(self, process: _Process) -> None:
        """``process`` ends while waiting: withdraw its request."""
        waiting: _Waiting = process.admission
        self._finish(waiting, "cancelled")
        self._record(
            EventType.ADMISSION_CANCEL,
            waiting.domain,
            process.pid,
            meta={"ticket": waiting.ticket, "waited": self._clock.now - waiting.since},
        )

    # ------------------------------------------------------------------ views

    @staticmethod
    def describe(process: _Process) -> str | None:
        """Why ``process`` is blocked on admission (for the deadlock report), or None."""
        waiting: _Waiting | None = process.admission
        if waiting is None:
            return None
        return (
            f"waiting since L={waiting.since} for admission of {waiting.amount} "
            f"{waiting.resource} of {waiting.domain.label} ({waiting.reason})"
        )

    def waiting(self) -> list[dict[str, Any]]:
        """Every waiting request in policy order, per domain (for snapshots and checks)."""
        found = []
        for domain in sorted(self.queues):
            for item in sorted(self.queues[domain], key=lambda entry: entry[:-1]):
                waiting: _Waiting = item[-1]
                if waiting.state == "waiting":
                    found.append(
                        {
                            "domain": domain.label,
                            "pid": waiting.process.pid,
                            "ticket": waiting.ticket,
                            "amount": waiting.amount,
                            "since": waiting.since,
                            "deadline": waiting.deadline,
                        }
                    )
        return found
