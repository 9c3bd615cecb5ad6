"""A Φ workload: an exact admissibility query and a phase-oscillator anneal, with one refusal."""

from xdv.core import Operation
from xdv.errors import XdvError
from xdv.syscalls import Emit, Invoke, Release, Reserve

PROBLEM = {
    "variables": [{"name": "x", "kind": "bool"}, {"name": "n", "kind": "int", "lo": 0, "hi": 7}],
    "constraints": [
        {"op": "!=", "lhs": {"var": "n"}, "rhs": {"op": "*", "args": [{"var": "x"}, {"const": 2}]}},
        {"op": ">=", "lhs": {"var": "n"}, "rhs": {"const": 1}},
    ],
}
ISING = {
    "kind": "ising",
    "n": 5,
    "h": [0.1, 0, 0, 0, -0.1],
    "J": [[0, 1, 1.0], [1, 2, -1.0], [2, 3, 1.0], [3, 4, 1.0]],
}


def solver():
    contract = yield Reserve("Φ", "envelope")
    result = yield Invoke(contract, "solve", (PROBLEM,))
    yield Emit(result["assignment"])
    yield Release(contract)


def annealer():
    contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 8})
    result = yield Invoke(contract, "anneal", (ISING, {"steps": 200, "replicas": 4}))
    yield Emit([result["energy"], result["stability"]["checksum"]])
    try:
        yield Invoke(contract, "phases")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    for anchor in (solver, annealer):
        pid = kernel.spawn(anchor, domains=("K", "Φ"))
        kernel.grant(pid, Operation.PROJECT, "Φ", "K")
