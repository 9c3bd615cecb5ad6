"""---
id: example.multi-tenant
spec: [XDV-014-4.1, XDV-014-4.2, XDV-014-6.1, XDV-014-10, XDV-083-4.2, XDV-083-8.2]
description: >-
  Three tenants in declared VHMs, one nested: the nested VHM's Q jobs hit its qubit and shot
  quotas (VHM_QUOTA_EXCEEDED, caught), the batch VHM's process quota refuses a third worker, and
  a Bell pair's two qubits agree on every shot.
level: hybrid
requires: [q, phi]
expect:
  exit: ok
  outputs_include:
    - "student: 3 qubits refused (VHM_QUOTA_EXCEEDED)"
    - "batch: no room for a worker up to 80 (VHM_QUOTA_EXCEEDED)"
    - "research-q: job 0 gave 1000 shots, all correlated"
    - "student: job 0 gave 300 shots, all correlated"
    - "student: job 1 refused (VHM_QUOTA_EXCEEDED)"
  trace:
    counts: {VHM_CREATE: 3}
    present: [VHM_DENY]
---"""

from xdv import Operation
from xdv.errors import XdvError
from xdv.syscalls import Emit, Invoke, Release, Reserve, Self, Sleep, Spawn, Wait

XDV_DOMAINS = {"Q": {"manager": "q"}, "Φ": {"manager": "phi"}}

XDV_VHMS = [
    {
        "name": "research",
        "weight": 3,
        "quotas": {"processes": 4, "qubits": 5, "shots": 3000, "envelopes": 1, "window_steps": 64},
    },
    {
        "name": "students",
        "parent": "research",
        "weight": 1,
        "quotas": {"processes": 1, "qubits": 2, "shots": 500},
    },
    {"name": "batch", "weight": 1, "quotas": {"processes": 3, "steps": 200}},
]

BELL = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""

# Find x, n with n * m == -12, n >= 4 or x, and m >= -3 (the exact provider answers).
PROBLEM = {
    "variables": [
        {"name": "x", "kind": "bool"},
        {"name": "n", "kind": "int", "lo": 0, "hi": 10},
        {"name": "m", "kind": "int", "lo": -5, "hi": 5},
    ],
    "constraints": [
        {
            "op": "or",
            "args": [
                {"op": "bool", "var": "x"},
                {"op": ">=", "lhs": {"var": "n"}, "rhs": {"const": 4}},
            ],
        },
        {
            "op": "==",
            "lhs": {"op": "*", "args": [{"var": "n"}, {"var": "m"}]},
            "rhs": {"const": -12},
        },
        {"op": "not", "arg": {"op": "<", "lhs": {"var": "m"}, "rhs": {"const": -3}}},
    ],
}


def bell_pairs(shots: int, jobs: int):
    """Reserve two qubits and run the Bell circuit ``jobs`` times; report what happened."""
    me = yield Self()
    try:
        qubits = yield Reserve("Q", "qubits", 2)
    except XdvError as error:
        yield Emit(f"{me.name}: reservation refused ({error.code.name})")
        return 0
    correlated = 0
    for job in range(jobs):
        try:
            result = yield Invoke(qubits, "run", (BELL, shots))
        except XdvError as error:
            yield Emit(f"{me.name}: job {job} refused ({error.code.name})")
            break
        counts = result["counts"]
        correlated += counts.get("00", 0) + counts.get("11", 0)
        yield Emit(f"{me.name}: job {job} gave {sum(counts.values())} shots, all correlated")
    yield Release(qubits)
    return correlated


def greedy_student():
    """Asks for more qubits than its VHM allows, then runs within the quota."""
    try:
        yield Reserve("Q", "qubits", 3)
    except XdvError as error:
        yield Emit(f"student: 3 qubits refused ({error.code.name})")
    return (yield from bell_pairs(300, 2))


def solver():
    envelope = yield Reserve("Φ", "envelope", terms={"provider": "exact", "window": 64})
    result = yield Invoke(envelope, "solve", (PROBLEM,))
    yield Release(envelope)
    yield Emit(f"solver: {result['status']} with {result['assignment']}")


def count_primes(limit: int):
    """K work: one step per candidate, so the batch VHM's step quota bounds it."""
    found = 0
    for candidate in range(2, limit):
        if all(candidate % divisor for divisor in range(2, int(candidate**0.5) + 1)):
            found += 1
        yield Sleep(0)
    return found


def batch_driver():
    workers = []
    for limit in (40, 60, 80):
        try:
            workers.append((yield Spawn(count_primes, (limit,), name=f"primes<{limit}")))
        except XdvError as error:
            yield Emit(f"batch: no room for a worker up to {limit} ({error.code.name})")
    for pid in workers:
        status = yield Wait(pid)
        yield Emit(f"batch: worker {pid} found {status.value} primes")


def main(kernel):
    research = kernel.vhms.find("research")
    students = kernel.vhms.find("students")
    batch = kernel.vhms.find("batch")
    bell = kernel.spawn(bell_pairs, 1000, 2, name="research-q", domains=("K", "Q"), vhm=research)
    kernel.grant(bell, Operation.MEASURE, "Q", "K")
    phi = kernel.spawn(solver, name="research-phi", domains=("K", "Φ"), vhm=research)
    kernel.grant(phi, Operation.PROJECT, "Φ", "K")
    student = kernel.spawn(greedy_student, name="student", domains=("K", "Q"), vhm=students)
    kernel.grant(student, Operation.MEASURE, "Q", "K")
    kernel.spawn(batch_driver, name="batch", vhm=batch)
