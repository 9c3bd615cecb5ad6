"""A workload that never ends by itself: a ticker sleeping forever and a worker emitting forever.
Only an interruption (Kernel.interrupt, e.g. on SIGINT) ends its run."""

from xdv.syscalls import Emit, Sleep


def ticker():
    while True:
        yield Sleep(1)


def worker():
    index = 0
    while True:
        yield Emit(index)
        index += 1


def main(kernel):
    kernel.spawn(ticker, name="ticker")
    kernel.spawn(worker, name="worker")
