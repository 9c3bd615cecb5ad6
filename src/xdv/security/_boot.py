"""Measured boot: the boot log, the capability root it gates, and signed boot quotes.

**The boot log** (:class:`BootLog`) is an append-only hash chain of measurement events, each a
``(stage, component, digest)`` triple, in the manner of a TPM platform configuration register:
starting from 32 zero bytes, each event *extends* the running digest::

    D_i = SHA-256("XDV-BOOT-EXTEND-1" || 0x00 || D_(i-1) || canonical({stage, component, digest}))

so the final digest commits to every event and its position. The stages run in one fixed order,
:data:`BOOT_STAGES`: ``kernel`` (the code of the node), ``configuration`` (limits, configuration
files, tenants, service options), ``providers`` (every Q and Φ provider, attested) and ``root``
(the activation of the capability root). A stage never reopens once a later one has begun, a
component appears once per stage, and nothing is measured after the root is activated or after
a failure: the log refuses each with BOOT_ORDER_VIOLATED.

**The order is enforced** by :class:`MeasuredBoot`. Its capability root (:class:`RootCapability`)
and the node's capability authority (a :class:`~xdv.security.TokenAuthority` that only the boot
hands out) exist only after every measurement stage has run and :meth:`MeasuredBoot.complete`
was called; asking earlier is BOOT_NOT_MEASURED. The root's activation is itself the last event
of the log, so a quote shows that the root came after the measurements.

**A boot quote** (:class:`BootQuote`) is the node's signed statement of its boot: the
measurement list, the final digest, the boot number, the node key's fingerprint and public half,
and an optional nonce chosen by the verifier (freshness). The node key signs the canonical
encoding of all of these (hybrid Ed25519 + ML-DSA-65, context ``xdv-boot-quote``).
:func:`verify_quote` checks a quote offline: its form, the key against a trusted fingerprint,
the signature, the chain (recomputed from the list), the nonce, and the measurements against a
reference, reporting every differing component.

Measurement is software: nothing here reads a hardware TPM, so the root of the measurement is
the process that runs the boot (``docs/boot.md`` says what this does and does not protect).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, UnauthorizedError, XdvError
from xdv.security._keys import HybridKeyPair, HybridPublicKey
from xdv.security._tokens import TokenAuthority
from xdv.trace import canonical_metadata

__all__ = [
    "BOOT_STAGES",
    "QUOTE_FORMAT",
    "BootError",
    "BootEvent",
    "BootLog",
    "BootQuote",
    "MeasuredBoot",
    "RootCapability",
    "expected_measurements",
    "measure_files",
    "measure_kernel",
    "measure_value",
    "verify_quote",
]

BOOT_STAGES: tuple[str, ...] = ("kernel", "configuration", "providers", "root")
"""The measurement stages, in the one order a boot runs them."""
MEASURED_STAGES: tuple[str, ...] = BOOT_STAGES[:-1]
QUOTE_FORMAT = "xdv-boot-quote"
QUOTE_VERSION = 1
EXPECTED_FORMAT = "xdv-boot-expected"
ROOT_COMPONENT = "root-capability"
NONCE_BYTES_MAX = 64
COMPONENT_CHARS_MAX = 200
EVENTS_MAX = 4096

_ORIGIN = bytes(32)
_EXTEND_TAG = b"XDV-BOOT-EXTEND-1\0"
_QUOTE_CONTEXT = b"xdv-boot-quote"
_ROOT_CONTEXT = b"xdv-boot-root"
_DIGEST = re.compile(r"[0-9a-f]{64}\Z")
_HEX = re.compile(r"(?:[0-9a-f]{2})*\Z")


class BootError(XdvError):
    """A measured boot or a boot quote failed (codes 1520–1529)."""

    default_code = ErrorCode.BOOT_ORDER_VIOLATED


def measure_value(value: Any) -> str:
    """Hex SHA-256 of the canonical encoding of ``value`` (a trace-encodable value)."""
    return hashlib.sha256(canonical_metadata({"value": value})).hexdigest()


def measure_files(root: Path, files: Iterable[Path]) -> str:
    """Hex SHA-256 over ``files`` (paths under ``root``) in sorted relative-path order: for each
    its POSIX relative path and its bytes, each preceded by its length."""
    digest = hashlib.sha256(b"xdv-boot-files-1\0")
    named = sorted((path.relative_to(root).as_posix(), path) for path in files)
    for name, path in named:
        encoded = name.encode("utf-8")
        data = path.read_bytes()
        digest.update(len(encoded).to_bytes(2, "big") + encoded)
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class BootEvent:
    """One measurement event: which stage, which component, and the component's digest."""

    stage: str
    component: str
    digest: str

    def check(self) -> BootEvent:
        """This event if it is well formed; BOOT_LOG_INVALID otherwise."""
        if self.stage not in BOOT_STAGES:
            raise BootError(
                f"unknown boot stage {self.stage!r} (stages: {', '.join(BOOT_STAGES)})",
                code=ErrorCode.BOOT_LOG_INVALID,
                where="boot log",
            )
        if (
            not isinstance(self.component, str)
            or not 0 < len(self.component) <= COMPONENT_CHARS_MAX
        ):
            raise BootError(
                f"a component name is 1 to {COMPONENT_CHARS_MAX} characters",
                code=ErrorCode.BOOT_LOG_INVALID,
                where=f"boot stage {self.stage}",
            )
        if not isinstance(self.digest, str) or not _DIGEST.match(self.digest):
            raise BootError(
                f"the digest of {self.component!r} is not a hex SHA-256",
                code=ErrorCode.BOOT_LOG_INVALID,
                where=f"boot stage {self.stage}",
            )
        return self

    def to_record(self) -> dict[str, str]:
        """The event as the log and the quote hold it."""
        return {"stage": self.stage, "component": self.component, "digest": self.digest}


