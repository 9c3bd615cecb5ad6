"""Writes the hand-written Python conformance cases (kernel, ipc, hypervisor, distributed) under
src/xdv/cts/cases/. Each expectation is stated from the profile clause it names; run from the
repository root: ``python tools/cts_handwritten.py``."""

from pathlib import Path

import yaml

C = Path("src/xdv/cts/cases")


def case(path, meta, body):
    p = C / path
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(
        '"""---\n'
        + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
        + '---"""\n'
        + body.lstrip("\n"),
        encoding="utf-8",
    )


HEAD = "from xdv.errors import XdvError\nfrom xdv.syscalls import *  # noqa: F403\n\n"

PROBE = (
    HEAD
    + """
def probe(op):
    try:
        yield op
        yield Emit("accepted")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    kernel.spawn(probe, {op})
"""
)

case(
    "kernel/round_robin.py",
    {
        "id": "kernel.round-robin-alternation",
        "spec": ["XDV-005-3.3", "XDV-012-4.1", "XDV-001-3.1"],
        "description": "Two processes that emit then sleep 2 steps alternate: ping before pong in each round (pid order breaks the tie).",
        "level": "core",
        "expect": {
            "exit": "ok",
            "outputs": ["ping 0", "pong 0", "ping 1", "pong 1", "ping 2", "pong 2"],
            "trace": {
                "counts": {"PROCESS_CREATE": 2, "PROCESS_EXIT": 2},
                "order": [
                    "RUN_START",
                    "PROCESS_CREATE",
                    "PROCESS_CREATE",
                    "DISPATCH",
                    "PROCESS_EXIT",
                    "PROCESS_EXIT",
                    "RUN_END",
                ],
            },
        },
    },
    HEAD
    + """
def player(name, rounds):
    for index in range(rounds):
        yield Emit(f"{name} {index}")
        yield Sleep(2)


def main(kernel):
    kernel.spawn(player, "ping", 3)
    kernel.spawn(player, "pong", 3)
""",
)

case(
    "kernel/sleep_order.py",
    {
        "id": "kernel.sleep-wakes-in-logical-order",
        "spec": ["XDV-005-7", "XDV-082-2", "XDV-082-6.2"],
        "description": "Processes sleeping 9, 1 and 4 logical steps wake in order of their wake-up time, not of creation.",
        "level": "core",
        "expect": {"exit": "ok", "outputs": ["b", "c", "a"], "trace": {"counts": {"SLEEP": 3}}},
    },
    HEAD
    + """
def sleeper(name, steps):
    yield Sleep(steps)
    yield Emit(name)


def main(kernel):
    kernel.spawn(sleeper, "a", 9)
    kernel.spawn(sleeper, "b", 1)
    kernel.spawn(sleeper, "c", 4)
""",
)

case(
    "kernel/pids.py",
    {
        "id": "kernel.pids-in-creation-order",
        "spec": ["XDV-004-2.1"],
        "description": "Process ids are 1, 2, 3 in creation order; a child spawned later gets the next id, 4.",
        "level": "core",
        "expect": {"exit": "ok", "outputs": [1, 2, 3, 4]},
    },
    HEAD
    + """
def child():
    me = yield Self()
    yield Emit(me.pid)


def parent(spawn):
    me = yield Self()
    yield Emit(me.pid)
    if spawn:
        yield Sleep(5)
        pid = yield Spawn(child)
        yield Wait(pid)


def main(kernel):
    kernel.spawn(parent, True)
    kernel.spawn(parent, False)
    kernel.spawn(parent, False)
""",
)

case(
    "kernel/wait_value.py",
    {
        "id": "kernel.wait-returns-exit-value",
        "spec": ["XDV-020-7", "XDV-020-6"],
        "description": "A parent waiting on a child gets the child's return value (6 * 7) once it has ended; both exits are recorded.",
        "level": "core",
        "expect": {
            "exit": "ok",
            "outputs": [42],
            "trace": {"present": ["WAIT"], "counts": {"PROCESS_EXIT": 2}},
        },
    },
    HEAD
    + """
def child(a, b):
    yield Sleep(3)
    return a * b


def parent():
    pid = yield Spawn(child, (6, 7))
    status = yield Wait(pid)
    yield Emit(status.value)


def main(kernel):
    kernel.spawn(parent)
""",
)

