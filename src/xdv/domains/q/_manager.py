"""The Q domain manager: Q containers, Q resource contracts, calibration, budgets, jobs.

A process reserves ``qubits`` (``Reserve("Q", "qubits", n, terms=...)``); the manager creates a
*Q container* (n logical qubits bound to a provider, a calibration contract and the process) and
grants a contract whose terms describe it. ``Invoke(contract, "run", (circuit_text, shots))``
submits a job through the flow of XDV-060 §5: contract and calibration validated, decoherence
budget and measurement rate checked against the pre-execution estimate, and only then the
provider called. The outcome is a trace-encodable dict of counts and diagnostics, never state.

Reservation terms (every key optional):

==================  ===============================================  ========================
key                 meaning                                          default
==================  ===============================================  ========================
``provider``        provider id (``aer``, ``stim``)                  ``aer``
``method``          simulation method of that provider               the provider's first
``calibration``     calibration profile name (a device snapshot)     ``fake_sherbrooke``
``mapping``         physical qubits for logical 0..n-1 (distinct)    lowest free qubits;
                                                                     with ``noise``, the
                                                                     best calibrated free
                                                                     chain (``best_chain``)
``noise``           simulate the calibration's noise                 ``False``
``shots_max``       most shots one job may ask for                   100000
``channels``        most classical bits one result may carry         64
``work_max``        work units a job may repeat shot by shot         ``qasm_work_max``
``budget``          ``duration_ns_max``, ``fidelity_min``,           longest T1 of the
                    ``shots_per_window``, ``window``                 mapped qubits, 0, none,
                                                                     1000
==================  ===============================================  ========================
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from xdv.core import (
    Invocation,
    Outcome,
    PreparedCall,
    ResourceContract,
    ResourceGrant,
    ResourceRequest,
)
from xdv.domains import PLUGIN_GROUPS, load_plugin, plugin_of, provider_from_record
from xdv.domains.q._budget import DecoherenceBudget, JobEstimate, estimate
from xdv.domains.q._calibration import CalibrationContract, CalibrationProfile, load_profile
from xdv.domains.q._circuit import (
    NoCloningViolation,
    ParsedCircuit,
    circuit_source,
    parse_text,
)
from xdv.domains.q._placement import best_chain
from xdv.domains.q._provider import QJob, QProvider
from xdv.domains.q._signing import verify_calibration
from xdv.domains.q._work import check_job_work
from xdv.errors import (
    ContractError,
    DomainError,
    ErrorCode,
    ResourceError,
    UnauthorizedError,
    XdvError,
    as_typed,
    invariant,
    safe_repr,
)
from xdv.security import HybridPublicKey, KeyStore, ProviderFacts, ProviderRegistry
from xdv.trace import Domain

__all__ = ["QDomainManager", "provider_factories"]

_OPERATIONS = ("run", "recalibrate", "refusal")
_TERMS = (
    "provider",
    "method",
    "calibration",
    "mapping",
    "noise",
    "shots_max",
    "channels",
    "budget",
    "work_max",
)
_MEASURE = frozenset({"MEASURE"})
_NO_RIGHTS: frozenset[str] = frozenset()
DEFAULT_CALIBRATION = "fake_sherbrooke"
_SHOTS_MAX = 100_000
_SHOTS_LIMIT = 10_000_000
_WORK_LIMIT = 1 << 40  # a raised work_max: still bounded (about an hour of simulation)
_CHANNELS = 64
_DIAGNOSTICS_MAX = 4096
_CIRCUITS_MEMO_MAX = 256
_REFUSALS = frozenset(
    {"copy", "deepcopy", "pickle", "serialize", "snapshot", "amplitudes", "foreign-process"}
)


def _aer(key_store: KeyStore | None = None) -> QProvider:
    from xdv.domains.q._aer import AerProvider

    return AerProvider(key_store=key_store)


def _stim(key_store: KeyStore | None = None) -> QProvider:
    from xdv.domains.q._stim import StimProvider

    return StimProvider(key_store=key_store)


def provider_factories() -> dict[str, Callable[[], QProvider]]:
    """Constructors of the providers this XDV knows by id (used to rebuild managers)."""
    return {"aer": _aer, "stim": _stim}


@dataclass(frozen=True, slots=True)
class _JobRequest:
    """A job's arguments after :meth:`QDomainManager.prepare` validated them."""

    circuit: ParsedCircuit
    shots: int


