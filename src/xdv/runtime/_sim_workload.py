"""The workload every ``xdv sim`` run executes: an interpreter of a generated *plan*.

A plan is data (a trace-encodable map, see :mod:`xdv.runtime._sim_plan`): the kernel settings
of the run, its domain managers, a fault plan, and a tree of processes, each a list of
operations (sleep, emit, reserve, invoke, transition, spawn, wait, transfer, attenuate,
delegate, revoke, suspend/resume a child, ...). The plan is this workload's one parameter, so it
is recorded in the run-start entry and ``xdv replay`` rebuilds the run from the trace alone.

The interpreter is deliberately forgiving: an operation that names something that does not
exist (a contract slot never filled, a child never spawned) is skipped without a system call,
and every typed refusal is caught, so a plan stays runnable when the shrinker deletes parts of
it. What a process is *sure* must hold is checked here, as an oracle: when a call that must be
refused succeeds (touching a process that is not its child, widening a capability) the process
emits ``["!", label, what]``, which the simulator reports as a violation.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

from xdv.core import Operation
from xdv.errors import XdvError
from xdv.syscalls import (
    Attenuate,
    Channel,
    Close,
    Contracts,
    Delegate,
    Emit,
    Invoke,
    Now,
    Random,
    Receive,
    Release,
    Reserve,
    Resume,
    Revoke,
    Select,
    Self,
    Send,
    Share,
    Sleep,
    Spawn,
    Suspend,
    Transfer,
    Transition,
    Wait,
    Yield,
)

__all__ = ["SIM_TARGET", "main", "q_circuit", "sim_call"]

SIM_TARGET = "xdv.runtime._sim_workload:main"
"""The workload target every simulated run records."""

_RESOURCE = {"K": "lane", "Q": "qubits", "Φ": "envelope"}


def sim_call(x: int) -> int:
    """The K function simulated processes call (``Invoke`` and transitions): cheap and pure."""
    return (x * 31 + 7) % 1009


def q_circuit(qubits: int) -> str:
    """A small OpenQASM 3 circuit on ``qubits`` qubits (a GHZ-style chain, all measured)."""
    lines = [
        "OPENQASM 3.0;",
        'include "stdgates.inc";',
        f"qubit[{qubits}] q;",
        f"bit[{qubits}] c;",
        "h q[0];",
    ]
    lines += [f"cx q[{i}], q[{i + 1}];" for i in range(qubits - 1)]
    lines.append("c = measure q;")
    return "\n".join(lines) + "\n"


def _terms(domain: str, amount: int, window: int) -> dict[str, Any] | None:
    if domain == "Q":
        return {"provider": "stim"}
    if domain == "Φ":
        return {"window": window}
    return None


def _invoke_call(domain: str, contract: Any, x: int) -> Invoke:
    if domain == "Q":
        return Invoke(contract, "run", (q_circuit(int(contract.amount)), 4))
    if domain == "Φ":
        return Invoke(contract, "stability")
    return Invoke(contract, "call", (sim_call, x))


def _scope(domain: str, mode: str) -> list[dict[str, Any]]:
    """A scope record for attenuation: ``narrow`` lies inside ALLOCATE(K→domain) (one
    resource, a bounded time); ``widen`` asks for a right the held capability lacks."""
    if mode == "widen":
        return [
            {"op": "ALLOCATE", "from": "K", "to": domain},
            {"op": "FREEZE", "from": "K", "to": domain},
        ]
    return [
        {"op": "ALLOCATE", "from": "K", "to": domain, "resource": _RESOURCE[domain]},
    ]


def _check_message(message: Any, last: dict[tuple[int, str], int], label: str) -> str | None:
    """What is wrong with a received message (None: nothing): each sender's messages on a
    channel arrive once each, in the order sent."""
    payload = message.payload
    if not isinstance(payload, dict) or set(payload) != {"from", "n"}:
        return f"received a payload that was never sent: {payload!r}"
    key = (message.channel, payload["from"])
    previous = last.get(key, -1)
    if payload["n"] <= previous:
        return (
            f"received message {payload['n']} of {payload['from']} on channel "
            f"{message.channel} after message {previous}"
        )
    last[key] = payload["n"]
    return None


class Env:
    """What a simulated process knows beyond its own spec: the channels it may name (its
    parent's at spawn time, and the operator's declared ones) and the top-level processes
    (pid and VHM index, by index), filled in by the workload's setup."""

    def __init__(self, channels: dict[int, int], tops: dict[int, tuple[int, int]], vhm: int):
        self.channels = channels
        self.tops = tops
        self.vhm = vhm


