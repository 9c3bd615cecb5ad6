"""Many K steps for the view's tests: a parent spawns workers that emit, sleep and yield, and
waits for them, so the trace exercises the K panel (processes, scheduler decisions, emitted
lines) and scales to any number of entries (``rounds``); with ``fail``, one more process
fails."""

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


def doomed():
    yield Emit("about to fail")
    raise ValueError("the view shows this fault")


def main(kernel: Kernel, *, workers: int = 3, rounds: int = 40, fail: bool = False) -> None:
    kernel.spawn(parent, workers, rounds, name="parent")
    if fail:
        kernel.spawn(doomed, name="doomed")
