"""Regression tests for the hardening of traces, audit files, proofs and witnesses: each hole
and each class of crash found by fuzzing gets its minimal input here (docs/fuzzing.md)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from fuzzlib import ROOT, Case, rechain, run_in_process

from xdv.errors import ErrorCode, TraceError, XdvError
from xdv.inputs import LIMITS, FileBytes, limit
from xdv.trace import (
    HEADER,
    TraceWriter,
    canonical_metadata,
    canonicalize,
    read_trace,
    split_frames,
    verify_consistency,
    verify_trace,
)
from xdv.trace._format import profile_violation

EXAMPLES = ROOT / "examples"
SHARED_REFERENCE = b"\xa1\x61\x61\xd8\x1c\x81\xd8\x1d\x00"  # {"a": l} where l = [l]


@pytest.fixture(scope="module")
def real_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, signed trace of an example program (``xdv run``), with its audit file."""
    from xdv.cli import main

    directory = tmp_path_factory.mktemp("real")
    (directory / "primes.ds").write_bytes((EXAMPLES / "primes.ds").read_bytes())
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        with pytest.raises(SystemExit) as stop:
            main(["run", "primes.ds", "--trace", "run.xdvt", "--checkpoint-interval", "16"])
        assert stop.value.code == 0
    finally:
        os.chdir(cwd)
    return directory / "run.xdvt"


def _cli(tmp_path: Path, argv: list[str], files: dict[str, bytes] | None = None, **kw: Any) -> Any:
    result = run_in_process(Case("trace", "regression", argv, files or {}, **kw), tmp_path)
    assert result.problem is None, (result.problem, result.stderr)
    return result


# -- the trace's CBOR profile ----------------------------------------------------------------


def test_a_nine_byte_self_containing_value_is_refused_by_every_trace_reader(
    real_trace: Path, tmp_path: Path
) -> None:
    bodies = [frame[4:] for frame in split_frames(real_trace)]
    bodies[1] = bodies[1][: HEADER.size] + SHARED_REFERENCE
    damaged = rechain(bodies)
    report = verify_trace(damaged)
    assert not report.ok and report.error is not None and report.entries == 1
    assert "tag" in report.error.message
    files = {"t.xdvt": damaged, "primes.ds": (EXAMPLES / "primes.ds").read_bytes()}
    for argv in (
        ["verify", "t.xdvt"],
        ["trace", "show", "t.xdvt"],
        ["trace", "diff", "t.xdvt", "t.xdvt"],
        ["replay", "t.xdvt"],
        ["audit", "prove", "t.xdvt", "--entry", "0"],
    ):
        result = _cli(tmp_path, argv, files)
        assert result.exit_code == 1, (argv, result.stdout, result.stderr)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (SHARED_REFERENCE, "tag"),
        (b"\xa1\x61\x61\xc2\x41\x01", "tag"),  # a bignum
        (b"\xa1\x61\x61\x9f\x00\xff", "indefinite"),
        (b"\xa1\x61\x61\xf9\x00\x00", "outside"),  # a half float
        (b"\xa1\x61\x61\xf7", "outside"),  # undefined
        (b"\xa1\x61\x61\x1c", "outside"),  # reserved
        (b"\xa1\x61\x61" + b"\x81" * 64 + b"\x00", "nesting"),
        (b"\xa1\x61\x61" + b"\x81" * 100_000 + b"\x00", "nesting"),
        (b"\xa1\x61\x61\x9b" + b"\xff" * 8, "truncated"),
        (b"\xa1\x61\x61\x7b" + b"\xff" * 8, "past the end"),
    ],
)
def test_the_profile_check_refuses_every_form_outside_the_format(raw: bytes, reason: str) -> None:
    violation = profile_violation(raw)
    assert violation is not None and reason in violation


def test_the_profile_check_passes_what_the_writer_writes() -> None:
    nested: Any = 0
    for _ in range(63):
        nested = [nested]
    for value in (
        {"a": nested},
        {"x": 1.5, "t": "Φ", "b": b"\xd8\x1c", "n": None, "l": [True, False, -(2**64)]},
    ):
        assert profile_violation(canonical_metadata(value)) is None


