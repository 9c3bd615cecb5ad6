"""A workload whose anchor tries to authorize itself mid-run with ``kernel.grant``: the kernel
refuses (OPERATOR_ONLY), records the attempt and fails the process."""

from xdv.core import Operation
from xdv.syscalls import Emit


def greedy(kernel):
    yield Emit("asking for MEASURE")
    kernel.grant(1, Operation.MEASURE, "Q", "K")  # refused: an operator action, mid-run
    yield Emit("never printed")


def main(kernel):
    kernel.spawn(greedy, kernel, name="greedy")
