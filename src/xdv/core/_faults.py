"""The hybrid fault model's data: fault classes, escalation levels, recovery policies, fault plans.

Every fault the kernel meets belongs to one :class:`FaultClass` (``q.decoherence``,
``phi.stability``, ``k.process``, ``orchestration.transition``, ...), which names the domain it
comes from and how it is contained. :func:`classify` maps an error code (and the domain that
raised it) to its class, so the classification is a pure function of what the trace records.

A :class:`FaultPlan` is the configuration of fault handling for one run:

* **injection rules** (:class:`FaultRule`): at a kernel site (``invoke``, ``reserve``,
  ``transition.<phase>``, ``outcome``), on the ``occurrence``-th matching visit and the
  ``count - 1`` visits after it, a fault of a given class is raised instead of what would have
  happened. A visit matches when the rule's filters (process, VHM, domain, a logical-time range)
  hold; each rule counts its own matching visits in kernel order, so a plan fires at the same
  events in every run with the same inputs.
* **policies** (:class:`ClassPolicy`), by fault class, domain prefix (``q``, ``phi``, ``k``,
  ``orchestration``) or ``*``: retry with back-off in logical time, fallback reservation terms
  (another provider or calibration profile), restarts of a VHM from its K snapshot, and the
  escalation thresholds (``count`` faults within ``window`` logical steps) of the domain, VHM
  and node levels.

The plan is immutable; the counters it drives live in the kernel's fault handler. It is recorded
in the run-start entry (:meth:`FaultPlan.to_record`) and rebuilt from it by a replay
(:meth:`FaultPlan.from_record`); ``docs/faults.md`` documents the JSON form that
``xdv run --faults PLAN.json`` reads (:meth:`FaultPlan.from_file`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from xdv.errors import ErrorCode, XdvError, safe_repr
from xdv.inputs import load_json, read_bounded
from xdv.trace import Domain, canonicalize

__all__ = [
    "FAULT_CLASSES",
    "FAULT_SITES",
    "ClassPolicy",
    "FaultClass",
    "FaultLevel",
    "FaultPlan",
    "FaultRule",
    "RetryPolicy",
    "Threshold",
    "classify",
]

FAULT_SITES = (
    "transition.capability",
    "transition.reservation",
    "transition.contract",
    "transition.binding",
    "transition.projection",
    "transition.activation",
    "transition.logging",
    "invoke",
    "reserve",
    "outcome",
    "send",
    "receive",
)
"""Where a fault can be injected. ``outcome`` is the delivery of an ``Invoke``'s outcome: the
operation ran, and its result is replaced by the fault (a measurement that failed, an envelope
that lost its stability). ``send`` and ``receive`` are a channel's: a fault refuses the whole
message, or takes nothing from the channel."""

PLAN_VERSION = 1
_ITEMS_MAX = 256  # rules, policies and fallbacks a plan may hold
_INTEGER_MAX = 2**40  # the kernel's bound on logical time and counters
T = TypeVar("T")


class FaultLevel(enum.IntEnum):
    """The escalation levels (XDV-024 §5.2)."""

    PROCESS = 0
    DOMAIN = 1
    VHM = 2
    NODE = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class FaultClass:
    """One kind of fault: its ``name``, the ``domain`` it belongs to (O for cross-domain
    orchestration faults), the error ``code`` an injected fault of this class carries, and its
    containment: ``release`` (the operation is aborted, the container or envelope invalidated
    and its contract released), ``refuse`` (the request was refused before it changed anything:
    nothing to undo) or ``end`` (the process's own fault: the process ends)."""

    name: str
    domain: Domain
    code: ErrorCode
    containment: str
    summary: str

    def to_record(self) -> dict[str, Any]:
        return {"class": self.name, "domain": self.domain.label}


def _classes(*items: FaultClass) -> dict[str, FaultClass]:
    return {item.name: item for item in items}


_Q, _PHI, _K, _O = Domain.Q, Domain.PHI, Domain.K, Domain.ORCHESTRATION
FAULT_CLASSES: dict[str, FaultClass] = _classes(
    # Q measurement failures (XDV-024 §3.2) and refused Q requests.
    FaultClass("q.measurement_timeout", _Q, ErrorCode.MEASUREMENT_TIMEOUT, "release",
               "a measurement did not complete in time"),
    FaultClass("q.invalid_result", _Q, ErrorCode.MEASUREMENT_INVALID, "release",
               "a measurement returned an invalid result"),
    FaultClass("q.decoherence", _Q, ErrorCode.DECOHERENCE_EXCEEDED, "release",
               "a job would exceed its decoherence budget"),
    FaultClass("q.provider", _Q, ErrorCode.Q_PROVIDER_FAILED, "release",
               "the Q hardware provider reported an error"),
    FaultClass("q.refused", _Q, ErrorCode.MEASUREMENT_RATE_EXCEEDED, "refuse",
               "a Q request broke its measurement contract and was refused before it ran"),
    # Φ coherence instability (XDV-024 §4.2) and refused Φ requests.
    FaultClass("phi.coherence_timeout", _PHI, ErrorCode.PHI_ERR_COHERENCE_TIMEOUT, "release",
               "a transform left its coherence window"),
    FaultClass("phi.stability", _PHI, ErrorCode.PHI_ERR_STABILITY_BREACH, "release",
               "an envelope's stability fell below its tolerance"),
    FaultClass("phi.integrity", _PHI, ErrorCode.PHI_INTEGRITY_FAILED, "release",
               "a transform's integrity check failed, or the provider failed"),
    FaultClass("phi.collision", _PHI, ErrorCode.PHI_ERR_WINDOW_CONFLICT, "refuse",
               "two envelopes or windows collided"),
    FaultClass("phi.refused", _PHI, ErrorCode.PHI_ERR_UNAUTHORIZED_MUTATION, "refuse",
               "a Φ request was refused before it ran"),
    # K faults.
    FaultClass("k.process", _K, ErrorCode.PROCESS_FAULT, "end",
               "a process's own code failed"),
    FaultClass("k.domain", _K, ErrorCode.DOMAIN_FAULT, "refuse",
               "a K domain operation failed"),
    # Cross-domain orchestration faults.
    FaultClass("orchestration.transition", _O, ErrorCode.TRANSITION_FAILED, "refuse",
               "a transition failed and was rolled back"),
    FaultClass("orchestration.capability", _O, ErrorCode.DOMAIN_UNAUTHORIZED, "refuse",
               "a capability check failed"),
    FaultClass("orchestration.contract", _O, ErrorCode.CONTRACT_INVALID, "refuse",
               "a resource contract was invalid, expired or exhausted"),
    FaultClass("orchestration.domain", _O, ErrorCode.DOMAIN_UNAVAILABLE, "refuse",
               "a domain was unavailable or not bound"),
    FaultClass("orchestration.injected", _O, ErrorCode.INJECTED_FAULT, "refuse",
               "a fault plan's rule fired (no class named)"),
    FaultClass("orchestration.escalation", _O, ErrorCode.NODE_PANIC, "end",
               "the consequence of an escalation (quarantine, VHM end, node panic)"),
    FaultClass("orchestration.run", _O, ErrorCode.WORKLOAD_INVALID, "end",
               "the run itself (workload, trace, limits) failed"),
)  # fmt: skip

_BY_CODE: dict[ErrorCode, str] = {
    ErrorCode.MEASUREMENT_TIMEOUT: "q.measurement_timeout",
    ErrorCode.MEASUREMENT_INVALID: "q.invalid_result",
    ErrorCode.DECOHERENCE_EXCEEDED: "q.decoherence",
    ErrorCode.Q_PROVIDER_FAILED: "q.provider",
    ErrorCode.PHI_ERR_COHERENCE_TIMEOUT: "phi.coherence_timeout",
    ErrorCode.PHI_ERR_STABILITY_BREACH: "phi.stability",
    ErrorCode.PHI_INTEGRITY_FAILED: "phi.integrity",
    ErrorCode.PHI_ERR_PROVIDER_FAILED: "phi.integrity",
    ErrorCode.PHI_ERR_ENVELOPE_INVALID: "phi.integrity",
    ErrorCode.PHI_ERR_WITNESS_INVALID: "phi.integrity",
    ErrorCode.PHI_ERR_WINDOW_CONFLICT: "phi.collision",
    ErrorCode.PHI_ERR_ENVELOPE_ALIASING: "phi.collision",
    ErrorCode.TRANSITION_FAILED: "orchestration.transition",
    ErrorCode.INJECTED_FAULT: "orchestration.injected",
    ErrorCode.DOMAIN_QUARANTINED: "orchestration.escalation",
    ErrorCode.VHM_TERMINATED: "orchestration.escalation",
    ErrorCode.NODE_PANIC: "orchestration.escalation",
    ErrorCode.RECOVERY_EXHAUSTED: "orchestration.escalation",
    ErrorCode.FAULT_PLAN_INVALID: "orchestration.run",
}
# By the hundreds of the code, for codes not listed above.
_BY_RANGE = {
    1: "orchestration.capability",
    2: "orchestration.contract",
    3: "orchestration.domain",
    4: "k.process",
    5: "orchestration.transition",
    6: "orchestration.run",
    7: "orchestration.run",
    8: "q.refused",
    9: "phi.refused",
    10: "k.process",
}
_DOMAIN_FAULTS = {_Q: "q.provider", _PHI: "phi.integrity"}

# Codes that are the consequence of an earlier fault or of the run's end, never a new fault:
# they are classified and recorded, but not counted towards escalation.
CONSEQUENCES = frozenset(
    {
        ErrorCode.DOMAIN_QUARANTINED,
        ErrorCode.DOMAIN_FROZEN,
        ErrorCode.VHM_TERMINATED,
        ErrorCode.NODE_PANIC,
        ErrorCode.RECOVERY_EXHAUSTED,
        ErrorCode.RUN_INTERRUPTED,
        ErrorCode.DEADLOCK,
        ErrorCode.WORKLOAD_INVALID,
    }
)


def classify(code: ErrorCode | int, domain: Domain = Domain.K) -> FaultClass:
    """The class of a fault with error ``code`` raised in ``domain`` (a pure function: the
    trace's status and domain fields decide it)."""
    try:
        known = ErrorCode(code)
    except ValueError:
        return FAULT_CLASSES["orchestration.run"]
    name = _BY_CODE.get(known)
    if name is None and known is ErrorCode.DOMAIN_FAULT:
        name = _DOMAIN_FAULTS.get(domain, "k.domain")
    if name is None:
        name = _BY_RANGE.get(int(known) // 100, "orchestration.run")
    return FAULT_CLASSES[name]


# ---------------------------------------------------------------------------------- reading


def _invalid(message: str, where: str) -> XdvError:
    return XdvError(message, code=ErrorCode.FAULT_PLAN_INVALID, where=f"fault plan: {where}")


def _integer(value: Any, where: str, low: int = 0, high: int = _INTEGER_MAX) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _invalid(
            f"{where} must be an integer in [{low}, {high}], got {safe_repr(value)}", where
        )
    return value


def _optional_integer(record: Mapping[str, Any], key: str, where: str, low: int = 0) -> int | None:
    value = record.get(key)
    return None if value is None else _integer(value, f"{where}.{key}", low)


def _mapping(value: Any, where: str, keys: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(type(key) is str for key in value):
        raise _invalid(f"{where} must be a JSON object, got {safe_repr(value)}", where)
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise _invalid(f"{where} has unknown field(s) {unknown} (known: {', '.join(keys)})", where)
    return value


def _sequence(value: Any, where: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise _invalid(f"{where} must be a JSON array, got {safe_repr(value)}", where)
    if len(value) > _ITEMS_MAX:
        raise _invalid(f"{where} holds {len(value)} items; at most {_ITEMS_MAX}", where)
    return value


# ---------------------------------------------------------------------------------- rules


_RULE_KEYS = ("site", "occurrence", "count", "pid", "vhm", "domain", "class", "after", "before")


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Inject a fault at ``site`` on the ``occurrence``-th matching visit (1-based) and the
    ``count - 1`` matching visits after it.

    A visit matches when every filter given holds: the visiting process is ``pid``, it belongs
    to VHM ``vhm``, the site's domain is ``domain``, and the logical time L satisfies
    ``after <= L < before``. ``fault`` names the :class:`FaultClass` of the injected fault (its
    code is the class's code); without one the fault is INJECTED_FAULT.
    """

    site: str
    occurrence: int = 1
    pid: int | None = None
    fault: str | None = None
    count: int = 1
    vhm: int | None = None
    domain: Domain | None = None
    after: int | None = None
    before: int | None = None

    def __post_init__(self) -> None:
        if self.site not in FAULT_SITES:
            raise _invalid(
                f"unknown fault site {self.site!r}; known: {', '.join(FAULT_SITES)}", "site"
            )
        _integer(self.occurrence, "occurrence", 1)
        _integer(self.count, "count", 1)
        for name in ("pid", "vhm", "after", "before"):
            value = getattr(self, name)
            if value is not None:
                _integer(value, name)
        if self.fault is not None and self.fault not in FAULT_CLASSES:
            raise _invalid(
                f"unknown fault class {safe_repr(self.fault)}; known: {', '.join(FAULT_CLASSES)}",
                "class",
            )
        if self.site == "outcome" and self.fault is not None:
            domain = FAULT_CLASSES[self.fault].domain
            if domain not in (Domain.Q, Domain.PHI, Domain.K):
                raise _invalid(
                    f"an outcome fault belongs to a domain (Q, Φ or K), not {self.fault!r}",
                    "class",
                )
            if self.domain is not None and self.domain is not domain:
                raise _invalid(
                    f"class {self.fault!r} is a {domain.label} fault; the rule's domain is "
                    f"{self.domain.label}",
                    "domain",
                )

    @property
    def fault_class(self) -> FaultClass:
        """The class of the fault this rule injects."""
        return FAULT_CLASSES[self.fault or "orchestration.injected"]

    @property
    def site_domain(self) -> Domain | None:
        """The domain a visit must be in: the rule's, or (at ``outcome``) its class's."""
        if self.domain is not None:
            return self.domain
        if self.site == "outcome" and self.fault is not None:
            return FAULT_CLASSES[self.fault].domain
        return None

    @property
    def simple(self) -> bool:
        """Whether the rule uses only the fields of the original plan format."""
        return (self.fault, self.count, self.vhm, self.domain, self.after, self.before) == (
            None,
            1,
            None,
            None,
            None,
            None,
        )

    def matches(self, site: str, pid: int, vhm: int, domain: Domain | None, now: int) -> bool:
        """Whether a visit to ``site`` passes this rule's filters (the count is the caller's)."""
        wanted = self.site_domain
        return (
            site == self.site
            and (self.pid is None or self.pid == pid)
            and (self.vhm is None or self.vhm == vhm)
            and (wanted is None or wanted is domain)
            and (self.after is None or now >= self.after)
            and (self.before is None or now < self.before)
        )

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"site": self.site, "occurrence": self.occurrence}
        for key, value in (
            ("pid", self.pid),
            ("class", self.fault),
            ("vhm", self.vhm),
            ("domain", None if self.domain is None else self.domain.label),
            ("after", self.after),
            ("before", self.before),
        ):
            if value is not None:
                record[key] = value
        if self.count != 1:
            record["count"] = self.count
        return record

    @classmethod
    def from_record(cls, record: Any, where: str = "inject[0]") -> FaultRule:
        """Read one rule (a plan file's ``inject`` item, or a recorded rule)."""
        fields = _mapping(record, where, _RULE_KEYS)
        site = fields.get("site")
        if not isinstance(site, str):
            raise _invalid(f"{where}.site must name a fault site, got {safe_repr(site)}", where)
        fault = fields.get("class")
        if fault is not None and not isinstance(fault, str):
            raise _invalid(f"{where}.class must name a fault class", f"{where}.class")
        domain_name = fields.get("domain")
        domain = None
        if domain_name is not None:
            try:
                domain = Domain.parse(domain_name)
            except XdvError:
                raise _invalid(
                    f"{where}.domain must be K, Q or Φ, got {safe_repr(domain_name)}",
                    f"{where}.domain",
                ) from None
        try:
            return cls(
                site=site,
                occurrence=_integer(fields.get("occurrence", 1), f"{where}.occurrence", 1),
                pid=_optional_integer(fields, "pid", where),
                fault=fault,
                count=_integer(fields.get("count", 1), f"{where}.count", 1),
                vhm=_optional_integer(fields, "vhm", where),
                domain=domain,
                after=_optional_integer(fields, "after", where),
                before=_optional_integer(fields, "before", where),
            )
        except XdvError as error:
            if error.code is ErrorCode.FAULT_PLAN_INVALID and error.where == "fault plan: site":
                raise _invalid(error.message, f"{where}.site") from None
            if error.code is ErrorCode.FAULT_PLAN_INVALID and error.where in (
                "fault plan: class",
                "fault plan: domain",
            ):
                raise _invalid(error.message, f"{where}.{error.where.rpartition(' ')[2]}") from None
            raise


# ---------------------------------------------------------------------------------- policies


@dataclass(frozen=True, slots=True)
class Threshold:
    """An escalation threshold: ``count`` faults within the last ``window`` logical steps
    (the faults at L with ``now - window < L <= now``)."""

    count: int
    window: int

    def to_record(self) -> dict[str, int]:
        return {"count": self.count, "window": self.window}

    @classmethod
    def from_record(cls, record: Any, where: str) -> Threshold:
        fields = _mapping(record, where, ("count", "window"))
        return cls(
            _integer(fields.get("count"), f"{where}.count", 1),
            _integer(fields.get("window"), f"{where}.window", 1),
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry a failed operation up to ``attempts`` times; attempt ``n`` (1-based) waits
    ``min(delay * factor**(n-1), delay_max)`` logical steps before it runs again."""

    attempts: int
    delay: int = 1
    factor: int = 2
    delay_max: int = 1024

    def delay_for(self, attempt: int) -> int:
        """The back-off before retry ``attempt`` (1-based), in logical steps."""
        return int(min(self.delay * self.factor ** min(attempt - 1, 64), self.delay_max))

    def to_record(self) -> dict[str, int]:
        return {
            "attempts": self.attempts,
            "delay": self.delay,
            "factor": self.factor,
            "delay_max": self.delay_max,
        }

    @classmethod
    def from_record(cls, record: Any, where: str) -> RetryPolicy:
        fields = _mapping(record, where, ("attempts", "delay", "factor", "delay_max"))
        return cls(
            attempts=_integer(fields.get("attempts"), f"{where}.attempts", 1, _ITEMS_MAX),
            delay=_integer(fields.get("delay", 1), f"{where}.delay", 1),
            factor=_integer(fields.get("factor", 2), f"{where}.factor", 1, 16),
            delay_max=_integer(fields.get("delay_max", 1024), f"{where}.delay_max", 1),
        )


_LEVELS = {level.label: level for level in (FaultLevel.DOMAIN, FaultLevel.VHM, FaultLevel.NODE)}
_POLICY_KEYS = ("retry", "fallback", "restart", "escalate")


@dataclass(frozen=True, slots=True)
class ClassPolicy:
    """How faults of a class are recovered from and when they escalate.

    ``retry``: retried in place, with back-off (outcome faults). ``fallback``: reservation
    terms tried in turn once retries are spent (``{"provider": "exact"}``, ``{"calibration":
    "fake_manila"}``): the faulted contract is released, a new one reserved with its terms
    overridden, the operation run there, and the process's handle follows the new contract.
    ``restart``: how many times a VHM this class escalates to may be restarted from its K
    snapshot before it is terminated. ``escalate``: the threshold of each level above the
    process (``domain``, ``vhm``, ``node``); a level without one is never reached by counting.
    """

    retry: RetryPolicy | None = None
    fallback: tuple[Mapping[str, Any], ...] = ()
    restart: int = 0
    escalate: Mapping[FaultLevel, Threshold] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {}
        if self.retry is not None:
            record["retry"] = self.retry.to_record()
        if self.fallback:
            record["fallback"] = [dict(terms) for terms in self.fallback]
        if self.restart:
            record["restart"] = self.restart
        if self.escalate:
            record["escalate"] = {
                level.label: threshold.to_record()
                for level, threshold in sorted(self.escalate.items())
            }
        return record

    @classmethod
    def from_record(cls, record: Any, where: str) -> ClassPolicy:
        fields = _mapping(record, where, _POLICY_KEYS)
        retry = fields.get("retry")
        fallback = []
        for index, terms in enumerate(_sequence(fields.get("fallback", []), f"{where}.fallback")):
            item = f"{where}.fallback[{index}]"
            if not isinstance(terms, Mapping) or not terms:
                raise _invalid(f"{item} must be a non-empty object of reservation terms", item)
            try:
                fallback.append(canonicalize(dict(terms), item))
            except XdvError as error:
                raise _invalid(f"{item}: {error.message}", item) from None
        escalate = {}
        for name, threshold in _mapping(
            fields.get("escalate", {}), f"{where}.escalate", tuple(_LEVELS)
        ).items():
            escalate[_LEVELS[name]] = Threshold.from_record(threshold, f"{where}.escalate.{name}")
        return cls(
            retry=None if retry is None else RetryPolicy.from_record(retry, f"{where}.retry"),
            fallback=tuple(fallback),
            restart=_integer(fields.get("restart", 0), f"{where}.restart", 0, _ITEMS_MAX),
            escalate=escalate,
        )


_WILDCARDS = {"q": _Q, "phi": _PHI, "k": _K, "orchestration": _O}
_PLAN_KEYS = ("version", "inject", "policies")
_NO_POLICY = ClassPolicy()


class Draws(Protocol):
    """What :meth:`FaultPlan.random` draws from (``random.Random`` or a kernel
    :class:`~xdv.core.RandomStream`)."""

    def randint(self, low: int, high: int, /) -> int: ...


def _pick(rng: Draws, items: Sequence[T]) -> T:
    return items[rng.randint(0, len(items) - 1)]


class FaultPlan:
    """The fault configuration of a run: injection rules and policies by fault class (see the
    module docstring). Immutable; the kernel's fault handler keeps the counters."""

    __slots__ = ("_resolved", "policies", "rules")

    def __init__(
        self,
        rules: Sequence[FaultRule] = (),
        policies: Mapping[str, ClassPolicy] | None = None,
    ) -> None:
        if len(rules) > _ITEMS_MAX:
            raise _invalid(f"a plan holds at most {_ITEMS_MAX} rules", "inject")
        for index, rule in enumerate(rules):
            if not isinstance(rule, FaultRule):
                raise _invalid(f"rule {index} is not a FaultRule", f"inject[{index}]")
        for key, policy in (policies or {}).items():
            if key != "*" and key not in FAULT_CLASSES and key not in _WILDCARDS:
                raise _invalid(
                    f"policies: {key!r} is neither a fault class, a domain prefix "
                    f"({', '.join(_WILDCARDS)}) nor '*'",
                    f"policies.{key}",
                )
            if not isinstance(policy, ClassPolicy):
                raise _invalid(f"the policy of {key!r} is not a ClassPolicy", f"policies.{key}")
        self.rules = tuple(rules)
        self.policies: dict[str, ClassPolicy] = dict(sorted((policies or {}).items()))
        self._resolved: dict[str, tuple[str, ClassPolicy]] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FaultPlan) and self.to_record() == other.to_record()

    def __hash__(self) -> int:
        return hash(repr(self.to_record()))

    def __repr__(self) -> str:
        return f"FaultPlan({self.to_record()!r})"

    def policy_for(self, fault: FaultClass) -> tuple[str, ClassPolicy]:
        """The policy that governs ``fault``, and the key of the entry its escalation
        thresholds come from (faults are counted per that key; ``""`` when none applies).

        Each part of the policy (``retry``, ``fallback``, ``restart``, ``escalate``) comes from
        the most specific entry that sets it: the class's own, else its domain prefix's
        (``q``, ``phi``, ``k``, ``orchestration``), else ``*``'s."""
        resolved = self._resolved.get(fault.name)
        if resolved is not None:
            return resolved
        chain = [
            (key, self.policies[key])
            for key in (fault.name, fault.name.partition(".")[0], "*")
            if key in self.policies
        ]
        if not chain:
            resolved = ("", _NO_POLICY)
        else:
            retry = next((p.retry for _, p in chain if p.retry is not None), None)
            fallback = next((p.fallback for _, p in chain if p.fallback), ())
            restart = next((p.restart for _, p in chain if p.restart), 0)
            escalating = next(((k, p.escalate) for k, p in chain if p.escalate), None)
            key = escalating[0] if escalating is not None else chain[0][0]
            escalate = escalating[1] if escalating is not None else {}
            resolved = (key, ClassPolicy(retry, fallback, restart, escalate))
        self._resolved[fault.name] = resolved
        return resolved

    # ------------------------------------------------------------------ records and files

    def to_record(self) -> list[dict[str, Any]] | dict[str, Any]:
        """The plan as RUN_START records it: a plain plan (rules with only ``site``,
        ``occurrence`` and ``pid``, no policies) as the list of its rules, as it always was;
        any other as the document :meth:`from_document` reads."""
        rules = [rule.to_record() for rule in self.rules]
        if not self.policies and all(rule.simple for rule in self.rules):
            return rules
        return {
            "version": PLAN_VERSION,
            "inject": rules,
            "policies": {key: policy.to_record() for key, policy in self.policies.items()},
        }

    @classmethod
    def from_record(cls, record: Any) -> FaultPlan:
        """Rebuild a recorded plan (either form of :meth:`to_record`; None is the empty plan)."""
        if record is None:
            return cls()
        if isinstance(record, list | tuple):
            return cls.from_document({"inject": list(record)})
        return cls.from_document(record)

    @classmethod
    def from_document(cls, document: Any) -> FaultPlan:
        """Read a plan document (``docs/faults.md``); a malformed one is FAULT_PLAN_INVALID
        naming the field (``inject[2].occurrence``)."""
        fields = _mapping(document, "plan", _PLAN_KEYS)
        version = fields.get("version", PLAN_VERSION)
        if version != PLAN_VERSION:
            raise _invalid(f"version must be {PLAN_VERSION}, got {safe_repr(version)}", "version")
        rules = [
            FaultRule.from_record(item, f"inject[{index}]")
            for index, item in enumerate(_sequence(fields.get("inject", []), "inject"))
        ]
        policies = {}
        raw = fields.get("policies", {})
        if not isinstance(raw, Mapping):
            raise _invalid(f"policies must be a JSON object, got {safe_repr(raw)}", "policies")
        if len(raw) > _ITEMS_MAX:
            raise _invalid(f"policies holds more than {_ITEMS_MAX} entries", "policies")
        for key, policy in raw.items():
            policies[str(key)] = ClassPolicy.from_record(policy, f"policies.{key}")
        return cls(rules, policies)

    @classmethod
    def from_file(cls, path: str | Path) -> FaultPlan:
        """Read a plan file: a regular file of at most ``document_bytes_max`` bytes of strict
        JSON (:mod:`xdv.inputs`), then :meth:`from_document`."""
        data = read_bounded(path, "document_bytes_max", what="fault plan")
        return cls.from_document(load_json(data, f"fault plan {path}"))

    # ------------------------------------------------------------------ generation

    @classmethod
    def random(
        cls,
        rng: Draws,
        *,
        rules_max: int = 4,
        sites: Sequence[str] = FAULT_SITES,
        classes: Sequence[str] | None = None,
        pids_max: int = 8,
        time_max: int = 1000,
        policies: bool = True,
        fallbacks: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> FaultPlan:
        """A random plan drawn from ``rng`` alone (the same draws give the same plan), for the
        whole-system simulator: up to ``rules_max`` rules at ``sites`` (outcome rules get a
        Q, Φ or K class from ``classes``), filters on pids below ``pids_max`` and times below
        ``time_max``, and, with ``policies``, retry and escalation policies on some classes;
        ``fallbacks`` maps a class (or prefix) to fallback terms it may be given."""
        outcome_classes = [
            name
            for name in (classes or FAULT_CLASSES)
            if FAULT_CLASSES[name].domain in (Domain.Q, Domain.PHI, Domain.K)
        ]
        any_classes = list(classes or FAULT_CLASSES)
        rules = []
        for _ in range(rng.randint(0, rules_max)):
            site = _pick(rng, sites)
            fault: str | None
            if site == "outcome":
                fault = _pick(rng, outcome_classes) if outcome_classes else None
                if fault is None:
                    continue
            else:
                fault = _pick(rng, [None, *any_classes])
            after = rng.randint(0, time_max) if rng.randint(0, 3) == 0 else None
            rules.append(
                FaultRule(
                    site,
                    occurrence=rng.randint(1, 5),
                    pid=rng.randint(1, pids_max) if rng.randint(0, 2) == 0 else None,
                    fault=fault,
                    count=rng.randint(1, 3),
                    after=after,
                    before=None if after is None else after + rng.randint(1, time_max),
                )
            )
        chosen: dict[str, ClassPolicy] = {}
        if policies:
            keys = [*FAULT_CLASSES, *_WILDCARDS, "*"]
            for _ in range(rng.randint(0, 3)):
                key = _pick(rng, keys)
                retry = None
                if rng.randint(0, 1):
                    retry = RetryPolicy(
                        rng.randint(1, 3), rng.randint(1, 8), rng.randint(1, 3), rng.randint(8, 64)
                    )
                escalate = {}
                for level in (FaultLevel.DOMAIN, FaultLevel.VHM, FaultLevel.NODE):
                    if rng.randint(0, 2) == 0:
                        escalate[level] = Threshold(rng.randint(1, 6), rng.randint(1, time_max))
                options = list((fallbacks or {}).get(key, ()))
                fallback = (_pick(rng, options),) if options and rng.randint(0, 1) else ()
                chosen[key] = ClassPolicy(retry, tuple(fallback), rng.randint(0, 1), escalate)
        return cls(rules, chosen)
