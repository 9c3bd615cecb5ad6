"""Third-party providers as plug-ins: one loader for the Q and Φ domains.

A plug-in is a *factory*, ``factory(config: Mapping[str, Any]) -> provider``, found by the
provider's name in a group (``xdv.q_providers`` or ``xdv.phi_providers``) in one of two places:

* an **entry point** of an installed distribution, in that group and under that name
  (``[project.entry-points."xdv.q_providers"] acme = "acme_xdv:factory"``);
* the **configuration file** ``$XDV_HOME/providers.toml`` (``~/.xdv/providers.toml`` without
  ``XDV_HOME``), one table per provider under the domain's key::

      [q.acme]
      factory = "acme_xdv:factory"   # optional when an entry point of that name exists
      identity = "3f9a…"             # optional: the identity key fingerprint to require
      backend = "simulator"          # every other key is the factory's configuration

A configuration entry overrides the entry point's factory when it names one, and gives the
factory its configuration either way. The loaded provider's ``provider_id`` must be the plug-in's
name and it must implement the group's provider interface; every failure is a typed error in the
PLUGIN_* range (docs/errors.md, section "Providers").

The plug-in's :class:`PluginSpec` record (group, name, distribution, version: never its
configuration, which may hold credentials) goes into the manager's description, and so into the
trace's run-start entry; a replay rebuilds the provider through the same factory
(:func:`provider_from_record`), refusing a different installed version
(PLUGIN_VERSION_MISMATCH). A plug-in's identity key is its own: it is pinned in the key store's
provider registry on first use like every provider's (a different key later is refused with
PROVIDER_KEY_MISMATCH), and :func:`attest_plugins` attests plug-in providers with their own
identity so the kernel's attestation verifier admits them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import tomllib
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, XdvError, describe_exception
from xdv.security import AttestationVerifier, attest

__all__ = [
    "PLUGIN_GROUPS",
    "PluginError",
    "PluginSpec",
    "attest_plugins",
    "available_plugins",
    "find_plugin",
    "load_plugin",
    "plugin_config_path",
    "plugin_of",
    "provider_from_record",
]

PLUGIN_GROUPS: Mapping[str, str] = {"q": "xdv.q_providers", "phi": "xdv.phi_providers"}
"""The entry-point group of each domain's providers, by the key used in ``providers.toml``."""

_CONFIG_FILE = "providers.toml"
_CONFIG_BYTES_MAX = 1 << 20
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*\Z")
_RESERVED = frozenset({"factory", "identity"})

Factory = Callable[[Mapping[str, Any]], Any]


class PluginError(XdvError):
    """A provider plug-in could not be found, loaded or built (codes 1200–1209)."""

    default_code = ErrorCode.PLUGIN_LOAD_FAILED


@dataclass(frozen=True)
class PluginSpec:
    """Where a plug-in comes from: its group and name, the ``module:attribute`` of its factory,
    the distribution that ships it (None for a factory named only in the configuration file),
    that distribution's version, its configuration and an identity fingerprint to require."""

    group: str
    name: str
    target: str
    distribution: str | None = None
    version: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict, repr=False)
    identity: str | None = None
    source: str = "entry-point"  # or "config"

    def to_record(self) -> dict[str, Any]:
        """What a trace records of the plug-in (never its configuration)."""
        return {
            "group": self.group,
            "name": self.name,
            "factory": self.target,
            "distribution": self.distribution,
            "version": self.version,
        }


def _error(message: str, code: ErrorCode, group: str, name: str | None = None) -> PluginError:
    where = f"plug-in {group}:{name}" if name else f"plug-in group {group}"
    return PluginError(message, code=code, where=where)


def plugin_config_path() -> Path:
    """``$XDV_HOME/providers.toml``, or ``~/.xdv/providers.toml`` without ``XDV_HOME``."""
    home = os.environ.get("XDV_HOME")
    return (Path(home) if home else Path.home() / ".xdv") / _CONFIG_FILE


def _check_group(group: str) -> str:
    if group not in PLUGIN_GROUPS.values():
        raise _error(
            f"unknown plug-in group {group!r} (known: {', '.join(PLUGIN_GROUPS.values())})",
            ErrorCode.PLUGIN_NOT_FOUND,
            group,
        )
    return group


