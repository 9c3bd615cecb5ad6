"""---
id: reference.arbitration-total-order
spec:
- XDV-080-5.2
- XDV-080-4.1
description: Four processes that yield after each line run in the order the round-robin key gives
  (ready time, then priority, higher first, then process id), never in an order drawn at random
  or by arrival; among the processes ready at the start the higher-priority one spawned last runs
  first, then the others by process id; having yielded, it is ready later than they are and waits
  its turn. The run replays to the same bytes.
level: core
expect:
  exit: ok
  outputs:
  - urgent 0
  - a 0
  - b 0
  - c 0
  - urgent 1
  - a 1
  - b 1
  - c 1
  replay: both
---"""

from xdv.syscalls import *  # noqa: F403


def worker(name):
    for turn in range(2):
        yield Emit(f"{name} {turn}")
        yield Yield()


def main(kernel):
    for name in ("a", "b", "c"):
        kernel.spawn(worker, name)
    kernel.spawn(worker, "urgent", priority=5)
