"""Emits forever; used by the crash test, which kills it."""

from xdv import Kernel
from xdv.syscalls import Emit, Sleep


def forever():
    index = 0
    while True:
        yield Emit(f"line {index}")
        yield Sleep(1)
        index += 1


def main(kernel: Kernel) -> None:
    kernel.spawn(forever)
