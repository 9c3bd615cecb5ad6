from xdv.syscalls import Emit, Spawn


def count(n):
    for i in range(n):
        yield Emit(i)


def parent():
    yield Spawn(count, (2,))  # a second process in the tenant's VHM
    yield Emit("spawned")


def main(kernel):
    kernel.spawn(parent)
