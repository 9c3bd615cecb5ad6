"""MaxCut on G-set graphs through the Φ manager, against dwave-samplers' simulated annealing.

Usage: python benchmarks/phi_maxcut.py [--graphs G1,G22,G43,G55] [--replicas N] [--steps N]
       [--sa-reads N] [--sa-sweeps N] [--seed N]

For each graph it runs one Φ job (kernel, coherence-window contract, phase provider, classical
verification, witness) and one SimulatedAnnealingSampler call in the same process, and prints
cut / best-known and wall time for both. The test data lives in ../shared/testdata/gset/
relative to the repository root. This script takes minutes; it is not part of the test run.
"""

from __future__ import annotations

import argparse
import csv
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


def run_sa(path: Path, reads: int, sweeps: int, seed: int) -> tuple[float, float]:
    import dimod
    from dwave.samplers import SimulatedAnnealingSampler

    from xdv.domains.phi import parse_gset

    problem, total = parse_gset(path)
    bqm = dimod.BinaryQuadraticModel.from_ising(
        {},
        {
            (int(i), int(j)): float(w)
            for i, j, w in zip(problem.rows, problem.cols, problem.weights, strict=True)
        },
    )
    start = time.perf_counter()
    sampleset = SimulatedAnnealingSampler().sample(
        bqm, num_reads=reads, num_sweeps=sweeps, seed=seed
    )
    elapsed = time.perf_counter() - start
    energy = float(sampleset.first.energy)
    return (total - energy) / 2, elapsed


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
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--exact-work-limit",
        type=float,
        help="also run the exact provider (CP-SAT) with this deterministic-time limit",
    )
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"no G-set data at {DATA}")
    known = best_known()
    print(
        f"phase provider: {args.replicas} replicas x {args.steps} steps; "
        f"SA: {args.sa_reads} reads x {args.sa_sweeps} sweeps; seed {args.seed}"
    )
    print(
        f"{'graph':6} {'best':>7} {'phi cut':>8} {'phi/best':>9} {'phi s':>7} "
        f"{'SA cut':>8} {'SA/best':>8} {'SA s':>7}"
    )
    for name in args.graphs.split(","):
        path = DATA / f"{name}.txt"
        phi_cut, phi_time, _ = run_phi(path, args.replicas, args.steps, args.seed)
        sa_cut, sa_time = run_sa(path, args.sa_reads, args.sa_sweeps, args.seed)
        best = known[name]
        print(
            f"{name:6} {best:7d} {phi_cut:8.0f} {phi_cut / best:9.4f} {phi_time:7.2f} "
            f"{sa_cut:8.0f} {sa_cut / best:8.4f} {sa_time:7.2f}",
            flush=True,
        )
        if args.exact_work_limit is not None:
            cut, elapsed, status, bound = run_exact(path, args.exact_work_limit, args.seed)
            print(
                f"{'':6} exact (work {args.exact_work_limit:g}): cut {cut:.0f} "
                f"({cut / best:.4f} of best), {status}, cut <= {bound:.0f}, {elapsed:.2f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
