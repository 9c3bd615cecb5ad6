"""A third-party Φ sampler provider shipped as a plug-in (test fixture).

The tests install it as a real distribution (``acme-phi``, a ``*.dist-info`` folder with its
``entry_points.txt`` on ``sys.path``), the way ``pip install`` would, and XDV finds it through
the ``xdv.phi_providers`` entry-point group. It uses only XDV's public names, as a provider from
another package must: each read is a greedy single-flip descent from a random configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xdv.domains.phi import IsingProblem, SampleBatch
from xdv.errors import ErrorCode, XdvError
from xdv.security import ProviderIdentity, measure_provider


class AcmeDescent:
    """Greedy descent from random starts, ``sweeps`` passes at most per read."""

    transforms = frozenset({"sample"})

    def __init__(self, provider_id: str, config: Mapping[str, Any]) -> None:
        self.provider_id = provider_id
        self.sweeps = int(config.get("sweeps", 50))
        self._identity: ProviderIdentity | None = None

    @property
    def identity(self) -> ProviderIdentity:
        if self._identity is None:
            self._identity = ProviderIdentity.from_store(self.provider_id)
        return self._identity

    def configuration(self) -> dict[str, Any]:
        return {"provider": self.provider_id, "sweeps": self.sweeps}

    def measurement(self) -> str:
        return measure_provider([Path(__file__)], self.configuration())

    def declaration(self) -> dict[str, Any]:
        return {"provider": self.provider_id, "transforms": ["sample"], "method": "descent"}

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if set(params) - {"sweeps"}:
            raise XdvError(
                f"acme takes only 'sweeps', not {sorted(params)}",
                code=ErrorCode.PHI_SAMPLER_PARAMS_INVALID,
            )
        return dict(params)

    def sample(
        self, problem: IsingProblem, reads: int, seed: int, params: Mapping[str, Any]
    ) -> SampleBatch:
        sweeps = int(self.check_params(params).get("sweeps", self.sweeps))
        rng = np.random.default_rng(seed)
        coupling = np.zeros((problem.n, problem.n))
        coupling[problem.rows, problem.cols] = problem.weights
        coupling += coupling.T
        spins = rng.choice(np.array([-1, 1], dtype=np.int8), size=(reads, problem.n))
        for _ in range(sweeps):
            changed = False
            for i in range(problem.n):
                field = spins @ coupling[i] + problem.h[i]
                flip = spins[:, i] * field > 0  # flipping lowers the energy
                spins[flip, i] = -spins[flip, i]
                changed = changed or bool(flip.any())
            if not changed:
                break
        return SampleBatch(spins, problem.energy(spins), {"sweeps": sweeps})


def factory(config: Mapping[str, Any]) -> AcmeDescent:
    """The plug-in factory: ``factory(config) -> provider``."""
    return AcmeDescent("acmephi", config)


def not_a_sampler(config: Mapping[str, Any]) -> object:
    """A factory whose provider answers no ``sample`` (for the error tests)."""

    class Quiet(AcmeDescent):
        transforms = frozenset({"anneal"})

    return Quiet("acmequiet", config)
