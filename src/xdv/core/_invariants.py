"""The global scheduling invariants (XDV-012 §9), checked over a scheduler snapshot.

:meth:`Kernel.scheduler_snapshot` describes the scheduler at one point of a run; the functions
here check it, so a test or a whole-system simulator can check the invariants after every
step without reaching into the kernel. They never change anything and never record anything.

Checked:

* order: logical time never goes back between two snapshots of one run;
* queues: a process is queued at most once, only while ACTIVE or SUSPENDED, never while it
  waits for admission; every waiting request belongs to a live (ACTIVE, or SUSPENDED while it
  keeps its place in the admission queue), unqueued process that waits for exactly that request;
* domain constraints: no physical qubit of a Q calibration profile is in two live contracts,
  and no two Φ windows on one provider overlap unless both are shared;
* capability scope: every live contract names the capability it was granted under;
* starvation: no ready process has waited longer than the policy's bound (when it has one),
  taken over the processes that lived during its wait (the process's own ``starvation_bound``
  in the snapshot) where the snapshot gives one, else over the processes live now.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdv.errors import ErrorCode, XdvError

__all__ = ["assert_scheduler", "check_scheduler"]

_QUEUEABLE = ("ACTIVE", "SUSPENDED")


def _q_overlaps(contracts: list[tuple[int, Mapping[str, Any]]]) -> list[str]:
    owners: dict[tuple[str, int], int] = {}
    found = []
    for pid, record in contracts:
        terms = record.get("terms") or {}
        calibration = terms.get("calibration")
        mapping = terms.get("mapping")
        if not isinstance(calibration, Mapping) or not isinstance(mapping, list):
            continue
        profile = str(calibration.get("profile"))
        for qubit in mapping:
            other = owners.setdefault((profile, qubit), pid)
            if other != pid:
                found.append(
                    f"domain constraints: physical qubit {qubit} of {profile} is held by "
                    f"processes {other} and {pid}"
                )
    return found


def _phi_overlaps(contracts: list[tuple[int, Mapping[str, Any]]]) -> list[str]:
    windows: list[tuple[str, int, int, bool, int]] = []
    for pid, record in contracts:
        terms = record.get("terms") or {}
        window = terms.get("window")
        if not isinstance(window, Mapping) or "envelope" not in terms:
            continue
        windows.append(
            (
                str(terms.get("provider")),
                int(window["start"]),
                int(window["end"]),
                terms.get("share") is True,
                pid,
            )
        )
    found = []
    for index, (provider, start, end, share, pid) in enumerate(windows):
        for other in windows[index + 1 :]:
            if other[0] != provider or (share and other[3]):
                continue
            if start < other[2] and other[1] < end:
                found.append(
                    f"domain constraints: Φ windows [{start}, {end}) of process {pid} and "
                    f"[{other[1]}, {other[2]}) of process {other[4]} overlap on {provider}"
                )
    return found


def check_scheduler(
    snapshot: Mapping[str, Any], previous: Mapping[str, Any] | None = None
) -> list[str]:
    """The invariants ``snapshot`` violates (empty when it holds them all), each a sentence
    naming the invariant and the processes involved; ``previous`` is an earlier snapshot of
    the same run, for the order invariant."""
    violations: list[str] = []
    now = int(snapshot["now"])
    if previous is not None and now < int(previous["now"]):
        violations.append(f"order: logical time went back from {previous['now']} to {now}")
    processes: Mapping[int, Mapping[str, Any]] = snapshot["processes"]
    ready = list(snapshot["ready"])
    if len(ready) != len(set(ready)):
        duplicates = sorted({pid for pid in ready if ready.count(pid) > 1})
        violations.append(f"queues: processes {duplicates} are queued more than once")
    for pid in ready:
        process = processes.get(pid)
        if process is None or process["state"] not in _QUEUEABLE:
            state = None if process is None else process["state"]
            violations.append(f"queues: process {pid} is queued in state {state}")
        elif process["admission"]:
            violations.append(f"queues: process {pid} is queued while waiting for admission")
    waiting_pids = [item["pid"] for item in snapshot["waiting"]]
    if len(waiting_pids) != len(set(waiting_pids)):
        violations.append("queues: a process has more than one waiting reservation")
    for pid in waiting_pids:
        process = processes.get(pid)
        if process is None or process["state"] not in _QUEUEABLE or not process["admission"]:
            violations.append(f"queues: waiting reservation of process {pid}, which is not waiting")
    for pid, process in processes.items():
        if process["admission"] and pid not in waiting_pids:
            violations.append(f"queues: process {pid} waits for a reservation nobody holds")
    contracts = [
        (pid, record) for pid, process in processes.items() for record in process["contracts"]
    ]
    violations += _q_overlaps([(pid, r) for pid, r in contracts if r.get("domain") == "Q"])
    violations += _phi_overlaps([(pid, r) for pid, r in contracts if r.get("domain") == "Φ"])
    for pid, record in contracts:
        if not record.get("capability"):
            violations.append(
                f"capability scope: contract {record.get('id')} of process {pid} names no "
                "capability"
            )
    default = snapshot.get("starvation_bound")
    for pid in ready:
        process = processes.get(pid)
        if process is None or process["state"] != "ACTIVE":
            continue
        # A process's own bound (over the processes that lived during its wait) where the
        # snapshot gives one, else the bound over the processes live now.
        bound = process.get("starvation_bound", default)
        if isinstance(bound, int):
            waited = now - int(process["ready_at"])
            if waited > bound:
                violations.append(
                    f"starvation: process {pid} has been ready since L={process['ready_at']} "
                    f"({waited} steps, bound {bound})"
                )
    return violations


def assert_scheduler(
    snapshot: Mapping[str, Any], previous: Mapping[str, Any] | None = None
) -> None:
    """Raise SCHEDULER_INVARIANT naming every violated invariant, if any."""
    violations = check_scheduler(snapshot, previous)
    if violations:
        raise XdvError(
            "; ".join(violations),
            code=ErrorCode.SCHEDULER_INVARIANT,
            where=f"scheduler at L={snapshot['now']}",
        )
