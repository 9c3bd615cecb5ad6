"""The Φ domain manager: envelopes, coherence-window contracts, transforms, integrity.

A process reserves resource ``"envelope"`` (amount 1) in domain Φ. The reservation terms (all
optional) are:

* ``provider`` — ``"exact"`` (default; OR-Tools CP-SAT admissibility and exact Ising
  optimization), ``"phase"`` (the coupled phase-oscillator machine), or the name of a sampler
  provider the manager was built with (``providers``: the D-Wave adapters ``sa``, ``tabu``,
  ``dwave`` and plug-ins of the entry-point group ``xdv.phi_providers``);
* ``window`` — the coherence window's duration in logical steps (default 64);
* ``start`` — the window's start L (default: the earliest L ≥ now at which the window does not
  overlap another window on the same provider);
* ``tolerance`` — the largest admissible instability ``1 − stability`` (default 0.5, in (0, 1]);
* ``transforms`` — the transforms the contract authorizes (default: all the provider offers);
* ``share`` — whether the window may overlap other sharing windows on the same provider
  (default: true for ``exact``, which holds no coherent state; false for ``phase``).

The grant (recorded in RESOURCE_RESERVE) is the coherence-window contract: envelope id,
provider id and measurement, window ``[start, end)``, tolerance, transform set and sharing.
Operations follow the invocation flow documented in ``docs/phi-domain.md``; every outcome is a
:class:`PhiTransformResult` record carrying a :class:`PhiStabilityReport`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xdv.core import (
    Invocation,
    Outcome,
    PreparedCall,
    ResourceContract,
    ResourceGrant,
    ResourceRequest,
)
from xdv.domains import plugin_of
from xdv.domains.phi._exact import ExactAdmissibilityProvider, OptimizeResult
from xdv.domains.phi._oscillator import (
    AnnealSchedule,
    OscillatorCalibration,
    PhaseOscillatorProvider,
)
from xdv.domains.phi._problems import (
    ConstraintProblem,
    IsingProblem,
    PhiProblemError,
    ising_cut,
    ising_cut_for_energy,
)
from xdv.domains.phi._samplers import (
    PhiSamplerProvider,
    SampleBatch,
    check_reads,
    descend,
    params_error,
    sampler_provider,
)
from xdv.domains.phi._witness import (
    WITNESS_FORMAT,
    DigestSigner,
    WitnessSigner,
    payload_digest,
    sign_witness,
)
from xdv.errors import (
    ContractError,
    DomainError,
    ErrorCode,
    ResourceError,
    XdvError,
    invariant,
    safe_repr,
)
from xdv.security import KeyStore
from xdv.trace import Domain, canonicalize

__all__ = [
    "CoherenceWindow",
    "PhiDomainManager",
    "PhiError",
    "PhiStabilityReport",
    "PhiTransformResult",
]

WitnessSink = Callable[[dict[str, Any]], None]

_PROVIDER_OPS = (
    "solve",
    "optimize",
    "anneal",
    "sample",
    "load",
    "shift",
    "couple",
    "lock",
    "readout",
)
_MANAGER_OPS = ("stability", "diagnostics")
OPERATIONS = _PROVIDER_OPS + _MANAGER_OPS
_MUTATING = frozenset({"anneal", "sample", "load", "shift", "couple", "lock"})
_PROJECTING = frozenset({"solve", "optimize", "anneal", "sample", "readout"})
# The phase provider answers ``sample`` as anneals of at most ``replicas_max`` replicas each,
# every replica one read (composed by the manager from the provider's own transforms).
_PHASE_COMPOSED = frozenset({"sample"})
_SAMPLE_OPTIONS = frozenset({"reads", "params"})
RAW_PHASE_OPERATIONS = frozenset(
    {"phases", "raw_phases", "read_phases", "dump", "clone", "copy", "export", "peek"}
)
_STEPS_MAX = 1_000_000


class PhiError(DomainError):
    """A Φ-domain refusal or failure; the code is one of the PHI_ERR_* codes."""

    default_code = ErrorCode.PHI_ERR_ENVELOPE_INVALID


@dataclass(frozen=True, slots=True)
class CoherenceWindow:
    """A coherence window on one provider: ``[start, start + duration)`` in logical time."""

    start: int
    duration: int
    tolerance: float
    transforms: tuple[str, ...]
    share: bool

    @property
    def end(self) -> int:
        return self.start + self.duration

    def overlaps(self, other: CoherenceWindow) -> bool:
        return self.start < other.end and other.start < self.end

    def to_record(self) -> dict[str, Any]:
        return {"start": self.start, "duration": self.duration, "end": self.end}


@dataclass(frozen=True, slots=True)
class PhiStabilityReport:
    """What follows every transform: stability level, noise index, integrity checksum."""

    envelope: int
    stability: float
    noise_index: float
    checksum: str
    logical_time: int
    tolerance: float
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def breached(self) -> bool:
        return 1.0 - self.stability > self.tolerance + 1e-12

    def to_record(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope,
            "stability": self.stability,
            "noise_index": self.noise_index,
            "checksum": self.checksum,
            "L": self.logical_time,
            "tolerance": self.tolerance,
            **{k: v for k, v in self.metrics.items() if k not in ("stability", "noise_index")},
        }


@dataclass(frozen=True, slots=True)
class PhiTransformResult:
    """A transform's structured result (never phases)."""

    transform: int
    operation: str
    status: str
    output: Mapping[str, Any]
    stability: PhiStabilityReport
    logical_time: int
    flow: tuple[str, ...]

    def to_record(self) -> dict[str, Any]:
        return {
            **dict(self.output),
            "stability": self.stability.to_record(),
            "transform": {
                "id": self.transform,
                "op": self.operation,
                "status": self.status,
                "L": self.logical_time,
                "flow": list(self.flow),
            },
        }