def _extend(previous: bytes, event: BootEvent) -> bytes:
    return hashlib.sha256(_EXTEND_TAG + previous + canonical_metadata(event.to_record())).digest()


class BootLog:
    """The append-only hash chain of a boot's measurement events (see the module docstring).

    ``path``, when given, receives one JSON line per event as it is appended (the event and the
    chain digest after it), so the log of a node's boot survives beside its state.

    Invariants: ``digest`` is the chain over exactly ``events``; stages never go backwards; a
    closed log (root activated, or failed) takes no further event.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._events: list[BootEvent] = []
        self._seen: set[tuple[str, str]] = set()
        self._digest = _ORIGIN
        self._stage = -1
        self.closed = False
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("", encoding="utf-8")

    @property
    def events(self) -> tuple[BootEvent, ...]:
        """The events so far, in order."""
        return tuple(self._events)

    @property
    def digest(self) -> str:
        """The chain digest so far (hex; 64 zeros before the first event)."""
        return self._digest.hex()

    @property
    def stage(self) -> str | None:
        """The stage of the last event, if any."""
        return BOOT_STAGES[self._stage] if self._stage >= 0 else None

    def extend(self, stage: str, component: str, digest: str) -> str:
        """Append one event and return the new chain digest; BOOT_ORDER_VIOLATED for an event
        out of order (see the class docstring), BOOT_LOG_INVALID for a malformed one."""
        event = BootEvent(stage, component, digest).check()
        if self.closed:
            raise BootError(
                f"the boot log is closed; {stage}/{component} cannot be measured after the "
                "capability root was activated or the boot failed",
                where="boot log",
            )
        index = BOOT_STAGES.index(stage)
        if index < self._stage:
            raise BootError(
                f"stage {stage} cannot be measured after stage {BOOT_STAGES[self._stage]} "
                f"(the order is {' → '.join(BOOT_STAGES)})",
                where=f"boot stage {stage}",
            )
        if (stage, component) in self._seen:
            raise BootError(
                f"{component!r} was already measured in stage {stage}",
                where=f"boot stage {stage}",
            )
        if len(self._events) >= EVENTS_MAX:
            raise BootError(
                f"a boot log holds at most {EVENTS_MAX} events",
                code=ErrorCode.BOOT_LOG_INVALID,
                where="boot log",
            )
        self._stage = index
        self._seen.add((stage, component))
        self._events.append(event)
        self._digest = _extend(self._digest, event)
        if self.path is not None:
            line = {**event.to_record(), "chain": self.digest}
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, sort_keys=True) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        return self.digest

    def stages(self) -> set[str]:
        """The stages that hold at least one event."""
        return {event.stage for event in self._events}

    def close(self) -> None:
        """Take no further event."""
        self.closed = True

    @classmethod
    def replay(cls, events: Iterable[BootEvent]) -> BootLog:
        """A log rebuilt from ``events`` (each checked, in order, as :meth:`extend` does)."""
        log = cls()
        for event in events:
            log.extend(event.stage, event.component, event.digest)
        return log

    @classmethod
    def load(cls, path: Path) -> BootLog:
        """A log read back from its file, every chain digest checked; BOOT_LOG_INVALID if the
        file is malformed or a line's chain digest is not the chain's."""
        log = cls()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise BootError(
                f"cannot read the boot log: {type(error).__name__}",
                code=ErrorCode.BOOT_LOG_INVALID,
                where=path.name,
            ) from None
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
                chain = record["chain"]
                log.extend(record["stage"], record["component"], record["digest"])
            except (ValueError, KeyError, TypeError):
                raise BootError(
                    f"line {number} is not a boot log event",
                    code=ErrorCode.BOOT_LOG_INVALID,
                    where=path.name,
                ) from None
            if chain != log.digest:
                raise BootError(
                    f"line {number}'s chain digest is not the chain's (the log was altered)",
                    code=ErrorCode.BOOT_LOG_INVALID,
                    where=path.name,
                )
        return log


@dataclass(frozen=True, slots=True)
class RootCapability:
    """The boot session's capability root: issued by the node (its key), scope ``system``,
    created at logical time ``logical_timestamp`` (the number of measurement events before it)
    and bound to the boot's measurement digest and boot number.

    ``root_id`` is a digest of the measurement digest, the node key and the boot number, so it
    is unique per boot (the boot number counts the node's boots) and reproducible from the same
    inputs. ``signature`` (randomized) never enters the boot log: the log holds the digest of
    the unsigned record."""

    root_id: str
    issuer: str
    measurement: str
    boot: int
    logical_timestamp: int
    scope: str = "system"
    signature: bytes = field(default=b"", repr=False)

    @classmethod
    def unsigned(
        cls, measurement: str, issuer: str, boot: int, logical_timestamp: int
    ) -> RootCapability:
        """The root a boot with measurement digest ``measurement`` mints (unsigned): a verifier
        rebuilds it from a quote to check the root's activation event."""
        root_id = hashlib.sha256(
            b"xdv-boot-root-1\0"
            + bytes.fromhex(measurement)
            + bytes.fromhex(issuer)
            + boot.to_bytes(8, "big")
        ).hexdigest()
        return cls(root_id, issuer, measurement, boot, logical_timestamp)

    def to_record(self) -> dict[str, Any]:
        """The signed fields."""
        return {
            "root": self.root_id,
            "issuer": self.issuer,
            "scope": self.scope,
            "measurement": self.measurement,
            "boot": self.boot,
            "logical_timestamp": self.logical_timestamp,
        }

    def payload(self) -> bytes:
        """The canonical bytes the node key signs."""
        return canonical_metadata(self.to_record())

    def verify(self, public: HybridPublicKey) -> None:
        """Check the signature under ``public``; SIGNATURE_INVALID otherwise."""
        public.verify(self.payload(), self.signature, context=_ROOT_CONTEXT)


class MeasuredBoot:
    """The ordered init sequence of a node: measure, then activate the capability root.

    Call :meth:`measure` for the stages in :data:`BOOT_STAGES` order (``kernel``,
    ``configuration``, ``providers``), then :meth:`complete`, then :meth:`activate_root`; only
    then do :meth:`authority` and :meth:`quote` answer. :meth:`fail` aborts the boot: it records
    a failure event, closes the log, and nothing can be activated afterwards.
    """

    def __init__(
        self, node_key: HybridKeyPair, *, boot: int = 0, log_path: Path | None = None
    ) -> None:
        if type(boot) is not int or boot < 0:
            raise BootError(
                f"a boot number is an integer ≥ 0, got {boot!r}",
                code=ErrorCode.INVALID_ARGUMENT,
                where="boot",
            )
        self._key = node_key
        self.boot = boot
        self.log = BootLog(log_path)
        self._measured = False
        self._failed: XdvError | None = None
        self._root: RootCapability | None = None
        self._authority: TokenAuthority | None = None

    @property
    def fingerprint(self) -> str:
        """The node key's fingerprint."""
        return self._key.public.fingerprint

    @property
    def failed(self) -> XdvError | None:
        """Why the boot failed, if it did."""
        return self._failed

    def measure(
        self, stage: str, component: str, value: Any = None, *, digest: str | None = None
    ) -> str:
        """Record the measurement of ``component`` in ``stage``: ``digest`` when given, else
        :func:`measure_value` of ``value``. Returns the component's digest."""
        if stage == "root":
            raise BootError(
                "the root stage holds only the capability root's activation (activate_root)",
                where="boot stage root",
            )
        if self._measured:
            raise BootError(
                f"the measurement is complete; {stage}/{component} comes too late",
                where=f"boot stage {stage}",
            )
        measured = digest if digest is not None else measure_value(value)
        self.log.extend(stage, component, measured)
        return measured

    def fail(self, stage: str, component: str, error: XdvError) -> BootError:
        """Abort the boot: log a failure event for ``component`` (its digest is that of the
        error's record), close the log, and return the BOOT_MEASUREMENT_FAILED error to raise
        (its cause is ``error``)."""
        failure = BootError(
            f"boot aborted in stage {stage} measuring {component}: {error.message}",
            code=ErrorCode.BOOT_MEASUREMENT_FAILED,
            where=f"boot stage {stage}",
        )
        if not self.log.closed:
            name = f"failure:{component}"[:COMPONENT_CHARS_MAX]
            # When the stage order itself is what failed, close without an event.
            with contextlib.suppress(XdvError):
                self.log.extend(stage, name, measure_value(error.to_record()))
            self.log.close()
        self._failed = failure
        return failure

    def complete(self) -> None:
        """Mark the measurement complete: every measured stage must hold an event
        (BOOT_NOT_MEASURED otherwise)."""
        self._check_live()
        missing = [stage for stage in MEASURED_STAGES if stage not in self.log.stages()]
        if missing:
            raise BootError(
                f"the boot has not measured stage(s) {', '.join(missing)}",
                code=ErrorCode.BOOT_NOT_MEASURED,
                where="boot",
            )
        self._measured = True

    def _check_live(self) -> None:
        if self._failed is not None:
            raise BootError(
                f"the boot failed: {self._failed.message}",
                code=ErrorCode.BOOT_NOT_MEASURED,
                where="boot",
            )

    def activate_root(self) -> RootCapability:
        """Mint the boot's :class:`RootCapability` and log its activation (the last event);
        BOOT_NOT_MEASURED before :meth:`complete`, BOOT_ORDER_VIOLATED a second time."""
        self._check_live()
        if not self._measured:
            raise BootError(
                "the capability root cannot be minted before the measurement is complete",
                code=ErrorCode.BOOT_NOT_MEASURED,
                where="boot",
            )
        if self._root is not None:
            raise BootError("the capability root is already active", where="boot stage root")
        unsigned = RootCapability.unsigned(
            self.log.digest, self.fingerprint, self.boot, len(self.log.events)
        )
        root = RootCapability(
            unsigned.root_id,
            unsigned.issuer,
            unsigned.measurement,
            unsigned.boot,
            unsigned.logical_timestamp,
            signature=self._key.sign(unsigned.payload(), context=_ROOT_CONTEXT),
        )
        self.log.extend("root", ROOT_COMPONENT, hashlib.sha256(root.payload()).hexdigest())
        self.log.close()
        self._root = root
        self._authority = TokenAuthority(self._key)
        return root

    @property
    def root(self) -> RootCapability:
        """The active capability root; BOOT_NOT_MEASURED before :meth:`activate_root`."""
        if self._root is None:
            raise BootError(
                "the capability root is not active (the boot has not completed)",
                code=ErrorCode.BOOT_NOT_MEASURED,
                where="boot",
            )
        return self._root

    def authority(self) -> TokenAuthority:
        """The node's capability authority, issued under the active root (signing with the
        node key); BOOT_NOT_MEASURED before the root is active."""
        self.root  # noqa: B018 - raises unless the root is active
        assert self._authority is not None
        return self._authority

    def quote(self, nonce: bytes | None = None) -> BootQuote:
        """The signed quote of this boot, with the verifier's ``nonce`` (at most
        :data:`NONCE_BYTES_MAX` bytes)."""
        self.root  # noqa: B018 - a quote is of a completed boot only
        return BootQuote.sign(self._key, self.boot, self.log.events, nonce)


def measure_kernel(boot: MeasuredBoot, root: Path | None = None) -> None:
    """The ``kernel`` stage: the package at ``root`` (default: the installed ``xdv``), one
    component per subpackage (``xdv/NAME``) and ``xdv/*`` for its top-level files (compiled
    caches and hidden files left out), then the ``runtime`` component."""
    root = root if root is not None else Path(__file__).resolve().parents[1]
    groups: dict[str, list[Path]] = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if (
            not path.is_file()
            or "__pycache__" in relative.parts
            or path.suffix in (".pyc", ".pyo")
            or any(part.startswith(".") for part in relative.parts)
        ):
            continue
        group = f"xdv/{relative.parts[0]}" if len(relative.parts) > 1 else "xdv/*"
        groups.setdefault(group, []).append(path)
    for group in sorted(groups):
        boot.measure("kernel", group, digest=measure_files(root, groups[group]))
    try:
        version = importlib.metadata.version("xdv")
    except importlib.metadata.PackageNotFoundError:
        version = None
    boot.measure(
        "kernel",
        "runtime",
        {
            "python": platform.python_version(),
            "implementation": sys.implementation.name,
            "xdv": version,
        },
    )


def _malformed(message: str) -> BootError:
    return BootError(message, code=ErrorCode.QUOTE_MALFORMED, where="quote")


def _check_nonce(nonce: bytes | None) -> None:
    if nonce is not None and (not isinstance(nonce, bytes) or len(nonce) > NONCE_BYTES_MAX):
        raise BootError(
            f"a nonce is at most {NONCE_BYTES_MAX} bytes",
            code=ErrorCode.INVALID_ARGUMENT,
            where="nonce",
        )


@dataclass(frozen=True, slots=True)
class BootQuote:
    """A signed statement of a node's boot (see the module docstring)."""

    node: str
    public_key: HybridPublicKey = field(repr=False)
    boot: int
    measurements: tuple[BootEvent, ...]
    digest: str
    nonce: bytes | None = None
    signature: bytes = field(default=b"", repr=False)

    @classmethod
    def sign(
        cls,
        key: HybridKeyPair,
        boot: int,
        events: Sequence[BootEvent],
        nonce: bytes | None = None,
    ) -> BootQuote:
        """The quote of ``events`` signed by ``key``."""
        _check_nonce(nonce)
        digest = BootLog.replay(events).digest
        unsigned = cls(key.public.fingerprint, key.public, boot, tuple(events), digest, nonce)
        return cls(
            unsigned.node,
            unsigned.public_key,
            unsigned.boot,
            unsigned.measurements,
            unsigned.digest,
            unsigned.nonce,
            key.sign(unsigned.payload(), context=_QUOTE_CONTEXT),
        )

    def _fields(self) -> dict[str, Any]:
        return {
            "format": QUOTE_FORMAT,
            "version": QUOTE_VERSION,
            "node": self.node,
            "public_key": self.public_key.to_record(),
            "boot": self.boot,
            "measurements": [event.to_record() for event in self.measurements],
            "digest": self.digest,
            "nonce": None if self.nonce is None else self.nonce.hex(),
        }

    def payload(self) -> bytes:
        """The canonical bytes the node key signs: every field but the signature."""
        return canonical_metadata(self._fields())

    def to_document(self) -> dict[str, Any]:
        """The quote as a JSON document (what ``xdv node attest`` writes)."""
        return {**self._fields(), "signature": self.signature.hex()}

    def to_json(self) -> str:
        """The JSON text of :meth:`to_document` (sorted keys, one line)."""
        return json.dumps(self.to_document(), sort_keys=True)

    @classmethod
    def from_document(cls, document: Any) -> BootQuote:
        """A quote read back from :meth:`to_document`; QUOTE_MALFORMED if it is not one."""
        if not isinstance(document, Mapping):
            raise _malformed("a quote is a JSON object")
        expected = {
            "format",
            "version",
            "node",
            "public_key",
            "boot",
            "measurements",
            "digest",
            "nonce",
            "signature",
        }
        if set(document) != expected:
            extra = sorted(set(document) - expected)
            missing = sorted(expected - set(document))
            raise _malformed(f"unexpected fields {extra}, missing fields {missing}")
        if document["format"] != QUOTE_FORMAT or document["version"] != QUOTE_VERSION:
            raise _malformed(
                f"not a {QUOTE_FORMAT} version {QUOTE_VERSION} document "
                f"(format {document['format']!r}, version {document['version']!r})"
            )
        node, digest, boot = document["node"], document["digest"], document["boot"]
        if not isinstance(node, str) or not _DIGEST.match(node):
            raise _malformed("node is not a key fingerprint (hex SHA-256)")
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise _malformed("digest is not a hex SHA-256")
        if type(boot) is not int or boot < 0:
            raise _malformed("boot is not an integer ≥ 0")
        try:
            public = HybridPublicKey.from_record(document["public_key"])
        except XdvError:
            raise _malformed("public_key is not a hybrid public key record") from None
        raw = document["measurements"]
        if not isinstance(raw, list) or len(raw) > EVENTS_MAX:
            raise _malformed(f"measurements is a list of at most {EVENTS_MAX} events")
        events: list[BootEvent] = []
        for index, item in enumerate(raw):
            if not isinstance(item, Mapping) or set(item) != {"stage", "component", "digest"}:
                raise _malformed(f"measurement {index} is not a {{stage, component, digest}}")
            try:
                events.append(BootEvent(item["stage"], item["component"], item["digest"]).check())
            except XdvError as error:
                raise _malformed(f"measurement {index}: {error.message}") from None
        nonce_text, signature_text = document["nonce"], document["signature"]
        if nonce_text is not None and (
            not isinstance(nonce_text, str)
            or not _HEX.match(nonce_text)
            or len(nonce_text) > 2 * NONCE_BYTES_MAX
        ):
            raise _malformed(f"nonce is null or at most {NONCE_BYTES_MAX} bytes of hex")
        if not isinstance(signature_text, str) or not _HEX.match(signature_text):
            raise _malformed("signature is not hex")
        return cls(
            node,
            public,
            boot,
            tuple(events),
            digest,
            None if nonce_text is None else bytes.fromhex(nonce_text),
            bytes.fromhex(signature_text),
        )


def expected_measurements(quote: BootQuote) -> dict[str, Any]:
    """The reference measurements of ``quote`` (every measured stage; the root's activation is
    per boot and left out): what ``xdv node attest --expected-out`` writes."""
    return {
        "format": EXPECTED_FORMAT,
        "version": 1,
        "measurements": [
            event.to_record() for event in quote.measurements if event.stage in MEASURED_STAGES
        ],
    }


def _expected_map(expected: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    if not isinstance(expected, Mapping) or expected.get("format") != EXPECTED_FORMAT:
        raise BootError(
            f"the expected measurements are not an {EXPECTED_FORMAT} document",
            code=ErrorCode.INVALID_ARGUMENT,
            where="expected",
        )
    table: dict[tuple[str, str], str] = {}
    raw = expected.get("measurements")
    if not isinstance(raw, list):
        raise BootError(
            "the expected document's measurements must be a list",
            code=ErrorCode.INVALID_ARGUMENT,
            where="expected",
        )
    for item in raw:
        try:
            event = BootEvent(item["stage"], item["component"], item["digest"]).check()
        except (KeyError, TypeError, XdvError):
            raise BootError(
                f"an expected measurement is malformed: {str(item)[:80]}",
                code=ErrorCode.INVALID_ARGUMENT,
                where="expected",
            ) from None
        table[(event.stage, event.component)] = event.digest
    return table


def _differences(quote: BootQuote, expected: Mapping[str, Any]) -> list[dict[str, str | None]]:
    wanted = _expected_map(expected)
    found = {
        (event.stage, event.component): event.digest
        for event in quote.measurements
        if event.stage in MEASURED_STAGES
    }
    differences: list[dict[str, str | None]] = []
    for key in sorted(set(wanted) | set(found)):
        want, have = wanted.get(key), found.get(key)
        if want == have:
            continue
        kind = "missing" if have is None else "unexpected" if want is None else "changed"
        differences.append(
            {"stage": key[0], "component": key[1], "kind": kind, "expected": want, "found": have}
        )
    return differences


def verify_quote(
    quote: BootQuote | Mapping[str, Any],
    *,
    trusted_key: str | None = None,
    nonce: bytes | None = None,
    expected: Mapping[str, Any] | None = None,
) -> BootQuote:
    """Check a boot quote offline and return it; raise a typed :class:`BootError` at the first
    failure, in this order: form (QUOTE_MALFORMED); the public key hashes to the node named and,
    with ``trusted_key``, is that key (QUOTE_SIGNATURE_INVALID, QUOTE_KEY_UNTRUSTED); the
    signature (QUOTE_SIGNATURE_INVALID); the chain recomputed from the measurement list equals
    the digest and the list is a complete boot in stage order ending with the root's activation
    (QUOTE_CHAIN_MISMATCH); the nonce, when one is required (QUOTE_NONCE_MISMATCH); the
    measurements against ``expected`` (QUOTE_MEASUREMENT_MISMATCH, ``details["differences"]``
    lists each differing component)."""
    if not isinstance(quote, BootQuote):
        quote = BootQuote.from_document(quote)
    if quote.public_key.fingerprint != quote.node:
        raise BootError(
            "the quote's public key is not the key of the node it names",
            code=ErrorCode.QUOTE_SIGNATURE_INVALID,
            where="quote",
        )
    if trusted_key is not None and quote.node != trusted_key.lower():
        raise BootError(
            f"the quote is signed by node key {quote.node[:16]}…, not the trusted key "
            f"{trusted_key[:16]}…",
            code=ErrorCode.QUOTE_KEY_UNTRUSTED,
            where="quote",
        )
    try:
        quote.public_key.verify(quote.payload(), quote.signature, context=_QUOTE_CONTEXT)
    except UnauthorizedError as error:
        raise BootError(
            f"the quote's signature does not verify: {error.message}",
            code=ErrorCode.QUOTE_SIGNATURE_INVALID,
            where="quote",
        ) from None
    try:
        log = BootLog.replay(quote.measurements)
    except XdvError as error:
        raise BootError(
            f"the measurement list is not a boot in stage order: {error.message}",
            code=ErrorCode.QUOTE_CHAIN_MISMATCH,
            where="quote",
        ) from None
    if log.digest != quote.digest:
        raise BootError(
            f"the measurement list chains to {log.digest[:16]}…, not the quoted digest "
            f"{quote.digest[:16]}…",
            code=ErrorCode.QUOTE_CHAIN_MISMATCH,
            where="quote",
        )
    missing = [stage for stage in MEASURED_STAGES if stage not in log.stages()]
    last = quote.measurements[-1] if quote.measurements else None
    if missing or last is None or (last.stage, last.component) != ("root", ROOT_COMPONENT):
        raise BootError(
            "the quote is not of a completed boot (every stage measured, then the capability "
            "root activated)",
            code=ErrorCode.QUOTE_CHAIN_MISMATCH,
            where="quote",
        )
    before = BootLog.replay(quote.measurements[:-1])
    root = RootCapability.unsigned(before.digest, quote.node, quote.boot, len(before.events))
    if last.digest != hashlib.sha256(root.payload()).hexdigest():
        raise BootError(
            "the capability root's activation event is not that of this boot's root (node, "
            "boot number and measurement digest)",
            code=ErrorCode.QUOTE_CHAIN_MISMATCH,
            where="quote",
        )
    if nonce is not None and quote.nonce != nonce:
        shown = "none" if quote.nonce is None else quote.nonce.hex()[:16]
        raise BootError(
            f"the quote carries nonce {shown}, not the one asked for ({nonce.hex()[:16]})",
            code=ErrorCode.QUOTE_NONCE_MISMATCH,
            where="quote",
        )
    if expected is not None:
        differences = _differences(quote, expected)
        if differences:
            listed = "; ".join(
                f"{item['stage']}/{item['component']} {item['kind']}" for item in differences
            )
            raise BootError(
                f"{len(differences)} measurement(s) differ from the expected: {listed}",
                code=ErrorCode.QUOTE_MEASUREMENT_MISMATCH,
                where="quote",
                differences=differences,
            )
    return quote
