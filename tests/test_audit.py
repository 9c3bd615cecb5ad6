"""The audit log end to end: signed runs, replay, proofs on the command line, trust."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import EXAMPLES, xdv
from xdv.core import AuditConfig
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import replay, run_workload
from xdv.security import HybridKeyPair, KeyStore, SignedHeadLog, audit_path_for, verify_audit
from xdv.trace import read_trace

KEYS = HybridKeyPair.from_seed(b"audit test")


@pytest.mark.spec("XDV-034-4.2")
def test_a_signed_run_verifies_replays_and_its_checkpoints_are_reproducible(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "a.xdvt", tmp_path / "b.xdvt"
    for path in (first, second):
        sink = SignedHeadLog(audit_path_for(path), KEYS)
        run_workload(
            str(EXAMPLES / "hybrid_offload.py"), seed=3, trace=path, audit=AuditConfig(16, sink)
        )
    # Checkpoints are part of the deterministic trace; signatures live beside it.
    assert first.read_bytes() == second.read_bytes()
    assert audit_path_for(first).read_bytes() != audit_path_for(second).read_bytes()
    report = verify_audit(first, trusted={KEYS.public.fingerprint})
    assert report.signed and report.trusted and report.checkpoints == report.heads - 1 >= 2
    checkpoints = [e for e in read_trace(first).entries if e.event_name == "CHECKPOINT"]
    assert [e.metadata["size"] for e in checkpoints] == [e.seq for e in checkpoints]
    assert replay(first).ok and replay(first, "inject").ok
    with pytest.raises(XdvError) as raised:
        verify_audit(first, trusted={HybridKeyPair.from_seed(b"x").public.fingerprint})
    assert raised.value.code is ErrorCode.SIGNATURE_INVALID
    audit_path_for(first).unlink()
    with pytest.raises(XdvError, match="no audit file"):
        verify_audit(first)


@pytest.mark.spec("XDV-034-4.1")
def test_inclusion_and_consistency_proofs_on_the_command_line(tmp_path: Path) -> None:
    trace = tmp_path / "t.xdvt"
    home = {"XDV_HOME": str(tmp_path / "home")}
    ran = xdv(
        "run",
        str(EXAMPLES / "hybrid_offload.py"),
        "--trace",
        str(trace),
        "--checkpoint-interval",
        "16",
        env=home,
    )
    assert ran.returncode == 0, ran.stderr
    fingerprint = KeyStore(tmp_path / "home" / "keys").public_key().fingerprint
    proof = tmp_path / "proof.json"
    assert xdv("audit", "prove", str(trace), "--entry", "7", "-o", str(proof)).returncode == 0
    checked = xdv("audit", "verify-proof", str(proof), "--trusted-key", fingerprint, "--json")
    assert checked.returncode == 0, checked.stdout
    result = json.loads(checked.stdout)
    assert result["entry"]["seq"] == 7 and result["size"] == len(read_trace(trace).entries)
    # A proof whose entry was altered does not verify.
    document = json.loads(proof.read_text())
    frame = bytearray.fromhex(document["frame"])
    frame[-1] ^= 1
    document["frame"] = frame.hex()
    proof.write_text(json.dumps(document))
    assert xdv("audit", "verify-proof", str(proof)).returncode == 1
    # Consistency between a checkpoint and the whole trace, anchored by the signed final head.
    consistency = xdv("audit", "prove", str(trace), "--consistency", "16")
    assert consistency.returncode == 0
    (tmp_path / "c.json").write_text(consistency.stdout)
    trusted = ("--trusted-key", fingerprint)
    assert xdv("audit", "verify-proof", str(tmp_path / "c.json"), *trusted).returncode == 0
    # Without a trusted key, a head the proof carries anchors nothing: anyone can make a key,
    # sign a head over a forged entry and embed both.
    assert xdv("audit", "verify-proof", str(tmp_path / "c.json")).returncode == 1
    forged = json.loads(consistency.stdout)
    other = HybridKeyPair.from_seed(b"someone else")
    forged["head"]["key"] = other.public.to_record()
    (tmp_path / "f.json").write_text(json.dumps(forged))
    refused = xdv("audit", "verify-proof", str(tmp_path / "f.json"), *trusted)
    assert refused.returncode == 1 and "not trusted" in refused.stdout
    forged["head"]["sig"] = "abc"  # not base64: a typed refusal, not a crash
    (tmp_path / "f.json").write_text(json.dumps(forged))
    refused = xdv("audit", "verify-proof", str(tmp_path / "f.json"), *trusted)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    # An unsigned size has no signed head: the root must be given explicitly.
    unanchored = xdv("audit", "prove", str(trace), "--entry", "3", "--size", "20")
    (tmp_path / "u.json").write_text(unanchored.stdout)
    refused = xdv("audit", "verify-proof", str(tmp_path / "u.json"))
    assert refused.returncode == 1 and "not anchored" in refused.stdout
    root = json.loads(unanchored.stdout)["root"]
    assert xdv("audit", "verify-proof", str(tmp_path / "u.json"), "--root", root).returncode == 0
    other = "00" * 32
    assert xdv("audit", "verify-proof", str(tmp_path / "u.json"), "--root", other).returncode == 1


def test_no_private_key_material_reaches_the_trace_or_the_audit_file(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    keys, _ = store.load_or_create()
    trace = tmp_path / "t.xdvt"
    run_workload(
        str(EXAMPLES / "hybrid_offload.py"),
        trace=trace,
        audit=AuditConfig(16, SignedHeadLog(audit_path_for(trace), keys)),
    )
    seed = keys.seed_bytes()
    for blob in (trace.read_bytes(), audit_path_for(trace).read_bytes()):
        assert seed not in blob and seed.hex().encode() not in blob


def test_pinning_a_signer_refuses_unsigned_and_open_traces(tmp_path: Path) -> None:
    from tests.test_tamper import bodies_of, rechain

    signed = tmp_path / "s.xdvt"
    run_workload(
        str(EXAMPLES / "hybrid_offload.py"),
        trace=signed,
        audit=AuditConfig(16, SignedHeadLog(audit_path_for(signed), KEYS)),
    )
    trusted = {KEYS.public.fingerprint}
    assert verify_audit(signed, trusted=trusted).trusted
    # An attacker strips the audit (RUN_START's record, checkpoints, the audit file) and
    # re-chains: an unsigned trace must not pass a verifier that pinned the signer.
    entries = read_trace(signed).entries
    bodies = []
    for entry in entries:
        if entry.event_name == "CHECKPOINT":
            continue
        if entry.event_name == "RUN_START":
            from xdv.trace._format import HEADER, canonical_metadata

            metadata = {k: v for k, v in entry.metadata.items() if k != "audit"}
            bodies.append(entry.body[: HEADER.size] + canonical_metadata(metadata))
        else:
            bodies.append(entry.body)
    stripped = tmp_path / "stripped.xdvt"
    stripped.write_bytes(rechain(bodies))
    assert bodies_of(stripped.read_bytes())
    verify_audit(stripped)  # acceptable to a verifier that asked for nothing
    with pytest.raises(XdvError):
        verify_audit(stripped, trusted=trusted)
    assert xdv("verify", str(stripped), "--trusted-key", KEYS.public.fingerprint).returncode == 1
    # An open trace (the run end cut off) cannot meet a signature requirement either.
    open_trace = tmp_path / "open.xdvt"
    data = signed.read_bytes()
    open_trace.write_bytes(data[: len(data) - len(entries[-1].body) - 8])
    (tmp_path / "open.xdvt.audit").write_bytes(audit_path_for(signed).read_bytes())
    assert verify_audit(open_trace, allow_open=True).checkpoints >= 1
    with pytest.raises(XdvError):
        verify_audit(open_trace, allow_open=True, require_signature=True)
    opened = xdv("verify", str(open_trace), "--allow-open", "--require-signature")
    assert opened.returncode == 1
    assert xdv("verify", str(open_trace), "--allow-open").returncode == 0
