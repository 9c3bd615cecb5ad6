"""The runtime's one way into a run: managers, node key, audit, witnesses, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xdv.runtime import (
    RunRequest,
    load_dpl_program,
    load_workload,
    phi_job,
    phi_report,
    replay,
    run,
    run_workload,
)
from xdv.security import verify_audit

ROOT = Path(__file__).resolve().parents[3]
TRIANGLES = "6 7\n1 2 1\n2 3 1\n3 1 1\n4 5 1\n5 6 1\n6 4 1\n1 4 1\n"


def test_a_k_only_run_without_a_trace_touches_no_key(tmp_path: Path) -> None:
    store = tmp_path / "keys"
    outcome = run(
        RunRequest(load_workload(str(ROOT / "examples" / "ping_pong.py")), key_store=store)
    )
    assert outcome.ok and outcome.signer is None and outcome.audit is None
    assert not store.exists()  # nothing was signed, so no key was loaded or created
    assert outcome.outputs()[-1] == "ping paused 6 ticks, pong paused 7"


def test_a_traced_run_is_audited_and_signed_with_the_node_key(tmp_path: Path) -> None:
    store, trace = tmp_path / "keys", tmp_path / "run.xdvt"
    workload = load_workload(str(ROOT / "examples" / "ping_pong.py"))
    outcome = run(RunRequest(workload, seed=3, trace=trace, key_store=store))
    assert outcome.key_created and outcome.audit == Path(f"{trace}.audit")
    report = verify_audit(trace, trusted={outcome.signer or ""})
    assert report.signed and report.signer == outcome.signer
    again = run(RunRequest(workload, seed=3, trace=tmp_path / "again.xdvt", key_store=store))
    assert not again.key_created and again.signer == outcome.signer
    # The bare run of the same workload writes the same trace (without the audit entries).
    bare = run(RunRequest(workload, seed=3, trace=tmp_path / "bare.xdvt", audit=False))
    plain = run_workload(workload, seed=3, trace=tmp_path / "plain.xdvt")
    assert (tmp_path / "bare.xdvt").read_bytes() == (tmp_path / "plain.xdvt").read_bytes()
    assert bare.result.head_hash == plain.head_hash
    assert replay(trace).ok


def test_dpl_outputs_are_the_values_of_emit(tmp_path: Path) -> None:
    workload, _ = load_dpl_program(str(ROOT / "examples" / "primes.ds"))
    outcome = run(RunRequest(workload))
    assert outcome.ok and outcome.outputs()[-1] == "46 primes below 200"
    assert workload.language == "dpl" and workload.domains is None
    assert outcome.to_json()["outputs"] == outcome.outputs()


def test_a_phi_job_signs_its_witness_with_the_node_key_and_writes_it_beside_the_trace(
    tmp_path: Path,
) -> None:
    from xdv.domains.phi import verify_witness

    graph = tmp_path / "triangles.txt"
    graph.write_text(TRIANGLES)
    trace = tmp_path / "out" / "job.xdvt"
    trace.parent.mkdir()
    workload = phi_job(graph, provider="exact")
    outcome = run(RunRequest(workload, trace=trace, key_store=tmp_path / "keys"))
    report = phi_report(outcome, source=graph.name, problem_format="gset")
    assert report["cut"] == 5 and report["status"] == "OPTIMAL"
    (witness,) = outcome.witnesses
    assert witness.parent == trace.parent and report["witness"]["file"] == str(witness)
    checked = verify_witness(json.loads(witness.read_text()), trusted={outcome.signer or ""})
    assert checked["trusted"] is True and checked["signer"] == outcome.signer
    assert replay(trace, "inject").ok


def test_a_phi_job_refuses_the_other_providers_options(tmp_path: Path) -> None:
    from xdv.errors import ErrorCode, XdvError

    graph = tmp_path / "triangles.txt"
    graph.write_text(TRIANGLES)
    with pytest.raises(XdvError) as raised:
        phi_job(graph, provider="exact", budget_ms=1.0)
    assert raised.value.code is ErrorCode.OPERATION_UNSUPPORTED
    with pytest.raises(XdvError) as raised:
        phi_job(graph, provider="phase", work_limit=1.0)
    assert raised.value.code is ErrorCode.OPERATION_UNSUPPORTED
