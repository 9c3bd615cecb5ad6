"""Calibration contracts: signed with a provider's secret identity key, verified against the key
pinned for the provider.

A provider's identity (:class:`xdv.security.ProviderIdentity`) holds a secret hybrid Ed25519 +
ML-DSA-65 key: for XDV's own providers, drawn at random and kept in the node's key store; its
public half is pinned per provider id in the key store's provider registry. Nothing a trace
holds (provider id, measurement, contract digests) lets anyone derive it, so a trace does not
let its reader sign a contract as the provider.

Signatures never enter a trace (ML-DSA signatures are randomized, and keys differ between
machines): the trace records digests of the signed bodies, and the signed objects are kept
beside it (:meth:`QDomainManager.calibration_contract`).
"""

from __future__ import annotations

from xdv.domains.q._calibration import CalibrationContract, CalibrationProfile, error_bounds
from xdv.security import HybridPublicKey, ProviderIdentity

__all__ = ["CALIBRATION_CONTEXT", "sign_calibration", "verify_calibration"]

CALIBRATION_CONTEXT = b"xdv-q-calibration"
"""The signature context of calibration contracts (domain separation from other signatures)."""


def sign_calibration(
    identity: ProviderIdentity,
    contract_id: int,
    profile: CalibrationProfile,
    now: int,
    validity: int,
) -> CalibrationContract:
    """Build the calibration contract a provider issues for ``profile`` over ``[now, now +
    validity]`` and sign it with the provider's secret identity key."""
    unsigned = CalibrationContract(
        id=contract_id,
        provider_id=identity.provider_id,
        profile=profile.name,
        profile_digest=profile.digest,
        valid_from=now,
        valid_until=now + validity,
        error_bounds=error_bounds(profile),
        signature=b"",
    )
    signature = identity.sign(unsigned.message(), context=CALIBRATION_CONTEXT)
    return CalibrationContract(
        id=unsigned.id,
        provider_id=unsigned.provider_id,
        profile=unsigned.profile,
        profile_digest=unsigned.profile_digest,
        valid_from=unsigned.valid_from,
        valid_until=unsigned.valid_until,
        error_bounds=unsigned.error_bounds,
        signature=signature,
    )


def verify_calibration(contract: CalibrationContract, pinned: HybridPublicKey, where: str) -> None:
    """Raise SIGNATURE_INVALID unless ``contract`` is signed by the key ``pinned`` for its
    provider (a contract signed by any other key, or altered after signing, is refused)."""
    pinned.verify(contract.message(), contract.signature, context=CALIBRATION_CONTEXT)
