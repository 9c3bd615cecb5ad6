"""Generating and shrinking the plans ``xdv sim`` runs.

A *plan* is a trace-encodable map that describes one whole simulated run (interpreted by
:mod:`xdv.runtime._sim_workload`)::

    {
      "quantum": 3,                                    # the kernel's time slice
      "limits": {"processes_max": 12, "contracts_per_process_max": 4},
      "managers": {"K": {"lanes": 2, "call_latency": 1}, "Q": {...}, "Φ": {...}},
      "faults": [{"site": "reserve", "occurrence": 2}],  # today's FaultPlan rules
      "procs": [{"domains": ["K", "Q"], "priority": 0, "ops": [...], "kids": [...]}],
    }

:func:`generate_plan` draws a plan from a seed with the kernel's own deterministic random streams,
so a seed names one plan on every machine. The generator is a table of *features*, each adding
settings, managers or operations to the plan; a new kernel feature is covered by adding a row.

:func:`shrink_plan` minimizes a failing plan by delta debugging (Zeller's ddmin) over its parts:
whole processes, then fault rules, then operations, keeping every deletion after which the
same invariant still breaks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from xdv.core import FaultPlan, RandomStream, parse_policy
from xdv.errors import ErrorCode, XdvError

__all__ = ["OPCODES", "check_plan", "generate_plan", "plan_size", "shrink_plan"]

Plan = dict[str, Any]
Spec = dict[str, Any]
OpMaker = Callable[[RandomStream, "_Context"], list[Any] | None]


DECLARED_SLOT = 10  # the interpreter's slot of declared channel 0


class _Context:
    """What an operation generator may refer to: the process's domains, its kids, the plan's
    managers, its declared channels and top-level processes."""

    def __init__(
        self, domains: list[str], kids: int, managers: dict[str, Any], plan: dict[str, Any]
    ) -> None:
        self.domains = domains
        self.kids = kids
        self.managers = managers
        self.declared = len(plan.get("channels", []))
        self.tops = int(plan.get("tops", 1))

    def channel(self, rng: RandomStream) -> int:
        """A channel slot: one the process may open itself, or a declared channel's."""
        if self.declared and rng.randbelow(3) == 0:
            return DECLARED_SLOT + rng.randbelow(self.declared)
        return rng.randbelow(3)

    def domain(self, rng: RandomStream) -> str:
        # Mostly a domain the process is bound to; sometimes one it is not (a refusal).
        if rng.randbelow(8) == 0:
            return rng.choice(sorted(self.managers))
        return rng.choice(self.domains)


def _amount(rng: RandomStream, ctx: _Context, domain: str) -> int:
    if domain == "K":
        # Up to one more lane than the manager has: over-asking must be refused.
        return 1 + rng.randbelow(int(ctx.managers["K"]["lanes"]) + 1)
    if domain == "Q":
        return 1 + rng.randbelow(3)
    return 1


def _reserve(rng: RandomStream, ctx: _Context) -> list[Any]:
    domain = ctx.domain(rng)
    return ["reserve", domain, _amount(rng, ctx, domain), rng.randbelow(4), 4 + rng.randbelow(60)]


def _await(rng: RandomStream, ctx: _Context) -> list[Any]:
    """A reservation that waits in the admission queue, at most 1 to 30 steps."""
    domain = ctx.domain(rng)
    amount = _amount(rng, ctx, domain)
    return ["await", domain, amount, rng.randbelow(4), 4 + rng.randbelow(60), 1 + rng.randbelow(30)]


def _kid_op(name: str) -> OpMaker:
    def make(rng: RandomStream, ctx: _Context) -> list[Any] | None:
        if not ctx.kids:
            return None
        kid = rng.randbelow(ctx.kids)
        if name == "transfer":
            return ["transfer", rng.randbelow(4), kid]
        if name == "suspend":
            return ["suspend", kid, rng.randbelow(4)]
        return [name, kid]

    return make


