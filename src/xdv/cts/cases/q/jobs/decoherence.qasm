/*---
id: q.job.decoherence-budget-refused
spec: [XDV-012-6.2, XDV-082-7.2, XDV-013-5.3, XDV-072-3.3]
description: >-
  A noisy 3-qubit job on the fake_manila calibration whose estimated fidelity is far below the
  budget's floor of 0.9999 is refused before the provider runs it, with DECOHERENCE_EXCEEDED.
level: hybrid
requires: [q]
options: {shots: 64, calibration: fake_manila, noise: true, fidelity_min: 0.9999}
expect:
  exit: runtime
  code: DECOHERENCE_EXCEEDED
---*/
OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
bit[3] c;
h q[0];
cx q[0], q[1];
cx q[1], q[2];
x q[0];
x q[0];
c = measure q;