def process(spec: Mapping[str, Any], label: str, env: Env) -> Generator[Any, Any, Any]:
    """The K anchor of one simulated process: run ``spec["ops"]`` in order."""
    slots: dict[int, Any] = {}  # contract slots
    caps: dict[int, int] = {}  # capability slots (ids of derived capabilities)
    kids: dict[int, int] = {}  # child index -> pid
    # Channel slots -> channel ids: copied at the first step, when the setup has declared the
    # plan's channels.
    channels = dict(env.channels)
    sent: dict[int, int] = {}  # channel id -> messages sent on it
    last: dict[tuple[int, str], int] = {}  # (channel, sender label) -> last message number
    kid_specs = spec.get("kids", [])
    emitted = 0
    for op in spec["ops"]:
        name = op[0]
        try:
            if name == "sleep":
                yield Sleep(op[1])
            elif name == "yield":
                yield Yield()
            elif name == "emit":
                yield Emit([label, emitted])
                emitted += 1
            elif name == "random":
                stream = yield Random("sim")
                yield Emit([label, emitted, stream.randbelow(1000)])
                emitted += 1
            elif name == "reserve":
                _, domain, amount, slot, window = op
                slots[slot] = yield Reserve(
                    domain, _RESOURCE[domain], amount, terms=_terms(domain, amount, window)
                )
            elif name == "await":
                # A reservation that waits in the admission queue, until a deadline.
                _, domain, amount, slot, window, patience = op
                now = yield Now()
                slots[slot] = yield Reserve(
                    domain,
                    _RESOURCE[domain],
                    amount,
                    terms=_terms(domain, amount, window),
                    deadline=now + patience,
                )
            elif name == "release":
                contract = slots.pop(op[1], None)
                if contract is not None:
                    yield Release(contract)
            elif name == "invoke":
                contract = slots.get(op[1])
                if contract is not None:
                    yield _invoke_call(contract.domain.label, contract, op[2])
            elif name == "transition":
                _, target, x = op
                if target == "K":
                    yield Transition("K", "K", "call", (sim_call, x))
                elif target == "Φ":
                    yield Transition("K", "Φ", "stability", resource="envelope")
                else:
                    yield Transition(
                        "K",
                        "Q",
                        "run",
                        (q_circuit(1), 4),
                        resource="qubits",
                        terms={"provider": "stim"},
                    )
            elif name == "spawn":
                index = op[1]
                if index < len(kid_specs) and index not in kids:
                    kid = kid_specs[index]
                    kid_label = f"{label}.{index}"
                    kids[index] = yield Spawn(
                        process,
                        (kid, kid_label, Env(dict(channels), env.tops, env.vhm)),
                        name=kid_label,
                        priority=kid.get("priority", 0),
                        domains=tuple(kid["domains"]),
                        deadline=kid.get("deadline"),
                    )
            elif name == "wait":
                pid = kids.get(op[1])
                if pid is not None:
                    status = yield Wait(pid)
                    expected = f"{label}.{op[1]}"
                    if status.ok and status.value != expected:
                        yield Emit(["!", label, f"Wait({pid}) returned {status.value!r}"])
            elif name == "transfer":
                contract, pid = slots.get(op[1]), kids.get(op[2])
                if contract is not None and pid is not None:
                    yield Transfer(contract, pid)
                    del slots[op[1]]
            elif name == "adopt":
                # Take up contracts handed over by the parent: release them explicitly.
                for contract in (yield Contracts()):
                    if contract.id not in {held.id for held in slots.values()}:
                        yield Release(contract)
            elif name in ("attenuate", "delegate"):
                _, slot, mode, target_kid, cap_slot = op
                contract = slots.get(slot)
                if contract is None:
                    continue
                scope = _scope(contract.domain.label, mode)
                if name == "attenuate":
                    call: Any = Attenuate(contract.capability, scope)
                else:
                    pid = kids.get(target_kid)
                    if pid is None:
                        continue
                    call = Delegate(contract.capability, pid, scope)
                try:
                    derived = yield call
                except XdvError:
                    continue
                if mode == "widen":
                    yield Emit(["!", label, f"{name} widened capability {contract.capability}"])
                caps[cap_slot] = derived
            elif name == "revoke":
                capability = caps.pop(op[1], None)
                if capability is not None:
                    yield Revoke(capability)
            elif name == "suspend":
                pid = kids.get(op[1])
                if pid is not None:
                    yield Suspend(pid)
                    yield Sleep(op[2])
                    yield Resume(pid)
            elif name == "chan":
                _, slot, capacity = op
                channels[slot] = yield Channel(capacity, name=f"{label}/{slot}")
            elif name == "share":
                _, slot, kid, mode = op
                channel, pid = channels.get(slot), kids.get(kid)
                if channel is not None and pid is not None:
                    yield Share(channel, pid, send=mode != "recv", receive=mode != "send")
            elif name == "send":
                _, slot, timeout = op
                channel = channels.get(slot)
                if channel is not None:
                    number = sent.get(channel, 0)
                    sent[channel] = number + 1  # a refused message is never sent again
                    yield Send(channel, {"from": label, "n": number}, timeout)
            elif name in ("recv", "select"):
                if name == "recv":
                    ids = [channels[op[1]]] if op[1] in channels else []
                else:
                    ids = sorted({channels[slot] for slot in op[1] if slot in channels})
                if ids:
                    message = yield (
                        Receive(ids[0], op[2]) if name == "recv" else Select(ids, op[2])
                    )
                    wrong = _check_message(message, last, label)
                    if wrong is not None:
                        yield Emit(["!", label, wrong])
            elif name == "close":
                channel = channels.get(op[1])
                if channel is not None:
                    yield Close(channel)
            elif name == "peek":
                # Wait on a top-level process of another VHM: it must be refused.
                top = env.tops.get(op[1])
                if top is not None and top[1] != env.vhm:
                    try:
                        yield Wait(top[0])
                    except XdvError:
                        continue
                    yield Emit(["!", label, f"waited on process {top[0]} of another VHM"])
            elif name == "poke":
                # Touch a process that is not this one's child: it must be refused.
                me = yield Self()
                other = me.parent if op[1] == "parent" else me.pid + 1
                if other and other not in kids.values():
                    try:
                        yield Suspend(other)
                    except XdvError:
                        continue
                    yield Emit(["!", label, f"suspended process {other}, not its child"])
                    yield Resume(other)
        except XdvError:
            continue
    return label


