"""The system state at a logical time, folded from a trace's entries.

:class:`ViewState` is what the panels show. :func:`apply` folds one entry into it; folding the
entries of a trace up to logical time ``L``, in order, gives the state at ``L``. Nothing here
reads a clock or a provider: the state is a pure function of the recorded entries, so the
same prefix always gives the same state. The fold keeps only what the record says (names,
lifecycle states, contract terms, diagnostics, emitted values); a trace holds no raw Q
amplitudes or Φ phases, and neither does the state.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from xdv.trace import EventType, TraceEntry

__all__ = ["RECENT_MAX", "ViewState", "apply", "fold"]

# How many recent items a list of the state keeps (emitted lines, measurements, decisions).
RECENT_MAX = 12

_SCHEDULER = {
    EventType.DISPATCH,
    EventType.SLEEP,
    EventType.YIELD,
    EventType.PREEMPT,
    EventType.WAIT,
    EventType.WAKE,
    EventType.ADMISSION_WAIT,
    EventType.ADMISSION_GRANT,
    EventType.ADMISSION_TIMEOUT,
    EventType.ADMISSION_CANCEL,
}


_CHANNEL_USE = {
    EventType.CHANNEL_SEND,
    EventType.CHANNEL_RECEIVE,
    EventType.CHANNEL_SELECT,
    EventType.CHANNEL_CLOSE,
}


def _push(items: list[Any], item: Any) -> None:
    items.append(item)
    if len(items) > RECENT_MAX:
        del items[0]


def _plain(value: Any) -> Any:
    """A value fit for display: byte strings as hex, everything else as recorded."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


@dataclass
class ViewState:
    """The state of a run after some prefix of its trace (see the module docstring)."""

    applied: int = 0
    clock: int = 0
    seed: int | None = None
    running: int = 0
    run_status: str | None = None
    processes: dict[int, dict[str, Any]] = field(default_factory=dict)
    decisions: Counter[str] = field(default_factory=Counter)
    recent_decisions: list[dict[str, Any]] = field(default_factory=list)
    vhms: dict[int, dict[str, Any]] = field(default_factory=dict)
    emitted: list[dict[str, Any]] = field(default_factory=list)
    emitted_count: int = 0
    q_contracts: dict[int, dict[str, Any]] = field(default_factory=dict)
    q_containers: dict[int, dict[str, Any]] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    q_diagnostics: dict[str, Any] | None = None
    measurements: list[dict[str, Any]] = field(default_factory=list)
    measurement_count: int = 0
    phi_contracts: dict[int, dict[str, Any]] = field(default_factory=dict)
    envelopes: dict[int, dict[str, Any]] = field(default_factory=dict)
    stability: dict[str, Any] | None = None
    witnesses: list[dict[str, Any]] = field(default_factory=list)
    witness_count: int = 0
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    checkpoint_count: int = 0
    faults: int = 0
    invocations: dict[str, int] = field(default_factory=dict)
    transitions: int = 0
    attestations: list[dict[str, Any]] = field(default_factory=list)
    channels: dict[int, dict[str, Any]] = field(default_factory=dict)
    recent_faults: list[dict[str, Any]] = field(default_factory=list)

    def copy(self) -> ViewState:
        """An independent copy (a checkpoint of the fold)."""
        return copy.deepcopy(self)

    def summary(self) -> dict[str, Any]:
        """Every field as plain data (for comparisons and the JSON API)."""
        return {
            "applied": self.applied,
            "clock": self.clock,
            "seed": self.seed,
            "running": self.running,
            "run_status": self.run_status,
            "processes": {pid: dict(p) for pid, p in sorted(self.processes.items())},
            "decisions": dict(sorted(self.decisions.items())),
            "recent_decisions": list(self.recent_decisions),
            "vhms": {vid: dict(v) for vid, v in sorted(self.vhms.items())},
            "emitted": list(self.emitted),
            "emitted_count": self.emitted_count,
            "q_contracts": dict(sorted(self.q_contracts.items())),
            "q_containers": dict(sorted(self.q_containers.items())),
            "calibration": self.calibration,
            "q_diagnostics": self.q_diagnostics,
            "measurements": list(self.measurements),
            "measurement_count": self.measurement_count,
            "phi_contracts": dict(sorted(self.phi_contracts.items())),
            "envelopes": dict(sorted(self.envelopes.items())),
            "stability": self.stability,
            "witnesses": list(self.witnesses),
            "witness_count": self.witness_count,
            "checkpoints": list(self.checkpoints),
            "checkpoint_count": self.checkpoint_count,
            "faults": self.faults,
            "invocations": dict(sorted(self.invocations.items())),
            "transitions": self.transitions,
            "attestations": list(self.attestations),
            "channels": {cid: dict(c) for cid, c in sorted(self.channels.items())},
            "recent_faults": list(self.recent_faults),
        }


def fold(entries: list[TraceEntry], start: ViewState | None = None) -> ViewState:
    """The state after applying ``entries`` in order to ``start`` (a copy; default: empty)."""
    state = ViewState() if start is None else start.copy()
    for entry in entries:
        apply(state, entry)
    return state


