"""Two K processes interleave under the deterministic scheduler, and a parent waits for both.

Run it:  xdv run examples/ping_pong.py --seed 7 --trace ping_pong.xdvt
"""

from xdv import Kernel
from xdv.syscalls import Emit, Random, Sleep, Spawn, Wait


def player(name: str, rounds: int):
    rng = yield Random("jitter")
    total = 0
    for round_number in range(rounds):
        # The pause comes from the process's seeded random stream: same seed, same run.
        pause = rng.randint(1, 3)
        total += pause
        yield Emit(f"{name} {round_number} (pause {pause})")
        yield Sleep(pause)
    return total


def referee(rounds: int):
    ping = yield Spawn(player, ("ping", rounds), name="ping")
    pong = yield Spawn(player, ("pong", rounds), name="pong")
    first = yield Wait(ping)
    second = yield Wait(pong)
    yield Emit(f"ping paused {first.value} ticks, pong paused {second.value}")
    return first.value + second.value


def main(kernel: Kernel) -> None:
    kernel.spawn(referee, 4, name="referee")
