"""Witnesses: self-describing, signed records of a verified Φ configuration.

A witness document has two parts:

* ``payload`` — the signed, canonical content: format, problem kind, the full canonical problem
  and its SHA-256 hash, the status, the configuration, the kernel's classical verification
  result, the provider attestation reference (provider id and measurement) and the logical
  timestamp, envelope, contract and invocation;
* ``signature`` — a separate block over ``b"xdv-phi-witness/1\\0" + CBOR(payload)``.

The payload is deterministic, so its digest can enter a trace; the signature block may be
randomized (hedged post-quantum signatures), so it never does. Anyone can re-verify a witness
offline with :func:`verify_witness`: the problem hash is recomputed, the configuration is checked
against the constraints (or its energy, and cut for MaxCut problems, recomputed), an INADMISSIBLE
claim is re-decided with the exact provider, and the signature block is checked.

An OPTIMAL claim is accepted only when it can be established: on a small Ising problem
(``witness_enumeration_spins_max`` spins or fewer) it is re-decided by enumerating every
configuration; on a larger one it rests on a certificate, the exact provider's proven bound in
a witness signed by a key the verifier trusts. Anything else is refused as unverifiable
(PHI_ERR_WITNESS_UNVERIFIABLE): a witness can be signed by anyone's key, and the energy of the
worst configuration checks out as well as that of the best. The report's ``checked`` list says
what was established.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping
from typing import Any, Protocol

import cbor2
import numpy as np

from xdv.domains.phi._exact import ExactAdmissibilityProvider
from xdv.domains.phi._problems import ConstraintProblem, IsingProblem, canonical_hash, ising_cut
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import limit
from xdv.security import HybridKeyPair, HybridPublicKey
from xdv.trace import canonicalize

__all__ = [
    "WITNESS_FORMAT",
    "DigestSigner",
    "HybridSigner",
    "WitnessError",
    "WitnessSigner",
    "payload_digest",
    "sign_witness",
    "verify_witness",
]

WITNESS_FORMAT = "xdv-phi-witness/1"
_CONTEXT = b"xdv-witness"


class WitnessError(XdvError):
    """A witness does not verify (code PHI_ERR_WITNESS_INVALID)."""

    default_code = ErrorCode.PHI_ERR_WITNESS_INVALID


class WitnessSigner(Protocol):
    """Signs witness payloads. ``record()`` describes the scheme and public key."""

    def sign(self, message: bytes) -> bytes: ...

    def record(self) -> dict[str, Any]: ...


class DigestSigner:
    """Integrity-only block (scheme ``sha256``): a digest, no key. The default until a key is
    configured; it detects damage but proves no origin."""

    def sign(self, message: bytes) -> bytes:
        return hashlib.sha256(message).digest()

    def record(self) -> dict[str, Any]:
        return {"scheme": "sha256"}


class HybridSigner:
    """Hybrid Ed25519 + ML-DSA-65 signatures with an ``xdv.security.HybridKeyPair``."""

    def __init__(self, keys: HybridKeyPair) -> None:
        self.keys = keys

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self.keys.sign(message, context=_CONTEXT)
        return signature

    def record(self) -> dict[str, Any]:
        return {"scheme": "hybrid", "public": self.keys.public.to_record()}


def _message(payload: Mapping[str, Any]) -> bytes:
    try:
        return WITNESS_FORMAT.encode() + b"\0" + cbor2.dumps(canonicalize(dict(payload), "witness"))
    except UnicodeEncodeError as error:  # a lone surrogate: text UTF-8 cannot carry
        raise WitnessError(
            f"the payload holds text that is not valid Unicode ({error.reason})",
            where="witness.payload",
        ) from None


def payload_digest(payload: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the signed message of ``payload`` (what traces record)."""
    return hashlib.sha256(_message(payload)).hexdigest()


def sign_witness(payload: Mapping[str, Any], signer: WitnessSigner) -> dict[str, Any]:
    """The witness document: ``{"payload": ..., "signature": {...}}``."""
    message = _message(payload)
    block = signer.record()
    block["value"] = signer.sign(message).hex()
    return {"payload": canonicalize(dict(payload), "witness"), "signature": block}


