"""Tenants sharing one 27-qubit device: the admission queue and scheduler policies.

Six tenants each want a GHZ job on the calibrated ``fake_kolkata`` snapshot (27 qubits). Their
reservations ask for more qubits together than the device has, so with ``wait=True`` the ones
that do not fit wait in the admission queue and are granted, in scheduler-policy order, as
others release. One tenant gives up after a deadline in logical time. A Φ job asks for a
coherence window that overlaps another's and lets the kernel resolve the conflict
(``resolve=True``: the window moves to the earliest free start).

    xdv run examples/shared_qpu.py --trace shared.xdvt                   # round-robin
    xdv run examples/shared_qpu.py --policy fidelity:profiles=fake_kolkata --trace shared.xdvt
    xdv replay shared.xdvt                                              # rebuilds the policy

With the ``fidelity`` policy each grant is placed on the chain of physical qubits with the best
estimated fidelity (a PLACEMENT entry records it) instead of the lowest free ones.
"""

from xdv import XdvError
from xdv.core import Operation
from xdv.syscalls import Emit, Invoke, Now, Release, Reserve, Sleep

XDV_DOMAINS = {
    "Q": {"manager": "q", "default_calibration": "fake_kolkata"},
    "Φ": {"manager": "phi"},
}


def ghz(qubits):
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{qubits}] q;", f"bit[{qubits}] c;"]
    lines.append("h q[0];")
    lines += [f"cx q[{i}], q[{i + 1}];" for i in range(qubits - 1)]
    lines.append("c = measure q;")
    return "\n".join(lines) + "\n"


def tenant(name, qubits, hold, patience):
    now = yield Now()
    try:
        contract = yield Reserve(
            "Q",
            "qubits",
            qubits,
            terms={"calibration": "fake_kolkata"},
            wait=True,
            deadline=None if patience is None else now + patience,
        )
    except XdvError as error:
        yield Emit(f"{name}: gave up ({error.code.name})")
        return
    granted = yield Now()
    result = yield Invoke(contract, "run", (ghz(qubits), 200))
    fidelity = result["diagnostics"]["fidelity"]
    mapping = contract.terms["mapping"]
    yield Emit(
        f"{name}: {qubits} qubits at L={granted} on {mapping[:3]}..., est. fidelity {fidelity:.3f}"
    )
    yield Sleep(hold)
    yield Release(contract)


def phi_job(name, start):
    contract = yield Reserve(
        "Φ",
        "envelope",
        1,
        terms={"start": start, "window": 16, "provider": "phase"},
        resolve=True,
    )
    window = contract.terms["window"]
    yield Emit(f"{name}: Φ window [{window['start']}, {window['end']})")
    yield Sleep(4)
    yield Release(contract)


def main(kernel):
    tenants = [
        ("alpha", 10, 20, None),
        ("beta", 9, 12, None),
        ("gamma", 8, 30, None),
        ("delta", 6, 8, None),
        ("epsilon", 12, 5, None),
        ("zeta", 20, 5, 10),
    ]
    for name, qubits, hold, patience in tenants:
        pid = kernel.spawn(tenant, name, qubits, hold, patience, name=name, domains=("K", "Q"))
        kernel.grant(pid, Operation.MEASURE, "Q", "K")
    for name in ("phi-a", "phi-b"):
        kernel.spawn(phi_job, name, 40, name=name, domains=("K", "Φ"))
