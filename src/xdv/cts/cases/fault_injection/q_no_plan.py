"""---
id: fault.q-no-plan
spec: [XDV-024-9, XDV-032-4.1]
description: Without a plan the six Bell jobs all succeed and the two qubits agree on every shot.
level: hybrid
requires: [q]
expect:
  exit: ok
  outputs: ["job 0: the qubits agreed in 256 of 256 shots", "job 1: the qubits agreed in 256 of 256 shots", "job 2: the qubits agreed in 256 of 256 shots", "job 3: the qubits agreed in 256 of 256 shots", "job 4: the qubits agreed in 256 of 256 shots", "job 5: the qubits agreed in 256 of 256 shots"]
  trace:
    absent: [FAULT_DETECTED]
---"""

from xdv import Operation
from xdv.domains.q import QHandle
from xdv.errors import XdvError
from xdv.syscalls import Emit

XDV_DOMAINS = {"Q": {"manager": "q"}}

BELL = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""
SHOTS = 256


def experiment(jobs):
    handle = yield from QHandle.reserve(2)
    for job in range(jobs):
        try:
            result = yield from handle.run(BELL, shots=SHOTS)
        except XdvError as error:
            yield Emit(f"job {job}: {error.code.name}; reserving a new container")
            handle = yield from QHandle.reserve(2)
            continue
        counts = result["counts"]
        correlated = counts.get("00", 0) + counts.get("11", 0)
        yield Emit(f"job {job}: the qubits agreed in {correlated} of {SHOTS} shots")
    yield from handle.release()


def main(kernel):
    pid = kernel.spawn(experiment, 6, domains=("K", "Q"))
    kernel.grant(pid, Operation.MEASURE, "Q", "K")
