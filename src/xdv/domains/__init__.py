"""The Q and Φ domain managers (in ``xdv.domains.q`` and ``xdv.domains.phi``) and the registry
that rebuilds a recorded manager from its description. The domain interface itself, and the K
manager, belong to :mod:`xdv.core`."""

from xdv.domains._registry import manager_from_description, register_manager_factory

__all__ = ["manager_from_description", "register_manager_factory"]
