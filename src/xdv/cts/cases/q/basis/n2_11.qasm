/*---
id: q.basis.n2-11
spec:
- XDV-032-4.1
- XDV-060-6
- XDV-004-5.1
- XDV-015-7
- XDV-023-3.2
- XDV-032-10
- XDV-005-6.2
description: 'X on qubits [0, 1] of 2, measured: every one of 40 shots reads 11 (measurement is the only
  Q→K projection)'
level: hybrid
requires:
- q
options:
  shots: 40
  seed: 3
expect:
  exit: ok
  counts:
    '11': 40
  trace:
    order:
    - RUN_START
    - DOMAIN_BIND
    - RESOURCE_RESERVE
    - DOMAIN_INVOKE
    - DOMAIN_RESULT
    - RESOURCE_RELEASE
    - RUN_END
    present:
    - ATTESTATION
    - CAPABILITY_GRANT
    counts:
      DOMAIN_INVOKE: 1
      DOMAIN_RESULT: 1
  replay: both
---*/
OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
x q[0];
x q[1];
c = measure q;
