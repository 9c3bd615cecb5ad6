"""The phase provider: a simulated network of coupled oscillators (an oscillator machine).

Each envelope holds ``replicas × n`` oscillator phases (the *phase structure*). The phases never
leave this module: transforms change them, and readouts return only binarized spins, energies and
summary metrics. An anneal runs one of two dynamics (both in ``docs/phi-domain.md``):

* discrete simulated bifurcation (``dynamics="sb"``, the default): each oscillator's in-phase
  and quadrature amplitudes (x, y) under a rising pump, inelastic walls at |x| = 1 and the
  coupling force of the signs of x, run by compiled kernels (``_kernels``) that keep every
  replica's local fields up to date incrementally; the phase is ``atan2(y, x)`` afterwards;
* the phase model (``dynamics="phase"``, and the ``couple`` and ``lock`` transforms), which
  integrates, by Euler–Maruyama with step ``dt``, the stochastic phase equation

    dφ_i = [ω_i + κ·(Σ_j J_ij sin(φ_i − φ_j) + h_i sin φ_i) − λ(t) sin 2φ_i] dt + √(2·D(t)·dt) ξ_i

  the gradient flow of ``V = κ·(Σ_{i<j} J_ij cos(φ_i − φ_j) + Σ_i h_i cos φ_i) −
  (λ/2) Σ_i cos 2φ_i`` plus detuning and noise; the second-harmonic injection term ``λ`` pulls
  every phase to 0 or π (binarization).

With ``s_i = sign(cos φ_i)`` both lower the Ising energy of ``s``. ``ω_i`` is the calibrated
detuning (drift), ``D(t)`` the calibrated phase diffusion plus, during an anneal, the schedule's
temperature. All randomness comes from a numpy ``Generator`` seeded by the kernel's
per-invocation seed (the kernels' own streams are seeded from it), so a transform is a
deterministic function of its inputs. A readout's optional polish (steepest single-flip descent,
then tabu search) refines the binarized spins classically.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse

from xdv.domains.phi._problems import IsingProblem
from xdv.errors import ErrorCode, XdvError
from xdv.security import (
    KeyStore,
    ProviderIdentity,
    StoredIdentity,
    embedded_provider,
    measure_provider,
)

__all__ = ["AnnealSchedule", "OscillatorCalibration", "PhaseOscillatorProvider"]

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[int, int], None]

_RANDOM_MARGIN = 2 / math.pi  # mean |cos φ| of uniformly random phases
_SETTLE = 0.1  # the last tenth of an anneal holds a strong lock at zero temperature
_LOCK_FINAL = 2.0
_DYNAMICS = ("sb", "phase")
_SB_DT = 0.5  # the bifurcation model's step (dimensionless); device time per step is dt
_SB_START = 0.1  # initial amplitudes are uniform in ±_SB_START
_CHUNKS = 100  # progress reports per anneal


@dataclass(frozen=True, slots=True)
class OscillatorCalibration:
    """The modelled device: noise, drift and size limits (recorded in the manager description).

    ``diffusion`` is the phase-diffusion constant D (rad² per unit time); ``detuning`` the
    standard deviation of the oscillators' fixed frequency offsets ω_i (rad per unit time),
    drawn once per envelope from ``calibration_seed``; ``dt`` the integration step;
    ``steps_per_ms`` converts a budget in modelled device milliseconds to integration steps.
    """

    diffusion: float = 1e-4
    detuning: float = 1e-3
    dt: float = 0.1
    steps_per_ms: int = 1000
    oscillators_max: int = 20_000
    replicas_max: int = 256
    steps_max: int = 1_000_000
    calibration_seed: int = 0

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AnnealSchedule:
    """An anneal: ``steps`` integration steps over ``replicas`` independent copies.

    ``dynamics`` picks the model (``docs/phi-domain.md`` has both):

    * ``"sb"`` (the default), discrete simulated bifurcation: each oscillator's in-phase and
      quadrature amplitudes (x, y) evolve under a pump that ramps linearly from 0 to 1 over the
      steps, an inelastic wall at |x| = 1 and the coupling force
      ``−gain·(Σ_j J_ij sgn x_j + h_i)``; the gain is ``coupling`` (default 1) times
      ``0.5/(√n·σ_J)``, σ_J the RMS coupling over all ordered pairs. ``temperature`` (default 0)
      adds annealed momentum noise falling as ``(1 − t)²``;
    * ``"phase"``, the Kuramoto-type phase model with second-harmonic injection: over the
      first 90 % of the steps the injection ramps linearly from 0 to ``lock_max`` and the
      temperature (default 1) falls as ``temperature·(1 − t/0.9)²``; the last 10 % settle at
      zero temperature under a strong lock (``max(lock_max, 2)``). Its gain κ is ``coupling``
      (default 1.6) over the largest RMS field random phases would produce,
      ``max_i √((Σ_j J_ij² + h_i²)/2)``.

    With ``polish`` the readout descends every replica to the nearest single-flip local minimum
    of the Ising energy; ``tabu`` more iterations of tabu search then continue from each
    replica (a classical refinement of the binarized spins; the energy before it is reported
    too).
    """

    steps: int = 1000
    replicas: int = 16
    coupling: float | None = None
    lock_max: float = 0.5
    temperature: float | None = None
    polish: bool = True
    dynamics: str = "sb"
    tabu: int = 0

    @classmethod
    def from_terms(
        cls, terms: dict[str, Any], calibration: OscillatorCalibration
    ) -> AnnealSchedule:
        """Build a schedule from a mapping, with ``budget_ms`` as an alternative to ``steps``."""
        allowed = {
            "steps",
            "replicas",
            "coupling",
            "lock_max",
            "temperature",
            "polish",
            "dynamics",
            "tabu",
            "budget_ms",
        }
        unknown = sorted(set(terms) - allowed)
        if unknown:
            raise XdvError(
                f"unknown schedule keys {unknown} (allowed: {sorted(allowed)})",
                code=ErrorCode.PHI_ERR_PROBLEM_INVALID,
                where="anneal schedule",
            )
        values: dict[str, Any] = {k: v for k, v in terms.items() if k != "budget_ms"}
        if "budget_ms" in terms:
            budget = terms["budget_ms"]
            if type(budget) not in (int, float) or not 0 < budget <= 1e6:
                raise XdvError(
                    f"budget_ms must be a positive number, got {budget!r}",
                    code=ErrorCode.PHI_ERR_PROBLEM_INVALID,
                    where="anneal schedule",
                )
            values.setdefault("steps", max(1, int(budget * calibration.steps_per_ms)))
        schedule = cls(**values)
        schedule.check(calibration)
        return schedule

    def check(self, calibration: OscillatorCalibration) -> None:
        """Raise PHI_ERR_PROBLEM_INVALID if the schedule is out of the device's limits."""
        problems = []
        if type(self.steps) is not int or not 1 <= self.steps <= calibration.steps_max:
            problems.append(f"steps must be in [1, {calibration.steps_max}]")
        if type(self.replicas) is not int or not 1 <= self.replicas <= calibration.replicas_max:
            problems.append(f"replicas must be in [1, {calibration.replicas_max}]")
        for name in ("coupling", "lock_max", "temperature"):
            value = getattr(self, name)
            if value is None and name != "lock_max":
                continue
            if type(value) not in (int, float) or not 0 <= value <= 100:
                problems.append(f"{name} must be a number in [0, 100]")
        if type(self.polish) is not bool:
            problems.append("polish must be a boolean")
        if self.dynamics not in _DYNAMICS:
            problems.append(f"dynamics must be one of {list(_DYNAMICS)}")
        if type(self.tabu) is not int or not 0 <= self.tabu <= calibration.steps_max:
            problems.append(f"tabu must be an integer in [0, {calibration.steps_max}]")
        if problems:
            raise XdvError(
                "; ".join(problems),
                code=ErrorCode.PHI_ERR_PROBLEM_INVALID,
                where="anneal schedule",
            )

    @property
    def gain(self) -> float:
        """The coupling factor, the dynamics' default where none was given."""
        if self.coupling is not None:
            return float(self.coupling)
        return 1.0 if self.dynamics == "sb" else 1.6

    @property
    def heat(self) -> float:
        """The starting temperature, the dynamics' default where none was given."""
        if self.temperature is not None:
            return float(self.temperature)
        return 0.0 if self.dynamics == "sb" else 1.0

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


