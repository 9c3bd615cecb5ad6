"""Deterministic fault injection.

A :class:`FaultPlan` names kernel sites (for example ``transition.reservation``) and the
occurrence of each at which an injected fault (code ``INJECTED_FAULT``) is raised. Occurrences
are counted per site in kernel order, so a plan fires at the same event in every run with the
same inputs. The plan is recorded in the run-start entry, so a replay re-creates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xdv.errors import ErrorCode, XdvError

__all__ = ["FAULT_SITES", "FaultPlan", "FaultRule"]

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
    "send",
    "receive",
)


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Fail the ``occurrence``-th visit (1-based) of ``site``, optionally only for ``pid``."""

    site: str
    occurrence: int = 1
    pid: int | None = None

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"site": self.site, "occurrence": self.occurrence}
        if self.pid is not None:
            record["pid"] = self.pid
        return record


class FaultPlan:
    """A set of :class:`FaultRule`; consulted by the kernel at every fault site."""

    def __init__(self, rules: tuple[FaultRule, ...] | list[FaultRule] = ()) -> None:
        for rule in rules:
            if rule.site not in FAULT_SITES:
                raise XdvError(
                    f"unknown fault site {rule.site!r}; known: {', '.join(FAULT_SITES)}",
                    where="fault plan",
                )
            if rule.occurrence < 1:
                raise XdvError("fault occurrences count from 1", where="fault plan")
        self.rules = tuple(rules)
        self._visits: dict[tuple[str, int | None], int] = {}

    def visit(self, site: str, pid: int) -> None:
        """Count a visit to ``site`` by ``pid``; raise an injected fault if a rule matches."""
        if not self.rules:
            return
        for key in ((site, None), (site, pid)):
            self._visits[key] = self._visits.get(key, 0) + 1
        for rule in self.rules:
            if (
                rule.site == site
                and (rule.pid is None or rule.pid == pid)
                and self._visits[(site, rule.pid)] == rule.occurrence
            ):
                raise XdvError(
                    f"injected fault at {site} (occurrence {rule.occurrence})",
                    code=ErrorCode.INJECTED_FAULT,
                    where=site,
                )

    def to_record(self) -> list[dict[str, Any]]:
        return [rule.to_record() for rule in self.rules]

    @classmethod
    def from_record(cls, record: list[dict[str, Any]] | None) -> FaultPlan:
        rules = [
            FaultRule(item["site"], int(item.get("occurrence", 1)), item.get("pid"))
            for item in record or []
        ]
        return cls(rules)
