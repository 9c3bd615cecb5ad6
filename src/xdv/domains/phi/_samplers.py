"""Sampler providers: Φ providers that answer one transform, ``sample``, with many reads.

A sampler provider takes an Ising problem, a number of reads, a seed and its own parameters,
and returns one spin configuration per read (never anything else of its internal state). The
Φ manager verifies every read classically (the energy of each is recomputed), signs a witness
for the best one and reports the stability of the envelope, exactly as for the phase and exact
providers, so the Φ contract (coherence window, stability report, verified result, witness)
does not depend on which provider answered.

Three sampler providers ship with XDV, adapters of D-Wave's Ocean software (the ``dwave``
extra):

* ``sa``: dwave-samplers' ``SimulatedAnnealingSampler``;
* ``tabu``: dwave-samplers' ``TabuSampler``;
* ``dwave``: a dwave-system sampler (``DWaveSampler`` behind an ``EmbeddingComposite``) when
  the machine is configured for D-Wave's cloud service.

Each adapter's provider id is its name, as the plug-in loader requires of every provider in the
group, where the adapters are also listed (``pyproject.toml``); the shipped names always resolve
to these classes, whatever else is installed.

Any other name is a plug-in, found and built by XDV's plug-in loader
(:func:`xdv.domains.load_plugin`): an entry point of the group ``xdv.phi_providers``, or an entry
of ``$XDV_HOME/providers.toml``, naming a factory ``factory(config) -> provider`` whose
provider's id is the plug-in's name. The manager records each sampler provider in its
description (a shipped adapter's configuration; a plug-in's loader record), so a replay
rebuilds the same provider from the trace; the provider's own ``configuration()`` enters its
measurement.

Wall time never decides a result: a parameter that would let it (tabu's ``timeout``, an
interrupt function) is refused (PHI_SAMPLER_PARAMS_INVALID), and tabu's search length is its
number of restarts, a work measure.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from xdv.domains import PLUGIN_GROUPS, load_plugin, provider_from_record
from xdv.domains.phi._problems import IsingProblem
from xdv.domains.phi._provider import PhiProvider
from xdv.errors import ErrorCode, XdvError, safe_repr
from xdv.inputs import exceeded, limit
from xdv.security import (
    KeyStore,
    ProviderIdentity,
    StoredIdentity,
    embedded_provider,
    measure_provider,
)

__all__ = [
    "PHI_PROVIDER_GROUP",
    "SHIPPED_SAMPLERS",
    "DWaveSystemProvider",
    "PhiSamplerProvider",
    "SampleBatch",
    "SimulatedAnnealingProvider",
    "TabuProvider",
    "check_reads",
    "descend",
    "sampler_provider",
]

PHI_PROVIDER_GROUP = "xdv.phi_providers"
"""The entry-point group of Φ provider plug-ins."""

BUILT_IN = frozenset({"phase", "exact"})
"""Provider names the Φ manager always has; no plug-in may take them."""

READS_MAX = 100_000
SAMPLE_SPINS_MAX = limit("phi_sample_spins_max")

IntArray = npt.NDArray[np.int8]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SampleBatch:
    """What a sampler provider returns: ``spins`` (reads × n, entries ±1, read order kept),
    the energies it computed for them (checked by the manager, never trusted), and ``info``,
    trace-encodable facts about the run (schedules, counts), never internal state."""

    spins: IntArray
    energies: FloatArray | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class PhiSamplerProvider(PhiProvider, Protocol):
    """A Φ provider answering ``sample`` (see the module docstring)."""

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters in canonical form; PHI_SAMPLER_PARAMS_INVALID if refused. Called
        before the invocation is recorded, so a refused parameter never reaches the provider."""
        ...

    def sample(
        self, problem: IsingProblem, reads: int, seed: int, params: Mapping[str, Any]
    ) -> SampleBatch:
        """``reads`` spin configurations of ``problem``, a deterministic function of the
        arguments (``seed`` is the kernel's per-invocation seed)."""
        ...


def params_error(message: str, where: str) -> XdvError:
    """The typed refusal of a sampler parameter."""
    return XdvError(message, code=ErrorCode.PHI_SAMPLER_PARAMS_INVALID, where=where)


