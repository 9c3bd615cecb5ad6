"""Q jobs that survive measurement failures: run it with and without a fault plan.

A process reserves a two-qubit Q container and runs a Bell circuit several times. Without a
fault plan every job succeeds. With ``examples/faults_plan.json`` the plan injects Q faults
into some jobs' outcomes, and the kernel handles each by its class's rules (``docs/faults.md``):

* two provider faults in a row are retried in place, after a back-off of 2 and then 4 logical
  steps, and the job succeeds;
* a measurement timeout falls back to a container under another calibration profile (the
  process's handle follows the new contract) and the job succeeds there;
* a decoherence fault has no recovery: the measurement is aborted, the container invalidated
  and its contract released, and the process receives the fault; it reserves a new container
  and goes on.

Every decision is in the trace, and ``xdv replay`` reproduces it::

    xdv run examples/fault_tolerant_q.py --faults examples/faults_plan.json --trace f.xdvt
    xdv replay f.xdvt
"""

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
