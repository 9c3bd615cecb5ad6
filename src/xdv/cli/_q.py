"""``xdv qrun`` and ``xdv calibrations``: the Q domain from the command line."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from xdv.cli._common import (
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_STATIC,
    cli,
    err_console,
    fail,
    interrupted,
    note_key,
    run_failure_exit,
    run_options,
    run_request,
)
from xdv.cli._progress import spinner
from xdv.errors import XdvError
from xdv.inputs import decode_text, read_bounded
from xdv.runtime import q_job, q_report, run

_QUBITS_LONG = 20  # circuits this wide show a spinner on a terminal
_REGISTER = re.compile(r"\b(?:qreg\s+\w+\s*\[\s*(\d+)\s*\]|qubit\s*\[\s*(\d+)\s*\])")


def _long(text: str) -> bool:
    """Whether a circuit declares at least ``_QUBITS_LONG`` qubits (a rough count of its
    quantum registers, only to decide whether to show a spinner)."""
    total = sum(int(a or b) for a, b in _REGISTER.findall(text))
    return total >= _QUBITS_LONG


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--shots", type=click.IntRange(1, 10_000_000), default=1024, show_default=True)
@click.option(
    "--provider",
    default="aer",
    show_default=True,
    help="aer, stim, or a provider plug-in (xdv.q_providers entry point or providers.toml).",
)
@click.option("--method", help="Simulation method (aer: statevector, density_matrix, ...).")
@click.option("--calibration", help="Calibration profile (see `xdv calibrations`).")
@click.option("--noise", is_flag=True, help="Simulate the calibration's noise.")
@click.option(
    "--fidelity-min",
    type=click.FloatRange(0.0, 1.0),
    help="Refuse the job (DECOHERENCE_EXCEEDED) if its estimated fidelity is below this.",
)
@run_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def qrun(
    file: Path,
    shots: int,
    provider: str,
    method: str | None,
    calibration: str | None,
    noise: bool,
    fidelity_min: float | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Run an OpenQASM 2 or 3 file as a Q job of a one-process workload; print its counts.

    The job takes the full path: capability (MEASURE), Q resource contract, calibration
    contract, decoherence budget, provider, trace. With --trace the run is audited and signed
    like any `xdv run`, and `xdv replay` rebuilds it from the trace alone.
    """
    try:
        text = decode_text(read_bounded(file, "source_bytes_max", what="circuit"), str(file))
        workload = q_job(
            text,
            name=str(file),
            shots=shots,
            provider=provider,
            method=method,
            calibration=calibration,
            noise=noise,
            fidelity_min=fidelity_min,
        )
    except XdvError as error:
        fail(error, EXIT_STATIC, as_json)
    try:
        with spinner(f"{provider} simulation", as_json or not _long(text)):
            outcome = run(run_request(workload, options))
    except XdvError as error:
        fail(error, run_failure_exit(error), as_json)
    note_key(outcome, as_json)
    if outcome.interrupted:
        interrupted(outcome, as_json)
    try:
        report = q_report(outcome)
    except XdvError as error:
        fail(XdvError(error.message, code=error.code, where=str(file)), EXIT_RUNTIME, as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, **report}, sort_keys=True))
    else:
        for bitstring, count in sorted(
            report["counts"].items(), key=lambda item: (-item[1], item[0])
        ):
            click.echo(f"{bitstring} {count}")
        diagnostics = report["job"]["diagnostics"]
        contract = report["contract"]
        err_console.print(
            f"[dim]{provider}/{contract['method']} on {contract['calibration']['profile']}: "
            f"{report['shots']} shots, estimated duration {diagnostics['duration_ns']} ns "
            f"(budget {diagnostics['duration_ns_budget']} ns), estimated fidelity "
            f"{diagnostics['fidelity']}, trace {report['trace'] or 'not saved (use --trace PATH)'}"
            "[/]"
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
