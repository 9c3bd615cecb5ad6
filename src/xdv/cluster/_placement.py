"""Deterministic placement: which node of an epoch runs a job.

Placement is rendezvous (highest-random-weight) hashing: every eligible member of the epoch
gets a score for the job, SHA-256 over the policy's digest, the job id and the member's id
(once per unit of the member's weight), and the highest score wins; equal scores, which SHA-256
makes practically impossible, fall to the smaller node id. The result depends only on the job
id, the epoch's members and the policy, never on the order in which anything arrived, and a
member leaving moves only the jobs it held (every other job keeps its highest score).

The policy is data (:class:`PlacementPolicy`): an algorithm name, a salt, integer weights per
node (a node of weight ``w`` draws ``w`` scores and keeps the best, so it holds about ``w``
shares of the jobs) and which domains each node offers; a job that needs a domain is placed
only on members that offer it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xdv.errors import ErrorCode, XdvError

__all__ = [
    "ALGORITHM",
    "PlacementPolicy",
    "assignment",
    "place",
]

ALGORITHM = "hrw-sha256"
"""The one placement algorithm: rendezvous hashing with SHA-256 scores."""

_WEIGHT_MAX = 64


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class PlacementPolicy:
    """How jobs are placed (see the module docstring). ``weights`` maps a node id to its
    weight (1 to 64, default 1); ``domains`` maps a node id to the domains it offers (a node
    not named offers every domain)."""

    algorithm: str = ALGORITHM
    salt: str = ""
    weights: Mapping[str, int] = field(default_factory=dict)
    domains: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.algorithm != ALGORITHM:
            raise XdvError(
                f"unknown placement algorithm {self.algorithm!r}; the one known is {ALGORITHM!r}",
                code=ErrorCode.CLUSTER_POLICY_INVALID,
                where="policy.algorithm",
            )
        for node, weight in self.weights.items():
            if type(weight) is not int or not 1 <= weight <= _WEIGHT_MAX:
                raise XdvError(
                    f"node {node!r} has weight {weight!r}; a weight is an integer from 1 to "
                    f"{_WEIGHT_MAX}",
                    code=ErrorCode.CLUSTER_POLICY_INVALID,
                    where=f"policy.weights.{node}",
                )

    def to_record(self) -> dict[str, Any]:
        """The policy as canonical data (what the cluster trace records)."""
        return {
            "algorithm": self.algorithm,
            "salt": self.salt,
            "weights": {node: self.weights[node] for node in sorted(self.weights)},
            "domains": {node: sorted(self.domains[node]) for node in sorted(self.domains)},
        }

    @classmethod
    def from_record(cls, record: Any) -> PlacementPolicy:
        """The policy a record describes; CLUSTER_POLICY_INVALID if it is malformed."""
        try:
            return cls(
                algorithm=str(record["algorithm"]),
                salt=str(record.get("salt", "")),
                weights={str(k): v for k, v in dict(record.get("weights", {})).items()},
                domains={
                    str(k): tuple(str(d) for d in v)
                    for k, v in dict(record.get("domains", {})).items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise XdvError(
                f"a placement policy is a map with an algorithm: {type(error).__name__}",
                code=ErrorCode.CLUSTER_POLICY_INVALID,
                where="policy",
            ) from None

    @functools.cached_property
    def digest(self) -> bytes:
        """SHA-256 of the canonical record: the policy's part of every score."""
        return hashlib.sha256(_canonical(self.to_record())).digest()

    def offers(self, node: str, domains: Iterable[str]) -> bool:
        """Whether ``node`` offers every domain in ``domains``."""
        offered = self.domains.get(node)
        return offered is None or set(domains) <= set(offered)


def _score(policy_digest: bytes, job: str, node: str, weight: int) -> bytes:
    best = b""
    for replica in range(weight):
        hasher = hashlib.sha256(policy_digest)
        hasher.update(_canonical([job, node, replica]))
        best = max(best, hasher.digest())
    return best


def place(
    job: str,
    members: Sequence[str],
    policy: PlacementPolicy | None = None,
    *,
    needs: Iterable[str] = (),
) -> str:
    """The member of the epoch that runs ``job``: the eligible member (one that offers every
    domain in ``needs``) with the highest score; CLUSTER_NO_NODE when no member is eligible."""
    policy = policy or PlacementPolicy()
    needed = tuple(needs)
    digest = policy.digest
    best: tuple[bytes, str] | None = None
    for node in sorted(set(members)):
        if not policy.offers(node, needed):
            continue
        score = _score(digest, job, node, policy.weights.get(node, 1))
        # Highest score wins; equal scores (practically impossible) go to the smaller id.
        if best is None or score > best[0]:
            best = (score, node)
    if best is None:
        raise XdvError(
            f"no member of the epoch can run job {job!r}"
            + (f" (it needs {', '.join(sorted(needed))})" if needed else " (the epoch is empty)"),
            code=ErrorCode.CLUSTER_NO_NODE,
            where=f"job {job}",
        )
    return best[1]


def assignment(
    jobs: Iterable[str],
    members: Sequence[str],
    policy: PlacementPolicy | None = None,
    *,
    needs: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, list[str]]:
    """Every member's jobs, in the order given (members holding no job map to ``[]``)."""
    policy = policy or PlacementPolicy()
    placed: dict[str, list[str]] = {node: [] for node in sorted(set(members))}
    for job in jobs:
        placed[place(job, members, policy, needs=(needs or {}).get(job, ()))].append(job)
    return placed
