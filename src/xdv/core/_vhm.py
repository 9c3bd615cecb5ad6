"""Virtual hybrid machines (VHMs): the kernel's unit of tenancy, isolation and accounting.

A VHM groups processes. Every process belongs to exactly one VHM for its whole life: the one
the operator named in :meth:`~xdv.core.Kernel.spawn`, or its parent's when a process spawns a
child. VHM ``root`` (the kernel's ``vhm`` argument, 0 by default) always exists, has no quotas
and cannot be destroyed; every other VHM has a parent VHM, so VHMs form a tree.

Quotas (:class:`VhmQuotas`) bound what the processes of a VHM *and of every VHM nested in it*
use, per domain:

========================  ======  ====================================================
quota                     kind    what is counted
========================  ======  ====================================================
``processes``             held    live processes (charged at creation, returned at end)
``steps``                 total   dispatched K steps
``qubits``                held    qubits of live Q contracts
``shots``                 total   shots of invoked Q jobs
``qubit_time``            total   qubits × duration of Q reservations (logical steps)
``envelopes``             held    live Φ envelope contracts
``window_steps``          total   coherence-window steps of Φ reservations
========================  ======  ====================================================

A *held* quantity goes back when what holds it ends; a *total* one only grows. Usage is charged
to the VHM and to each of its ancestors, so a parent's quota bounds the sum over its subtree
(the *conservation invariant*: a VHM's usage is at least the sum of its children's, and never
exceeds its quota). Nesting rule: a child's quota may not exceed its parent's (a quota the
child leaves open inherits the parent's bound through the ancestor charge).

The domains say what a reservation or an invocation uses through
:class:`~xdv.core.SupportsUsage` and :attr:`~xdv.core.PreparedCall.usage`; the core knows only
the quota names above, never a domain's own rules.

Nothing here reads time or randomness; every change is recorded by the caller's recorder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from xdv.core._clock import LogicalClock
from xdv.core._recorder import Recorder
from xdv.errors import ErrorCode, XdvError, safe_repr
from xdv.trace import Domain, EventType, canonical_metadata

__all__ = [
    "HELD_QUOTAS",
    "QUOTA_NAMES",
    "Vhm",
    "VhmQuotas",
    "VhmTable",
]

QUOTA_NAMES = (
    "processes",
    "steps",
    "qubits",
    "shots",
    "qubit_time",
    "envelopes",
    "window_steps",
)
"""Every quota a VHM may set, in record order."""

HELD_QUOTAS = frozenset({"processes", "qubits", "envelopes"})
"""Quotas on quantities that are returned when what holds them ends (the others only grow)."""

_QUOTA_MAX = 2**62
_NAME_CHARS_MAX = 64
_WEIGHT_MAX = 2**20
VHMS_MAX = 4096  # VHMs a run may create (destroyed ones included)


@dataclass(frozen=True, slots=True)
class VhmQuotas:
    """The bounds of one VHM; ``None`` means "no bound of its own" (see the module docs)."""

    processes: int | None = None
    steps: int | None = None
    qubits: int | None = None
    shots: int | None = None
    qubit_time: int | None = None
    envelopes: int | None = None
    window_steps: int | None = None

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and (type(value) is not int or not 0 <= value <= _QUOTA_MAX):
                raise XdvError(
                    f"quota {item.name} must be None or an integer in [0, 2**62], got "
                    f"{safe_repr(value)}",
                    code=ErrorCode.VHM_INVALID,
                    where="VHM quotas",
                )

    def to_record(self) -> dict[str, int]:
        """The bounded quotas by name (the open ones are left out)."""
        return {name: value for name in QUOTA_NAMES if (value := getattr(self, name)) is not None}

    def limits_over(self, ancestor: Vhm) -> list[tuple[str, int]]:
        """The quotas of these bounds that exceed a bound of ``ancestor``."""
        return [
            (name, value)
            for name, value in self.to_record().items()
            if name in ancestor.limits and value > ancestor.limits[name]
        ]

    @classmethod
    def parse(cls, value: VhmQuotas | Mapping[str, Any] | None) -> VhmQuotas:
        """Quotas from a :class:`VhmQuotas`, a mapping of quota names (a record), or None."""
        if value is None:
            return cls()
        if isinstance(value, VhmQuotas):
            return value
        if not isinstance(value, Mapping):
            raise XdvError(
                f"quotas are a mapping of quota names to integers, got {safe_repr(value)}",
                code=ErrorCode.VHM_INVALID,
                where="VHM quotas",
            )
        unknown = sorted(str(key) for key in value if key not in QUOTA_NAMES)
        if unknown:
            raise XdvError(
                f"unknown quotas {unknown} (known: {', '.join(QUOTA_NAMES)})",
                code=ErrorCode.VHM_INVALID,
                where="VHM quotas",
            )
        return cls(**{str(key): item for key, item in value.items()})


class Vhm:
    """One virtual hybrid machine, as the kernel holds it.

    Read it through :meth:`VhmTable.get`: ``id``, ``name``, ``parent`` (None for the root),
    ``weight`` (a positive integer for fair-share policies), ``quotas``, ``usage`` (a read-only
    view, charged over the VHM's subtree), ``children``, ``processes`` (the live pids of this
    VHM itself, sorted) and ``live`` (False once destroyed).
    """

    __slots__ = (
        "_children",
        "_pids",
        "_usage",
        "chain",
        "id",
        "limits",
        "live",
        "name",
        "parent",
        "quotas",
        "step_bounds",
        "steps",
        "steps_limit",
        "weight",
    )

    def __init__(
        self, vhm_id: int, name: str, parent: Vhm | None, weight: int, quotas: VhmQuotas
    ) -> None:
        self.id = vhm_id
        self.name = name
        self.parent = None if parent is None else parent.id
        self.weight = weight
        self.quotas = quotas
        self.limits = quotas.to_record()
        self.live = True
        self._usage: dict[str, int] = dict.fromkeys(QUOTA_NAMES, 0)
        # The dispatched steps, kept apart from `_usage` because the kernel loop adds to it
        # once per time slice (an attribute is cheaper there than a dict item).
        self.steps = 0
        self.steps_limit = quotas.steps
        self._children: list[int] = []
        self._pids: set[int] = set()
        # This VHM and its accounted ancestors (the root is never accounted: it has no quotas
        # and its totals are the run's), the ones every charge goes to.
        self.chain: tuple[Vhm, ...] = () if parent is None else (self, *parent.chain)
        # The VHMs of the chain that bound steps (the kernel loop checks these per slice).
        self.step_bounds = tuple(member for member in self.chain if member.steps_limit is not None)

    @property
    def usage(self) -> Mapping[str, int]:
        """What the VHM's subtree uses now, by quota name (a read-only copy)."""
        return MappingProxyType({**self._usage, "steps": self.steps})

    @property
    def children(self) -> tuple[int, ...]:
        """The live VHMs nested directly in this one, by id."""
        return tuple(self._children)

    @property
    def processes(self) -> tuple[int, ...]:
        """The live processes of this VHM itself (not of nested VHMs), sorted."""
        return tuple(sorted(self._pids))

    def to_record(self) -> dict[str, Any]:
        """The VHM's configuration, as VHM_CREATE records it."""
        record: dict[str, Any] = {"id": self.id, "name": self.name, "weight": self.weight}
        if self.parent is not None:
            record["parent"] = self.parent
        if self.limits:
            record["quotas"] = dict(self.limits)
        return record

    def usage_record(self) -> dict[str, int]:
        """The non-zero usage figures, by quota name."""
        return {name: value for name, value in self.usage.items() if value}