@dataclass(frozen=True, slots=True)
class _ProblemCall:
    """A problem operation's arguments after :meth:`PhiDomainManager.prepare` parsed them: the
    problem, its traced summary, the canonical options and what they set for the operation."""

    problem: ConstraintProblem | IsingProblem
    summary: dict[str, Any]
    options: dict[str, Any]
    schedule: AnnealSchedule | None = None
    work_limit: float | None = None
    replicas: int | None = None
    reads: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Shift:
    """A prepared phase shift."""

    angle: float
    indices: list[int] | None


@dataclass(frozen=True, slots=True)
class _Evolution:
    """A prepared coupling evolution or injection lock."""

    steps: int
    strength: float


class _Envelope:
    __slots__ = ("history", "id", "owner", "provider", "state", "timeline", "window")

    def __init__(self, envelope: int, owner: int, provider: str, window: CoherenceWindow) -> None:
        self.id = envelope
        self.owner = owner
        self.provider = provider
        self.window = window
        self.state = "reserved"
        self.history: list[dict[str, Any]] = []
        self.timeline: list[dict[str, Any]] = []

    def record(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "provider": self.provider,
            "window": self.window.to_record(),
            "state": self.state,
        }


class PhiDomainManager:
    """The Φ domain manager (manager name ``"phi"``).

    ``instability_at`` is the deterministic fault-injection hook: for each logical time in it,
    the transform whose span ``[L, L + latency]`` first covers that time receives a phase-
    diffusion burst of ``instability_variance`` rad² before its stability is measured.
    """

    domain = Domain.PHI

    def __init__(
        self,
        *,
        calibration: OscillatorCalibration | None = None,
        exact_time_limit_s: float = 60.0,
        window: int = 64,
        tolerance: float = 0.5,
        latency: int = 1,
        instability_at: tuple[int, ...] = (),
        instability_variance: float = 25.0,
        signer: WitnessSigner | None = None,
        witness_sink: WitnessSink | None = None,
        key_store: KeyStore | None = None,
        providers: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if type(window) is not int or window < 1:
            raise ContractError(f"the default window must be ≥ 1 step, got {window!r}", where="Φ")
        if type(latency) is not int or not 0 <= latency <= window:
            raise ContractError(f"latency must be in [0, {window}], got {latency!r}", where="Φ")
        self._check_tolerance(tolerance)
        # The providers' identity keys live in ``key_store`` (default: the node's key store);
        # they are machine-specific, so nothing of them enters describe() or the trace.
        self.phase = PhaseOscillatorProvider(calibration, key_store=key_store)
        self.exact = ExactAdmissibilityProvider(
            time_limit_s=exact_time_limit_s, key_store=key_store
        )
        # Sampler providers by name, built from their recorded configurations (for replay).
        if providers is not None and not isinstance(providers, Mapping):
            raise ContractError("providers must map provider names to configurations", where="Φ")
        self.sampler_configs: dict[str, dict[str, Any]] = canonicalize(
            {str(name): dict(config) for name, config in (providers or {}).items()},
            "Φ providers",
        )
        self.samplers: dict[str, PhiSamplerProvider] = {}
        for name, config in sorted(self.sampler_configs.items()):
            sampler = sampler_provider(name, config, key_store)
            taken = {self.phase.provider_id, self.exact.provider_id} | {
                other.provider_id for other in self.samplers.values()
            }
            if sampler.provider_id in taken:
                raise XdvError(
                    f"provider {name!r} has the id {sampler.provider_id!r}, which another "
                    "provider of this manager already has",
                    code=ErrorCode.PHI_PROVIDER_INVALID,
                    where=f"Φ provider {name}",
                )
            self.samplers[name] = sampler
        self._read_digests: dict[int, str] = {}
        self.window = window
        self.tolerance = tolerance
        self.transform_latency = latency
        self.instability_at = tuple(sorted(int(t) for t in instability_at))
        self.instability_variance = float(instability_variance)
        self._pending_faults = list(self.instability_at)
        self.signer: WitnessSigner = signer or DigestSigner()
        self.witness_sink = witness_sink
        self.witnesses: dict[str, dict[str, Any]] = {}
        self._envelopes: dict[int, _Envelope] = {}
        self._retired: list[dict[str, Any]] = []
        self._next_envelope = 1
        self._bound: set[int] = set()

    # -- description, attestation surface ---------------------------------------------------

    def _sampler_record(self, name: str) -> dict[str, Any]:
        """A sampler provider's entry in the description: a shipped adapter's configuration,
        or a plug-in's loader record (and the configuration it was given, if any)."""
        entry = self.sampler_configs[name]
        plugin = plugin_of(self.samplers[name])
        if plugin is None:
            return entry
        record: dict[str, Any] = {"plugin": plugin.to_record()}
        if "config" in entry:
            record["config"] = entry["config"]
        return record

    def describe(self) -> dict[str, Any]:
        extra = (
            {"providers": {name: self._sampler_record(name) for name in self.sampler_configs}}
            if self.sampler_configs
            else {}
        )
        return {
            **extra,
            "manager": "phi",
            "calibration": self.phase.calibration.to_record(),
            "exact_time_limit_s": self.exact.time_limit_s,
            "window": self.window,
            "tolerance": self.tolerance,
            "latency": self.transform_latency,
            "instability_at": list(self.instability_at),
            "instability_variance": self.instability_variance,
        }

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> PhiDomainManager:
        """Rebuild a manager from :meth:`describe` output (for replay)."""
        return cls(
            calibration=OscillatorCalibration(**dict(description["calibration"])),
            exact_time_limit_s=float(description["exact_time_limit_s"]),
            window=int(description["window"]),
            tolerance=float(description["tolerance"]),
            latency=int(description["latency"]),
            instability_at=tuple(int(t) for t in description["instability_at"]),
            instability_variance=float(description["instability_variance"]),
            providers=description.get("providers"),
        )

    def providers(self) -> dict[str, Any]:
        """The providers by reservation name (for attestation)."""
        return {"exact": self.exact, "phase": self.phase, **self.samplers}

    def _offered(self, provider: str) -> frozenset[str]:
        """The transforms a contract on ``provider`` may authorize."""
        offered = frozenset(self.providers()[provider].transforms)
        return offered | _PHASE_COMPOSED if provider == "phase" else offered

    def rights(self, operation: str) -> frozenset[str]:
        """Capability operations beyond EXECUTE that ``operation`` needs (PROJECT for readouts)."""
        return frozenset({"PROJECT"}) if operation in _PROJECTING else frozenset()

    def set_progress(self, progress: Callable[[int, int], None] | None) -> None:
        """Report anneal progress (steps done, steps) to ``progress``; never affects results."""
        self.phase.progress = progress

    # -- DAL ------------------------------------------------------------------------------

    def init(self, pid: int) -> dict[str, Any]:
        self._bound.add(pid)
        return {"providers": sorted(self.providers())}

    @staticmethod
    def _check_tolerance(value: Any) -> float:
        if type(value) not in (int, float) or not 0 < value <= 1:
            raise ContractError(
                f"stability tolerance must be a number in (0, 1], got {safe_repr(value)}",
                where="Φ.request_resources",
            )
        return float(value)

    def usage(self, request: ResourceRequest) -> dict[str, int | None]:
        """What a reservation uses against VHM quotas: one envelope and its coherence window's
        steps (a malformed window counts nothing: the reservation is refused anyway)."""
        window = request.terms.get("window", self.window)
        steps = window if type(window) is int and window > 0 else 0
        return {"envelopes": 1, "window_steps": steps}

    def request_resources(self, request: ResourceRequest) -> ResourceGrant:
        where = "Φ.request_resources"
        if request.resource != "envelope":
            raise ResourceError(
                f"the Φ domain offers 'envelope' resources, not {request.resource!r}",
                code=ErrorCode.RESOURCE_UNKNOWN,
                where=where,
            )
        if request.amount != 1:
            raise ResourceError(
                f"a Φ reservation is for exactly one envelope, got {request.amount}",
                code=ErrorCode.CONTRACT_INVALID,
                where=where,
            )
        terms = dict(request.terms)
        allowed = {"provider", "window", "start", "tolerance", "transforms", "share"}
        unknown = sorted(set(terms) - allowed)
        if unknown:
            raise ContractError(
                f"unknown Φ terms {unknown} (allowed: {sorted(allowed)})", where=where
            )
        provider = terms.get("provider", "exact")
        if not isinstance(provider, str) or provider not in self.providers():
            raise ContractError(
                f"provider must be one of {sorted(self.providers())}, got {safe_repr(provider)}"
                " (a sampler provider is installed by the manager's providers setting)",
                where=where,
            )
        offered = self._offered(provider) | set(_MANAGER_OPS)
        duration = terms.get("window", self.window)
        if type(duration) is not int or not 1 <= duration <= 2**40:
            raise ContractError(
                f"window must be a positive number of logical steps, got {safe_repr(duration)}",
                where=where,
            )
        tolerance = self._check_tolerance(terms.get("tolerance", self.tolerance))
        transforms = terms.get("transforms", sorted(offered))
        if (
            not isinstance(transforms, list)
            or not transforms
            or not all(isinstance(t, str) for t in transforms)
        ):
            raise ContractError("transforms must be a non-empty list of names", where=where)
        unsupported = sorted(set(transforms) - offered)
        if unsupported:
            raise ContractError(f"provider {provider!r} does not offer {unsupported}", where=where)
        share = terms.get("share", provider == "exact")
        if type(share) is not bool:
            raise ContractError("share must be a boolean", where=where)
        start = terms.get("start")
        probe = CoherenceWindow(0, duration, tolerance, tuple(sorted(set(transforms))), share)
        if start is None:
            start = self._earliest_start(provider, probe, request.logical_time)
        elif type(start) is not int or start < request.logical_time:
            raise ContractError(
                f"start must be an integer logical time ≥ now ({request.logical_time}), "
                f"got {safe_repr(start)}",
                where=where,
            )
        window = CoherenceWindow(start, duration, tolerance, probe.transforms, share)
        conflict = self._conflict(provider, window)
        if conflict is not None:
            raise ResourceError(
                f"window [{window.start}, {window.end}) overlaps envelope {conflict.id}'s "
                f"window [{conflict.window.start}, {conflict.window.end}) on provider {provider!r}"
                " and no sharing contract covers both",
                code=ErrorCode.PHI_ERR_WINDOW_CONFLICT,
                where=where,
            )
        envelope = _Envelope(self._next_envelope, request.pid, provider, window)
        self._next_envelope += 1
        self._envelopes[envelope.id] = envelope
        instance = self.providers()[provider]
        return ResourceGrant(
            "envelope",
            1,
            {
                "envelope": envelope.id,
                "provider": instance.provider_id,
                "measurement": instance.measurement(),
                "window": window.to_record(),
                "tolerance": tolerance,
                "transforms": list(window.transforms),
                "share": share,
            },
        )

    def resolve_conflict(
        self, resource: str, amount: int, terms: dict[str, Any], now: int
    ) -> dict[str, Any] | None:
        """Resolve a window that overlaps another envelope's: the same terms with the earliest
        start at or after the one asked for at which the window fits (XDV-023 §6: resolved,
        not only refused), or None when the request names no start."""
        start = terms.get("start")
        if resource != "envelope" or type(start) is not int:
            return None
        provider = terms.get("provider", "exact")
        duration = terms.get("window", self.window)
        if (
            not isinstance(provider, str)
            or provider not in self.providers()
            or type(duration) is not int
            or duration < 1
        ):
            return None
        share = terms.get("share", provider == "exact")
        probe = CoherenceWindow(0, duration, 1.0, (), share is True)
        return {**terms, "start": self._earliest_start(provider, probe, max(start, now))}

    def _conflict(self, provider: str, window: CoherenceWindow) -> _Envelope | None:
        for envelope in sorted(self._envelopes.values(), key=lambda e: e.id):
            if envelope.provider != provider or envelope.state in ("invalid",):
                continue
            if window.share and envelope.window.share:
                continue
            if window.overlaps(envelope.window):
                return envelope
        return None

    def _earliest_start(self, provider: str, window: CoherenceWindow, now: int) -> int:
        start = now
        while True:
            candidate = CoherenceWindow(
                start, window.duration, window.tolerance, window.transforms, window.share
            )
            conflict = self._conflict(provider, candidate)
            if conflict is None:
                return start
            start = conflict.window.end

    def _envelope_for(self, contract: ResourceContract) -> _Envelope:
        number = contract.terms.get("envelope") if contract.terms else None
        if number is None:
            owned = [e for e in self._envelopes.values() if e.owner == contract.pid]
            if len(owned) == 1:
                return owned[0]
            raise PhiError(
                f"contract {contract.id} names no Φ envelope",
                code=ErrorCode.PHI_ERR_ENVELOPE_INVALID,
                where=f"contract {contract.id}",
            )
        envelope = self._envelopes.get(number)
        if envelope is None:
            raise PhiError(
                f"envelope {number} does not exist (released or never granted)",
                code=ErrorCode.PHI_ERR_ENVELOPE_INVALID,
                where=f"contract {contract.id}",
            )
        return envelope

    def release(self, contract: ResourceContract) -> None:
        envelope = self._envelope_for(contract)
        self._destroy(envelope, "released")

    def _destroy(self, envelope: _Envelope, why: str) -> None:
        self.phase.discard(envelope.id)
        self._envelopes.pop(envelope.id, None)
        self._retired.append(
            {"envelope": envelope.id, "why": why, **self._diagnostic_record(envelope)}
        )

    def latency(self, operation: str) -> int:
        if operation in RAW_PHASE_OPERATIONS:
            raise PhiError(
                f"{operation!r} would expose raw phases; the Φ domain returns structured "
                "results only (readout, stability, diagnostics)",
                code=ErrorCode.PHI_ERR_RAW_PHASE_ACCESS,
                where="Φ",
            )
        if operation not in OPERATIONS:
            raise DomainError(
                f"the Φ domain has no operation {operation!r} (it has: {', '.join(OPERATIONS)})",
                code=ErrorCode.OPERATION_UNSUPPORTED,
                where="Φ",
            )
        return 0 if operation in _MANAGER_OPS else self.transform_latency

    def validate_contract(
        self, contract: ResourceContract, operation: str, latency_max: int | None
    ) -> None:
        latency = self.latency(operation)
        envelope = self._envelope_for(contract)
        self._check_compatible(envelope, operation)
        if latency_max is not None and latency > latency_max:
            raise ContractError(
                f"Φ {operation!r} takes {latency} logical step(s); the contract allows "
                f"at most {latency_max}",
                where=f"contract {contract.id}",
            )

    def _check_compatible(self, envelope: _Envelope, operation: str) -> None:
        if operation in _MANAGER_OPS:
            return
        provider = self.providers()[envelope.provider]
        if operation not in self._offered(envelope.provider):
            raise DomainError(
                f"provider {provider.provider_id!r} does not offer {operation!r} "
                f"(it offers {sorted(provider.transforms)})",
                code=ErrorCode.OPERATION_UNSUPPORTED,
                where=f"envelope {envelope.id}",
            )
        if operation not in envelope.window.transforms:
            raise PhiError(
                f"the contract of envelope {envelope.id} does not authorize {operation!r} "
                f"(it authorizes {list(envelope.window.transforms)})",
                code=ErrorCode.PHI_ERR_UNAUTHORIZED_MUTATION,
                where=f"envelope {envelope.id}",
            )

    def prepare(self, operation: str, args: tuple[Any, ...]) -> PreparedCall:
        """Parse and validate an invocation once and describe it for DOMAIN_INVOKE: a problem's
        summary and the canonical options, a shift's angle and indices, an evolution's steps and
        strength. ``execute`` receives the parsed value, never the raw arguments."""
        where = f"Φ.{operation}"
        if operation in ("solve", "optimize", "anneal", "sample", "load"):
            call = self._problem_call(operation, args, where)
            return PreparedCall(
                operation, {"problem": call.summary, "options": dict(call.options)}, call
            )
        if operation == "shift":
            shift = _Shift(*self._shift_args(args, where))
            return PreparedCall(operation, {"angle": shift.angle, "indices": shift.indices}, shift)
        if operation in ("couple", "lock"):
            evolution = _Evolution(*self._evolve_args(args, where))
            return PreparedCall(
                operation, {"steps": evolution.steps, "strength": evolution.strength}, evolution
            )
        if args:
            raise PhiProblemError(f"{operation!r} takes no arguments", where=where)
        return PreparedCall(operation, {})

    def _problem_call(self, operation: str, args: tuple[Any, ...], where: str) -> _ProblemCall:
        if not 1 <= len(args) <= 2:
            raise PhiProblemError(
                f"{operation!r} takes (problem,) or (problem, options)", where=where
            )
        problem: ConstraintProblem | IsingProblem
        if operation == "solve":
            problem = ConstraintProblem.parse(args[0])
            summary = {
                "kind": "constraints",
                "variables": len(problem.variables),
                "constraints": len(problem.constraints),
                "hash": problem.digest,
            }
        else:
            problem = IsingProblem.parse(args[0])
            summary = problem.summary()
        raw_options = args[1] if len(args) == 2 else {}
        if not isinstance(raw_options, Mapping):
            raise PhiProblemError("options must be a mapping", where=where)
        options: dict[str, Any] = canonicalize(dict(raw_options), f"{where}.options")
        schedule, work_limit, replicas = None, None, None
        if operation == "sample":
            reads, params = self._sample_options(options, problem, where)
            return _ProblemCall(problem, summary, options, reads=reads, params=params)
        if operation == "anneal":
            schedule = AnnealSchedule.from_terms(options, self.phase.calibration)
        elif operation == "optimize" and isinstance(problem, IsingProblem):
            # Refuse oversized or inexact problems before DOMAIN_INVOKE and any solve.
            work_limit = self._work_limit(options, where)
            self.exact.check_optimize(problem, work_limit)
        elif operation == "load":
            replicas = self._replicas(options, where)
        elif options:
            raise PhiProblemError("'solve' takes no options", where=where)
        return _ProblemCall(problem, summary, options, schedule, work_limit, replicas)

    def _work_limit(self, options: Mapping[str, Any], where: str) -> float:
        unknown = sorted(set(options) - {"work_limit"})
        if unknown:
            raise PhiProblemError(f"unknown options {unknown}", where=where)
        limit = options.get("work_limit", self.exact.work_limit)
        if type(limit) not in (int, float) or not 0 < limit <= self.exact.work_limit_max:
            raise PhiProblemError(
                f"work_limit must be a number in (0, {self.exact.work_limit_max}] "
                f"(CP-SAT deterministic time), got {safe_repr(limit)}",
                where=where,
            )
        return float(limit)

    @staticmethod
    def _sample_options(
        options: Mapping[str, Any], problem: ConstraintProblem | IsingProblem, where: str
    ) -> tuple[int, dict[str, Any]]:
        """A ``sample`` call's ``reads`` (default 1) and the provider's ``params`` (checked by
        the provider when it runs); PHI_SAMPLER_PARAMS_INVALID for anything else."""
        unknown = sorted(set(options) - _SAMPLE_OPTIONS)
        if unknown:
            raise params_error(
                f"unknown options {unknown} ('sample' takes reads and params)", where
            )
        if not isinstance(problem, IsingProblem):  # pragma: no cover - parsed as Ising
            raise PhiProblemError("'sample' takes an Ising problem", where=where)
        reads = check_reads(options.get("reads", 1), problem.n, where)
        params = options.get("params", {})
        if not isinstance(params, Mapping):
            raise params_error("params must be a mapping of the provider's parameters", where)
        return reads, dict(params)

    @staticmethod
    def _replicas(options: Mapping[str, Any], where: str) -> int:
        unknown = sorted(set(options) - {"replicas"})
        if unknown:
            raise PhiProblemError(f"unknown options {unknown}", where=where)
        replicas = options.get("replicas", 1)
        if type(replicas) is not int or replicas < 1:
            raise PhiProblemError("replicas must be a positive integer", where=where)
        return replicas

    @staticmethod
    def _shift_args(args: tuple[Any, ...], where: str) -> tuple[float, list[int] | None]:
        if not 1 <= len(args) <= 2:
            raise PhiProblemError("'shift' takes (angle,) or (angle, indices)", where=where)
        angle = args[0]
        if type(angle) not in (int, float) or not math.isfinite(angle):
            raise PhiProblemError(f"angle must be finite, got {safe_repr(angle)}", where=where)
        indices = args[1] if len(args) == 2 else None
        if indices is not None and (
            not isinstance(indices, list | tuple)
            or not all(type(i) is int and i >= 0 for i in indices)
        ):
            raise PhiProblemError("indices must be a list of oscillator numbers", where=where)
        return float(angle), None if indices is None else list(indices)

    @staticmethod
    def _evolve_args(args: tuple[Any, ...], where: str) -> tuple[int, float]:
        if len(args) != 2:
            raise PhiProblemError("takes (steps, strength)", where=where)
        steps, strength = args
        if type(steps) is not int or not 1 <= steps <= _STEPS_MAX:
            raise PhiProblemError(f"steps must be in [1, {_STEPS_MAX}]", where=where)
        if type(strength) not in (int, float) or not 0 <= strength <= 100:
            raise PhiProblemError("strength must be a number in [0, 100]", where=where)
        return steps, float(strength)

    # -- the invocation flow --------------------------------------------------------------

    def execute(self, invocation: Invocation) -> Outcome:
        now = invocation.logical_time
        operation = invocation.operation
        flow = ["capability"]  # checked by the kernel before the manager is called
        envelope = self._envelope_for(invocation.contract)
        if envelope.owner != invocation.pid:
            raise PhiError(
                f"envelope {envelope.id} belongs to process {envelope.owner}; process "
                f"{invocation.pid} may not use it (no sharing contract)",
                code=ErrorCode.PHI_ERR_ENVELOPE_ALIASING,
                where=f"envelope {envelope.id}",
            )
        if envelope.state == "invalid":
            raise PhiError(
                f"envelope {envelope.id} was invalidated; reserve a new one",
                code=ErrorCode.PHI_ERR_ENVELOPE_INVALID,
                where=f"envelope {envelope.id}",
            )
        latency = self.latency(operation)
        window = envelope.window
        if operation not in _MANAGER_OPS and (now < window.start or now + latency > window.end):
            self._invalidate(envelope, now, operation, "coherence timeout")
            raise PhiError(
                f"{operation!r} at L={now} (finishing at L={now + latency}) lies outside "
                f"envelope {envelope.id}'s coherence window [{window.start}, {window.end}); "
                "the envelope is invalidated",
                code=ErrorCode.PHI_ERR_COHERENCE_TIMEOUT,
                where=f"envelope {envelope.id}",
            )
        flow.append("contract")
        self._check_compatible(envelope, operation)
        flow.append("compatibility")
        flow.append("logged")  # DOMAIN_INVOKE is recorded before execute() is called
        if operation == "diagnostics":
            return Outcome(self._diagnostic_record(envelope))
        rng = np.random.default_rng([invocation.seed, 0])
        try:
            output = self._run(envelope, invocation, rng)
        except XdvError:
            envelope.history.append({"L": now, "op": operation, "status": "failed"})
            raise
        if envelope.state == "reserved" and operation in _MUTATING:
            envelope.state = "active"
        flow.append("execute")
        self._maybe_inject(envelope, now, latency, invocation.seed)
        report = self._report(envelope, now)
        flow.append("monitor")
        self._log(envelope, now, operation, report)
        if report.breached:
            self._invalidate(envelope, now, operation, "stability breach")
            raise PhiError(
                f"stability {report.stability:.4f} fell below 1 − tolerance "
                f"({1 - window.tolerance:.4f}) after {operation!r} at L={now} "
                f"(noise index {report.noise_index:.4f}); execution halted, envelope "
                f"{envelope.id} invalidated, its window released, nothing projected",
                code=ErrorCode.PHI_ERR_STABILITY_BREACH,
                where=f"envelope {envelope.id}",
            )
        if "witness" in output:
            flow.extend(["verify", "witness"])
        flow.append("result")
        result = PhiTransformResult(
            invocation.id, operation, "OK", output, report, now, tuple(flow)
        )
        return Outcome(result.to_record())

    def _run(
        self, envelope: _Envelope, invocation: Invocation, rng: np.random.Generator
    ) -> dict[str, Any]:
        operation, call = invocation.operation, invocation.parsed
        if operation in ("solve", "optimize", "anneal", "sample", "load"):
            invariant(isinstance(call, _ProblemCall), f"a Φ {operation!r} arrives prepared")
            problem = call.problem
            if isinstance(problem, ConstraintProblem):  # "solve"
                outcome = self.exact.solve(problem)
                return self._constraint_witness(
                    envelope,
                    invocation,
                    problem,
                    outcome.status,
                    outcome.assignment,
                    outcome.solves,
                )
            if operation == "optimize":
                invariant(call.work_limit is not None, "an optimize arrives with its work limit")
                optimum = self.exact.optimize(
                    problem, seed=invocation.seed, work_limit=call.work_limit
                )
                return self._optimum(envelope, invocation, problem, optimum)
            if operation == "sample":
                invariant(isinstance(problem, IsingProblem), "a sample arrives with its problem")
                return self._sample(envelope, invocation, problem, call, rng)
            if operation == "load":
                invariant(call.replicas is not None, "a load arrives with its replicas")
                self.phase.load(envelope.id, problem, call.replicas, rng)
                return {"loaded": problem.summary()}
            invariant(call.schedule is not None, "an anneal arrives with its schedule")
            self.phase.anneal(envelope.id, problem, call.schedule, rng)
            return self._readout(envelope, invocation, call.schedule.polish, call.schedule.tabu)
        if operation == "shift":
            invariant(isinstance(call, _Shift), "a Φ shift arrives prepared")
            self.phase.shift(envelope.id, call.angle, call.indices)
            return {}
        if operation in ("couple", "lock"):
            invariant(isinstance(call, _Evolution), f"a Φ {operation!r} arrives prepared")
            if operation == "couple":
                self.phase.couple(envelope.id, call.steps, call.strength, rng)
            else:
                self.phase.lock(envelope.id, call.steps, call.strength, rng)
            return {}
        if operation == "readout":
            return self._readout(envelope, invocation, polish=False)
        return {}  # "stability": the report alone

    def _readout(
        self, envelope: _Envelope, invocation: Invocation, polish: bool, tabu: int = 0
    ) -> dict[str, Any]:
        readout = self.phase.readout(envelope.id, polish, tabu)
        metrics = self.phase.metrics(envelope.id)
        ising = self.phase._structure(envelope.id).problem
        if ising is None:  # pragma: no cover
            raise PhiError("no problem loaded", where=f"envelope {envelope.id}")
        # Classical verification by the manager: recompute the energy from the spins.
        energy = float(ising.energy(np.array(readout["spins"])))
        if not math.isclose(energy, readout["energy"], rel_tol=1e-9, abs_tol=1e-6):
            raise PhiError(
                f"the provider's energy {readout['energy']} does not verify ({energy})",
                code=ErrorCode.PHI_ERR_PROVIDER_FAILED,
                where=f"envelope {envelope.id}",
            )
        payload = self._payload(
            envelope,
            invocation,
            "ising",
            ising.to_record(),
            ising.digest,
            "SAMPLE",
            readout["spins"],
            {"energy": energy, "spins": ising.n, "checked_by": "kernel"},
        )
        return {
            "spins": readout["spins"],
            "energy": energy,
            "order_parameter": metrics["order_parameter"],
            "readout": {k: v for k, v in readout.items() if k not in ("spins", "energy")},
            "witness": self._witness(payload),
        }

    def _sample(
        self,
        envelope: _Envelope,
        invocation: Invocation,
        ising: IsingProblem,
        call: _ProblemCall,
        rng: np.random.Generator,
    ) -> dict[str, Any]:
        """``reads`` reads of ``ising`` on the envelope's provider, each verified."""
        reads = call.reads
        if reads is None:  # pragma: no cover - prepare() always sets it
            raise PhiError("a sample arrives without its reads", where=f"envelope {envelope.id}")
        extra: dict[str, Any] = {}
        if envelope.provider == "phase":
            # Each read is one replica of an anneal; more reads than the device has replicas
            # run as successive anneals of the same envelope.
            replicas_max = self.phase.calibration.replicas_max
            terms = dict(call.params)
            if "replicas" in terms:
                raise params_error(
                    "the phase provider runs one replica per read: give reads, not replicas",
                    f"envelope {envelope.id}",
                )
            blocks, schedule = [], None
            for first in range(0, reads, replicas_max):
                schedule = AnnealSchedule.from_terms(
                    {**terms, "replicas": min(replicas_max, reads - first)},
                    self.phase.calibration,
                )
                self.phase.anneal(envelope.id, ising, schedule, rng)
                block = self.phase.samples(envelope.id)
                blocks.append(descend(ising, block) if schedule.polish else block)
            if schedule is None:  # pragma: no cover - reads ≥ 1
                raise PhiError("no anneal ran", where=f"envelope {envelope.id}")
            spins = np.concatenate(blocks)
            batch = SampleBatch(spins, None, {"schedule": schedule.to_record()})
            extra["order_parameter"] = self.phase.metrics(envelope.id)["order_parameter"]
        else:
            sampler = self.samplers[envelope.provider]
            batch = sampler.sample(ising, reads, invocation.seed, call.params)
        return {**self._reads(envelope, invocation, ising, reads, batch), **extra}

    def _reads(
        self,
        envelope: _Envelope,
        invocation: Invocation,
        ising: IsingProblem,
        reads: int,
        batch: SampleBatch,
    ) -> dict[str, Any]:
        """Verify every read classically (shape, ±1 entries, energy recomputed and compared
        with the provider's) and witness the best (the first of the lowest energy)."""
        where = f"envelope {envelope.id}"
        spins = np.asarray(batch.spins)
        if spins.shape != (reads, ising.n) or not np.all(np.abs(spins) == 1):
            raise PhiError(
                f"the provider returned reads of shape {spins.shape} for {reads} reads of "
                f"{ising.n} spins (each entry ±1)",
                code=ErrorCode.PHI_ERR_PROVIDER_FAILED,
                where=where,
            )
        spins = spins.astype(np.int8)
        energies = np.asarray(ising.energy(spins), dtype=np.float64).reshape(reads)
        if batch.energies is not None:
            reported = np.asarray(batch.energies, dtype=np.float64)
            if reported.shape != energies.shape or not np.allclose(
                reported, energies, rtol=1e-9, atol=1e-6
            ):
                raise PhiError(
                    "the provider's energies do not verify against the reads",
                    code=ErrorCode.PHI_ERR_PROVIDER_FAILED,
                    where=where,
                )
        best = int(np.argmin(energies))
        best_spins = [int(x) for x in spins[best]]
        energy = float(energies[best])
        self._read_digests[envelope.id] = hashlib.sha256(spins.tobytes()).hexdigest()[:32]
        verification: dict[str, Any] = {
            "energy": energy,
            "spins": ising.n,
            "reads": reads,
            "checked_by": "kernel",
        }
        cut = ising_cut(ising, np.array(best_spins))
        if cut is not None:
            verification["cut"] = cut
        payload = self._payload(
            envelope,
            invocation,
            "ising",
            ising.to_record(),
            ising.digest,
            "SAMPLE",
            best_spins,
            verification,
        )
        output: dict[str, Any] = {
            "spins": best_spins,
            "energy": energy,
            "reads": {
                "spins": spins.tolist(),
                "energies": [float(e) for e in energies],
            },
            "sampler": canonicalize(dict(batch.info), "Φ sampler info"),
        }
        if cut is not None:
            output["cut"] = cut
        output["witness"] = self._witness(payload)
        return output

    def _optimum(
        self,
        envelope: _Envelope,
        invocation: Invocation,
        ising: IsingProblem,
        optimum: OptimizeResult,
    ) -> dict[str, Any]:
        # Classical verification by the manager: recompute the energy (and cut) from the spins.
        spins = np.array(optimum.spins)
        if spins.shape != (ising.n,) or not np.all(np.abs(spins) == 1):
            raise PhiError(
                "the exact provider returned no spin vector",
                code=ErrorCode.PHI_ERR_PROVIDER_FAILED,
                where=f"envelope {envelope.id}",
            )
        energy = float(ising.energy(spins))
        if not math.isclose(energy, optimum.energy, rel_tol=1e-9, abs_tol=1e-6) or (
            optimum.bound > energy + 1e-6
        ):
            raise PhiError(
                f"the provider's energy {optimum.energy} (bound {optimum.bound}) does not "
                f"verify ({energy})",
                code=ErrorCode.PHI_ERR_PROVIDER_FAILED,
                where=f"envelope {envelope.id}",
            )
        verification: dict[str, Any] = {
            "energy": energy,
            "bound": optimum.bound,
            "optimal": optimum.status == "OPTIMAL",
            "spins": ising.n,
            "checked_by": "kernel",
        }
        output: dict[str, Any] = {
            "status": optimum.status,
            "spins": optimum.spins,
            "energy": energy,
            "bound": optimum.bound,
        }
        cut = ising_cut(ising, spins)
        if cut is not None:
            verification["cut"] = output["cut"] = cut
            verification["cut_bound"] = output["cut_bound"] = ising_cut_for_energy(
                ising, optimum.bound
            )
        output["solver"] = {"work": optimum.work, "branches": optimum.branches, "workers": 1}
        payload = self._payload(
            envelope,
            invocation,
            "ising",
            ising.to_record(),
            ising.digest,
            optimum.status,
            optimum.spins,
            verification,
        )
        output["witness"] = self._witness(payload)
        return output

    def _constraint_witness(
        self,
        envelope: _Envelope,
        invocation: Invocation,
        problem: ConstraintProblem,
        status: str,
        assignment: dict[str, int | bool] | None,
        solves: int,
    ) -> dict[str, Any]:
        verification: dict[str, Any] = {"checked_by": "kernel", "solves": solves}
        if status == "ADMISSIBLE":
            if assignment is None:  # pragma: no cover
                raise PhiError("admissible without an assignment", where="exact provider")
            violated = problem.check(assignment)
            if violated:
                raise PhiError(
                    f"the provider's configuration violates constraint(s) {violated}",
                    code=ErrorCode.PHI_ERR_PROVIDER_FAILED,
                    where=f"envelope {envelope.id}",
                )
            verification.update(satisfied=True, constraints=len(problem.constraints))
        else:
            verification.update(proof="cp-sat INFEASIBLE (complete search)")
        payload = self._payload(
            envelope,
            invocation,
            "constraints",
            problem.to_record(),
            problem.digest,
            status,
            assignment,
            verification,
        )
        output: dict[str, Any] = {"status": status}
        if assignment is not None:
            output["assignment"] = assignment
        output["witness"] = self._witness(payload)
        return output

    def _payload(
        self,
        envelope: _Envelope,
        invocation: Invocation,
        kind: str,
        problem: Mapping[str, Any],
        problem_hash: str,
        status: str,
        configuration: Any,
        verification: Mapping[str, Any],
    ) -> dict[str, Any]:
        provider = self.providers()[envelope.provider]
        return {
            "format": WITNESS_FORMAT,
            "kind": kind,
            "problem": dict(problem),
            "problem_hash": problem_hash,
            "status": status,
            "configuration": configuration,
            "verification": dict(verification),
            "attestation": {
                "provider": provider.provider_id,
                "measurement": provider.measurement(),
            },
            "L": invocation.logical_time,
            "envelope": envelope.id,
            "contract": invocation.contract.id,
            "invocation": invocation.id,
        }

    def _witness(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Sign the witness (kept beside the trace) and return its deterministic summary."""
        digest = payload_digest(payload)
        document = sign_witness(payload, self.signer)
        self.witnesses[digest] = document
        if self.witness_sink is not None:
            self.witness_sink(document)
        summary = {k: v for k, v in payload.items() if k not in ("problem", "configuration")}
        summary["digest"] = digest
        return summary

    # -- monitoring, integrity ------------------------------------------------------------

    def _maybe_inject(self, envelope: _Envelope, now: int, latency: int, seed: int) -> None:
        fired = [t for t in self._pending_faults if t <= now + latency]
        if not fired:
            return
        self._pending_faults = [t for t in self._pending_faults if t > now + latency]
        if envelope.provider == "phase":
            rng = np.random.default_rng([seed, 1])
            self.phase.inject_instability(envelope.id, self.instability_variance, rng)
        envelope.history.append({"L": now, "op": "inject", "variance": self.instability_variance})
        envelope.timeline.append({"L": now, "injected": self.instability_variance})

    def _report(self, envelope: _Envelope, now: int) -> PhiStabilityReport:
        if envelope.provider == "phase" and self.phase.holds(envelope.id):
            metrics = self.phase.metrics(envelope.id)
            checksum = self.phase.checksum(envelope.id)
        else:
            injected = any("injected" in point for point in envelope.timeline)
            noise = 1.0 - math.exp(-self.instability_variance / 2.0) if injected else 0.0
            metrics = {"stability": 1.0 - noise, "noise_index": noise, "drift": 0.0}
            checksum = (
                self._read_digests.get(envelope.id)
                or (hashlib.sha256(f"{envelope.id}:{now}".encode()).hexdigest()[:32])
            )
        return PhiStabilityReport(
            envelope.id,
            float(metrics["stability"]),
            float(metrics["noise_index"]),
            checksum,
            now,
            envelope.window.tolerance,
            metrics,
        )

    def _log(
        self, envelope: _Envelope, now: int, operation: str, report: PhiStabilityReport
    ) -> None:
        previous = (
            envelope.timeline[-1]["stability"]
            if envelope.timeline and ("stability" in envelope.timeline[-1])
            else 1.0
        )
        envelope.timeline.append(
            {
                "L": now,
                "op": operation,
                "stability": report.stability,
                "noise_index": report.noise_index,
                "drift": float(report.metrics.get("drift", 0.0)),
                "impact": round(report.stability - previous, 9),
            }
        )
        envelope.history.append(
            {"L": now, "op": operation, "status": "breach" if report.breached else "ok"}
        )

    def _invalidate(self, envelope: _Envelope, now: int, operation: str, why: str) -> None:
        """Halt, invalidate, roll back (discard the phase structure) and free the window."""
        self.phase.discard(envelope.id)
        envelope.state = "invalid"
        envelope.history.append({"L": now, "op": operation, "status": why})

    def _diagnostic_record(self, envelope: _Envelope) -> dict[str, Any]:
        record: dict[str, Any] = canonicalize(
            {
                "envelope": envelope.id,
                "owner": envelope.owner,
                "provider": envelope.provider,
                "state": envelope.state,
                "window": envelope.window.to_record(),
                "tolerance": envelope.window.tolerance,
                "timeline": envelope.timeline,
                "history": envelope.history,
            },
            "Φ diagnostics",
        )
        return record

    def diagnostics(self) -> dict[str, Any]:
        """Structured diagnostics (XDV-072): every envelope's stability timeline, noise index,
        drift and transform history, live and retired."""
        return {
            "live": [self._diagnostic_record(e) for _, e in sorted(self._envelopes.items())],
            "retired": list(self._retired),
        }

    # -- the rest of the DAL --------------------------------------------------------------

    def project(self, pid: int, args: tuple[Any, ...]) -> tuple[Any, ...]:
        projected = []
        for index, arg in enumerate(args):
            if isinstance(arg, np.ndarray) or hasattr(arg, "phases"):
                raise PhiError(
                    f"projection[{index}] would carry raw phase data out of Φ",
                    code=ErrorCode.PHI_ERR_RAW_PHASE_ACCESS,
                    where=f"process {pid}",
                )
            projected.append(canonicalize(arg, f"projection[{index}]"))
        return tuple(projected)

    def terminate(self, pid: int) -> None:
        self._bound.discard(pid)

    def report_fault(self, pid: int, error: BaseException) -> dict[str, Any]:
        record: dict[str, Any] = {"domain": "Φ", "error": type(error).__name__}
        if isinstance(error, XdvError):
            record["code"] = error.code.name
        return record

    def snapshot(self) -> dict[str, Any]:
        return {
            "envelopes": {str(k): e.record() for k, e in sorted(self._envelopes.items())},
            "bound": sorted(self._bound),
        }

    def __reduce__(self) -> Any:
        raise PhiError(
            "a Φ manager holds phase structures and cannot be copied or serialized",
            code=ErrorCode.PHI_ERR_RAW_PHASE_ACCESS,
            where="Φ",
        )
