"""Many K steps for the view's tests: workers that emit, sleep, yield and wait, under a VHM
with quotas, so the trace exercises the K panel (processes, scheduler decisions, VHMs,
emitted lines) and scales to any number of entries (``rounds``)."""

from xdv import Kernel
from xdv.syscalls import Emit, Sleep, Spawn, Wait, Yield


def worker(index: int, rounds: int):
    for step in range(rounds):
        if step % 7 == 0:
            yield Emit(f"w{index} step {step}")
        elif step % 5 == 0:
            yield Yield()
        else:
            yield Sleep(1 + (index + step) % 3)
    return rounds


def parent(workers: int, rounds: int):
    children = []
    for index in range(workers):
        child = yield Spawn(worker, (index, rounds), name=f"worker{index}")
        children.append(child)
    total = 0
    for child in children:
        done = yield Wait(child)
        total += done.value
    yield Emit(f"all done: {total} steps")
    return total


def main(kernel: Kernel, *, workers: int = 3, rounds: int = 40) -> None:
    kernel.spawn(parent, workers, rounds, name="parent")