def check_reads(reads: Any, n: int, where: str) -> int:
    """``reads`` as a count of reads of an ``n``-spin problem; PHI_SAMPLER_PARAMS_INVALID
    outside ``[1, READS_MAX]`` or when reads × n passes ``phi_sample_spins_max``."""
    if type(reads) is not int or not 1 <= reads <= READS_MAX:
        raise params_error(f"reads must be an integer in [1, {READS_MAX}], got {reads!r}", where)
    if reads * n > SAMPLE_SPINS_MAX:
        raise exceeded(
            "phi_sample_spins_max",
            f"{reads} reads of {n} spins",
            where,
            code=ErrorCode.PHI_SAMPLER_PARAMS_INVALID,
        )
    return reads


def descend(problem: IsingProblem, spins: IntArray) -> IntArray:
    """Greedy steepest single-flip descent of each read (row) until no flip lowers its energy:
    the classical polish of the phase provider's reads (the same refinement its readout
    applies to the best replica)."""
    import scipy.sparse

    n = problem.n
    matrix = scipy.sparse.coo_matrix(
        (
            np.concatenate([problem.weights, problem.weights]),
            (
                np.concatenate([problem.rows, problem.cols]),
                np.concatenate([problem.cols, problem.rows]),
            ),
        ),
        shape=(n, n),
    ).tocsr()
    s = np.asarray(spins, dtype=np.float64).copy()
    local = np.asarray(s @ matrix) + problem.h  # flipping i changes E by -2 s_i f_i
    rows = np.arange(s.shape[0])
    for _ in range(10 * n):
        gain = -2.0 * s * local
        best = np.argmin(gain, axis=1)
        improving = gain[rows, best] < -1e-9
        if not improving.any():
            break
        changed, columns = rows[improving], best[improving]
        old = s[changed, columns].copy()
        s[changed, columns] = -old
        local[changed] += matrix[columns].toarray() * (-2.0 * old)[:, None]
    return s.astype(np.int8)


# -- the D-Wave adapters ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    """A sampler parameter: ``kind`` (int, float, range, bool, choice), bounds, choices."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()


_WALL_TIME = frozenset({"timeout", "interrupt_function"})


def _check_value(name: str, value: Any, spec: _Spec, where: str) -> Any:
    kind = spec.kind
    if kind == "choice":
        if value not in spec.choices:
            raise params_error(
                f"{name} must be one of {list(spec.choices)}, got {safe_repr(value)}", where
            )
        return value
    if kind == "bool":
        if type(value) is not bool:
            raise params_error(f"{name} must be a boolean, got {safe_repr(value)}", where)
        return value
    low, high = spec.low, spec.high
    if kind == "int":
        if type(value) is not int or not low <= value <= high:
            raise params_error(
                f"{name} must be an integer in [{low:g}, {high:g}], got {safe_repr(value)}", where
            )
        return value
    if kind == "range":
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(type(v) in (int, float) and math.isfinite(v) for v in value)
            or not 0 < value[0] <= value[1] <= high
        ):
            raise params_error(
                f"{name} must be [low, high] with 0 < low ≤ high ≤ {high:g}, got "
                f"{safe_repr(value)}",
                where,
            )
        return [float(value[0]), float(value[1])]
    if type(value) not in (int, float) or not math.isfinite(value) or not low <= value <= high:
        raise params_error(
            f"{name} must be a number in [{low:g}, {high:g}], got {safe_repr(value)}", where
        )
    return float(value)


def _check_params(
    params: Mapping[str, Any], specs: Mapping[str, _Spec], where: str
) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise params_error("sampler parameters must be a mapping", where)
    checked: dict[str, Any] = {}
    for name in sorted(params):
        if name in _WALL_TIME:
            raise params_error(
                f"{name!r} would let wall time decide the result; XDV bounds the search by "
                "work instead (see the provider's parameters)",
                where,
            )
        spec = specs.get(name)
        if spec is None:
            raise params_error(
                f"the provider takes no parameter {name!r} (it takes: {sorted(specs)}; the "
                "number of reads and the seed are set by the call)",
                where,
            )
        checked[name] = _check_value(name, params[name], spec, where)
    return checked


