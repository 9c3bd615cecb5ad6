"""The node key store: where a node keeps the private seed of its signing key.

Layout of a key store directory (created with mode 0700)::

    node.key        {"version": 1, "seed": "<64 hex digits>"}      mode 0600, owner only
    node.pub.json   {"version": 1, "fingerprint": ..., "ed25519": ..., "mldsa65": ...}   0644

Loading refuses a private key file that the group or others can read or write, or a directory
others can write, with KEY_STORE_INVALID, naming the file and the fix. The private seed is only
ever read from ``node.key``; nothing in XDV writes it anywhere else (not to traces, audit files,
logs or error messages).

The default location is ``$XDV_HOME/keys`` when ``XDV_HOME`` is set, else ``~/.xdv/keys``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path

from xdv.errors import ErrorCode, XdvError
from xdv.security._keys import HybridKeyPair, HybridPublicKey

__all__ = ["KeyStore", "default_key_store_path"]

_PRIVATE = "node.key"
_PUBLIC = "node.pub.json"


def default_key_store_path() -> Path:
    """``$XDV_HOME/keys`` or ``~/.xdv/keys``."""
    home = os.environ.get("XDV_HOME")
    base = Path(home) if home else Path.home() / ".xdv"
    return base / "keys"


def _error(message: str, path: Path) -> XdvError:
    return XdvError(message, code=ErrorCode.KEY_STORE_INVALID, where=f"key store {path.name}")


class KeyStore:
    """A directory holding one node signing key (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @classmethod
    def default(cls) -> KeyStore:
        return cls(default_key_store_path())

    def exists(self) -> bool:
        return (self.path / _PRIVATE).exists()

    def create(self) -> HybridKeyPair:
        """Create a fresh node key; refuses to overwrite an existing one.

        The key file appears atomically (written under a temporary name, then hard-linked into
        place), so concurrent first uses never see a half-written key: exactly one creator wins
        and the others get :class:`XdvError` (KEY_STORE_INVALID) and can load the winner's key.
        """
        try:
            return self._create()
        except OSError as error:
            raise _error(
                f"cannot create the key store: {error.strerror or type(error).__name__}",
                self.path / _PRIVATE,
            ) from None

    def _create(self) -> HybridKeyPair:
        if not self.path.exists():
            # Only a directory made here is given owner-only permissions; an existing one is
            # left as its owner set it (load() refuses one that others can write to).
            self.path.mkdir(mode=0o700, parents=True)
            os.chmod(self.path, 0o700)
        keys = HybridKeyPair.generate()
        private = self.path / _PRIVATE
        temporary = self.path / f".{_PRIVATE}.{os.getpid()}.{secrets.token_hex(4)}"
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
        public = {"version": 1, "fingerprint": keys.public.fingerprint, **keys.public.to_record()}
        staged = self.path / f".{_PUBLIC}.{os.getpid()}.{secrets.token_hex(4)}"
        staged.write_text(json.dumps(public, indent=1) + "\n")
        os.chmod(staged, 0o644)
        os.replace(staged, self.path / _PUBLIC)
        return keys

    def load(self) -> HybridKeyPair:
        """Load the node key, checking file permissions first."""
        private = self.path / _PRIVATE
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
            record = json.loads(private.read_text())
            if record.get("version") != 1:
                raise ValueError(f"unknown version {record.get('version')!r}")
            seed = bytes.fromhex(record["seed"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise _error(f"{private.name} is malformed: {type(error).__name__}", private) from None
        return HybridKeyPair(seed)

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
            return HybridPublicKey.from_record(json.loads(path.read_text()))
        except (OSError, ValueError) as error:
            raise _error(f"cannot read {path.name}: {type(error).__name__}", path) from None
