"""---
id: phi.envelope.stability-breach-injected
spec:
- XDV-033-6.3
- XDV-061-6.3
- XDV-024-4.3
- XDV-024-10
description: 'A fault plan injects a stability breach into the first Φ outcome: the transform halts (PHI_ERR_STABILITY_BREACH),
  the breach is detected and logged, the envelope is invalidated (the next transform is PHI_ERR_ENVELOPE_INVALID),
  and the run replays with its plan.'
level: hybrid
requires:
- phi
options:
  faults:
    version: 1
    inject:
    - site: outcome
      class: phi.stability
      occurrence: 1
expect:
  exit: ok
  outputs:
  - PHI_ERR_STABILITY_BREACH
  - PHI_ERR_ENVELOPE_INVALID
  trace:
    present:
    - FAULT_DETECTED
    order:
    - DOMAIN_RESULT:PHI_ERR_STABILITY_BREACH
    - FAULT_DETECTED
---"""
from xdv import Operation
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403

XDV_DOMAINS = {"Φ": {"manager": "phi"}}
RING = {"kind": "ising", "n": 6, "J": [[i, (i + 1) % 6, 1.0] for i in range(6)]}


def attempt(call):
    try:
        value = yield call
    except XdvError as error:
        return error.code.name
    return value["transform"]["status"] if isinstance(value, dict) and "transform" in value else "OK"


def anchor():
    contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 20})
    yield Emit((yield from attempt(Invoke(contract, "load", (RING,)))))
    yield Emit((yield from attempt(Invoke(contract, "shift", (0.1,)))))
    yield Release(contract)


def main(kernel):
    pid = kernel.spawn(anchor, domains=("K", "Φ"))
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")