@dataclass
class _Container:
    """A Q container: logical qubits bound to a provider, a calibration and one process.

    Invariant: ``mapping`` has ``qubits`` distinct physical qubits, all marked in use.
    """

    id: int
    pid: int
    qubits: int
    provider: QProvider
    method: str
    profile: CalibrationProfile
    mapping: tuple[int, ...]
    calibration: CalibrationContract
    budget: DecoherenceBudget
    shots_max: int
    channels: int
    noise: bool
    work_max: int | None = None  # None: the limit qasm_work_max
    invalidated: str | None = None
    measurements: collections.deque[tuple[int, int]] = field(default_factory=collections.deque)
    estimates: dict[str, JobEstimate] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The job whose outcome first carried each circuit's diagnostics under this calibration.
    first_jobs: dict[tuple[str, int], int] = field(default_factory=dict)

    def terms(self) -> dict[str, Any]:
        return {
            "container": self.id,
            "provider": self.provider.provider_id,
            "method": self.method,
            "calibration": self.calibration.to_record(),
            "mapping": list(self.mapping),
            "noise": self.noise,
            "shots_max": self.shots_max,
            "channels": self.channels,
            "budget": self.budget.to_record(),
            **({} if self.work_max is None else {"work_max": self.work_max}),
        }

    duration_ns_max: float = 0.0

    def __post_init__(self) -> None:
        invariant(len(set(self.mapping)) == self.qubits, "a container's qubits are distinct")
        # By default a job may last as long as the longest T1 among its qubits: past that,
        # next to nothing of any qubit's state survives.
        self.duration_ns_max = (
            self.budget.duration_ns_max
            if self.budget.duration_ns_max is not None
            else max(self.profile.qubits[p].t1_ns for p in self.mapping)
        )


