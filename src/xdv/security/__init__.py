"""XDV security: hybrid signatures, the node key store, capability tokens, provider attestation,
hybrid key agreement and the Merkle audit log."""

from xdv.security._keys import SIGNATURE_SIZE, HybridKeyPair, HybridPublicKey
from xdv.security._keystore import KeyStore, default_key_store_path

__all__ = [
    "SIGNATURE_SIZE",
    "HybridKeyPair",
    "HybridPublicKey",
    "KeyStore",
    "default_key_store_path",
]
