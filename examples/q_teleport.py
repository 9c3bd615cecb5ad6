"""Quantum teleportation on a simulated IBM device: K control drives Q jobs.

The workload declares the Q domain (``XDV_DOMAINS``), so ``xdv run`` installs the Q manager.
A process reserves a three-qubit Q container under the calibration of a real device snapshot,
teleports the state ry(1.1)|0> from q[0] to q[2] with mid-circuit measurements and classical
feed-forward, undoes the rotation on q[2] and reads it: noiseless, q[2] always reads 0; with
the device's noise, it mostly does. Run: ``xdv run examples/q_teleport.py --trace t.xdvt``.
"""

from xdv import Operation
from xdv.domains.q import QHandle
from xdv.syscalls import Emit

XDV_DOMAINS = {"Q": {"manager": "q"}}

TELEPORT = """OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
bit[3] c;
ry(1.1) q[0];
h q[1];
cx q[1], q[2];
cx q[0], q[1];
h q[0];
c[0] = measure q[0];
c[1] = measure q[1];
if (c[1] == true) x q[2];
if (c[0] == true) { z q[2]; }
ry(-1.1) q[2];
c[2] = measure q[2];
"""


def teleport():
    for noise in (False, True):
        yield from run_once(noise)


def run_once(noise):
    handle = yield from QHandle.reserve(3, calibration="fake_manila", noise=noise)
    result = yield from handle.run(TELEPORT, shots=1000)
    yield from handle.release()
    ok = sum(count for bits, count in result["counts"].items() if bits[0] == "0")
    label = "noisy" if noise else "ideal"
    yield Emit(f"{label}: q[2] read 0 in {ok} of 1000 shots")
    diagnostics = result["diagnostics"]
    yield Emit(
        f"{label}: estimated {diagnostics['duration_ns']} ns, fidelity {diagnostics['fidelity']}"
    )


def main(kernel):
    pid = kernel.spawn(teleport, domains=("K", "Q"))
    kernel.grant(pid, Operation.MEASURE, "Q", "K")