def _seed32(seed: int) -> int:
    """A 31-bit sampler seed (what the samplers take) from the kernel's per-invocation seed."""
    return int(np.random.default_rng([seed, 2]).integers(0, 2**31 - 1))


def _bqm(problem: IsingProblem) -> Any:
    """The problem as a SPIN dimod BQM on the labels 0..n-1."""
    import dimod

    bqm = dimod.BinaryQuadraticModel.from_ising(
        {i: float(v) for i, v in enumerate(problem.h) if v},
        {
            (int(i), int(j)): float(w)
            for i, j, w in zip(problem.rows, problem.cols, problem.weights, strict=True)
        },
        float(problem.offset),
    )
    bqm.add_variables_from((i, 0.0) for i in range(problem.n))
    return bqm


def _batch(sampleset: Any, n: int, info: Mapping[str, Any]) -> SampleBatch:
    """The reads of a dimod sample set, in read order, as a reads × n ±1 array."""
    spins = np.asarray(sampleset.record.sample, dtype=np.int8)
    order = [int(v) for v in sampleset.variables]
    aligned = np.empty_like(spins)
    aligned[:, order] = spins
    if aligned.shape[1] != n:
        raise XdvError(
            f"the sampler answered {aligned.shape[1]} variables for {n} spins",
            code=ErrorCode.PHI_ERR_PROVIDER_FAILED,
            where="sampler provider",
        )
    counts = np.asarray(sampleset.record.num_occurrences, dtype=np.int64)
    rows = np.repeat(np.arange(len(counts)), counts)
    energies = np.asarray(sampleset.record.energy, dtype=np.float64)[rows]
    return SampleBatch(aligned[rows], energies, dict(info))


def _library_version(module: str, distribution: str, where: str) -> str:
    try:
        importlib.import_module(module)
        return importlib.metadata.version(distribution)
    except (ImportError, importlib.metadata.PackageNotFoundError):
        raise XdvError(
            f"the {distribution} library is not installed (pip install 'xdv[dwave]')",
            code=ErrorCode.PHI_PROVIDER_UNAVAILABLE,
            where=where,
        ) from None


class _OceanSampler(StoredIdentity):
    """The shared adapter of a dwave-samplers sampler (a subclass names the sampler)."""

    provider_id = ""
    transforms = frozenset({"sample"})
    sampler_name = ""
    distribution = "dwave-samplers"
    library = "dwave.samplers"  # the module whose distribution's version is recorded
    parameters: Mapping[str, _Spec] = {}
    defaults: Mapping[str, Any] = {}

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        identity: ProviderIdentity | None = None,
        key_store: KeyStore | None = None,
    ) -> None:
        where = f"provider {self.provider_id}"
        # The configuration sets default parameters (checked as a call's would be).
        self.config = _check_params(dict(config or {}), self.parameters, where)
        self.version = _library_version(self.library, self.distribution, where)
        self._identity = identity
        self._key_store = key_store

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], key_store: KeyStore | None = None
    ) -> _OceanSampler:
        """The adapter with default parameters ``config`` (its record in the description)."""
        return cls(config, key_store=key_store)

    def configuration(self) -> dict[str, Any]:
        return {
            "provider": self.provider_id,
            "library": {self.distribution: self.version},
            "sampler": self.sampler_name,
            "defaults": dict(self.defaults),
            "config": dict(self.config),
        }

    def measurement(self) -> str:
        return measure_provider([Path(__file__)], self.configuration())

    def declaration(self) -> dict[str, Any]:
        return {
            "provider": self.provider_id,
            "transforms": sorted(self.transforms),
            "problems": ["ising", "qubo", "bqm"],
            "sampler": self.sampler_name,
            "parameters": sorted(self.parameters),
            "reads_max": READS_MAX,
            "readout": ["reads", "energies"],
        }

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return _check_params(params, self.parameters, f"provider {self.provider_id}")

    def _sampler(self) -> Any:
        import dwave.samplers

        return getattr(dwave.samplers, self.sampler_name)()

    def sample(
        self, problem: IsingProblem, reads: int, seed: int, params: Mapping[str, Any]
    ) -> SampleBatch:
        arguments = {**self.defaults, **self.config, **self.check_params(params)}
        sampleset = self._sampler().sample(
            _bqm(problem), num_reads=reads, seed=_seed32(seed), **arguments
        )
        parameters = {k: v for k, v in arguments.items() if k != "timeout"}
        return _batch(
            sampleset, problem.n, {"sampler": self.sampler_name, "parameters": parameters}
        )