case(
    "kernel/clock.py",
    {
        "id": "kernel.logical-clock-monotonic",
        "spec": ["XDV-005-7", "XDV-005-3.2"],
        "description": "Now() read around sleeps only ever increases, by at least the steps slept.",
        "level": "core",
        "expect": {"exit": "ok", "outputs": ["monotonic"]},
    },
    HEAD
    + """
def reader():
    times = []
    for steps in (1, 3, 2, 5):
        times.append((yield Now()))
        yield Sleep(steps)
    times.append((yield Now()))
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    ok = all(gap >= steps for gap, steps in zip(gaps, (1, 3, 2, 5)))
    yield Emit("monotonic" if ok else f"not monotonic: {times}")


def busy():
    for _ in range(6):
        yield Yield()


def main(kernel):
    kernel.spawn(reader)
    kernel.spawn(busy)
""",
)

case(
    "kernel/fault_contained.py",
    {
        "id": "kernel.fault-ends-only-its-process",
        "spec": ["XDV-010-12", "XDV-020-7"],
        "description": "A process whose anchor raises ends alone (PROCESS_FAULT); its neighbour emits all its lines; the run fails.",
        "level": "core",
        "expect": {
            "exit": "runtime",
            "code": "PROCESS_FAULT",
            "outputs": ["steady 0", "steady 1", "steady 2"],
            "trace": {"present": ["FAULT"], "counts": {"PROCESS_EXIT": 2}},
        },
    },
    HEAD
    + """
def faulty():
    yield Sleep(1)
    raise ValueError("broken on purpose")


def steady():
    for index in range(3):
        yield Emit(f"steady {index}")
        yield Sleep(1)


def main(kernel):
    kernel.spawn(faulty)
    kernel.spawn(steady)
""",
)

for name, op, code, spec, text in [
    (
        "wait_unknown",
        "Wait(99)",
        "PROCESS_UNKNOWN",
        ["XDV-020-6"],
        "Waiting on a process id that was never created is refused",
    ),
    (
        "bind_unmanaged",
        'Bind("Q")',
        "DOMAIN_UNAVAILABLE",
        ["XDV-011-5.2", "XDV-002-3.1"],
        "Binding to a domain with no manager (Q not declared) is refused",
    ),
    (
        "reserve_unmanaged",
        'Reserve("Q", "qubits", 2)',
        "DOMAIN_UNAVAILABLE",
        ["XDV-011-5.2", "XDV-030-2.2"],
        "Reserving in a domain with no manager is refused",
    ),
    (
        "receive_unknown",
        "Receive(5)",
        "CHANNEL_UNKNOWN",
        ["XDV-021-8"],
        "Receiving on a channel that does not exist is refused",
    ),
    (
        "transition_unmanaged",
        'Transition("K", "Q", "run")',
        "DOMAIN_UNAVAILABLE",
        ["XDV-022-2.1", "XDV-022-6.1", "XDV-003-7"],
        "A transition into a domain with no manager is refused",
    ),
]:
    case(
        f"kernel/{name}.py",
        {
            "id": f"kernel.{name.replace('_', '-')}",
            "spec": spec,
            "description": f"{text}, with {code}; the process catches the typed error and goes on.",
            "level": "core",
            "expect": {"exit": "ok", "outputs": [code], "trace": {"absent": ["TRANSITION_COMMIT"]}},
        },
        PROBE.format(op=op),
    )

