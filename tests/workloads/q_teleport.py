"""A Q workload: teleportation with mid-circuit measurement and feed-forward, then a GHZ."""

from xdv import Operation
from xdv.domains.q import QHandle
from xdv.syscalls import Emit

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

GHZ = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
creg c[4];
h q[0];
cx q[0],q[1];
cx q[1],q[2];
cx q[2],q[3];
measure q -> c;
"""


def anchor():
    handle = yield from QHandle.reserve(4, noise=True, calibration="fake_manila")
    teleported = yield from handle.run(TELEPORT, 200)
    ghz = yield from handle.run(GHZ, 200)
    yield Emit({"teleport": teleported["counts"], "ghz": ghz["counts"]})
    yield from handle.release()


def main(kernel):
    pid = kernel.spawn(anchor, domains=("K", "Q"))
    kernel.grant(pid, Operation.MEASURE, "Q", "K")