@embedded_provider
class SimulatedAnnealingProvider(_OceanSampler):
    """dwave-samplers' simulated annealing as a Φ sampler provider (name ``sa``). Parameters:
    ``num_sweeps``, ``num_sweeps_per_beta``, ``beta_range``, ``beta_schedule_type``
    (``linear``, ``geometric``), ``randomize_order``, ``proposal_acceptance_criteria``
    (``Metropolis``, ``Gibbs``); the library's defaults otherwise."""

    provider_id = "sa"
    sampler_name = "SimulatedAnnealingSampler"
    parameters: Mapping[str, _Spec] = {
        "num_sweeps": _Spec("int", 1, 10_000_000),
        "num_sweeps_per_beta": _Spec("int", 1, 10_000_000),
        "beta_range": _Spec("range", 0, 1e12),
        "beta_schedule_type": _Spec("choice", choices=("linear", "geometric")),
        "randomize_order": _Spec("bool"),
        "proposal_acceptance_criteria": _Spec("choice", choices=("Metropolis", "Gibbs")),
    }


@embedded_provider
class TabuProvider(_OceanSampler):
    """dwave-samplers' tabu search as a Φ sampler provider (name ``tabu``). Parameters:
    ``tenure``, ``num_restarts`` (default 0: one search per read), ``energy_threshold``,
    ``coefficient_z_first``, ``coefficient_z_restart``, ``lower_bound_z``. The library's
    per-read ``timeout`` (wall time) is refused and set out of reach (24 h), so the number of
    restarts alone bounds the search."""

    provider_id = "tabu"
    sampler_name = "TabuSampler"
    parameters: Mapping[str, _Spec] = {
        "tenure": _Spec("int", 0, 1_000_000),
        "num_restarts": _Spec("int", 0, 1_000_000),
        "energy_threshold": _Spec("float", -1e300, 1e300),
        "coefficient_z_first": _Spec("int", 1, 10_000_000),
        "coefficient_z_restart": _Spec("int", 1, 10_000_000),
        "lower_bound_z": _Spec("int", 1, 100_000_000),
    }
    defaults: Mapping[str, Any] = {"num_restarts": 0, "timeout": 86_400_000}


@embedded_provider
class DWaveSystemProvider(_OceanSampler):
    """A dwave-system sampler (``DWaveSampler`` behind ``EmbeddingComposite``) as a Φ sampler
    provider (name ``dwave``), for a machine configured for D-Wave's cloud service
    (``dwave config create`` or ``DWAVE_API_TOKEN``). Configuration: ``solver`` (a solver name
    or feature filter, recorded) and ``annealing_time`` (µs). A QPU's reads are not
    reproducible: a trace of such a run replays by injection (``xdv replay --inject``), not by
    re-execution. Not tested here (it needs credentials)."""

    provider_id = "dwave"
    distribution = "dwave-system"
    library = "dwave.system"
    parameters: Mapping[str, _Spec] = {"annealing_time": _Spec("float", 0.5, 2000.0)}

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        identity: ProviderIdentity | None = None,
        key_store: KeyStore | None = None,
    ) -> None:
        config = dict(config or {})
        solver = config.pop("solver", None)
        if solver is not None and not isinstance(solver, str | dict):
            raise params_error(
                "solver must be a name or a feature filter", f"provider {self.provider_id}"
            )
        self.solver = solver
        super().__init__(config, identity=identity, key_store=key_store)

    def configuration(self) -> dict[str, Any]:
        return {
            "provider": self.provider_id,
            "library": {self.distribution: self.version},
            "solver": self.solver,
            "config": dict(self.config),
        }

    def declaration(self) -> dict[str, Any]:
        return {
            "provider": self.provider_id,
            "transforms": sorted(self.transforms),
            "problems": ["ising", "qubo", "bqm"],
            "parameters": sorted(self.parameters),
            "reads_max": READS_MAX,
            "readout": ["reads", "energies"],
        }

    def sample(
        self, problem: IsingProblem, reads: int, seed: int, params: Mapping[str, Any]
    ) -> SampleBatch:  # pragma: no cover - needs a configured D-Wave account
        from dwave.system import DWaveSampler, EmbeddingComposite

        arguments = {**self.config, **self.check_params(params)}
        try:
            sampler = EmbeddingComposite(DWaveSampler(solver=self.solver))
            sampleset = sampler.sample(_bqm(problem), num_reads=reads, **arguments)
        except Exception as error:
            raise XdvError(
                f"the D-Wave system sampler failed: {type(error).__name__}: {error}",
                code=ErrorCode.PHI_PROVIDER_UNAVAILABLE,
                where=f"provider {self.provider_id}",
            ) from None
        return _batch(sampleset, problem.n, {**arguments, "solver": str(self.solver)})