def test_canonical_encoding_refuses_a_value_that_contains_itself_and_lone_surrogates() -> None:
    loop: list[Any] = []
    loop.append(loop)
    for value in ({"a": loop}, {"a": "\ud800"}, {"\udfff": 1, "b": [2]}):
        with pytest.raises(TraceError) as refused:
            canonical_metadata(value)
        assert refused.value.code is ErrorCode.TRACE_UNENCODABLE
    with pytest.raises(TraceError):
        canonicalize({"a": loop})


# -- reading only regular files, with a bound ----------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "dir", "devzero"])
def test_a_trace_that_is_not_a_regular_file_is_refused_at_once(kind: str, tmp_path: Path) -> None:
    for argv in (["verify", "t"], ["trace", "show", "t"], ["replay", "t"]):
        started = time.perf_counter()
        result = _cli(tmp_path, argv, special={"t": kind})
        said = result.stderr + result.stdout
        if kind == "dir" and argv[0] == "verify":  # a directory is read as a cluster trace
            assert result.exit_code == 1 and "CLUSTER_TRACE_INVALID" in said
            assert "manifest.json" in said
        elif kind == "dir":  # the command line refuses a directory itself (a usage error)
            assert result.exit_code == 64 and "is a directory" in said
        else:
            assert result.exit_code == 1 and "INPUT_NOT_REGULAR" in said
        assert time.perf_counter() - started < 5


def test_a_huge_trace_is_refused_by_its_size_and_a_sparse_one_is_never_read_whole(
    tmp_path: Path,
) -> None:
    over = _cli(tmp_path, ["verify", "t"], special={"t": f"huge{limit('trace_bytes_max') + 1}"})
    assert over.exit_code == 1 and "trace_bytes_max" in over.stderr + over.stdout
    started = time.perf_counter()
    sparse = _cli(tmp_path, ["verify", "t"], special={"t": f"huge{8 << 30}"})  # 8 GiB of zeros
    assert sparse.exit_code == 1 and "bad magic" in sparse.stdout
    assert time.perf_counter() - started < 5


