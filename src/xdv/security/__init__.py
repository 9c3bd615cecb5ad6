"""XDV security: hybrid signatures, the node key store, capability tokens, provider attestation,
hybrid key agreement and the Merkle audit log."""

from xdv.security._audit import (
    AuditFile,
    AuditReport,
    SignedHeadLog,
    audit_path_for,
    verify_audit,
)
from xdv.security._keys import SIGNATURE_SIZE, HybridKeyPair, HybridPublicKey
from xdv.security._keystore import KeyStore, default_key_store_path

__all__ = [
    "SIGNATURE_SIZE",
    "AuditFile",
    "AuditReport",
    "HybridKeyPair",
    "HybridPublicKey",
    "KeyStore",
    "SignedHeadLog",
    "audit_path_for",
    "default_key_store_path",
    "verify_audit",
]