class QDomainManager:
    """The Q domain manager (``describe()["manager"] == "q"``).

    ``run_latency`` is the logical steps between submitting a job and receiving its counts;
    ``calibration_validity`` how long a calibration contract stays valid; a job may finish up
    to ``calibration_tolerance`` steps after its calibration expired if it was admitted before.
    With ``workers`` > 0 providers run on that many threads off the kernel thread (results still
    enter the order at the point the latency fixes).

    Each provider's identity key is pinned in ``registry`` when the manager admits it (default:
    the provider registry of ``key_store``, itself by default the node's key store, which also
    holds the default Aer provider's key); calibration contracts are verified against the pinned
    key only. Neither appears in :meth:`describe`: keys are machine-specific, traces are not.
    """

    domain = Domain.Q

    def __init__(
        self,
        providers: Mapping[str, QProvider] | None = None,
        *,
        run_latency: int = 1,
        calibration_validity: int = 1_000_000,
        calibration_tolerance: int = 0,
        default_calibration: str = DEFAULT_CALIBRATION,
        workers: int = 0,
        key_store: KeyStore | None = None,
        registry: ProviderRegistry | None = None,
    ) -> None:
        for name, value in (
            ("run_latency", run_latency),
            ("calibration_tolerance", calibration_tolerance),
            ("workers", workers),
        ):
            if type(value) is not int or value < 0:
                raise XdvError(f"{name} must be a non-negative integer", where="Q manager")
        if type(calibration_validity) is not int or calibration_validity < 1:
            raise XdvError("calibration_validity must be a positive integer", where="Q manager")
        if providers is None:
            providers = {"aer": _aer(key_store)}
        if registry is None:
            registry = (
                key_store if key_store is not None else KeyStore.default()
            ).provider_registry()
        self._registry = registry
        self._providers: dict[str, QProvider] = {}
        self._attested: dict[str, ProviderFacts] = {}
        self._pinned: dict[str, HybridPublicKey] = {}
        for provider_id, provider in sorted(providers.items()):
            self._register(provider_id, provider)
        self.run_latency = run_latency
        self.calibration_validity = calibration_validity
        self.calibration_tolerance = calibration_tolerance
        self.default_calibration = default_calibration
        self.workers = workers
        self._executor = ThreadPoolExecutor(workers) if workers else None
        self._bound: set[int] = set()
        self._containers: dict[int, _Container] = {}
        self._in_use: dict[str, set[int]] = {}
        self._next_container = 1
        self._next_calibration = 1
        self._next_job = 1
        self._calibrations: dict[int, CalibrationContract] = {}
        self._circuits: collections.OrderedDict[str, ParsedCircuit] = collections.OrderedDict()
        # Kept as tuples (built into records on demand, off the job path).
        self._diagnostics: collections.deque[tuple[Any, ...]] = collections.deque(
            maxlen=_DIAGNOSTICS_MAX
        )
        self.provider_calls = 0

    # ------------------------------------------------------------------ registration

    def _register(self, provider_id: str, provider: QProvider) -> None:
        """Admit a provider after reading and checking its facts (identity, measurement,
        declaration) the way the attestation verifier does, and pin its identity key (first use
        pins; a key other than the pinned one is refused with PROVIDER_KEY_MISMATCH)."""
        if not isinstance(provider, QProvider) or provider.provider_id != provider_id:
            raise UnauthorizedError(
                f"provider {provider_id!r} does not implement the Q provider interface",
                code=ErrorCode.ATTESTATION_FAILED,
                where="Q provider registration",
            )
        facts = ProviderFacts.of(provider)
        self._pinned[provider_id] = self._registry.pin(provider_id, facts.identity)
        self._providers[provider_id] = provider
        self._attested[provider_id] = facts

    def _reattest(self, provider: QProvider) -> None:
        """Judge ``provider`` again against the facts it was admitted with (reservation and
        recalibration); ATTESTATION_FAILED if its code or configuration changed since."""
        self._attested[provider.provider_id].check(provider)

    def providers(self) -> Mapping[str, QProvider]:
        """The registered providers, by id."""
        return dict(self._providers)

    def rights(self, operation: str) -> frozenset[str]:
        """Capability operations beyond EXECUTE that ``operation`` needs: a job measures."""
        return _MEASURE if operation == "run" else _NO_RIGHTS

    # ------------------------------------------------------------------ DAL

    def describe(self) -> dict[str, Any]:
        return {
            "manager": "q",
            "run_latency": self.run_latency,
            "calibration_validity": self.calibration_validity,
            "calibration_tolerance": self.calibration_tolerance,
            "default_calibration": self.default_calibration,
            "workers": self.workers,
            "providers": {
                provider_id: self._provider_record(provider_id, provider)
                for provider_id, provider in sorted(self._providers.items())
            },
        }

    def _provider_record(self, provider_id: str, provider: QProvider) -> dict[str, Any]:
        record: dict[str, Any] = {
            "measurement": self._attested[provider_id].measurement,
            "declaration": dict(self._attested[provider_id].declaration),
        }
        plugin = plugin_of(provider)
        if plugin is not None:  # replay rebuilds it through the same plug-in factory
            record["plugin"] = plugin.to_record()
        return record

    def init(self, pid: int) -> dict[str, Any]:
        invariant(pid not in self._bound, f"process {pid} is bound to Q only once")
        self._bound.add(pid)
        return {"providers": sorted(self._providers)}

    def usage(self, request: ResourceRequest) -> dict[str, int | None]:
        """What a reservation uses against VHM quotas: its qubits, and qubits × duration of
        qubit·time (no bound without a duration)."""
        amount = request.amount if type(request.amount) is int and request.amount > 0 else 0
        duration = request.duration
        return {"qubits": amount, "qubit_time": None if duration is None else amount * duration}

    def request_resources(self, request: ResourceRequest) -> ResourceGrant:
        where = "Q.request_resources"
        if request.resource != "qubits":
            raise ResourceError(
                f"the Q domain offers 'qubits', not {request.resource!r}",
                code=ErrorCode.RESOURCE_UNKNOWN,
                where=where,
            )
        terms = dict(request.terms)
        unknown = sorted(set(terms) - set(_TERMS))
        if unknown:
            raise ContractError(
                f"unknown Q reservation terms {unknown} (known: {', '.join(_TERMS)})",
                where=where,
            )
        amount = request.amount
        if amount < 1:
            raise ContractError(
                f"a Q container holds at least one qubit, got {amount}", where=where
            )
        provider_id = terms.get("provider", "aer")
        provider = self._providers.get(provider_id) if isinstance(provider_id, str) else None
        if provider is None:
            raise ResourceError(
                f"no Q provider {safe_repr(provider_id)} (registered: "
                f"{', '.join(sorted(self._providers))})",
                code=ErrorCode.DOMAIN_UNAVAILABLE,
                where=where,
            )
        method = terms.get("method", provider.methods[0])
        if method not in provider.methods:
            raise ContractError(
                f"provider {provider_id} has no method {safe_repr(method)} "
                f"(it has: {', '.join(provider.methods)})",
                where=where,
            )
        if amount > provider.qubits_max(method):
            raise ResourceError(
                f"{amount} qubits exceed what {provider_id}/{method} runs "
                f"({provider.qubits_max(method)})",
                where=where,
            )
        profile_name = terms.get("calibration", self.default_calibration)
        if not isinstance(profile_name, str):
            raise ContractError(
                f"calibration names a profile, got {safe_repr(profile_name)}", where=where
            )
        profile = load_profile(profile_name)
        noise = terms.get("noise", False)
        if type(noise) is not bool:
            raise ContractError(f"noise is true or false, got {safe_repr(noise)}", where=where)
        shots_max = terms.get("shots_max", _SHOTS_MAX)
        channels = terms.get("channels", _CHANNELS)
        for name, value in (("shots_max", shots_max), ("channels", channels)):
            if type(value) is not int or not 1 <= value <= _SHOTS_LIMIT:
                raise ContractError(
                    f"{name} must be an integer in [1, {_SHOTS_LIMIT}], got {safe_repr(value)}",
                    where=where,
                )
        work_max = terms.get("work_max")
        if work_max is not None and (type(work_max) is not int or not 1 <= work_max <= _WORK_LIMIT):
            raise ContractError(
                f"work_max must be an integer in [1, {_WORK_LIMIT}], got {safe_repr(work_max)}",
                where=where,
            )
        budget = DecoherenceBudget.from_terms(terms.get("budget"), where)
        in_use = self._in_use.setdefault(profile.name, set())
        mapping = self._mapping(terms.get("mapping"), amount, profile, in_use, where, noise)
        # Checks done; from here the reservation cannot fail, so nothing changes on a refusal.
        self._reattest(provider)
        calibration = provider.calibrate(
            self._next_calibration, profile, request.logical_time, self.calibration_validity
        )
        self._verify_issued(calibration, provider, where)
        self._next_calibration += 1
        self._calibrations[calibration.id] = calibration
        container = _Container(
            id=self._next_container,
            pid=request.pid,
            qubits=amount,
            provider=provider,
            method=method,
            profile=profile,
            mapping=mapping,
            calibration=calibration,
            budget=budget,
            shots_max=shots_max,
            channels=channels,
            noise=noise,
            work_max=work_max,
        )
        self._next_container += 1
        in_use.update(mapping)
        self._containers[container.id] = container
        return ResourceGrant("qubits", amount, container.terms())

    def _mapping(
        self,
        requested: Any,
        amount: int,
        profile: CalibrationProfile,
        in_use: set[int],
        where: str,
        noise: bool = False,
    ) -> tuple[int, ...]:
        if requested is None:
            free = [q for q in range(profile.size) if q not in in_use]
            if len(free) < amount:
                raise ResourceError(
                    f"{amount} qubits asked of {profile.name}; {profile.size - len(in_use)} of "
                    f"{profile.size} are free",
                    where=where,
                )
            if noise:
                # A noisy run is only as good as the qubits it lands on: like a device's own
                # transpiler, take the best-calibrated chain of free coupled qubits (on
                # fake_sherbrooke the lowest-numbered ones include a 26% readout error).
                chosen = best_chain(profile, amount, free)
                invariant(chosen is not None, "enough free qubits give a placement")
                return chosen[1] if chosen is not None else tuple(free[:amount])
            return tuple(free[:amount])
        if (
            not isinstance(requested, list)
            or len(requested) != amount
            or any(type(q) is not int or not 0 <= q < profile.size for q in requested)
            or len(set(requested)) != amount
        ):
            raise ContractError(
                f"mapping must list {amount} distinct physical qubits of {profile.name} "
                f"(0..{profile.size - 1}), got {safe_repr(requested)}",
                where=where,
            )
        taken = sorted(set(requested) & in_use)
        if taken:
            raise ResourceError(
                f"physical qubits {taken} of {profile.name} belong to another container",
                where=where,
            )
        return tuple(requested)

    def transfer(self, contract: ResourceContract, pid: int) -> dict[str, Any]:
        """Hand a container to process ``pid`` under the kernel's explicit, recorded transfer
        (the only way a container crosses processes); the container itself is not copied."""
        container = self._containers.get(int(contract.terms.get("container", 0)))
        if container is None or container.pid != contract.pid:
            raise DomainError(
                f"contract {contract.id} holds no live Q container",
                code=ErrorCode.CONTRACT_INVALID,
                where=f"contract {contract.id}",
            )
        if pid not in self._bound:
            raise DomainError(
                f"process {pid} is not bound to Q",
                code=ErrorCode.DOMAIN_NOT_BOUND,
                where=f"contract {contract.id}",
            )
        container.pid = pid
        return {"container": container.id}

    def in_use(self, profile: str) -> frozenset[int]:
        """The physical qubits of calibration profile ``profile`` held by live containers (what
        a placement policy reads; it never changes anything)."""
        return frozenset(self._in_use.get(profile, ()))

    def resolve_conflict(
        self, resource: str, amount: int, terms: dict[str, Any], now: int
    ) -> dict[str, Any] | None:
        """Resolve a reservation whose ``mapping`` names qubits another container holds: the
        same terms with the lowest free qubits of the same profile instead, or None when the
        profile has fewer than ``amount`` free qubits (XDV-023 §6: resolved, not only
        refused)."""
        if resource != "qubits" or not isinstance(terms.get("mapping"), list):
            return None
        name = terms.get("calibration", self.default_calibration)
        if not isinstance(name, str):
            return None
        profile = load_profile(name)
        taken = self._in_use.get(profile.name, set())
        free = [q for q in range(profile.size) if q not in taken][:amount]
        if len(free) < amount:
            return None
        return {**terms, "mapping": free}

    def release(self, contract: ResourceContract) -> None:
        container = self._containers.pop(int(contract.terms["container"]))
        self._in_use[container.profile.name].difference_update(container.mapping)

    def latency(self, operation: str) -> int:
        if operation == "run":
            return self.run_latency
        if operation == "recalibrate":
            return 1
        if operation == "refusal":
            return 0
        raise DomainError(
            f"the Q domain has no operation {operation!r} (it has: {', '.join(_OPERATIONS)})",
            code=ErrorCode.OPERATION_UNSUPPORTED,
            where="Q",
        )

    def validate_contract(
        self, contract: ResourceContract, operation: str, latency_max: int | None
    ) -> None:
        latency = self.latency(operation)
        if latency_max is not None and latency > latency_max:
            raise ContractError(
                f"Q {operation!r} takes {latency} logical step(s); the contract allows at most "
                f"{latency_max}",
                where=f"contract {contract.id}",
            )
        self._container(contract)

    def prepare(self, operation: str, args: tuple[Any, ...]) -> PreparedCall:
        """Parse and validate an invocation once and describe it for DOMAIN_INVOKE: a job's
        circuit (its canonical hash and width) and shots, a refusal's kind; recalibration takes
        no arguments. ``execute`` receives the parsed value, never the raw arguments."""
        if operation == "run":
            job = self._run_args(args)
            record = {**job.circuit.record(), "shots": job.shots}
            return PreparedCall(operation, record, job, usage={"shots": job.shots})
        if operation == "refusal":
            kind = self._refusal_kind(args)
            return PreparedCall(operation, {"refused": kind}, kind)
        self.latency(operation)  # refuses an operation the Q domain does not have
        if args:
            raise XdvError(
                f"Q {operation!r} takes no arguments",
                code=ErrorCode.SYSCALL_INVALID,
                where=f"Q.{operation}",
            )
        return PreparedCall(operation, {})

    def _run_args(self, args: tuple[Any, ...]) -> _JobRequest:
        if len(args) != 2:
            raise XdvError(
                "Q 'run' takes (circuit_text, shots)",
                code=ErrorCode.SYSCALL_INVALID,
                where="Q.run",
            )
        source, shots = args
        if type(shots) is not int or not 1 <= shots <= _SHOTS_LIMIT:
            raise XdvError(
                f"shots must be an integer in [1, {_SHOTS_LIMIT}], got {safe_repr(shots)}",
                code=ErrorCode.SYSCALL_INVALID,
                where="Q.run",
            )
        return _JobRequest(self._parse(source), shots)

    def _parse(self, source: Any) -> ParsedCircuit:
        """The parsed circuit of ``source``; a resubmitted text is taken from the memo.

        Parsing is a pure function of the text, so the memo never changes a result; it is
        bounded (oldest out first) and holds only circuits that parsed."""
        text = circuit_source(source, "Q.run")
        parsed = self._circuits.get(text)
        if parsed is None:
            parsed = parse_text(text, "Q.run")
            self._circuits[text] = parsed
            if len(self._circuits) > _CIRCUITS_MEMO_MAX:
                self._circuits.popitem(last=False)
        return parsed

    @staticmethod
    def _refusal_kind(args: tuple[Any, ...]) -> str:
        if len(args) != 1 or args[0] not in _REFUSALS:
            raise XdvError(
                f"Q 'refusal' takes one of {sorted(_REFUSALS)}",
                code=ErrorCode.SYSCALL_INVALID,
                where="Q.refusal",
            )
        return str(args[0])

    def _container(self, contract: ResourceContract) -> _Container:
        container = self._containers.get(int(contract.terms.get("container", 0)))
        if container is None:
            raise ContractError(
                f"contract {contract.id} names no live Q container", where=f"contract {contract.id}"
            )
        return container

    def execute(self, invocation: Invocation) -> Outcome:
        container = self._container(invocation.contract)
        where = f"Q job (invocation {invocation.id})"
        if invocation.pid != container.pid:
            raise NoCloningViolation(
                f"Q container {container.id} belongs to process {container.pid}, not "
                f"{invocation.pid}: containers do not cross processes",
                where=where,
            )
        if invocation.operation == "refusal":
            kind = invocation.parsed
            invariant(isinstance(kind, str), "a Q refusal arrives prepared")
            raise NoCloningViolation(
                f"process {invocation.pid} tried to {kind} Q container {container.id}; refused",
                where=f"Q container {container.id}",
            )
        if invocation.operation == "recalibrate":
            return Outcome(self._recalibrate(container, invocation.logical_time, where))
        return self._run(container, invocation, where)

    def _recalibrate(self, container: _Container, now: int, where: str) -> dict[str, Any]:
        provider = container.provider
        self._reattest(provider)  # recalibration requires re-attestation
        calibration = provider.calibrate(
            self._next_calibration, container.profile, now, self.calibration_validity
        )
        self._verify_issued(calibration, provider, where)
        self._next_calibration += 1
        self._calibrations[calibration.id] = calibration
        container.calibration = calibration
        return {"calibration": calibration.to_record()}

    def _run(self, container: _Container, invocation: Invocation, where: str) -> Outcome:
        # XDV-060 §5.2: capability (the kernel: EXECUTE and MEASURE), then contract,
        # calibration, budget; only then is the provider called.
        now = invocation.logical_time
        if container.invalidated is not None:
            raise ContractError(
                f"Q container {container.id}'s contract was invalidated: {container.invalidated}",
                where=where,
            )
        job_request = invocation.parsed
        invariant(isinstance(job_request, _JobRequest), "a Q job arrives prepared")
        circuit, shots = job_request.circuit, job_request.shots
        if circuit.qubits > container.qubits:
            raise ContractError(
                f"the circuit uses {circuit.qubits} qubits; the contract holds {container.qubits}",
                where=where,
            )
        if shots > container.shots_max:
            raise ContractError(
                f"{shots} shots asked; the contract allows {container.shots_max}", where=where
            )
        if circuit.clbits > container.channels:
            raise ContractError(
                f"the circuit measures into {circuit.clbits} classical bits; the contract's "
                f"measurement channels are {container.channels}",
                where=where,
            )
        if circuit.measures == 0:
            raise XdvError(
                "the circuit measures nothing: measurement is the only way a result leaves Q",
                code=ErrorCode.CIRCUIT_INVALID,
                where=where,
            )
        # A circuit the provider must simulate shot by shot repeats its work per shot: bounded
        # (qasm_work_max) from the circuit's description before anything runs.
        check_job_work(
            circuit,
            shots,
            provider=container.provider.provider_id,
            method=container.method,
            noise=container.noise,
            work_max=container.work_max,
            where=where,
        )
        calibration = container.calibration
        delivery = now + self.run_latency
        if not calibration.valid_at(now) or delivery > (
            calibration.valid_until + self.calibration_tolerance
        ):
            raise XdvError(
                f"calibration {calibration.id} ({calibration.profile}) is valid for L "
                f"{calibration.valid_from}..{calibration.valid_until}; a job submitted at L {now} "
                f"delivers at L {delivery}: recalibrate first",
                code=ErrorCode.CALIBRATION_EXPIRED,
                where=where,
            )
        job_estimate = container.estimates.get(circuit.sha256)
        if job_estimate is None:
            job_estimate = estimate(circuit.circuit, container.profile, container.mapping, where)
            container.estimates[circuit.sha256] = job_estimate
            container.records[circuit.sha256] = self._traced_diagnostics(container, job_estimate)
        job_id = self._next_job
        self._next_job += 1
        diagnostics = (container, job_id, job_estimate, shots, now)
        budget = container.budget
        limit = container.duration_ns_max
        failure: str | None = None
        if job_estimate.duration_ns > limit:
            failure = (
                f"estimated duration {job_estimate.duration_ns:.1f} ns exceeds the budget's "
                f"{limit:.1f} ns"
            )
        elif job_estimate.fidelity < budget.fidelity_min:
            failure = (
                f"estimated success probability {job_estimate.fidelity:.6f} is below the "
                f"budget's {budget.fidelity_min}"
            )
        if failure is not None:
            container.invalidated = f"DECOHERENCE_EXCEEDED at L {now} (job {job_id})"
            self._diagnostics.append((*diagnostics, "DECOHERENCE_EXCEEDED"))
            raise XdvError(
                f"job {job_id}: {failure}; the contract is invalidated",
                code=ErrorCode.DECOHERENCE_EXCEEDED,
                where=where,
            )
        if budget.shots_per_window is not None:
            window = container.measurements
            while window and window[0][0] <= now - budget.window:
                window.popleft()
            used = sum(count for _, count in window)
            if used + shots > budget.shots_per_window:
                self._diagnostics.append((*diagnostics, "MEASUREMENT_RATE_EXCEEDED"))
                raise XdvError(
                    f"job {job_id}: {shots} shots on top of {used} in the last {budget.window} "
                    f"steps exceed the budget's {budget.shots_per_window}",
                    code=ErrorCode.MEASUREMENT_RATE_EXCEEDED,
                    where=where,
                )
            window.append((now, shots))
        # The kernel derives each invocation's seed from the run seed and the invocation id;
        # Aer takes seeds below 2**63.
        seed = invocation.seed >> 1
        job = QJob(
            job_id=job_id,
            pid=invocation.pid,
            contract_id=invocation.contract.id,
            calibration_id=calibration.id,
            qubits=container.qubits,
            circuit=circuit,
            shots=shots,
            method=container.method,
            seed=seed,
            noise=container.noise,
            mapping=container.mapping[: circuit.qubits],
            logical_time=now,
        )
        self._diagnostics.append((*diagnostics, "OK"))
        # Provider, method, profile and budget are the contract's (RESOURCE_RESERVE records
        # them); the outcome carries what is particular to this job.
        header = {
            "job": job_id,
            "shots": shots,
            "seed": seed,
            "calibration": calibration.id,
            "diagnostics": self._traced_reference(container, circuit.sha256, job_id),
        }
        self.provider_calls += 1
        if self._executor is not None:
            future: Future[Any] = self._executor.submit(self._call, container, job, header)
            return Outcome(future)
        return Outcome(self._call(container, job, header))

    @staticmethod
    def _call(container: _Container, job: QJob, header: dict[str, Any]) -> dict[str, Any]:
        try:
            counts = container.provider.run(job, container.profile)
        except Exception as error:
            raise as_typed(
                error, ErrorCode.Q_PROVIDER_FAILED, "the Q provider failed", f"Q job {job.job_id}"
            ) from None
        if sum(counts.values()) != job.shots or any(
            type(key) is not str or len(key) != job.circuit.clbits for key in counts
        ):
            raise XdvError(
                f"provider {container.provider.provider_id} returned malformed counts",
                code=ErrorCode.Q_PROVIDER_FAILED,
                where=f"Q job {job.job_id}",
            )
        return {**header, "counts": {key: int(value) for key, value in counts.items()}}

    @staticmethod
    def _diagnose(
        container: _Container,
        job_id: int,
        job_estimate: JobEstimate,
        shots: int,
        now: int,
        status: str,
    ) -> dict[str, Any]:
        """The structured diagnostic record of a job (XDV-072 §3): no state, only metadata."""
        return {
            "status": status,
            "job": job_id,
            "container": container.id,
            "L": now,
            "calibration": container.calibration.id,
            "profile": container.profile.name,
            "duration_ns_budget": round(container.duration_ns_max, 3),
            "fidelity_min": container.budget.fidelity_min,
            "shots": shots,
            **job_estimate.to_record(),
        }

    @staticmethod
    def _traced_diagnostics(container: _Container, job_estimate: JobEstimate) -> dict[str, Any]:
        """The diagnostics a job's traced outcome carries (XDV-072 §3.2), canonical already."""
        record = job_estimate.to_record()
        return {
            "duration_ns": record["duration_ns"],
            "duration_ns_budget": round(container.duration_ns_max, 3),
            "fidelity": record["fidelity"],
            "t1_margin_ns": record["t1_margin_ns"],
            "t2_margin_ns": record["t2_margin_ns"],
            "readout_error": record["readout_error"],
        }

    @staticmethod
    def _traced_reference(container: _Container, sha256: str, job_id: int) -> dict[str, Any]:
        """A job's traced diagnostics: in full the first time a circuit runs under a
        calibration; afterwards (same figures, by construction) a reference to that job."""
        key = (sha256, container.calibration.id)
        first = container.first_jobs.setdefault(key, job_id)
        return container.records[sha256] if first == job_id else {"same_as": first}

    def diagnostics(self) -> list[dict[str, Any]]:
        """Per-job diagnostic records, oldest first (admitted and rejected jobs)."""
        return [self._diagnose(*entry) for entry in self._diagnostics]

    def _verify_issued(
        self, calibration: CalibrationContract, provider: QProvider, where: str
    ) -> None:
        """Check a contract the provider just issued: its own, the one asked for, and signed by
        the key pinned for it (SIGNATURE_INVALID otherwise)."""
        if (calibration.provider_id, calibration.id) != (
            provider.provider_id,
            self._next_calibration,
        ):
            raise XdvError(
                f"provider {provider.provider_id!r} issued calibration contract "
                f"{calibration.id} of provider {calibration.provider_id!r}; expected contract "
                f"{self._next_calibration} of its own",
                code=ErrorCode.CALIBRATION_INVALID,
                where=where,
            )
        self.verify_calibration(calibration, where)

    def verify_calibration(self, contract: CalibrationContract, where: str = "Q") -> None:
        """Check that ``contract`` is signed by the identity key pinned for its provider.

        Raise CALIBRATION_INVALID for a provider this manager did not admit and
        SIGNATURE_INVALID for a signature by any other key (a key derived from public facts, an
        unpinned key) or a contract altered after signing."""
        pinned = self._pinned.get(contract.provider_id)
        if pinned is None:
            raise XdvError(
                f"calibration contract {contract.id} names provider {contract.provider_id!r}, "
                "which this manager did not admit",
                code=ErrorCode.CALIBRATION_INVALID,
                where=where,
            )
        verify_calibration(contract, pinned, where)

    def calibration_contract(self, calibration_id: int) -> CalibrationContract:
        """The signed calibration contract ``calibration_id`` (its signature included)."""
        found = self._calibrations.get(calibration_id)
        if found is None:
            raise XdvError(
                f"no calibration contract {calibration_id}",
                code=ErrorCode.CALIBRATION_INVALID,
                where="Q",
            )
        return found

    def project(self, pid: int, args: tuple[Any, ...]) -> tuple[Any, ...]:
        raise NoCloningViolation(
            "Q state has no projection into another domain: measurement (the 'run' operation) "
            "is the only way out",
            where=f"process {pid}",
        )

    def terminate(self, pid: int) -> None:
        self._bound.discard(pid)

    def report_fault(self, pid: int, error: BaseException) -> dict[str, Any]:
        code = error.code.name if isinstance(error, XdvError) else "Q_PROVIDER_FAILED"
        return {"domain": "Q", "error": type(error).__name__, "code": code}

    def snapshot(self) -> dict[str, Any]:
        return {
            "bound": sorted(self._bound),
            "containers": {
                str(container.id): {
                    "pid": container.pid,
                    "qubits": container.qubits,
                    "provider": container.provider.provider_id,
                    "calibration": container.calibration.id,
                    "mapping": list(container.mapping),
                    "invalidated": container.invalidated,
                }
                for container in self._containers.values()
            },
        }


