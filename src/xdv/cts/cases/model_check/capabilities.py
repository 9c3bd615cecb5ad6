"""---
id: model-check.capabilities
spec: [XDV-053-5.4, XDV-053-9]
description: >-
  Every interleaving of up to three mint, attenuate, delegate (narrower, equal or wider) and
  revoke actions of two subjects on the real capability authority keeps the reference model's
  outcomes, scope containment and revocation below a revoked token. The breadth-first search
  is deterministic; at depth 3 it reaches at least 147 distinct states over at least 174
  transitions (a shrunken exploration fails the bound), and finds no violation.
level: core
action: model-check
options: {depth: 3}
expect:
  model: {violation: false, states_min: 147, transitions_min: 174, depth: 3}
---"""

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "xdv_cts_capabilities_base", Path(__file__).with_name("capabilities.base.py")
)
assert _spec is not None and _spec.loader is not None
_base = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _base  # dataclasses look their module up
_spec.loader.exec_module(_base)
system = _base.system