def _configured(group: str, path: Path | None) -> dict[str, dict[str, Any]]:
    """The configuration file's tables for ``group`` (none when the file does not exist)."""
    path = plugin_config_path() if path is None else path
    where = f"plug-in configuration {path.name}"
    try:
        if not path.is_file():
            return {}
        data = path.read_bytes()
    except OSError as error:
        raise PluginError(
            f"cannot read {path.name}: {error.strerror or type(error).__name__}",
            code=ErrorCode.PLUGIN_CONFIG_INVALID,
            where=where,
        ) from None
    if len(data) > _CONFIG_BYTES_MAX:
        raise PluginError(
            f"{path.name} is larger than {_CONFIG_BYTES_MAX} bytes",
            code=ErrorCode.PLUGIN_CONFIG_INVALID,
            where=where,
        )
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise PluginError(
            f"{path.name} is not valid TOML: {error}",
            code=ErrorCode.PLUGIN_CONFIG_INVALID,
            where=where,
        ) from None
    key = next(key for key, value in PLUGIN_GROUPS.items() if value == group)
    section = document.get(key, {})
    if not isinstance(section, dict):
        raise PluginError(
            f"[{key}] in {path.name} must be a table of providers",
            code=ErrorCode.PLUGIN_CONFIG_INVALID,
            where=where,
        )
    tables: dict[str, dict[str, Any]] = {}
    for name, table in section.items():
        if not isinstance(table, dict) or not _NAME.match(name):
            raise PluginError(
                f"[{key}.{name}] in {path.name} must be a table named by a provider id "
                "(lowercase letters, digits, '.', '_' and '-', at most 64)",
                code=ErrorCode.PLUGIN_CONFIG_INVALID,
                where=where,
            )
        target = table.get("factory")
        if target is not None and (not isinstance(target, str) or not _TARGET.match(target)):
            raise PluginError(
                f"[{key}.{name}] factory must be 'module:attribute', got {target!r}",
                code=ErrorCode.PLUGIN_CONFIG_INVALID,
                where=where,
            )
        identity = table.get("identity")
        if identity is not None and not isinstance(identity, str):
            raise PluginError(
                f"[{key}.{name}] identity must be a key fingerprint (a string)",
                code=ErrorCode.PLUGIN_CONFIG_INVALID,
                where=where,
            )
        tables[name] = table
    return tables


def _entry_points(group: str) -> dict[str, importlib.metadata.EntryPoint]:
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry in importlib.metadata.entry_points(group=group):
        found.setdefault(entry.name, entry)  # the first on sys.path wins, as imports do
    return found


def _spec(
    group: str,
    name: str,
    entry: importlib.metadata.EntryPoint | None,
    table: Mapping[str, Any] | None,
) -> PluginSpec:
    distribution = version = None
    target = None
    if entry is not None:
        target = entry.value
        if entry.dist is not None:
            distribution = entry.dist.metadata["Name"]
            version = entry.dist.version
    source = "entry-point"
    config: dict[str, Any] = {}
    identity = None
    if table is not None:
        config = {key: value for key, value in table.items() if key not in _RESERVED}
        identity = table.get("identity")
        if table.get("factory") is not None:
            target = str(table["factory"])
            if entry is None or entry.value != target:
                source, distribution, version = "config", None, None
    if target is None:
        raise _error(
            f"[{name}] in the configuration names no factory and no entry point of group "
            f"{group} is called {name!r}",
            ErrorCode.PLUGIN_NOT_FOUND,
            group,
            name,
        )
    return PluginSpec(group, name, target, distribution, version, config, identity, source)


def available_plugins(group: str, *, config_path: Path | None = None) -> dict[str, PluginSpec]:
    """Every plug-in of ``group`` found in entry points and the configuration file, by name."""
    _check_group(group)
    entries = _entry_points(group)
    tables = _configured(group, config_path)
    return {
        name: _spec(group, name, entries.get(name), tables.get(name))
        for name in sorted(set(entries) | set(tables))
        if _NAME.match(name)
    }


def find_plugin(group: str, name: str, *, config_path: Path | None = None) -> PluginSpec:
    """The plug-in called ``name`` in ``group``; PLUGIN_NOT_FOUND if there is none."""
    _check_group(group)
    if not isinstance(name, str) or not _NAME.match(name):
        raise _error(
            f"{name!r} cannot name a provider (lowercase letters, digits, '.', '_' and '-')",
            ErrorCode.PLUGIN_NOT_FOUND,
            group,
        )
    entry = _entry_points(group).get(name)
    table = _configured(group, config_path).get(name)
    if entry is None and table is None:
        raise _error(
            f"no provider plug-in {name!r}: no entry point in group {group} and no "
            f"[{_key(group)}.{name}] in {plugin_config_path().name}",
            ErrorCode.PLUGIN_NOT_FOUND,
            group,
            name,
        )
    return _spec(group, name, entry, table)


def _key(group: str) -> str:
    return next(key for key, value in PLUGIN_GROUPS.items() if value == group)


def _resolve(spec: PluginSpec) -> Factory:
    module_name, _, attribute = spec.target.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            value = getattr(value, part)
    except Exception as error:  # an import error, or anything the module raises on import
        raise _error(
            f"cannot load factory {spec.target}: {describe_exception(error)}",
            ErrorCode.PLUGIN_LOAD_FAILED,
            spec.group,
            spec.name,
        ) from None
    if not callable(value):
        raise _error(
            f"{spec.target} is not callable (a factory takes the configuration mapping)",
            ErrorCode.PLUGIN_LOAD_FAILED,
            spec.group,
            spec.name,
        )
    return value  # type: ignore[no-any-return]


