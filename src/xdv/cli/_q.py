"""``xdv qrun`` and ``xdv calibrations``: the Q domain from the command line."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from xdv.cli._common import EXIT_OK, EXIT_RUNTIME, EXIT_STATIC, cli, err_console, fail
from xdv.core import KDomainManager
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import load_workload, run_workload


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--shots", type=click.IntRange(1, 10_000_000), default=1024, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True)
@click.option("--provider", type=click.Choice(["aer", "stim"]), default="aer", show_default=True)
@click.option("--method", help="Simulation method (aer: statevector, density_matrix, ...).")
@click.option("--calibration", help="Calibration profile (see `xdv calibrations`).")
@click.option("--noise", is_flag=True, help="Simulate the calibration's noise.")
@click.option(
    "--trace", "trace_path", type=click.Path(dir_okay=False, path_type=Path), help="Trace file."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def qrun(
    file: Path,
    shots: int,
    seed: int,
    provider: str,
    method: str | None,
    calibration: str | None,
    noise: bool,
    trace_path: Path | None,
    as_json: bool,
) -> None:
    """Run an OpenQASM 2 or 3 file as a Q job of a one-process workload; print its counts.

    The job takes the full path: capability (MEASURE), Q resource contract, calibration
    contract, decoherence budget, provider, trace.
    """
    from xdv.domains.q import QDomainManager, parse_circuit, provider_factories
    from xdv.domains.q.workloads import QRUN_TARGET, spawn_qrun

    source = file.read_text(encoding="utf-8")
    try:
        parsed = parse_circuit(source, str(file))
    except XdvError as error:
        fail(error, EXIT_STATIC, as_json)
    terms: dict[str, Any] = {"provider": provider}
    if method:
        terms["method"] = method
    if calibration:
        terms["calibration"] = calibration
    if noise:
        terms["noise"] = True
    results: list[dict[str, Any]] = []
    terms_granted: list[dict[str, Any]] = []
    try:
        manager = QDomainManager({provider: provider_factories()[provider]()})
        # The run is the parameterized workload `xdv replay` rebuilds from the trace; the
        # collectors only hand the result back here and leave no mark in the trace.
        loaded = load_workload(
            QRUN_TARGET,
            params={"circuit": source, "qubits": parsed.qubits, "shots": shots, "terms": terms},
        )
        params = dict(loaded.params or {})
        collecting = dataclasses.replace(
            loaded,
            function=lambda kernel: spawn_qrun(
                kernel,
                params["circuit"],
                params["qubits"],
                params["shots"],
                params["terms"],
                results=results,
                granted=terms_granted,
            ),
        )
        result = run_workload(
            collecting, seed=seed, trace=trace_path, domains=[KDomainManager(), manager]
        )
    except ImportError as error:
        fail(
            XdvError(f"provider {provider} is not installed: {error}", where="qrun"),
            EXIT_RUNTIME,
            as_json,
        )
    except XdvError as error:
        fail(error, EXIT_RUNTIME, as_json)
    failure = next((status for status in result.exits.values() if not status.ok), None)
    if failure is not None or not results:
        code = ErrorCode[failure.code] if failure and failure.code else ErrorCode.DOMAIN_FAULT
        message = failure.message if failure and failure.message else "the job did not run"
        fail(XdvError(message, code=code, where=str(file)), EXIT_RUNTIME, as_json)
    job = results[0]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": True,
                    "counts": job["counts"],
                    "shots": job["shots"],
                    "job": job,
                    "contract": terms_granted[0],
                    "trace": str(trace_path) if trace_path else None,
                    "head_hash": result.head_hash,
                },
                sort_keys=True,
            )
        )
    else:
        for bitstring, count in sorted(job["counts"].items(), key=lambda item: (-item[1], item[0])):
            click.echo(f"{bitstring} {count}")
        diagnostics = job["diagnostics"]
        err_console.print(
            f"[dim]{provider}/{terms_granted[0]['method']} on "
            f"{terms_granted[0]['calibration']['profile']}: {job['shots']} shots, "
            f"estimated duration {diagnostics['duration_ns']} ns (budget "
            f"{diagnostics['duration_ns_budget']} ns), estimated fidelity "
            f"{diagnostics['fidelity']}, trace {trace_path or 'not saved (use --trace PATH)'}[/]"
        )
    sys.exit(EXIT_OK)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--details", is_flag=True, help="Show each profile's medians.")
def calibrations(as_json: bool, details: bool) -> None:
    """List the calibration profiles (device snapshots) Q jobs can run under.

    Every profile found is listed; one that cannot be used is marked, with the reason.
    """
    from xdv.domains.q import DEFAULT_CALIBRATION, list_profiles

    listings = list_profiles()
    if as_json:
        rows = [listing.to_record() for listing in listings]
        click.echo(json.dumps({"default": DEFAULT_CALIBRATION, "profiles": rows}, sort_keys=True))
        return
    if not listings:
        err_console.print(
            "no calibration profiles: install qiskit-ibm-runtime (pip install 'xdv[q]')"
        )
        sys.exit(EXIT_RUNTIME)
    for listing in listings:
        mark = " (default)" if listing.name == DEFAULT_CALIBRATION else ""
        if listing.profile is None:
            click.echo(f"{listing.name}{mark}: unusable: {listing.reason}")
        elif details:
            row = listing.profile.summary()
            click.echo(
                f"{listing.name}{mark}: {row['qubits']} qubits, {row['two_qubit_gate']}, "
                f"T1 {row['t1_us_median']} us, T2 {row['t2_us_median']} us, "
                f"2q error {row['two_qubit_error_median']:.4g}, "
                f"readout {row['readout_error_median']:.4g}"
            )
        else:
            click.echo(f"{listing.name}{mark}")
