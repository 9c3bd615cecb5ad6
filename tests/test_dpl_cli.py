"""The DPL commands end to end: ``xdv run``/``check``/``dir`` on ``.ds`` files, exit codes,
determinism of output and trace, replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import EXAMPLES, ROOT, xdv

CORPUS = ROOT / "tests" / "dpl"


@pytest.mark.spec("XDV-052-10")
@pytest.mark.spec("XDV-050-4.1")
def test_run_is_deterministic_verifiable_and_replayable(tmp_path: Path) -> None:
    first, second = tmp_path / "a.xdvt", tmp_path / "b.xdvt"
    one = xdv("run", str(EXAMPLES / "primes.ds"), "--seed", "5", "--trace", str(first))
    two = xdv("run", str(EXAMPLES / "primes.ds"), "--seed", "5", "--trace", str(second))
    assert one.returncode == 0, one.stderr
    assert one.stdout == two.stdout
    assert one.stdout.splitlines()[-1] == "46 primes below 200"
    assert first.read_bytes() == second.read_bytes()
    assert xdv("verify", str(first)).returncode == 0
    replayed = xdv("replay", str(first))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr


def test_check_prints_ok_or_diagnostics() -> None:
    good = xdv("check", str(EXAMPLES / "primes.ds"))
    assert good.returncode == 0 and good.stdout.strip() == "OK"
    bad = xdv("check", str(CORPUS / "grammar" / "recovery.ds"))
    assert bad.returncode == 65
    assert bad.stderr.count("error[P001]") == 3 and "recovery.ds:4:" in bad.stderr
    as_json = xdv("check", "--json", str(CORPUS / "types" / "undefined_name.ds"))
    document = json.loads(as_json.stdout)
    assert as_json.returncode == 65 and document["ok"] is False
    assert document["diagnostics"][0]["code"] == "T202"
    assert document["diagnostics"][0]["line"] == 3
    kernel = xdv("check", "--profile", "kernel", str(CORPUS / "kernel" / "while_rejected.ds"))
    assert kernel.returncode == 65 and "K801" in kernel.stderr


def test_dir_prints_the_pinned_canonical_form() -> None:
    completed = xdv("dir", str(CORPUS / "processes" / "recursion.ds"))
    golden = (CORPUS / "golden" / "processes__recursion.dir.json").read_text("utf-8")
    assert completed.returncode == 0 and completed.stdout == golden
    pretty = xdv("dir", "--pretty", str(CORPUS / "processes" / "recursion.ds"))
    assert "proc K::fib(%0:n: Int) -> Int" in pretty.stdout


@pytest.mark.spec("XDV-052-8")
def test_outcome_exit_codes() -> None:
    runtime = xdv("run", str(CORPUS / "effects" / "fail_before_effect.ds"))
    assert runtime.returncode == 70 and runtime.stdout == "a\n"
    assert "DPL_RUNTIME" in runtime.stderr
    contract = xdv("run", str(CORPUS / "time" / "latency_unmeetable.ds"))
    assert contract.returncode == 72 and contract.stdout == "before\n"
    assert "contract violation" in contract.stderr
    static = xdv("run", str(CORPUS / "types" / "type_mismatch.ds"))
    assert static.returncode == 65 and "T201" in static.stderr
    missing = xdv("run", "does/not/exist.ds")
    assert missing.returncode == 65


def test_entry_option_and_json_output() -> None:
    completed = xdv(
        "run", str(CORPUS / "processes" / "entry_option.ds"), "--entry", "other", "--json"
    )
    document = json.loads(completed.stdout)
    assert completed.returncode == 0 and document["outputs"] == ["other"]


@pytest.mark.spec("XDV-052-5.1")
@pytest.mark.spec("XDV-052-10")
def test_hybrid_example_runs_on_the_q_and_phi_managers_and_replays(tmp_path: Path) -> None:
    assert xdv("check", str(EXAMPLES / "hybrid.ds")).returncode == 0
    trace = tmp_path / "hybrid.xdvt"
    first = xdv("run", str(EXAMPLES / "hybrid.ds"), "--trace", str(trace))
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "hybrid run" and lines[2] == "split 40 into 30 and 10"
    assert lines[1] in ("bell pair measured 00", "bell pair measured 11")
    again = xdv("run", str(EXAMPLES / "hybrid.ds"), "--no-audit", "--trace", str(tmp_path / "b"))
    assert again.stdout == first.stdout
    assert xdv("verify", str(trace)).returncode == 0
    replayed = xdv("replay", str(trace))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr


def test_bad_and_pathological_sources_get_typed_errors_and_small_output(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.ds"
    garbage.write_text("@" * 100_000)
    checked = xdv("check", str(garbage))
    assert checked.returncode == 65
    assert "note[P005]" in checked.stderr and "error(s) shown" in checked.stderr
    assert len(checked.stderr) < 10_000  # not 15 GB: ten diagnostics and a note, windowed
    assert "Traceback" not in checked.stderr
    undecodable = tmp_path / "bad.ds"
    undecodable.write_bytes(b"K main { emit 1; }\n\xff")
    refused = xdv("check", "--json", str(undecodable))
    assert refused.returncode == 65
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "INPUT_DECODE_FAILED" and "offset 19" in error["message"]
    deep = tmp_path / "deep.ds"
    deep.write_text("K main { emit " + "+".join(["1"] * 5000) + "; }")
    limited = xdv("check", "--json", str(deep))
    assert limited.returncode == 65
    (diagnostic,) = json.loads(limited.stdout)["diagnostics"]
    assert diagnostic["code"] == "P004" and "dpl_expression_depth_max" in diagnostic["message"]
    squares = tmp_path / "squares.ds"
    squares.write_text("K main { mut let x = 3; " + "x = x * x; " * 40 + "emit x; }")
    ran = xdv("run", str(squares))
    assert ran.returncode == 70
    assert "DPL_LIMIT_EXCEEDED" in ran.stdout + ran.stderr
    assert "dpl_int_bits_max" in ran.stdout + ran.stderr


@pytest.mark.spec("XDV-052-5.4")
def test_binds_between_k_processes_are_enforced(tmp_path: Path) -> None:
    from xdv.runtime import load_dpl_workload, run_workload

    def outcome(name: str) -> tuple[list[str], list[str | None]]:
        printed: list[str] = []

        def sink(pid: int, value: object) -> None:
            if isinstance(value, dict) and value.get("effect") == "emit":
                printed.append(str(value["value"]))

        workload = load_dpl_workload(str(CORPUS / "binds" / f"{name}.ds"))
        result = run_workload(workload, seed=1, trace=tmp_path / f"{name}.xdvt", emit=sink)
        return printed, [status.code for status in result.exits.values()]

    # Unmeetable: nothing invoked, no effect after the call.
    assert outcome("k_to_k_unmeetable") == (["before"], ["DPL_CONTRACT_VIOLATION"])
    # Exceeded: the target ran, its result did not cross.
    assert outcome("k_to_k_latency_exceeded") == (["start"], ["DPL_CONTRACT_VIOLATION"])
    assert outcome("k_to_k_met") == (["helper 21", "after 42"], [None])