case(
    "kernel/preemption.py",
    {
        "id": "kernel.preempt-at-quantum",
        "spec": ["XDV-012-4.2", "XDV-082-6.2"],
        "description": "Two processes of 30 busy steps each: with the default quantum of 8 each is preempted at the end of its slices, so they finish in turn.",
        "level": "core",
        "expect": {
            "exit": "ok",
            "outputs": ["a done", "b done"],
            "trace": {"at_least": {"PREEMPT": 4}},
        },
    },
    HEAD
    + """
def busy(name):
    for _ in range(30):
        yield Now()
    yield Emit(f"{name} done")


def main(kernel):
    kernel.spawn(busy, "a")
    kernel.spawn(busy, "b")
""",
)

case(
    "kernel/reserve_release.py",
    {
        "id": "kernel.reserve-then-release",
        "spec": ["XDV-011-8", "XDV-011-5.2"],
        "description": "A K reservation is granted as a contract, used, and released; both are recorded in that order.",
        "level": "core",
        "expect": {
            "exit": "ok",
            "outputs": [9],
            "trace": {
                "order": ["RESOURCE_RESERVE", "DOMAIN_INVOKE", "DOMAIN_RESULT", "RESOURCE_RELEASE"]
            },
        },
    },
    HEAD
    + """
def square(value):
    return value * value


def worker():
    contract = yield Reserve("K", "lane", 1)
    value = yield Invoke(contract, "call", (square, 3))
    yield Emit(value)
    yield Release(contract)


def main(kernel):
    kernel.spawn(worker)
""",
)

# IPC
case(
    "ipc/fifo.py",
    {
        "id": "ipc.channel-fifo",
        "spec": ["XDV-021-3.3", "XDV-021-7", "XDV-021-9"],
        "description": "Five messages through a channel of capacity 2 arrive in the order sent, the sender blocking while it is full.",
        "level": "core",
        "expect": {
            "exit": "ok",
            "outputs": [1, 2, 3, 4, 5],
            "trace": {"counts": {"CHANNEL_SEND": 5, "CHANNEL_RECEIVE": 5, "CHANNEL_CREATE": 1}},
        },
    },
    HEAD
    + """
def producer(channel):
    for number in range(1, 6):
        yield Send(channel, number)
    yield Close(channel)


def consumer():
    channel = yield Channel(2, name="numbers")
    pid = yield Spawn(producer, (channel,))
    yield Share(channel, pid, send=True)
    yield Close(channel)
    for _ in range(5):
        message = yield Receive(channel)
        yield Emit(message.payload)


def main(kernel):
    kernel.spawn(consumer)
""",
)

case(
    "ipc/closed.py",
    {
        "id": "ipc.closed-channel",
        "spec": ["XDV-021-8"],
        "description": "Once every sender has closed a channel and it is drained, a receive fails with CHANNEL_CLOSED.",
        "level": "core",
        "expect": {"exit": "ok", "outputs": ["first", "CHANNEL_CLOSED"]},
    },
    HEAD
    + """
def solo():
    channel = yield Channel(1)
    yield Send(channel, "first")
    yield Close(channel)
    message = yield Receive(channel)
    yield Emit(message.payload)
    try:
        yield Receive(channel)
        yield Emit("received from a closed channel")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    kernel.spawn(solo)
""",
)

case(
    "ipc/no_alias.py",
    {
        "id": "ipc.payload-copied",
        "spec": ["XDV-021-4.4"],
        "description": "A payload is copied when sent: changing the sender's list afterwards does not change what the receiver gets.",
        "level": "core",
        "expect": {"exit": "ok", "outputs": [[1, 2, 3]]},
    },
    HEAD
    + """
def solo():
    channel = yield Channel(1)
    data = [1, 2, 3]
    yield Send(channel, data)
    data.append(4)
    message = yield Receive(channel)
    yield Emit(list(message.payload))


def main(kernel):
    kernel.spawn(solo)
""",
)

