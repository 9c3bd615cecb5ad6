"""The node key store: where a node keeps its secret signing keys and the provider registry.

Layout of a key store directory (created with mode 0700)::

    node.key                 {"version": 1, "seed": "<64 hex digits>"}       0600, owner only
    node.pub.json            {"version": 1, "fingerprint": ..., "ed25519": ..., "mldsa65": ...}
    provider-<id>.key        an embedded provider's identity key, as node.key    0600
    providers.json           the provider registry: id -> pinned public key      0644

Every private key is drawn from the operating system's random source when it is first needed
and appears atomically (written under a temporary name, then hard-linked into place), so
concurrent first uses never see a half-written key: exactly one creator wins and the others load
the winner's key. Loading refuses a private key file that the group or others can read or
write, or a directory others can write, with KEY_STORE_INVALID, naming the file and the fix. A
private seed is only ever read from its key file; nothing in XDV writes it anywhere else (not to
traces, audit files, logs or error messages).

The *provider registry* pins each provider id to the public key of its identity: the first use
of a provider id pins the key it presents, and a later, different key for the same id is
refused with PROVIDER_KEY_MISMATCH. Calibration contracts and attestations are verified against
the pinned key, never against a key a provider merely presents.

The default location is ``$XDV_HOME/keys`` when ``XDV_HOME`` is set, else ``~/.xdv/keys``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, XdvError
from xdv.inputs import load_json, read_bounded
from xdv.security._keys import HybridKeyPair, HybridPublicKey

__all__ = ["KeyStore", "ProviderRegistry", "default_key_store_path"]

_PRIVATE = "node.key"
_PUBLIC = "node.pub.json"
_REGISTRY = "providers.json"
_REGISTRY_LOCK = ".providers.lock"
_PROVIDER_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")
_REGISTRY_ENTRIES_MAX = 4096


def default_key_store_path() -> Path:
    """``$XDV_HOME/keys`` or ``~/.xdv/keys``."""
    home = os.environ.get("XDV_HOME")
    base = Path(home) if home else Path.home() / ".xdv"
    return base / "keys"


def _error(message: str, path: Path) -> XdvError:
    return XdvError(message, code=ErrorCode.KEY_STORE_INVALID, where=f"key store {path.name}")


def _read_json(path: Path) -> Any:
    """A key store file's JSON: a regular file, read and parsed within the document limits;
    any failure is the store's (KEY_STORE_INVALID), naming the file and the kind of failure
    only (a parser's message may quote the content, and a key file's content is secret)."""
    try:
        return load_json(
            read_bounded(path, "document_bytes_max", what="key store file"), f"key store {path}"
        )
    except XdvError as error:
        raise _error(f"{path.name} is malformed or unreadable ({error.code.name})", path) from None


def check_provider_id(provider_id: str) -> str:
    """``provider_id`` if it can name a key file and a registry entry (lowercase letters,
    digits, ``.``, ``_`` and ``-``, at most 64); KEY_STORE_INVALID otherwise."""
    if not isinstance(provider_id, str) or not _PROVIDER_ID.match(provider_id):
        raise XdvError(
            f"provider id {provider_id!r} cannot name a provider key (lowercase letters, digits, "
            "'.', '_' and '-', at most 64, starting with a letter or digit)",
            code=ErrorCode.KEY_STORE_INVALID,
            where="key store",
        )
    return provider_id


class KeyStore:
    """A directory holding the node's signing key, its providers' identity keys and the provider
    registry (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @classmethod
    def default(cls) -> KeyStore:
        """The key store at :func:`default_key_store_path`."""
        return cls(default_key_store_path())

    def exists(self) -> bool:
        """Whether the node key exists."""
        return (self.path / _PRIVATE).exists()

    # ------------------------------------------------------------------ the node key

    def create(self) -> HybridKeyPair:
        """Create a fresh node key; refuses to overwrite an existing one (KEY_STORE_INVALID).

        Concurrent first uses: exactly one creator wins, the others get the error and can load
        the winner's key (:meth:`load_or_create` does).
        """
        keys = self._create_key(_PRIVATE)
        public = {"version": 1, "fingerprint": keys.public.fingerprint, **keys.public.to_record()}
        try:
            staged = self.path / f".{_PUBLIC}.{os.getpid()}.{secrets.token_hex(4)}"
            staged.write_text(json.dumps(public, indent=1) + "\n")
            os.chmod(staged, 0o644)
            os.replace(staged, self.path / _PUBLIC)
        except OSError as error:
            raise _error(
                f"cannot write {_PUBLIC}: {error.strerror or type(error).__name__}",
                self.path / _PUBLIC,
            ) from None
        return keys

    def load(self) -> HybridKeyPair:
        """Load the node key, checking file permissions first."""
        return self._load_key(_PRIVATE)

    def load_or_create(self) -> tuple[HybridKeyPair, bool]:
        """The node key, creating it on first use; the flag says whether it was created."""
        if self.exists():
            return self.load(), False
        try:
            return self.create(), True
        except XdvError:
            if self.exists():  # another process created it first: use that key
                return self.load(), False
            raise

    def public_key(self) -> HybridPublicKey:
        """The stored public key (no private material is read)."""
        path = self.path / _PUBLIC
        try:
            return HybridPublicKey.from_record(_read_json(path))
        except (OSError, ValueError) as error:
            raise _error(f"cannot read {path.name}: {type(error).__name__}", path) from None

    # ------------------------------------------------------------------ provider keys

    def provider_key(self, provider_id: str) -> HybridKeyPair:
        """The identity key of provider ``provider_id`` (``provider-<id>.key``), drawn at random
        and stored on first use. Pinning its public key is the registry's business
        (:meth:`provider_registry`); :class:`~xdv.security.ProviderIdentity` does both."""
        name = f"provider-{check_provider_id(provider_id)}.key"
        if (self.path / name).exists():
            return self._load_key(name)
        try:
            return self._create_key(name)
        except XdvError:
            if (self.path / name).exists():  # created concurrently: use the winner's key
                return self._load_key(name)
            raise

    def provider_registry(self) -> ProviderRegistry:
        """The provider registry kept in this store (``providers.json``)."""
        return ProviderRegistry(self.path / _REGISTRY)

    # ------------------------------------------------------------------ files

    def _ensure_directory(self) -> None:
        if not self.path.exists():
            # Only a directory made here is given owner-only permissions; an existing one is
            # left as its owner set it (loading refuses one that others can write to).
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.path, 0o700)

    def _create_key(self, name: str) -> HybridKeyPair:
        private = self.path / name
        try:
            self._ensure_directory()
            keys = HybridKeyPair.generate()
            temporary = self.path / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(descriptor, "w") as handle:
                    json.dump({"version": 1, "seed": keys.seed_bytes().hex()}, handle)
                    handle.write("\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                try:
                    os.link(temporary, private)
                except FileExistsError:
                    raise _error(
                        f"{private.name} already exists; refusing to overwrite it", private
                    ) from None
            finally:
                os.unlink(temporary)
        except OSError as error:
            raise _error(
                f"cannot create {private.name}: {error.strerror or type(error).__name__}", private
            ) from None
        return keys

    def _load_key(self, name: str) -> HybridKeyPair:
        private = self.path / name
        try:
            info = os.stat(private)
            directory = os.stat(self.path)
        except OSError as error:
            raise _error(f"cannot read {private.name}: {error.strerror}", private) from None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise _error(
                f"{private.name} is accessible to group or others (mode "
                f"{stat.S_IMODE(info.st_mode):o}); run chmod 600 on it",
                private,
            )
        if directory.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise _error("the key store directory is writable by group or others", private)
        try:
            record = _read_json(private)
            if record.get("version") != 1:
                raise ValueError(f"unknown version {record.get('version')!r}")
            seed = bytes.fromhex(record["seed"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise _error(f"{private.name} is malformed: {type(error).__name__}", private) from None
        return HybridKeyPair(seed)


class ProviderRegistry:
    """Pins each provider id to the public key of its identity (see the module docstring).

    With a ``path`` the pins live in that file, shared by every process using the key store
    (updates are serialized with a lock file beside it and replace the file atomically); without
    one they live in this object only (tests, embeddings that keep pins elsewhere). ``pins``
    pre-pins keys, as if they had been used first.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        pins: Mapping[str, HybridPublicKey] | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self._pins: dict[str, HybridPublicKey] = {}
        for provider_id, public in sorted((pins or {}).items()):
            self.pin(provider_id, public)

    def pinned(self, provider_id: str) -> HybridPublicKey | None:
        """The key pinned for ``provider_id``, or None if the id was never used."""
        found = self._pins.get(provider_id)
        if found is None and self.path is not None:
            found = _read(self.path).get(provider_id)
            if found is not None:
                self._pins[provider_id] = found
        return found

    def pin(self, provider_id: str, public: HybridPublicKey) -> HybridPublicKey:
        """Pin ``public`` for ``provider_id`` on first use; afterwards accept only that key.

        Raises PROVIDER_KEY_MISMATCH if another key is pinned for the id. The message names the
        provider, never a key: it may enter a trace, and fingerprints differ between machines.
        """
        check_provider_id(provider_id)
        pinned = self.pinned(provider_id)
        if pinned is None:
            pinned = self._pin_new(provider_id, public)
        if pinned != public:
            raise XdvError(
                f"provider {provider_id!r} presents an identity key other than the one pinned "
                "for it in the provider registry",
                code=ErrorCode.PROVIDER_KEY_MISMATCH,
                where=f"provider {provider_id}",
                pinned=pinned.fingerprint,
                presented=public.fingerprint,
            )
        return pinned

    def fingerprints(self) -> dict[str, str]:
        """Every pin, as provider id -> public key fingerprint."""
        pins = dict(self._pins)
        if self.path is not None:
            pins.update(_read(self.path))
        return {provider_id: public.fingerprint for provider_id, public in sorted(pins.items())}

    def _pin_new(self, provider_id: str, public: HybridPublicKey) -> HybridPublicKey:
        path = self.path
        if path is None:
            self._pins[provider_id] = public
            return public
        with _locked(path):
            pins = _read(path)
            # Another process may have pinned the id since we looked: its pin wins.
            pinned = pins.setdefault(provider_id, public)
            if pinned is public:
                if len(pins) > _REGISTRY_ENTRIES_MAX:
                    raise _error(
                        f"the provider registry holds at most {_REGISTRY_ENTRIES_MAX} providers",
                        path,
                    )
                _write(path, pins)
        self._pins[provider_id] = pinned
        return pinned


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(path.parent, 0o700)
        descriptor = os.open(path.with_name(_REGISTRY_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise _error(
            f"cannot lock the provider registry: {error.strerror or type(error).__name__}",
            path,
        ) from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _read(path: Path) -> dict[str, HybridPublicKey]:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise _error(f"cannot read {path.name}: {error.strerror}", path) from None
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise _error(
            f"{path.name} is writable by group or others (mode "
            f"{stat.S_IMODE(info.st_mode):o}); run chmod 644 on it",
            path,
        )
    try:
        record: Any = _read_json(path)
        if not isinstance(record, dict) or record.get("version") != 1:
            raise ValueError("unknown version")
        providers = record["providers"]
        if not isinstance(providers, dict):
            raise TypeError("providers is not a map")
        pins = {
            check_provider_id(provider_id): HybridPublicKey.from_record(entry)
            for provider_id, entry in providers.items()
        }
        for provider_id, entry in providers.items():
            if entry.get("fingerprint") != pins[provider_id].fingerprint:
                raise ValueError(f"the fingerprint of {provider_id!r} does not match its key")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, XdvError) as error:
        reason = error.message if isinstance(error, XdvError) else type(error).__name__
        raise _error(f"{path.name} is malformed: {reason}", path) from None
    return pins


def _write(path: Path, pins: Mapping[str, HybridPublicKey]) -> None:
    record = {
        "version": 1,
        "providers": {
            provider_id: {"fingerprint": public.fingerprint, **public.to_record()}
            for provider_id, public in sorted(pins.items())
        },
    }
    staged = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(record, handle, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(staged, 0o644)
        os.replace(staged, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            staged.unlink()
        raise _error(
            f"cannot write {path.name}: {error.strerror or type(error).__name__}",
            path,
        ) from None