def verify_witness(
    document: Any,
    *,
    recheck: bool = True,
    trusted: Collection[str] | None = None,
    require_signature: bool = False,
) -> dict[str, Any]:
    """Re-verify a witness document offline; return a report or raise :class:`WitnessError`.

    With ``recheck`` an INADMISSIBLE claim is re-decided, and an ADMISSIBLE one is checked to be
    the admissible (lexicographically least) configuration, by the exact provider.

    A valid signature shows that the holder of the key in the signature block signed the
    witness, which anyone with a key of their own can do. ``trusted`` (key fingerprints) says
    whose key it must be, and implies ``require_signature``; ``require_signature`` refuses a
    witness that carries an integrity digest only. Both refusals have code
    SIGNATURE_INVALID. The report names the ``signer`` (a fingerprint, or None) and whether it
    is ``trusted`` (None when no keys were given).
    """
    try:
        return _verify(document, recheck, trusted, require_signature)
    except XdvError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError, IndexError) as error:
        # A malformed part the checks above did not anticipate is a bad witness, never a crash.
        raise WitnessError(
            f"the witness is malformed: {type(error).__name__}: {error}", where="witness"
        ) from None


def _verify(
    document: Any, recheck: bool, trusted: Collection[str] | None, require_signature: bool
) -> dict[str, Any]:
    if trusted is not None:
        require_signature = True
    if not isinstance(document, Mapping) or set(document) != {"payload", "signature"}:
        raise WitnessError("a witness has exactly 'payload' and 'signature'", where="witness")
    payload, block = document["payload"], document["signature"]
    if not isinstance(payload, Mapping) or payload.get("format") != WITNESS_FORMAT:
        raise WitnessError(f"not a {WITNESS_FORMAT} payload", where="witness.payload")
    message = _message(payload)
    signature, signer = _check_signature(block, message)
    if signer is None and require_signature:
        raise WitnessError(
            "the witness carries an integrity digest only, and a signature is required",
            code=ErrorCode.SIGNATURE_INVALID,
            where="witness.signature",
        )
    if trusted is not None and signer not in trusted:
        raise WitnessError(
            f"the witness is signed by key {str(signer)[:16]}…, which is not trusted",
            code=ErrorCode.SIGNATURE_INVALID,
            where="witness.signature",
        )
    kind = payload.get("kind")
    problem_record = payload.get("problem")
    if canonical_hash(problem_record) != payload.get("problem_hash"):
        raise WitnessError("the problem does not match its hash", where="witness.payload.problem")
    status = payload.get("status")
    report: dict[str, Any] = {
        "digest": hashlib.sha256(message).hexdigest(),
        "kind": kind,
        "status": status,
        "problem_hash": payload.get("problem_hash"),
        "signature": signature,
        "signer": signer,
        "trusted": None if trusted is None else signer in trusted,
        "checked": ["signature" if signer is not None else "integrity digest", "problem hash"],
    }
    if kind == "constraints":
        problem = ConstraintProblem.parse(problem_record)
        if status == "ADMISSIBLE":
            try:
                violated = problem.check(payload.get("configuration") or {})
            except XdvError as error:
                raise WitnessError(f"bad configuration: {error.message}", where="witness") from None
            if violated:
                raise WitnessError(
                    f"the configuration violates constraint(s) {violated}", where="witness"
                )
            report["checked"].append("constraints")
        elif status != "INADMISSIBLE":
            raise WitnessError(f"unknown status {status!r}", where="witness.payload.status")
        if recheck:
            again = ExactAdmissibilityProvider().solve(problem)
            if again.status != status or (
                status == "ADMISSIBLE" and again.assignment != payload.get("configuration")
            ):
                raise WitnessError(
                    f"re-deciding the problem gives {again.status}"
                    + (" with another configuration" if again.status == status else ""),
                    where="witness",
                )
            report["rechecked"] = True
            report["checked"].append(f"{status} re-decided by the exact provider")
    elif kind == "ising":
        problem_ising = IsingProblem.parse(problem_record)
        spins = payload.get("configuration")
        if (
            not isinstance(spins, list)
            or len(spins) != problem_ising.n
            or any(s not in (-1, 1) for s in spins)
        ):
            raise WitnessError("the configuration is not a spin vector", where="witness")
        energy = float(problem_ising.energy(np.array(spins)))
        verification = payload.get("verification")
        if not isinstance(verification, Mapping):
            raise WitnessError("the witness has no verification record", where="witness")
        claimed = verification.get("energy")
        if not isinstance(claimed, float | int) or not math.isclose(
            energy, claimed, rel_tol=1e-9, abs_tol=1e-6
        ):
            raise WitnessError(
                f"the configuration's energy is {energy}, the witness claims {claimed}",
                where="witness",
            )
        report["energy"] = energy
        report["checked"].append("energy")
        certifier = (
            signer
            if trusted is not None
            and signer in trusted
            and isinstance(payload.get("attestation"), Mapping)
            and payload["attestation"].get("provider") == _EXACT_PROVIDER
            else None
        )
        _check_optimum(payload, problem_ising, np.array(spins), energy, recheck, report, certifier)
    else:
        raise WitnessError(f"unknown problem kind {kind!r}", where="witness.payload.kind")
    report["verified"] = True
    return report