# Hypervisor
case(
    "hypervisor/cross_vhm_wait.py",
    {
        "id": "hypervisor.cross-vhm-wait-refused",
        "spec": ["XDV-014-7", "XDV-083-3.2"],
        "description": "A process may not wait on a process of another VHM: refused with VHM_ISOLATION; within its own VHM it may.",
        "level": "core",
        "expect": {
            "exit": "ok",
            "outputs_include": ["VHM_ISOLATION"],
            "trace": {"counts": {"VHM_CREATE": 2}},
        },
    },
    HEAD
    + """
def target():
    yield Sleep(20)


def prober(other):
    try:
        yield Wait(other)
        yield Emit("waited across VHMs")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    left = kernel.create_vhm("left")
    right = kernel.create_vhm("right")
    other = kernel.spawn(target, vhm=right)
    kernel.spawn(prober, other, vhm=left)
""",
)

case(
    "hypervisor/process_quota.py",
    {
        "id": "hypervisor.process-quota",
        "spec": ["XDV-014-4.1", "XDV-083-8.2"],
        "description": "A VHM with a quota of 2 live processes refuses a third spawn with VHM_QUOTA_EXCEEDED.",
        "level": "core",
        "expect": {"exit": "ok", "outputs": ["VHM_QUOTA_EXCEEDED"]},
    },
    HEAD
    + """
def idle():
    yield Sleep(10)


def parent():
    yield Spawn(idle)
    try:
        yield Spawn(idle)
        yield Emit("third process admitted")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    tenant = kernel.create_vhm("tenant", quotas={"processes": 2})
    kernel.spawn(parent, vhm=tenant)
""",
)

case(
    "hypervisor/nesting.py",
    {
        "id": "hypervisor.nested-quota-bound",
        "spec": ["XDV-014-6.1", "XDV-083-6.1"],
        "description": "A nested VHM whose quota exceeds its parent's is refused (VHM_NESTING_INVALID) when the setup creates it: only the parent VHM exists and no process starts.",
        "level": "core",
        "expect": {"exit": "runtime", "trace": {"counts": {"VHM_CREATE": 1, "PROCESS_CREATE": 0}}},
    },
    HEAD
    + """
def main(kernel):
    parent = kernel.create_vhm("parent", quotas={"processes": 2})
    kernel.create_vhm("child", quotas={"processes": 5}, parent=parent)
""",
)

# distributed placeholder
case(
    "distributed/global_order.py",
    {
        "id": "distributed.global-order-twice",
        "spec": ["XDV-005-3.2"],
        "description": "A two-node workload run twice gives the same global logical order (runs on a cluster).",
        "level": "distributed",
        "requires": ["cluster"],
        "expect": {"exit": "ok", "outputs": ["a 0", "b 0"]},
    },
    HEAD
    + """
def worker(name):
    yield Emit(f"{name} 0")


def main(kernel):
    kernel.spawn(worker, "a")
    kernel.spawn(worker, "b")
""",
)

# Security: capabilities, operator actions, isolation of channels and contracts
SECURITY = (
    HEAD
    + """
XDV_DOMAINS = {{"Q": {{"manager": "q"}}}}


def probe(op):
    try:
        yield op
        yield Emit("accepted")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    kernel.spawn(probe, {op})
"""
)