def _derive(name: str) -> OpMaker:
    def make(rng: RandomStream, ctx: _Context) -> list[Any] | None:
        if name == "delegate" and not ctx.kids:
            return None
        mode = "widen" if rng.randbelow(3) == 0 else "narrow"
        kid = rng.randbelow(ctx.kids) if ctx.kids else 0
        return [name, rng.randbelow(4), mode, kid, rng.randbelow(3)]

    return make


def _share(rng: RandomStream, ctx: _Context) -> list[Any] | None:
    if not ctx.kids:
        return None
    mode = rng.choice(["send", "recv", "both"])
    return ["share", rng.randbelow(3), rng.randbelow(ctx.kids), mode]


def _select(rng: RandomStream, ctx: _Context) -> list[Any]:
    slots = sorted({ctx.channel(rng) for _ in range(1 + rng.randbelow(3))})
    return ["select", slots, rng.randbelow(5)]


# (weight, maker): the operations a process draws from. Add a row to cover a new system call.
OPERATIONS: list[tuple[int, OpMaker]] = [
    (3, lambda rng, ctx: ["sleep", rng.randbelow(4)]),
    (1, lambda rng, ctx: ["yield"]),
    (3, lambda rng, ctx: ["emit"]),
    (1, lambda rng, ctx: ["random"]),
    (5, _reserve),
    (2, _await),
    (3, lambda rng, ctx: ["release", rng.randbelow(4)]),
    (3, lambda rng, ctx: ["invoke", rng.randbelow(4), rng.randbelow(1000)]),
    (2, lambda rng, ctx: ["transition", ctx.domain(rng), rng.randbelow(1000)]),
    (1, _kid_op("wait")),
    (2, _kid_op("transfer")),
    (1, lambda rng, ctx: ["adopt"]),
    (2, _derive("attenuate")),
    (2, _derive("delegate")),
    (1, lambda rng, ctx: ["revoke", rng.randbelow(3)]),
    (1, _kid_op("suspend")),
    (1, lambda rng, ctx: ["poke", rng.choice(["parent", "next"])]),
    # IPC: channels, Send/Receive/Select (always with a timeout: no generated deadlock).
    (2, lambda rng, ctx: ["chan", rng.randbelow(3), 1 + rng.randbelow(4)]),
    (2, _share),
    (4, lambda rng, ctx: ["send", ctx.channel(rng), rng.randbelow(5)]),
    (3, lambda rng, ctx: ["recv", ctx.channel(rng), rng.randbelow(5)]),
    (1, _select),
    (1, lambda rng, ctx: ["close", ctx.channel(rng)]),
    # VHMs: a process touching a top-level process of another VHM must be refused.
    (1, lambda rng, ctx: ["peek", rng.randbelow(ctx.tops)]),
]
_TOTAL_WEIGHT = sum(weight for weight, _ in OPERATIONS)


def _operation(rng: RandomStream, ctx: _Context) -> list[Any]:
    while True:
        pick = rng.randbelow(_TOTAL_WEIGHT)
        for weight, maker in OPERATIONS:
            if pick < weight:
                op = maker(rng, ctx)
                if op is not None:
                    return op
                break
            pick -= weight


def _insert(rng: RandomStream, ops: list[list[Any]], block: list[list[Any]]) -> None:
    """Insert ``block`` into ``ops`` at a random point, in order, as one run."""
    at = rng.randbelow(len(ops) + 1)
    ops[at:at] = block


def _spread(rng: RandomStream, ops: list[list[Any]], items: list[list[Any]]) -> None:
    """Insert ``items`` into ``ops`` at random points, keeping their order."""
    at = 0
    for item in items:
        at = at + rng.randbelow(len(ops) - at + 1)
        ops.insert(at, item)
        at += 1