_EXACT_PROVIDER = ExactAdmissibilityProvider.provider_id


def _check_optimum(
    payload: Mapping[str, Any],
    problem: IsingProblem,
    spins: Any,
    energy: float,
    recheck: bool,
    report: dict[str, Any],
    certifier: str | None,
) -> None:
    """Check an ising witness's status, cut and bound claims (exact optimization results).

    ``certifier`` is the trusted key that signed a witness of the exact provider (None
    otherwise): its signed bound is the certificate of optimality on problems too large to
    enumerate.
    """
    status = payload.get("status")
    if status not in ("SAMPLE", "OPTIMAL", "FEASIBLE"):
        raise WitnessError(f"unknown status {status!r}", where="witness.payload.status")
    verification = payload.get("verification") or {}
    if "cut" in verification:
        cut = ising_cut(problem, spins)
        claimed_cut = verification["cut"]
        if (
            cut is None
            or not isinstance(claimed_cut, float | int)
            or not math.isclose(cut, claimed_cut, rel_tol=1e-9, abs_tol=1e-6)
        ):
            raise WitnessError(
                f"the configuration's cut is {cut}, the witness claims {claimed_cut}",
                where="witness",
            )
        report["cut"] = cut
        report["checked"].append("cut")
    if status == "SAMPLE":
        return
    bound = verification.get("bound")
    optimal = status == "OPTIMAL"
    if (
        not isinstance(bound, float | int)
        or bound > energy + 1e-6
        or verification.get("optimal") is not optimal
        or (optimal and not math.isclose(bound, energy, rel_tol=1e-9, abs_tol=1e-6))
    ):
        raise WitnessError(
            f"the bound {bound!r} does not fit a {status} claim at energy {energy}",
            where="witness.payload.verification",
        )
    if not optimal:
        return  # a FEASIBLE claim's bound is the solver's, reported but not established
    if recheck and problem.n <= limit("witness_enumeration_spins_max"):
        # Small problems: re-decide the optimality claim by enumerating every configuration.
        codes = np.arange(2**problem.n, dtype=np.int64)[:, None] >> np.arange(problem.n)
        least = float(problem.energy(2 * (codes & 1) - 1).min())
        if least < energy - 1e-6:
            raise WitnessError(
                f"the claimed optimum {energy} is not minimal (enumeration finds {least})",
                where="witness",
            )
        report["rechecked"] = True
        report["checked"].append("optimality, by enumeration")
    elif certifier is not None:
        report["checked"].append(
            f"optimality, by the exact provider's bound signed by trusted key {certifier}"
        )
    else:
        how = (
            "re-checking is off"
            if recheck is False and problem.n <= limit("witness_enumeration_spins_max")
            else f"{problem.n} spins are more than the witness_enumeration_spins_max = "
            f"{limit('witness_enumeration_spins_max')} that are re-decided by enumeration"
        )
        raise WitnessError(
            f"the OPTIMAL claim cannot be established: {how}, and the witness is not the exact "
            "provider's signed by a trusted key (pass --trusted-key with the fingerprint of "
            "the node that ran it)",
            code=ErrorCode.PHI_ERR_WITNESS_UNVERIFIABLE,
            where="witness.payload.status",
        )


def _check_signature(block: Any, message: bytes) -> tuple[str, str | None]:
    """What the signature block is (a description) and the signer's fingerprint (None for an
    integrity digest), once the block checks out against ``message``."""
    if not isinstance(block, Mapping) or not isinstance(block.get("value"), str):
        raise WitnessError("the signature block is malformed", where="witness.signature")
    try:
        value = bytes.fromhex(block["value"])
    except ValueError:
        raise WitnessError("the signature is not hex", where="witness.signature") from None
    scheme = block.get("scheme")
    if scheme == "sha256":
        if value != hashlib.sha256(message).digest():
            raise WitnessError("the payload does not match its digest", where="witness.signature")
        return "sha256 digest (integrity only, unsigned)", None
    if scheme == "hybrid":
        try:
            public = HybridPublicKey.from_record(block.get("public"))
        except XdvError as error:
            raise WitnessError(error.message, where="witness.signature") from None
        try:
            public.verify(message, value, context=_CONTEXT)
        except XdvError:
            raise WitnessError("the hybrid signature does not verify", where="witness") from None
        return f"hybrid signature by {public.fingerprint}", public.fingerprint
    raise WitnessError(f"unknown signature scheme {scheme!r}", where="witness.signature")
