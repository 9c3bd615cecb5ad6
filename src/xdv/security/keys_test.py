from __future__ import annotations

import os
from pathlib import Path

import pytest

from xdv.errors import ErrorCode, UnauthorizedError, XdvError
from xdv.security import SIGNATURE_SIZE, HybridKeyPair, HybridPublicKey, KeyStore

KEYS = HybridKeyPair.from_seed(b"test key")
OTHER = HybridKeyPair.from_seed(b"other key")


@pytest.mark.spec("XDV-031-4.1")
def test_a_hybrid_signature_needs_both_halves() -> None:
    signature = KEYS.sign(b"message", context=b"ctx")
    assert len(signature) == SIGNATURE_SIZE
    KEYS.public.verify(b"message", signature, context=b"ctx")
    ed_end = 3 + 64
    for position in (3, ed_end - 1, ed_end, SIGNATURE_SIZE - 1):
        damaged = bytearray(signature)
        damaged[position] ^= 0x01
        with pytest.raises(UnauthorizedError) as raised:
            KEYS.public.verify(b"message", bytes(damaged), context=b"ctx")
        assert raised.value.code is ErrorCode.SIGNATURE_INVALID
    # One valid half spliced with another key's half is rejected.
    foreign = OTHER.sign(b"message", context=b"ctx")
    spliced = signature[:ed_end] + foreign[ed_end:]
    with pytest.raises(UnauthorizedError, match="ML-DSA"):
        KEYS.public.verify(b"message", spliced, context=b"ctx")
    for bad in (signature[:-1], signature + b"\0", b"", signature.replace(b"XS1", b"XS2", 1)):
        with pytest.raises(UnauthorizedError):
            KEYS.public.verify(b"message", bad, context=b"ctx")
    with pytest.raises(UnauthorizedError):
        KEYS.public.verify(b"message", signature, context=b"other")
    with pytest.raises(UnauthorizedError):
        KEYS.public.verify(b"messagf", signature, context=b"ctx")
    with pytest.raises(UnauthorizedError):
        OTHER.public.verify(b"message", signature, context=b"ctx")


def test_seeded_keys_are_reproducible_and_records_round_trip() -> None:
    assert HybridKeyPair.from_seed(b"test key").public == KEYS.public
    assert KEYS.public != OTHER.public
    assert HybridPublicKey.from_record(KEYS.public.to_record()) == KEYS.public
    assert len(KEYS.public.fingerprint) == 64
    assert "seed" not in repr(KEYS) and KEYS.seed_bytes().hex() not in repr(KEYS)
    with pytest.raises(UnauthorizedError) as raised:
        HybridPublicKey.from_record({"ed25519": "00"})
    assert raised.value.code is ErrorCode.KEY_STORE_INVALID


def test_the_key_store_keeps_the_seed_private(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    keys, created = store.load_or_create()
    assert created
    assert (os.stat(store.path / "node.key").st_mode & 0o777) == 0o600
    assert (os.stat(store.path).st_mode & 0o777) == 0o700
    again, created = store.load_or_create()
    assert not created and again.public == keys.public == store.public_key()
    public_text = (store.path / "node.pub.json").read_text()
    assert keys.seed_bytes().hex() not in public_text
    with pytest.raises(XdvError, match="refusing to overwrite"):
        store.create()
    os.chmod(store.path / "node.key", 0o640)
    with pytest.raises(XdvError) as raised:
        store.load()
    assert raised.value.code is ErrorCode.KEY_STORE_INVALID
    assert "chmod 600" in raised.value.message
    os.chmod(store.path / "node.key", 0o600)
    (store.path / "node.key").write_text("{not json")
    with pytest.raises(XdvError, match="malformed"):
        store.load()


def test_the_key_store_leaves_an_existing_directory_alone_and_types_os_failures(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    KeyStore(shared).create()
    assert (os.stat(shared).st_mode & 0o777) == 0o755
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(XdvError) as raised:
        KeyStore(blocker / "sub").create()
    assert raised.value.code is ErrorCode.KEY_STORE_INVALID
