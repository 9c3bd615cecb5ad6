"""Q job diagnostics read back from a trace (XDV-072 §3): no provider, no state, only records."""

from __future__ import annotations

from typing import Any

from xdv.trace import Domain, EventType, Trace

__all__ = ["job_diagnostics"]


def job_diagnostics(trace: Trace) -> list[dict[str, Any]]:
    """One record per completed or refused Q job of ``trace``, in trace order.

    Each record joins the job's outcome (counts excluded) with its contract's terms: logical
    time, process, contract, job id, calibration, profile, provider, method, shots, and the
    diagnostic figures (estimated and budgeted duration, fidelity, T1/T2 margins, readout
    error); a refused job has ``status`` and ``error`` instead of figures. An outcome whose
    diagnostics say ``{"same_as": job}`` (a repeat of a circuit under the same calibration) gets
    that job's figures.
    """
    terms: dict[int, dict[str, Any]] = {}
    figures: dict[int, dict[str, Any]] = {}  # by job id, for {"same_as": job} references
    operations: dict[int, str] = {}
    records: list[dict[str, Any]] = []
    for entry in trace.entries:
        if entry.domain != Domain.Q:
            continue
        if entry.event_type == EventType.RESOURCE_RESERVE and entry.contract:
            terms[entry.contract] = dict(entry.metadata.get("terms", {}))
        elif entry.event_type == EventType.DOMAIN_INVOKE:
            operations[int(entry.metadata.get("inv", 0))] = str(entry.metadata.get("op"))
        elif entry.event_type == EventType.DOMAIN_RESULT:
            invocation = int(entry.metadata.get("inv", 0))
            if operations.get(invocation) != "run":
                continue
            contract = terms.get(entry.contract, {})
            record: dict[str, Any] = {
                "L": entry.logical_time,
                "process": entry.process,
                "contract": entry.contract,
                "invocation": invocation,
                "provider": contract.get("provider"),
                "method": contract.get("method"),
                "profile": contract.get("calibration", {}).get("profile"),
                "status": entry.status_name,
            }
            value = entry.metadata.get("value")
            if isinstance(value, dict):
                traced = dict(value.get("diagnostics", {}))
                if "same_as" in traced:
                    traced = figures.get(int(traced["same_as"]), {})
                figures[int(value.get("job", 0))] = traced
                record.update(
                    job=value.get("job"),
                    shots=value.get("shots"),
                    calibration=value.get("calibration"),
                    **traced,
                )
            else:
                record["error"] = entry.metadata.get("error")
            records.append(record)
    return records