# Motifs: short coherent scenarios that random operations rarely assemble by chance (a channel
# used by its opener, a pipe to a child, a contract handed to a child). Each returns the block
# of the process's own operations, and may add operations to the child it claims.
def _motif_loop(rng: RandomStream, kids: list[Spec], free: list[int]) -> list[list[Any]]:
    slot, count = rng.randbelow(3), 2 + rng.randbelow(3)
    return [
        ["chan", slot, count],
        *(["send", slot, 0] for _ in range(count)),
        *(["recv", slot, rng.randbelow(2)] for _ in range(count)),
    ]


def _motif_pipe(rng: RandomStream, kids: list[Spec], free: list[int]) -> list[list[Any]]:
    kid, slot, count = free.pop(rng.randbelow(len(free))), rng.randbelow(3), 1 + rng.randbelow(4)
    _spread(rng, kids[kid]["ops"], [["recv", slot, 2 + rng.randbelow(6)] for _ in range(count)])
    return [
        ["chan", slot, 1 + rng.randbelow(3)],
        ["spawn", kid],
        ["share", slot, kid, rng.choice(["recv", "both"])],
        *(["send", slot, rng.randbelow(6)] for _ in range(count)),
    ]


def _motif_handover(rng: RandomStream, kids: list[Spec], free: list[int]) -> list[list[Any]]:
    kid, slot = free.pop(rng.randbelow(len(free))), rng.randbelow(4)
    _spread(rng, kids[kid]["ops"], [["sleep", 1 + rng.randbelow(3)], ["adopt"]])
    return [["reserve", "K", 1, slot, 8], ["spawn", kid], ["transfer", slot, kid]]


def _process(rng: RandomStream, plan: dict[str, Any], depth: int, budget: list[int]) -> Spec:
    managers = plan["managers"]
    domains = ["K"] + [d for d in ("Q", "Φ") if d in managers and rng.randbelow(2)]
    kids: list[Spec] = []
    if depth < 2:
        for _ in range(rng.randbelow(3)):
            if budget[0] <= 0:
                break
            budget[0] -= 1
            kids.append(_process(rng, plan, depth + 1, budget))
    ctx = _Context(domains, len(kids), managers, plan)
    ops = [_operation(rng, ctx) for _ in range(2 + rng.randbelow(10))]
    free = list(range(len(kids)))  # kids no motif has claimed
    for _ in range(rng.randbelow(3)):
        motifs = [_motif_loop] + ([_motif_pipe, _motif_handover] if free else [])
        _insert(rng, ops, rng.choice(motifs)(rng, kids, free))
    # Each other kid is spawned at a random point; every kid is usually waited for later.
    for index in range(len(kids)):
        if index in free:
            _insert(rng, ops, [["spawn", index]])
        if rng.randbelow(3):
            spawned = next(i for i, op in enumerate(ops) if op == ["spawn", index])
            ops.insert(spawned + 1 + rng.randbelow(len(ops) - spawned), ["wait", index])
    spec: Spec = {"domains": domains, "priority": rng.randbelow(3), "ops": ops, "kids": kids}
    if rng.randbelow(3) == 0:
        spec["deadline"] = 10 + rng.randbelow(300)  # for earliest-deadline-first
    return spec


# Scheduler policies a plan may run under (specs for xdv.core.parse_policy).
POLICIES = (
    "round-robin",
    "round-robin",
    "priority",
    "priority:aging=4",
    "fair-share",
    "edf",
    "priority+fair-share",
)


def _managers(rng: RandomStream) -> dict[str, Any]:
    managers: dict[str, Any] = {
        "K": {"manager": "k", "lanes": 1 + rng.randbelow(4), "call_latency": rng.randbelow(3)}
    }
    if rng.randbelow(4) == 0:
        managers["Q"] = {"manager": "q", "providers": ["stim"]}
    if rng.randbelow(3) == 0:
        managers["Φ"] = {"manager": "phi", "latency": rng.randbelow(3)}
    return managers


