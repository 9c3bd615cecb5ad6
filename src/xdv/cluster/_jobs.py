"""Cluster jobs: what a node runs, described as data, and how a node runs one.

A :class:`JobSpec` is the unit of distribution: a whole run, placed on one node. ``kind`` is
``"run"`` (a Python file or module, or a DPL program, exactly as ``xdv run`` takes it) or
``"q"`` (an OpenQASM circuit, run as a Q job with ``shots`` shots, as ``xdv qrun`` does; it
emits its counts). A
job's randomness comes from its own seed, so its result does not depend on the node that runs
it. :func:`run_job` runs one job through the runtime (:func:`xdv.runtime.run`) with a trace and
returns a :class:`JobResult`: its status, the lines it emitted, their digest and the head of its
trace. Q amplitudes and Φ phases stay inside the providers of the node that runs the job; only
the job's outputs and its trace leave the node.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, XdvError, describe_exception
from xdv.runtime import RunRequest, load_dpl_program, load_workload, q_job, run

__all__ = ["JOB_KINDS", "JobResult", "JobSpec", "outputs_digest", "run_job"]

JOB_KINDS = ("run", "q")
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _invalid(message: str, where: str) -> XdvError:
    return XdvError(message, code=ErrorCode.CLUSTER_JOB_INVALID, where=where)


@dataclass(frozen=True)
class JobSpec:
    """One job of a cluster run (see the module docstring). ``id`` names the job in the
    cluster trace and its trace file (letters, digits, ``.``, ``_``, ``-``; at most 64)."""

    id: str
    kind: str
    target: str
    seed: int = 0
    entry: str | None = None
    shots: int = 1024

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _JOB_ID.fullmatch(self.id):
            raise _invalid(
                f"a job id is 1 to 64 letters, digits, '.', '_' or '-', got {self.id!r}", "job"
            )
        if self.kind not in JOB_KINDS:
            raise _invalid(
                f"job kind {self.kind!r} is unknown; known kinds: {', '.join(JOB_KINDS)}",
                f"job {self.id}",
            )
        if type(self.seed) is not int or not 0 <= self.seed < 1 << 64:
            raise _invalid(f"a seed is an integer in [0, 2**64), got {self.seed!r}", self.id)
        if type(self.shots) is not int or self.shots < 1:
            raise _invalid(f"shots is a positive integer, got {self.shots!r}", self.id)

    @property
    def needs(self) -> tuple[str, ...]:
        """The domains the job needs of its node (placement only offers it nodes with them)."""
        return ("Q",) if self.kind == "q" else ()

    def to_record(self) -> dict[str, Any]:
        """The job as canonical data (what messages and the cluster trace carry)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "seed": self.seed,
            "entry": self.entry,
            "shots": self.shots,
        }

    @classmethod
    def from_record(cls, record: Any) -> JobSpec:
        """The job a record describes; CLUSTER_JOB_INVALID if it is malformed."""
        if not isinstance(record, dict):
            raise _invalid("a job record is a map", "job")
        try:
            return cls(
                id=record["id"],
                kind=record["kind"],
                target=record["target"],
                seed=record.get("seed", 0),
                entry=record.get("entry"),
                shots=record.get("shots", 1024),
            )
        except KeyError as error:
            raise _invalid(f"a job record lacks {error.args[0]!r}", "job") from None


@dataclass(frozen=True)
class JobResult:
    """What running a job produced. ``status`` is the run's (``ok``, ``failed``, ``limit``,
    ``interrupted``, ``panic``) or ``refused`` when the job could not be loaded; ``code`` names
    the error of a failed or refused job; ``lines`` are the emitted lines in order;
    ``head`` the hex head hash of the job's trace (empty when refused)."""

    job: str
    status: str
    code: str | None
    message: str | None
    lines: list[str] = field(default_factory=list)
    head: str = ""
    entries: int = 0

    @property
    def outputs(self) -> str:
        """The digest of the emitted lines (:func:`outputs_digest`)."""
        return outputs_digest(self.lines)

    def to_record(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "lines": list(self.lines),
            "head": self.head,
            "entries": self.entries,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> JobResult:
        return cls(
            job=record["job"],
            status=record["status"],
            code=record["code"],
            message=record["message"],
            lines=list(record["lines"]),
            head=record["head"],
            entries=record["entries"],
        )


def outputs_digest(lines: list[str]) -> str:
    """SHA-256 (hex) of the canonical JSON list of emitted lines."""
    return hashlib.sha256(json.dumps(lines, ensure_ascii=False).encode()).hexdigest()


def _load(spec: JobSpec) -> Any:
    if spec.kind == "q":
        return q_job(spec.target, name=f"job {spec.id}", shots=spec.shots)
    target = spec.target
    if target.endswith(".ds") or ".ds:" in target or Path(target).is_dir():
        return load_dpl_program(target, spec.entry)[0]
    return load_workload(target)


def run_job(spec: JobSpec, trace: Path, key_store: Path, witness_dir: Path) -> JobResult:
    """Run ``spec`` with its trace at ``trace`` (witnesses signed with the key in
    ``key_store``, written to ``witness_dir``). A job that cannot be loaded, or whose run
    raises an operating error, is a ``refused`` or ``failed`` result, never an exception."""
    try:
        workload = _load(spec)
    except XdvError as error:
        return JobResult(spec.id, "refused", error.code.name, error.message)
    lines: list[str] = []

    def emit(pid: int, value: Any) -> None:
        line = workload.output_line(value)
        if line is not None:
            lines.append(line)

    request = RunRequest(
        workload,
        seed=spec.seed,
        trace=trace,
        fsync="never",
        audit=False,
        key_store=key_store,
        witness_dir=witness_dir,
        handle_signals=False,
    )
    try:
        outcome = run(request, emit=emit)
    except XdvError as error:
        return JobResult(spec.id, "failed", error.code.name, error.message)
    except Exception as error:  # a bug in the workload's loading path: the job fails
        return JobResult(spec.id, "failed", ErrorCode.PROCESS_FAULT.name, describe_exception(error))
    code = message = None
    failure = next((status for status in outcome.result.exits.values() if not status.ok), None)
    if failure is not None:
        code, message = failure.code, failure.message
    return JobResult(
        spec.id,
        outcome.status,
        code,
        message,
        lines,
        outcome.result.head_hash,
        outcome.result.events,
    )