# Providers built by this loader, and where each came from (a provider does not know).
_LOADED: weakref.WeakKeyDictionary[Any, PluginSpec] = weakref.WeakKeyDictionary()


def plugin_of(provider: Any) -> PluginSpec | None:
    """The plug-in that built ``provider``, or None for any other provider."""
    try:
        return _LOADED.get(provider)
    except TypeError:  # not weakly referenceable: not built here
        return None


def load_plugin(
    group: str,
    name: str,
    *,
    interface: type | None = None,
    config: Mapping[str, Any] | None = None,
    config_path: Path | None = None,
) -> Any:
    """Build the provider of plug-in ``name`` in ``group``: its factory called with its
    configuration (``config`` replaces the configuration file's). The result must be an
    instance of ``interface`` (a runtime-checkable protocol) when given, and its
    ``provider_id`` must be ``name``; a required identity fingerprint must match its key."""
    spec = find_plugin(group, name, config_path=config_path)
    if config is not None:
        spec = PluginSpec(
            spec.group,
            spec.name,
            spec.target,
            spec.distribution,
            spec.version,
            dict(config),
            spec.identity,
            spec.source,
        )
    return _build(spec, interface)


def _build(spec: PluginSpec, interface: type | None) -> Any:
    factory = _resolve(spec)
    try:
        provider = factory(dict(spec.config))
    except Exception as error:
        raise _error(
            f"factory {spec.target} failed: {describe_exception(error)}",
            ErrorCode.PLUGIN_FACTORY_FAILED,
            spec.group,
            spec.name,
        ) from None
    if interface is not None and not isinstance(provider, interface):
        raise _error(
            f"factory {spec.target} returned {type(provider).__name__}, which does not implement "
            f"{interface.__name__}",
            ErrorCode.PLUGIN_INVALID,
            spec.group,
            spec.name,
        )
    provider_id = getattr(provider, "provider_id", None)
    if provider_id != spec.name:
        raise _error(
            f"factory {spec.target} built provider {provider_id!r}, not {spec.name!r}",
            ErrorCode.PLUGIN_INVALID,
            spec.group,
            spec.name,
        )
    if spec.identity is not None:
        fingerprint = getattr(getattr(provider, "identity", None), "fingerprint", None)
        if fingerprint != spec.identity:
            raise PluginError(
                f"provider {spec.name!r} presents an identity key other than the one its "
                "configuration requires",
                code=ErrorCode.PROVIDER_KEY_MISMATCH,
                where=f"plug-in {spec.group}:{spec.name}",
            )
    try:
        _LOADED[provider] = spec
    except TypeError:
        raise _error(
            f"factory {spec.target} returned an object that cannot be tracked (no weak "
            "references); make the provider an ordinary class instance",
            ErrorCode.PLUGIN_INVALID,
            spec.group,
            spec.name,
        ) from None
    return provider


def provider_from_record(
    record: Mapping[str, Any],
    *,
    interface: type | None = None,
    config_path: Path | None = None,
) -> Any:
    """Rebuild the provider a trace's plug-in record (:meth:`PluginSpec.to_record`) names, for
    a replay: the same group, name and factory, and the same distribution version when the
    record names one (PLUGIN_VERSION_MISMATCH otherwise). The configuration is this machine's
    (a trace never holds it)."""
    group, name = str(record.get("group")), str(record.get("name"))
    spec = find_plugin(_check_group(group), name, config_path=config_path)
    recorded_target = record.get("factory")
    if recorded_target is not None and recorded_target != spec.target:
        raise _error(
            f"the trace's plug-in uses factory {recorded_target}; here it is {spec.target}",
            ErrorCode.PLUGIN_VERSION_MISMATCH,
            group,
            name,
        )
    recorded_version = record.get("version")
    if recorded_version is not None and (
        record.get("distribution") != spec.distribution or recorded_version != spec.version
    ):
        raise _error(
            f"the trace was made with {record.get('distribution')} {recorded_version}; this "
            f"machine has {spec.distribution} {spec.version}",
            ErrorCode.PLUGIN_VERSION_MISMATCH,
            group,
            name,
        )
    return _build(spec, interface)


def attest_plugins(
    verifier: AttestationVerifier, providers: Iterable[Any], now: int = 0
) -> list[str]:
    """Register an attestation, signed by the provider's own identity, for each plug-in provider
    among ``providers`` (others are left to the verifier's own rules); return their ids.

    The verifier still checks each at every bind, and pins its identity key in its registry
    (first use pins, a different key later is PROVIDER_KEY_MISMATCH)."""
    attested: list[str] = []
    for provider in providers:
        if plugin_of(provider) is None:
            continue
        verifier.register(attest(provider, provider.identity, now))
        attested.append(provider.provider_id)
    return attested
