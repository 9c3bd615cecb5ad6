"""DPL programs of more than one file: a directory of ``.ds`` files is one program of modules
(``docs/dpl.md`` §2.1): ``xdv check DIR``, ``xdv run DIR --entry NAME``, qualified names across
files, diagnostics reported in the file they belong to, self-test processes returning 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import ROOT, xdv
from xdv.dpl import DplStaticError, analyze_tree, compile_tree, read_tree
from xdv.errors import WorkloadError
from xdv.runtime import load_dpl_workload, run_workload

TREES = ROOT / "tests" / "dpl" / "modules"


def _run(target: Path, entry: str | None, trace: Path) -> tuple[list[str], Any]:
    printed: list[str] = []

    def sink(pid: int, value: Any) -> None:
        if isinstance(value, dict) and value.get("effect") == "emit":
            printed.append(value["value"])

    result = run_workload(load_dpl_workload(str(target), entry), seed=3, trace=trace, emit=sink)
    return printed, result


def test_a_tree_is_one_program_and_its_self_test_returns_zero(tmp_path: Path) -> None:
    files = read_tree(TREES / "selftest")
    # Files in the order of their relative paths, wherever the tree lies.
    assert [name for name, _ in files] == [
        "checks/arith.ds",
        "checks/bits.ds",
        "codes.ds",
        "suite.ds",
    ]
    compiled = analyze_tree(files, "selftest")
    assert compiled.ok, [d.message for d in compiled.diagnostics]
    names = {process.name for process in compiled.program.processes} if compiled.program else set()
    # The same process name in two forges: each is known by its forge.
    assert {"K::Arith.check", "K::Bits.check", "K::run_all", "K::main"} <= names
    printed, result = _run(TREES / "selftest", "run_all", tmp_path / "a.xdvt")
    assert printed == []
    assert [status.value for status in result.exits.values()] == ["0"]
    printed, _ = _run(TREES / "selftest", None, tmp_path / "b.xdvt")
    assert printed == ["suite 0"]
    _run(TREES / "selftest", None, tmp_path / "c.xdvt")
    assert (tmp_path / "b.xdvt").read_bytes() == (tmp_path / "c.xdvt").read_bytes()


def test_a_failing_check_does_not_return_zero(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for name, text in read_tree(TREES / "selftest"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text, encoding="utf-8")
    bits = tree / "checks" / "bits.ds"
    bits.write_text(bits.read_text("utf-8").replace("0b1011_0110), 5", "0b1011_0110), 4"))
    _, result = _run(tree, "run_all", tmp_path / "t.xdvt")
    assert [status.value for status in result.exits.values()] == ["1"]
    # The entry of one forge by its forge's name.
    _, result = _run(tree, "Bits.check", tmp_path / "u.xdvt")
    assert [status.value for status in result.exits.values()] == ["1"]
    _, result = _run(tree, "Arith.check", tmp_path / "v.xdvt")
    assert [status.value for status in result.exits.values()] == ["0"]


def test_diagnostics_name_the_file_they_belong_to() -> None:
    compiled = analyze_tree(read_tree(TREES / "broken"), "broken")
    assert not compiled.ok
    found = sorted(
        (record["file"], record["line"], record["code"])
        for record in (d.to_json(compiled.source) for d in compiled.diagnostics)
    )
    # The comment first.ds leaves open stops at its own end: second.ds is still parsed.
    assert found == [("first.ds", 5, "P001"), ("first.ds", 8, "L003"), ("second.ds", 4, "P001")]
    with pytest.raises(DplStaticError) as raised:
        compile_tree(read_tree(TREES / "broken"), "broken")
    # The first diagnostic (the lexer's, here) locates the error in its own file.
    assert raised.value.where == "first.ds:8:1"


def test_a_tree_needs_ds_files(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"no \.ds files"):
        read_tree(tmp_path)
    with pytest.raises(WorkloadError, match="not found"):
        read_tree(tmp_path / "missing")


def test_commands_on_a_tree(tmp_path: Path) -> None:
    checked = xdv("check", str(TREES / "selftest"))
    assert checked.returncode == 0 and checked.stdout.strip() == "OK"
    trace = tmp_path / "run.xdvt"
    ran = xdv("run", str(TREES / "selftest"), "--entry", "run_all", "--json", "--trace", str(trace))
    document = json.loads(ran.stdout.splitlines()[-1])
    assert ran.returncode == 0 and document["exit_code"] == 0
    assert [status["value"] for status in document["exits"].values()] == ["0"]
    replayed = xdv("replay", str(trace))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
