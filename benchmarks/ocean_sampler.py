"""What running a dimod model through XDV costs: ``XdvSampler("sa")`` against dwave-samplers'
``SimulatedAnnealingSampler`` called directly, on the same models, reads, sweeps and seeds.

Usage: python benchmarks/ocean_sampler.py [--sizes 50,200,800] [--reads N] [--sweeps N]
       [--seeds N] [--seed S]

For each size n it builds a sparse SPIN model (a ring plus n/2 random chords, ±1 weights from
dimod's ``generators.ran_r``, all fixed by the seed) and, for each seed,
calls both samplers in alternating order (the direct call first on even seeds, XDV first on odd
ones, so drift in the shared machine's load falls on both), timing the process CPU of each call
(``time.process_time``: the machine is shared, and CPU time is what the overhead costs). It
prints the median and range over the seeds of both times, of XDV's overhead (XDV − direct) and
of the best energy each found (they must be equal: same sampler, same parameters; XDV derives
the sampler's seed from the run seed, so the reads differ, not their quality). The one-off costs
(importing XDV's runtime and the first XdvSampler call, which creates the node key) are timed
apart. Not part of the test run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def spread(values: list[float], digits: int) -> str:
    """``median (min–max)`` of ``values``."""
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{middle:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def model(n: int, seed: int) -> Any:
    """A sparse SPIN model on n variables: a ring plus n/2 random chords, ±1 weights."""
    import dimod
    import numpy as np

    rng = np.random.default_rng(seed)
    edges = {(i, (i + 1) % n) for i in range(n)}
    while len(edges) < n + n // 2:
        u, v = (int(x) for x in rng.integers(0, n, size=2))
        if u != v and (v, u) not in edges:
            edges.add((u, v))
    return dimod.generators.ran_r(1, sorted(edges), seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,200,800")
    parser.add_argument("--reads", type=int, default=16)
    parser.add_argument("--sweeps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="xdv-bench-")
    import os

    os.environ["XDV_HOME"] = home
    started = time.process_time()
    import dimod
    from dwave.samplers import SimulatedAnnealingSampler

    from xdv.dimod import XdvSampler

    imported = time.process_time() - started
    direct = SimulatedAnnealingSampler()
    xdv = XdvSampler("sa", witness_dir=Path(home) / "witnesses")
    first_model = model(20, args.seed)
    started = time.process_time()
    xdv.sample(first_model, num_reads=1, num_sweeps=10)
    first_call = time.process_time() - started
    print(
        f"one-off: import xdv.dimod {imported:.3f} s CPU; first call (node key) {first_call:.3f} s"
    )
    print(
        f"{'n':>5} {'edges':>6} | {'direct s':>22} | {'XDV s':>22} | {'overhead s':>22} |"
        " best energy (direct / XDV)"
    )
    for n in (int(size) for size in args.sizes.split(",")):
        times: dict[str, list[float]] = {"direct": [], "xdv": []}
        energies: dict[str, list[float]] = {"direct": [], "xdv": []}
        bqm = None
        for index in range(args.seeds):
            seed = args.seed + index
            bqm = model(n, seed)

            calls = {"direct": direct, "xdv": xdv}
            order = ("direct", "xdv") if index % 2 == 0 else ("xdv", "direct")
            for name in order:
                begin = time.process_time()
                result = calls[name].sample(
                    bqm, num_reads=args.reads, num_sweeps=args.sweeps, seed=seed
                )
                times[name].append(time.process_time() - begin)
                energies[name].append(float(result.first.energy))
        overhead = [x - d for x, d in zip(times["xdv"], times["direct"], strict=True)]
        assert isinstance(bqm, dimod.BinaryQuadraticModel)
        print(
            f"{n:>5} {bqm.num_interactions:>6} | {spread(times['direct'], 4):>22} | "
            f"{spread(times['xdv'], 4):>22} | {spread(overhead, 4):>22} | "
            f"{statistics.median(energies['direct']):g} / {statistics.median(energies['xdv']):g}"
        )


if __name__ == "__main__":
    main()