DECLARED_SLOT = 10
"""Declared channel ``i`` of a plan is channel slot ``DECLARED_SLOT + i`` of every process."""


def main(kernel: Any, *, plan: Mapping[str, Any]) -> None:
    """Create the plan's VHMs, spawn its top-level processes in them, grant each the extra
    rights its domains need (MEASURE(Q→K) for Q jobs, PROJECT(Φ→K) for Φ readouts) and
    declare the plan's channels between them."""
    vhms: list[int] = []
    for index, vhm in enumerate(plan.get("vhms", [])):
        parent = vhm.get("parent")
        vhms.append(
            kernel.create_vhm(
                f"vhm-{index}",
                quotas=vhm.get("quotas"),
                weight=vhm.get("weight", 1),
                parent=None if parent is None else vhms[parent],
            )
        )
    tops: dict[int, tuple[int, int]] = {}
    declared: dict[int, int] = {}
    for index, spec in enumerate(plan["procs"]):
        label = str(index)
        vhm_index = spec.get("vhm", -1)
        env = Env(declared, tops, vhm_index)
        try:
            pid = kernel.spawn(
                process,
                spec,
                label,
                env,
                name=label,
                priority=spec.get("priority", 0),
                domains=tuple(spec["domains"]),
                vhm=None if vhm_index < 0 else vhms[vhm_index],
                deadline=spec.get("deadline"),
            )
        except XdvError:
            continue  # refused (a full processes quota): the plan goes on without it
        tops[index] = (pid, vhm_index)
        if "Q" in spec["domains"]:
            kernel.grant(pid, Operation.MEASURE, "Q", "K")
        if "Φ" in spec["domains"]:
            kernel.grant(pid, Operation.PROJECT, "Φ", "K")
    for index, channel in enumerate(plan.get("channels", [])):
        senders = [tops[i][0] for i in channel["senders"] if i in tops]
        receivers = [tops[i][0] for i in channel["receivers"] if i in tops]
        declared[DECLARED_SLOT + index] = kernel.channel(
            f"declared-{index}", channel["capacity"], senders=senders, receivers=receivers
        )
