"""---
id: kernel.round-robin-alternation
spec:
- XDV-005-3.3
- XDV-012-4.1
- XDV-001-3.1
description: 'Two processes that emit then sleep 2 steps alternate: ping before pong in each round (pid
  order breaks the tie).'
level: core
expect:
  exit: ok
  outputs:
  - ping 0
  - pong 0
  - ping 1
  - pong 1
  - ping 2
  - pong 2
  trace:
    counts:
      PROCESS_CREATE: 2
      PROCESS_EXIT: 2
    order:
    - RUN_START
    - PROCESS_CREATE
    - PROCESS_CREATE
    - DISPATCH
    - PROCESS_EXIT
    - PROCESS_EXIT
    - RUN_END
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def player(name, rounds):
    for index in range(rounds):
        yield Emit(f"{name} {index}")
        yield Sleep(2)


def main(kernel):
    kernel.spawn(player, "ping", 3)
    kernel.spawn(player, "pong", 3)
