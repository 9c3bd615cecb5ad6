"""Context switches of every recorded kind; the trace is pinned by a golden file.

Slices that begin with a sleep record the switch with their SLEEP entry alone; slices that begin
with anything else record a DISPATCH first; a slice of the process that ran the slice before
records no switch (docs/trace-format.md, §7.3).
"""

from xdv.syscalls import Emit, Now, Sleep, Yield


def sleeper(rounds: int):
    for _ in range(rounds):
        yield Sleep(1)


def talker(rounds: int):
    for index in range(rounds):
        yield Emit(index)
        yield Sleep(2)


def watcher():
    # Now records nothing, so this slice's first entry is its SLEEP: a DISPATCH comes first.
    yield Now()
    yield Sleep(3)
    yield Yield()
    return "done"


def main(kernel):
    kernel.spawn(sleeper, 4, name="sleeper")
    kernel.spawn(talker, 3, name="talker")
    kernel.spawn(watcher, name="watcher")