for name, op, code, spec, text, needs in [
    (
        "reserve_undeclared_q",
        'Reserve("Q", "qubits", 1)',
        "DOMAIN_UNAUTHORIZED",
        ["XDV-002-3.5", "XDV-002-3.1", "XDV-030-2.2"],
        "A process that did not declare Q may not reserve qubits, though Q has a manager",
        ["q"],
    ),
    (
        "bind_undeclared_q",
        'Bind("Q")',
        "DOMAIN_UNAUTHORIZED",
        ["XDV-002-3.5", "XDV-004-3.1"],
        "A process that did not declare Q may not bind to it without an operator grant",
        ["q"],
    ),
    (
        "freeze_without_right",
        'Freeze("Q")',
        "DOMAIN_UNAUTHORIZED",
        ["XDV-015-8.2", "XDV-015-7"],
        "A process without FREEZE(K→Q) may not freeze the Q domain",
        ["q"],
    ),
    (
        "revoke_unknown",
        "Revoke(9999)",
        "CAPABILITY_INVALID",
        ["XDV-030-6", "XDV-002-8.2"],
        "Revoking a capability id nobody was given (a forged id) is refused",
        ["q"],
    ),
    (
        "attenuate_unknown",
        "Attenuate(9999)",
        "CAPABILITY_INVALID",
        ["XDV-015-3.4", "XDV-030-6"],
        "Deriving from a capability id nobody was given (a forged parent) is refused",
        ["q"],
    ),
]:
    case(
        f"security/{name}.py",
        {
            "id": f"security.{name.replace('_', '-')}",
            "spec": spec,
            "description": f"{text}: {code}, caught by the process; nothing is granted.",
            "level": "hybrid",
            "requires": needs,
            "expect": {
                "exit": "ok",
                "outputs": [code],
                "trace": {
                    "absent": ["RESOURCE_RESERVE:OK", "DOMAIN_FREEZE:OK"],
                    "counts": {"DOMAIN_BIND:OK": 1},
                },
            },
        },
        SECURITY.format(op=op),
    )

case(
    "security/operator_only.py",
    {
        "id": "security.grant-from-a-process-refused",
        "spec": ["XDV-002-3.5", "XDV-030-7"],
        "description": "Granting is an operator action: kernel.grant called from a running process is refused with OPERATOR_ONLY.",
        "level": "core",
        "expect": {"exit": "ok", "outputs": ["OPERATOR_ONLY"]},
    },
    HEAD
    + """
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
""",
)

ISOLATION = (
    HEAD
    + """
def idle():
    yield Sleep(30)


def tenant(other):
{body}

def main(kernel):
    left = kernel.create_vhm("left")
    right = kernel.create_vhm("right")
    other = kernel.spawn(idle, vhm=right)
    kernel.spawn(tenant, other, vhm=left)
"""
)

case(
    "hypervisor/share_channel_across.py",
    {
        "id": "hypervisor.channel-not-shared-across-vhms",
        "spec": ["XDV-021-2", "XDV-014-7"],
        "description": "A channel belongs to its opener's VHM: sharing it with a process of another VHM is refused with CHANNEL_ISOLATED.",
        "level": "core",
        "expect": {
            "exit": "ok",
            "outputs": ["CHANNEL_ISOLATED"],
            "trace": {
                "absent": ["CHANNEL_SHARE:OK"],
                "present": ["CHANNEL_SHARE:CHANNEL_ISOLATED"],
            },
        },
    },
    ISOLATION.format(
        body="""    channel = yield Channel(1)
    try:
        yield Share(channel, other, send=True)
        yield Emit("shared")
    except XdvError as error:
        yield Emit(error.code.name)
"""
    ),
)

case(
    "hypervisor/transfer_across.py",
    {
        "id": "hypervisor.contract-not-transferred-across-vhms",
        "spec": ["XDV-083-3.2", "XDV-014-7"],
        "description": "A contract can be handed only within a VHM: a transfer to a process of another VHM is refused with VHM_ISOLATION and the contract stays with its holder, who releases it.",
        "level": "core",
        "expect": {
            "exit": "ok",
            "outputs": ["VHM_ISOLATION", "released"],
            "trace": {
                "absent": ["RESOURCE_TRANSFER:OK"],
                "present": ["RESOURCE_TRANSFER:VHM_ISOLATION"],
                "counts": {"RESOURCE_RELEASE:OK": 1},
            },
        },
    },
    ISOLATION.format(
        body="""    contract = yield Reserve("K", "lane", 1)
    try:
        yield Transfer(contract, other)
        yield Emit("transferred")
    except XdvError as error:
        yield Emit(error.code.name)
    yield Release(contract)
    yield Emit("released")
"""
    ),
)

