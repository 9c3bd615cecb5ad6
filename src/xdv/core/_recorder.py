"""The recorder: the one way the kernel writes its trace.

It owns the trace writer of a run and everything tied to the entries it appends: stamping them
with the logical time, the VHM of the process each entry is about and the kernel's node id,
the DISPATCH entry of a context switch, the audit tree and its checkpoints, and the release of
emitted values once their entries are durable. Every other collaborator records through
:meth:`Recorder.record`; only the kernel loop appends its hot entries (SLEEP, PREEMPT) straight
to the writer, and it does so only where the recorder's rules say it may (see
:attr:`Recorder.dispatch_pending`).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from xdv.core._audit import AuditConfig
from xdv.core._clock import LogicalClock
from xdv.errors import ErrorCode, XdvError, as_typed, invariant
from xdv.trace import (
    Domain,
    EventType,
    MerkleAccumulator,
    TraceWriter,
    canonical_metadata,
    canonicalize,
)

__all__ = ["EmitSink", "OutputFailure", "Recorder"]

NEVER = 1 << 62  # an entry count no trace reaches
DISPATCH = int(EventType.DISPATCH)
EFFECT = int(EventType.EFFECT)
ORCHESTRATION = int(Domain.ORCHESTRATION)
K = int(Domain.K)
EMPTY_MAP = b"\xa0"


class EmitSink(Protocol):
    """Receives each emitted value, with the emitting process's id, once its entry is
    durable in the trace."""

    def __call__(self, pid: int, value: Any, /) -> None: ...


class OutputFailure(BaseException):
    """The output sink failed. A BaseException, so no handler hands it to a process."""

    def __init__(self, error: XdvError) -> None:
        super().__init__(str(error))
        self.error = error


class Recorder:
    """Appends a run's entries, keeps its audit tree and gates its outputs on durability.

    Invariants: entries are appended in kernel order only (one thread, the kernel's); an emitted
    value reaches the sink only after the entry recording it is durable, and in entry order; a
    pending DISPATCH is written before any other entry of its slice, or is replaced by the
    slice's first entry when that is the dispatched process's own SLEEP (the only entry the loop
    appends without this class).
    """

    __slots__ = (
        "_append",
        "_emit_sink",
        "_merkle",
        "_pending_outputs",
        "audit",
        "checkpoint_at",
        "clock",
        "dispatch_pending",
        "node",
        "outputs",
        "pid_vhm",
        "run_hash",
        "vhm",
        "writer",
    )

    def __init__(
        self,
        writer: TraceWriter,
        clock: LogicalClock,
        *,
        vhm: int,
        node: int,
        audit: AuditConfig | None,
        emit: EmitSink | None,
    ) -> None:
        self.writer = writer
        self._append = writer.append
        self.clock = clock
        self.vhm = vhm  # the root VHM: entries about the operator (pid 0) and the run
        self.node = node
        # The VHM of every process (the VHM table fills it at creation); the header's VHM
        # field of an entry about a process holds the process's own VHM.
        self.pid_vhm: dict[int, int] = {}
        self.audit = audit
        # Auditing: the Merkle tree over entry hashes, and the entry count at which the next
        # checkpoint is due (never, without auditing).
        self._merkle: MerkleAccumulator | None = None
        self.checkpoint_at = NEVER
        if audit is not None:
            self._merkle = MerkleAccumulator()
            writer.leaves = []
            self.checkpoint_at = writer.count + audit.interval
        self._emit_sink = emit
        self._pending_outputs: deque[tuple[int, int, Any]] = deque()
        writer.add_durable_listener(self._release_outputs)
        self.outputs: list[tuple[int, Any]] = []
        self.run_hash = b""
        # The process a context switch just gave the processor to, while its DISPATCH entry is
        # not written yet (0: none; process ids start at 1). The loop sets it on a switch and
        # clears it when the slice's first entry is the process's own SLEEP, which then records
        # the switch; any other entry writes the DISPATCH first (see docs/trace-format.md).
        self.dispatch_pending = 0

    def start(self, metadata: dict[str, Any]) -> None:
        """Record RUN_START (the first entry of every trace)."""
        invariant(self.writer.count == 0, "RUN_START is the first entry")
        self.record(EventType.RUN_START, Domain.ORCHESTRATION, 0, meta=metadata)
        self.run_hash = self.writer.last_hash

    def record(
        self,
        event_type: EventType,
        domain: Domain,
        pid: int,
        status: int = 0,
        capability: int = 0,
        contract: int = 0,
        meta: dict[str, Any] | bytes | None = None,
        vhm: int | None = None,
    ) -> int:
        """Append one entry at the current logical time; return its sequence number.

        The header's VHM field is ``vhm`` when given (an entry about a VHM itself), else the
        VHM of process ``pid``."""
        if self.dispatch_pending:
            self.write_dispatch()
        return self._append(
            self.clock.now,
            event_type,
            domain,
            status,
            pid,
            self.pid_vhm.get(pid, self.vhm) if vhm is None else vhm,
            self.node,
            capability,
            contract,
            meta,
        )

    def write_dispatch(self) -> None:
        """Write the pending DISPATCH entry (the loop's context switch) now."""
        pid, self.dispatch_pending = self.dispatch_pending, 0
        self.writer.append_encoded(
            self.clock.now,
            DISPATCH,
            ORCHESTRATION,
            pid,
            self.pid_vhm.get(pid, self.vhm),
            self.node,
            EMPTY_MAP,
        )

    def record_effect(self, pid: int, value: Any) -> None:
        """Record an emitted value (EFFECT) and release it once its entry is durable."""
        value = canonicalize(value, "emitted value")
        metadata = canonical_metadata({"v": value})  # anything that can fail, fails here
        if self.dispatch_pending:
            self.write_dispatch()
        # Queued before it is recorded, so the sync that makes its entry durable releases it.
        self._pending_outputs.append((self.writer.count, pid, value))
        vhm = self.pid_vhm.get(pid, self.vhm)
        self._append(self.clock.now, EFFECT, K, 0, pid, vhm, self.node, 0, 0, metadata)
        self.outputs.append((pid, value))

    def _release_outputs(self, durable_count: int) -> None:
        # An emitted value leaves the system only once the entry recording it is durable.
        pending = self._pending_outputs
        sink = self._emit_sink
        while pending and pending[0][0] < durable_count:
            _, pid, value = pending.popleft()
            if sink is not None:
                try:
                    sink(pid, value)
                except Exception as error:
                    # Where the output goes is not the run's business: a failing sink stops the
                    # run (it may not decide anything a process sees), as a typed error.
                    raise OutputFailure(
                        as_typed(error, ErrorCode.OUTPUT_FAILED, "the output sink failed", "output")
                    ) from None

    # ------------------------------------------------------------------ audit

    def _fold_leaves(self) -> MerkleAccumulator:
        merkle, leaves = self._merkle, self.writer.leaves
        if merkle is None or leaves is None:
            raise AssertionError("auditing is on")  # pragma: no cover - guarded by callers
        merkle.extend(leaves)
        leaves.clear()
        return merkle

    def checkpoint(self) -> None:
        """Record a CHECKPOINT over every entry so far and hand the head to the audit sink."""
        audit = self.audit
        invariant(audit is not None, "checkpoints are recorded only when auditing")
        assert audit is not None  # for the type checker
        merkle = self._fold_leaves()
        size, root = merkle.size, merkle.root()
        invariant(size == self.writer.count, "the audit tree covers every entry")
        self.record(
            EventType.CHECKPOINT, Domain.ORCHESTRATION, 0, meta={"size": size, "root": root}
        )
        self.checkpoint_at = self.writer.count + audit.interval
        if audit.sink is not None:
            self.writer.sync()  # a signed head never covers entries that are not written
            audit.sink.tree_head(self.run_hash, size, root, False)

    def sync(self) -> None:
        """Write and (by the fsync policy) make durable every entry so far."""
        self.writer.sync()

    def close(self) -> None:
        """Close the trace (after RUN_END) and hand the final head to the audit sink."""
        self.writer.close()
        if self._merkle is not None:
            merkle = self._fold_leaves()
            sink = self.audit.sink if self.audit is not None else None
            if sink is not None:
                sink.tree_head(self.run_hash, merkle.size, merkle.root(), True)
