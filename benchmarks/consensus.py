"""Consensus benchmarks: the cost of the cluster's BFT agreement for n = 4, 7 and 10 replicas.

Every run simulates the whole replica set in this one process (``simulate`` from the consensus
simulator: seeded delivery order, delays of 0..1 ticks, no faults) until every replica has
decided ``--slots`` values of 64 bytes. Per replica-set size and over ``--seeds`` seeds it
prints, as median [min, max]:

* decisions per second: slots decided over the processor time (``time.process_time``) of the
  whole run, all n replicas included. One machine runs every replica here, so this is the
  cluster's total processing cost per decision turned into a rate, not a networked cluster's
  throughput (where each replica has its own processor and the leader is the bottleneck);
* messages per decision: point-to-point deliveries (a broadcast to m members counts m);
* bytes per decision: encoded message bytes per decision (hybrid signatures are 3,376 bytes);
* signature share: the part of the processor time spent signing and verifying hybrid
  signatures (Ed25519 + ML-DSA-65), measured by timing every ``sign`` and ``verify`` call.

Then the one-off and failure costs: key generation and replica construction per node, and a
view change (the leader crashes before proposing): the ticks and messages until the first
decision, against the fault-free run on the same seed.

Last, a paper projection to 100 replicas from the measured per-signature costs and the
protocol's message counts (documented in docs/cluster-consensus.md).

Run: ``python benchmarks/consensus.py [--quick] [--seeds N] [--slots K]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from statistics import median
from typing import Any

from xdv.cluster._consensus import Replica, fault_budget, quorum_size
from xdv.cluster._consensus_sim import node_ids, sim_keys, simulate
from xdv.security import SIGNATURE_SIZE, HybridKeyPair, HybridPublicKey


def fmt(values: list[float], digits: int = 1) -> str:
    return f"{median(values):.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


class SignatureClock:
    """Processor time and call counts of hybrid signing and verification."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.signs = 0
        self.verifies = 0


@contextmanager
def timed_signatures() -> Iterator[SignatureClock]:
    clock = SignatureClock()
    sign: Callable[..., bytes] = HybridKeyPair.sign
    verify: Callable[..., None] = HybridPublicKey.verify

    def timed_sign(self: HybridKeyPair, message: bytes, *, context: bytes) -> bytes:
        start = time.process_time()
        try:
            return sign(self, message, context=context)
        finally:
            clock.seconds += time.process_time() - start
            clock.signs += 1

    def timed_verify(
        self: HybridPublicKey, message: bytes, signature: bytes, *, context: bytes
    ) -> None:
        start = time.process_time()
        try:
            verify(self, message, signature, context=context)
        finally:
            clock.seconds += time.process_time() - start
            clock.verifies += 1

    HybridKeyPair.sign = timed_sign  # type: ignore[method-assign]
    HybridPublicKey.verify = timed_verify  # type: ignore[method-assign]
    try:
        yield clock
    finally:
        HybridKeyPair.sign = sign  # type: ignore[method-assign]
        HybridPublicKey.verify = verify  # type: ignore[method-assign]


def values(slots: int) -> list[bytes]:
    return [f"decision {index:04d}".encode().ljust(64, b".") for index in range(slots)]


def normal_case(n: int, seeds: int, slots: int) -> dict[str, Any]:
    rates: list[float] = []
    messages: list[float] = []
    sizes: list[float] = []
    shares: list[float] = []
    signs: list[float] = []
    verifies: list[float] = []
    for seed in range(seeds):
        with timed_signatures() as clock:
            start = time.process_time()
            result = simulate(n, values(slots), seed=seed, ticks_max=100 * slots)
            elapsed = time.process_time() - start
        decided = min(len(result.decisions[node]) for node in result.honest)
        assert decided == slots and result.agreement(), "the benchmark run did not finish"
        rates.append(slots / elapsed)
        messages.append(result.sent / slots)
        shares.append(100 * clock.seconds / elapsed)
        signs.append(clock.signs / slots)
        verifies.append(clock.verifies / slots)
        counted = simulate(n, values(slots), seed=seed, ticks_max=100 * slots, count_bytes=True)
        sizes.append(counted.bytes_sent / slots / 1024)
    return {
        "rates": rates,
        "messages": messages,
        "sizes": sizes,
        "shares": shares,
        "signs": signs,
        "verifies": verifies,
    }


def one_off(n: int) -> tuple[float, float]:
    ids = node_ids(n)
    start = time.process_time()
    keys = {node: HybridKeyPair.from_seed(b"benchmark/" + node.encode()) for node in ids}
    keygen = (time.process_time() - start) / n
    members = {node: key.public for node, key in keys.items()}
    start = time.process_time()
    for node in ids:
        Replica(node, members, keys[node])
    build = (time.process_time() - start) / n
    return keygen, build


