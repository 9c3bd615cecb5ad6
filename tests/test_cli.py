"""The ``xdv`` command: outputs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import EXAMPLES, WORKLOADS, xdv


def test_run_prints_emits_and_writes_a_verifiable_trace(tmp_path: Path) -> None:
    path = tmp_path / "pp.xdvt"
    completed = xdv("run", str(EXAMPLES / "ping_pong.py"), "--seed", "7", "--trace", str(path))
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("ping 0") and lines[-1].startswith("ping paused")
    verified = xdv("verify", str(path), "--require-signature")
    assert verified.returncode == 0 and verified.stdout.startswith("OK:")
    fingerprint = xdv("key", "show").stdout.strip()
    assert (
        f"signed: 1 tree head by key {fingerprint} (trusted)"
        in xdv("verify", str(path), "--trusted-key", fingerprint).stdout
    )
    assert xdv("replay", str(path)).returncode == 0
    assert xdv("replay", "--mode", "inject", str(path)).returncode == 0


RUN_JSON_KEYS = {
    "ok",
    "status",
    "exit_code",
    "signal",
    "seed",
    "workload",
    "outputs",
    "exits",
    "steps",
    "logical_time",
    "events",
    "head_hash",
    "trace",
    "audit",
    "signer",
    "witnesses",
    "wall_seconds",
    "faults",
}


def test_run_json_and_module_targets(tmp_path: Path) -> None:
    completed = xdv("run", "tests.workloads.no_random:main", "--json", separate=True)
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["ok"] and document["outputs"][0] == "slow 0"
    assert document["exits"]["1"]["ok"] is True
    assert set(document) == RUN_JSON_KEYS


def test_run_json_has_one_shape_for_python_and_dpl(tmp_path: Path) -> None:
    documents = {}
    for target in (str(EXAMPLES / "ping_pong.py"), str(EXAMPLES / "primes.ds")):
        trace = tmp_path / f"{Path(target).suffix[1:]}.xdvt"
        completed = xdv("run", target, "--json", "--seed", "5", "--trace", str(trace))
        assert completed.returncode == 0, completed.stderr
        documents[target] = document = json.loads(completed.stdout)
        assert set(document) == RUN_JSON_KEYS
        assert document["status"] == "ok" and document["exit_code"] == 0
        assert document["signal"] is None
        assert document["seed"] == 5 and document["trace"] == str(trace)
        assert document["audit"] == f"{trace}.audit" and document["signer"]
        assert set(document["workload"]) == {"target", "entry", "language", "digest"}
        assert all(
            set(exit) == {"ok", "value", "code", "message"} for exit in document["exits"].values()
        )
    python, dpl = documents.values()
    assert python["workload"]["language"] == "python" and dpl["workload"]["language"] == "dpl"
    assert python["outputs"][-1].startswith("ping paused")
    assert dpl["outputs"][-1] == "46 primes below 200"  # the emitted values, as on stdout
    failing = json.loads(xdv("run", str(WORKLOADS / "mixed.py"), "--json").stdout)
    assert set(failing) == RUN_JSON_KEYS and failing["exit_code"] == 70
    assert failing["exits"]["2"]["code"] == "PROCESS_FAULT"


def test_exit_codes() -> None:
    assert xdv("run").returncode == 64  # missing argument
    assert xdv("run", "x.py", "--seed", "-3").returncode == 64
    assert xdv("frobnicate").returncode == 64
    assert xdv().returncode == 64 and "Commands" in xdv().stderr
    assert xdv("--help").returncode == 0
    missing = xdv("run", "does/not/exist.py")
    assert missing.returncode == 65 and "WORKLOAD_INVALID" in missing.stderr
    failing = xdv("run", str(WORKLOADS / "mixed.py"))
    assert failing.returncode == 70 and "PROCESS_FAULT" in failing.stderr
    assert xdv("verify", "does/not/exist.xdvt").returncode == 1


def test_a_failing_anchor_prints_its_traceback_but_the_trace_stays_deterministic(
    tmp_path: Path,
) -> None:
    traces = [tmp_path / "a.xdvt", tmp_path / "b.xdvt"]
    for trace in traces:
        failing = xdv("run", str(WORKLOADS / "mixed.py"), "--trace", str(trace), "--no-audit")
        assert failing.returncode == 70
        assert "process 2 failed: PROCESS_FAULT: ValueError: a bug in the anchor" in failing.stderr
        assert 'mixed.py", line 66, in faulty' in failing.stderr
        assert 'raise ValueError("a bug in the anchor")' in failing.stderr
    assert traces[0].read_bytes() == traces[1].read_bytes()
    assert b"line 66" not in traces[0].read_bytes() and b"mixed.py" in traces[0].read_bytes()
    setup = tmp_path / "setup.py"
    setup.write_text("def main(kernel):\n    {}['missing']\n")
    failed = xdv("run", str(setup))
    assert failed.returncode == 70 and 'setup.py", line 2, in main' in failed.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\nraise RuntimeError('at import')\n")
    refused = xdv("run", str(broken))
    assert refused.returncode == 65 and 'broken.py", line 2, in <module>' in refused.stderr


def test_a_workload_declares_the_phi_domain_in_the_short_form(tmp_path: Path) -> None:
    trace = tmp_path / "phi.xdvt"
    done = xdv(
        "run", "tests.workloads.phi_declared:main", "--trace", str(trace), "--json", separate=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert document["outputs"][0] == {"n": 1, "x": False}
    assert len(document["witnesses"]) == 2  # the admissibility proof and the anneal's readout
    for mode in ("reexecute", "inject"):
        assert xdv("replay", str(trace), "--mode", mode).returncode == 0
    bad = tmp_path / "bad_domains.py"
    bad.write_text(
        'XDV_DOMAINS = {"Φ": {"manager": "phi", "windw": 3}}\ndef main(kernel):\n    pass\n'
    )
    refused = xdv("run", str(bad))
    assert refused.returncode == 65 and "WORKLOAD_INVALID" in refused.stderr
    assert "windw" in refused.stderr and "calibration" not in refused.stderr


@pytest.mark.spec("XDV-071-8")
def test_verify_names_the_first_bad_entry(tmp_path: Path) -> None:
    path = tmp_path / "t.xdvt"
    assert xdv("run", str(EXAMPLES / "ping_pong.py"), "--trace", str(path)).returncode == 0
    data = bytearray(path.read_bytes())
    data[400] ^= 0x01
    path.write_bytes(bytes(data))
    completed = xdv("verify", str(path))
    assert completed.returncode == 1
    assert completed.stdout.startswith("FAILED at entry ")
    report = json.loads(xdv("verify", "--json", str(path)).stdout)
    assert report["ok"] is False and report["error"]["entry"] is not None


def test_trace_show_and_diff(tmp_path: Path) -> None:
    first, second = tmp_path / "a.xdvt", tmp_path / "b.xdvt"
    xdv("run", str(EXAMPLES / "ping_pong.py"), "--seed", "1", "--trace", str(first))
    xdv("run", str(EXAMPLES / "ping_pong.py"), "--seed", "2", "--trace", str(second))
    shown = xdv("trace", "show", str(first), "--json", "--event", "effect")
    assert shown.returncode == 0
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert rows and all(row["event"] == "EFFECT" for row in rows)
    table = xdv("trace", "show", str(first), "--limit", "5")
    assert table.returncode == 0 and "RUN_START" in table.stdout
    assert xdv("trace", "diff", str(first), str(first)).returncode == 0
    differing = xdv("trace", "diff", str(first), str(second))
    assert differing.returncode == 1 and "first divergence at entry 0" in differing.stdout


@pytest.mark.spec("XDV-071-8")
def test_verify_rejects_random_damage_and_accepts_clean_traces(tmp_path: Path) -> None:
    """In-process (fast): many random mutations of a real trace, each rejected by `xdv verify`."""
    import random

    from xdv.cli import main

    path = tmp_path / "clean.xdvt"
    assert xdv("run", str(EXAMPLES / "hybrid_offload.py"), "--trace", str(path)).returncode == 0
    clean = path.read_bytes()
    (tmp_path / "candidate.xdvt.audit").write_bytes((tmp_path / "clean.xdvt.audit").read_bytes())

    def verify(data: bytes) -> int:
        target = tmp_path / "candidate.xdvt"
        target.write_bytes(data)
        with pytest.raises(SystemExit) as exited:
            main(["verify", str(target)])
        return int(exited.value.code or 0)

    assert verify(clean) == 0
    rng = random.Random(2026)
    for _ in range(150):
        data = bytearray(clean)
        kind = rng.randrange(3)
        if kind == 0:  # flip one bit
            position = rng.randrange(len(data))
            data[position] ^= 1 << rng.randrange(8)
        elif kind == 1:  # cut the file short
            del data[rng.randrange(len(data)) :]
        else:  # overwrite a run of bytes with random ones
            start = rng.randrange(len(data) - 4)
            for index in range(start, min(len(data), start + rng.randrange(1, 16))):
                data[index] = (data[index] + 1 + rng.randrange(255)) % 256
        assert verify(bytes(data)) == 1
