"""Security costs: capability tokens, signed tree heads, and auditing on the kernel's event rate.

Prints, as medians and ranges (min–max) over ``--repeat`` rounds:
- token issue (mint; mint + hybrid signature) and validation (the kernel's hot path on a vouched
  token; a presented token checked from its signature up), in microseconds;
- tree-head sign and verify, in microseconds;
- Merkle folding per entry, in microseconds;
- the kernel's traced event rate with auditing off, on (checkpoints), and on with signed heads,
  measured interleaved in the same run, and the ratio to "off", taken round by round (target: at
  least 0.80, checked on the median).
- one-off costs: deriving the hybrid key pair from a seed (a node's first start pays it).

Run: python benchmarks/security.py [--processes N --rounds N --repeat N --interval N]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from xdv.core import AuditConfig, Kernel, Operation
from xdv.security import HybridKeyPair, Right, Scope, SignedHeadLog, TokenAuthority
from xdv.security._audit import _CONTEXT, head_message
from xdv.syscalls import Sleep
from xdv.trace import Domain, TraceWriter
from xdv.trace._merkle import MerkleAccumulator


def spread(values: list[float], digits: int = 1) -> str:
    """``median (min–max)`` of ``values``."""
    low, middle, high = min(values), statistics.median(values), max(values)
    if digits == 0:
        return f"{middle:12,.0f} ({low:,.0f}–{high:,.0f})"
    return f"{middle:10.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def per_call_us(function: Callable[[], Any], count: int, repeat: int) -> list[float]:
    """Microseconds per call of ``function``, one figure per round of ``count`` calls."""
    figures = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(count):
            function()
        figures.append((time.perf_counter() - start) / count * 1e6)
    return figures


def token_figures(repeat: int) -> None:
    keys = HybridKeyPair.from_seed(b"benchmark issuer")
    derive = per_call_us(lambda: HybridKeyPair.from_seed(b"benchmark issuer"), 1, repeat)
    authority = TokenAuthority(keys)
    right = Right(Operation.EXECUTE, Domain.K, Domain.Q)
    scope = Scope.of(right, "qubits", 0, 1_000_000)
    mint = per_call_us(lambda: authority.mint(1, scope, 0), 2000, repeat)

    def mint_and_sign() -> None:
        authority.export(authority.mint(1, scope, 0).id)

    signed = per_call_us(mint_and_sign, 100, repeat)
    checker = TokenAuthority(keys)
    checker.mint(7, scope, 0)
    hot = per_call_us(
        lambda: checker.check(7, Operation.EXECUTE, Domain.K, Domain.Q, 10, "qubits"), 20000, repeat
    )
    exported = authority.export(authority.mint(3, scope, 0).id)
    fresh = [TokenAuthority(keys) for _ in range(100 * repeat)]
    iterator = iter(fresh)
    present = per_call_us(lambda: next(iterator).present(exported, 3, 5), 100, repeat)
    print(f"capability tokens (µs per operation, median (range) of {repeat} rounds)")
    print(f"  mint (kept in the authority's table)          {spread(mint)}")
    print(f"  mint + hybrid signature (issued for export)   {spread(signed)}")
    print(f"  validate, kernel hot path (vouched token)     {spread(hot)}")
    print(f"  validate, presented token (signature first)   {spread(present)}")
    print(f"  one-off: hybrid key pair from a seed          {spread(derive)}")


def head_figures(repeat: int) -> None:
    keys = HybridKeyPair.from_seed(b"benchmark node")
    message = head_message(b"r" * 32, 4096, b"x" * 32, False)
    sign = per_call_us(lambda: keys.sign(message, context=_CONTEXT), 100, repeat)
    signature = keys.sign(message, context=_CONTEXT)
    verify = per_call_us(
        lambda: keys.public.verify(message, signature, context=_CONTEXT), 300, repeat
    )
    leaves = [hashlib.sha256(index.to_bytes(4, "big")).digest() for index in range(1 << 18)]

    def fold() -> None:
        tree = MerkleAccumulator()
        for start in range(0, len(leaves), 4096):
            tree.extend(leaves[start : start + 4096])
            tree.root()

    fold_us = [figure / len(leaves) for figure in per_call_us(fold, 1, repeat)]
    print(f"audit (µs, median (range) of {repeat} rounds)")
    print(f"  sign one tree head (Ed25519 + ML-DSA-65)      {spread(sign)}")
    print(f"  verify one tree head                          {spread(verify)}")
    print(f"  Merkle folding per traced entry               {spread(fold_us, 3)}")


def sleeper(rounds: int) -> Generator[Any, Any, None]:
    for _ in range(rounds):
        yield Sleep(1)


def run_kernel(processes: int, rounds: int, audit: AuditConfig | None) -> tuple[int, float]:
    kernel = Kernel(0, trace=TraceWriter(None), audit=audit)
    for _ in range(processes):
        kernel.spawn(sleeper, rounds)
    start = time.perf_counter()
    result = kernel.run()
    return result.events, time.perf_counter() - start


def rate_figures(processes: int, rounds: int, repeat: int, interval: int) -> float:
    keys = HybridKeyPair.from_seed(b"benchmark node")
    rates: dict[str, list[float]] = {"off": [], "checkpoints": [], "checkpoints + signed": []}
    with tempfile.TemporaryDirectory() as folder:
        for index in range(repeat):  # interleaved, so drift in machine load hits all alike
            for name in rates:
                audit = None
                if name == "checkpoints":
                    audit = AuditConfig(interval)
                elif name == "checkpoints + signed":
                    path = Path(folder) / f"heads-{index}.audit"
                    audit = AuditConfig(interval, SignedHeadLog(path, keys, fsync=False))
                events, seconds = run_kernel(processes, rounds, audit)
                rates[name].append(events / seconds)
    print(
        f"kernel traced event rate ({processes} processes x {rounds} sleeps, trace in memory, "
        f"checkpoint every {interval} entries; median (range) of {repeat} interleaved rounds; "
        "the ratio to off taken round by round)"
    )
    worst = 1.0
    for name, values in rates.items():
        # The rounds ran the settings back to back, so each round's ratio compares like with like.
        ratios = [rate / off for rate, off in zip(values, rates["off"], strict=True)]
        worst = min(worst, statistics.median(ratios))
        print(f"  audit {name:<22} {spread(values, 0)} events/s   {spread(ratios, 2)} of off")
    print(f"  lowest median ratio: {worst:.2f} (target >= 0.80)")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--interval", type=int, default=16384)
    arguments = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}")
    token_figures(arguments.repeat)
    head_figures(arguments.repeat)
    rate_figures(arguments.processes, arguments.rounds, arguments.repeat, arguments.interval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
