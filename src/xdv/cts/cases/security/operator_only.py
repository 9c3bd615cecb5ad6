"""---
id: security.grant-from-a-process-refused
spec:
- XDV-002-3.5
- XDV-030-7
description: 'Granting is an operator action: kernel.grant called from a running process is refused with
  OPERATOR_ONLY.'
level: core
expect:
  exit: ok
  outputs:
  - OPERATOR_ONLY
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


from xdv import Operation


def sneaky(kernel):
    me = yield Self()
    try:
        kernel.grant(me.pid, Operation.EXECUTE, "K", "K")
        yield Emit("granted")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    kernel.spawn(sneaky, kernel)
