"""---
id: phi.envelope.transform-outside-window
spec:
- XDV-061-4.3
- XDV-033-4.1
- XDV-004-6.1
- XDV-013-6.3
description: 'An envelope with a 5-step window: a load inside it runs; a shift after sleeping 10 steps
  is rejected (PHI_ERR_COHERENCE_TIMEOUT) and invalidates the envelope, so the next shift is PHI_ERR_ENVELOPE_INVALID.'
level: hybrid
requires:
- phi
expect:
  exit: ok
  outputs:
  - OK
  - PHI_ERR_COHERENCE_TIMEOUT
  - PHI_ERR_ENVELOPE_INVALID
  trace:
    counts:
      DOMAIN_RESULT:PHI_ERR_COHERENCE_TIMEOUT: 1
    present:
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
    contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 5})
    yield Emit((yield from attempt(Invoke(contract, "load", (RING,)))))
    yield Sleep(10)
    yield Emit((yield from attempt(Invoke(contract, "shift", (0.1,)))))
    yield Emit((yield from attempt(Invoke(contract, "shift", (0.1,)))))
    yield Release(contract)


def main(kernel):
    pid = kernel.spawn(anchor, domains=("K", "Φ"))
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")

