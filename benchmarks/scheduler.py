"""Scheduler benchmark: a synthetic multi-tenant load under each policy, and decision cost.

**Load.** Eight VHMs (tenants) of weights 1, 1, 2, 2, 3, 3, 4, 4 each submit jobs at Poisson
arrival times in logical time (exponential gaps from a generator seeded per seed) until the
scenario's horizon: K jobs (10-30 steps of computation), Q jobs (2-6 qubits of the calibrated
27-qubit ``fake_kolkata`` snapshot, reserved with ``wait=True`` and held for a while) and Φ
jobs (a 16-32 step coherence window, ``resolve=True`` so a conflict moves the window). Every
job has a deadline (arrival + 4 x its own length + 50). Each job runs as a real process of
the kernel in its tenant's VHM, under the real policies and admission queue; the benchmark
only reads what happened (logical times, granted mappings). Two scenarios:

* ``contended``: the processor and the Q device are both oversubscribed and every tenant is
  backlogged, so the shares show what a policy gives each weight;
* ``Q-saturated``: the processor keeps up and the Q device is the bottleneck, so Q
  utilization and the fidelity/wait trade of placement show.

Per policy, the median and range over seeds of:

* Jain's fairness index of weighted shares over ``[horizon/5, horizon]``: a tenant's service is
  its K
  steps plus its Q qubit-steps / 27 plus its Φ window-steps (each normalized by the domain's
  capacity per step), divided by its weight (1.0 = service exactly in proportion to weight);
* Q utilization: qubit-steps held / (27 x steps) over ``[horizon/5, horizon]``;
* mean and p99 queue wait (arrival to first step for K, to the grant for Q, to the window's
  start for Φ), in logical steps;
* deadline miss ratio (jobs finishing after their deadline);
* mean estimated fidelity of the Q jobs: the Q domain's own pre-execution estimate
  (``xdv.domains.q.estimate``) of a GHZ circuit of the job's size on the granted profile and
  physical qubits.

**Decision cost** (CPU time of this process, so that a busy machine does not inflate it).
Microseconds per scheduling decision (take the next ready process by policy
key and queue it again) with 10, 1,000 and 10,000 processes queued, per policy, on the
kernel's real ready queue (the inlined heap for round-robin, ``PolicyQueue`` for the others);
and per admission grant, the time spent in the admission queue's grant per granted request
(choosing by policy key, trying the domain, recording ADMISSION_GRANT and RESOURCE_RESERVE,
making the process ready; a capability check and a refused try of the next request included)
with the same numbers of reservations waiting for one K lane. Targets: logarithmic growth, at
most 20 us per decision at 10,000.

Usage: ``python benchmarks/scheduler.py [--seeds N] [--repeat N] [--operations N] [--quick]``
(the default run takes two to three minutes on a busy two-core machine; ``--seeds 10`` for
more, ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import itertools
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from xdv.core import KDomainManager, KernelLimits, LogicalClock, parse_policy
from xdv.core._process import ProcessInfo, _Process
from xdv.core._ready import PolicyQueue
from xdv.domains.phi import PhiDomainManager
from xdv.domains.q import QDomainManager, estimate, load_profile, parse_circuit
from xdv.runtime import build_policy, make_kernel
from xdv.syscalls import Now, Release, Reserve, Sleep, Spawn
from xdv.trace import Domain

PROFILE = "fake_kolkata"
CAPACITY = 27
WEIGHTS = (1, 1, 2, 2, 3, 3, 4, 4)
POLICIES = (
    "round-robin",
    "priority:aging=64",
    "fair-share",
    "edf",
    f"fidelity:hold=180,profiles={PROFILE}",
)


@dataclass
class Job:
    index: int
    tenant: int
    kind: str
    arrival: int
    size: int  # K steps, Q qubits, Φ window steps
    hold: int  # Q: steps the qubits are held
    deadline: int
    start: int | None = None
    end: int | None = None
    mapping: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)  # K: the logical time of each step


@dataclass(frozen=True)
class Scenario:
    """A load: how often jobs arrive, their mix and the Q hold times."""

    name: str
    horizon: int
    gap: float  # mean arrival gap per tenant, in logical steps
    mix: tuple[float, float, float]  # K, Q, Φ
    hold: tuple[int, int]  # Q hold, steps


# Contended: the processor and the Q device are both oversubscribed, every tenant is
# backlogged, so shares show what the policy gives each weight. Q-saturated: the processor
# keeps up and the Q device is the bottleneck, so utilization and placement show.
SCENARIOS = (
    Scenario("contended", 1500, 50.0, (0.15, 0.7, 0.15), (60, 180)),
    Scenario("Q-saturated", 2400, 100.0, (0.15, 0.7, 0.15), (120, 360)),
)


def generate(seed: int, scenario: Scenario) -> list[Job]:
    """Poisson arrivals per tenant until the scenario's horizon."""
    rng = random.Random(seed)
    jobs: list[Job] = []
    for tenant in range(len(WEIGHTS)):
        now = 0.0
        while True:
            now += rng.expovariate(1.0 / scenario.gap)
            if now >= scenario.horizon:
                break
            kind = rng.choices(("K", "Q", "Φ"), scenario.mix)[0]
            arrival = int(now) + 1
            if kind == "K":
                size, hold = rng.randint(10, 30), 0
                length = size
            elif kind == "Q":
                size, hold = rng.randint(2, 6), rng.randint(*scenario.hold)
                length = hold
            else:
                size, hold = rng.randint(16, 32), 0
                length = size
            jobs.append(
                Job(len(jobs), tenant, kind, arrival, size, hold, arrival + 4 * length + 50)
            )
    jobs.sort(key=lambda job: (job.arrival, job.tenant, job.index))
    return jobs