def apply(state: ViewState, entry: TraceEntry) -> None:
    """Fold one entry into ``state`` (in place)."""
    state.applied = entry.seq + 1
    state.clock = entry.logical_time
    kind = entry.event_type
    meta = entry.metadata
    pid = entry.process
    if kind == EventType.RUN_START:
        seed = meta.get("seed")
        state.seed = seed if isinstance(seed, int) else None
    elif kind == EventType.RUN_END:
        status = meta.get("status")
        state.run_status = str(status) if status is not None else None
        state.running = 0
    elif kind == EventType.PROCESS_CREATE:
        if entry.status == 0:
            state.processes[pid] = {
                "name": str(meta.get("name", "")),
                "parent": meta.get("parent", 0),
                "priority": meta.get("priority", 0),
                "domains": ",".join(str(d) for d in meta.get("domains", [])),
                "vhm": entry.vhm,
                "state": "CREATED",
                "created": entry.logical_time,
                "exit": "",
            }
    elif kind == EventType.PROCESS_STATE:
        process = state.processes.get(pid)
        if process is not None and entry.status == 0 and "state" in meta:
            process["state"] = str(meta["state"])
    elif kind == EventType.PROCESS_EXIT:
        process = state.processes.get(pid)
        if process is not None:
            process["state"] = "EXITED"
            process["exit"] = "ok" if meta.get("ok") else str(meta.get("error", entry.status_name))
        if state.running == pid:
            state.running = 0
    elif kind == EventType.VHM_CREATE:
        state.vhms[entry.vhm] = {
            "name": str(meta.get("name", "")),
            "weight": meta.get("weight", 1),
            "parent": meta.get("parent", 0),
            "quotas": _plain(meta.get("quotas", {})),
            "usage": {},
            "state": "live",
        }
    elif kind in (EventType.VHM_USAGE, EventType.VHM_DESTROY):
        vhm = state.vhms.setdefault(entry.vhm, {"name": "", "state": "live", "quotas": {}})
        vhm["usage"] = _plain(meta.get("usage", {}))
        if kind == EventType.VHM_DESTROY:
            vhm["state"] = "destroyed"
    elif kind == EventType.VHM_TERMINATE:
        state.vhms.setdefault(entry.vhm, {"name": "", "quotas": {}, "usage": {}})["state"] = (
            "terminated"
        )
    elif kind == EventType.EFFECT:
        if entry.status == 0:
            value = meta.get("v")
            shown = value.get("value") if isinstance(value, dict) else value
            effect = value.get("effect", "emit") if isinstance(value, dict) else "emit"
            _push(
                state.emitted,
                {"L": entry.logical_time, "pid": pid, "effect": effect, "value": _plain(shown)},
            )
            state.emitted_count += 1
    elif kind == EventType.RESOURCE_RESERVE and entry.status == 0:
        _reserve(state, entry)
    elif kind == EventType.RESOURCE_RELEASE:
        for table in (state.q_contracts, state.phi_contracts):
            if entry.contract in table:
                table[entry.contract]["state"] = "released"
                container = table[entry.contract].get("container")
                if isinstance(container, int) and container in state.q_containers:
                    state.q_containers[container]["state"] = "released"
                envelope = table[entry.contract].get("envelope")
                if isinstance(envelope, int) and envelope in state.envelopes:
                    state.envelopes[envelope]["state"] = "released"
    elif kind == EventType.DOMAIN_INVOKE:
        label = entry.domain_label
        state.invocations[label] = state.invocations.get(label, 0) + 1
    elif kind == EventType.DOMAIN_RESULT:
        _result(state, entry)
    elif kind == EventType.TRANSITION_BEGIN:
        state.transitions += 1
    elif kind == EventType.CHECKPOINT:
        root = meta.get("root")
        _push(
            state.checkpoints,
            {
                "seq": entry.seq,
                "L": entry.logical_time,
                "size": meta.get("size"),
                "root": root.hex() if isinstance(root, bytes) else str(root),
            },
        )
        state.checkpoint_count += 1
    elif kind == EventType.ATTESTATION:
        _push(
            state.attestations,
            {
                "L": entry.logical_time,
                "domain": entry.domain_label,
                "provider": str(meta.get("provider", "")),
                "verdict": "ok" if entry.status == 0 else entry.status_name,
                "measurement": str(meta.get("measurement", ""))[:16],
            },
        )
    elif kind in (EventType.FAULT, EventType.FAULT_DETECTED):
        state.faults += 1
        _push(
            state.recent_faults,
            {
                "L": entry.logical_time,
                "pid": pid,
                "event": entry.event_name,
                "status": entry.status_name,
                "class": str(meta.get("class", "")),
                "error": str(meta.get("error", ""))[:160],
            },
        )
    elif kind == EventType.CHANNEL_CREATE and entry.status == 0:
        channel = meta.get("channel")
        if isinstance(channel, int):
            state.channels[channel] = {
                "name": str(meta.get("name", "")),
                "route": f"{meta.get('from', '')}→{meta.get('to', '')}",
                "capacity": meta.get("capacity"),
                "sent": 0,
                "received": 0,
                "bytes": 0,
                "state": "open",
            }
    elif kind in _CHANNEL_USE and entry.status == 0:
        channel = state.channels.get(meta.get("channel"))  # type: ignore[arg-type]
        if channel is not None:
            if kind == EventType.CHANNEL_SEND:
                channel["sent"] += 1
                channel["bytes"] += int(meta.get("bytes", 0) or 0)
            elif kind == EventType.CHANNEL_CLOSE:
                if meta.get("closed", True):
                    channel["state"] = "closed"
            else:
                channel["received"] += 1
    if kind in _SCHEDULER:
        name = entry.event_name
        state.decisions[name] += 1
        _push(state.recent_decisions, {"L": entry.logical_time, "pid": pid, "event": name})
        if kind == EventType.DISPATCH or (kind == EventType.SLEEP and entry.status == 0):
            state.running = pid
        elif kind == EventType.WAIT and state.running == pid:
            state.running = 0


