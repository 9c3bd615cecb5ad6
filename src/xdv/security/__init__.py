"""XDV security: hybrid signatures, the node key store (node and provider keys, the provider
registry), capability tokens, the provider model and its attestation, hybrid key agreement and
the Merkle audit log."""

from xdv.security._attestation import (
    AttestableProvider,
    AttestationVerifier,
    ProviderAttestation,
    ProviderFacts,
    ProviderIdentity,
    Signer,
    StoredIdentity,
    attest,
    embedded_provider,
    measure_provider,
)
from xdv.security._audit import (
    HEAD_SIGNATURE_CONTEXT,
    AuditFile,
    AuditReport,
    SignedHeadLog,
    audit_path_for,
    head_message,
    verify_audit,
)
from xdv.security._kem import Encapsulation, KemKeyPair, KemPublicKey, SessionKeys, derive_session
from xdv.security._kem import initiate as kem_initiate
from xdv.security._kem import respond as kem_respond
from xdv.security._keys import SIGNATURE_SIZE, HybridKeyPair, HybridPublicKey
from xdv.security._keystore import KeyStore, ProviderRegistry, default_key_store_path
from xdv.security._scope import ANY_RESOURCE, FOREVER, Right, Scope, contains, intersection, union
from xdv.security._tokens import DEPTH_MAX, CapabilityToken, TokenAuthority

__all__ = [
    "ANY_RESOURCE",
    "DEPTH_MAX",
    "FOREVER",
    "HEAD_SIGNATURE_CONTEXT",
    "SIGNATURE_SIZE",
    "AttestableProvider",
    "AttestationVerifier",
    "AuditFile",
    "AuditReport",
    "CapabilityToken",
    "Encapsulation",
    "HybridKeyPair",
    "HybridPublicKey",
    "KemKeyPair",
    "KemPublicKey",
    "KeyStore",
    "ProviderAttestation",
    "ProviderFacts",
    "ProviderIdentity",
    "ProviderRegistry",
    "Right",
    "Scope",
    "SessionKeys",
    "SignedHeadLog",
    "Signer",
    "StoredIdentity",
    "TokenAuthority",
    "attest",
    "audit_path_for",
    "contains",
    "default_key_store_path",
    "derive_session",
    "embedded_provider",
    "head_message",
    "intersection",
    "kem_initiate",
    "kem_respond",
    "measure_provider",
    "union",
    "verify_audit",
]