# Fallback terms a fault policy may give (the Φ manager offers two providers).
_FALLBACKS = {"phi": [{"provider": "phase"}, {"provider": "exact"}]}


def _faults(rng: RandomStream) -> Any:
    """A fault plan's record: injection rules at every fault site (outcome faults of Q, Φ and
    K classes included), and sometimes retry, fallback, restart and escalation policies."""
    if rng.randbelow(5) == 0:
        return []
    plan = FaultPlan.random(
        rng, rules_max=5, pids_max=8, time_max=60, policies=True, fallbacks=_FALLBACKS
    )
    return plan.to_record()


def _vhms(rng: RandomStream) -> list[dict[str, Any]]:
    """0 to 3 VHMs, nested at random; a nested VHM's quotas lie within its ancestors'."""
    vhms: list[dict[str, Any]] = []
    bounds_of: list[dict[str, int]] = []  # the tightest bound of each VHM's chain, by quota
    for index in range(rng.randbelow(4)):
        parent = rng.randbelow(index + 1) - 1 if index else -1  # -1: in the root VHM
        bounds = bounds_of[parent] if parent >= 0 else {}
        quotas: dict[str, int] = {}
        if rng.randbelow(2):
            quotas["processes"] = 1 + rng.randbelow(bounds.get("processes", 6))
        if rng.randbelow(6) == 0 and bounds.get("steps", 300) > 20:
            quotas["steps"] = 20 + rng.randbelow(bounds.get("steps", 300) - 19)
        for name in ("qubits", "envelopes"):
            if rng.randbelow(3) == 0:
                quotas[name] = rng.randbelow(bounds.get(name, 4) + 1)
        vhm: dict[str, Any] = {"quotas": quotas, "weight": 1 + rng.randbelow(4)}
        if parent >= 0:
            vhm["parent"] = parent
        vhms.append(vhm)
        bounds_of.append({**bounds, **quotas})
    return vhms


def _channels(rng: RandomStream, tops: int) -> list[dict[str, Any]]:
    """0 to 2 operator-declared channels between top-level processes (of any VHMs)."""
    return [
        {
            "capacity": 1 + rng.randbelow(4),
            "senders": sorted({rng.randbelow(tops) for _ in range(1 + rng.randbelow(2))}),
            "receivers": sorted({rng.randbelow(tops) for _ in range(1 + rng.randbelow(2))}),
        }
        for _ in range(rng.randbelow(3))
    ]


def generate_plan(seed: int) -> Plan:
    """The plan of ``seed``: the same plan for the same seed, everywhere."""
    rng = RandomStream(seed, ("sim", "plan"))
    tops = 1 + rng.randbelow(3)
    plan: Plan = {
        "policy": rng.choice(POLICIES),
        "quantum": 1 + rng.randbelow(6),
        "limits": {
            "processes_max": 4 + rng.randbelow(16),
            "contracts_per_process_max": 2 + rng.randbelow(4),
        },
        "managers": _managers(rng),
        "faults": _faults(rng),
        "vhms": _vhms(rng),
        "channels": _channels(rng, tops),
        "tops": tops,
    }
    budget = [3 + rng.randbelow(5)]  # child processes, all levels together
    procs = []
    for _ in range(tops):
        spec = _process(rng, plan, 0, budget)
        spec["vhm"] = rng.randbelow(len(plan["vhms"]) + 1) - 1  # -1: the root VHM
        procs.append(spec)
    # The parties of each declared channel use it.
    for index, channel in enumerate(plan["channels"]):
        for sender in channel["senders"]:
            count = 1 + rng.randbelow(3)
            _spread(rng, procs[sender]["ops"], [["send", DECLARED_SLOT + index, 2]] * count)
        for receiver in channel["receivers"]:
            count = 1 + rng.randbelow(3)
            _spread(rng, procs[receiver]["ops"], [["recv", DECLARED_SLOT + index, 6]] * count)
    plan["procs"] = procs
    del plan["tops"]  # used while drawing operations only
    return plan