def view_change(n: int, seeds: int) -> tuple[list[float], list[float], list[float]]:
    extra_ticks: list[float] = []
    extra_messages: list[float] = []
    seconds: list[float] = []
    leader = node_ids(n)[0]
    for seed in range(seeds):
        calm = simulate(n, [b"v"], seed=seed)
        start = time.process_time()
        crashed = simulate(n, [b"v"], seed=seed, crash_at={leader: 0})
        seconds.append(time.process_time() - start)
        assert all(crashed.decisions[node] for node in crashed.honest)
        extra_ticks.append(crashed.ticks - calm.ticks)
        extra_messages.append(crashed.sent - calm.sent)
    return extra_ticks, extra_messages, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and slots")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--slots", type=int, default=None)
    arguments = parser.parse_args()
    seeds = arguments.seeds or (3 if arguments.quick else 5)
    slots = arguments.slots or (4 if arguments.quick else 10)
    sizes = (4, 7, 10)
    for n in sizes:
        sim_keys(n)  # key generation is a one-off, timed below

    print(f"BFT consensus (basic HotStuff), {slots} slots per run, {seeds} seeds, no faults")
    print("figures: median [min, max] over seeds; processor time of the whole simulated cluster")
    print()
    header = (
        f"{'n':>3} {'f':>2} {'q':>2}  {'decisions/s':>22}  {'messages/decision':>22}  "
        f"{'KiB/decision':>24}  {'signature share %':>20}"
    )
    print(header)
    measured: dict[int, dict[str, Any]] = {}
    for n in sizes:
        figures = normal_case(n, seeds, slots)
        measured[n] = figures
        print(
            f"{n:>3} {fault_budget(n):>2} {quorum_size(n):>2}  {fmt(figures['rates']):>22}  "
            f"{fmt(figures['messages']):>22}  {fmt(figures['sizes']):>24}  "
            f"{fmt(figures['shares']):>20}"
        )
    print()
    print("signature operations per decision (whole cluster): median")
    for n in sizes:
        print(
            f"  n={n:<3} signs {median(measured[n]['signs']):.1f}, "
            f"verifies {median(measured[n]['verifies']):.1f}"
        )

    print()
    print("one-off costs per node (processor time)")
    for n in sizes:
        keygen, build = one_off(n)
        print(
            f"  n={n:<3} key pair {keygen * 1e3:.2f} ms, replica construction {build * 1e3:.2f} ms"
        )

    print()
    print("view change: leader crashed from the start, one value; extra over the same seed without")
    for n in sizes:
        ticks, messages, seconds = view_change(n, seeds)
        print(
            f"  n={n:<3} extra ticks {fmt(ticks, 0)}, extra messages {fmt(messages, 0)}, "
            f"run {fmt([s * 1e3 for s in seconds], 0)} ms"
        )

    # Per-operation costs, for the projection.
    key = sim_keys(4)["n00"]
    with timed_signatures() as clock:
        for _ in range(50):
            signature = key.sign(b"x" * 200, context=b"bench")
        sign_cost = clock.seconds / 50
        clock.seconds = 0.0
        for _ in range(50):
            key.public.verify(b"x" * 200, signature, context=b"bench")
        verify_cost = clock.seconds / 50
    print()
    print(
        f"hybrid signature: sign {sign_cost * 1e3:.2f} ms, verify {verify_cost * 1e3:.2f} ms, "
        f"{SIGNATURE_SIZE} bytes (mean of 50 calls each)"
    )
    n = 100
    q = quorum_size(n)
    # Per decision: each replica verifies the proposal, 3 certificates of q votes and the
    # three broadcasts' message signatures, and signs 3 votes; the leader also verifies
    # 3 (n - 1) votes and signs 4 broadcasts.
    replica_cpu = (4 + 3 * q) * verify_cost + 3 * sign_cost
    leader_cpu = replica_cpu + 3 * (n - 1) * verify_cost + 4 * sign_cost
    certificate_bytes = q * (SIGNATURE_SIZE + 8) + 200
    leader_bytes = 3 * (n - 1) * certificate_bytes + (n - 1) * (SIGNATURE_SIZE + 300)
    print()
    print(f"projection to n = {n} (f = {fault_budget(n)}, quorum {q}), per decision:")
    print(f"  messages: about {8 * (n - 1)} (8 (n - 1), the request included: linear in n)")
    print(f"  a replica's signature work: {replica_cpu * 1e3:.0f} ms of processor time")
    print(f"  the leader's signature work: {leader_cpu * 1e3:.0f} ms of processor time")
    print(
        f"  certificate size {certificate_bytes / 1024:.0f} KiB; the leader sends about "
        f"{leader_bytes / 2**20:.1f} MiB"
    )
    print(f"  so at most about {1 / leader_cpu:.1f} decisions/s per leader core, before batching")


if __name__ == "__main__":
    main()
