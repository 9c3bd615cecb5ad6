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


def holder():
    contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 50})
    yield Sleep(60)
    yield Release(contract)


def early():
    yield Sleep(1)
    contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 5})
    yield Emit(contract.terms["window"]["start"] >= 50)
    yield Emit((yield from attempt(Invoke(contract, "load", (RING,)))))


def main(kernel):
    for anchor in (holder, early):
        pid = kernel.spawn(anchor, domains=("K", "Φ"))
        kernel.grant(pid, Operation.PROJECT, "Φ", "K")

