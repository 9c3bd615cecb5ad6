"""The base run of the trace verification cases: two processes that emit and sleep."""

from xdv.syscalls import Emit, Sleep


def worker(name, rounds):
    for index in range(rounds):
        yield Emit(f"{name} {index}")
        yield Sleep(1)
    return rounds


def main(kernel):
    kernel.spawn(worker, "a", 3)
    kernel.spawn(worker, "b", 2)
