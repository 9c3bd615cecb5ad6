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
    Contracts,
    Delegate,
    Emit,
    Invoke,
    Random,
    Release,
    Reserve,
    Resume,
    Revoke,
    Self,
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


def process(spec: Mapping[str, Any], label: str) -> Generator[Any, Any, Any]:
    """The K anchor of one simulated process: run ``spec["ops"]`` in order."""
    slots: dict[int, Any] = {}  # contract slots
    caps: dict[int, int] = {}  # capability slots (ids of derived capabilities)
    kids: dict[int, int] = {}  # child index -> pid
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
                        (kid, kid_label),
                        name=kid_label,
                        priority=kid.get("priority", 0),
                        domains=tuple(kid["domains"]),
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


def main(kernel: Any, *, plan: Mapping[str, Any]) -> None:
    """Spawn the plan's top-level processes and grant each the extra rights its domains need
    (MEASURE(Q→K) for Q jobs, PROJECT(Φ→K) for Φ readouts)."""
    for index, spec in enumerate(plan["procs"]):
        label = str(index)
        pid = kernel.spawn(
            process,
            spec,
            label,
            name=label,
            priority=spec.get("priority", 0),
            domains=tuple(spec["domains"]),
        )
        if "Q" in spec["domains"]:
            kernel.grant(pid, Operation.MEASURE, "Q", "K")
        if "Φ" in spec["domains"]:
            kernel.grant(pid, Operation.PROJECT, "Φ", "K")
