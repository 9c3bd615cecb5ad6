"""---
id: example.hybrid-offload
spec: [XDV-022-2.2, XDV-022-6.1, XDV-022-6.2, XDV-022-9, XDV-004-4.2, XDV-001-7.1]
description: >-
  Transitions to K compute lanes: one that demands a latency of zero steps fails at contract
  validation and is rolled back (CONTRACT_INVALID), then succeeds with a realistic bound. The
  Collatz facts are arithmetic: 27 takes 111 steps; the longest run below 200 is 124 steps
  (171), and in 200..399 it is 143 steps (327).
level: core
expect:
  exit: ok
  outputs_include:
    - "impatient: transition rolled back (CONTRACT_INVALID)"
    - "holder: 27 takes 111 steps"
    - "steady: longest Collatz run in 1..199 is 124 steps"
    - "impatient: longest Collatz run in 200..399 is 143 steps"
  trace:
    present: [TRANSITION_BEGIN, TRANSITION_PHASE, TRANSITION_ROLLBACK, TRANSITION_COMMIT]
    order: [TRANSITION_BEGIN, TRANSITION_ROLLBACK, TRANSITION_COMMIT]
---"""

from xdv import ErrorCode, Kernel, XdvError
from xdv.syscalls import Emit, Invoke, Release, Reserve, Transition


def collatz_steps(start: int) -> int:
    """Deterministic classical work: the number of Collatz steps from ``start`` to 1."""
    steps, value = 0, start
    while value != 1:
        value = value // 2 if value % 2 == 0 else 3 * value + 1
        steps += 1
    return steps


def worker(name: str, low: int, high: int, latency_max: int):
    work = (max_steps, low, high)
    try:
        best = yield Transition("K", "K", "call", work, latency_max=latency_max)
    except XdvError as error:
        yield Emit(f"{name}: transition rolled back ({error.code.name})")
        if error.code is not ErrorCode.CONTRACT_INVALID:
            raise
        best = yield Transition("K", "K", "call", work, latency_max=1)
    yield Emit(f"{name}: longest Collatz run in {low}..{high} is {best} steps")
    return best


def max_steps(low: int, high: int) -> int:
    return max(collatz_steps(number) for number in range(low, high + 1))


def holder():
    # Holds one lane for a while through an explicit reservation, then uses and releases it.
    lane = yield Reserve("K", "lane", 1)
    steps = yield Invoke(lane, "call", (collatz_steps, 27))
    yield Emit(f"holder: 27 takes {steps} steps")
    yield Release(lane)


def main(kernel: Kernel) -> None:
    kernel.spawn(holder, name="holder")
    kernel.spawn(worker, "steady", 1, 199, 4, name="steady")
    kernel.spawn(worker, "impatient", 200, 399, 0, name="impatient")
