"""Failures whose natural messages contain memory addresses; traces must not."""

from xdv import Kernel, XdvError
from xdv.syscalls import Emit, Sleep


class Thing:
    pass


def careless():
    try:
        yield Sleep(Thing())  # a wrong argument type: its message must not show an address
    except XdvError as error:
        yield Emit(error.code.name)
    raise ValueError(f"cannot use {Thing()}")  # the fault message masks the address


def main(kernel: Kernel) -> None:
    kernel.spawn(careless)
