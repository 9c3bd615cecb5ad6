"""The Q and Φ domain managers (in ``xdv.domains.q`` and ``xdv.domains.phi``) and the registry
that rebuilds a recorded manager from its description. The domain interface itself, and the K
manager, belong to :mod:`xdv.core`. Third-party providers of either domain come in through the
plug-in loader (:func:`load_plugin`: entry points and ``$XDV_HOME/providers.toml``)."""

from xdv.domains._plugins import (
    PLUGIN_GROUPS,
    PluginError,
    PluginSpec,
    attest_plugins,
    available_plugins,
    find_plugin,
    load_plugin,
    plugin_config_path,
    plugin_of,
    provider_from_record,
)
from xdv.domains._registry import manager_from_description, register_manager_factory

__all__ = [
    "PLUGIN_GROUPS",
    "PluginError",
    "PluginSpec",
    "attest_plugins",
    "available_plugins",
    "find_plugin",
    "load_plugin",
    "manager_from_description",
    "plugin_config_path",
    "plugin_of",
    "provider_from_record",
    "register_manager_factory",
]