def _reserve(state: ViewState, entry: TraceEntry) -> None:
    meta = entry.metadata
    terms = meta.get("terms") if isinstance(meta.get("terms"), dict) else {}
    assert isinstance(terms, dict)
    base = {
        "pid": entry.process,
        "resource": str(meta.get("resource", "")),
        "amount": meta.get("amount", 0),
        "provider": str(terms.get("provider", "")),
        "state": "held",
        "L": entry.logical_time,
    }
    if entry.domain_label == "Q":
        calibration = terms.get("calibration")
        budget = terms.get("budget") if isinstance(terms.get("budget"), dict) else {}
        assert isinstance(budget, dict)
        container = terms.get("container")
        contract = {
            **base,
            "container": container,
            "method": str(terms.get("method", "")),
            "fidelity_min": budget.get("fidelity_min"),
            "window": budget.get("window"),
        }
        if isinstance(calibration, dict):
            contract["calibration"] = str(calibration.get("profile", ""))
            state.calibration = {
                "profile": str(calibration.get("profile", "")),
                "id": calibration.get("id"),
                "digest": str(calibration.get("digest", "")),
                "valid_from": calibration.get("valid_from"),
                "valid_until": calibration.get("valid_until"),
            }
        state.q_contracts[entry.contract] = contract
        if isinstance(container, int):
            state.q_containers[container] = {
                "pid": entry.process,
                "contract": entry.contract,
                "qubits": meta.get("amount", 0),
                "mapping": _plain(terms.get("mapping", [])),
                "state": "held",
            }
    elif entry.domain_label == "Φ":
        window = terms.get("window") if isinstance(terms.get("window"), dict) else {}
        assert isinstance(window, dict)
        envelope = terms.get("envelope")
        state.phi_contracts[entry.contract] = {
            **base,
            "envelope": envelope,
            "tolerance": terms.get("tolerance"),
        }
        if isinstance(envelope, int):
            state.envelopes[envelope] = {
                "pid": entry.process,
                "contract": entry.contract,
                "provider": str(terms.get("provider", "")),
                "window_start": window.get("start"),
                "window_end": window.get("end"),
                "duration": window.get("duration"),
                "tolerance": terms.get("tolerance"),
                "state": "held",
            }


def _result(state: ViewState, entry: TraceEntry) -> None:
    meta = entry.metadata
    value = meta.get("value")
    if not isinstance(value, dict):
        return
    if entry.domain_label == "Q":
        diagnostics = value.get("diagnostics")
        if isinstance(diagnostics, dict):
            state.q_diagnostics = {"L": entry.logical_time, **_plain(diagnostics)}
        counts = value.get("counts")
        if isinstance(counts, dict):
            top = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))[:4]
            _push(
                state.measurements,
                {
                    "L": entry.logical_time,
                    "pid": entry.process,
                    "inv": meta.get("inv"),
                    "shots": value.get("shots"),
                    "counts": ", ".join(f"{key}: {count}" for key, count in top),
                    "fidelity": diagnostics.get("fidelity")
                    if isinstance(diagnostics, dict)
                    else None,
                },
            )
            state.measurement_count += 1
    elif entry.domain_label == "Φ":
        stability = value.get("stability")
        if isinstance(stability, dict):
            state.stability = {"L": entry.logical_time, **_plain(stability)}
            envelope = stability.get("envelope")
            if isinstance(envelope, int) and envelope in state.envelopes:
                state.envelopes[envelope]["stability"] = stability.get("stability")
        witness = value.get("witness")
        if isinstance(witness, dict):
            _push(
                state.witnesses,
                {
                    "L": entry.logical_time,
                    "digest": str(witness.get("digest", "")),
                    "status": str(witness.get("status", "")),
                    "kind": str(witness.get("kind", "")),
                    "envelope": witness.get("envelope"),
                },
            )
            state.witness_count += 1
