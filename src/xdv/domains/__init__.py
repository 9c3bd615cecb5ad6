"""The Domain Abstraction Layer and the domain managers."""

from xdv.domains._interface import (
    DomainManager,
    Invocation,
    Outcome,
    ResourceContract,
    ResourceGrant,
    ResourceRequest,
)
from xdv.domains.k_manager import KDomainManager

__all__ = [
    "DomainManager",
    "Invocation",
    "KDomainManager",
    "Outcome",
    "ResourceContract",
    "ResourceGrant",
    "ResourceRequest",
]
