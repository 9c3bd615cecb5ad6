"""A small workload for the cluster cases: one process counts to three."""

from xdv.syscalls import *  # noqa: F403


def counter():
    for step in range(3):
        yield Emit(f"count {step}")


def main(kernel):
    kernel.spawn(counter)