def _k_job(job: Job) -> Generator[Any, Any, None]:
    for _ in range(job.size):
        job.steps.append((yield Now()))
    job.start, job.end = job.steps[0], job.steps[-1]


def _q_job(job: Job) -> Generator[Any, Any, None]:
    contract = yield Reserve("Q", "qubits", job.size, terms={"calibration": PROFILE}, wait=True)
    job.start = yield Now()
    job.mapping = list(contract.terms["mapping"])
    yield Sleep(job.hold)
    job.end = yield Now()
    yield Release(contract)


def _phi_job(job: Job) -> Generator[Any, Any, None]:
    now = yield Now()
    contract = yield Reserve(
        "Φ",
        "envelope",
        1,
        terms={"start": now + 1, "window": job.size, "provider": "phase"},
        resolve=True,
    )
    window = contract.terms["window"]
    job.start, job.end = window["start"], window["end"]  # the window is the Φ service
    now = yield Now()
    yield Sleep(max(1, window["end"] - now))
    yield Release(contract)


_ANCHORS: dict[str, Callable[[Job], Generator[Any, Any, None]]] = {
    "K": _k_job,
    "Q": _q_job,
    "Φ": _phi_job,
}
_DOMAINS = {"K": ("K",), "Q": ("K", "Q"), "Φ": ("K", "Φ")}


def _tenant(jobs: list[Job]) -> Generator[Any, Any, None]:
    for job in jobs:
        now = yield Now()
        if job.arrival > now:
            yield Sleep(job.arrival - now)
        yield Spawn(
            _ANCHORS[job.kind],
            (job,),
            name=f"{job.kind}{job.index}",
            priority=WEIGHTS[job.tenant],
            domains=_DOMAINS[job.kind],
            deadline=job.deadline,
        )


def run_load(spec: str, seed: int, scenario: Scenario) -> tuple[list[Job], int]:
    jobs = generate(seed, scenario)
    kernel = make_kernel(
        seed,
        domains=[
            KDomainManager(),
            QDomainManager(default_calibration=PROFILE),
            PhiDomainManager(),
        ],
        policy=build_policy(spec),
        limits=KernelLimits(processes_max=len(jobs) + 64),
    )
    for tenant, weight in enumerate(WEIGHTS):
        vhm = kernel.create_vhm(f"tenant{tenant}", weight=weight)
        kernel.spawn(
            _tenant,
            [job for job in jobs if job.tenant == tenant],
            name=f"t{tenant}",
            vhm=vhm,
            domains=("K", "Q", "Φ"),  # a child receives only rights its parent holds
        )
    result = kernel.run()
    if not result.ok:
        failed = {pid: status.message for pid, status in result.exits.items() if not status.ok}
        raise SystemExit(f"{spec} seed {seed}: the run failed: {list(failed.items())[:3]}")
    return jobs, result.logical_time


_CIRCUITS: dict[int, Any] = {}


def ghz_fidelity(size: int, mapping: list[int]) -> float:
    circuit = _CIRCUITS.get(size)
    if circuit is None:
        lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{size}] q;", f"bit[{size}] c;"]
        lines.append("h q[0];")
        lines += [f"cx q[{i}], q[{i + 1}];" for i in range(size - 1)]
        lines.append("c = measure q;")
        circuit = _CIRCUITS[size] = parse_circuit("\n".join(lines) + "\n")
    return estimate(circuit.circuit, load_profile(PROFILE), mapping, "benchmark").fidelity