# ---------------------------------------------------------------------- checking

_INT = int
_DOMAIN = "domain"
_TARGET = "target"
_MODE = "mode"
_SHARE = "share mode"
_SLOTS = "slot list"
# Every operation the interpreter knows, with the kinds of its arguments.
OPCODES: dict[str, tuple[Any, ...]] = {
    "sleep": (_INT,),
    "yield": (),
    "emit": (),
    "random": (),
    "reserve": (_DOMAIN, _INT, _INT, _INT),
    "await": (_DOMAIN, _INT, _INT, _INT, _INT),
    "release": (_INT,),
    "invoke": (_INT, _INT),
    "transition": (_DOMAIN, _INT),
    "spawn": (_INT,),
    "wait": (_INT,),
    "transfer": (_INT, _INT),
    "adopt": (),
    "attenuate": (_INT, _MODE, _INT, _INT),
    "delegate": (_INT, _MODE, _INT, _INT),
    "revoke": (_INT,),
    "suspend": (_INT, _INT),
    "poke": (_TARGET,),
    "chan": (_INT, _INT),
    "share": (_INT, _INT, _SHARE),
    "send": (_INT, _INT),
    "recv": (_INT, _INT),
    "select": (_SLOTS, _INT),
    "close": (_INT,),
    "peek": (_INT,),
}
_DOMAINS = ("K", "Q", "Φ")
_KINDS: dict[Any, Callable[[Any], bool]] = {
    _INT: lambda value: type(value) is int and 0 <= value <= 1 << 20,
    _DOMAIN: lambda value: value in _DOMAINS,
    _MODE: lambda value: value in ("narrow", "widen"),
    _TARGET: lambda value: value in ("parent", "next"),
    _SHARE: lambda value: value in ("send", "recv", "both"),
    _SLOTS: lambda value: (
        isinstance(value, list)
        and 0 < len(value) <= 8
        and all(type(item) is int and 0 <= item <= 64 for item in value)
    ),
}


def _invalid(message: str) -> XdvError:
    return XdvError(message, code=ErrorCode.SIM_PLAN_INVALID, where="simulation plan")


def _check_process(spec: Any, where: str, depth: int) -> None:
    if not isinstance(spec, dict) or not {"domains", "ops", "kids"} <= set(spec):
        raise _invalid(f"{where} must be a map with domains, ops and kids")
    domains = spec["domains"]
    if not isinstance(domains, list) or "K" not in domains or not set(domains) <= set(_DOMAINS):
        raise _invalid(f"{where}.domains must list K and optionally Q and Φ")
    if type(spec.get("priority", 0)) is not int:
        raise _invalid(f"{where}.priority must be an integer")
    if spec.get("deadline") is not None and not _KINDS[_INT](spec["deadline"]):
        raise _invalid(f"{where}.deadline must be a logical time")
    if type(spec.get("vhm", -1)) is not int:
        raise _invalid(f"{where}.vhm must be an integer (-1: the root VHM)")
    if not isinstance(spec["ops"], list) or not isinstance(spec["kids"], list):
        raise _invalid(f"{where}.ops and {where}.kids must be lists")
    for index, op in enumerate(spec["ops"]):
        kinds = OPCODES.get(op[0]) if isinstance(op, list) and op else None
        if kinds is None or len(op) != len(kinds) + 1:
            raise _invalid(f"{where}.ops[{index}] is not an operation of the simulator: {op!r}")
        for position, (kind, value) in enumerate(zip(kinds, op[1:], strict=True), 1):
            if not _KINDS[kind](value):
                raise _invalid(f"{where}.ops[{index}][{position}] is not a valid {kind!s}")
    if depth > 8:
        raise _invalid(f"{where} nests deeper than 8 levels")
    for index, kid in enumerate(spec["kids"]):
        _check_process(kid, f"{where}.kids[{index}]", depth + 1)


