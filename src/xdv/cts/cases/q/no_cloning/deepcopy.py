"""---
id: q.no-cloning.deepcopy
spec:
- XDV-032-5
- XDV-032-9
- XDV-032-3.1
- XDV-060-8
description: Trying to deepcopy a Q container is refused with NO_CLONING_VIOLATION and logged (as the
  failure of the container's next operation); the container stays usable and a Bell pair still reads only
  00 or 11.
level: hybrid
requires:
- q
expect:
  exit: ok
  outputs:
  - NO_CLONING_VIOLATION
  - true
  trace:
    counts:
      DOMAIN_RESULT:NO_CLONING_VIOLATION: 1
---"""
import copy
import pickle

from xdv import Operation
from xdv.domains.q import QHandle
from xdv.errors import XdvError
from xdv.syscalls import Emit

XDV_DOMAINS = {"Q": {"manager": "q"}}

BELL = "\n".join(
    ["OPENQASM 3.0;", 'include "stdgates.inc";', "qubit[2] q;", "bit[2] c;", "h q[0];"]
    + ["cx q[0], q[1];", "c = measure q;", ""]
)


def anchor():
    handle = yield from QHandle.reserve(2)
    try:
        copy.deepcopy(handle)
        yield Emit("duplicated")
    except XdvError as error:
        yield Emit(error.code.name)
    result = yield from handle.run(BELL, 10)
    yield Emit(sorted(result["counts"]) <= ["00", "11"])


def main(kernel):
    pid = kernel.spawn(anchor, domains=("K", "Q"))
    kernel.grant(pid, Operation.MEASURE, "Q", "K")