class _Structure:
    """One envelope's phase structure and bookkeeping. Never leaves the provider."""

    __slots__ = ("_matrix", "binarized", "elapsed", "injected", "omega", "phases", "problem")

    def __init__(self, phases: Any, omega: FloatArray, problem: IsingProblem | None) -> None:
        self.phases = phases
        self.omega = omega
        self.problem = problem
        self.elapsed = 0.0
        self.injected = 0.0
        self.binarized = False
        self._matrix: scipy.sparse.csr_matrix | None = None

    def matrix(self) -> scipy.sparse.csr_matrix:
        """The symmetric coupling matrix J (each coupling in both rows), built once."""
        if self._matrix is None:
            problem = self.problem
            if problem is None:  # pragma: no cover - load() always sets it
                raise XdvError("no problem loaded", code=ErrorCode.PHI_ERR_ENVELOPE_INVALID)
            self._matrix = _symmetric(problem)
        return self._matrix

    def __reduce__(self) -> Any:
        raise XdvError(
            "a Φ phase structure cannot be copied or serialized",
            code=ErrorCode.PHI_ERR_RAW_PHASE_ACCESS,
            where="phase provider",
        )


@embedded_provider
class PhaseOscillatorProvider(StoredIdentity):
    """A coupled phase-oscillator machine (see the module docstring for the model)."""

    provider_id = "phase-oscillator"
    transforms = frozenset({"load", "shift", "couple", "lock", "anneal", "readout"})

    def __init__(
        self,
        calibration: OscillatorCalibration | None = None,
        *,
        identity: ProviderIdentity | None = None,
        key_store: KeyStore | None = None,
    ) -> None:
        self.calibration = calibration or OscillatorCalibration()
        self._identity = identity
        self._key_store = key_store
        self._structures: dict[int, _Structure] = {}
        self.progress: Progress | None = None

    # -- the provider model (attestation) -------------------------------------------------

    def configuration(self) -> dict[str, Any]:
        return {"provider": self.provider_id, "calibration": self.calibration.to_record()}

    def measurement(self) -> str:
        here = Path(__file__)
        return measure_provider(
            [here, here.with_name("_kernels.py"), here.with_name("_problems.py")],
            self.configuration(),
        )

    def declaration(self) -> dict[str, Any]:
        calibration = self.calibration
        return {
            "provider": self.provider_id,
            "transforms": sorted(self.transforms),
            "problems": ["ising", "qubo", "bqm"],
            "oscillators_max": calibration.oscillators_max,
            "replicas_max": calibration.replicas_max,
            "steps_max": calibration.steps_max,
            "diffusion": calibration.diffusion,
            "detuning": calibration.detuning,
            "readout": ["spins", "energy", "order_parameter", "stability"],
        }

    def __reduce__(self) -> Any:
        raise XdvError(
            "a Φ provider holding phase structures cannot be copied or serialized",
            code=ErrorCode.PHI_ERR_RAW_PHASE_ACCESS,
            where="phase provider",
        )

    # -- envelopes -------------------------------------------------------------------------

    def holds(self, envelope: int) -> bool:
        """Whether a phase structure exists for ``envelope``."""
        return envelope in self._structures

    def discard(self, envelope: int) -> None:
        """Destroy an envelope's phase structure (invalidation or release)."""
        self._structures.pop(envelope, None)

    def load(
        self, envelope: int, problem: IsingProblem, replicas: int, rng: np.random.Generator
    ) -> None:
        """Create the phase structure for ``problem``: random phases, calibrated detuning."""
        if problem.n > self.calibration.oscillators_max:
            raise XdvError(
                f"the problem needs {problem.n} oscillators; the device has "
                f"{self.calibration.oscillators_max}",
                code=ErrorCode.RESOURCE_EXHAUSTED,
                where="phase provider",
            )
        if not 1 <= replicas <= self.calibration.replicas_max:
            raise XdvError(
                f"replicas must be in [1, {self.calibration.replicas_max}]",
                code=ErrorCode.PHI_ERR_PROBLEM_INVALID,
                where="phase provider",
            )
        # Oscillator-major layout (n, replicas), single precision: the sparse product and the
        # trigonometry of every step run on contiguous float32 blocks.
        phases = rng.uniform(-math.pi, math.pi, size=(problem.n, replicas)).astype(np.float32)
        detuning = np.random.default_rng([self.calibration.calibration_seed, envelope])
        omega = detuning.normal(0.0, self.calibration.detuning, size=(problem.n, 1))
        self._structures[envelope] = _Structure(phases, omega, problem)

    def _structure(self, envelope: int) -> _Structure:
        structure = self._structures.get(envelope)
        if structure is None:
            raise XdvError(
                f"envelope {envelope} holds no phase structure (load a problem first)",
                code=ErrorCode.PHI_ERR_ENVELOPE_INVALID,
                where="phase provider",
            )
        return structure

    def shift(self, envelope: int, angle: float, indices: list[int] | None) -> None:
        """Phase shift: add ``angle`` to the selected oscillators (all when ``indices`` is None)."""
        structure = self._structure(envelope)
        if indices is None:
            structure.phases += angle
        else:
            if indices and max(indices) >= structure.phases.shape[0]:
                raise XdvError(
                    f"oscillator {max(indices)} does not exist (the envelope has "
                    f"{structure.phases.shape[0]})",
                    code=ErrorCode.PHI_ERR_PROBLEM_INVALID,
                    where="phase provider",
                )
            structure.phases[indices, :] += angle
        structure.binarized = False

    def couple(self, envelope: int, steps: int, strength: float, rng: np.random.Generator) -> None:
        """Coupling evolution: Kuramoto-type interference through J (no injection locking)."""
        structure = self._structure(envelope)
        self._integrate(structure, steps, strength, lambda _t: 0.0, lambda _t: 0.0, rng)
        structure.binarized = False

    def lock(self, envelope: int, steps: int, strength: float, rng: np.random.Generator) -> None:
        """Second-harmonic injection locking at ``strength`` with coupling kept on."""
        structure = self._structure(envelope)
        self._integrate(structure, steps, 1.0, lambda _t: strength, lambda _t: 0.0, rng)
        structure.binarized = True

    def anneal(
        self,
        envelope: int,
        problem: IsingProblem,
        schedule: AnnealSchedule,
        rng: np.random.Generator,
    ) -> None:
        """Anneal ``problem`` from fresh random phases under ``schedule``."""
        self.load(envelope, problem, schedule.replicas, rng)
        structure = self._structures[envelope]
        if schedule.dynamics == "sb":
            self._bifurcate(structure, schedule, rng)
            structure.binarized = True
            return
        lock_max, temperature, settle = schedule.lock_max, schedule.heat, _SETTLE
        lock_final = max(lock_max, _LOCK_FINAL)
        self._integrate(
            structure,
            schedule.steps,
            schedule.gain,
            lambda t: lock_max * t / (1 - settle) if t < 1 - settle else lock_final,
            lambda t: temperature * (1.0 - t / (1 - settle)) ** 2 if t < 1 - settle else 0.0,
            rng,
        )
        structure.binarized = True

    def _bifurcate(
        self, structure: _Structure, schedule: AnnealSchedule, rng: np.random.Generator
    ) -> None:
        """Discrete simulated bifurcation of every replica (compiled kernel, in chunks so that
        progress can be reported between them). The oscillator's phase is the angle of its
        amplitude pair, ``φ = atan2(y, x)``, so the readout's ``sign(cos φ)`` is ``sign(x)``."""
        from xdv.domains.phi import _kernels

        problem = structure.problem
        if problem is None:  # pragma: no cover - load() always sets it
            raise XdvError("no problem loaded", code=ErrorCode.PHI_ERR_ENVELOPE_INVALID)
        n, replicas, steps = problem.n, schedule.replicas, schedule.steps
        matrix = structure.matrix()
        indptr, indices, data = _csr_arrays(matrix)
        h = np.ascontiguousarray(problem.h, dtype=np.float64)
        pairs = n * (n - 1)
        sigma = math.sqrt((float(np.dot(data, data)) + float(np.dot(h, h))) / max(pairs, 1))
        gain = schedule.gain * 0.5 / (math.sqrt(n) * sigma) if sigma > 0 else 0.0
        x = rng.uniform(-_SB_START, _SB_START, size=(replicas, n))
        y = rng.uniform(-_SB_START, _SB_START, size=(replicas, n))
        spins = np.where(x >= 0, 1, -1).astype(np.int8)
        fields = _kernels.local_fields(indptr, indices, data, h, spins)
        states = rng.integers(1, 2**63, size=replicas, dtype=np.uint64)
        omega = np.ascontiguousarray(structure.omega.ravel(), dtype=np.float64)
        calibration = self.calibration
        heat = schedule.heat
        chunk = max(1, -(-steps // _CHUNKS))
        for start in range(0, steps, chunk):
            stop = min(steps, start + chunk)
            t = start / steps
            diffusion = calibration.diffusion + heat * (1.0 - t) ** 2
            # A uniform kick on [-a, a] has variance a²/3: a = √3·√(2·D·Δt).
            noise = math.sqrt(3.0 * 2.0 * diffusion * calibration.dt) / _SB_DT
            _kernels.sb_steps(
                indptr,
                indices,
                data,
                omega,
                x,
                y,
                spins,
                fields,
                states,
                start,
                stop,
                steps,
                _SB_DT,
                gain,
                noise,
            )
            if self.progress is not None:
                self.progress(stop, steps)
        structure.phases = np.ascontiguousarray(np.arctan2(y, x).T, dtype=np.float32)
        structure.elapsed += steps * calibration.dt

    def inject_instability(self, envelope: int, variance: float, rng: np.random.Generator) -> None:
        """Fault hook: a phase-diffusion burst of ``variance`` rad² on every oscillator."""
        structure = self._structures.get(envelope)
        if structure is None:
            return
        burst = rng.normal(0.0, math.sqrt(variance), size=structure.phases.shape)
        structure.phases += burst.astype(np.float32)
        structure.injected += variance

    def _integrate(
        self,
        structure: _Structure,
        steps: int,
        coupling: float,
        lock: Callable[[float], float],
        temperature: Callable[[float], float],
        rng: np.random.Generator,
    ) -> None:
        problem = structure.problem
        if problem is None:  # pragma: no cover - load() always sets it
            raise XdvError("no problem loaded", code=ErrorCode.PHI_ERR_ENVELOPE_INVALID)
        matrix = structure.matrix()
        # Gain: ``coupling`` over the largest RMS field that random phases would produce.
        squares = np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel() + problem.h**2
        gain = coupling / max(math.sqrt(float(squares.max()) / 2.0), 1e-12)
        h = (problem.h * gain).astype(np.float32)[:, None]
        scaled = (matrix * gain).astype(np.float32).tocsr()  # symmetric
        calibration = self.calibration
        dt = np.float32(calibration.dt)
        phases = structure.phases
        omega_dt = (structure.omega * calibration.dt).astype(np.float32)
        report_every = max(1, steps // 100)
        replicas = phases.shape[1]
        trig = np.empty((phases.shape[0], 2 * replicas), dtype=np.float32)
        cos, sin = trig[:, :replicas], trig[:, replicas:]
        kick = np.empty_like(phases)
        root3 = math.sqrt(3.0)
        for step in range(steps):
            t = step / steps
            np.cos(phases, out=cos)
            np.sin(phases, out=sin)
            # Σ_j J_ij sin(φ_i − φ_j) = sin φ_i Σ_j J_ij cos φ_j − cos φ_i Σ_j J_ij sin φ_j
            fields = scaled @ trig
            drive = sin * (fields[:, :replicas] + h) - cos * fields[:, replicas:]
            strength = lock(t)
            if strength:
                drive -= np.float32(2.0 * strength) * sin * cos
            diffusion = calibration.diffusion + temperature(t)
            drive *= dt
            drive += omega_dt
            phases += drive
            if diffusion > 0:
                # Zero-mean, unit-variance increments (uniform on [-√3, √3]).
                rng.random(out=kick, dtype=np.float32)
                kick -= np.float32(0.5)
                kick *= np.float32(2.0 * root3 * math.sqrt(2.0 * diffusion * calibration.dt))
                phases += kick
            if self.progress is not None and (step + 1) % report_every == 0:
                self.progress(step + 1, steps)
        np.remainder(phases + np.float32(math.pi), np.float32(2 * math.pi), out=phases)
        phases -= np.float32(math.pi)
        structure.elapsed += steps * calibration.dt

    # -- structured observation (never phases) ---------------------------------------------

    def metrics(self, envelope: int) -> dict[str, float]:
        """Order parameter, binarization margin, noise index, drift and stability level.

        * order parameter r: mean over replicas of |⟨e^{iφ}⟩|;
        * binarization margin m: (⟨|cos φ|⟩ − 2/π)/(1 − 2/π), clipped to [0, 1] (0 for random
          phases, 1 when every oscillator sits on the 0/π axis);
        * noise index ν = 1 − exp(−σ²/2), σ² = 2·D·(time integrated) + injected variance: the
          share of phase coherence the device's noise has destroyed in this envelope;
        * drift: RMS calibrated detuning times the integrated time (rad);
        * stability level s = min(1 − ν, m) once binarized, else 1 − ν.
        """
        structure = self._structure(envelope)
        phases = structure.phases
        order = float(np.abs(np.exp(1j * phases.astype(np.float64)).mean(axis=0)).mean())
        margin = float(np.abs(np.cos(phases.astype(np.float64))).mean())
        margin = min(1.0, max(0.0, (margin - _RANDOM_MARGIN) / (1 - _RANDOM_MARGIN)))
        variance = 2.0 * self.calibration.diffusion * structure.elapsed + structure.injected
        noise = 1.0 - math.exp(-variance / 2.0)
        drift = float(np.sqrt(np.mean(structure.omega**2))) * structure.elapsed
        stability = min(1.0 - noise, margin) if structure.binarized else 1.0 - noise
        return {
            "order_parameter": round(order, 9),
            "binarization_margin": round(margin, 9),
            "noise_index": round(noise, 9),
            "drift": round(drift, 9),
            "stability": round(stability, 9),
        }

    def checksum(self, envelope: int) -> str:
        """Integrity checksum: truncated SHA-256 of the phase structure (not invertible)."""
        structure = self._structure(envelope)
        return hashlib.sha256(structure.phases.tobytes()).hexdigest()[:32]

    def readout(self, envelope: int, polish: bool, tabu: int = 0) -> dict[str, Any]:
        """Binarize every replica, optionally descend to a 1-flip local minimum and run ``tabu``
        iterations of tabu search from each, and return the best replica's spins with energies
        and the order parameter (never phases). The tabu search's random tenures come from the
        structure's checksum, so a readout is a function of the phase structure."""
        structure = self._structure(envelope)
        problem = structure.problem
        if problem is None:  # pragma: no cover
            raise XdvError("no problem loaded", code=ErrorCode.PHI_ERR_ENVELOPE_INVALID)
        spins = np.where(np.cos(structure.phases.T) >= 0, 1, -1).astype(np.int8)
        raw = problem.energy(spins)
        flips = 0
        if polish or tabu:
            from xdv.domains.phi import _kernels

            indptr, indices, data = _csr_arrays(structure.matrix())
            h = np.ascontiguousarray(problem.h, dtype=np.float64)
            spins = np.ascontiguousarray(spins)
            flips += int(_kernels.descend(indptr, indices, data, h, spins))
            if tabu:
                energies = problem.energy(spins)
                seed = int.from_bytes(bytes.fromhex(self.checksum(envelope))[:8], "little")
                states = np.random.default_rng(seed).integers(
                    1, 2**63, size=spins.shape[0], dtype=np.uint64
                )
                tenure = max(10, problem.n // 100)
                flips += int(
                    _kernels.tabu(indptr, indices, data, h, spins, energies, tabu, tenure, states)
                )
        energies = problem.energy(spins)
        best = int(np.argmin(energies))
        return {
            "spins": [int(x) for x in spins[best]],
            "energy": float(energies[best]),
            "energy_binarized": float(raw.min()),
            "energy_mean": float(energies.mean()),
            "replicas": int(spins.shape[0]),
            "polish_flips": flips,
        }

    def samples(self, envelope: int) -> npt.NDArray[np.int8]:
        """Every replica's binarized spins (replicas × n): the reads of a Φ ``sample`` (never
        phases; any classical polish is the caller's)."""
        structure = self._structure(envelope)
        return np.where(np.cos(structure.phases.T) >= 0, 1, -1).astype(np.int8)


def _symmetric(problem: IsingProblem) -> scipy.sparse.csr_matrix:
    """J as a symmetric CSR matrix (each coupling in both rows; duplicates summed)."""
    n = problem.n
    return scipy.sparse.coo_matrix(
        (
            np.concatenate([problem.weights, problem.weights]),
            (
                np.concatenate([problem.rows, problem.cols]),
                np.concatenate([problem.cols, problem.rows]),
            ),
        ),
        shape=(n, n),
    ).tocsr()


def _csr_arrays(matrix: scipy.sparse.csr_matrix) -> tuple[Any, Any, Any]:
    """The compressed-row arrays in the kernels' types (int64 offsets, float64 values)."""
    return (
        np.ascontiguousarray(matrix.indptr, dtype=np.int64),
        np.ascontiguousarray(matrix.indices, dtype=np.int64),
        np.ascontiguousarray(matrix.data, dtype=np.float64),
    )
