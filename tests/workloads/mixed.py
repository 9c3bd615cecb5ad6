"""A workload touching every core path; its trace is pinned by a golden file."""

from xdv import ErrorCode, Kernel, XdvError
from xdv.syscalls import (
    Emit,
    Exit,
    Invoke,
    Random,
    Release,
    Reserve,
    Resume,
    Sleep,
    Spawn,
    Suspend,
    Transition,
    Wait,
    Yield,
)


def square(value: int) -> int:
    return value * value


def child(label: str, rounds: int):
    rng = yield Random()
    for index in range(rounds):
        yield Emit({"child": label, "i": index, "r": rng.randint(0, 9)})
        yield Sleep(index % 3)
    yield Exit(label)


async def async_child(count: int):
    for index in range(count):
        await Emit(f"async {index}")
        await Yield()
    return count


def parent():
    first = yield Spawn(child, ("a", 4), name="a", priority=1)
    second = yield Spawn(child, ("b", 3), name="b")
    third = yield Spawn(async_child, (2,), name="async")
    yield Suspend(second)
    lane = yield Reserve("K", "lane", 2, duration=50)
    value = yield Invoke(lane, "call", (square, 12))
    yield Emit(f"square {value}")
    yield Release(lane)
    try:
        yield Transition("K", "K", "call", (square, 3), latency_max=0)
    except XdvError as error:
        yield Emit(f"rolled back {error.code.name}")
        assert error.code is ErrorCode.CONTRACT_INVALID
    nine = yield Transition("K", "K", "call", (square, 3))
    yield Resume(second)
    results = []
    for pid in (first, second, third):
        status = yield Wait(pid)
        results.append(status.value)
    yield Emit({"results": results, "nine": nine})
    return "done"


def faulty():
    yield Emit("about to fail")
    raise ValueError("a bug in the anchor")


def main(kernel: Kernel) -> None:
    kernel.spawn(parent, name="parent")
    kernel.spawn(faulty, name="faulty", priority=-1)
