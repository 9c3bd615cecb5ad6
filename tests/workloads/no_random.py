"""Decisions here never read randomness: a different seed must change nothing but the seed."""

from xdv import Kernel
from xdv.syscalls import Emit, Sleep


def ticker(name: str, count: int, pause: int):
    for index in range(count):
        yield Emit(f"{name} {index}")
        yield Sleep(pause)


def main(kernel: Kernel) -> None:
    kernel.spawn(ticker, "slow", 4, 3)
    kernel.spawn(ticker, "fast", 6, 1)
