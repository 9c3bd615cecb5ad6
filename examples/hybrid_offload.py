"""Three processes share the K domain's compute lanes, two of them through transitions.

Each worker offloads a computation from its K anchor to a K compute lane with a Transition:
capability, reservation, contract validation, binding, projection, activation, logging. The
"impatient" worker demands the result in zero logical steps, which no lane can promise, so its
transition fails at contract validation and is rolled back: its lane reservation is released
and nothing crosses. It catches the typed error and retries with a realistic bound.

Run it:  xdv run examples/hybrid_offload.py --trace offload.xdvt && xdv verify offload.xdvt
"""

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
