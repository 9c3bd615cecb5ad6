"""Prints many lines; used to check that a closed output pipe does not cut the run short."""

from xdv import Kernel
from xdv.syscalls import Emit


def chatter(count: int):
    for index in range(count):
        yield Emit(f"line {index}")


def main(kernel: Kernel) -> None:
    kernel.spawn(chatter, 20000)
