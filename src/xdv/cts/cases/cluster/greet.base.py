"""A small workload for the cluster cases: two processes take turns."""

from xdv.syscalls import *  # noqa: F403


def greeter(name):
    for turn in range(2):
        yield Emit(f"{name} {turn}")
        yield Sleep(1)


def main(kernel):
    kernel.spawn(greeter, "left")
    kernel.spawn(greeter, "right")