# Q no-cloning (XDV-084 §5.1): every way of duplicating or exporting a Q container is refused
NO_CLONING = """import copy
import pickle

from xdv import Operation
from xdv.domains.q import QHandle
from xdv.errors import XdvError
from xdv.syscalls import Emit

XDV_DOMAINS = {{"Q": {{"manager": "q"}}}}

BELL = "\\n".join(
    ["OPENQASM 3.0;", 'include "stdgates.inc";', "qubit[2] q;", "bit[2] c;", "h q[0];"]
    + ["cx q[0], q[1];", "c = measure q;", ""]
)


def anchor():
    handle = yield from QHandle.reserve(2)
    try:
        {action}
        yield Emit("duplicated")
    except XdvError as error:
        yield Emit(error.code.name)
    result = yield from handle.run(BELL, 10)
    yield Emit(sorted(result["counts"]) <= ["00", "11"])


def main(kernel):
    pid = kernel.spawn(anchor, domains=("K", "Q"))
    kernel.grant(pid, Operation.MEASURE, "Q", "K")
"""

for name, action in [
    ("copy", "copy.copy(handle)"),
    ("deepcopy", "copy.deepcopy(handle)"),
    ("pickle", "pickle.dumps(handle)"),
    ("getstate", "handle.__getstate__()"),
    ("snapshot", "handle.snapshot()"),
    ("statevector", "handle.statevector()"),
    ("amplitudes", "handle.amplitudes()"),
]:
    case(
        f"q/no_cloning/{name}.py",
        {
            "id": f"q.no-cloning.{name}",
            "spec": ["XDV-032-5", "XDV-032-9", "XDV-032-3.1", "XDV-060-8"],
            "description": f"Trying to {name} a Q container is refused with NO_CLONING_VIOLATION and logged (as the failure of the container's next operation); the container stays usable and a Bell pair still reads only 00 or 11.",
            "level": "hybrid",
            "requires": ["q"],
            "expect": {
                "exit": "ok",
                "outputs": ["NO_CLONING_VIOLATION", True],
                "trace": {"counts": {"DOMAIN_RESULT:NO_CLONING_VIOLATION": 1}},
            },
        },
        NO_CLONING.format(action=action),
    )

# Φ coherence windows, envelope isolation, stability (XDV-084 §6)
PHI = """from xdv import Operation
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403

XDV_DOMAINS = {{"Φ": {{"manager": "phi"}}}}
RING = {{"kind": "ising", "n": 6, "J": [[i, (i + 1) % 6, 1.0] for i in range(6)]}}


def attempt(call):
    try:
        value = yield call
    except XdvError as error:
        return error.code.name
    return value["transform"]["status"] if isinstance(value, dict) and "transform" in value else "OK"

{body}
"""

case(
    "phi/envelope/window.py",
    {
        "id": "phi.envelope.transform-outside-window",
        "spec": ["XDV-061-4.3", "XDV-033-4.1", "XDV-004-6.1", "XDV-013-6.3"],
        "description": "An envelope with a 5-step window: a load inside it runs; a shift after sleeping 10 steps is rejected (PHI_ERR_COHERENCE_TIMEOUT) and invalidates the envelope, so the next shift is PHI_ERR_ENVELOPE_INVALID.",
        "level": "hybrid",
        "requires": ["phi"],
        "expect": {
            "exit": "ok",
            "outputs": ["OK", "PHI_ERR_COHERENCE_TIMEOUT", "PHI_ERR_ENVELOPE_INVALID"],
            "trace": {
                "counts": {"DOMAIN_RESULT:PHI_ERR_COHERENCE_TIMEOUT": 1},
                "present": ["FAULT_DETECTED"],
            },
        },
    },
    PHI.format(
        body="""
def anchor():
    contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 5})
    yield Emit((yield from attempt(Invoke(contract, "load", (RING,)))))
    yield Sleep(10)
    yield Emit((yield from attempt(Invoke(contract, "shift", (0.1,)))))
    yield Emit((yield from attempt(Invoke(contract, "shift", (0.1,)))))
    yield Release(contract)


def main(kernel):
    pid = kernel.spawn(anchor, domains=("K", "Φ"))
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")
"""
    ),
)

