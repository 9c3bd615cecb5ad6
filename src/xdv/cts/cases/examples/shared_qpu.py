"""---
id: example.shared-qpu
spec: [XDV-023-6.1, XDV-023-6.2, XDV-023-4.3, XDV-012-5.1, XDV-082-7.1, XDV-082-8.1]
description: >-
  Six tenants want more qubits of a 27-qubit device than it has: the ones that do not fit wait
  in the admission queue and are granted as others release; one gives up at its deadline
  (ADMISSION_TIMEOUT). A Φ window that overlaps another is moved to the earliest free start,
  right after it ([40, 56) then [56, 72)).
level: hybrid
requires: [q, phi]
expect:
  exit: ok
  outputs_include:
    - "zeta: gave up (ADMISSION_TIMEOUT)"
    - "phi-a: Φ window [40, 56)"
    - "phi-b: Φ window [56, 72)"
  trace:
    present: [ADMISSION_WAIT, ADMISSION_GRANT, ADMISSION_TIMEOUT, CONFLICT_RESOLVED]
---"""

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
