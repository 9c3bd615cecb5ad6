"""What the XDV kernel path costs a Qiskit user: ``xdv.run_circuit`` and ``XdvSampler`` against
Qiskit Aer called directly, on equal work (the same circuit, shots and noise model).

Per round, both sides run back to back (alternating which goes first), so a slow spell of the
shared machine hits both; CPU time of this process (``time.process_time``) is measured, not
wall time, since the machine is loaded. Figures: median and range (min–max) over rounds and
seeds, never the best. The one-off cost (the first call in the process: imports, key store,
first transpilation) is timed on its own.

Run: ``python benchmarks/qiskit_interfaces.py [--rounds N] [--shots S]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from statistics import median
from typing import Any


def ghz(n: int) -> Any:
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(n, n)
    circuit.h(0)
    for qubit in range(n - 1):
        circuit.cx(qubit, qubit + 1)
    circuit.measure(range(n), range(n))
    return circuit


def cpu(action: Callable[[], Any]) -> float:
    start = time.process_time()
    action()
    return time.process_time() - start


def summary(values: list[float]) -> str:
    low, high = min(values) * 1000, max(values) * 1000
    return f"median {median(values) * 1000:8.1f} ms  range {low:.1f}–{high:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shots", type=int, default=2000)
    arguments = parser.parse_args()
    circuit = ghz(5)
    shots = arguments.shots

    first = time.process_time()
    import xdv
    from xdv.qiskit import XdvSampler

    xdv.run_circuit(circuit, shots=10)
    print(
        f"one-off: first run_circuit in the process (XDV imports, node keys, first job): "
        f"{(time.process_time() - first) * 1000:.0f} ms CPU"
    )

    from qiskit import transpile
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    ideal = AerSimulator()
    noisy = AerSimulator.from_backend(FakeManilaV2())
    compiled_ideal = transpile(circuit, ideal, optimization_level=0)
    mapping = xdv.run_circuit(circuit, shots=10, calibration="fake_manila", noise=True).contract[
        "mapping"
    ]
    compiled_noisy = transpile(
        circuit, noisy, initial_layout=mapping, optimization_level=0, seed_transpiler=0
    )
    sampler = XdvSampler()

    sides: dict[str, dict[str, Callable[[int], Any]]] = {
        "ideal": {
            "xdv.run_circuit": lambda seed: xdv.run_circuit(circuit, shots=shots, seed=seed),
            "XdvSampler": lambda seed: sampler.run([circuit], shots=shots).result(),
            "Aer direct": lambda seed: ideal.run(
                compiled_ideal, shots=shots, seed_simulator=seed
            ).result(),
        },
        "noisy fake_manila": {
            "xdv.run_circuit": lambda seed: xdv.run_circuit(
                circuit, shots=shots, seed=seed, calibration="fake_manila", noise=True
            ),
            "Aer from_backend": lambda seed: noisy.run(
                compiled_noisy, shots=shots, seed_simulator=seed
            ).result(),
        },
    }
    for label, runners in sides.items():
        times: dict[str, list[float]] = {name: [] for name in runners}
        for round_number in range(arguments.rounds):
            order = list(runners.items())
            if round_number % 2:
                order.reverse()
            for seed in (1, 2, 3):
                for name, runner in order:
                    times[name].append(cpu(lambda runner=runner, seed=seed: runner(seed)))
        print(f"{label}: GHZ-5, {shots} shots, {arguments.rounds} rounds x 3 seeds (CPU time)")
        for name, values in times.items():
            print(f"  {name:18s} {summary(values)}")


if __name__ == "__main__":
    main()