class VhmTable:
    """Every VHM of a run: creation, destruction, membership, charges and refunds.

    Invariants: VHM ids are never reused; a live VHM's parent is live; for every VHM and every
    quota it bounds, its usage never exceeds the bound; a VHM's usage is at least the sum of
    its children's usage.
    """

    __slots__ = ("_clock", "_next_id", "_pid_vhm", "_record", "_vhms", "root")

    def __init__(self, recorder: Recorder, clock: LogicalClock, root: int) -> None:
        self._record = recorder.record
        self._clock = clock
        self.root = root
        self._vhms: dict[int, Vhm] = {root: Vhm(root, "root", None, 1, VhmQuotas())}
        self._next_id = 1 if root != 1 else 2
        # The VHM of every process that ever existed (the recorder stamps headers from it).
        self._pid_vhm: dict[int, int] = recorder.pid_vhm

    # ------------------------------------------------------------------ read API

    def get(self, vhm_id: int) -> Vhm:
        """The VHM ``vhm_id`` (live or destroyed), or VHM_UNKNOWN."""
        vhm = self._vhms.get(vhm_id) if type(vhm_id) is int else None
        if vhm is None:
            raise XdvError(
                f"no VHM {safe_repr(vhm_id)}", code=ErrorCode.VHM_UNKNOWN, where="VHM table"
            )
        return vhm

    def live(self, vhm_id: int) -> Vhm:
        """The live VHM ``vhm_id``, or VHM_UNKNOWN."""
        vhm = self.get(vhm_id)
        if not vhm.live:
            raise XdvError(
                f"VHM {vhm_id} was destroyed", code=ErrorCode.VHM_UNKNOWN, where="VHM table"
            )
        return vhm

    def __iter__(self) -> Iterator[Vhm]:
        """Every VHM ever created, by id."""
        return iter([self._vhms[key] for key in sorted(self._vhms)])

    def find(self, name: str) -> int:
        """The id of the live VHM named ``name``, or VHM_UNKNOWN."""
        for vhm in self._vhms.values():
            if vhm.live and vhm.name == name:
                return vhm.id
        raise XdvError(
            f"no live VHM named {safe_repr(name)}", code=ErrorCode.VHM_UNKNOWN, where="VHM table"
        )

    def vhm_of(self, pid: int) -> int:
        """The VHM of process ``pid`` (the root's for the operator, pid 0, or unknown pids)."""
        return self._pid_vhm.get(pid, self.root)

    def same_vhm(self, a: int, b: int) -> bool:
        """Whether processes ``a`` and ``b`` belong to the same VHM (the isolation rule)."""
        return self.vhm_of(a) == self.vhm_of(b)

    def subtree(self, vhm_id: int) -> list[int]:
        """``vhm_id`` and every live VHM nested in it, parents before children."""
        order, stack = [], [vhm_id]
        while stack:
            current = stack.pop()
            order.append(current)
            stack.extend(reversed(self._vhms[current]._children))
        return order

    def check_access(self, pid: int, target: int, what: str) -> None:
        """Refuse (VHM_ISOLATION) process ``pid`` touching process ``target`` of another VHM.

        The refusal is the caller's to record (a system call's failure entry)."""
        mine, theirs = self.vhm_of(pid), self.vhm_of(target)
        if mine != theirs:
            raise XdvError(
                f"process {pid} (VHM {mine}) may not {what} process {target} of VHM {theirs}",
                code=ErrorCode.VHM_ISOLATION,
                where=f"process {pid}",
            )

    def to_record(self) -> list[dict[str, Any]]:
        """The configuration of every VHM created so far (not the root), by id."""
        return [vhm.to_record() for vhm in self if vhm.id != self.root]

    # ------------------------------------------------------------------ creation, destruction

    def create(
        self,
        name: str,
        quotas: VhmQuotas | Mapping[str, Any] | None = None,
        weight: int = 1,
        parent: int | None = None,
    ) -> int:
        """Create a VHM nested in ``parent`` (the root if None); record VHM_CREATE; return its id.

        Refused with VHM_INVALID (a bad name, weight or quota), VHM_UNKNOWN (no such parent)
        or VHM_NESTING_INVALID (a quota above the parent's, or a parent already over it).
        """
        if not isinstance(name, str) or not 1 <= len(name) <= _NAME_CHARS_MAX:
            raise XdvError(
                f"a VHM name is a string of 1 to {_NAME_CHARS_MAX} characters, got "
                f"{safe_repr(name)}",
                code=ErrorCode.VHM_INVALID,
                where="create_vhm",
            )
        if type(weight) is not int or not 1 <= weight <= _WEIGHT_MAX:
            raise XdvError(
                f"a VHM weight is an integer in [1, 2**20], got {safe_repr(weight)}",
                code=ErrorCode.VHM_INVALID,
                where="create_vhm",
            )
        parsed = VhmQuotas.parse(quotas)
        above = self.live(self.root if parent is None else parent)
        for ancestor in above.chain:
            for quota, bound in parsed.limits_over(ancestor):
                raise XdvError(
                    f"VHM {name!r} asks {quota}={bound}, above its ancestor VHM {ancestor.id}'s "
                    f"quota of {ancestor.limits[quota]}",
                    code=ErrorCode.VHM_NESTING_INVALID,
                    where="create_vhm",
                )
        if any(vhm.name == name and vhm.live for vhm in self._vhms.values()):
            raise XdvError(
                f"a live VHM is already named {name!r}",
                code=ErrorCode.VHM_INVALID,
                where="create_vhm",
            )
        if len(self._vhms) > VHMS_MAX:
            raise XdvError(
                f"a run creates at most {VHMS_MAX} VHMs",
                code=ErrorCode.LIMIT_EXCEEDED,
                where="create_vhm",
            )
        vhm_id = self._next_id
        self._next_id += 1
        if self._next_id == self.root:
            self._next_id += 1
        vhm = Vhm(vhm_id, name, above, weight, parsed)
        self._vhms[vhm_id] = vhm
        above._children.append(vhm_id)
        self._record(
            EventType.VHM_CREATE, Domain.ORCHESTRATION, 0, vhm=vhm_id, meta=vhm.to_record()
        )
        return vhm_id

    def destroy(self, vhm_id: int) -> None:
        """Destroy an empty VHM (no live process, no nested VHM) and record VHM_DESTROY with
        its final usage. Refused with VHM_NOT_EMPTY otherwise: end its processes first
        (:meth:`Kernel.terminate_vhm`) and destroy nested VHMs before their parent."""
        vhm = self.live(vhm_id)
        if vhm.id == self.root:
            raise XdvError(
                "the root VHM cannot be destroyed", code=ErrorCode.VHM_INVALID, where="destroy_vhm"
            )
        if vhm._pids or vhm._children:
            raise XdvError(
                f"VHM {vhm_id} still has live processes {sorted(vhm._pids)} or nested VHMs "
                f"{vhm._children}",
                code=ErrorCode.VHM_NOT_EMPTY,
                where="destroy_vhm",
            )
        vhm.live = False
        parent = self._vhms[vhm.parent] if vhm.parent is not None else None
        if parent is not None:
            parent._children.remove(vhm_id)
        self._record(
            EventType.VHM_DESTROY,
            Domain.ORCHESTRATION,
            0,
            vhm=vhm_id,
            meta={"usage": vhm.usage_record()},
        )

    # ------------------------------------------------------------------ membership

    def admit(self, pid: int, vhm_id: int, by: int) -> None:
        """Make ``pid`` (being created by process ``by``, 0 for the operator) a member of
        ``vhm_id``: charge one process.

        Raises VHM_QUOTA_EXCEEDED (charging nothing, recorded for ``by``) if a ``processes``
        quota is full."""
        vhm = self.live(vhm_id)
        self.charge(vhm, {"processes": 1}, f"process {by}", pid=by, call="Spawn")
        vhm._pids.add(pid)
        self._pid_vhm[pid] = vhm_id

    def leave(self, pid: int) -> None:
        """Process ``pid`` ended: return its ``processes`` charge (it keeps its VHM id)."""
        vhm = self._vhms[self.vhm_of(pid)]
        if pid in vhm._pids:
            vhm._pids.discard(pid)
            self.refund(vhm, {"processes": 1})

    # ------------------------------------------------------------------ charges

    def charge(
        self,
        vhm: Vhm,
        amounts: Mapping[str, int | None],
        where: str,
        *,
        pid: int = 0,
        call: str | None = None,
        domain: Domain = Domain.ORCHESTRATION,
    ) -> None:
        """Charge ``amounts`` (by quota name) to ``vhm`` and its ancestors, all or nothing.

        An amount of None has no bound: it is refused by a VHM that bounds that quota and
        charges nothing otherwise. A refusal is recorded (VHM_DENY, for process ``pid`` and
        its system call ``call``) and raised as VHM_QUOTA_EXCEEDED naming the quota."""
        chain = vhm.chain
        if not chain or not amounts:
            return
        for name, amount in amounts.items():
            if name not in vhm._usage or (
                amount is not None and (type(amount) is not int or amount < 0)
            ):
                raise XdvError(
                    f"a usage is a non-negative integer (or None) of a known quota, got "
                    f"{safe_repr(name)}={safe_repr(amount)}",
                    code=ErrorCode.VHM_INVALID,
                    where=where,
                )
        for name, amount in amounts.items():
            for member in chain:
                bound = member.limits.get(name)
                if bound is None:
                    continue
                used = member.steps if name == "steps" else member._usage[name]
                if amount is None:
                    message = (
                        f"VHM {member.id} ({member.name}) bounds {name} at {bound}, and this "
                        f"request's {name} has no bound"
                    )
                elif used + amount > bound:
                    message = (
                        f"VHM {member.id} ({member.name}) would use {used + amount} {name}, "
                        f"over its quota of {bound}"
                    )
                else:
                    continue
                error = XdvError(message, code=ErrorCode.VHM_QUOTA_EXCEEDED, where=where)
                meta: dict[str, Any] = {"vhm": member.id, "quota": name, "error": error.message}
                if call is not None:
                    meta["call"] = call
                self._record(EventType.VHM_DENY, domain, pid, status=error.code, meta=meta)
                raise error
        for name, amount in amounts.items():
            if amount is None:
                continue
            for member in chain:
                if name == "steps":
                    member.steps += amount
                else:
                    member._usage[name] += amount

    def refund(self, vhm: Vhm, amounts: Mapping[str, int | None], *, all_: bool = False) -> None:
        """Return ``amounts`` to ``vhm`` and its ancestors: the held ones (something ended), or
        every one with ``all_`` (a charge undone: the reservation never happened)."""
        for name, amount in amounts.items():
            if amount is not None and (all_ or name in HELD_QUOTAS):
                for member in vhm.chain:
                    if name == "steps":
                        member.steps -= amount
                    else:
                        member._usage[name] -= amount

    def steps_left(self, vhm: Vhm) -> int | None:
        """The steps ``vhm``'s subtree may still dispatch under every bound of its chain, or
        None if no VHM of the chain bounds steps."""
        left: int | None = None
        for member in vhm.chain:
            bound = member.steps_limit
            if bound is not None and (left is None or bound - member.steps < left):
                left = bound - member.steps
        return left


def snapshot_digest(record: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a snapshot record's canonical encoding."""
    return hashlib.sha256(canonical_metadata(dict(record))).hexdigest()
