"""What a Φ provider is: the protocol the Φ manager drives.

A provider is the only place a Φ phase structure exists. The manager never reads phases: it asks
the provider to apply transforms to an envelope and to report structured results (readouts,
metrics). Every provider follows the provider model that Q providers share
(:class:`xdv.security.AttestableProvider`): a stable ``provider_id``, a secret signing
``identity`` (its key in the node's key store, pinned per provider id), a ``measurement()``
(:func:`xdv.security.measure_provider` over its own source files and canonical configuration)
and a trace-encodable ``declaration()``, which the kernel's attestation verifier judges when a
process binds to the Φ domain.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from xdv.security import AttestableProvider

__all__ = ["PhiProvider"]


@runtime_checkable
class PhiProvider(AttestableProvider, Protocol):
    """The provider surface the Φ manager uses (see the concrete providers for transforms)."""

    transforms: frozenset[str]

    def configuration(self) -> dict[str, Any]:
        """Canonical configuration (enough to rebuild an identical provider for replay)."""
        ...
