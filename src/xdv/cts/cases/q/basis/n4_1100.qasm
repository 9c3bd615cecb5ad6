/*---
id: q.basis.n4-1100
spec:
- XDV-032-4.1
- XDV-060-6
- XDV-004-5.1
- XDV-015-7
- XDV-023-3.2
- XDV-032-10
- XDV-005-6.2
description: 'X on qubits [2, 3] of 4, measured: every one of 112 shots reads 1100 (measurement is the
  only Q→K projection)'
level: hybrid
requires:
- q
options:
  shots: 112
  seed: 12
expect:
  exit: ok
  counts:
    '1100': 112
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
qubit[4] q;
bit[4] c;
x q[2];
x q[3];
c = measure q;
