"""Witness trust: a valid signature is not enough; who signed it is what a verifier pins."""

from __future__ import annotations

import json
from typing import Any

import pytest

from xdv.domains.phi import DigestSigner, HybridSigner, sign_witness, verify_witness
from xdv.errors import ErrorCode, XdvError
from xdv.security import HybridKeyPair
from xdv.trace import jsonable

NODE = HybridKeyPair.from_seed(b"node key")
STRANGER = HybridKeyPair.from_seed(b"someone else")

# A two-spin antiferromagnet: the anti-aligned configurations have energy -1.
PAYLOAD: dict[str, Any] = {
    "format": "xdv-phi-witness/1",
    "kind": "ising",
    "problem": {"kind": "ising", "n": 2, "h": [0.0, 0.0], "J": [[0, 1, 1.0]], "offset": 0.0},
    "status": "SAMPLE",
    "configuration": [1, -1],
    "verification": {"energy": -1.0},
    "attestation": {"provider": "phase-oscillator", "measurement": "00" * 32},
    "L": 3,
    "envelope": 1,
    "contract": 1,
    "invocation": 1,
}


def document(payload: dict[str, Any], signer: Any) -> dict[str, Any]:
    from xdv.domains.phi._problems import canonical_hash

    payload = {**payload, "problem_hash": canonical_hash(payload["problem"])}
    return json.loads(json.dumps(jsonable(sign_witness(payload, signer))))


def test_a_signed_witness_names_its_signer_and_passes_when_the_signer_is_trusted() -> None:
    signed = document(PAYLOAD, HybridSigner(NODE))
    open_report = verify_witness(signed)
    assert open_report["signer"] == NODE.public.fingerprint and open_report["trusted"] is None
    report = verify_witness(signed, trusted={NODE.public.fingerprint})
    assert report["trusted"] is True and report["verified"]
    assert verify_witness(signed, require_signature=True)["signer"] == NODE.public.fingerprint


def test_a_witness_re_signed_with_another_key_fails_against_the_pinned_key() -> None:
    resigned = document(PAYLOAD, HybridSigner(STRANGER))
    assert verify_witness(resigned)["signer"] == STRANGER.public.fingerprint  # valid, but whose?
    with pytest.raises(XdvError) as raised:
        verify_witness(resigned, trusted={NODE.public.fingerprint})
    assert raised.value.code is ErrorCode.SIGNATURE_INVALID
    assert "not trusted" in raised.value.message


def test_an_unsigned_witness_fails_a_signature_requirement() -> None:
    evil = {**PAYLOAD, "attestation": {"provider": "evil", "measurement": "ff" * 32}}
    unsigned = document(evil, DigestSigner())
    report = verify_witness(unsigned)  # integrity only: it checks out, and proves no origin
    assert report["signer"] is None and "unsigned" in report["signature"]
    for options in ({"require_signature": True}, {"trusted": {NODE.public.fingerprint}}):
        with pytest.raises(XdvError) as raised:
            verify_witness(unsigned, **options)
        assert raised.value.code is ErrorCode.SIGNATURE_INVALID


def test_trust_is_checked_after_the_signature_itself() -> None:
    signed = document(PAYLOAD, HybridSigner(NODE))
    signed["signature"]["value"] = signed["signature"]["value"][:-2] + "00"
    with pytest.raises(XdvError) as raised:
        verify_witness(signed, trusted={NODE.public.fingerprint})
    assert raised.value.code is ErrorCode.PHI_ERR_WITNESS_INVALID