case(
    "phi/envelope/before_window.py",
    {
        "id": "phi.envelope.transform-before-window",
        "spec": ["XDV-061-4.3", "XDV-012-5.1", "XDV-023-4.3"],
        "description": "A second envelope on the same provider gets a window that starts after the first one's 50-step window; a transform invoked before its window opens is rejected with PHI_ERR_COHERENCE_TIMEOUT.",
        "level": "hybrid",
        "requires": ["phi"],
        "expect": {"exit": "ok", "outputs": [True, "PHI_ERR_COHERENCE_TIMEOUT"]},
    },
    PHI.format(
        body="""
def holder():
    contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 50})
    yield Sleep(60)
    yield Release(contract)


def early():
    yield Sleep(1)
    contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 5})
    yield Emit(contract.terms["window"]["start"] >= 50)
    yield Emit((yield from attempt(Invoke(contract, "load", (RING,)))))


def main(kernel):
    for anchor in (holder, early):
        pid = kernel.spawn(anchor, domains=("K", "Φ"))
        kernel.grant(pid, Operation.PROJECT, "Φ", "K")
"""
    ),
)

case(
    "phi/envelope/cross_vhm.py",
    {
        "id": "phi.envelope.not-transferred-across-vhms",
        "spec": ["XDV-083-4.3", "XDV-061-7", "XDV-013-6.2"],
        "description": "An envelope contract cannot be handed to a process of another VHM (VHM_ISOLATION); its owner still uses it.",
        "level": "hybrid",
        "requires": ["phi"],
        "expect": {
            "exit": "ok",
            "outputs": ["VHM_ISOLATION", "OK"],
            "trace": {"absent": ["RESOURCE_TRANSFER:OK"]},
        },
    },
    PHI.format(
        body="""
def idle():
    yield Sleep(40)


def owner(other):
    contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 30})
    try:
        yield Transfer(contract, other)
        yield Emit("transferred")
    except XdvError as error:
        yield Emit(error.code.name)
    yield Emit((yield from attempt(Invoke(contract, "load", (RING,)))))
    yield Release(contract)


def main(kernel):
    left = kernel.create_vhm("left")
    right = kernel.create_vhm("right")
    other = kernel.spawn(idle, vhm=right, domains=("K", "Φ"))
    pid = kernel.spawn(owner, other, vhm=left, domains=("K", "Φ"))
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")
"""
    ),
)

case(
    "phi/envelope/stability_injected.py",
    {
        "id": "phi.envelope.stability-breach-injected",
        "spec": ["XDV-033-6.3", "XDV-061-6.3", "XDV-024-4.3", "XDV-024-10"],
        "description": "A fault plan injects a stability breach into the first Φ outcome: the transform halts (PHI_ERR_STABILITY_BREACH), the breach is detected and logged, the envelope is invalidated (the next transform is PHI_ERR_ENVELOPE_INVALID), and the run replays with its plan.",
        "level": "hybrid",
        "requires": ["phi"],
        "options": {
            "faults": {
                "version": 1,
                "inject": [{"site": "outcome", "class": "phi.stability", "occurrence": 1}],
            }
        },
        "expect": {
            "exit": "ok",
            "outputs": ["PHI_ERR_STABILITY_BREACH", "PHI_ERR_ENVELOPE_INVALID"],
            "trace": {
                "present": ["FAULT_DETECTED"],
                "order": ["DOMAIN_RESULT:PHI_ERR_STABILITY_BREACH", "FAULT_DETECTED"],
            },
        },
    },
    PHI.format(
        body="""
def anchor():
    contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 20})
    yield Emit((yield from attempt(Invoke(contract, "load", (RING,)))))
    yield Emit((yield from attempt(Invoke(contract, "shift", (0.1,)))))
    yield Release(contract)


def main(kernel):
    pid = kernel.spawn(anchor, domains=("K", "Φ"))
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")
"""
    ),
)
