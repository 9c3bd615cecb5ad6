from xdv.errors import XdvError
from xdv.syscalls import Emit, Invoke, LoadState, Release, Reserve, SaveState, Sleep


def square(value):
    return value * value


def batch(jobs):
    start = (yield LoadState()) or 0  # a restarted worker resumes from its checkpoint
    if start:
        yield Emit(f"batch: restarted at job {start}")
    contract = yield Reserve("K", "lane", 1)
    for job in range(start, jobs):
        try:
            value = yield Invoke(contract, "call", (square, job))
            yield Emit(f"batch: job {job} = {value}")
            yield SaveState(job + 1)
        except XdvError as error:
            yield Emit(f"batch: job {job} failed ({error.code.name})")
        yield Sleep(5)
    yield Release(contract)


def web(requests):
    for request in range(requests):
        yield Sleep(10)
        yield Emit(f"web: served request {request}")


def main(kernel):
    kernel.spawn(batch, 6, name="batch", vhm=kernel.create_vhm("batch"))
    kernel.spawn(web, 8, name="web", vhm=kernel.create_vhm("web"))
