"""XDV for D-Wave Ocean users: :class:`XdvSampler`, a ``dimod.Sampler`` that runs every call as
a Φ job on the XDV kernel.

Each ``sample`` call is one run, the same path ``xdv phirun`` takes: the model becomes an Ising
problem in the Φ dictionary form, a process reserves a coherence-window contract on the chosen
provider, samples under its capability, the Φ manager verifies every read classically, signs a
witness for the best one and reports the envelope's stability, and the run's trace (written to
``trace=`` when given) replays bit for bit. What comes back is an ordinary
``dimod.SampleSet``: the model's own variable labels and vartype (0/1 for BINARY, ±1 for SPIN),
the energies dimod computes for the model, one row per read, and ``info`` with the witness, the
stability report and the run's facts.

How reads map to the provider (also in ``docs/ocean.md``): one read is one independent
trajectory, and no read is ever merged with another, dropped or repeated. On the phase provider
a read is one replica of the oscillator machine (reads beyond the device's 256 replicas run as
further anneals of the same envelope); on ``sa`` and ``tabu`` a read is one of the sampler's
reads; the ``exact`` provider proves one optimum, so it answers one read whatever ``num_reads``
asks. Rows keep the provider's read order (``num_occurrences`` is 1 on every row); call
``SampleSet.aggregate()`` to merge equal samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import dimod
import numpy as np

from xdv.errors import ErrorCode, XdvError, invariant
from xdv.runtime import RunRequest, phi_problem_job, phi_report, run

__all__ = ["XdvSampler"]

_PROVIDERS_BUILT_IN = ("phase", "exact")


class XdvSampler(dimod.Sampler):  # type: ignore[misc,name-defined]
    """A dimod sampler backed by XDV's Φ domain.

    ``provider`` (default ``"phase"``) is the Φ provider every call uses unless the call names
    another: ``"phase"`` (XDV's phase-oscillator machine), ``"exact"`` (CP-SAT, one proven
    optimum), ``"sa"`` and ``"tabu"`` (dwave-samplers, the ``dwave`` extra), ``"dwave"`` (a
    configured D-Wave system) or a plug-in of the entry-point group ``xdv.phi_providers``;
    ``config`` is a sampler provider's configuration (recorded in the trace), ``params`` the
    provider parameters every call uses unless it gives its own. ``trace`` and
    ``witness_dir`` say where each run's trace and witness go (the same file is overwritten by
    each call; by default no trace is written and witnesses go to ``$XDV_HOME/witnesses``).
    """

    def __init__(
        self,
        provider: str = "phase",
        *,
        config: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        trace: str | Path | None = None,
        witness_dir: str | Path | None = None,
        key_store: str | Path | None = None,
    ) -> None:
        self.provider = provider
        self.config = dict(config or {})
        self.params = dict(params or {})
        self.trace = None if trace is None else Path(trace)
        self.witness_dir = None if witness_dir is None else Path(witness_dir)
        self.key_store = None if key_store is None else Path(key_store)

    @property
    def parameters(self) -> dict[str, list[str]]:
        """The keyword arguments ``sample`` takes beside the model (dimod's convention)."""
        return {"num_reads": [], "seed": [], "provider": ["providers"]}

    @property
    def properties(self) -> dict[str, Any]:
        """What the sampler offers: the built-in and shipped Φ providers, and the group plug-ins
        register under."""
        return {
            "providers": ["phase", "exact", "sa", "tabu", "dwave"],
            "plugin_group": "xdv.phi_providers",
            "default_provider": self.provider,
        }

    def sample(
        self,
        bqm: dimod.BinaryQuadraticModel,
        num_reads: int = 10,
        seed: int | None = 0,
        provider: str | None = None,
        **params: Any,
    ) -> dimod.SampleSet:
        """Sample ``bqm``: ``num_reads`` reads (see the module docstring for how they map to the
        provider), deterministic for a given ``seed`` (the run's seed; default 0), on
        ``provider`` (default: the sampler's). Further keyword arguments are the provider's own
        parameters: the anneal schedule on ``phase`` (``steps``, ``budget_ms``, ``coupling``,
        ``lock_max``, ``temperature``, ``polish``), ``work_limit`` on ``exact``, the sampler's
        parameters on ``sa`` and ``tabu`` (``num_sweeps``, ``beta_range``, ``num_restarts``,
        …). ``info`` holds ``witness`` (the signed witness's digest, file and attestation),
        ``stability`` (the Φ stability report), ``provider``, ``seed``, ``problem`` (its
        size and hash), ``sampler`` (the provider's facts), ``trace`` and ``head_hash``.

        Refusals are XDV's typed errors (``xdv.errors.XdvError``): PHI_SAMPLER_PARAMS_INVALID
        for a bad ``num_reads`` or parameter, PHI_PROVIDER_UNKNOWN for a provider no one
        offers, PHI_ERR_PROBLEM_INVALID for a model XDV cannot take."""
        from xdv.domains.phi import ising_from_bqm

        name = self.provider if provider is None else provider
        seed = 0 if seed is None else seed  # XDV runs are seeded: None is the default seed
        if type(num_reads) is not int or num_reads < 1:
            raise XdvError(
                f"num_reads must be a positive integer, got {num_reads!r}",
                code=ErrorCode.PHI_SAMPLER_PARAMS_INVALID,
                where="XdvSampler.sample",
            )
        if type(seed) is not int or not 0 <= seed < 2**63:
            raise XdvError(
                f"seed must be an integer in [0, 2**63), got {seed!r}",
                code=ErrorCode.INVALID_ARGUMENT,
                where="XdvSampler.sample",
            )
        labels = list(bqm.variables)
        if not labels:
            # Nothing to sample: no Φ problem has zero spins, so no run is made.
            empty = dimod.SampleSet.from_samples_bqm(  # type: ignore[no-untyped-call]
                (np.empty((0, 0), dtype=np.int8), []), bqm, info={"provider": name, "run": None}
            )
            return cast(dimod.SampleSet, empty)
        problem = ising_from_bqm(bqm)
        params = {**self.params, **params}
        operation = None
        options: dict[str, Any]
        if name == "exact":
            options = dict(params)
        elif name == "phase":
            operation = "sample"
            options = {"reads": num_reads, "params": dict(params)}
        else:
            options = {"reads": num_reads, "params": dict(params)}
        workload = phi_problem_job(
            problem,
            name,
            options,
            operation=operation,
            config=self.config if name not in _PROVIDERS_BUILT_IN else None,
            where="bqm",
        )
        outcome = run(
            RunRequest(
                workload,
                seed=seed,
                trace=self.trace,
                witness_dir=self.witness_dir,
                key_store=self.key_store,
                handle_signals=False,
            )
        )
        report = phi_report(outcome, source="bqm", problem_format="dimod")
        if "reads" in report:
            spins = np.asarray(report["reads"]["spins"], dtype=np.int8)
        else:  # the exact provider: one proven optimum
            spins = np.asarray([_outcome_spins(outcome)], dtype=np.int8)
        invariant(spins.shape[1] == len(labels), "one column per variable of the model")
        samples = spins if bqm.vartype is dimod.SPIN else ((spins + 1) // 2).astype(np.int8)
        info = {
            "provider": name,
            "seed": seed,
            "problem": report["problem"],
            "witness": report["witness"],
            "stability": report["stability"],
            "sampler": report.get("sampler", report.get("solver", {})),
            "trace": report["trace"],
            "head_hash": report["head_hash"],
        }
        if "status" in report:
            info["status"] = report["status"]
        sampleset = dimod.SampleSet.from_samples_bqm(  # type: ignore[no-untyped-call]
            (samples, labels), bqm, info=info
        )
        # The kernel verified its energies on the Ising form; dimod's agree with them.
        xdv_energies = report["reads"]["energies"] if "reads" in report else [report["energy"]]
        invariant(
            np.allclose(sampleset.record.energy, xdv_energies, rtol=1e-9, atol=1e-6),
            "dimod's energies match the kernel's verified energies",
        )
        return cast(dimod.SampleSet, sampleset)


def _outcome_spins(outcome: Any) -> list[int]:
    """The best configuration of a finished Φ job (the job process's exit value)."""
    value = next(iter(outcome.result.exits.values())).value
    spins: list[int] = list(value["spins"])
    return spins
