"""Deterministic replay: re-execute a recorded run, or inject its recorded domain outcomes."""

from xdv.replay._engine import ReplayMode, ReplayReport, recorded_outcomes, replay

__all__ = ["ReplayMode", "ReplayReport", "recorded_outcomes", "replay"]
