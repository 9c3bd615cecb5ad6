"""---
id: reference.q-job-under-contract
spec:
- XDV-080-7
- XDV-081-5.2
- XDV-081-9.2
description: A Q job runs only under a reserved two-qubit container; the result handed back holds
  the measured counts (64 shots of |01>, as the X gate on qubit 0 gives) and the job's
  calibration, diagnostics, id, seed and shots, with no amplitudes or statevector. A three-qubit
  circuit is checked against the two-qubit contract before it runs and refused with
  CONTRACT_INVALID. An inject-mode replay feeds the recorded outcomes back without sampling again
  and gives the same bytes.
level: hybrid
requires:
- q
expect:
  exit: ok
  outputs:
  - [calibration, counts, diagnostics, job, seed, shots]
  - {'01': 64}
  - CONTRACT_INVALID
  trace:
    order:
    - RESOURCE_RESERVE:OK
    - DOMAIN_INVOKE:OK
    - DOMAIN_RESULT:OK
    - DOMAIN_RESULT:CONTRACT_INVALID
    - RESOURCE_RELEASE:OK
  replay: both
---"""

from xdv.core import Operation
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403

XDV_DOMAINS = {"Q": {"manager": "q"}}

FLIP = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\nx q[0];\nc = measure q;\n'
WIDE = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[3] q;\nbit[3] c;\nx q[0];\nc = measure q;\n'


def job():
    qubits = yield Reserve("Q", "qubits", 2)
    result = yield Invoke(qubits, "run", (FLIP, 64))
    yield Emit(sorted(result))
    yield Emit(result["counts"])
    try:
        yield Invoke(qubits, "run", (WIDE, 64))
        yield Emit("accepted")
    except XdvError as error:
        yield Emit(error.code.name)
    yield Release(qubits)


def main(kernel):
    pid = kernel.spawn(job, domains=("K", "Q"))
    kernel.grant(pid, Operation.MEASURE, "Q", "K")
