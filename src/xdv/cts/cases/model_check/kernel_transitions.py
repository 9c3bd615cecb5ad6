"""---
id: model-check.kernel-transitions-under-faults
spec: [XDV-053-6.2, XDV-053-9]
description: >-
  On the real kernel, every sequence of up to four reservations, releases and transitions of
  one process, with a fault injected at each of the seven transition phases in turn, keeps the
  reference model's outcomes and the protocol's atomicity (a rolled-back transition leaves the
  state as it was and undoes exactly its reservation; a committed one keeps nothing of it). The
  exploration reaches at least 7 distinct states over at least 57 transitions, with no
  violation.
level: core
action: model-check
options: {depth: 4}
expect:
  model: {violation: false, states_min: 7, transitions_min: 57, depth: 4}
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
    """One process reserving, releasing and making transitions (faults at every phase)."""
    return _base.KernelSystem(1, ("reserve", "release", *_base.TRANSITION_KINDS))
