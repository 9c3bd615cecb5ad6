"""MaxCut on G-set graphs: the Φ phase provider against dwave-samplers' simulated annealing.

Usage: python benchmarks/phi_maxcut.py [--graphs G1,G22,G43,G55,G11,G14] [--replicas N]
       [--ladder 250,500,...] [--tabu N] [--sa-reads N] [--sa-sweeps N] [--seed N] [--seeds N]
       [--exact-work-limit W]

For each graph and each of ``--seeds`` seeds it runs, in alternating rounds in one process:
one SimulatedAnnealingSampler call (``--sa-reads`` reads of ``--sa-sweeps`` sweeps: "SA's
run"), then the phase provider on a ladder of anneal lengths (``--replicas`` replicas, steps
from ``--ladder``, each rung a separate run with the same seed) until a rung has both reached
SA's cut and taken longer than SA. Both sides are timed in CPU seconds of this process (the
machine may be shared; CPU time is what a loaded machine distorts least) on equal work: SA's
sampler call against the provider's anneal and readout (reading the graph and building the
model are apart, timed as one-off costs). Per graph it prints medians and ranges (min–max) over
the seeds of

* SA's cut and time;
* "equal time": the cut of the longest rung that took no more CPU time than SA's run, and
  that rung's time;
* "to SA's cut": the CPU time of the first rung whose cut reached SA's cut in that round (a
  single run, the shorter rungs before it not added; "never" when no rung reached it), and
  its ratio to SA's time;
* the whole Φ job (kernel, contract, classical verification, witness, trace) at the
  equal-time rung, in CPU seconds: what ``xdv phirun`` adds around the solver.

The first Φ job and the first SA call are timed apart (one-off costs: loading the compiled
kernels, or compiling them when no cache exists). The test data lives in
../shared/testdata/gset/ relative to the repository root. This script takes minutes; it is not
part of the test run.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "gset"


def best_known() -> dict[str, int]:
    with (DATA / "BEST_KNOWN.tsv").open(encoding="utf-8") as handle:
        return {
            row["instance"]: int(row["best_known_cut"])
            for row in csv.DictReader(handle, delimiter="\t")
        }


def spread(values: list[float], digits: int) -> str:
    """``median (min–max)`` of ``values``."""
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{middle:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def _model(path: Path) -> tuple[Any, float, Any]:
    import dimod

    from xdv.domains.phi import parse_gset

    problem, total = parse_gset(path)
    bqm = dimod.BinaryQuadraticModel.from_ising(
        {},
        {
            (int(i), int(j)): float(w)
            for i, j, w in zip(problem.rows, problem.cols, problem.weights, strict=True)
        },
    )
    return problem, total, bqm


def run_sa(bqm: Any, total: float, reads: int, sweeps: int, seed: int) -> tuple[float, float]:
    """SA's cut and the CPU time of the sampler call."""
    from dwave.samplers import SimulatedAnnealingSampler

    start = time.process_time()
    sampleset = SimulatedAnnealingSampler().sample(
        bqm, num_reads=reads, num_sweeps=sweeps, seed=seed
    )
    elapsed = time.process_time() - start
    return (total - float(sampleset.first.energy)) / 2, elapsed


def run_solver(
    problem: Any, total: float, schedule: dict[str, Any], seed: int
) -> tuple[float, float]:
    """The phase provider's cut and the CPU time of its anneal and readout (polish included)."""
    import numpy as np

    from xdv.domains.phi import AnnealSchedule, PhaseOscillatorProvider

    provider = PhaseOscillatorProvider()
    plan = AnnealSchedule.from_terms(schedule, provider.calibration)
    start = time.process_time()
    provider.anneal(1, problem, plan, np.random.default_rng(seed))
    readout = provider.readout(1, plan.polish, plan.tabu)
    elapsed = time.process_time() - start
    return (total - readout["energy"]) / 2, elapsed


def _run_job(path: Path, folder: str, seed: int, **options: Any) -> dict[str, Any]:
    """One Φ job through the runtime, as ``xdv phirun`` runs it (no audit; the witness signed
    with a key made in ``folder``)."""
    from xdv.runtime import RunRequest, phi_job, phi_report, run

    request = RunRequest(
        phi_job(path, problem_format="gset", **options),
        seed=seed,
        trace=Path(folder) / "run.xdvt",
        audit=False,
        key_store=Path(folder) / "keys",
        witness_dir=Path(folder),
        handle_signals=False,
    )
    return phi_report(run(request), source=path.name, problem_format="gset")


def run_job(path: Path, schedule: dict[str, Any], seed: int) -> tuple[float, float]:
    """The whole Φ job's cut and CPU time."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.process_time()
        report = _run_job(path, folder, seed, provider="phase", schedule=schedule)
        elapsed = time.process_time() - start
    return float(report["cut"]), elapsed


def run_exact(path: Path, work_limit: float, seed: int) -> tuple[float, float, str, float]:
    """The exact provider's cut, CPU time, status and cut bound (``optimize``)."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.process_time()
        report = _run_job(path, folder, seed, provider="exact", work_limit=work_limit)
        elapsed = time.process_time() - start
    return float(report["cut"]), elapsed, str(report["status"]), float(report["cut_bound"])


