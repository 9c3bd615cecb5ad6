"""What a Φ provider is: the protocol the Φ manager drives, and shared provider helpers.

A provider is the only place a Φ phase structure exists. The manager never reads phases: it asks
the provider to apply transforms to an envelope and to report structured results (readouts,
metrics). Every provider exposes the attestation surface the security layer checks when a
process binds to the Φ domain: a stable ``provider_id``, a ``measurement()`` (SHA-256 over its
own source files and canonical configuration) and a trace-encodable ``declaration()``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cbor2

from xdv.trace import canonicalize

__all__ = ["PhiProvider", "measure_sources"]


@runtime_checkable
class PhiProvider(Protocol):
    """The provider surface the Φ manager uses (see the concrete providers for transforms)."""

    provider_id: str
    transforms: frozenset[str]

    def measurement(self) -> str:
        """Hex SHA-256 over the provider's source files and canonical configuration."""
        ...

    def declaration(self) -> dict[str, Any]:
        """Trace-encodable capability declaration: transforms, sizes, limits."""
        ...

    def configuration(self) -> dict[str, Any]:
        """Canonical configuration (enough to rebuild an identical provider for replay)."""
        ...


def measure_sources(files: Iterable[Path], configuration: dict[str, Any]) -> str:
    """SHA-256 over each file's name and bytes, then the canonical configuration."""
    digest = hashlib.sha256()
    for path in files:
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    digest.update(cbor2.dumps(canonicalize(configuration, "provider configuration")))
    return digest.hexdigest()
