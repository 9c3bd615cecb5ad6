"""Φ-domain commands: ``xdv phirun`` (a MaxCut or BQM problem as a Φ job) and
``xdv witness verify`` (offline re-verification of a witness file)."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from xdv.core import KDomainManager, Kernel, Operation
from xdv.errors import ErrorCode, XdvError
from xdv.security import AttestationVerifier, KeyStore, TokenAuthority
from xdv.syscalls import Emit, Invoke, Release, Reserve
from xdv.trace import jsonable

__all__ = ["phirun", "register", "run_phi_job", "witness"]

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
_EXIT_OK, _EXIT_MISMATCH, _EXIT_USAGE, _EXIT_STATIC, _EXIT_RUNTIME = 0, 1, 64, 65, 70


def phi_job(
    problem: Any, terms: dict[str, Any], options: dict[str, Any], operation: str = "anneal"
) -> Generator[Any, Any, Any]:
    """The K anchor of a Φ job: reserve a coherence-window contract, anneal (phase provider) or
    optimize (exact provider), release."""

    contract = yield Reserve("Φ", "envelope", terms=terms)
    result = yield Invoke(contract, operation, (problem, options))
    yield Emit({"energy": result["energy"], "witness": result["witness"]["digest"]})
    yield Release(contract)
    return result


def run_phi_job(
    problem_path: Path,
    *,
    problem_format: str,
    provider: str,
    seed: int,
    budget_ms: float | None,
    trace: Path | None,
    witness_dir: Path | None,
    progress: Callable[[int, int], None] | None = None,
    schedule: dict[str, Any] | None = None,
    keys: Any = None,
    work_limit: float | None = None,
) -> dict[str, Any]:
    """Run ``problem_path`` as a Φ job through the kernel; return the structured report.

    On the phase provider the job anneals: ``schedule`` overrides the anneal schedule
    (defaults: 16 replicas, 3000 steps) and ``budget_ms`` sets its length in modelled device
    milliseconds. On the exact provider it optimizes with CP-SAT within ``work_limit`` units of
    deterministic time (default: the provider's). ``keys`` (an ``xdv.security.HybridKeyPair``)
    signs the witness, else it carries a digest only.
    """
    from xdv.domains.phi import HybridSigner, IsingProblem, PhiDomainManager, parse_gset

    total_weight: float | None = None
    if problem_format == "gset":
        problem, total_weight = parse_gset(problem_path)
    else:
        try:
            raw = json.loads(problem_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise XdvError(
                f"cannot read {problem_path.name} as JSON: {error}",
                code=ErrorCode.PHI_ERR_PROBLEM_INVALID,
                where=str(problem_path),
            ) from None
        problem = IsingProblem.parse(raw)
    if provider == "exact" and (budget_ms is not None or schedule):
        raise XdvError(
            "an anneal budget or schedule applies to the phase provider; the exact provider's "
            "search is bounded by --work-limit (deterministic time)",
            code=ErrorCode.OPERATION_UNSUPPORTED,
            where="--budget-ms",
        )
    if provider == "phase" and work_limit is not None:
        raise XdvError(
            "--work-limit bounds the exact provider's search; the phase provider's anneal "
            "length is --budget-ms",
            code=ErrorCode.OPERATION_UNSUPPORTED,
            where="--work-limit",
        )
    written: list[Path] = []

    def sink(document: dict[str, Any]) -> None:
        if witness_dir is None:
            return
        from xdv.domains.phi import payload_digest

        digest = payload_digest(document["payload"])
        witness_dir.mkdir(parents=True, exist_ok=True)
        path = witness_dir / f"witness-{digest[:16]}.json"
        path.write_text(json.dumps(jsonable(document), sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)

    signer = HybridSigner(keys) if keys is not None else None
    manager = PhiDomainManager(window=1_000_000, witness_sink=sink, signer=signer)
    manager.set_progress(progress)
    operation = "optimize" if provider == "exact" else "anneal"
    options: dict[str, Any]
    if operation == "optimize":
        options = {} if work_limit is None else {"work_limit": work_limit}
    else:
        options = {"replicas": 16, "steps": 3000}
        options.update(schedule or {})
        if budget_ms is not None:
            options.pop("steps")
            options["budget_ms"] = budget_ms
    digest = hashlib.sha256(problem_path.read_bytes()).hexdigest()
    kernel = Kernel(
        seed,
        trace=trace,
        domains=[KDomainManager(), manager],
        workload={
            "target": f"phirun:{problem_path.name}",
            "entry": problem_format,
            "digest": digest,
        },
        authority=TokenAuthority(),
        attestation=AttestationVerifier(),
    )
    terms = {"provider": provider}
    pid = kernel.spawn(
        phi_job, problem, terms, options, operation, name="phirun", domains=("K", "Φ")
    )
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")
    run = kernel.run()
    status = run.exits.get(pid)
    if status is None or not status.ok:
        code = (status.code if status else None) or "PROCESS_FAULT"
        message = status.message if status else "the job did not finish"
        raise XdvError(f"the Φ job failed: {code}: {message}", code=ErrorCode[code], where="phirun")
    result = status.value
    report: dict[str, Any] = {
        "problem": {"file": problem_path.name, "format": problem_format, **problem.summary()},
        "provider": provider,
        "energy": result["energy"],
        "stability": result["stability"],
        "witness": {
            "digest": result["witness"]["digest"],
            "file": str(written[0]) if written else None,
        },
        "trace": str(trace) if trace else None,
        "head_hash": run.head_hash,
        "seed": seed,
        "wall_seconds": run.wall_seconds,
    }
    if operation == "anneal":
        report["order_parameter"] = result["order_parameter"]
        report["readout"] = result["readout"]
        if total_weight is not None:
            report["cut"] = (total_weight - (result["energy"] - problem.offset)) / 2
    else:
        report["status"] = result["status"]
        report["bound"] = result["bound"]
        report["solver"] = result["solver"]
        if "cut" in result:
            report["cut"] = result["cut"]
            report["cut_bound"] = result["cut_bound"]
    return report


@click.command("phirun")
@click.argument("problem_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "problem_format",
    type=click.Choice(["gset", "bqm-json"]),
    default="gset",
    show_default=True,
    help="gset: a MaxCut graph; bqm-json: an Ising/QUBO problem in the Φ dictionary form.",
)
@click.option(
    "--provider", type=click.Choice(["phase", "exact"]), default="phase", show_default=True
)
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True)
@click.option(
    "--budget-ms",
    type=click.FloatRange(0.001, 1e6),
    help="Anneal length in modelled device milliseconds (never wall time); phase provider.",
)
@click.option(
    "--work-limit",
    type=click.FloatRange(0.001, 600.0),
    help="Exact provider: CP-SAT deterministic-time limit (a work measure, never wall time; "
    "default 10).",
)
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--witness-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the signed witness goes (default: beside the trace, or the current directory).",
)
@click.option(
    "--key-store",
    type=click.Path(file_okay=False, path_type=Path),
    help="Node key store whose key signs the witness (default $XDV_HOME/keys or ~/.xdv/keys).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def phirun(
    problem_file: Path,
    problem_format: str,
    provider: str,
    seed: int,
    budget_ms: float | None,
    work_limit: float | None,
    trace_path: Path | None,
    witness_dir: Path | None,
    key_store: Path | None,
    as_json: bool,
) -> None:
    """Solve a MaxCut (G-set) or BQM problem as a Φ job: capability, coherence-window contract,
    provider (phase: anneal; exact: CP-SAT optimization), classical verification, witness and
    trace."""
    if not problem_file.is_file():
        fail(XdvError(f"no such file: {problem_file}", where="phirun"), _EXIT_USAGE, as_json)
    if witness_dir is None:
        witness_dir = trace_path.parent if trace_path else Path.cwd()
    show_progress = not as_json and err_console.is_terminal and provider == "phase"
    try:
        store = KeyStore(key_store) if key_store is not None else KeyStore.default()
        keys, created = store.load_or_create()
        if created and not as_json:
            err_console.print(
                f"[dim]created node key {keys.public.fingerprint[:16]}… in {store.path}[/]"
            )
        if show_progress:
            with Progress(
                TextColumn("anneal"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            ) as bar:
                task = bar.add_task("anneal", total=None)

                def advance(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                report = run_phi_job(
                    problem_file,
                    problem_format=problem_format,
                    provider=provider,
                    seed=seed,
                    budget_ms=budget_ms,
                    trace=trace_path,
                    witness_dir=witness_dir,
                    progress=advance,
                    keys=keys,
                    work_limit=work_limit,
                )
        else:
            report = run_phi_job(
                problem_file,
                problem_format=problem_format,
                provider=provider,
                seed=seed,
                budget_ms=budget_ms,
                trace=trace_path,
                witness_dir=witness_dir,
                keys=keys,
                work_limit=work_limit,
            )
    except XdvError as error:
        static = error.code in (ErrorCode.PHI_ERR_PROBLEM_INVALID, ErrorCode.OPERATION_UNSUPPORTED)
        fail(error, _EXIT_STATIC if static else _EXIT_RUNTIME, as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, **jsonable(report)}, sort_keys=True))
        return
    if "cut" in report:
        click.echo(f"cut {report['cut']:g}")
    click.echo(f"energy {report['energy']:g}")
    stability = report["stability"]
    if "status" in report:
        bound = f"cut ≤ {report['cut_bound']:g}" if "cut_bound" in report else ""
        click.echo(f"status {report['status']}  energy bound {report['bound']:g}  {bound}".rstrip())
        click.echo(
            f"stability {stability['stability']:.4f}  work {report['solver']['work']:.4g}  "
            f"checksum {stability['checksum']}"
        )
    else:
        click.echo(
            f"stability {stability['stability']:.4f}  noise index "
            f"{stability['noise_index']:.4f}  order parameter {report['order_parameter']:.4f}  "
            f"checksum {stability['checksum']}"
        )
    click.echo(f"witness {report['witness']['file'] or report['witness']['digest']}")
    if report["trace"]:
        click.echo(f"trace {report['trace']}")


@click.group("witness")
def witness() -> None:
    """Φ witnesses: signed, self-describing records of verified configurations."""


@witness.command("verify")
@click.argument("witness_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-recheck", is_flag=True, help="Skip re-deciding constraint sets.")
@click.option("--json", "as_json", is_flag=True)
def witness_verify(witness_file: Path, no_recheck: bool, as_json: bool) -> None:
    """Re-verify a witness offline: problem hash, configuration, signature (exit 1 if not)."""
    from xdv.domains.phi import verify_witness

    try:
        document = json.loads(witness_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        fail(
            XdvError(f"cannot read {witness_file}: {error}", where="witness verify"),
            _EXIT_USAGE,
            as_json,
        )
    try:
        report = verify_witness(document, recheck=not no_recheck)
    except XdvError as error:
        fail(error, _EXIT_MISMATCH, as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, **jsonable(report)}, sort_keys=True))
    else:
        click.echo(
            f"OK: {report['kind']} witness {report['digest'][:16]}…, status {report['status']}, "
            f"{report['signature']}"
        )


def fail(error: XdvError, exit_code: int, as_json: bool) -> Any:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": error.to_record()}, sort_keys=True))
    else:
        err_console.print(f"[bold red]error[/]: {error}")
    sys.exit(exit_code)


def register(group: click.Group) -> None:
    """Add the Φ commands to the ``xdv`` command group."""
    group.add_command(phirun)
    group.add_command(witness)
