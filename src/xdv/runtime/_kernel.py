"""Building a kernel with XDV's security layer injected.

The core kernel imports no security code: a bare :class:`~xdv.core.Kernel` holds the core's
minimal capability table and admits no provider. Every run the runtime makes, and every
embedding that wants XDV's full behaviour, builds its kernel here instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xdv.core import DomainManager, Kernel, SchedulerPolicy, parse_policy
from xdv.domains import attest_plugins
from xdv.errors import XdvError
from xdv.security import AttestationVerifier, TokenAuthority

__all__ = ["build_policy", "make_kernel", "with_security"]


def build_policy(spec: str | SchedulerPolicy | None) -> SchedulerPolicy:
    """The scheduler policy ``spec`` names (``NAME[:key=value,...][+NAME...]``; see
    ``docs/scheduler.md``), loading the Q domain first when the spec names its ``fidelity``
    placement policy. A policy object is returned as it is; None is round-robin."""
    if spec is None:
        spec = "round-robin"
    if not isinstance(spec, str):
        return spec
    try:
        return parse_policy(spec)
    except XdvError:
        import xdv.domains.q  # noqa: F401  (registers the Q domain's fidelity policy)

        return parse_policy(spec)


def make_kernel(seed: int = 0, **options: Any) -> Kernel:
    """A :class:`~xdv.core.Kernel` with the SDBM token authority (signed, attenuable, revocable
    capability tokens under a fresh key) and the provider attestation verifier, unless
    ``authority`` or ``attestation`` are given; every other option passes through."""
    return Kernel(seed, **with_security(options))


def with_security(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the security layer's authority and attestation verifier filled in
    (what :func:`make_kernel` passes to the kernel)."""
    options.setdefault("authority", TokenAuthority())
    if "attestation" not in options:
        verifier = AttestationVerifier()
        # Plug-in providers attest themselves with their own identity key (pinned on first use).
        attest_plugins(verifier, run_providers(options.get("domains") or ()))
        options["attestation"] = verifier
    return options


def run_providers(managers: Iterable[DomainManager]) -> list[Any]:
    """Every provider of ``managers`` (those that list theirs with ``providers()``)."""
    found: list[Any] = []
    for manager in managers:
        listing = getattr(manager, "providers", None)
        if callable(listing):
            found.extend(value for _, value in sorted(listing().items()))
    return found