SamplerFactory = Callable[[Mapping[str, Any], KeyStore | None], PhiSamplerProvider]

SHIPPED_SAMPLERS: dict[str, SamplerFactory] = {
    "sa": SimulatedAnnealingProvider.from_config,
    "tabu": TabuProvider.from_config,
    "dwave": DWaveSystemProvider.from_config,
}
"""The shipped sampler providers by name (also listed as entry points of the group)."""


# -- resolving a provider name ------------------------------------------------------------------


def sampler_provider(
    name: str, entry: Mapping[str, Any], key_store: KeyStore | None = None
) -> PhiSamplerProvider:
    """The sampler provider a manager description's ``providers[name]`` entry describes. The
    entry may hold ``config``: a shipped adapter's configuration, or a plug-in's (which then
    replaces the configuration file's). Any name but a shipped adapter's is a plug-in of the
    group ``xdv.phi_providers`` built by XDV's plug-in loader; in a trace its entry also holds
    the loader's ``plugin`` record, which a replay rebuilds it from. PLUGIN_* errors come from
    the loader; PHI_PROVIDER_INVALID if the provider does not answer ``sample``."""
    if not isinstance(entry, Mapping):
        raise _invalid(f"the provider's entry must be a mapping, got {safe_repr(entry)}", name)
    if name in BUILT_IN:
        raise _invalid(f"{name!r} is built into the Φ manager, not a sampler provider", name)
    unknown = sorted(set(entry) - {"config", "plugin"})
    if unknown:
        raise _invalid(f"a provider's entry holds 'config' (and 'plugin'), not {unknown}", name)
    config = entry.get("config")
    if config is not None and not isinstance(config, Mapping):
        raise _invalid("a provider's config must be a mapping", name)
    shipped = SHIPPED_SAMPLERS.get(name)
    provider: Any
    if shipped is not None:
        provider = shipped(dict(config or {}), key_store)
    elif isinstance(entry.get("plugin"), Mapping) and config is None:
        # A replay: the plug-in the trace names, with this machine's configuration.
        provider = provider_from_record(entry["plugin"], interface=PhiSamplerProvider)
    else:
        provider = load_plugin(
            PLUGIN_GROUPS["phi"],
            name,
            interface=PhiSamplerProvider,
            config=None if config is None else dict(config),
        )
    if not isinstance(provider, PhiSamplerProvider) or "sample" not in provider.transforms:
        raise _invalid(
            f"{name!r} built {type(provider).__name__}, which is not a Φ sampler provider "
            "(provider_id, identity, measurement(), declaration(), configuration(), "
            "check_params(), sample() and the 'sample' transform)",
            name,
        )
    return provider


def _invalid(message: str, name: str) -> XdvError:
    return XdvError(message, code=ErrorCode.PHI_PROVIDER_INVALID, where=f"Φ provider {name}")
