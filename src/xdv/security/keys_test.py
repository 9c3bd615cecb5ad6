from __future__ import annotations

import copy
import json
import multiprocessing
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.errors import ErrorCode, UnauthorizedError, XdvError
from xdv.security import (
    SIGNATURE_SIZE,
    HybridKeyPair,
    HybridPublicKey,
    KeyStore,
    ProviderIdentity,
    ProviderRegistry,
)

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


def _pin_in_child(path: str, seed: bytes, queue: Any) -> None:
    registry = ProviderRegistry(path)
    try:
        queue.put(registry.pin("racer", HybridKeyPair.from_seed(seed).public).fingerprint)
    except XdvError as error:
        queue.put(error.code.name)


def test_provider_keys_are_random_private_and_pinned_on_first_use(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    identity = ProviderIdentity.from_store("aer", store)
    key_file = store.path / "provider-aer.key"
    assert (os.stat(key_file).st_mode & 0o777) == 0o600
    assert (os.stat(store.path).st_mode & 0o777) == 0o700
    # Random, not derived from anything public: another store gets another key.
    elsewhere = ProviderIdentity.from_store("aer", KeyStore(tmp_path / "other"))
    assert elsewhere.public != identity.public
    # Loaded again, the same key; its public half is pinned in the store's registry.
    assert ProviderIdentity.from_store("aer", store).public == identity.public
    registry = store.provider_registry()
    assert registry.pinned("aer") == identity.public
    assert registry.fingerprints() == {"aer": identity.fingerprint}
    text = (store.path / "providers.json").read_text()
    assert json.loads(text)["providers"]["aer"]["fingerprint"] == identity.fingerprint
    assert json.loads(key_file.read_text())["seed"] not in text + repr(identity)
    # The secret cannot be copied out of the identity.
    for copier in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(XdvError) as raised:
            copier(identity)
        assert raised.value.code is ErrorCode.KEY_STORE_INVALID
    # A replaced key file no longer matches the pin: refused, naming no key.
    key_file.unlink()
    with pytest.raises(XdvError) as raised:
        ProviderIdentity.from_store("aer", store)
    assert raised.value.code is ErrorCode.PROVIDER_KEY_MISMATCH
    assert identity.fingerprint not in raised.value.message
    # Permissions and names are checked like the node key's.
    os.chmod(key_file, 0o644)
    with pytest.raises(XdvError, match="chmod 600"):
        store.provider_key("aer")
    os.chmod(store.path / "providers.json", 0o666)
    with pytest.raises(XdvError, match="chmod 644"):
        store.provider_registry().pinned("stim")
    with pytest.raises(XdvError) as raised:
        store.provider_key("../node")
    assert raised.value.code is ErrorCode.KEY_STORE_INVALID


def test_concurrent_first_pins_agree_on_one_key(tmp_path: Path) -> None:
    path = str(tmp_path / "keys" / "providers.json")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    racers = [
        context.Process(target=_pin_in_child, args=(path, seed, queue))
        for seed in (b"first", b"second")
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(60)
    answers = sorted(str(queue.get(timeout=5)) for _ in racers)
    pinned = ProviderRegistry(path).pinned("racer")
    assert pinned is not None
    # One racer pinned its key; the other was refused (or, if it came second with the same key,
    # accepted): never two pins.
    assert pinned.fingerprint in answers
    assert set(answers) <= {pinned.fingerprint, "PROVIDER_KEY_MISMATCH"}


@settings(max_examples=40)
@given(
    st.lists(st.tuples(st.sampled_from(["aer", "stim", "exact"]), st.integers(0, 2)), max_size=12)
)
def test_a_registry_keeps_the_first_key_of_each_provider(
    uses: list[tuple[str, int]],
) -> None:
    keys = [HybridKeyPair.from_seed(bytes([index])).public for index in range(3)]
    registry = ProviderRegistry()
    first: dict[str, int] = {}
    for provider_id, index in uses:
        first.setdefault(provider_id, index)
        if first[provider_id] == index:
            assert registry.pin(provider_id, keys[index]) == keys[index]
        else:
            with pytest.raises(XdvError) as raised:
                registry.pin(provider_id, keys[index])
            assert raised.value.code is ErrorCode.PROVIDER_KEY_MISMATCH
    assert registry.fingerprints() == {
        provider_id: keys[index].fingerprint for provider_id, index in sorted(first.items())
    }