def check_plan(plan: Any) -> dict[str, Any]:
    """``plan`` if it has a plan's shape (the module docstring), else SIM_PLAN_INVALID."""
    keys = {"quantum", "limits", "managers", "faults", "procs"}
    if not isinstance(plan, dict) or not keys <= set(plan):
        raise _invalid(f"a plan is a map with {sorted(keys)}")
    if type(plan["quantum"]) is not int or not 1 <= plan["quantum"] <= 1024:
        raise _invalid("quantum must be an integer in 1..1024")
    limits = plan["limits"]
    if not isinstance(limits, dict) or not set(limits) <= {
        "processes_max",
        "contracts_per_process_max",
    }:
        raise _invalid("limits may set processes_max and contracts_per_process_max")
    managers = plan["managers"]
    if not isinstance(managers, dict) or "K" not in managers or not set(managers) <= {*_DOMAINS}:
        raise _invalid("managers must describe the K manager and optionally Q and Φ")
    policy = plan.get("policy", "round-robin")
    try:
        parse_policy(policy) if isinstance(policy, str) else None
    except XdvError as error:
        raise _invalid(f"policy is not a scheduler policy: {error.message}") from None
    if not isinstance(policy, str):
        raise _invalid("policy must be a scheduler policy spec such as 'fair-share'")
    try:
        FaultPlan.from_record(plan["faults"])
    except XdvError as error:
        raise _invalid(f"faults is not a fault plan: {error.message}") from None
    if not isinstance(plan["procs"], list):
        raise _invalid("procs must be a list of processes")
    vhms = plan.get("vhms", [])
    if not isinstance(vhms, list) or not all(
        isinstance(vhm, dict)
        and isinstance(vhm.get("quotas", {}), dict)
        and (vhm.get("parent") is None or vhm.get("parent") in range(index))
        for index, vhm in enumerate(vhms)
    ):
        raise _invalid("vhms must be a list of {quotas, weight, parent (an earlier index)}")
    for index, spec in enumerate(plan["procs"]):
        if isinstance(spec, dict) and spec.get("vhm", -1) not in range(-1, len(vhms)):
            raise _invalid(f"procs[{index}].vhm names no VHM of the plan")
    channels = plan.get("channels", [])
    if not isinstance(channels, list) or not all(
        isinstance(channel, dict)
        and type(channel.get("capacity")) is int
        and all(
            isinstance(channel.get(side), list) and all(type(item) is int for item in channel[side])
            for side in ("senders", "receivers")
        )
        for channel in channels
    ):
        raise _invalid("channels must be a list of {capacity, senders, receivers}")
    for index, spec in enumerate(plan["procs"]):
        _check_process(spec, f"procs[{index}]", 0)
    return plan


# ---------------------------------------------------------------------- shrinking


def _op_paths(plan: Plan) -> list[tuple[int, ...]]:
    """The address of every operation: (proc, kid, kid, ..., op index)."""
    paths: list[tuple[int, ...]] = []

    def walk(spec: Spec, prefix: tuple[int, ...]) -> None:
        for index in range(len(spec["ops"])):
            paths.append((*prefix, index))
        for index, kid in enumerate(spec["kids"]):
            walk(kid, (*prefix, index))

    for index, spec in enumerate(plan["procs"]):
        walk(spec, (index,))
    return paths


def _without_ops(plan: Plan, drop: set[tuple[int, ...]]) -> Plan:
    result = copy.deepcopy(plan)

    def walk(spec: Spec, prefix: tuple[int, ...]) -> None:
        spec["ops"] = [op for i, op in enumerate(spec["ops"]) if (*prefix, i) not in drop]
        for index, kid in enumerate(spec["kids"]):
            walk(kid, (*prefix, index))

    for index, spec in enumerate(result["procs"]):
        walk(spec, (index,))
    return result


