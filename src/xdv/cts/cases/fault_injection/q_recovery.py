"""---
id: fault.q-retry-fallback-decoherence
spec: [XDV-024-3.3, XDV-024-6, XDV-024-10, XDV-012-6.2]
description: >-
  A Bell circuit run six times under a plan of Q faults: two provider faults are retried in
  place, a measurement timeout falls back to another calibration, a decoherence fault aborts
  its job (the process reserves a new container). A Bell pair's qubits always agree.
level: hybrid
requires: [q]
options: {faults: q_plan.json, seed: 0}
expect:
  exit: ok
  outputs_include: ["job 0: the qubits agreed in 256 of 256 shots", "job 5: the qubits agreed in 256 of 256 shots"]
  trace:
    present: [FAULT_DETECTED, RECOVERY_RETRY, RECOVERY_FALLBACK]
    order: [RUN_START, FAULT_DETECTED, RECOVERY_RETRY, RUN_END]
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
