from xdv import Kernel
from xdv.errors import ErrorCode, XdvError
from xdv.syscalls import Channel, Close, Emit, Receive, Send, Share, Sleep, Spawn, Wait


def feeder(jobs: int, count: int):
    for number in range(1, count + 1):
        yield Send(jobs, number)  # blocks while the channel holds its 3 messages
    yield Close(jobs)
    return count


def worker(name: str, jobs: int, results: int):
    done = 0
    while True:
        try:
            job = yield Receive(jobs)
        except XdvError as error:
            if error.code is not ErrorCode.CHANNEL_CLOSED:
                raise
            break  # the feeder closed the channel and it is drained
        yield Sleep(job.payload % 3)  # some jobs take longer than others
        yield Send(results, {"n": job.payload, "square": job.payload**2, "by": name})
        done += 1
    return done


def collector(count: int):
    jobs = yield Channel(3, name="jobs")
    results = yield Channel(2, name="results")
    feeder_pid = yield Spawn(feeder, (jobs, count), name="feeder")
    yield Share(jobs, feeder_pid, send=True)
    workers = []
    for name in ("left", "right"):
        pid = yield Spawn(worker, (name, jobs, results), name=name)
        yield Share(jobs, pid, send=False, receive=True)
        yield Share(results, pid, send=True)
        workers.append(pid)
    # The collector only receives results: it closes its sending side of both channels, so
    # each closes once its last sender (the feeder, then the last worker) is done.
    yield Close(jobs)
    yield Close(results)
    total = 0
    while True:
        try:
            message = yield Receive(results)
        except XdvError as error:
            if error.code is not ErrorCode.CHANNEL_CLOSED:
                raise
            break
        total += message.payload["square"]
        yield Emit(
            f"{message.payload['by']}: {message.payload['n']}² = {message.payload['square']}"
        )
    shares = []
    for pid in workers:
        status = yield Wait(pid)
        shares.append(status.value)
    yield Emit(f"sum of squares 1..{count} = {total}; jobs per worker {shares}")
    return total


def main(kernel: Kernel) -> None:
    kernel.spawn(collector, 10, name="collector")
