"""The node a run happens on: its home directory, its signing key, where witnesses go.

A node keeps its state under ``$XDV_HOME`` (default ``~/.xdv``): the key store (``keys/``,
see :class:`xdv.security.KeyStore`) and the witnesses of runs that wrote no trace
(``witnesses/``). The node key signs what the node vouches for: the audit file of every trace
written with auditing on (signed tree heads) and every Φ witness. It is created on first use
and loaded at most once per run, only when something is to be signed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdv.security import HybridKeyPair, KeyStore
from xdv.trace import jsonable

__all__ = ["NodeKey", "WitnessFiles", "default_witness_dir", "xdv_home"]


def xdv_home() -> Path:
    """The node's home: ``$XDV_HOME`` when set, else ``~/.xdv``."""
    home = os.environ.get("XDV_HOME")
    return Path(home) if home else Path.home() / ".xdv"


def default_witness_dir(trace: Path | None) -> Path:
    """Where a run's witnesses go unless told: beside its trace, else ``$XDV_HOME/witnesses``
    (never the current directory)."""
    return trace.parent if trace is not None else xdv_home() / "witnesses"


class NodeKey:
    """The node's signing key in a key store (default ``$XDV_HOME/keys``), loaded, or created
    on first use, when first asked for."""

    def __init__(self, key_store: Path | None = None) -> None:
        self.store = KeyStore(key_store) if key_store is not None else KeyStore.default()
        self._keys: HybridKeyPair | None = None
        self.created = False

    @property
    def loaded(self) -> bool:
        """Whether the key has been loaded (something was signed, or is about to be)."""
        return self._keys is not None

    def keys(self) -> HybridKeyPair:
        """The key pair; KEY_STORE_INVALID if the store cannot be read or created."""
        if self._keys is None:
            self._keys, self.created = self.store.load_or_create()
        return self._keys

    @property
    def fingerprint(self) -> str:
        """The public key's fingerprint (what ``--trusted-key`` takes)."""
        return self.keys().public.fingerprint


@dataclass
class WitnessFiles:
    """A witness sink that writes each witness document as ``witness-<digest>.json`` (the
    first 16 hex digits of its payload digest) in ``directory``, created when first needed."""

    directory: Path
    written: list[Path] = field(default_factory=list)

    def __call__(self, document: dict[str, Any]) -> None:
        from xdv.domains.phi import payload_digest

        digest = payload_digest(document["payload"])
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"witness-{digest[:16]}.json"
        path.write_text(json.dumps(jsonable(document), sort_keys=True) + "\n", encoding="utf-8")
        if path not in self.written:
            self.written.append(path)
