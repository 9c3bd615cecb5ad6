"""---
id: phi.envelope.not-transferred-across-vhms
spec:
- XDV-083-4.3
- XDV-061-7
- XDV-013-6.2
description: An envelope contract cannot be handed to a process of another VHM (VHM_ISOLATION); its owner
  still uses it.
level: hybrid
requires:
- phi
expect:
  exit: ok
  outputs:
  - VHM_ISOLATION
  - OK
  trace:
    absent:
    - RESOURCE_TRANSFER:OK
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


def idle():
    yield Sleep(40)


def owner(other):
    contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 30})
    try:
        yield Transfer(contract, other)
        yield Emit("transferred")
    except XdvError as error:
        yield Emit(error.code.name)
    yield Emit((yield from attempt(Invoke(contract, "load", (RING,)))))
    yield Release(contract)


def main(kernel):
    left = kernel.create_vhm("left")
    right = kernel.create_vhm("right")
    other = kernel.spawn(idle, vhm=right, domains=("K", "Φ"))
    pid = kernel.spawn(owner, other, vhm=left, domains=("K", "Φ"))
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")