def test_a_large_trace_read_in_windows_verifies_and_replays_like_one_read_whole(
    real_trace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xdv import inputs
    from xdv.runtime import replay

    whole = verify_trace(real_trace)
    monkeypatch.setattr(inputs, "_WHOLE_BYTES_MAX", 64)
    monkeypatch.setattr(inputs, "_WINDOW_BYTES", 100)
    from xdv.trace import load_trace_bytes

    view, _ = load_trace_bytes(real_trace)
    assert isinstance(view, FileBytes) and view[0:8] == b"XDVTRACE"
    assert verify_trace(real_trace).to_json() == whole.to_json()
    assert read_trace(real_trace).head_hash.hex() == whole.head_hash
    cwd = os.getcwd()
    os.chdir(real_trace.parent)
    try:
        assert replay(real_trace).ok
    finally:
        os.chdir(cwd)


def test_proofs_witnesses_and_audit_files_that_are_special_or_huge_are_refused(
    real_trace: Path, tmp_path: Path
) -> None:
    good = {"good.xdvt": real_trace.read_bytes()}
    for argv in (
        ["audit", "verify-proof", "x", "--root", "00" * 32],
        ["witness", "verify", "x"],
        ["verify", "good.xdvt", "--audit", "x"],
    ):
        for kind in ("fifo", "devzero", f"huge{200 << 20}"):
            result = _cli(tmp_path, argv, good, special={"x": kind})
            assert result.exit_code in (1, 64), (argv, kind, result.stderr)
            assert "INPUT_NOT_REGULAR" in result.stdout + result.stderr or "_max" in (
                result.stdout + result.stderr
            )


def test_deeply_nested_proofs_witnesses_and_audit_lines_are_typed_refusals(
    real_trace: Path, tmp_path: Path
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    audit = real_trace.with_name("run.xdvt.audit").read_bytes()
    for argv, files in (
        (["audit", "verify-proof", "p", "--root", "00" * 32], {"p": deep}),
        (["witness", "verify", "p"], {"p": deep}),
        (["witness", "verify", "p"], {"p": b'{"payload": {"format": "\\ud800"}, "signature": 1}'}),
        (
            ["verify", "good.xdvt", "--audit", "a"],
            {"good.xdvt": real_trace.read_bytes(), "a": audit + deep[:70_000] + b"\n"},
        ),
    ):
        result = _cli(tmp_path, argv, files)
        assert result.exit_code == 1, (argv, result.stdout, result.stderr)


# -- proofs ------------------------------------------------------------------------------------


def test_an_equal_size_consistency_proof_with_empty_roots_proves_nothing(tmp_path: Path) -> None:
    from xdv.cli._audit import check_proof

    empty = {"xdv-proof": 1, "kind": "consistency", "first": 5, "size": 5, "path": []}
    forged = {**empty, "first_root": "", "root": ""}
    with pytest.raises(XdvError) as refused:
        check_proof(forged, root=b"")
    assert refused.value.code is ErrorCode.AUDIT_PROOF_INVALID
    # (The Merkle primitive itself follows RFC 9162's vectors, where equal sizes need only
    # equal roots; it is the proof document that must carry real 32-byte hashes.)
    verify_consistency(5, 5, b"", b"", [])
    result = _cli(
        tmp_path,
        ["audit", "verify-proof", "p.json", "--root", ""],
        {"p.json": json.dumps(forged).encode()},
    )
    assert result.exit_code == 64  # an empty root is no root


def test_audit_prove_that_cannot_write_its_output_is_a_typed_error(
    real_trace: Path, tmp_path: Path
) -> None:
    files = {"t.xdvt": real_trace.read_bytes()}
    result = _cli(tmp_path, ["audit", "prove", "t.xdvt", "--entry", "1", "-o", "out/p.json"], files)
    assert result.exit_code == 1 and "OUTPUT_FAILED" in result.stdout
    # An audit file that is a directory is a typed refusal too.
    result = _cli(
        tmp_path,
        ["audit", "prove", "t.xdvt", "--entry", "1"],
        files,
        special={"t.xdvt.audit": "dir"},
    )
    assert result.exit_code == 1 and "INPUT_NOT_REGULAR" in result.stdout


# -- witnesses ---------------------------------------------------------------------------------


def _ising_witness(n: int, spins: list[int], signer: Any, provider: str) -> dict[str, Any]:
    from xdv.domains.phi import IsingProblem, sign_witness
    from xdv.domains.phi._problems import canonical_hash
    from xdv.trace import jsonable

    problem = {
        "kind": "ising",
        "n": n,
        "h": [0.0] * n,
        "J": [[i, i + 1, 1.0] for i in range(n - 1)],
    }
    energy = float(IsingProblem.parse(problem).energy(__import__("numpy").array(spins)))
    payload = {
        "format": "xdv-phi-witness/1",
        "kind": "ising",
        "problem": problem,
        "problem_hash": canonical_hash(problem),
        "status": "OPTIMAL",
        "configuration": spins,
        "verification": {"energy": energy, "bound": energy, "optimal": True},
        "attestation": {"provider": provider, "measurement": "00" * 32},
        "L": 1,
        "envelope": 1,
        "contract": 1,
        "invocation": 1,
    }
    document: dict[str, Any] = json.loads(json.dumps(jsonable(sign_witness(payload, signer))))
    return document


def test_a_forged_optimal_witness_on_many_spins_is_refused_as_unverifiable() -> None:
    from xdv.domains.phi import DigestSigner, HybridSigner, verify_witness
    from xdv.security import HybridKeyPair

    node, stranger = HybridKeyPair.from_seed(b"node"), HybridKeyPair.from_seed(b"stranger")
    n = limit("witness_enumeration_spins_max") + 1
    worst = [1] * n  # every coupling satisfied the wrong way: the highest energy there is
    for signer, trusted in (
        (DigestSigner(), None),
        (HybridSigner(stranger), None),
        (HybridSigner(stranger), {node.public.fingerprint}),
    ):
        with pytest.raises(XdvError) as refused:
            verify_witness(_ising_witness(n, worst, signer, "exact-cpsat"), trusted=trusted)
        expected = (
            ErrorCode.PHI_ERR_WITNESS_UNVERIFIABLE
            if trusted is None
            else ErrorCode.SIGNATURE_INVALID
        )
        assert refused.value.code is expected
    # The node's key, trusted, over the exact provider's bound: a certificate, and it says so.
    best = [(-1) ** i for i in range(n)]
    report = verify_witness(
        _ising_witness(n, best, HybridSigner(node), "exact-cpsat"),
        trusted={node.public.fingerprint},
    )
    assert any("trusted key" in item for item in report["checked"])
    # The same claim from another provider is no certificate, even signed by a trusted key.
    with pytest.raises(XdvError) as refused:
        verify_witness(
            _ising_witness(n, best, HybridSigner(node), "phase-oscillator"),
            trusted={node.public.fingerprint},
        )
    assert refused.value.code is ErrorCode.PHI_ERR_WITNESS_UNVERIFIABLE
    # Small problems are re-decided by enumeration, whoever signed; without it, unverifiable.
    small = _ising_witness(4, [1, -1, 1, -1], DigestSigner(), "exact-cpsat")
    assert "optimality, by enumeration" in verify_witness(small)["checked"]
    with pytest.raises(XdvError) as refused:
        verify_witness(small, recheck=False)
    assert refused.value.code is ErrorCode.PHI_ERR_WITNESS_UNVERIFIABLE


def test_a_witness_whose_verification_record_is_not_a_map_is_a_typed_refusal() -> None:
    from xdv.domains.phi import DigestSigner, sign_witness, verify_witness

    document = _ising_witness(3, [1, -1, 1], DigestSigner(), "exact-cpsat")
    for bad in ([], "x", 3):
        payload = {**document["payload"], "verification": bad}
        with pytest.raises(XdvError) as refused:
            verify_witness(
                json.loads(json.dumps(sign_witness(payload, DigestSigner()), default=str))
            )
        assert refused.value.code is ErrorCode.PHI_ERR_WITNESS_INVALID


# -- the trace file of a run -----------------------------------------------------------------


def test_a_second_run_on_a_trace_being_written_is_refused_before_it_starts(
    real_trace: Path, tmp_path: Path
) -> None:
    path = tmp_path / "busy.xdvt"
    holder = TraceWriter(path)  # a run in progress holds the file
    holder.append(0, 1, 0, 0, 0, 0, 0, 0, 0, {"seed": 0})
    holder.sync()
    before = path.read_bytes()
    (tmp_path / "primes.ds").write_bytes((EXAMPLES / "primes.ds").read_bytes())
    with pytest.raises(TraceError) as refused:
        TraceWriter(path)
    assert refused.value.code is ErrorCode.TRACE_IN_USE
    from xdv.cli import main

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(SystemExit) as stop:
            main(["run", "primes.ds", "--trace", "busy.xdvt"])
        assert stop.value.code == 70
        assert path.read_bytes() == before  # untouched
        assert not (tmp_path / "busy.xdvt.audit").exists()  # and no audit file begun
        holder.close()
        with pytest.raises(SystemExit) as stop:  # once that run is over, the path is free
            main(["run", "primes.ds", "--trace", "busy.xdvt"])
        assert stop.value.code == 0 and verify_trace(path).ok
    finally:
        os.chdir(cwd)


def test_a_trace_path_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(TraceError) as refused:
        TraceWriter(tmp_path / "pipe")
    assert refused.value.code in (ErrorCode.TRACE_IO, ErrorCode.INPUT_NOT_REGULAR)


def test_every_limit_of_this_area_is_named_and_positive() -> None:
    for name in (
        "trace_metadata_bytes_max",
        "cbor_depth_max",
        "trace_audit_bytes_max",
        "trace_audit_line_max",
        "proof_path_max",
        "witness_enumeration_spins_max",
    ):
        assert LIMITS[name].value > 0


def test_an_audit_file_of_one_endless_line_is_refused_before_it_is_decoded() -> None:
    from xdv.security import AuditFile

    started = time.process_time()
    with pytest.raises(XdvError) as refused:
        AuditFile.parse(b"\0" * (64 << 20))  # what a sparse file under the size limit reads as
    assert refused.value.code is ErrorCode.CHECKPOINT_INVALID
    assert "trace_audit_line_max" in refused.value.message
    assert time.process_time() - started < 1.0