def climb(
    problem: Any,
    total: float,
    base: dict[str, Any],
    ladder: list[int],
    seed: int,
    sa_cut: float,
    sa_time: float,
) -> tuple[tuple[float, float, int] | None, float | None]:
    """Run the ladder; return the equal-time rung (cut, time, steps) and the time to SA's cut."""
    equal: tuple[float, float, int] | None = None
    reached: float | None = None
    for steps in ladder:
        cut, elapsed = run_solver(problem, total, {**base, "steps": steps}, seed)
        if elapsed <= sa_time:
            equal = (cut, elapsed, steps)
        if reached is None and cut >= sa_cut:
            reached = elapsed
        if elapsed > sa_time and reached is not None:
            break
    return equal, reached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", default="G1,G22,G43,G55,G11,G14")
    parser.add_argument("--replicas", type=int, default=32)
    parser.add_argument(
        "--ladder", default="125,180,250,350,500,700,1000,1400,2000,2800,4000,5600,8000,11300"
    )
    parser.add_argument("--tabu", type=int, default=0, help="tabu iterations per replica")
    parser.add_argument("--sa-reads", type=int, default=32)
    parser.add_argument("--sa-sweeps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1, help="the first seed")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per graph")
    parser.add_argument(
        "--exact-work-limit",
        type=float,
        help="also run the exact provider (CP-SAT) with this deterministic-time limit",
    )
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"no G-set data at {DATA}")
    known = best_known()
    seeds = range(args.seed, args.seed + max(1, args.seeds))
    ladder = [int(step) for step in args.ladder.split(",")]
    base = {"replicas": args.replicas, "tabu": args.tabu}
    print(
        f"phase provider: {args.replicas} replicas, tabu {args.tabu}, steps ladder {ladder}; "
        f"SA: {args.sa_reads} reads x {args.sa_sweeps} sweeps; seeds {seeds.start}-"
        f"{seeds.stop - 1}: medians (ranges) over {len(seeds)} seeds; CPU seconds",
        flush=True,
    )
    first = DATA / "G11.txt"
    start = time.process_time()
    run_job(first, {**base, "steps": 10}, 0)
    print(f"one-off: first Φ job (G11, 10 steps) {time.process_time() - start:.2f} s", end="")
    problem, total, bqm = _model(first)
    start = time.process_time()
    run_sa(bqm, total, 1, 10, 0)
    print(f"; first SA call {time.process_time() - start:.2f} s", flush=True)
    for name in args.graphs.split(","):
        path = DATA / f"{name}.txt"
        best = known[name]
        start = time.process_time()
        problem, total, bqm = _model(path)
        setup = time.process_time() - start
        sa_cuts, sa_times, eq_cuts, eq_times, to_cut, ratios, jobs = [], [], [], [], [], [], []
        exact: list[tuple[float, float, str, float]] = []
        wins = 0
        for seed in seeds:  # alternating rounds: SA, then the Φ ladder, per seed
            sa_cut, sa_time = run_sa(bqm, total, args.sa_reads, args.sa_sweeps, seed)
            sa_cuts.append(sa_cut)
            sa_times.append(sa_time)
            equal, reached = climb(problem, total, base, ladder, seed, sa_cut, sa_time)
            if equal is not None:
                eq_cuts.append(equal[0])
                eq_times.append(equal[1])
                wins += equal[0] >= sa_cut
                jobs.append(run_job(path, {**base, "steps": equal[2]}, seed)[1])
            to_cut.append(reached if reached is not None else math.inf)
            ratios.append((reached if reached is not None else math.inf) / sa_time)
            if args.exact_work_limit is not None:
                exact.append(run_exact(path, args.exact_work_limit, seed))
        print(f"{name} (best known cut {best}; reading it: {setup:.2f} s)", flush=True)
        print(
            f"  SA          cut {spread(sa_cuts, 0)}, {statistics.median(sa_cuts) / best:.4f} "
            f"of best; {spread(sa_times, 2)} s",
            flush=True,
        )
        if eq_cuts:
            print(
                f"  phi (equal) cut {spread(eq_cuts, 0)}, "
                f"{statistics.median(eq_cuts) / best:.4f} of best; {spread(eq_times, 2)} s; "
                f">= SA's cut in {wins}/{len(seeds)} rounds; the whole job "
                f"{spread(jobs, 2)} s",
                flush=True,
            )
        else:
            print("  phi (equal) no rung fit in SA's time", flush=True)
        print(
            f"  phi to SA's cut {spread(to_cut, 2)} s, {spread(ratios, 2)} x SA's time",
            flush=True,
        )
        if exact:
            cuts = [cut for cut, _, _, _ in exact]
            statuses = ", ".join(sorted({status for _, _, status, _ in exact}))
            print(
                f"  exact (work {args.exact_work_limit:g}) cut {spread(cuts, 0)}, "
                f"{statistics.median(cuts) / best:.4f} of best; "
                f"{spread([elapsed for _, elapsed, _, _ in exact], 2)} s (the whole job); "
                f"{statuses}; cut <= {spread([bound for _, _, _, bound in exact], 0)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
