"""---
id: model-check.kernel-contract-lifecycle
spec: [XDV-053-5.3, XDV-053-9]
description: >-
  On the real kernel with two processes sharing two K lanes, every interleaving of up to four
  reserve, invoke, transfer and release calls, and of releasing or invoking a handle of an
  already released contract, keeps the reference model's outcomes: a stale handle is refused
  with CONTRACT_INVALID, a reservation beyond the lanes with RESOURCE_EXHAUSTED, a transfer
  moves exactly one contract, and the lanes in use equal the live contracts' lanes. The
  exploration reaches at least 19 states over at least 66 transitions, with no violation.
level: core
action: model-check
options: {depth: 4}
expect:
  model: {violation: false, states_min: 19, transitions_min: 66, depth: 4}
---"""

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "xdv_cts_kernel_base", Path(__file__).with_name("kernel.base.py")
)
assert _spec is not None and _spec.loader is not None
_base = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _base  # dataclasses look their module up
_spec.loader.exec_module(_base)


def system(planted=None):
    """Two processes calling every contract operation, stale handles included."""
    return _base.KernelSystem(2, _base.CONTRACT_KINDS)
