"""---
id: kernel.logical-clock-monotonic
spec:
- XDV-005-7
- XDV-005-3.2
description: Now() read around sleeps only ever increases, by at least the steps slept.
level: core
expect:
  exit: ok
  outputs:
  - monotonic
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def reader():
    times = []
    for steps in (1, 3, 2, 5):
        times.append((yield Now()))
        yield Sleep(steps)
    times.append((yield Now()))
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    ok = all(gap >= steps for gap, steps in zip(gaps, (1, 3, 2, 5)))
    yield Emit("monotonic" if ok else f"not monotonic: {times}")


def busy():
    for _ in range(6):
        yield Yield()


def main(kernel):
    kernel.spawn(reader)
    kernel.spawn(busy)
