"""The conformance helper every Q provider's tests call: :func:`assert_provider_consistent`.

It checks what the Q manager relies on: the provider model every Q and Φ provider shares (the
checks of :func:`xdv.security.testing.assert_provider_consistent`), a declaration that names its
methods and limits, calibration
contracts signed with the provider's identity key that verify against it (and stop verifying
when altered or signed by another key), and
jobs whose results are counts only (bitstrings of the circuit's classical width, summing to the
shots), reproducible from the seed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from xdv.domains.q._calibration import CalibrationProfile, load_profile
from xdv.domains.q._circuit import parse_circuit
from xdv.domains.q._provider import QJob, QProvider
from xdv.domains.q._signing import CALIBRATION_CONTEXT, verify_calibration
from xdv.errors import ErrorCode, XdvError
from xdv.security import HybridKeyPair, ProviderIdentity
from xdv.security.testing import assert_provider_consistent as assert_provider_model_consistent
from xdv.trace import canonicalize

__all__ = ["BELL", "assert_provider_consistent"]

BELL = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""


def _fail(provider: Any, message: str) -> AssertionError:
    return AssertionError(f"{type(provider).__name__}: {message}")


def _job(seed: int, shots: int, method: str) -> QJob:
    return QJob(
        job_id=1,
        pid=1,
        contract_id=1,
        calibration_id=1,
        qubits=2,
        circuit=parse_circuit(BELL),
        shots=shots,
        method=method,
        seed=seed,
        noise=False,
        mapping=(0, 1),
        logical_time=0,
    )


def assert_provider_consistent(
    provider: QProvider, profile: CalibrationProfile | None = None
) -> None:
    """Check ``provider`` against the QHPI contract."""
    if not isinstance(provider, QProvider):
        raise _fail(provider, "does not satisfy the QProvider protocol")
    declaration = assert_provider_model_consistent(provider).declaration
    if list(provider.methods) != declaration.get("methods"):
        raise _fail(provider, "the declaration must list the provider's methods")
    for method in provider.methods:
        if provider.qubits_max(method) < 2:
            raise _fail(provider, f"method {method} must run at least two qubits")
    profile = profile or load_profile("fake_manila")
    contract = provider.calibrate(7, profile, 10, 100)
    if (contract.valid_from, contract.valid_until, contract.profile) != (10, 110, profile.name):
        raise _fail(provider, "calibrate() must cover [now, now + validity] for the profile")
    # Signed with the provider's identity key, which verifies it; altered, or signed by any
    # other key (such as one derived from facts a trace holds), it no longer verifies.
    verify_calibration(contract, provider.identity.public, "probe")
    altered = dataclasses.replace(contract, valid_until=contract.valid_until + 1)
    outsider = ProviderIdentity(provider.provider_id, HybridKeyPair.from_seed(b"not the provider"))
    forged = dataclasses.replace(
        contract, signature=outsider.sign(contract.message(), context=CALIBRATION_CONTEXT)
    )
    for bad, what in ((altered, "an altered"), (forged, "a foreign-signed")):
        try:
            verify_calibration(bad, provider.identity.public, "probe")
        except XdvError as error:
            if error.code is not ErrorCode.SIGNATURE_INVALID:
                raise _fail(provider, f"{what} contract gave {error.code.name}") from None
        else:
            raise _fail(provider, f"{what} calibration contract still verified")
    method = provider.methods[0]
    first = provider.run(_job(11, 200, method), profile)
    again = provider.run(_job(11, 200, method), profile)
    if first != again:
        raise _fail(provider, "the same seed gave different counts")
    canonicalize(first, "counts")
    if sum(first.values()) != 200 or set(first) - {"00", "11"}:
        raise _fail(provider, f"a Bell pair must read 00 or 11 in 200 shots, got {first}")
    if any(type(value) is not int for value in first.values()):
        raise _fail(provider, "counts must be plain integers")
