"""The audit log end to end: signed runs, replay, proofs on the command line, trust."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import EXAMPLES, xdv
from xdv.core import AuditConfig
from xdv.errors import ErrorCode, XdvError
from xdv.replay import replay
from xdv.runner import run_workload
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
    assert xdv("audit", "verify-proof", str(tmp_path / "c.json")).returncode == 0
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
