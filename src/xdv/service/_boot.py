"""The node's measured boot: the init sequence ``xdv serve`` runs before it mints anything.

:func:`boot_node` runs the stages of :class:`xdv.security.MeasuredBoot` in their fixed order:

1. **kernel**: the code of the installed ``xdv`` package, one component per subpackage
   (``xdv/core``, ``xdv/security``, …, and ``xdv/*`` for the top-level modules: every file in
   sorted relative-path order, :func:`xdv.security.measure_files`), and the interpreter and
   package versions (``runtime``);
2. **configuration**: the input limits (``limits``), every ``*.toml`` file in the node's home
   (``file:providers.toml`` always, its digest that of "absent" when there is none), the
   tenants (each a VHM: name, weight, quotas, rate limit) and the service options that change
   behaviour (``service``: runners, durability);
3. **providers**: every Q and Φ provider, one component per provider (``q/aer``,
   ``phi/exact``, ``q/acme``, …). An embedded provider is built and attested by the node's
   attestation verifier: its measurement, declaration digest and the fingerprint of the
   identity the verifier admitted (a provider that cannot be built or is refused is measured as
   unavailable, with the error code). A plug-in (entry points and ``providers.toml``) is
   measured without running its code, since its factory may reach remote hardware: its group,
   name, factory, distribution and version, the digest of its factory module's source file and
   of its configuration, the identity its configuration requires and the identity pinned for it
   in the provider registry; the kernel attests it when a run binds it;
4. **root**: the capability root is activated, and with it the node's capability authority.

Any failure of stages 1–3 (a file that cannot be read, a malformed configuration) aborts the
boot with BOOT_MEASUREMENT_FAILED after logging it: the node never starts half-measured.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from xdv.domains import PLUGIN_GROUPS, available_plugins
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import LIMITS
from xdv.security import (
    AttestationVerifier,
    HybridKeyPair,
    KeyStore,
    MeasuredBoot,
    ProviderFacts,
    measure_files,
    measure_kernel,
    measure_value,
)
from xdv.service._errors import ServiceError
from xdv.service._store import NodeStore

__all__ = ["BOOT_DIRECTORY", "boot_node", "boot_number", "quote_route"]

NONCE_BYTES_MAX = 64

BOOT_DIRECTORY = "boot"
_LOG = "boot-log.jsonl"
_COUNT = "count"
_CONFIG_BYTES_MAX = 1 << 20
_PROVIDER_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")


def boot_number(home: Path) -> int:
    """How many times the node under ``home`` has booted (``boot/count``; 0 if never)."""
    path = home / BOOT_DIRECTORY / _COUNT
    try:
        return int(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError):
        raise XdvError(
            f"{path.name} does not hold a boot number",
            code=ErrorCode.BOOT_LOG_INVALID,
            where=f"{BOOT_DIRECTORY}/{_COUNT}",
        ) from None


def _count_boot(home: Path) -> int:
    number = boot_number(home) + 1
    directory = home / BOOT_DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    staged = directory / f".{_COUNT}.{os.getpid()}"
    staged.write_text(f"{number}\n", encoding="ascii")
    os.replace(staged, directory / _COUNT)
    return number


def _configuration(boot: MeasuredBoot, home: Path, options: Mapping[str, Any]) -> None:
    boot.measure(
        "configuration", "limits", {name: item.value for name, item in sorted(LIMITS.items())}
    )
    files = {"providers.toml": None} | {
        path.name: path for path in sorted(home.glob("*.toml")) if path.is_file()
    }
    for name in sorted(files):
        path = files[name]
        if path is None:
            boot.measure("configuration", f"file:{name}", {"absent": True})
            continue
        data = path.read_bytes()
        if len(data) > _CONFIG_BYTES_MAX:
            raise XdvError(
                f"{name} is larger than {_CONFIG_BYTES_MAX} bytes",
                code=ErrorCode.INVALID_ARGUMENT,
                where=name,
            )
        try:
            tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise XdvError(f"{name} is not valid TOML: {error}", where=name) from None
        boot.measure("configuration", f"file:{name}", {"bytes": data})
    tenants: list[dict[str, Any]] = []
    if (home / "node.db").exists():
        store = NodeStore(home / "node.db")
        try:
            tenants = store.tenants()
        finally:
            store.close()
    boot.measure("configuration", "tenants", tenants)
    boot.measure("configuration", "service", dict(sorted(options.items())))


def _provider_record(
    provider: Any, verifier: AttestationVerifier, extra: Mapping[str, Any]
) -> dict[str, Any]:
    try:
        facts = ProviderFacts.of(provider)
        verdict = verifier.verify(provider, 0)
    except XdvError as error:
        return {**extra, "available": False, "error": error.code.name}
    return {
        **extra,
        "available": True,
        "measurement": facts.measurement,
        "declaration": verdict["declaration"],
        "identity": facts.identity.fingerprint,
    }


def _providers(boot: MeasuredBoot, home: Path, node_key: HybridKeyPair) -> None:
    from xdv.domains.phi import SHIPPED_SAMPLERS, ExactAdmissibilityProvider
    from xdv.domains.phi import PhaseOscillatorProvider as PhaseProvider
    from xdv.domains.q import provider_factories

    verifier = AttestationVerifier(node_key=node_key, key_store=KeyStore(home / "keys"))
    records: dict[str, dict[str, Any]] = {}
    embedded: dict[str, Callable[[], Any]] = {
        f"q/{name}": factory for name, factory in provider_factories().items()
    }
    embedded["phi/phase"] = PhaseProvider
    embedded["phi/exact"] = ExactAdmissibilityProvider
    for name, sampler in SHIPPED_SAMPLERS.items():
        embedded[f"phi/{name}"] = functools.partial(sampler, {}, None)
    for component in sorted(embedded):
        try:
            provider = embedded[component]()
        except XdvError as error:
            records[component] = {"kind": "embedded", "available": False, "error": error.code.name}
            continue
        records[component] = _provider_record(provider, verifier, {"kind": "embedded"})
    config_path = home / "providers.toml"
    registry = verifier.registry
    for key, group in sorted(PLUGIN_GROUPS.items()):
        for name, spec in available_plugins(group, config_path=config_path).items():
            component = f"{key}/{name}"
            if component in records:
                continue  # a shipped provider also listed as an entry point
            pinned = registry.pinned(name) if _PROVIDER_ID.match(name) else None
            records[component] = {
                "kind": "plug-in",
                **spec.to_record(),
                "source": spec.source,
                "code": _module_digest(spec.target),
                "configuration": measure_value(dict(spec.config)),
                "required_identity": spec.identity,
                "identity": None if pinned is None else pinned.fingerprint,
            }
    for component in sorted(records):
        boot.measure("providers", component, records[component])


def _module_digest(target: str) -> str | None:
    """Digest of the source file of a factory's module, found without importing the module
    itself (its parent packages are imported); None when it cannot be found."""
    module = target.partition(":")[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    origin = None if spec is None else spec.origin
    if origin is None or not Path(origin).is_file():
        return None
    path = Path(origin)
    return measure_files(path.parent, [path])


def boot_node(
    home: Path,
    *,
    options: Mapping[str, Any] | None = None,
    persist: bool = False,
    node_key: HybridKeyPair | None = None,
) -> MeasuredBoot:
    """Run the node's measured boot (see the module docstring) and return it with its
    capability root active.

    ``options`` are the service options that change behaviour (``xdv serve``'s runners and
    durability). With ``persist`` (``xdv serve``) the boot counts itself (``boot/count`` under
    ``home``) and writes its log to ``boot/boot-log.jsonl``; without it (``xdv node attest``)
    it writes nothing and takes the current boot number, so it measures exactly what the last
    ``xdv serve`` measured if nothing changed since.
    """
    key = node_key if node_key is not None else KeyStore(home / "keys").load_or_create()[0]
    number = _count_boot(home) if persist else boot_number(home)
    log_path = home / BOOT_DIRECTORY / _LOG if persist else None
    boot = MeasuredBoot(key, boot=number, log_path=log_path)
    steps: list[tuple[str, Callable[[], None]]] = [
        ("kernel", lambda: measure_kernel(boot)),
        ("configuration", lambda: _configuration(boot, home, dict(options or {}))),
        ("providers", lambda: _providers(boot, home, key)),
    ]
    for stage, step in steps:
        try:
            step()
        except XdvError as error:
            if error.code in (ErrorCode.BOOT_ORDER_VIOLATED, ErrorCode.BOOT_LOG_INVALID):
                raise
            raise boot.fail(stage, stage, error) from error
        except OSError as error:
            typed = XdvError(
                f"{error.strerror or type(error).__name__}: {getattr(error, 'filename', '')}",
                code=ErrorCode.BOOT_MEASUREMENT_FAILED,
            )
            raise boot.fail(stage, stage, typed) from error
    boot.complete()
    boot.activate_root()
    return boot


def quote_route(app: Any, boot: MeasuredBoot) -> None:
    """Add ``GET /v1/node/quote?nonce=HEX`` to the node's FastAPI ``app``: the signed quote of
    the boot this server made (public: no token needed; the nonce makes it fresh)."""

    @app.get("/v1/node/quote", summary="The node's signed boot quote")  # type: ignore[untyped-decorator]
    async def node_quote(nonce: str | None = None) -> Any:
        """The quote of this node's measured boot, carrying ``nonce`` (hex, at most 64 bytes)
        when given; ``xdv node verify-quote`` checks it offline."""
        value: bytes | None = None
        if nonce is not None:
            try:
                value = bytes.fromhex(nonce)
            except ValueError:
                value = None
            if value is None or len(value) > NONCE_BYTES_MAX:
                raise ServiceError(
                    f"nonce must be hex of at most {NONCE_BYTES_MAX} bytes",
                    code=ErrorCode.SERVICE_REQUEST_INVALID,
                    where="nonce",
                )
        return boot.quote(value).to_document()
