"""The implementation under test: XDV itself in process, or another one through its command line.

Both executors answer the same questions (:class:`Executor`) with the same
:class:`Observation`, so the checks (:mod:`xdv.cts._runner`) never know which one ran. The
adapter contract (the commands an implementation provides, their exit statuses and JSON
documents) is described in ``docs/conformance.md``; XDV's own command line satisfies it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from xdv.core import FaultPlan, explore
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import (
    NodeKey,
    RunRequest,
    load_dpl_program,
    load_workload,
    phi_job,
    phi_report,
    q_job,
    q_report,
)
from xdv.runtime import replay as replay_trace
from xdv.runtime import run as run_workload
from xdv.security import HybridKeyPair, expected_measurements, verify_audit, verify_quote
from xdv.trace import jsonable, verify_trace

__all__ = [
    "EXIT_BY_STATUS",
    "SERVICE_KINDS",
    "TENANTS",
    "AdapterExecutor",
    "Executor",
    "Identity",
    "InProcessExecutor",
    "Observation",
    "QuoteVerdict",
    "ServiceAnswer",
    "ServiceNode",
    "Unsupported",
    "ViewAnswer",
    "cluster_job_id",
    "xdv_code_digest",
]

EXIT_BY_STATUS = {
    0: "ok",
    64: "usage",
    65: "static",
    70: "runtime",
    71: "admissibility",
    72: "contract",
}
"""The contract's exit statuses of ``run``, ``check``, ``qrun`` and ``phirun``."""

_EXIT_BY_CODE = {
    ErrorCode.DPL_ADMISSIBILITY.name: "admissibility",
    ErrorCode.DPL_CONTRACT_VIOLATION.name: "contract",
}


@dataclass
class Observation:
    """What one execution showed: its class of ending, the typed error code (of the refusal,
    or of the first failed process), the DPL diagnostics (``CODE@LINE``), the emitted outputs,
    the job's report (Q counts, Φ result) and the trace written, if any."""

    exit: str
    code: str | None = None
    diagnostics: list[str] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    trace: Path | None = None
    note: str = ""


class Unsupported(Exception):
    """The executor cannot drive this action (the adapter contract has no command for it):
    the case is skipped with the reason."""


@dataclass(frozen=True)
class QuoteVerdict:
    """What verifying a boot quote said: whether it holds, the error code, and the components
    (``stage/component``) that differ from the expected measurements."""

    ok: bool
    code: str | None = None
    differences: tuple[str, ...] = ()


@dataclass(frozen=True)
class ViewAnswer:
    """What the view answered at one logical time: the state summary (``/state``) and the
    page's bytes from two independent server instances."""

    state: dict[str, Any]
    pages: tuple[bytes, bytes]


@dataclass(frozen=True)
class ServiceAnswer:
    """What a node answered to one submission: the HTTP status, the refusal's error code, the
    job as it ended (None when refused) and its trace, fetched from the node."""

    status: int
    code: str | None = None
    job: dict[str, Any] | None = None
    trace: Path | None = None


TENANTS = {"alice": (), "tiny": ("--quota", "processes=1")}
"""The tenants a service node for the suite is given: ``alice`` (no quotas) and ``tiny`` (one
process per run); each has a full token, a read-only one and, for ``forged``, one with a byte
changed."""

SERVICE_KINDS = {".ds": "dpl", ".py": "python", ".qasm": "qasm"}
_FINISHED = ("succeeded", "failed", "cancelled", "interrupted")


