"""---
id: model-check.capabilities-planted-bug
spec: [XDV-053-9]
description: >-
  The same exploration with a bug planted in the reference model (a revocation that does not
  reach the tokens derived below): the explorer must catch it, with the shortest action
  sequence that exposes it (mint, derive, revoke the parent: three actions).
level: core
action: model-check
options: {depth: 3, planted: revoke-no-cascade}
expect:
  model: {violation: true, counterexample_max: 3}
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
