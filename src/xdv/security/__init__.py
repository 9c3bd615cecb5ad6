"""XDV security: hybrid signatures, the node key store (node and provider keys, the provider
registry), capability tokens, the provider model and its attestation, hybrid key agreement and
the Merkle audit log, and the measured boot (boot log, capability root, signed boot quotes)."""

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
from xdv.security._boot import (
    BOOT_STAGES,
    QUOTE_FORMAT,
    BootError,
    BootEvent,
    BootLog,
    BootQuote,
    MeasuredBoot,
    RootCapability,
    expected_measurements,
    measure_files,
    measure_kernel,
    measure_value,
    verify_quote,
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
    "BOOT_STAGES",
    "DEPTH_MAX",
    "FOREVER",
    "HEAD_SIGNATURE_CONTEXT",
    "QUOTE_FORMAT",
    "SIGNATURE_SIZE",
    "AttestableProvider",
    "AttestationVerifier",
    "AuditFile",
    "AuditReport",
    "BootError",
    "BootEvent",
    "BootLog",
    "BootQuote",
    "CapabilityToken",
    "Encapsulation",
    "HybridKeyPair",
    "HybridPublicKey",
    "KemKeyPair",
    "KemPublicKey",
    "KeyStore",
    "MeasuredBoot",
    "ProviderAttestation",
    "ProviderFacts",
    "ProviderIdentity",
    "ProviderRegistry",
    "Right",
    "RootCapability",
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
    "expected_measurements",
    "head_message",
    "intersection",
    "kem_initiate",
    "kem_respond",
    "measure_files",
    "measure_kernel",
    "measure_provider",
    "measure_value",
    "union",
    "verify_audit",
    "verify_quote",
]
