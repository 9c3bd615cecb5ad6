"""The Φ domain end to end: replay, determinism, ``xdv phirun`` and ``xdv witness verify``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_testdata

from helpers import WORKLOADS, xdv
from xdv import KDomainManager, replay, run_workload
from xdv.domains.phi import PhiDomainManager
from xdv.domains.phi.workloads import PHIRUN_TARGET
from xdv.trace import jsonable, read_trace

TRIANGLES = "6 7\n1 2 1\n2 3 1\n3 1 1\n4 5 1\n5 6 1\n6 4 1\n1 4 1\n"


def run_phi_workload(path: Path, seed: int = 4) -> bytes:
    result = run_workload(
        str(WORKLOADS / "phi_job.py"),
        seed=seed,
        trace=path,
        domains=[KDomainManager(), PhiDomainManager()],
    )
    assert result.ok
    assert result.outputs[0][1] == {"x": False, "n": 1}
    assert result.outputs[-1][1] == "PHI_ERR_RAW_PHASE_ACCESS"
    return path.read_bytes()


@pytest.mark.spec("XDV-033-9")
def test_phi_runs_replay_identically_in_both_modes(tmp_path: Path) -> None:
    first = run_phi_workload(tmp_path / "a.xdvt")
    assert run_phi_workload(tmp_path / "b.xdvt") == first
    for mode in ("reexecute", "inject"):
        report = replay(tmp_path / "a.xdvt", mode)
        assert report.ok, report.divergence


def write_graph(tmp_path: Path) -> Path:
    graph = tmp_path / "two_triangles.txt"
    graph.write_text(TRIANGLES)
    return graph


def test_phirun_solves_maxcut_and_its_witness_verifies_offline(tmp_path: Path) -> None:
    graph = write_graph(tmp_path)
    trace = tmp_path / "run.xdvt"
    completed = xdv("phirun", str(graph), "--seed", "3", "--trace", str(trace), "--json")
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["ok"] and report["cut"] == 5  # two triangles (2 each) and the bridge
    assert 0 <= report["stability"]["noise_index"] <= 1
    witness = Path(report["witness"]["file"])
    assert witness.parent == tmp_path and witness.is_file()
    verified_copy = witness.read_text()
    assert xdv("verify", str(trace)).returncode == 0
    verified = xdv("witness", "verify", str(witness))
    assert verified.returncode == 0 and verified.stdout.startswith("OK: ising witness")
    assert "hybrid signature by" in verified.stdout
    document = json.loads(witness.read_text())
    assert document["signature"]["scheme"] == "hybrid"
    document["signature"]["value"] = document["signature"]["value"][:-2] + "00"
    witness.write_text(json.dumps(document))
    assert xdv("witness", "verify", str(witness)).returncode == 1
    document["signature"]["value"] = json.loads(verified_copy)["signature"]["value"]
    document["payload"]["verification"]["energy"] -= 2
    witness.write_text(json.dumps(document))
    refused = xdv("witness", "verify", str(witness), "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["code"] == "PHI_ERR_WITNESS_INVALID"


@pytest.mark.parametrize(
    "options",
    [
        ("--budget-ms", "0.3", "--seed", "6"),
        pytest.param(("--provider", "exact", "--seed", "2"), marks=pytest.mark.system),
    ],
    ids=["phase", "exact"],
)
def test_a_phirun_trace_is_signed_and_replays_in_both_modes(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    graph = write_graph(tmp_path)
    trace = tmp_path / "job.xdvt"
    done = xdv("phirun", str(graph), "--trace", str(trace), "--json", *options)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["audit"] == f"{trace}.audit" and report["signer"]
    start = read_trace(trace).entries[0].metadata["workload"]
    assert start["target"] == PHIRUN_TARGET and start["params"]["problem"]["n"] == 6
    assert "h" not in start["params"]["problem"]  # a MaxCut problem has no fields to record
    signed = xdv("verify", str(trace), "--require-signature", "--trusted-key", report["signer"])
    assert signed.returncode == 0, signed.stdout + signed.stderr
    for mode in ("reexecute", "inject"):
        replayed = xdv("replay", str(trace), "--mode", mode)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "identical" in replayed.stdout
    rerun = xdv("phirun", str(graph), "--trace", str(tmp_path / "again.xdvt"), *options)
    assert rerun.returncode == 0
    assert (tmp_path / "again.xdvt").read_bytes() == trace.read_bytes()


@pytest.mark.slow
def test_a_phirun_trace_of_g1_replays(tmp_path: Path) -> None:
    trace = tmp_path / "g1.xdvt"
    g1 = shared_testdata("gset", "G1.txt")
    done = xdv("phirun", str(g1), "--budget-ms", "0.3", "--trace", str(trace))
    assert done.returncode == 0, done.stderr
    assert xdv("verify", str(trace), "--require-signature").returncode == 0
    for mode in ("reexecute", "inject"):
        replayed = xdv("replay", str(trace), "--mode", mode)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr


@pytest.mark.system  # eight commands end to end: CI's system step
def test_witness_verify_pins_the_node_key(tmp_path: Path) -> None:
    from xdv.domains.phi import DigestSigner, HybridSigner, sign_witness
    from xdv.security import HybridKeyPair

    keys = tmp_path / "keys"
    shown = xdv("key", "show", "--key-store", str(keys), "--json")
    assert shown.returncode == 0, shown.stderr
    node = json.loads(shown.stdout)
    assert node["created"] is True and node["key_store"] == str(keys)
    fingerprint = node["fingerprint"]
    assert xdv("key", "show", "--key-store", str(keys)).stdout.strip() == fingerprint
    graph = write_graph(tmp_path)
    done = xdv("phirun", str(graph), "--key-store", str(keys), "--trace", str(tmp_path / "t"))
    assert done.returncode == 0, done.stderr
    (witness,) = tmp_path.glob("witness-*.json")
    trusted = xdv("witness", "verify", str(witness), "--trusted-key", fingerprint)
    assert trusted.returncode == 0 and trusted.stdout.rstrip().endswith("(trusted)")
    document = json.loads(witness.read_text())
    # Re-signed with a fresh key: the signature is valid, but not the node's.
    resigned = tmp_path / "resigned.json"
    other = HybridSigner(HybridKeyPair.generate())
    resigned.write_text(json.dumps(jsonable(sign_witness(document["payload"], other))))
    assert xdv("witness", "verify", str(resigned)).returncode == 0
    refused = xdv("witness", "verify", str(resigned), "--trusted-key", fingerprint, "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["code"] == "SIGNATURE_INVALID"
    # Unsigned (an integrity digest only), claiming another provider.
    evil = {**document["payload"], "attestation": {"provider": "evil", "measurement": "00"}}
    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(json.dumps(jsonable(sign_witness(evil, DigestSigner()))))
    assert xdv("witness", "verify", str(unsigned)).returncode == 0
    for flags in (("--require-signature",), ("--trusted-key", fingerprint)):
        assert xdv("witness", "verify", str(unsigned), *flags).returncode == 1


SPLIT = """forge split {
    proc Φ::split(total: i64) -> Witness uses envelope(window = 16) {
        let a = phi::int(0, 100);
        let b = phi::int(0, 100);
        constrain a + b == total;
        constrain a == 3 * b;
        prove w from a;
        return w;
    }
    proc K::main() {
        let w = Φ::split(40);
        emit "split 40 into {w.a} and {w.b}";
        seal w;
    }
    bind K::main -> Φ::split contract {
        witness_transfer == true;
        latency_us <= 64;
        record == true;
    }
}
"""


def test_witnesses_of_xdv_run_are_signed_with_the_node_key(tmp_path: Path) -> None:
    program = tmp_path / "split.ds"
    program.write_text(SPLIT)
    trace = tmp_path / "split.xdvt"
    done = xdv("run", str(program), "--trace", str(trace), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert document["outputs"] == ["split 40 into 30 and 10"]
    assert document["witnesses"] and all(
        Path(path).parent == tmp_path for path in document["witnesses"]
    )
    for path in document["witnesses"]:
        verified = xdv("witness", "verify", path, "--trusted-key", document["signer"])
        assert verified.returncode == 0, verified.stdout + verified.stderr
    assert xdv("replay", str(trace), "--mode", "inject").returncode == 0


def test_phirun_is_deterministic_and_prints_text(tmp_path: Path) -> None:
    graph = write_graph(tmp_path)
    outputs = []
    for name in ("a", "b"):
        trace = tmp_path / f"{name}.xdvt"
        completed = xdv(
            "phirun", str(graph), "--seed", "9", "--budget-ms", "0.3", "--trace", str(trace)
        )
        assert completed.returncode == 0, completed.stderr
        outputs.append((completed.stdout, trace.read_bytes()))
    assert outputs[0][1] == outputs[1][1]
    text = outputs[0][0]
    assert text.startswith("cut 5\n") and "stability" in text and "witness" in text
    sides = [line.split(": ")[1].split() for line in text.splitlines() if line.startswith("side ")]
    assert len(sides) == 2 and sorted(map(int, sides[0] + sides[1])) == [1, 2, 3, 4, 5, 6]


def test_phirun_refuses_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "ising", "n": 2, "J": [[0, 7, 1.0]]}))
    completed = xdv("phirun", str(bad), "--format", "bqm-json")
    assert completed.returncode == 65 and "PHI_ERR_PROBLEM_INVALID" in completed.stderr
    graph = str(write_graph(tmp_path))
    exact = xdv("phirun", graph, "--provider", "exact", "--budget-ms", "1")
    assert exact.returncode == 65 and "OPERATION_UNSUPPORTED" in exact.stderr
    tabu = xdv("phirun", graph, "--provider", "exact", "--tabu", "5")
    assert tabu.returncode == 65 and "OPERATION_UNSUPPORTED" in tabu.stderr
    phase = xdv("phirun", graph, "--work-limit", "1")
    assert phase.returncode == 65 and "OPERATION_UNSUPPORTED" in phase.stderr
    assert xdv("phirun", str(tmp_path / "missing.txt")).returncode == 64


def test_phirun_writes_its_witness_beside_the_trace_or_under_xdv_home(tmp_path: Path) -> None:
    graph = write_graph(tmp_path)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    done = xdv("phirun", str(graph), "--json", cwd=work, env={"XDV_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    witness = Path(json.loads(done.stdout)["witness"]["file"])
    assert witness.parent == home / "witnesses" and witness.is_file()
    assert not list(work.iterdir())  # nothing in the current directory
    (tmp_path / "runs").mkdir()
    traced = xdv(
        "phirun", str(graph), "--trace", str(tmp_path / "runs" / "t.xdvt"), "--json", cwd=work
    )
    assert traced.returncode == 0, traced.stderr
    assert Path(json.loads(traced.stdout)["witness"]["file"]).parent == tmp_path / "runs"


def test_phirun_accepts_a_bqm_json_problem(tmp_path: Path) -> None:
    problem = tmp_path / "qubo.json"
    problem.write_text(
        json.dumps({"kind": "qubo", "n": 3, "Q": [[0, 0, -1], [1, 1, -1], [0, 1, 2], [2, 2, 1]]})
    )
    completed = xdv(
        "phirun",
        str(problem),
        "--format",
        "bqm-json",
        "--tabu",
        "20",
        "--json",
        "--witness-dir",
        str(tmp_path),
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["energy"] == -1  # x = (1, 0, 0) or (0, 1, 0)
    assert report["solution"]["vartype"] == "BINARY"
    assert sorted(report["solution"]["sample"].values()) == [0, 0, 1]


def test_phirun_on_g1(tmp_path: Path) -> None:
    completed = xdv(
        "phirun",
        str(shared_testdata("gset", "G1.txt")),
        "--budget-ms",
        "0.3",
        "--json",
        "--witness-dir",
        str(tmp_path),
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["cut"] > 0.98 * 11624


def test_phirun_exact_proves_the_maximum_cut_and_is_deterministic(tmp_path: Path) -> None:
    graph = write_graph(tmp_path)
    runs = []
    for name in ("a", "b"):
        trace = tmp_path / f"{name}.xdvt"
        completed = xdv(
            "phirun",
            str(graph),
            "--provider",
            "exact",
            "--seed",
            "5",
            "--trace",
            str(trace),
            "--json",
        )
        assert completed.returncode == 0, completed.stderr
        runs.append((json.loads(completed.stdout), trace.read_bytes()))
    (report, trace_bytes), (again, again_bytes) = runs
    assert trace_bytes == again_bytes
    assert report["status"] == "OPTIMAL" and report["cut"] == report["cut_bound"] == 5
    assert report["provider"] == "exact" and "order_parameter" not in report
    for key in ("status", "cut", "bound", "energy", "solver", "witness", "head_hash"):
        assert report[key] == again[key], key
    assert xdv("verify", str(tmp_path / "a.xdvt")).returncode == 0
    verified = xdv("witness", "verify", report["witness"]["file"], "--json")
    assert verified.returncode == 0, verified.stdout
    checked = json.loads(verified.stdout)
    assert checked["status"] == "OPTIMAL" and checked["cut"] == 5 and checked["rechecked"]
    text = xdv("phirun", str(graph), "--provider", "exact", "--witness-dir", str(tmp_path))
    assert text.returncode == 0 and text.stdout.startswith("cut 5\n")
    assert "status OPTIMAL" in text.stdout


def test_phirun_exact_refuses_an_oversized_problem(tmp_path: Path) -> None:
    problem = tmp_path / "large.json"
    problem.write_text(json.dumps({"kind": "ising", "n": 5000, "J": [[0, 1, 1.0]]}))
    completed = xdv("phirun", str(problem), "--format", "bqm-json", "--provider", "exact")
    assert completed.returncode == 65 and "PHI_ERR_PROBLEM_INVALID" in completed.stderr
    assert "at most 2048 spins" in completed.stderr
    assert not list(tmp_path.glob("witness-*.json")) and not list(Path.cwd().glob("witness-*"))


@pytest.mark.slow
def test_phirun_exact_on_g1(tmp_path: Path) -> None:
    completed = xdv(
        "phirun",
        str(shared_testdata("gset", "G1.txt")),
        "--provider",
        "exact",
        "--work-limit",
        "1",
        "--json",
        "--witness-dir",
        str(tmp_path),
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["status"] in ("OPTIMAL", "FEASIBLE")
    assert 0 < report["cut"] <= 11624 <= report["cut_bound"]


def test_phirun_bad_problem_files_get_typed_errors_and_exit_65(tmp_path: Path) -> None:
    """Deeply nested bqm-json and a FIFO: each is a typed error with exit 65, never a
    RecursionError traceback or a blocked read (the other bad inputs, huge numbers and fields of
    the wrong type, take the same path: src/xdv/domains/phi/problems_test.py)."""
    import os

    cases = [("deep.json", "bqm-json", "[" * 50_000 + "]" * 50_000, "INPUT_LIMIT_EXCEEDED")]
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    for name, problem_format, content, code in [*cases, ("fifo.txt", "gset", None, None)]:
        path = tmp_path / name
        if content is not None:
            path.write_text(content, encoding="ascii")
        done = xdv("phirun", str(path), "--format", problem_format, "--json", timeout=60)
        assert done.returncode == 65, (name, done.stdout, done.stderr)
        assert json.loads(done.stdout)["error"]["code"] == (code or "INPUT_NOT_REGULAR")
        assert "Traceback" not in done.stderr


def _phi_run(graph: Path, folder: Path, progress: object = None) -> tuple[dict[str, object], bytes]:
    from xdv.runtime import RunRequest, phi_job, phi_report, run

    request = RunRequest(
        phi_job(graph, schedule={"replicas": 4, "steps": 200}),
        seed=5,
        trace=folder / "run.xdvt",
        audit=False,
        key_store=folder / "keys",
        witness_dir=folder,
        handle_signals=False,
    )
    outcome = run(request, progress=progress)  # type: ignore[arg-type]
    report = phi_report(outcome, source=graph.name, problem_format="gset")
    return report, (folder / "run.xdvt").read_bytes()


def test_progress_never_changes_the_trace_and_the_partition_gives_the_cut(tmp_path: Path) -> None:
    graph = write_graph(tmp_path)
    calls: list[tuple[int, int]] = []
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    watched, trace = _phi_run(
        graph, tmp_path / "a", lambda done, total: calls.append((done, total))
    )
    plain, again = _phi_run(graph, tmp_path / "b")
    assert calls and calls[-1] == (200, 200)
    assert trace == again and watched["solution"] == plain["solution"]
    side = set(watched["solution"]["partition"][0])  # type: ignore[index]
    assert 1 in side
    edges = [tuple(map(int, line.split()[:2])) for line in TRIANGLES.splitlines()[1:]]
    assert sum((a in side) != (b in side) for a, b in edges) == watched["cut"] == 5


def test_phirun_reads_a_dimod_serialization_and_prints_the_sample(tmp_path: Path) -> None:
    dimod = pytest.importorskip("dimod")
    bqm = dimod.BinaryQuadraticModel(
        {"a": 1.0, "b": -2.0, "c": 0.5}, {("a", "b"): 3.0, ("b", "c"): -1.0}, 0.5, "BINARY"
    )
    problem = tmp_path / "bqm.json"
    problem.write_text(json.dumps(bqm.to_serializable()))
    done = xdv("phirun", str(problem), "--format", "bqm-json", "--witness-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "sample (BINARY) a=0 b=1 c=1" in done.stdout.splitlines()
    assert "energy -2" in done.stdout.splitlines()  # dimod's ExactSolver agrees: -2 at 0, 1, 1
    # No terminal, no progress display: standard error holds only the key notice.
    assert all(line.startswith("created node key") for line in done.stderr.splitlines())
