/*---
id: q.job.circuit-invalid
spec: [XDV-060-5.2]
description: A circuit that does not parse is refused before anything runs, with CIRCUIT_INVALID.
level: hybrid
requires: [q]
options: {shots: 16}
expect:
  exit: static
  code: CIRCUIT_INVALID
---*/
OPENQASM 3.0;
qubit[2] q;
this is not a gate;
