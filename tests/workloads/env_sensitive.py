"""A deliberately non-deterministic workload: it reads an input the trace does not capture."""

import os

from xdv import Kernel
from xdv.syscalls import Emit


def talker(count: int):
    for index in range(count):
        yield Emit(index)


def main(kernel: Kernel) -> None:
    kernel.spawn(talker, int(os.environ.get("XDV_TEST_COUNT", "3")))