def _overlap(start: int, end: int, low: int, high: int) -> int:
    return max(0, min(end, high) - max(start, low))


def metrics(jobs: list[Job], horizon: int) -> dict[str, float]:
    low = horizon // 5  # the queues fill first: shares are measured over [horizon/5, horizon]
    service = [0.0] * len(WEIGHTS)
    q_busy = 0
    waits: list[int] = []
    misses = 0
    fidelities = []
    for job in jobs:
        assert job.start is not None and job.end is not None, job
        if job.kind == "K":
            service[job.tenant] += sum(1 for step in job.steps if low <= step < horizon)
        elif job.kind == "Q":
            held = _overlap(job.start, job.end, low, horizon)
            service[job.tenant] += job.size * held / CAPACITY
            q_busy += job.size * held
            fidelities.append(ghz_fidelity(job.size, job.mapping))
        else:
            service[job.tenant] += _overlap(job.start, job.end, low, horizon)
        waits.append(job.start - job.arrival)
        misses += job.end > job.deadline  # K: last step, Q: release, Φ: window end
    shares = [s / w for s, w in zip(service, WEIGHTS, strict=True)]
    jain = sum(shares) ** 2 / (len(shares) * sum(x * x for x in shares))
    waits.sort()
    return {
        "jain": jain,
        "q_util": q_busy / (CAPACITY * (horizon - low)),
        "wait_mean": statistics.fmean(waits),
        "wait_p99": waits[min(len(waits) - 1, math.ceil(0.99 * len(waits)) - 1)],
        "miss": misses / len(jobs),
        "fidelity": statistics.fmean(fidelities) if fidelities else float("nan"),
    }


def _median_range(values: list[float], digits: int) -> str:
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


# ---------------------------------------------------------------------- decision cost


def _processes(count: int, rng: random.Random) -> list[_Process]:
    found = []
    for pid in range(1, count + 1):
        process = _Process(
            ProcessInfo(pid, "p", 0, rng.randint(0, 4), pid % 8, 0, (Domain.K,)), None
        )
        process.deadline = rng.randint(0, 10 * count) if pid % 2 else None
        found.append(process)
    return found


def dispatch_cost(spec: str, queued: int, operations: int) -> float:
    """Microseconds per decision: take the next ready process, queue it again."""
    rng = random.Random(queued)
    processes = _processes(queued, rng)
    clock = LogicalClock()
    if spec == "round-robin":
        ready: list[tuple[Any, ...]] = []
        for process in processes:
            process.ready_at = 1
            heapq.heappush(ready, (1, -process.priority, process.pid, process))
        pop, push = heapq.heappop, heapq.heappush
        gc.collect()
        started = time.process_time()
        for now in range(1, operations + 1):
            process = pop(ready)[-1]
            process.ready_at = now + 1
            push(ready, (now + 1, -process.priority, process.pid, process))
        return (time.process_time() - started) / operations * 1e6
    policy = build_policy(spec)
    policy.attach(lambda vhm: WEIGHTS[vhm % len(WEIGHTS)])
    queue = PolicyQueue(policy, clock, itertools.count(1).__next__)
    for process in processes:
        process.ready_at = 1
        queue.push(process, 1)
    pop_item, requeue = queue.pop_item, queue.push
    gc.collect()
    started = time.process_time()
    for now in range(1, operations + 1):
        clock.now = now
        process = pop_item()[-1]
        process.ready_at = now + 1
        requeue(process, now + 1)
    return (time.process_time() - started) / operations * 1e6


def admission_cost(spec: str, waiting: int) -> float:
    """Microseconds per admission decision, with ``waiting`` requests queued for one K lane:
    the time spent in the admission queue's grant (choosing the next request by policy key,
    reserving it with the domain, recording ADMISSION_GRANT and RESOURCE_RESERVE, making its
    process ready) per grant, as each granted process releases the lane at once."""

    def holder() -> Generator[Any, Any, None]:
        contract = yield Reserve("K", "lane", 1)
        yield Sleep(3)  # every waiter queues meanwhile
        yield Release(contract)

    def waiter() -> Generator[Any, Any, None]:
        contract = yield Reserve("K", "lane", 1, wait=True)
        yield Release(contract)

    kernel = make_kernel(
        0,
        domains=[KDomainManager(lanes=1)],
        policy=parse_policy(spec),
        limits=KernelLimits(processes_max=waiting + 8),
    )
    kernel.spawn(holder, priority=10, deadline=0)
    for _ in range(waiting):
        kernel.spawn(waiter)
    admission = kernel._admission
    grant = admission.grant
    spent = [0.0]
    clock = time.process_time

    def timed(domain: Domain) -> int:
        started = clock()
        granted = grant(domain)
        spent[0] += clock() - started
        return granted

    admission.grant = timed  # type: ignore[method-assign]
    gc.collect()
    result = kernel.run()
    assert result.ok and admission.granted == waiting
    return spent[0] / waiting * 1e6


