"""The DPL conformance corpus: every ``tests/dpl/**/*.ds`` program, checked against the inline
expectations it carries. Directives (in ``//`` comments):

- ``// spec: §N.N …``      the DPL specification sections the program exercises (required)
- ``// expect: TEXT``      the next line ``xdv run`` prints (one per ``emit``)
- ``// expect-error: CODE`` a diagnostic with this code is reported on this very line
- ``// expect-runtime: CODE`` the run ends with a failure of this error code
- ``// expect-effects: kind …`` the EFFECT entries of the trace, in order
- ``// expect-trace: EVENT`` an entry of this event type appears in the trace
- ``// profile: kernel``   check with the kernel profile
- ``// entry: NAME``       run this K process instead of ``main``
- ``// lower: Q::name`` or ``// lower: Φ::name(args)`` pin the lowered circuit or problem

A program with no ``expect-error`` must compile, and its DIR is pinned by a golden file; with
them, exactly those (line, code) diagnostics must be reported. Set ``XDV_UPDATE_GOLDEN=1`` to
rewrite the golden files.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers import ROOT
from xdv.dpl import DirProgram, analyze, canonical_bytes, effect_record_text, lower_phi, lower_q
from xdv.runtime import load_dpl_workload, run_workload
from xdv.trace import read_trace

CORPUS = ROOT / "tests" / "dpl"
GOLDEN = CORPUS / "golden"
# Source trees (modules/NAME/…) are programs of several files: tests/test_dpl_modules.py.
PROGRAMS = sorted(p for p in CORPUS.rglob("*.ds") if "modules" not in p.relative_to(CORPUS).parts)
UPDATE = os.environ.get("XDV_UPDATE_GOLDEN") == "1"
_DIRECTIVE = re.compile(
    r"//\s*(spec|expect|expect-error|expect-runtime|expect-effects|"
    r"expect-trace|profile|entry|lower):(.*)$"
)


@dataclass
class Case:
    path: Path
    spec: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    errors: set[tuple[int, str]] = field(default_factory=set)
    runtime: str | None = None
    effects: list[str] | None = None
    trace_events: list[str] = field(default_factory=list)
    profile: str | None = None
    entry: str | None = None
    lower: list[str] = field(default_factory=list)

    @property
    def runs(self) -> bool:
        return bool(self.output or self.runtime or self.effects is not None or self.trace_events)

    @property
    def stem(self) -> str:
        return self.path.relative_to(CORPUS).with_suffix("").as_posix().replace("/", "__")


def parse_case(path: Path) -> Case:
    case = Case(path)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for match in re.finditer(r"//\s*[a-z-]+:.*?(?=//|$)", line):
            directive = _DIRECTIVE.match(match.group(0).rstrip())
            if directive is None:
                continue
            kind, value = directive.group(1), directive.group(2).strip()
            if kind == "spec":
                case.spec.extend(value.split())
            elif kind == "expect":
                case.output.append(directive.group(2)[1:] if directive.group(2) else "")
            elif kind == "expect-error":
                case.errors.add((number, value))
            elif kind == "expect-runtime":
                case.runtime = value
            elif kind == "expect-effects":
                case.effects = value.split()
            elif kind == "expect-trace":
                case.trace_events.append(value)
            elif kind == "profile":
                case.profile = value
            elif kind == "entry":
                case.entry = value
            elif kind == "lower":
                case.lower.append(value)
    return case


CASES = [parse_case(path) for path in PROGRAMS]


def _golden(name: str, content: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    assert path.exists(), f"no golden file {name}: create it with XDV_UPDATE_GOLDEN=1"
    assert path.read_text(encoding="utf-8") == content, f"{name} differs from its golden file"


def test_corpus_size_and_sections() -> None:
    assert len(CASES) >= 60
    sections = {s.split(".")[0] for case in CASES for s in case.spec}
    for section in (
        "§2",
        "§3",
        "§4",
        "§5",
        "§6",
        "§7",
        "§8",
        "§9",
        "§10",
        "§11",
        "§12",
        "v0",
        "XDV-050",
    ):
        assert any(s.startswith(section) for s in sections), f"no program covers {section}"
    assert all(case.spec for case in CASES), "every corpus program names its spec sections"


def test_no_orphan_golden_files() -> None:
    stems = {case.stem for case in CASES}
    for path in GOLDEN.glob("*"):
        assert path.name.split(".")[0] in stems, f"golden file without a program: {path.name}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.stem)
def test_program(case: Case, tmp_path: Path) -> None:
    text = case.path.read_text(encoding="utf-8")
    compiled = analyze(text, case.path.name, case.profile)
    found = {
        (compiled.source.position(d.span.start)[0], d.code)
        for d in compiled.diagnostics
        if d.severity == "error"
    }
    assert found == case.errors, "diagnostics differ from the expect-error lines"
    if case.errors:
        return
    assert compiled.program is not None and compiled.dir is not None
    _golden(f"{case.stem}.dir.json", canonical_bytes(compiled.dir).decode("utf-8") + "\n")
    for request in case.lower:
        _check_lowering(case, compiled.program, request)
    if case.runs:
        _check_run(case, tmp_path)


def _check_lowering(case: Case, program: DirProgram, request: str) -> None:
    processes = {proc.name: proc for proc in program.processes}
    match = re.fullmatch(r"(\S+?)(?:\((.*)\))?", request)
    assert match is not None
    name = match.group(1)
    process = processes[name]
    args = tuple(json.loads(f"[{match.group(2)}]")) if match.group(2) else ()
    if process.regime == "Q":
        _golden(f"{case.stem}.{name.replace('::', '_')}.qasm", lower_q(process, args).text)
        return
    problem = lower_phi(process, args)
    _golden(
        f"{case.stem}.{name.replace('::', '_').replace('Φ', 'phi')}.problem.json",
        json.dumps(problem, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
    )


def _check_run(case: Case, tmp_path: Path) -> None:
    target = str(case.path)
    workload = load_dpl_workload(target, case.entry)
    printed: list[str] = []

    def sink(pid: int, value: Any) -> None:
        text = effect_record_text(value)
        if text is not None:
            printed.append(text)

    trace_path = tmp_path / "run.xdvt"
    result = run_workload(workload, seed=7, trace=trace_path, emit=sink)
    assert printed == case.output
    failures = [status for status in result.exits.values() if not status.ok]
    if case.runtime is None:
        assert result.ok, [f"{s.code}: {s.message}" for s in failures]
    else:
        assert [s.code for s in failures] == [case.runtime], [s.message for s in failures]
    entries = read_trace(trace_path).entries
    if case.effects is not None:
        kinds = [e.metadata["v"]["effect"] for e in entries if e.event_name == "EFFECT"]
        assert kinds == case.effects
    names = {entry.event_name for entry in entries}
    for event in case.trace_events:
        assert event in names
    # Same program, same seed: the same output and the same trace bytes.
    first = list(printed)
    printed.clear()
    run_workload(
        load_dpl_workload(target, case.entry), seed=7, trace=tmp_path / "again.xdvt", emit=sink
    )
    assert printed == first
    assert (tmp_path / "again.xdvt").read_bytes() == trace_path.read_bytes()