class ServiceNode:
    """One node (``CMD serve --port 0``) with the suite's tenants, started on first use in a
    home of its own and stopped by :meth:`close`: one node serves every service case of a batch."""

    def __init__(self, argv: list[str], home: Path, timeout_s: float = 120.0) -> None:
        self.argv = argv
        self.home = home
        self.timeout_s = timeout_s
        self._node: ServiceNode | None = None
        self.url = ""
        self.tokens: dict[str, str] = {}
        self.process: subprocess.Popen[str] | None = None

    def _call(self, *arguments: str) -> dict[str, Any]:
        answer = subprocess.run(
            [*self.argv, *arguments, "--home", str(self.home), "--json"],
            capture_output=True,
            text=True,
            env={**os.environ, "XDV_HOME": str(self.home)},
            timeout=self.timeout_s,
            check=False,
        )
        lines = answer.stdout.strip().splitlines()
        if answer.returncode != 0 or not lines:
            raise XdvError(
                f"`{' '.join(arguments)}` exited {answer.returncode}: {answer.stdout[-200:]}",
                code=ErrorCode.CTS_ADAPTER_FAILED,
            )
        document: dict[str, Any] = json.loads(lines[-1])
        return document

    def start(self) -> ServiceNode:
        """Create the tenants, start the node and wait for its first answer."""
        import time

        import httpx

        if self.process is not None:
            return self
        self.home.mkdir(parents=True, exist_ok=True)
        for name, options in TENANTS.items():
            self.tokens[name] = str(self._call("tenant", "create", name, *options)["token"])
            self.tokens[f"{name}:read-only"] = str(self._call("tenant", "token", name)["token"])
        self.process = subprocess.Popen(
            [*self.argv, "serve", "--port", "0", "--home", str(self.home), "--runners", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "XDV_HOME": str(self.home)},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening on " not in line:
            self.close()
            raise XdvError(
                f"`serve` did not say where it listens: {line[:200]!r}",
                code=ErrorCode.CTS_ADAPTER_FAILED,
            )
        self.url = line.split("listening on ", 1)[1].split()[0]
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise XdvError("the node did not start", code=ErrorCode.CTS_ADAPTER_FAILED)
            time.sleep(0.05)

    def submit(
        self, program: Path, params: dict[str, Any], seed: int, tenant: str, token: str, out: Path
    ) -> ServiceAnswer:
        """Submit ``program`` as ``tenant`` with the token ``token`` names (``submit``,
        ``read-only``, ``forged`` or ``none``); wait for the job to end and fetch its trace."""
        import time

        import httpx

        self.start()
        bearer = self.tokens[tenant if token in ("submit", "forged") else f"{tenant}:read-only"]
        if token == "forged":
            bearer = bearer[:-10] + ("A" if bearer[-10] != "A" else "B") + bearer[-9:]
        headers = {} if token == "none" else {"Authorization": f"Bearer {bearer}"}
        body = {
            "kind": SERVICE_KINDS[program.suffix],
            "source": program.read_text(encoding="utf-8"),
            "params": params,
            "seed": seed,
        }
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as http:
            answer = http.post("/v1/jobs", json=body)
            if answer.status_code != 202:
                error = answer.json().get("error") or {}
                return ServiceAnswer(answer.status_code, error.get("code"))
            job_id = answer.json()["id"]
            deadline = time.monotonic() + self.timeout_s
            while True:
                job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
                if job.get("state") in _FINISHED or time.monotonic() > deadline:
                    break
                time.sleep(0.03)
            fetched = http.get(f"/v1/jobs/{job_id}/trace")
            trace = None
            if fetched.status_code == 200:
                out.write_bytes(fetched.content)
                trace = out
                audit = http.get(f"/v1/jobs/{job_id}/audit")  # its signed tree heads
                if audit.status_code == 200:
                    Path(f"{out}.audit").write_bytes(audit.content)
            error = job.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            return ServiceAnswer(202, code, job, trace)

    def close(self) -> None:
        """Stop the node (SIGTERM, then SIGKILL after 15 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


@dataclass(frozen=True)
class Identity:
    """Who was tested: a name, a version and a digest of the code (for XDV, over its source
    files; for another implementation, over its command and its ``--version`` answer)."""

    name: str
    version: str
    digest: str
    command: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "command": self.command,
        }


class Executor(Protocol):
    """The operations a case drives (see ``docs/conformance.md``, adapter contract)."""

    def identity(self) -> Identity: ...

    def run(self, program: Path, options: dict[str, Any], trace: Path) -> Observation: ...

    def check(self, program: Path, options: dict[str, Any]) -> Observation: ...

    def qrun(self, circuit: Path, options: dict[str, Any], trace: Path) -> Observation: ...

    def phirun(self, problem: Path, options: dict[str, Any], trace: Path) -> Observation: ...

    def verify(self, trace: Path) -> tuple[bool, str | None]: ...

    def replay(self, trace: Path, mode: str = "reexecute") -> tuple[bool, str]: ...

    def telemetry(self, trace: Path, thresholds: Path | None) -> dict[str, Any]: ...

    def attest(self, home: Path, nonce: str | None, quote: Path, expected: Path) -> str | None:
        """Measure the node of ``home``; write its quote and reference measurements; the
        error code of a failed boot (None: it succeeded)."""
        ...

    def verify_quote(
        self, quote: Path, expected: Path | None, nonce: str | None, trusted: str | None
    ) -> QuoteVerdict: ...

    def view(self, trace: Path, at: int) -> ViewAnswer: ...

    def model_check(self, system: Path, options: dict[str, Any]) -> dict[str, Any]: ...

    def cluster(
        self,
        jobs: list[Path],
        options: dict[str, Any],
        nodes: int,
        kill: str | None,
        trace_dir: Path,
        key_store: Path,
    ) -> dict[str, Any]: ...

    def verify_cluster(self, directory: Path) -> tuple[bool, str | None]: ...

    def transport(self, handshake: str, frames: int, deliver: list[str]) -> dict[str, Any]: ...

    def consensus(
        self,
        n: int,
        values: int,
        crash: list[str],
        seed: int,
        forge: str | None,
        equivocate: list[str],
    ) -> dict[str, Any]: ...

    def service(self) -> ServiceNode: ...

    def close(self) -> None: ...


def _differences(details: dict[str, Any]) -> tuple[str, ...]:
    found = details.get("differences") or ()
    named = (f"{i.get('stage')}/{i.get('component')}" for i in found if isinstance(i, dict))
    return tuple(sorted(named))


def _json(value: Any) -> Any:
    """``value`` as JSON would carry it (tuples become lists, keys strings)."""
    return json.loads(json.dumps(jsonable(value), sort_keys=True))


def xdv_code_digest() -> str:
    """SHA-256 over XDV's Python source files (relative path and content, in order), the
    conformance cases excluded (the suite has its own digest)."""
    root = Path(__file__).resolve().parents[1]
    hasher = hashlib.sha256()
    files = sorted(
        (p for p in root.rglob("*.py") if "cases" not in p.relative_to(root).parts),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    for path in files:
        for part in (path.relative_to(root).as_posix().encode(), path.read_bytes()):
            hasher.update(len(part).to_bytes(8, "big") + part)
    return hasher.hexdigest()


def _version() -> str:
    """XDV's version, as its package metadata states it."""
    from importlib import metadata

    try:
        return metadata.version("xdv")
    except metadata.PackageNotFoundError:
        return "unknown"


def _first_failure(exits: dict[str, Any]) -> str | None:
    for pid in sorted(exits, key=int):
        status = exits[pid]
        if isinstance(status, dict) and not status.get("ok") and status.get("code"):
            return str(status["code"])
    return None


def _classify_run(ok: bool, exits: dict[str, Any]) -> tuple[str, str | None]:
    code = _first_failure(exits)
    if ok:
        return "ok", code
    return _EXIT_BY_CODE.get(code or "", "runtime"), code


# ---------------------------------------------------------------------- cluster, link, agreement


def cluster_job_id(index: int, path: Path) -> str:
    """The id ``xdv cluster run`` gives its ``index``-th target (``0000-stem``)."""
    import re

    return f"{index:04d}-{re.sub(r'[^A-Za-z0-9._-]+', '_', path.stem or 'job')}"[:64]


def _cluster_document(run: Any) -> dict[str, Any]:
    """A cluster run as ``xdv cluster run --json`` prints it (the fields the suite reads)."""
    return {
        "ok": run.ok,
        "nodes": sorted(run.hellos),
        "epochs": run.epochs,
        "lost": dict(run.lost),
        "jobs": [
            {"id": job.id, "node": node, "epoch": epoch, **result.to_record()}
            for job in run.jobs
            for result, node, epoch in [run.results[job.id]]
        ],
    }


def _link_pair(handshake: str) -> tuple[Any, Any, str]:
    """Two members' ends of a link made by a seeded handshake, damaged as ``handshake`` says
    (``ok``; ``hello-signature``: a byte of the hello's signature changed; ``hello-truncated``;
    ``other-epoch``: the responder is at the next epoch of the same nodes); (initiator,
    responder or None, the handshake's verdict)."""
    from xdv.cluster import Link, Membership, NodeIdentity

    first = NodeIdentity.generate("node-a", seed=b"xdv-cts-link-a")
    second = NodeIdentity.generate("node-b", seed=b"xdv-cts-link-b")
    membership = Membership(0, [first.entry(), second.entry()])
    responder_view = membership if handshake != "other-epoch" else Membership(1, membership.nodes)
    initiator, hello = Link.initiate(first, "node-b", membership)
    if handshake == "hello-signature":
        hello = hello[:-1] + bytes([hello[-1] ^ 0x01])
    elif handshake == "hello-truncated":
        hello = hello[: len(hello) // 2]
    try:
        responder, reply = Link.accept(second, hello, responder_view)
    except XdvError as error:
        return initiator, None, error.code.name
    initiator.complete(reply)
    return initiator, responder, "ok"


def _damage_frame(frame: bytes, how: str) -> bytes:
    offsets = {"header": 0, "ciphertext": 34, "tag": len(frame) - 1}
    if how in offsets:
        at = min(offsets[how], len(frame) - 1)
        return frame[:at] + bytes([frame[at] ^ 0x01]) + frame[at + 1 :]
    if how == "truncated":
        return frame[: len(frame) // 2]
    return frame + b"\x00"  # extended


def _equivocated(message: Any, signer: Any, cluster: bytes) -> Any:
    """``message`` (a proposal) for another value: the same leader, view and slot."""
    import dataclasses

    header = message.header
    value = (message.value or b"") + b" (equivocated)"
    other = type(header).for_value(header.slot, header.parent, value)
    return dataclasses.replace(message, header=other, value=value).signed_by(signer, cluster)


def _agree(
    n: int, values: int, crash: list[str], seed: int, forge: str | None, equivocate: list[str]
) -> dict[str, Any]:
    import dataclasses
    import random

    from xdv.cluster import Replica, verify_decision

    ids = [f"n{index:02d}" for index in range(n)]
    keys = {
        node: HybridKeyPair.from_seed(hashlib.sha256(b"xdv-cts/" + node.encode()).digest())
        for node in ids
    }
    members = {node: keys[node].public for node in ids}
    replicas = {node: Replica(node, members, keys[node]) for node in ids}
    alive = [node for node in ids if node not in crash]
    rng = random.Random(seed)
    queue: list[tuple[str, Any]] = []

    def send(messages: list[Any]) -> None:
        for message in messages:
            targets = [t for t in ([message.recipient] if message.recipient else ids)]
            targets = [t for t in targets if t != message.sender]
            if message.sender in equivocate and message.kind.name == "PROPOSE":
                # One block to the first half of the others, another to the second half, and
                # both to the last of them.
                half = len(targets) // 2
                queue.extend((t, message) for t in targets[-1:])
                other = _equivocated(
                    message, keys[message.sender], replicas[message.sender].cluster
                )
                queue.extend((t, message) for t in targets[:half])
                queue.extend((t, other) for t in targets[half:])
                continue
            queue.extend((t, message) for t in targets)

    proposers = alive or ids
    for index in range(values):
        node = proposers[index % len(proposers)]
        send(replicas[node].propose(f"value {index}".encode()))
    ticks = 0
    honest = [node for node in alive if node not in equivocate]
    while ticks < 2000 and not all(len(replicas[node].decisions) >= values for node in honest):
        while queue:
            batch, queue[:] = list(queue), []
            rng.shuffle(batch)
            for target, message in batch:
                if target in alive:
                    send(replicas[target].receive(message))
        for node in alive:
            send(replicas[node].tick())
        ticks += 1
    correct = [node for node in alive if node not in equivocate]
    decided = {node: [d.value for d in replicas[node].decisions] for node in correct}
    logs = list(decided.values())
    checked = forged = "ok"
    for node in alive:
        for decision in replicas[node].decisions:
            try:
                verify_decision(decision, members)
            except XdvError as error:
                checked = error.code.name
    if forge is not None and alive and replicas[alive[0]].decisions:
        decision = replicas[alive[0]].decisions[0]
        certificate = decision.certificate
        votes = list(certificate.votes)
        if forge == "value":
            decision = dataclasses.replace(decision, value=decision.value + b"!")
        elif forge == "signer":
            votes = votes[:-1]
        else:
            voter, signature = votes[0]
            votes[0] = (voter, signature[:-1] + bytes([signature[-1] ^ 0x01]))
        if forge != "value":
            changed = dataclasses.replace(certificate, votes=tuple(votes))
            decision = dataclasses.replace(decision, certificate=changed)
        try:
            verify_decision(decision, members)
        except XdvError as error:
            forged = error.code.name
    return {
        "decided": min((len(log) for log in logs), default=0),
        "agreement": all(log == logs[0] for log in logs),
        "valid": all(value.startswith(b"value ") for log in logs for value in log),
        "view_changes": max((replicas[node].view_changes for node in alive), default=0),
        "evidence": sorted({e.kind.name for node in correct for e in replicas[node].evidence}),
        "verify": checked,
        "forged": forged,
        "record": hashlib.sha256(
            json.dumps(
                [
                    [
                        [[e.event_type.name, jsonable(e.metadata)] for e in replicas[node].events],
                        [d.summary() for d in replicas[node].decisions],
                    ]
                    for node in alive
                ],
                sort_keys=True,
            ).encode()
        ).hexdigest(),
    }


class InProcessExecutor:
    """XDV itself, driven through :mod:`xdv.runtime` in this process (the fast path)."""

    def __init__(self, key_store: Path) -> None:
        self.key_store = key_store
        self._node: ServiceNode | None = None

    def identity(self) -> Identity:
        return Identity("xdv", _version(), xdv_code_digest())

    def _outcome(
        self, workload: Any, options: dict[str, Any], trace: Path, faults: Any = None
    ) -> Any:

        request = RunRequest(
            workload,
            seed=int(options.get("seed", 0)),
            trace=trace,
            key_store=self.key_store,
            witness_dir=trace.parent,
            handle_signals=False,
            faults=faults,
            isolation="process" if options.get("isolate") else "inprocess",
        )
        return run_workload(request)

    def run(self, program: Path, options: dict[str, Any], trace: Path) -> Observation:

        faults = None
        if "faults" in options:
            try:
                faults = FaultPlan.from_file(options["faults"])
            except XdvError as error:
                return Observation("usage", error.code.name)
        try:
            if program.suffix == ".ds":
                workload = load_dpl_program(str(program), options.get("entry"))[0]
            else:
                workload = load_workload(str(program))
        except XdvError as error:
            return self._static(error)
        try:
            outcome = self._outcome(workload, options, trace, faults)
        except XdvError as error:
            static = error.code is ErrorCode.WORKLOAD_INVALID
            return Observation("static" if static else "runtime", error.code.name)
        document = _json(outcome.to_json())
        exit_class, code = _classify_run(bool(document["ok"]), document["exits"])
        return Observation(exit_class, code, outputs=document["outputs"], trace=trace)

    @staticmethod
    def _static(error: XdvError) -> Observation:
        from xdv.dpl import DplStaticError

        if isinstance(error, DplStaticError):
            records = [d.to_json(error.source) for d in error.diagnostics]
            found = [f"{r['code']}@{r['line']}" for r in records if r["severity"] == "error"]
            return Observation("static", error.code.name, diagnostics=found)
        return Observation("static", error.code.name)

    def check(self, program: Path, options: dict[str, Any]) -> Observation:
        from xdv.dpl import compile_source, read_text

        try:
            compile_source(read_text(program), program.name, options.get("profile"))
        except XdvError as error:
            return self._static(error)
        return Observation("ok")

    def qrun(self, circuit: Path, options: dict[str, Any], trace: Path) -> Observation:

        try:
            workload = q_job(
                circuit.read_text(encoding="utf-8"),
                name=circuit.name,
                shots=int(options.get("shots", 1024)),
                provider=str(options.get("provider", "aer")),
                calibration=options.get("calibration"),
                noise=bool(options.get("noise", False)),
                fidelity_min=options.get("fidelity_min"),
            )
        except XdvError as error:
            return Observation("static", error.code.name)
        return self._job(workload, options, trace, lambda outcome: q_report(outcome))

    def phirun(self, problem: Path, options: dict[str, Any], trace: Path) -> Observation:

        problem_format = str(options.get("format", "gset"))
        try:
            workload = phi_job(
                problem,
                problem_format=problem_format,
                provider=str(options.get("provider", "exact")),
                work_limit=options.get("work_limit"),
            )
        except XdvError as error:
            return Observation("static", error.code.name)
        return self._job(
            workload,
            options,
            trace,
            lambda outcome: phi_report(outcome, source=problem.name, problem_format=problem_format),
        )

    def _job(self, workload: Any, options: dict[str, Any], trace: Path, report: Any) -> Observation:
        try:
            outcome = self._outcome(workload, options, trace)
        except XdvError as error:
            static = error.code is ErrorCode.WORKLOAD_INVALID
            return Observation("static" if static else "runtime", error.code.name)
        try:
            document = _json(report(outcome))
        except XdvError as error:
            return Observation("runtime", error.code.name, trace=trace)
        return Observation("ok", result=document, trace=trace)

    def verify(self, trace: Path) -> tuple[bool, str | None]:

        try:
            report = verify_trace(trace)
            if not report.ok:
                error = report.error
                return False, None if error is None else error.code.name
            verify_audit(trace, None, trusted=None, require_signature=False, allow_open=False)
        except XdvError as error:
            return False, error.code.name
        return True, None

    def replay(self, trace: Path, mode: str = "reexecute") -> tuple[bool, str]:
        try:
            report = replay_trace(trace, mode)
        except XdvError as error:
            return False, f"{mode} replay refused: {error.code.name}: {error.message}"
        if report.ok:
            return True, ""
        divergence = report.divergence
        index = "?" if divergence is None else divergence.index
        return False, f"{mode} replay diverged at entry {index}"

    def telemetry(self, trace: Path, thresholds: Path | None) -> dict[str, Any]:
        from xdv.telemetry import load_thresholds, metrics_from_trace, render

        limits = load_thresholds(thresholds) if thresholds is not None else None
        snapshot = metrics_from_trace(trace, thresholds=limits)
        document: dict[str, Any] = json.loads(render(snapshot, "snapshot"))
        return document

    def attest(self, home: Path, nonce: str | None, quote: Path, expected: Path) -> str | None:
        from xdv.service import boot_node

        try:
            boot = boot_node(home, options={"runners": 2, "durable": False})
            signed = boot.quote(None if nonce is None else bytes.fromhex(nonce))
        except XdvError as error:
            return error.code.name
        quote.write_text(json.dumps(signed.to_document(), sort_keys=True), encoding="utf-8")
        reference = expected_measurements(signed)
        expected.write_text(json.dumps(reference, sort_keys=True), encoding="utf-8")
        return None

    def verify_quote(
        self, quote: Path, expected: Path | None, nonce: str | None, trusted: str | None
    ) -> QuoteVerdict:
        document = json.loads(quote.read_text(encoding="utf-8"))
        reference = None if expected is None else json.loads(expected.read_text("utf-8"))
        try:
            verify_quote(
                document,
                trusted_key=trusted,
                nonce=None if nonce is None else bytes.fromhex(nonce),
                expected=reference,
            )
        except XdvError as error:
            return QuoteVerdict(False, error.code.name, _differences(dict(error.details)))
        return QuoteVerdict(True)

    def view(self, trace: Path, at: int) -> ViewAnswer:
        import warnings

        from xdv.view import create_view_app

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fastapi.testclient import TestClient

        pages = []
        state: dict[str, Any] = {}
        for _ in range(2):  # two independent server instances over the same trace
            with TestClient(create_view_app(trace)) as client:
                answer = client.get("/state", params={"L": at})
                answer.raise_for_status()
                state = answer.json()
                page = client.get("/", params={"L": at})
                page.raise_for_status()
                pages.append(page.content)
        return ViewAnswer(state, (pages[0], pages[1]))

    def model_check(self, system: Path, options: dict[str, Any]) -> dict[str, Any]:
        import importlib.util

        spec = importlib.util.spec_from_file_location(f"xdv_cts_model_{system.stem}", system)
        if spec is None or spec.loader is None:
            raise XdvError("cannot load the system", code=ErrorCode.CTS_CASE_INVALID)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        try:
            spec.loader.exec_module(module)
            explored: Any = module.system(options.get("planted"))
            result: Any = explore(explored, depth_max=int(options.get("depth", 2)))
        finally:
            sys.modules.pop(spec.name, None)
        found = result.counterexample
        return {
            "states": result.states,
            "transitions": result.transitions,
            "depth": result.depth,
            "violation": found is not None,
            "counterexample": None if found is None else len(found.actions),
            "summary": result.summary(),
        }

    def cluster(
        self,
        jobs: list[Path],
        options: dict[str, Any],
        nodes: int,
        kill: str | None,
        trace_dir: Path,
        key_store: Path,
    ) -> dict[str, Any]:
        """Run ``jobs`` on ``nodes`` in-process nodes (``node-1``…), losing ``kill`` once the
        first epoch's batches are out; write the signed cluster trace to ``trace_dir``."""
        from xdv.cluster import ClusterNode, Coordinator, JobSpec, LocalBackend
        from xdv.cluster import write_cluster_trace as write

        seed = int(options.get("seed", 0))
        specs = [
            JobSpec(cluster_job_id(index, path), "run", str(path), seed=seed)
            for index, path in enumerate(jobs)
        ]
        keys = NodeKey(key_store).keys()
        width = len(str(nodes))
        members = [ClusterNode(f"node-{n:0{width}d}") for n in range(1, nodes + 1)]
        backend = LocalBackend(members)

        def on_dispatch(epoch: int, batches: dict[str, list[str]]) -> None:
            if kill is not None and epoch == 0:
                backend.kill(kill)

        try:
            run = Coordinator(backend, keys).run(specs, on_dispatch=on_dispatch)
        finally:
            for member in members:
                member.shutdown()
        write(run, trace_dir, keys)
        return _cluster_document(run)

    def verify_cluster(self, directory: Path) -> tuple[bool, str | None]:
        from xdv.cluster import verify_cluster_trace

        try:
            verify_cluster_trace(directory)
        except XdvError as error:
            return False, error.code.name
        return True, None

    def transport(self, handshake: str, frames: int, deliver: list[str]) -> dict[str, Any]:
        """A seeded link between two members: the handshake, ``frames`` frames sealed by the
        initiator, then the ``deliver`` script run against the responder (``N`` delivers frame
        ``N``; ``N:header``/``N:ciphertext``/``N:tag`` a copy with one byte changed there;
        ``N:truncated``/``N:extended``; ``own`` a frame the responder sealed itself)."""
        initiator, responder, verdict = _link_pair(handshake)
        if responder is None:
            return {"handshake": verdict, "opened": [], "refused": []}
        sealed = [initiator.seal(f"frame {index}".encode()) for index in range(frames)]
        opened: list[int] = []
        refused: list[str] = []
        for step in deliver:
            number, _, how = step.partition(":")
            frame = responder.seal(b"own") if number == "own" else sealed[int(number)]
            if how:
                frame = _damage_frame(frame, how)
            try:
                payload = responder.open(frame)
            except XdvError as error:
                refused.append(error.code.name)
                continue
            opened.append(int(payload.decode().split()[1]))
        records = [refusal.to_record() for refusal in responder.refusals]
        return {
            "handshake": verdict,
            "opened": opened,
            "refused": refused,
            "recorded": [record["code"] for record in records],
        }

    def consensus(
        self,
        n: int,
        values: int,
        crash: list[str],
        seed: int,
        forge: str | None,
        equivocate: list[str],
    ) -> dict[str, Any]:
        """Agreement among ``n`` seeded replicas (``n00``…) on ``values`` values over a seeded
        network (each tick's deliveries shuffled by ``seed``), the members in ``crash`` silent
        from the start and those in ``equivocate`` sending, as leader, one block to half of
        the others and another to the rest; each decision checked offline, and one decision
        forged as ``forge`` says (``signature``, ``value``, ``signer``) and checked again."""
        return _agree(n, values, crash, seed, forge, equivocate)

    def service(self) -> ServiceNode:
        """XDV's node, ``python -m xdv serve``, in a home beside the key store."""
        if self._node is None:
            home = self.key_store.parent / "node"
            self._node = ServiceNode([sys.executable, "-m", "xdv"], home)
        return self._node

    def close(self) -> None:
        if self._node is not None:
            self._node.close()


class AdapterExecutor:
    """Another implementation, driven through the adapter contract: ``CMD`` is a command line
    (split like a shell would) to which the contract's arguments are appended."""

    def __init__(self, command: str, home: Path, timeout_s: float = 120.0) -> None:
        self.command = command
        try:
            self.argv = shlex.split(command)
        except ValueError as error:
            raise XdvError(
                f"--impl is not a command line: {error}",
                code=ErrorCode.CTS_ADAPTER_FAILED,
                where="--impl",
            ) from None
        if not self.argv:
            raise XdvError("--impl is empty", code=ErrorCode.CTS_ADAPTER_FAILED, where="--impl")
        self.home = home
        self.timeout_s = timeout_s
        self._node: ServiceNode | None = None

    def _call(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "XDV_HOME": str(self.home)}
        try:
            return subprocess.run(
                [*self.argv, *arguments],
                capture_output=True,
                text=True,
                env=environment,
                timeout=self.timeout_s,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise XdvError(
                f"the implementation could not be run: {type(error).__name__}: {error}",
                code=ErrorCode.CTS_ADAPTER_FAILED,
                where=self.command,
            ) from None

    def identity(self) -> Identity:
        answer = self._call("--version")
        version = answer.stdout.strip().splitlines()[-1] if answer.stdout.strip() else ""
        if answer.returncode != 0 or not version:
            raise XdvError(
                f"`{self.command} --version` gave no version (exit {answer.returncode})",
                code=ErrorCode.CTS_ADAPTER_FAILED,
                where=self.command,
            )
        name = version.split()[0].rstrip(",:") if version.split() else self.argv[0]
        digest = hashlib.sha256(f"{self.command}\n{version}".encode()).hexdigest()
        return Identity(name, version, digest, self.command)

    @staticmethod
    def _document(answer: subprocess.CompletedProcess[str]) -> dict[str, Any] | None:
        for line in reversed(answer.stdout.strip().splitlines()):
            try:
                document = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(document, dict):
                return document
        return None

    def _observe(self, answer: subprocess.CompletedProcess[str], trace: Path | None) -> Observation:
        exit_class = EXIT_BY_STATUS.get(answer.returncode, f"status {answer.returncode}")
        document = self._document(answer)
        if document is None:
            return Observation(exit_class, note="no JSON document on stdout")
        error = document.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        exits = document.get("exits")
        if code is None and isinstance(exits, dict):
            code = _first_failure(exits)
        diagnostics = [
            f"{d.get('code')}@{d.get('line')}" if d.get("line") is not None else str(d.get("code"))
            for d in document.get("diagnostics") or ()
            if isinstance(d, dict) and d.get("severity", "error") == "error"
        ]
        outputs = document.get("outputs")
        written = trace if trace is not None and trace.is_file() else None
        return Observation(
            exit_class,
            None if code is None else str(code),
            diagnostics=diagnostics,
            outputs=outputs if isinstance(outputs, list) else [],
            result=document,
            trace=written,
        )

    def run(self, program: Path, options: dict[str, Any], trace: Path) -> Observation:
        arguments = ["run", str(program), "--seed", str(options.get("seed", 0))]
        arguments += ["--trace", str(trace), "--json"]
        if "entry" in options:
            arguments += ["--entry", str(options["entry"])]
        if "faults" in options:
            arguments += ["--faults", str(options["faults"])]
        if options.get("isolate"):
            arguments.append("--isolate")
        return self._observe(self._call(*arguments), trace)

    def check(self, program: Path, options: dict[str, Any]) -> Observation:
        arguments = ["check", str(program), "--json"]
        if "profile" in options:
            arguments += ["--profile", str(options["profile"])]
        return self._observe(self._call(*arguments), None)

    def qrun(self, circuit: Path, options: dict[str, Any], trace: Path) -> Observation:
        arguments = ["qrun", str(circuit), "--shots", str(options.get("shots", 1024))]
        arguments += ["--seed", str(options.get("seed", 0)), "--trace", str(trace), "--json"]
        if "provider" in options:
            arguments += ["--provider", str(options["provider"])]
        if "calibration" in options:
            arguments += ["--calibration", str(options["calibration"])]
        if options.get("noise"):
            arguments.append("--noise")
        if "fidelity_min" in options:
            arguments += ["--fidelity-min", str(options["fidelity_min"])]
        return self._observe(self._call(*arguments), trace)

    def phirun(self, problem: Path, options: dict[str, Any], trace: Path) -> Observation:
        arguments = ["phirun", str(problem), "--format", str(options.get("format", "gset"))]
        arguments += ["--provider", str(options.get("provider", "exact"))]
        arguments += ["--seed", str(options.get("seed", 0)), "--trace", str(trace), "--json"]
        if "work_limit" in options:
            arguments += ["--work-limit", str(options["work_limit"])]
        return self._observe(self._call(*arguments), trace)

    def verify(self, trace: Path) -> tuple[bool, str | None]:
        answer = self._call("verify", str(trace), "--json")
        document = self._document(answer) or {}
        error = document.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        return answer.returncode == 0, None if code is None else str(code)

    def replay(self, trace: Path, mode: str = "reexecute") -> tuple[bool, str]:
        answer = self._call("replay", str(trace), "--mode", mode, "--json")
        if answer.returncode == 0:
            return True, ""
        tail = answer.stdout.strip()[-200:]
        return False, f"{mode} replay exited {answer.returncode}: {tail}"

    def telemetry(self, trace: Path, thresholds: Path | None) -> dict[str, Any]:
        arguments = ["telemetry", str(trace), "--format", "snapshot", "--json"]
        if thresholds is not None:
            arguments += ["--thresholds", str(thresholds)]
        answer = self._call(*arguments)
        document = self._document(answer)
        if answer.returncode != 0 or document is None:
            raise XdvError(
                f"`telemetry` exited {answer.returncode}: {answer.stdout.strip()[-200:]}",
                code=ErrorCode.CTS_ADAPTER_FAILED,
            )
        return document

    def attest(self, home: Path, nonce: str | None, quote: Path, expected: Path) -> str | None:
        arguments = ["node", "attest", "--home", str(home), "-o", str(quote)]
        arguments += ["--expected-out", str(expected), "--json"]
        if nonce is not None:
            arguments += ["--nonce", nonce]
        answer = self._call(*arguments)
        error = (self._document(answer) or {}).get("error")
        if answer.returncode != 0 and isinstance(error, dict) and error.get("code"):
            return str(error["code"])
        if answer.returncode != 0 or not quote.is_file() or not expected.is_file():
            raise XdvError(
                f"`node attest` exited {answer.returncode}: {answer.stdout.strip()[-200:]}",
                code=ErrorCode.CTS_ADAPTER_FAILED,
            )
        return None

    def verify_quote(
        self, quote: Path, expected: Path | None, nonce: str | None, trusted: str | None
    ) -> QuoteVerdict:
        arguments = ["node", "verify-quote", str(quote), "--json"]
        if expected is not None:
            arguments += ["--expected", str(expected)]
        if nonce is not None:
            arguments += ["--nonce", nonce]
        if trusted is not None:
            arguments += ["--trusted-key", trusted]
        answer = self._call(*arguments)
        document = self._document(answer) or {}
        error = document.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        return QuoteVerdict(
            answer.returncode == 0,
            None if code is None else str(code),
            _differences(document),
        )

    def view(self, trace: Path, at: int) -> ViewAnswer:
        import socket
        import time

        import httpx

        pages = []
        state: dict[str, Any] = {}
        for _ in range(2):  # two independent server processes over the same trace
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            environment = {**os.environ, "XDV_HOME": str(self.home)}
            server = subprocess.Popen(
                [*self.argv, "view", str(trace), "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=environment,
            )
            try:
                base = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + self.timeout_s
                while True:
                    try:
                        answer = httpx.get(f"{base}/state", params={"L": at}, timeout=5)
                        break
                    except httpx.TransportError:
                        if server.poll() is not None or time.monotonic() > deadline:
                            raise XdvError(
                                f"`view` did not serve on port {port}",
                                code=ErrorCode.CTS_ADAPTER_FAILED,
                            ) from None
                        time.sleep(0.1)
                answer.raise_for_status()
                state = answer.json()
                page = httpx.get(f"{base}/", params={"L": at}, timeout=5)
                page.raise_for_status()
                pages.append(page.content)
            finally:
                server.terminate()
                server.wait(timeout=10)
        return ViewAnswer(state, (pages[0], pages[1]))

    def model_check(self, system: Path, options: dict[str, Any]) -> dict[str, Any]:
        raise Unsupported("the adapter contract has no model-checking command")

    def cluster(
        self,
        jobs: list[Path],
        options: dict[str, Any],
        nodes: int,
        kill: str | None,
        trace_dir: Path,
        key_store: Path,
    ) -> dict[str, Any]:
        if kill is not None:
            raise Unsupported("the adapter contract has no command that loses a node")
        arguments = ["cluster", "run", *map(str, jobs), "--nodes", str(nodes), "--local"]
        arguments += ["--seed", str(options.get("seed", 0)), "--trace", str(trace_dir)]
        arguments += ["--key-store", str(key_store), "--json"]
        answer = self._call(*arguments)
        document = self._document(answer)
        if document is None or not isinstance(document.get("jobs"), list):
            raise XdvError(
                f"`cluster run` exited {answer.returncode}: {answer.stdout.strip()[-200:]}",
                code=ErrorCode.CTS_ADAPTER_FAILED,
            )
        return document

    def verify_cluster(self, directory: Path) -> tuple[bool, str | None]:
        return self.verify(directory)

    def transport(self, handshake: str, frames: int, deliver: list[str]) -> dict[str, Any]:
        raise Unsupported("the adapter contract has no command that drives a cluster link")

    def consensus(
        self,
        n: int,
        values: int,
        crash: list[str],
        seed: int,
        forge: str | None,
        equivocate: list[str],
    ) -> dict[str, Any]:
        raise Unsupported("the adapter contract has no command that drives agreement replicas")

    def service(self) -> ServiceNode:
        if self._node is None:
            self._node = ServiceNode(self.argv, self.home / "node", self.timeout_s)
        return self._node

    def close(self) -> None:
        if self._node is not None:
            self._node.close()
