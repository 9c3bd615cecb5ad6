"""Coverage-guided fuzzing of the trace, proof and witness readers with Atheris (optional).

Atheris is not a dependency of XDV; install it (``pip install atheris``, a wheel for CPython
on Linux x86-64) to use this target. Each input's first byte picks a reader, the rest is its
input; any exception other than a typed :class:`~xdv.errors.XdvError` is a finding, and
Atheris stops with the input that caused it::

    python tests/fuzz/atheris_fuzz.py -atheris_runs=200000 -max_len=4096 [CORPUS_DIR]

The readers are called directly (no command line), which is what coverage guidance needs to
be fast; the seeded campaign in ``fuzzlib.py`` covers the commands themselves.
"""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports(include=["xdv.trace", "xdv.inputs", "xdv.cli._audit"]):
    from xdv.cli._audit import check_proof
    from xdv.errors import XdvError
    from xdv.inputs import load_json
    from xdv.trace import PREAMBLE, verify_trace
    from xdv.trace._format import profile_violation

with atheris.instrument_imports(include=["xdv.domains.phi._witness"]):
    from xdv.domains.phi import verify_witness


def one_input(data: bytes) -> None:
    """Run one reader on ``data[1:]``, chosen by ``data[0]``."""
    if not data:
        return
    choice, rest = data[0] % 4, data[1:]
    try:
        if choice == 0:
            verify_trace(PREAMBLE + rest, allow_open=True)
        elif choice == 1:
            profile_violation(rest)
        elif choice == 2:
            check_proof(load_json(rest, "proof"), root=b"\0" * 32)
        else:
            verify_witness(load_json(rest, "witness"), recheck=False)
    except XdvError:
        pass
    except json.JSONDecodeError:  # pragma: no cover - load_json turns these into XdvError
        raise


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
