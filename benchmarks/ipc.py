"""IPC benchmark: items handed from a producer to a consumer, on equal work.

The work is the same for every engine: ``items`` integers go from one producer to one consumer,
which adds them up. Engines:

* ``channel/C``: the XDV kernel, a producer and a consumer over one channel of capacity C
  (``Send``/``Receive``, every decision traced, in memory);
* ``child-per-item``: the XDV kernel the way producer/consumer had to be written before
  channels, a parent that spawns one child per item and ``Wait``s for its exit value (traced);
* ``simpy-store/C``: SimPy's ``Store`` of capacity C with ``put``/``get`` (untraced), the peer.

Each round runs every engine once, interleaved, so a slow spell of the machine hits all of
them; the median and range (min–max) of items per second over the rounds are printed, with XDV
trace entries per item.

Usage: ``python benchmarks/ipc.py [--items N] [--repeat N] [--capacity C ...]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Generator
from typing import Any

from xdv.core import Kernel, KernelLimits
from xdv.errors import ErrorCode, XdvError
from xdv.syscalls import Channel, Close, Receive, Send, Share, Spawn, Wait

Steps = Generator[Any, Any, Any]


def consumer(channel: int) -> Steps:
    total = 0
    while True:
        try:
            message = yield Receive(channel)
        except XdvError as error:
            if error.code is not ErrorCode.CHANNEL_CLOSED:
                raise
            return total
        total += message.payload


def producer(items: int, capacity: int) -> Steps:
    channel = yield Channel(capacity)
    pid = yield Spawn(consumer, (channel,))
    yield Share(channel, pid, send=False, receive=True)
    for item in range(items):
        yield Send(channel, item)
    yield Close(channel)
    status = yield Wait(pid)
    return status.value


def child(item: int) -> Steps:
    return item
    yield  # a generator: the K anchor of a process


def spawner(items: int) -> Steps:
    total = 0
    for item in range(items):
        pid = yield Spawn(child, (item,))
        status = yield Wait(pid)
        total += status.value
    return total


def run_kernel(anchor: Callable[..., Steps], *args: Any) -> tuple[int, float, int]:
    """(checked total, seconds, trace entries) of one traced run. The process limit is
    raised for the child-per-item engine (a run of more than 4,096 items needs it)."""
    kernel = Kernel(0, limits=KernelLimits(processes_max=max(4096, args[0] + 8)))
    kernel.spawn(anchor, *args)
    start = time.perf_counter()
    result = kernel.run()
    seconds = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"the XDV run failed: {result.status} {result.exits[1]}")
    return int(result.exits[1].value), seconds, result.events


def run_simpy(items: int, capacity: int) -> tuple[int, float, int]:
    import simpy

    environment = simpy.Environment()
    store = simpy.Store(environment, capacity=capacity)
    total = [0]

    def produce() -> Generator[Any, Any, None]:
        for item in range(items):
            yield store.put(item)

    def consume() -> Generator[Any, Any, None]:
        for _ in range(items):
            total[0] += yield store.get()

    environment.process(produce())
    environment.process(consume())
    start = time.perf_counter()
    environment.run()
    return total[0], time.perf_counter() - start, 0


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--capacity", type=int, nargs="*", default=[1, 16, 256])
    options = parser.parse_args(argv)
    items = options.items
    expected = items * (items - 1) // 2
    engines: dict[str, Callable[[], tuple[int, float, int]]] = {}
    for capacity in options.capacity:
        engines[f"channel/{capacity}"] = lambda c=capacity: run_kernel(producer, items, c)
    engines["child-per-item"] = lambda: run_kernel(spawner, items)
    try:
        import simpy  # noqa: F401

        for capacity in options.capacity:
            engines[f"simpy-store/{capacity}"] = lambda c=capacity: run_simpy(items, c)
    except ImportError:
        print("simpy is not installed: the peer is left out")
    runs: dict[str, list[tuple[int, float, int]]] = {name: [] for name in engines}
    for _ in range(options.repeat):
        for name, function in engines.items():
            gc.collect()
            gc.disable()
            try:
                total, seconds, entries = function()
            finally:
                gc.enable()
            if total != expected:
                raise SystemExit(f"{name} added up to {total}, expected {expected}")
            runs[name].append((total, seconds, entries))
    print(f"{items:,} items, {options.repeat} rounds; median (min–max) over the rounds")
    print(f"{'engine':<20} {'items/s':>28} {'entries/item':>14}")
    for name, measured in runs.items():
        rates = [items / seconds for _, seconds, _ in measured]
        entries = measured[0][2] / items
        print(f"{name:<20} {spread(rates):>28} {entries:>14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
