"""Helpers shared by the integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ROOT / "tests" / "workloads"
EXAMPLES = ROOT / "examples"


def xdv(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the ``xdv`` command in a separate process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "xdv", *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def rechained(data: bytes, edit: Any) -> bytes:
    """The trace with RUN_START's metadata edited and every later link recomputed (what a
    forger without a signing key can do: the result passes the chain checks)."""
    from xdv.trace import read_trace
    from xdv.trace._format import (
        GENESIS_HASH,
        HEADER,
        canonical_metadata,
        encode_trace,
        entry_hash,
    )

    bodies, previous = [], GENESIS_HASH
    for index, entry in enumerate(read_trace(data).entries):
        metadata = edit(dict(entry.metadata)) if index == 0 else entry.metadata
        fields = list(HEADER.unpack_from(entry.body))
        fields[-1] = previous
        body = HEADER.pack(*fields) + canonical_metadata(metadata)
        bodies.append(body)
        previous = entry_hash(body)
    return encode_trace(bodies)