def run_scenario(scenario: Scenario, seeds: int) -> None:
    print(
        f"{'policy':34} {'Jain':>18} {'Q util':>18} {'wait mean':>20} {'wait p99':>20} "
        f"{'deadline miss':>18} {'Q fidelity':>18}"
    )
    summary: dict[str, dict[str, list[float]]] = {}
    for spec in POLICIES:
        rows: dict[str, list[float]] = {}
        for seed in range(1, seeds + 1):
            jobs, _ = run_load(spec, seed, scenario)
            for name, value in metrics(jobs, scenario.horizon).items():
                rows.setdefault(name, []).append(value)
        summary[spec] = rows
        print(
            f"{spec:34} {_median_range(rows['jain'], 3):>18} "
            f"{_median_range(rows['q_util'], 3):>18} {_median_range(rows['wait_mean'], 1):>20} "
            f"{_median_range(rows['wait_p99'], 0):>20} {_median_range(rows['miss'], 3):>18} "
            f"{_median_range(rows['fidelity'], 4):>18}",
            flush=True,
        )
    fifo, placed = summary["round-robin"], summary[POLICIES[-1]]
    gain = [p / f for p, f in zip(placed["fidelity"], fifo["fidelity"], strict=True)]
    cost = [p / f for p, f in zip(placed["wait_mean"], fifo["wait_mean"], strict=True)]
    print(
        f"fidelity-aware vs FIFO (round-robin), per seed: mean estimated Q fidelity "
        f"x{_median_range(gain, 3)}, mean queue wait x{_median_range(cost, 3)}"
    )
    print(
        f"fair-share Jain {statistics.median(summary['fair-share']['jain']):.3f} (target >= "
        f"0.98 when contended); Q utilization, round-robin "
        f"{statistics.median(fifo['q_util']):.3f}, fair-share "
        f"{statistics.median(summary['fair-share']['q_util']):.3f} (target >= 0.9 when "
        "Q-saturated)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="repeats of the cost timings")
    parser.add_argument("--operations", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="one seed, short horizons")
    args = parser.parse_args(argv)
    scenarios = SCENARIOS
    if args.quick:
        args.seeds, args.repeat, args.operations = 1, 1, 2000
        scenarios = tuple(Scenario(s.name, s.horizon // 3, s.gap, s.mix, s.hold) for s in SCENARIOS)
    print(f"python {sys.version.split()[0]}")
    for scenario in scenarios:
        print(
            f"\nload '{scenario.name}': 8 tenants of weights {list(WEIGHTS)}, Poisson arrivals "
            f"(mean gap {scenario.gap:g} steps each) until L={scenario.horizon}; K/Q/Φ mix "
            f"{scenario.mix}, Q ({PROFILE}, {CAPACITY} qubits) held {scenario.hold[0]}-"
            f"{scenario.hold[1]} steps; {args.seeds} seeds; median (range) over seeds"
        )
        run_scenario(scenario, args.seeds)
    print()
    print(f"decision cost, us per decision: median (range) over {args.repeat} repeats")
    sizes = (10, 1000, 10000)
    print(f"{'ready queue':34} " + " ".join(f"{f'{n} queued':>22}" for n in sizes))
    for spec in ("round-robin", "priority", "fair-share", "edf", "priority+fair-share"):
        cells = []
        for size in sizes:
            values = [dispatch_cost(spec, size, args.operations) for _ in range(args.repeat)]
            cells.append(f"{_median_range(values, 2):>22}")
        print(f"{spec:34} " + " ".join(cells), flush=True)
    print(
        f"{'admission grant (kernel path)':34} " + " ".join(f"{f'{n} waiting':>22}" for n in sizes)
    )
    for spec in ("round-robin",):
        cells = []
        for size in sizes:
            values = [admission_cost(spec, size) for _ in range(args.repeat)]
            cells.append(f"{_median_range(values, 1):>22}")
        print(f"{spec:34} " + " ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
