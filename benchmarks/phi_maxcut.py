"""MaxCut on G-set graphs through the Φ manager, against dwave-samplers' simulated annealing.

Usage: python benchmarks/phi_maxcut.py [--graphs G1,G22,G43,G55] [--replicas N] [--steps N]
       [--sa-reads N] [--sa-sweeps N] [--seed N] [--seeds N] [--exact-work-limit W]

For each graph and each of ``--seeds`` seeds (``--seed``, ``--seed`` + 1, ...) it runs one Φ job
(kernel, coherence-window contract, phase provider, classical verification, witness) and one
SimulatedAnnealingSampler call with that seed, back to back in the same process, and prints the
median and range (min–max) over the seeds of the cut, of cut / best-known (on the median cut)
and of the wall time, for both. The Φ time covers the whole job, reading the graph included; SA's
time covers the sampler call, and reading the graph and building its model is timed apart (the
one-off cost before SA's first sample). The test data lives in ../shared/testdata/gset/ relative
to the repository root. This script takes minutes; it is not part of the test run.
"""

from __future__ import annotations

import argparse
import csv
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


def run_sa(path: Path, reads: int, sweeps: int, seed: int) -> tuple[float, float, float]:
    """SA's cut, the wall time of the sampler call, and the wall time of reading the graph and
    building the model before it."""
    import dimod
    from dwave.samplers import SimulatedAnnealingSampler

    from xdv.domains.phi import parse_gset

    setup = time.perf_counter()
    problem, total = parse_gset(path)
    bqm = dimod.BinaryQuadraticModel.from_ising(
        {},
        {
            (int(i), int(j)): float(w)
            for i, j, w in zip(problem.rows, problem.cols, problem.weights, strict=True)
        },
    )
    start = time.perf_counter()
    setup = start - setup
    sampleset = SimulatedAnnealingSampler().sample(
        bqm, num_reads=reads, num_sweeps=sweeps, seed=seed
    )
    elapsed = time.perf_counter() - start
    energy = float(sampleset.first.energy)
    return (total - energy) / 2, elapsed, setup


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


def run_phi(path: Path, replicas: int, steps: int, seed: int) -> tuple[float, float, float]:
    import xdv.domains.phi  # noqa: F401  (imported before timing, as SA's modules are)

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        report = _run_job(
            path, folder, seed, provider="phase", schedule={"replicas": replicas, "steps": steps}
        )
        elapsed = time.perf_counter() - start
    return float(report["cut"]), elapsed, float(report["stability"]["stability"])


def run_exact(path: Path, work_limit: float, seed: int) -> tuple[float, float, str, float]:
    """The exact provider's cut, wall time, status and cut bound (``optimize``)."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        report = _run_job(path, folder, seed, provider="exact", work_limit=work_limit)
        elapsed = time.perf_counter() - start
    return float(report["cut"]), elapsed, str(report["status"]), float(report["cut_bound"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", default="G1,G22,G43,G55")
    parser.add_argument("--replicas", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6000)
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
    print(
        f"phase provider: {args.replicas} replicas x {args.steps} steps; "
        f"SA: {args.sa_reads} reads x {args.sa_sweeps} sweeps; seeds {seeds.start}-"
        f"{seeds.stop - 1}: medians (ranges) over {len(seeds)} seeds; wall times in seconds",
        flush=True,
    )
    for name in args.graphs.split(","):
        path = DATA / f"{name}.txt"
        best = known[name]
        phi_cuts, phi_times, sa_cuts, sa_times, sa_setups = [], [], [], [], []
        exact: list[tuple[float, float, str, float]] = []
        for seed in seeds:  # both solvers per seed, back to back
            phi_cut, phi_time, _ = run_phi(path, args.replicas, args.steps, seed)
            sa_cut, sa_time, sa_setup = run_sa(path, args.sa_reads, args.sa_sweeps, seed)
            phi_cuts.append(phi_cut)
            phi_times.append(phi_time)
            sa_cuts.append(sa_cut)
            sa_times.append(sa_time)
            sa_setups.append(sa_setup)
            if args.exact_work_limit is not None:
                exact.append(run_exact(path, args.exact_work_limit, seed))
        print(f"{name} (best known cut {best})", flush=True)
        print(
            f"  phi  cut {spread(phi_cuts, 0)}, "
            f"{statistics.median(phi_cuts) / best:.4f} of best; {spread(phi_times, 2)} s "
            "(the whole job)",
            flush=True,
        )
        print(
            f"  SA   cut {spread(sa_cuts, 0)}, "
            f"{statistics.median(sa_cuts) / best:.4f} of best; {spread(sa_times, 2)} s "
            f"(sampling; reading the graph and building the model: {spread(sa_setups, 2)} s)",
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
