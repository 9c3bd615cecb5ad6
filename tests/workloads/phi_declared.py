"""The Φ workload of ``phi_job.py``, declaring its manager in the short form."""

from tests.workloads.phi_job import annealer, main, solver

XDV_DOMAINS = {"Φ": {"manager": "phi"}}

__all__ = ["XDV_DOMAINS", "annealer", "main", "solver"]
