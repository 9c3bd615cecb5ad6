from __future__ import annotations

import pytest

from xdv.errors import ErrorCode, UnauthorizedError
from xdv.security._kem import Encapsulation, KemKeyPair, derive_session, initiate, respond

RESPONDER = KemKeyPair.from_seed(b"node-b")


@pytest.mark.spec("XDV-031-5.2")
def test_both_sides_derive_the_same_keys_and_confirm_them() -> None:
    encapsulation, initiator = initiate(RESPONDER.public, context=b"node-a->node-b")
    responder = respond(RESPONDER, encapsulation, context=b"node-a->node-b")
    assert initiator == responder
    responder.confirm_peer(initiator.initiator_tag, "initiator")
    initiator.confirm_peer(responder.responder_tag, "responder")
    assert initiator.initiator_to_responder != initiator.responder_to_initiator
    _, other = initiate(RESPONDER.public, context=b"node-a->node-b")
    assert other.initiator_to_responder != initiator.initiator_to_responder  # fresh per session


@pytest.mark.spec("XDV-031-5.2")
def test_a_tampered_ciphertext_is_caught_only_by_key_confirmation() -> None:
    encapsulation, initiator = initiate(RESPONDER.public)
    for position in (0, 500, 1087):
        damaged = bytearray(encapsulation.ciphertext)
        damaged[position] ^= 0x01
        # ML-KEM does not complain: the responder silently derives other keys ...
        responder = respond(RESPONDER, Encapsulation(encapsulation.ephemeral, bytes(damaged)))
        assert responder.initiator_to_responder != initiator.initiator_to_responder
        # ... and the mandatory confirmation is what fails, on both sides.
        with pytest.raises(UnauthorizedError) as raised:
            responder.confirm_peer(initiator.initiator_tag, "initiator")
        assert raised.value.code is ErrorCode.KEY_CONFIRMATION_FAILED
        with pytest.raises(UnauthorizedError):
            initiator.confirm_peer(responder.responder_tag, "responder")
    wrong_context = respond(RESPONDER, encapsulation, context=b"other")
    with pytest.raises(UnauthorizedError):
        wrong_context.confirm_peer(initiator.initiator_tag, "initiator")
    other_ephemeral = bytearray(encapsulation.ephemeral)
    other_ephemeral[3] ^= 0x10
    swapped = respond(RESPONDER, Encapsulation(bytes(other_ephemeral), encapsulation.ciphertext))
    with pytest.raises(UnauthorizedError):
        swapped.confirm_peer(initiator.initiator_tag, "initiator")


@pytest.mark.spec("XDV-031-5.3")
def test_derivation_is_deterministic_given_the_recorded_inputs() -> None:
    encapsulation, _ = initiate(RESPONDER.public, ephemeral_seed=b"recorded")
    first = respond(KemKeyPair.from_seed(b"node-b"), encapsulation)
    second = respond(KemKeyPair.from_seed(b"node-b"), encapsulation)
    assert first == second
    assert derive_session(b"a" * 32, b"b" * 32, b"t" * 32) == derive_session(
        b"a" * 32, b"b" * 32, b"t" * 32
    )
    assert derive_session(b"a" * 32, b"c" * 32, b"t" * 32) != derive_session(
        b"a" * 32, b"b" * 32, b"t" * 32
    )
    assert "private" in repr(RESPONDER)
    with pytest.raises(UnauthorizedError):
        Encapsulation(b"short", b"")


def test_malformed_inputs_are_typed_refusals() -> None:
    from xdv.security._kem import KemPublicKey

    with pytest.raises(UnauthorizedError):
        KemKeyPair(b"")
    low_order = KemPublicKey(bytes(32), RESPONDER.public.mlkem768)
    with pytest.raises(UnauthorizedError):
        initiate(low_order)
    _, keys = initiate(RESPONDER.public)
    with pytest.raises(UnauthorizedError):
        keys.confirm_peer(keys.initiator_tag, "nobody")  # type: ignore[arg-type]