def plan_size(plan: Plan) -> int:
    """How big a plan is: its operations, processes and fault rules."""
    faults = plan["faults"]
    if isinstance(faults, dict):
        size = len(faults.get("inject", [])) + len(faults.get("policies", {}))
    else:
        size = len(faults)
    return len(_op_paths(plan)) + len(plan["procs"]) + size


def _ddmin(items: list[Any], fails: Callable[[list[Any]], bool], budget: list[int]) -> list[Any]:
    """The smallest sublist of ``items`` (1-minimal where the budget allows) that still
    ``fails``; ``budget`` bounds the test runs."""
    granularity = 2
    while len(items) >= 2 and budget[0] > 0:
        chunk = max(1, len(items) // granularity)
        reduced = False
        for start in range(0, len(items), chunk):
            complement = items[:start] + items[start + chunk :]
            if budget[0] <= 0:
                break
            budget[0] -= 1
            if fails(complement):
                items = complement
                granularity = max(granularity - 1, 2)
                reduced = True
                break
        if not reduced:
            if granularity >= len(items):
                break
            granularity = min(len(items), granularity * 2)
    if len(items) == 1 and budget[0] > 0:
        budget[0] -= 1
        if fails([]):
            return []
    return items


def shrink_plan(plan: Plan, fails: Callable[[Plan], bool], runs_max: int = 300) -> Plan:
    """A smaller plan that still ``fails`` (see the module docstring); at most ``runs_max``
    test runs."""
    budget = [runs_max]
    procs = _ddmin(
        list(range(len(plan["procs"]))),
        lambda keep: fails({**plan, "procs": [plan["procs"][i] for i in keep]}),
        budget,
    )
    plan = {**plan, "procs": [plan["procs"][i] for i in procs]}
    plan = {**plan, "faults": _shrink_faults(plan, fails, budget)}
    paths = _op_paths(plan)
    kept = _ddmin(
        paths,
        lambda keep: fails(_without_ops(plan, set(paths) - set(keep))),
        budget,
    )
    plan = _without_ops(plan, set(paths) - set(kept))
    pruned = {**plan, "procs": [_prune(spec) for spec in plan["procs"]]}
    if pruned != plan and budget[0] > 0 and fails(pruned):
        plan = pruned
    return plan


def _shrink_faults(plan: Plan, fails: Callable[[Plan], bool], budget: list[int]) -> Any:
    """The plan's fault plan with as few rules and policies as still fail."""
    faults = plan["faults"]
    if isinstance(faults, list):
        return _ddmin(list(faults), lambda keep: fails({**plan, "faults": keep}), budget)
    document = dict(faults)
    document["inject"] = _ddmin(
        list(document.get("inject", [])),
        lambda keep: fails({**plan, "faults": {**document, "inject": keep}}),
        budget,
    )
    policies = sorted(document.get("policies", {}).items())
    kept = _ddmin(
        policies,
        lambda keep: fails({**plan, "faults": {**document, "policies": dict(keep)}}),
        budget,
    )
    document["policies"] = dict(kept)
    return document


# The position of the child index in each operation that names a child.
_KID_ARGUMENT = {
    "spawn": 1,
    "wait": 1,
    "suspend": 1,
    "transfer": 2,
    "delegate": 3,
    "share": 2,
}


def _prune(spec: Spec) -> Spec:
    """``spec`` without the children that no operation names (the others renumbered)."""
    named = sorted(
        {op[_KID_ARGUMENT[op[0]]] for op in spec["ops"] if op[0] in _KID_ARGUMENT}
        & set(range(len(spec["kids"])))
    )
    renumber = {old: new for new, old in enumerate(named)}
    ops = []
    for op in spec["ops"]:
        position = _KID_ARGUMENT.get(op[0])
        if position is not None and op[position] in renumber:
            op = [*op[:position], renumber[op[position]], *op[position + 1 :]]
        ops.append(op)
    kids = [_prune(spec["kids"][old]) for old in named]
    return {**spec, "ops": ops, "kids": kids}
