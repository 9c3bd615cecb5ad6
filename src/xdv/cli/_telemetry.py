"""``xdv telemetry``: metrics, spans and alerts derived from a trace, as Prometheus text,
OTLP/JSON or the canonical snapshot, or sent to an OTLP/HTTP receiver.

The telemetry package (OpenTelemetry, prometheus_client) is imported inside the command, never
when ``xdv`` starts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from xdv.cli._common import EXIT_MISMATCH, EXIT_RUNTIME, EXIT_USAGE, fail
from xdv.errors import ErrorCode, TraceError, XdvError

__all__ = ["register"]

_USAGE_CODES = frozenset(
    {
        ErrorCode.TELEMETRY_THRESHOLDS_INVALID,
        ErrorCode.TELEMETRY_FORMAT_UNKNOWN,
        ErrorCode.TELEMETRY_ENDPOINT_INVALID,
        ErrorCode.INVALID_ARGUMENT,
    }
)


@click.command("telemetry")
@click.argument("trace_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "format_name",
    default="prometheus",
    show_default=True,
    help="prometheus (text exposition), otlp-json (OTLP/JSON lines: metrics, then spans) or "
    "snapshot (the canonical JSON snapshot).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write there instead of standard output.",
)
@click.option(
    "--endpoint", help="Send the metrics and spans to this OTLP/HTTP receiver (base URL)."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=600),
    default=10.0,
    show_default=True,
    help="Seconds the OTLP export may take, retries included.",
)
@click.option("--alerts", "show_alerts", is_flag=True, help="Print the threshold alerts instead.")
@click.option(
    "--thresholds",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A JSON object of alert thresholds (docs/telemetry.md); the rest keep their defaults.",
)
@click.option("--allow-open", is_flag=True, help="Accept a trace without a run end.")
@click.option("--json", "as_json", is_flag=True, help="Errors and export summaries as JSON.")
def telemetry(
    trace_path: Path,
    format_name: str,
    output: Path | None,
    endpoint: str | None,
    timeout: float,
    show_alerts: bool,
    thresholds: Path | None,
    allow_open: bool,
    as_json: bool,
) -> None:
    """Metrics, spans and alerts derived from TRACE (a pure function of its bytes)."""
    from xdv.telemetry import (
        alerts_jsonl,
        check_format,
        export_otlp,
        load_thresholds,
        metrics_from_trace,
        render,
    )

    try:
        limits = load_thresholds(thresholds) if thresholds is not None else None
        check_format(format_name)  # refused before the trace is read
        snapshot = metrics_from_trace(trace_path, thresholds=limits, allow_open=allow_open)
    except TraceError as error:
        fail(error, EXIT_MISMATCH, as_json)
    except XdvError as error:
        fail(error, EXIT_USAGE if error.code in _USAGE_CODES else EXIT_RUNTIME, as_json)
    if endpoint is not None:
        try:
            sent = export_otlp(snapshot, endpoint, timeout=timeout)
        except XdvError as error:
            fail(error, EXIT_USAGE if error.code in _USAGE_CODES else EXIT_RUNTIME, as_json)
        summary = {"ok": True, "endpoint": endpoint, **sent}
        message = f"sent {sent['metrics']} metrics and {sent['spans']} spans to {endpoint}"
        if as_json:
            click.echo(json.dumps(summary, sort_keys=True))
        else:
            click.echo(message, err=True)
        if output is None and not show_alerts:
            return
    text = alerts_jsonl(snapshot) if show_alerts else render(snapshot, format_name)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def register(group: click.Group) -> None:
    """Add ``xdv telemetry`` to the ``xdv`` command group."""
    group.add_command(telemetry)
