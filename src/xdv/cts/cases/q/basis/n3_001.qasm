/*---
id: q.basis.n3-001
spec:
- XDV-032-4.1
- XDV-060-6
- XDV-004-5.1
- XDV-015-7
- XDV-023-3.2
- XDV-032-10
- XDV-005-6.2
description: 'X on qubits [0] of 3, measured: every one of 24 shots reads 001 (measurement is the only
  Q→K projection)'
level: hybrid
requires:
- q
options:
  shots: 24
  seed: 1
expect:
  exit: ok
  counts:
    '001': 24
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
qubit[3] q;
bit[3] c;
x q[0];
c = measure q;
