"""---
id: reference.phi-envelope-api
spec:
- XDV-081-5.3
- XDV-081-12
description: A Φ envelope is reserved with its coherence window as a contract term; a solve inside
  the window returns a structured result (assignment, stability report, status, transform,
  witness; no raw phases) with x = 2, the only value meeting the constraint, and Release gives
  the envelope back. A second envelope's window (6 ticks) has passed after a sleep of 20, so the
  solve fails with PHI_ERR_COHERENCE_TIMEOUT, recorded as the status of its result entry and
  caught by the process. Both replay modes give the same bytes.
level: hybrid
requires:
- phi
expect:
  exit: ok
  outputs:
  - [assignment, stability, status, transform, witness]
  - {x: 2}
  - PHI_ERR_COHERENCE_TIMEOUT
  trace:
    order:
    - RESOURCE_RESERVE:OK
    - DOMAIN_INVOKE:OK
    - DOMAIN_RESULT:OK
    - RESOURCE_RELEASE:OK
    - RESOURCE_RESERVE:OK
    - SLEEP
    - DOMAIN_RESULT:PHI_ERR_COHERENCE_TIMEOUT
    counts:
      DOMAIN_RESULT:OK: 1
  replay: both
---"""

from xdv.core import Operation
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403

XDV_DOMAINS = {"Φ": {"manager": "phi"}}

PROBLEM = {
    "variables": [{"name": "x", "kind": "int", "lo": 0, "hi": 3}],
    "constraints": [{"op": "==", "lhs": {"var": "x"}, "rhs": {"const": 2}}],
}


def solver():
    envelope = yield Reserve("Φ", "envelope", terms={"provider": "exact", "window": 64})
    result = yield Invoke(envelope, "solve", (PROBLEM,))
    yield Emit(sorted(result))
    yield Emit(result["assignment"])
    yield Release(envelope)
    short = yield Reserve("Φ", "envelope", terms={"provider": "exact", "window": 6})
    yield Sleep(20)
    try:
        yield Invoke(short, "solve", (PROBLEM,))
        yield Emit("accepted")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    pid = kernel.spawn(solver, domains=("K", "Φ"))
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")
