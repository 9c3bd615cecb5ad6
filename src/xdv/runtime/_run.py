"""Running a workload: the one way every command (and the library) goes into a run.

:func:`run` takes a :class:`RunRequest` (a loaded workload and how to run it) and does all of
it: builds the managers the workload declares, loads the node key when something is to be
signed, gives every Φ manager the node's witness signer and a witness directory, sets up the
audit (Merkle checkpoints in the trace, tree heads signed with the node key beside it), runs
the workload's setup and the kernel (SIGINT and SIGTERM end the run cleanly, as interrupted;
the traceback of any Python exception that ends a process is kept, out of the trace), and
returns a :class:`RunOutcome`. :func:`run_workload`
is the bare form (no node key, no witnesses, no signal handling) that replays and tests use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdv.core import (
    AuditConfig,
    DomainManager,
    EmitSink,
    FaultPlan,
    Kernel,
    KernelLimits,
    RecordedOutcome,
    RunResult,
    SchedulerPolicy,
)
from xdv.domains import attest_plugins
from xdv.errors import ErrorCode, InvariantViolation, WorkloadError, XdvError
from xdv.runtime._domains import declared_managers
from xdv.runtime._faults import format_traceback
from xdv.runtime._kernel import build_policy, make_kernel, run_providers, with_security
from xdv.runtime._limits import ISOLATION_MODES, WorkerLimits
from xdv.runtime._node import NodeKey, WitnessFiles, default_witness_dir
from xdv.runtime._signals import interrupts
from xdv.runtime._workload import VhmDeclaration, Workload, declared_vhms, load_workload
from xdv.security import AttestationVerifier, SignedHeadLog, audit_path_for
from xdv.trace import Domain, FsyncPolicy, TraceWriter, jsonable

__all__ = ["RunOutcome", "RunRequest", "run", "run_workload"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RunRequest:
    """A run to make: the workload and every setting of the run.

    With a ``trace`` and ``audit`` on, the trace gets Merkle checkpoints every
    ``checkpoint_interval`` entries and an audit file beside it (``TRACE.audit``) of tree heads
    signed with the node key (in ``key_store``, default ``$XDV_HOME/keys``, created on first
    use). Witnesses are signed with the same key and written to ``witness_dir`` (default:
    beside the trace, else ``$XDV_HOME/witnesses``). ``handle_signals`` lets SIGINT/SIGTERM
    end the run as interrupted (in the main thread; see :mod:`xdv.runtime._signals`).
    ``faults`` is the run's fault plan (``xdv run --faults PLAN.json``; see ``docs/faults.md``),
    recorded in the run-start entry so that a replay rebuilds it.
    ``policy`` is the scheduler policy spec (``docs/scheduler.md``), recorded in RUN_START.
    ``isolation`` is ``"inprocess"`` (the workload's code runs in this process) or
    ``"process"`` (it runs in a separate worker process under ``limits``, default
    :class:`WorkerLimits` (); see ``docs/isolation.md``). It is not recorded: the trace of an
    isolated run is the trace of the same run in process.
    """

    workload: Workload
    seed: int = 0
    trace: Path | None = None
    quantum: int = 8
    fsync: FsyncPolicy | str = FsyncPolicy.BATCH
    audit: bool = True
    checkpoint_interval: int = 16384
    key_store: Path | None = None
    witness_dir: Path | None = None
    handle_signals: bool = True
    faults: FaultPlan | None = None
    policy: str = "round-robin"
    isolation: str = "inprocess"
    limits: WorkerLimits | None = None

    def __post_init__(self) -> None:
        if self.isolation not in ISOLATION_MODES:
            raise XdvError(
                f"isolation must be one of {list(ISOLATION_MODES)}, got {self.isolation!r}",
                code=ErrorCode.INVALID_ARGUMENT,
                where="run request",
            )


@dataclass
class RunOutcome:
    """What a run produced: the kernel's :class:`~xdv.core.RunResult` and what the node did
    around it. ``faults`` maps a process id (0 for the workload's setup) to the traceback of
    the exception that ended it; tracebacks never enter the trace. ``signal`` names the signal
    that interrupted the run (``"SIGINT"``, ``"SIGTERM"``), if one did."""

    workload: Workload
    result: RunResult
    seed: int = 0
    trace: Path | None = None
    audit: Path | None = None
    signer: str | None = None
    key_created: bool = False
    key_store: Path | None = None
    witnesses: list[Path] = field(default_factory=list)
    faults: dict[int, str] = field(default_factory=dict)
    signal: str | None = None

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def status(self) -> str:
        """``ok``, ``failed``, ``limit`` or ``interrupted``."""
        return self.result.status

    @property
    def interrupted(self) -> bool:
        """Whether the run was interrupted (by a signal, or :meth:`Kernel.interrupt`)."""
        return self.result.status == "interrupted"

    def outputs(self) -> list[Any]:
        """The run's outputs in order (see :meth:`Workload.output`)."""
        found = []
        for _, value in self.result.outputs:
            is_output, output = self.workload.output(value)
            if is_output:
                found.append(output)
        return found

    def to_json(self) -> dict[str, Any]:
        """The JSON document ``xdv run --json`` prints (documented in the README)."""
        result = self.result
        return {
            "ok": result.ok,
            "status": result.status,
            "signal": self.signal,
            "seed": self.seed,
            "workload": {
                "target": self.workload.target,
                "entry": self.workload.entry,
                "language": self.workload.language,
                "digest": self.workload.digest,
            },
            "outputs": [jsonable(value) for value in self.outputs()],
            "exits": {
                str(pid): {
                    "ok": status.ok,
                    "value": jsonable(status.value),
                    "code": status.code,
                    "message": status.message,
                }
                for pid, status in result.exits.items()
            },
            "steps": result.steps,
            "logical_time": result.logical_time,
            "events": result.events,
            "head_hash": result.head_hash,
            "trace": None if self.trace is None else str(self.trace),
            "audit": None if self.audit is None else str(self.audit),
            "signer": self.signer,
            "witnesses": [str(path) for path in self.witnesses],
            "wall_seconds": result.wall_seconds,
            "faults": dataclasses.asdict(result.faults),
        }


def _session(
    workload: Workload, isolation: str, limits: WorkerLimits | None
) -> AbstractContextManager[tuple[Workload, Callable[[Kernel], Any]]]:
    """The workload to run and its setup function; for an isolated workload, with its worker
    process running for the block (loaded on first use: most runs never need it)."""
    if isolation not in ISOLATION_MODES:
        raise XdvError(
            f"isolation must be one of {list(ISOLATION_MODES)}, got {isolation!r}",
            code=ErrorCode.INVALID_ARGUMENT,
            where="run",
        )
    if isolation != "process":
        return contextlib.nullcontext((workload, workload.function))
    # Loaded on first use, like the simulator (see xdv.runtime): most runs never need it.
    isolation_module = importlib.import_module("xdv.runtime._isolation")
    session: AbstractContextManager[tuple[Workload, Callable[[Kernel], Any]]]
    session = isolation_module.worker_session(workload, isolation, limits)
    return session


def create_vhms(kernel: Kernel, declared: VhmDeclaration | None) -> list[int]:
    """Create a workload's declared VHMs in order (each recorded as VHM_CREATE); return ids.
    The one declared ``"default": true`` becomes the kernel's spawn VHM: the setup's spawns
    that name no VHM go into it (:meth:`~xdv.core.Kernel.set_spawn_vhm`)."""
    created: dict[str, int] = {}
    for item in declared or ():
        parent = item.get("parent")
        created[item["name"]] = kernel.create_vhm(
            item["name"],
            quotas=item.get("quotas"),
            weight=item.get("weight", 1),
            parent=None if parent is None else created[parent],
        )
        if item.get("default"):
            kernel.set_spawn_vhm(created[item["name"]])
    return list(created.values())


def _attach_witnesses(
    managers: list[DomainManager],
    node: NodeKey,
    directory: Path,
    progress: Progress | None,
) -> WitnessFiles | None:
    """Give each Φ manager the node's witness signer, a witness sink writing to ``directory``
    and the progress callback; None when the run has no Φ manager."""
    phi = [manager for manager in managers if manager.domain is Domain.PHI]
    if not phi:
        return None
    from xdv.domains.phi import HybridSigner, PhiDomainManager

    files = WitnessFiles(directory)
    for manager in phi:
        if isinstance(manager, PhiDomainManager):
            manager.signer = HybridSigner(node.keys())
            manager.witness_sink = files
            manager.set_progress(progress)
    return files


def run(
    request: RunRequest,
    *,
    emit: EmitSink | None = None,
    progress: Progress | None = None,
    domains: Iterable[DomainManager] | None = None,
) -> RunOutcome:
    """Make the run ``request`` describes (see the module docstring).

    ``emit`` receives each emitted value once the entry recording it is durable; ``progress``
    receives (done, total) of long provider work (Φ anneals); ``domains`` replaces the
    managers the workload declares (for embedding; commands never pass it).
    """
    # An isolated workload's worker starts (and loads the module) before anything is created.
    with _session(request.workload, request.isolation, request.limits) as (
        workload,
        setup,
    ):
        return _run(request, workload, setup, emit=emit, progress=progress, domains=domains)


def _run(
    request: RunRequest,
    workload: Workload,
    setup: Callable[[Kernel], Any],
    *,
    emit: EmitSink | None,
    progress: Progress | None,
    domains: Iterable[DomainManager] | None,
) -> RunOutcome:
    managers = list(domains) if domains is not None else declared_managers(workload.domains)
    node = NodeKey(request.key_store)
    witness_dir = request.witness_dir or default_witness_dir(request.trace)
    witnesses = _attach_witnesses(managers, node, witness_dir, progress)
    verifier = AttestationVerifier(key_store=node.store)
    # Plug-in providers attest themselves with their own identity key (pinned on first use).
    attest_plugins(verifier, run_providers(managers))
    # The node key before the trace: loading (or creating) it touches only the key store, which
    # may be the folder the trace goes into.
    keys = node.keys() if request.trace is not None and request.audit else None
    # The trace file before the audit file: it is locked for the run, so a second run given the
    # same path is refused (TRACE_IN_USE) here, before it has touched that trace or its audit.
    writer = TraceWriter(request.trace, fsync=request.fsync) if request.trace is not None else None
    try:
        audit = None
        audit_path = None
        if request.trace is not None and keys is not None:
            audit_path = audit_path_for(request.trace)
            audit = AuditConfig(request.checkpoint_interval, SignedHeadLog(audit_path, keys))
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    options = with_security(
        {
            # Embedded providers are attested with the node key of the same store.
            "attestation": verifier,
            "trace": writer,
            "domains": managers,
            "quantum": request.quantum,
            "policy": build_policy(request.policy),
            "fsync": request.fsync,
            "workload": workload.to_record(),
            "emit": emit,
            "audit": audit,
            "faults": request.faults,
        }
    )
    kernel = Kernel(request.seed, **options)
    faults: dict[int, str] = {}
    caught: list[str] = []
    try:
        create_vhms(kernel, workload.vhms)
        setup(kernel)
    except InvariantViolation:
        raise
    except Exception as error:  # the workload's setup failed: record it, close the trace
        faults[0] = format_traceback(error)
        result = kernel.abort(error)
    else:
        with interrupts(kernel, enabled=request.handle_signals) as caught:
            result = kernel.run()
    # The exceptions that ended processes (their anchors' own bugs), as Python reports them.
    faults.update({pid: format_traceback(error) for pid, error in result.exceptions.items()})
    return RunOutcome(
        workload=workload,
        result=result,
        seed=request.seed,
        trace=request.trace,
        audit=audit_path,
        signer=node.fingerprint if node.loaded else None,
        key_created=node.created,
        key_store=node.store.path if node.loaded else None,
        witnesses=list(witnesses.written) if witnesses is not None else [],
        faults=faults,
        signal=caught[0] if caught else None,
    )


def run_workload(
    workload: Workload | str,
    *,
    seed: int = 0,
    trace: str | Path | TraceWriter | None = None,
    emit: EmitSink | None = None,
    fsync: FsyncPolicy | str = FsyncPolicy.BATCH,
    quantum: int = 8,
    domains: Iterable[DomainManager] | None = None,
    faults: FaultPlan | None = None,
    limits: KernelLimits | None = None,
    replay_outcomes: dict[int, RecordedOutcome] | None = None,
    expected_digest: str | None = None,
    recorded_target: str | None = None,
    vhm: int = 0,
    node: int = 0,
    audit: AuditConfig | None = None,
    params: Mapping[str, Any] | None = None,
    policy: str | SchedulerPolicy | None = None,
    vhms: Any = None,
    isolation: str = "inprocess",
    worker_limits: WorkerLimits | None = None,
) -> RunResult:
    """Load ``workload`` (unless already loaded), run it, and return the kernel's result: the
    bare run, without the node's key, witness files or signal handling (see :func:`run`).

    The managers are ``domains`` when given, else those the workload declares. A workload whose
    setup raises still produces a complete trace: the failure is recorded and the run ends with
    status ``failed``. ``recorded_target`` replaces the target string written to the trace (a
    replay that loads the workload from another location keeps the original). ``params``
    makes a target string a parameterized workload (see :func:`load_workload`). ``policy``
    is the scheduler policy (a spec string or a policy object; default round-robin).
    ``vhms`` replaces the workload's declared VHMs (a replay passes the declaration its trace
    recorded). ``isolation`` and ``worker_limits`` are as in :class:`RunRequest`.
    """
    if isinstance(workload, Workload):
        if params is not None:
            raise WorkloadError("params apply to a target string, not a loaded workload")
        loaded = workload
    else:
        loaded = load_workload(
            workload, expected_digest=expected_digest, params=params, isolation=isolation
        )
    with _session(loaded, isolation, worker_limits) as (loaded, setup):
        return _run_workload(
            loaded,
            setup,
            seed=seed,
            trace=trace,
            emit=emit,
            fsync=fsync,
            quantum=quantum,
            domains=domains,
            faults=faults,
            limits=limits,
            replay_outcomes=replay_outcomes,
            recorded_target=recorded_target,
            vhm=vhm,
            node=node,
            audit=audit,
            policy=policy,
            vhms=vhms,
        )


def _run_workload(
    loaded: Workload,
    setup: Callable[[Kernel], Any],
    *,
    seed: int,
    trace: str | Path | TraceWriter | None,
    emit: EmitSink | None,
    fsync: FsyncPolicy | str,
    quantum: int,
    domains: Iterable[DomainManager] | None,
    faults: FaultPlan | None,
    limits: KernelLimits | None,
    replay_outcomes: dict[int, RecordedOutcome] | None,
    recorded_target: str | None,
    vhm: int,
    node: int,
    audit: AuditConfig | None,
    policy: str | SchedulerPolicy | None,
    vhms: Any,
) -> RunResult:
    if domains is None:
        domains = declared_managers(loaded.domains)
    record = loaded.to_record()
    if recorded_target is not None:
        record["target"] = recorded_target
    declared = loaded.vhms if vhms is None else declared_vhms(vhms, loaded.target)
    if declared:
        record["vhms"] = [dict(item) for item in declared]
    kernel = make_kernel(
        seed,
        trace=trace,
        domains=domains,
        quantum=quantum,
        policy=build_policy(policy),
        faults=faults,
        limits=limits,
        workload=record,
        vhm=vhm,
        node=node,
        emit=emit,
        fsync=fsync,
        replay_outcomes=replay_outcomes,
        audit=audit,
    )
    try:
        create_vhms(kernel, declared)
        setup(kernel)
    except InvariantViolation:
        raise
    except Exception as error:  # the workload's setup failed: record it, close the trace
        return kernel.abort(error)
    return kernel.run()
