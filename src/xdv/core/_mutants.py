"""The mutation switchboard: known bugs that ``xdv sim --self-test`` plants in the kernel.

A simulator that never fails proves nothing unless it is shown to fail when the kernel is
wrong. Each :class:`Mutant` here is one deliberate, realistic bug (a skipped quota check, a
forgotten release, a message dropped, ...), planted by :func:`mutation` for the duration of a
``with`` block by replacing one method of one kernel collaborator, and removed on exit.
Collaborators bind some methods when a kernel is built, so plant a mutant before building the
kernel it is meant for. Nothing is edited on disk and nothing in the kernel consults the
switchboard, so a run outside a ``with mutation(...)`` block pays nothing for it.

Mutants of layers above the core (the security layer's capability tokens, the domains'
managers, the runtime) are added with :func:`register_mutant` by the layer that owns the
patched code, so the switchboard never imports upward.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from xdv.core import _fault_handler
from xdv.core._authorization import CapabilityCheck
from xdv.core._capability import Operation
from xdv.core._channels import ChannelTable
from xdv.core._contracts import ContractBook
from xdv.core._fault_handler import FaultHandler
from xdv.core._handlers import SystemCalls
from xdv.core._invoker import Invoker
from xdv.core._k_manager import KDomainManager
from xdv.core._policy import PriorityPolicy
from xdv.core._process_table import ProcessTable
from xdv.core._random import RandomStream
from xdv.core._recorder import Recorder
from xdv.core._vhm import VhmTable
from xdv.errors import ErrorCode, UnauthorizedError, XdvError
from xdv.trace import Domain, EventType

__all__ = ["MUTANTS", "Mutant", "mutation", "register_mutant"]

Patch = tuple[Any, str, Any]  # (owner, attribute name, replacement)


@dataclass(frozen=True)
class Mutant:
    """A planted bug: its name, what it breaks (for people) and the patches that plant it."""

    name: str
    description: str
    patches: Callable[[], list[Patch]]


MUTANTS: dict[str, Mutant] = {}
"""Every registered mutant, by name."""


def register_mutant(name: str, description: str, patches: Callable[[], list[Patch]]) -> None:
    """Register a mutant: ``patches()`` returns (owner, attribute, replacement) triples that
    :func:`mutation` sets for the duration of its block."""
    MUTANTS[name] = Mutant(name, description, patches)


@contextlib.contextmanager
def mutation(name: str) -> Iterator[Mutant]:
    """Plant mutant ``name`` for the duration of the block (INVALID_ARGUMENT if unknown)."""
    mutant = MUTANTS.get(name)
    if mutant is None:
        raise XdvError(
            f"unknown mutant {name!r}; known: {', '.join(sorted(MUTANTS))}",
            code=ErrorCode.INVALID_ARGUMENT,
            where="mutation",
        )
    patches = mutant.patches()
    saved = [(owner, attribute, owner.__dict__[attribute]) for owner, attribute, _ in patches]
    try:
        for owner, attribute, replacement in patches:
            setattr(owner, attribute, replacement)
        yield mutant
    finally:
        for owner, attribute, original in reversed(saved):
            setattr(owner, attribute, original)


# ---------------------------------------------------------------------- the core's mutants


def _skip_quota_check() -> list[Patch]:
    original = KDomainManager.request_resources

    def request_resources(self: KDomainManager, request: Any) -> Any:
        lanes = self.lanes
        self.lanes = 1 << 30  # the free-lane check sees room that is not there
        try:
            return original(self, request)
        finally:
            self.lanes = lanes

    return [(KDomainManager, "request_resources", request_resources)]


def _forget_release() -> list[Patch]:
    def release(self: ContractBook, process: Any, contract: Any, why: str) -> None:
        # The contract leaves the process, but its resources never go back to the manager.
        del process.contracts[contract.id]
        self._record(
            EventType.RESOURCE_RELEASE,
            contract.domain,
            process.pid,
            capability=contract.capability,
            contract=contract.id,
            meta={"reason": why},
        )

    return [(ContractBook, "release", release)]


def _transfer_keeps_copy() -> list[Patch]:
    original = ContractBook.transfer

    def transfer(self: ContractBook, process: Any, owned: Any, target: Any, capability: Any) -> Any:
        moved = original(self, process, owned, target, capability)
        process.contracts[owned.id] = owned  # the sender keeps a live copy
        return moved

    return [(ContractBook, "transfer", transfer)]


def _see_foreign_process() -> list[Patch]:
    def child(self: ProcessTable, process: Any, pid: int) -> Any:
        return self.live(pid)  # no check that the target belongs to the caller

    return [(ProcessTable, "child", child)]


def _widen_capability() -> list[Patch]:
    original = CapabilityCheck.derive

    def derive(
        self: CapabilityCheck,
        presenter: int,
        capability_id: int,
        subject: int,
        scope: Any,
        expires_at: int | None,
    ) -> Any:
        try:
            return original(self, presenter, capability_id, subject, scope, expires_at)
        except UnauthorizedError as error:
            if error.code is not ErrorCode.ATTENUATION_WIDENS or not scope:
                raise
            # Instead of refusing, mint what was asked for.
            wanted = scope[-1]
            return self.grant(
                subject,
                Operation[wanted["op"]],
                Domain.parse(wanted["from"]),
                Domain.parse(wanted["to"]),
            )

    return [(CapabilityCheck, "derive", derive)]


def _keep_capabilities_at_exit() -> list[Patch]:
    def revoke_all(self: CapabilityCheck, pid: int) -> None:
        return None

    return [(CapabilityCheck, "revoke_all", revoke_all)]


def _lose_wakeup() -> list[Patch]:
    original = ProcessTable.terminate

    def terminate(self: ProcessTable, process: Any, status: Any) -> None:
        process.waiters = []  # whoever waits for this process is never woken
        original(self, process, status)

    return [(ProcessTable, "terminate", terminate)]


def _reorder_outputs() -> list[Patch]:
    original = Recorder.record_effect
    held: dict[tuple[int, int], Any] = {}

    def record_effect(self: Recorder, pid: int, value: Any) -> None:
        # Every other emitted value of a process is held back and recorded after the next one.
        key = (id(self), pid)
        if key not in held:
            held[key] = value
            return
        original(self, pid, value)
        original(self, pid, held.pop(key))

    return [(Recorder, "record_effect", record_effect)]


def _clock_backwards() -> list[Patch]:
    original = Recorder.record

    def record(self: Recorder, event_type: EventType, *args: Any, **kwargs: Any) -> int:
        if event_type is EventType.RESOURCE_RELEASE and self.clock.now > 0:
            # The entry is stamped one step in the past.
            self.clock.now -= 1
            try:
                return original(self, event_type, *args, **kwargs)
            finally:
                self.clock.now += 1
        return original(self, event_type, *args, **kwargs)

    return [(Recorder, "record", record)]


def _unseeded_random() -> list[Patch]:
    counter = itertools.count()

    def random(self: SystemCalls, process: Any, call: Any) -> bool:
        # A stream that depends on how many were made before in this interpreter: not on the
        # run's seed alone, so a replay draws other numbers.
        process.send_value = RandomStream(self._seed, ("process", process.pid, next(counter)))
        return True

    return [(SystemCalls, "_random", random)]


def _vhm_skip_quota() -> list[Patch]:
    original = VhmTable.charge

    def charge(self: VhmTable, vhm: Any, *args: Any, **kwargs: Any) -> Any:
        limits = [(member, member.limits) for member in vhm.chain]
        for member, _ in limits:
            member.limits = {}  # every bound looks open
        try:
            return original(self, vhm, *args, **kwargs)
        finally:
            for member, bounds in limits:
                member.limits = bounds

    return [(VhmTable, "charge", charge)]


def _vhm_forget_refund() -> list[Patch]:
    def refund(self: VhmTable, vhm: Any, *args: Any, **kwargs: Any) -> None:
        return None

    return [(VhmTable, "refund", refund)]


def _vhm_see_other() -> list[Patch]:
    def check_access(self: VhmTable, pid: int, target: int, what: str) -> None:
        return None  # every process may touch every other, whatever its VHM

    return [(VhmTable, "check_access", check_access)]


def _channel_reorder() -> list[Patch]:
    original = ChannelTable._enqueue

    def enqueue(self: ChannelTable, channel: Any, message: Any) -> None:
        original(self, channel, message)
        if len(channel.queue) >= 2:
            channel.queue.rotate(1)  # the newest message jumps the queue

    return [(ChannelTable, "_enqueue", enqueue)]


def _channel_drop() -> list[Patch]:
    original = ChannelTable._enqueue

    def enqueue(self: ChannelTable, channel: Any, message: Any) -> None:
        original(self, channel, message)
        if message.seq % 2 == 0 and channel.queue and channel.queue[-1] is message:
            channel.queue.pop()  # silently lost

    return [(ChannelTable, "_enqueue", enqueue)]


def _misclassify_fault() -> list[Patch]:
    original = vars(_fault_handler)["classify"]
    own = original(ErrorCode.PROCESS_FAULT, Domain.K)
    detected = FaultHandler._detected

    def classify(code: Any, domain: Domain = Domain.K) -> Any:
        return own  # every fault called the process's own

    def _detected(self: FaultHandler, process: Any, fault: Any, *args: Any, **kwargs: Any) -> None:
        detected(self, process, own, *args, **kwargs)

    return [(_fault_handler, "classify", classify), (FaultHandler, "_detected", _detected)]


def _duplicate_outcome() -> list[Patch]:
    original = Invoker.record_result

    def record_result(self: Invoker, process: Any, pending: Any) -> None:
        original(self, process, pending)
        if pending.invocation % 2 == 0:
            original(self, process, pending)  # the outcome is delivered a second time

    return [(Invoker, "record_result", record_result)]


def _double_queue() -> list[Patch]:
    original = ProcessTable.enqueue

    def enqueue(self: ProcessTable, process: Any, ready_at: int) -> None:
        original(self, process, ready_at)
        if process.pid % 2 == 0:  # queued a second time
            if self.queue is None:
                heapq.heappush(self.ready, (ready_at, -process.priority, process.pid, process))
            else:
                self.queue.push(process, ready_at)

    return [(ProcessTable, "enqueue", enqueue)]


def _forget_aging() -> list[Patch]:
    def key(self: PriorityPolicy, process: Any, now: int) -> tuple[Any, ...]:
        return (-process.priority, process.pid)  # how long it has been ready is ignored

    return [(PriorityPolicy, "key", key)]


register_mutant(
    "skip-quota-check", "the K manager grants lanes it does not have", _skip_quota_check
)
register_mutant(
    "forget-release", "a released contract's resources never return to the manager", _forget_release
)
register_mutant(
    "transfer-keeps-copy",
    "a transferred contract stays live in the sender too",
    _transfer_keeps_copy,
)
register_mutant(
    "see-foreign-process",
    "a process may suspend and resume processes that are not its children",
    _see_foreign_process,
)
register_mutant(
    "widen-capability",
    "an attenuation asking for more than the held capability is granted, not refused",
    _widen_capability,
)
register_mutant(
    "keep-capabilities-at-exit",
    "an ended process's capabilities are not revoked",
    _keep_capabilities_at_exit,
)
register_mutant("lose-wakeup", "a process waiting for another is never woken", _lose_wakeup)
register_mutant(
    "reorder-messages",
    "a process's emitted values are recorded out of order (or lost)",
    _reorder_outputs,
)
register_mutant(
    "clock-backwards", "release entries are stamped one step in the past", _clock_backwards
)
register_mutant(
    "unseeded-random",
    "a process's random stream depends on more than the run's seed (replay diverges)",
    _unseeded_random,
)
register_mutant(
    "vhm-skip-quota",
    "a VHM is charged past its quotas (processes, steps) instead of refusing",
    _vhm_skip_quota,
)
register_mutant(
    "vhm-forget-refund",
    "an ended process's share of its VHM's processes quota is never returned",
    _vhm_forget_refund,
)
register_mutant(
    "vhm-see-other",
    "a process may touch (wait on) a process of another VHM",
    _vhm_see_other,
)
register_mutant(
    "channel-reorder",
    "a channel delivers its newest queued message first",
    _channel_reorder,
)
register_mutant(
    "channel-drop",
    "a channel silently loses every other message it queues",
    _channel_drop,
)
register_mutant(
    "misclassify-fault",
    "every fault is classed as the faulting process's own (k.process)",
    _misclassify_fault,
)
register_mutant(
    "duplicate-outcome",
    "every other domain outcome is recorded (delivered) twice",
    _duplicate_outcome,
)
register_mutant(
    "double-queue",
    "a process of even pid is queued twice when it becomes ready",
    _double_queue,
)
register_mutant(
    "forget-aging",
    "the priority policy orders by priority alone, forgetting how long a process has been ready",
    _forget_aging,
)
