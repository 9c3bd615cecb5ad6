"""The Φ (phase-native) domain: manager, providers (built in, the D-Wave sampler adapters and
plug-ins), witnesses, coherence windows.

Importing this package registers the ``"phi"`` manager factory, so a replay rebuilds the Φ
manager from the description recorded in the trace.
"""

from xdv.domains import register_manager_factory
from xdv.domains.phi._exact import ExactAdmissibilityProvider
from xdv.domains.phi._manager import (
    CoherenceWindow,
    PhiDomainManager,
    PhiError,
    PhiStabilityReport,
    PhiTransformResult,
)
from xdv.domains.phi._oscillator import (
    AnnealSchedule,
    OscillatorCalibration,
    PhaseOscillatorProvider,
)
from xdv.domains.phi._problems import (
    ConstraintProblem,
    IsingProblem,
    PhiProblemError,
    ising_from_bqm,
    parse_gset,
    parse_problem_document,
)
from xdv.domains.phi._provider import PhiProvider
from xdv.domains.phi._samplers import (
    SHIPPED_SAMPLERS,
    DWaveSystemProvider,
    PhiSamplerProvider,
    SampleBatch,
    SimulatedAnnealingProvider,
    TabuProvider,
)
from xdv.domains.phi._witness import (
    DigestSigner,
    HybridSigner,
    WitnessError,
    WitnessSigner,
    payload_digest,
    sign_witness,
    verify_witness,
)

__all__ = [
    "SHIPPED_SAMPLERS",
    "AnnealSchedule",
    "CoherenceWindow",
    "ConstraintProblem",
    "DWaveSystemProvider",
    "DigestSigner",
    "ExactAdmissibilityProvider",
    "HybridSigner",
    "IsingProblem",
    "OscillatorCalibration",
    "PhaseOscillatorProvider",
    "PhiDomainManager",
    "PhiError",
    "PhiProblemError",
    "PhiProvider",
    "PhiSamplerProvider",
    "PhiStabilityReport",
    "PhiTransformResult",
    "SampleBatch",
    "SimulatedAnnealingProvider",
    "TabuProvider",
    "WitnessError",
    "WitnessSigner",
    "ising_from_bqm",
    "parse_gset",
    "parse_problem_document",
    "payload_digest",
    "sign_witness",
    "verify_witness",
]

register_manager_factory("phi", PhiDomainManager.from_description)