def manager_from_description(description: Mapping[str, Any]) -> QDomainManager:
    """Build a Q manager from a description: a recorded :meth:`QDomainManager.describe` output
    (replay), or a workload's declaration such as ``{"manager": "q"}`` (missing keys take the
    defaults)."""
    factories = provider_factories()
    listed = description.get("providers", ["aer"])
    providers: dict[str, QProvider] = {}
    for name in sorted(listed):
        factory = factories.get(name)
        recorded = listed.get(name) if isinstance(listed, Mapping) else None
        plugin = recorded.get("plugin") if isinstance(recorded, Mapping) else None
        if isinstance(plugin, Mapping):  # a replay: the plug-in the trace names
            providers[name] = provider_from_record(plugin, interface=QProvider)
        elif factory is not None:
            providers[name] = factory()
        else:  # a third-party provider: an entry point or a providers.toml entry
            providers[name] = load_plugin(PLUGIN_GROUPS["q"], name, interface=QProvider)
    return QDomainManager(
        providers,
        run_latency=int(description.get("run_latency", 1)),
        calibration_validity=int(description.get("calibration_validity", 1_000_000)),
        calibration_tolerance=int(description.get("calibration_tolerance", 0)),
        default_calibration=str(description.get("default_calibration", DEFAULT_CALIBRATION)),
        workers=int(description.get("workers", 0)),
    )
