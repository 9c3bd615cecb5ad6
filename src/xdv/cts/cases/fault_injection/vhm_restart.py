"""---
id: fault.vhm-restart-then-end
spec: [XDV-024-5.2, XDV-024-5.3, XDV-024-8, XDV-024-10, XDV-083-9.1]
description: >-
  Every K job of the batch VHM fails under the plan: three faults within 40 steps reach the VHM
  level, which may restart once from its K snapshot (the worker resumes at its checkpoint); the
  next three end the VHM. The web VHM serves all 8 requests; the run fails (a VHM was ended).
level: core
options: {faults: vhm_plan.json, seed: 0}
expect:
  exit: runtime
  outputs_include: ["batch: job 0 = 0", "batch: restarted at job 1", "web: served request 7"]
  trace:
    present: [FAULT_DETECTED, FAULT_ESCALATED, VHM_RESTART, VHM_TERMINATE, STATE_SAVE]
    order: [RUN_START, VHM_CREATE, VHM_CREATE, FAULT_DETECTED, VHM_RESTART, VHM_TERMINATE, RUN_END]
    counts: {VHM_RESTART: 1}
---"""

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
