"""Generate the families of conformance case files under src/xdv/cts/cases/.

Run from the repository root: ``python tools/cts_generate.py``. It rewrites the generated
areas (``dpl/``, ``q/basis``, ``phi/maxcut``, ``phi/ising``, ``trace/tamper``) and leaves the
hand-written cases alone. Every expected value comes from the semantics, not from running XDV:

- DPL programs: the inline expectations of the DPL corpus (tests/dpl), reviewed against the DPL
  specification section each program names;
- Q basis-state circuits: X gates on a chosen set of qubits, measured, give that bit string on
  every shot (bit i of the string, counted from the right, is qubit i);
- Φ MaxCut and Ising problems: the optimum, found here by enumerating every assignment;
- tampered traces: the verification error the trace format (docs/trace-format.md §8) names
  for the damage done.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "src" / "xdv" / "cts" / "cases"
CORPUS = ROOT / "tests" / "dpl"

_DIRECTIVE = re.compile(
    r"//\s*(spec|expect|expect-error|expect-runtime|expect-effects|expect-trace|profile|entry|lower):(.*)$"
)


def _front(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def write_case(path: Path, data: dict[str, Any], body: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    matter = _front(data)
    if path.suffix == ".yaml":
        path.write_text(matter, encoding="utf-8")
    elif path.suffix == ".py":
        path.write_text(f'"""---\n{matter}---"""\n{body}', encoding="utf-8")
    else:
        path.write_text(f"/*---\n{matter}---*/\n{body}", encoding="utf-8")


# DPL corpus --------------------------------------------------------------------------------


def _spec_ids(tokens: list[str], has_errors: bool) -> list[str]:
    found = []
    for token in tokens:
        if token.startswith("§") or token in ("v0.2-K", "v0.2"):
            found.append(f"DPL-{token}")
        elif token == "XDV-050":
            found.append("XDV-050-3.2" if has_errors else "XDV-050-3.1")
    return found or ["DPL-v0.2"]


# Diagnostic families and the domain type system clauses (XDV-051) they enforce.
_TYPE_CLAUSES = [
    ("R10", "XDV-051-3.3"),
    ("L", "XDV-051-4.3"),
    ("C60", "XDV-051-5.1"),
    ("W501", "XDV-051-4.4"),
    ("F401", "XDV-051-4.4"),
]


def dpl_cases() -> int:
    count = 0
    for path in sorted(CORPUS.rglob("*.ds")):
        relative = path.relative_to(CORPUS)
        if relative.parts[0] in ("modules", "golden"):
            continue
        text = path.read_text(encoding="utf-8")
        spec: list[str] = []
        outputs: list[str] = []
        errors: list[tuple[int, str]] = []
        runtime = effects = profile = entry = None
        trace_events: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            for match in re.finditer(r"//\s*[a-z-]+:.*?(?=//|$)", line):
                directive = _DIRECTIVE.match(match.group(0).rstrip())
                if directive is None:
                    continue
                kind, value = directive.group(1), directive.group(2).strip()
                if kind == "spec":
                    spec.extend(value.split())
                elif kind == "expect":
                    outputs.append(directive.group(2)[1:] if directive.group(2) else "")
                elif kind == "expect-error":
                    errors.append((number, value))
                elif kind == "expect-runtime":
                    runtime = value
                elif kind == "expect-effects":
                    effects = value.split()
                elif kind == "expect-trace":
                    trace_events.append(value)
                elif kind == "profile":
                    profile = value
                elif kind == "entry":
                    entry = value
        uses_q = bool(re.search(r"\bQ::|proc Q::", text))
        uses_phi = "Φ::" in text or "phi::" in text
        runs = bool(outputs or runtime or effects is not None or trace_events)
        requires = (["q"] if uses_q and runs else []) + (["phi"] if uses_phi and runs else [])
        data: dict[str, Any] = {
            "id": "dpl." + relative.with_suffix("").as_posix().replace("/", ".").replace("_", "-"),
            "spec": _spec_ids(spec, bool(errors)),
            "description": f"DPL corpus program {relative.as_posix()}",
            "level": "hybrid" if requires else "core",
        }
        if requires:
            data["requires"] = requires
        options: dict[str, Any] = {}
        expect: dict[str, Any] = {}
        if errors or not runs:
            data["action"] = "check"
            if profile:
                options["profile"] = profile
        if entry:
            options["entry"] = entry
        header_lines = 0  # computed below, once the front matter is known
        if runs and not errors:
            options["seed"] = 7  # the corpus's expectations are for seed 7
        if options:
            data["options"] = options
        if errors:
            expect["exit"] = "static"
            expect["diagnostics"] = []  # filled below with shifted lines
        elif runs:
            exit_class = {
                "DPL_CONTRACT_VIOLATION": "contract",
                "DPL_ADMISSIBILITY": "admissibility",
            }
            expect["exit"] = exit_class.get(runtime or "", "runtime") if runtime else "ok"
            if runtime:
                expect["code"] = runtime
            expect["outputs"] = outputs
            trace: dict[str, Any] = {}
            if effects is not None:
                trace["counts"] = {"EFFECT": len(effects)}
            if trace_events:
                trace["present"] = sorted(set(trace_events))
            if trace:
                expect["trace"] = trace
        else:
            expect["exit"] = "ok"
        data["expect"] = expect
        if errors:
            for _, code in errors:
                for prefix, clause in _TYPE_CLAUSES:
                    if code.startswith(prefix) and clause not in data["spec"]:
                        data["spec"].append(clause)
            # The front matter shifts the program's lines: lines count from the case file's top.
            # Its own length depends on the line numbers it lists, so settle it by iterating.
            header_lines = 0
            for _ in range(5):
                expect["diagnostics"] = sorted(
                    {f"{code}@{line + header_lines}" for line, code in errors}
                )
                header_lines = _front(data).count("\n") + 2
            expect["diagnostics"] = sorted(
                {f"{code}@{line + header_lines}" for line, code in errors}
            )
            assert _front(data).count("\n") + 2 == header_lines
        target = CASES / "dpl" / relative
        write_case(target, data, text)
        count += 1
    return count


# Q basis states ----------------------------------------------------------------------------


def q_cases() -> int:
    count = 0
    for qubits in (1, 2, 3, 4):
        for value in range(2**qubits):
            bits = format(value, f"0{qubits}b")
            flips = [index for index in range(qubits) if (value >> index) & 1]
            lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{qubits}] q;"]
            lines.append(f"bit[{qubits}] c;")
            lines += [f"x q[{index}];" for index in flips]
            lines.append("c = measure q;")
            shots = 16 + 8 * value
            data = {
                "id": f"q.basis.n{qubits}-{bits}",
                "spec": [
                    "XDV-032-4.1",
                    "XDV-060-6",
                    "XDV-004-5.1",
                    "XDV-015-7",
                    "XDV-023-3.2",
                    "XDV-032-10",
                    "XDV-005-6.2",
                ],
                "description": (
                    f"X on qubits {flips or 'none'} of {qubits}, measured: every one of "
                    f"{shots} shots reads {bits} (measurement is the only Q→K projection)"
                ),
                "level": "hybrid",
                "requires": ["q"],
                "options": {"shots": shots, "seed": value},
                "expect": {
                    "exit": "ok",
                    "counts": {bits: shots},
                    "trace": {
                        "order": [
                            "RUN_START",
                            "DOMAIN_BIND",
                            "RESOURCE_RESERVE",
                            "DOMAIN_INVOKE",
                            "DOMAIN_RESULT",
                            "RESOURCE_RELEASE",
                            "RUN_END",
                        ],
                        "present": ["ATTESTATION", "CAPABILITY_GRANT"],
                        "counts": {"DOMAIN_INVOKE": 1, "DOMAIN_RESULT": 1},
                    },
                    "replay": "both",
                },
            }
            write_case(
                CASES / "q" / "basis" / f"n{qubits}_{bits}.qasm", data, "\n".join(lines) + "\n"
            )
            count += 1
    return count


# Φ problems --------------------------------------------------------------------------------


def _max_cut(n: int, edges: list[tuple[int, int, int]]) -> int:
    best = 0
    for sides in itertools.product((0, 1), repeat=n - 1):
        side = (0, *sides)
        cut = sum(w for u, v, w in edges if side[u] != side[v])
        best = max(best, cut)
    return best


def _ising_min(n: int, h: list[int], couplings: list[tuple[int, int, int]]) -> int:
    best = None
    for spins in itertools.product((-1, 1), repeat=n):
        energy = sum(h[i] * spins[i] for i in range(n))
        energy += sum(w * spins[i] * spins[j] for i, j, w in couplings)
        best = energy if best is None else min(best, energy)
    assert best is not None
    return best


def phi_cases() -> int:
    count = 0
    rng = random.Random(84)
    for index in range(24):
        n = 4 + index % 6
        pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
        chosen = sorted(rng.sample(pairs, rng.randint(n - 1, len(pairs))))
        edges = [(u, v, rng.choice((1, 1, 2, 3))) for u, v in chosen]
        best = _max_cut(n, edges)
        text = f"{n} {len(edges)}\n" + "".join(f"{u + 1} {v + 1} {w}\n" for u, v, w in edges)
        data = {
            "id": f"phi.maxcut.g{index:02d}-n{n}",
            "spec": ["XDV-061-5.3", "XDV-013-6.1"],
            "description": (
                f"MaxCut of a {n}-vertex, {len(edges)}-edge weighted graph on the exact Φ "
                f"provider: proved optimal, cut {best} (found by enumerating all partitions)"
            ),
            "level": "hybrid",
            "requires": ["phi"],
            "action": "phirun",
            "options": {"provider": "exact", "format": "gset", "seed": index},
            "input": {"problem": text},
            "expect": {
                "exit": "ok",
                "result": {"status": "OPTIMAL", "cut": best, "cut_bound": best},
                "trace": {
                    "order": [
                        "RESOURCE_RESERVE",
                        "DOMAIN_INVOKE",
                        "DOMAIN_RESULT",
                        "RESOURCE_RELEASE",
                    ],
                    "present": ["ATTESTATION"],
                },
            },
        }
        write_case(CASES / "phi" / "maxcut" / f"g{index:02d}.yaml", data)
        count += 1
    for index in range(12):
        n = 3 + index % 5
        h = [rng.randint(-2, 2) for _ in range(n)]
        pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
        couplings = [(u, v, rng.choice((-2, -1, 1, 2))) for u, v in pairs if rng.random() < 0.7]
        best = _ising_min(n, h, couplings)
        problem = {"kind": "ising", "n": n, "h": h, "J": [list(c) for c in couplings]}
        data = {
            "id": f"phi.ising.p{index:02d}-n{n}",
            "spec": ["XDV-061-5.3", "XDV-033-9"],
            "description": (
                f"An {n}-spin Ising problem on the exact Φ provider: the ground energy is "
                f"{best} (found by enumerating all spin assignments)"
            ),
            "level": "hybrid",
            "requires": ["phi"],
            "action": "phirun",
            "options": {"provider": "exact", "format": "bqm-json", "seed": index},
            "input": {"problem": problem},
            "expect": {
                "exit": "ok",
                "result": {"status": "OPTIMAL", "energy": best},
                "replay": "both",
            },
        }
        write_case(CASES / "phi" / "ising" / f"p{index:02d}.yaml", data)
        count += 1
    return count


# Tampered traces ---------------------------------------------------------------------------

_TAMPER = [
    # (name, mutation, expected code, clause)
    ("intact", None, "ok", "XDV-071-8"),
    ("preamble-magic", {"kind": "preamble"}, "TRACE_CORRUPT", "XDV-071-8"),
    ("trailing-bytes", {"kind": "append"}, "TRACE_CORRUPT", "XDV-071-8"),
    ("truncate-last", {"kind": "truncate", "entry": -1}, "TRACE_INCOMPLETE", "XDV-071-8"),
    ("truncate-middle", {"kind": "truncate", "entry": 3}, "TRACE_INCOMPLETE", "XDV-071-8"),
    ("drop-second", {"kind": "drop", "entry": 1}, "TRACE_CORRUPT", "XDV-071-8"),
    ("drop-middle", {"kind": "drop", "entry": 4}, "TRACE_CORRUPT", "XDV-071-8"),
    ("swap-middle", {"kind": "swap", "entry": 2}, "TRACE_CORRUPT", "XDV-071-8"),
    ("duplicate-middle", {"kind": "duplicate", "entry": 2}, "TRACE_CORRUPT", "XDV-071-8"),
]
for _entry in (0, 1, 3, -1):
    for _field in ("metadata", "header", "check", "prev_hash", "seq", "event_type"):
        _TAMPER.append(
            (
                f"flip-{_field.replace('_', '-')}-{'last' if _entry == -1 else _entry}",
                {"kind": "flip", "field": _field, "entry": _entry},
                "TRACE_CORRUPT",
                "XDV-071-8",
            )
        )


def trace_cases() -> int:
    count = 0
    for base in ("k", "dpl"):
        for name, mutation, code, clause in _TAMPER:
            expected = code
            data: dict[str, Any] = {
                "id": f"trace.tamper.{base}-{name}",
                "spec": [clause, "XDV-034-4.2"] + (["XDV-031-4.1"] if mutation is None else []),
                "description": (
                    f"The trace of a {'Python' if base == 'k' else 'DPL'} run, "
                    + (
                        "intact, verifies"
                        if mutation is None
                        else f"damaged ({json.dumps(mutation)}), is rejected with {expected}"
                    )
                ),
                "level": "core",
                "action": "verify",
                "input": {"base": f"../{base}.base.{'py' if base == 'k' else 'ds'}"},
                "expect": {"verify": expected},
            }
            if mutation is not None:
                data["input"]["mutate"] = mutation
            write_case(CASES / "trace" / "tamper" / f"{base}_{name}.yaml", data)
            count += 1
    return count


def main() -> None:
    for area in ("dpl", "q/basis", "phi/maxcut", "phi/ising", "trace/tamper"):
        shutil.rmtree(CASES / area, ignore_errors=True)
    total = dpl_cases() + q_cases() + phi_cases() + trace_cases()
    print(f"{total} generated cases", file=sys.stderr)


if __name__ == "__main__":
    main()
