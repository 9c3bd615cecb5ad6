"""Sealed node-to-node link benchmarks: handshake time and seal + open per message.

Handshake: one full link establishment between two members of a four-node membership (the
initiator's hello: hybrid KEM encapsulation and hybrid signature; the responder's checks,
decapsulation and signed reply; the initiator's checks), timed end to end in one process, so
the figure is the CPU cost of both sides with no network in between.

Messages: for 64 B, 4 KiB and 1 MiB payloads, one message sealed by one end and opened by the
other (AES-256-GCM, header, sequence and replay checks), against the peer: the same framing
without protection, i.e. the sender copies the payload behind a header of the same size and the
receiver copies it out again (what an unsealed in-process link costs at least). Both sides run
in the same round on the same payload, alternating, so a slow spell of the machine hits both;
the ratio is taken round by round.

One-off costs are timed on their own: generating a node identity from a seed, building the
membership, and the first handshake of the process (which pays for lazy library set-up).

Every figure is the median and the range [min, max] over the rounds. Times are processor time
(``time.process_time``, this process only), so that waiting for a core on a loaded machine does
not count; everything measured runs in this one thread.

Run: ``python benchmarks/transport.py [--quick] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from functools import partial
from statistics import median

from xdv.cluster._membership import Membership, NodeIdentity
from xdv.cluster._transport import FRAME_HEADER_SIZE, Link

SIZES = {"64 B": 64, "4 KiB": 4096, "1 MiB": 1 << 20}


def figure(values: list[float], unit: str, scale: float = 1.0) -> str:
    scaled = [value * scale for value in values]
    return f"{median(scaled):9.2f} [{min(scaled):.2f}, {max(scaled):.2f}] {unit}"


def timed(action: Callable[[], object]) -> float:
    start = time.process_time()
    action()
    return time.process_time() - start


def sealed_round(left: Link, right: Link, payload: bytes, count: int) -> None:
    """``count`` messages sealed by ``left`` and opened by ``right``."""
    for _ in range(count):
        if right.open(left.seal(payload)) is payload:
            raise AssertionError("open returned the sender's object")


def plain_round(header: bytes, payload: bytes, count: int) -> None:
    """The unsealed peer: the payload copied behind a header and out again."""
    for _ in range(count):
        frame = header + payload
        if len(frame[FRAME_HEADER_SIZE:]) != len(payload):
            raise AssertionError("lost bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and messages")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per figure")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 21)

    # One-off costs.
    start = time.process_time()
    nodes = {name: NodeIdentity.generate(name, b"benchmark") for name in "abcd"}
    identity_time = (time.process_time() - start) / len(nodes)
    start = time.process_time()
    membership = Membership(1, [node.entry() for node in nodes.values()])
    membership_time = time.process_time() - start

    def handshake() -> tuple[Link, Link]:
        left, hello = Link.initiate(nodes["a"], "b", membership)
        right, reply = Link.accept(nodes["b"], hello, membership)
        left.complete(reply)
        return left, right

    first_handshake = timed(handshake)
    print("one-off costs")
    print(f"  node identity (seeded)    {identity_time * 1e3:9.2f} ms")
    print(f"  membership of 4 nodes     {membership_time * 1e3:9.2f} ms")
    print(f"  first handshake           {first_handshake * 1e3:9.2f} ms")

    handshakes = [timed(handshake) for _ in range(rounds)]
    print(f"\nhandshake (both sides, {rounds} rounds)")
    print(f"  establish a link          {figure(handshakes, 'ms', 1e3)}")

    print(f"\nper message, seal + open vs unsealed copy ({rounds} rounds)")
    print(f"  {'payload':8} {'sealed (µs)':>32} {'unsealed (µs)':>32} {'ratio':>26}")
    header = bytes(FRAME_HEADER_SIZE)
    for label, size in SIZES.items():
        payload = hashlib.sha256(label.encode()).digest() * (size // 32) + bytes(size % 32)
        count = max(4, (64 if args.quick else 256) * 4096 // max(size, 4096))
        if size <= 64:
            count *= 8
        left, right = handshake()
        sealed: list[float] = []
        plain: list[float] = []
        ratios: list[float] = []

        for _ in range(rounds):
            one = timed(partial(sealed_round, left, right, payload, count)) / count
            other = timed(partial(plain_round, header, payload, count)) / count
            sealed.append(one)
            plain.append(other)
            ratios.append(one / other)
        throughput = size / median(sealed) / (1 << 20)
        print(
            f"  {label:8} {figure(sealed, '', 1e6):>32} {figure(plain, '', 1e6):>32} "
            f"{figure(ratios, 'x'):>26}   sealed {throughput:8.1f} MiB/s, {count} messages/round"
        )


if __name__ == "__main__":
    main()
