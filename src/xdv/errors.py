"""XDV's error taxonomy: typed operating errors with stable codes, and the invariant helper.

Two kinds of failure exist and they are handled differently:

* **Operating errors** are expected: a process asks for a domain it may not use, a resource pool
  is exhausted, a contract has expired, a trace file is torn. They are instances of
  :class:`XdvError` (or a subclass), carry a stable :class:`ErrorCode`, are recorded in the trace
  as the outcome status of the event that failed, and are handed back to whoever asked.
* **Programmer errors** (a broken internal invariant) crash loudly through :func:`invariant`,
  which raises :class:`InvariantViolation`. Unlike ``assert`` it cannot be switched off with
  ``python -O``.

The numeric value of each code is part of the trace format (it is stored in the outcome-status
field of an entry) and therefore never changes once released; new codes only get new numbers.
The full table lives in ``docs/errors.md``.
"""

from __future__ import annotations

import enum
import re
from typing import Any, NoReturn

__all__ = [
    "ContractError",
    "DomainError",
    "ErrorCode",
    "InvariantViolation",
    "LifecycleError",
    "ReplayDivergence",
    "ResourceError",
    "TraceError",
    "UnauthorizedError",
    "WorkloadError",
    "XdvError",
    "as_typed",
    "describe_exception",
    "invariant",
    "safe_repr",
]


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")


class ErrorCode(enum.IntEnum):
    """Stable error codes. The integer is stored in traces; the name is what users read."""

    OK = 0
    # Authority and capabilities (1xx).
    DOMAIN_UNAUTHORIZED = 100
    CAPABILITY_INVALID = 101
    CAPABILITY_REVOKED = 102
    CAPABILITY_EXPIRED = 103
    SIGNATURE_INVALID = 104
    ATTENUATION_WIDENS = 105
    ATTESTATION_FAILED = 106
    DOMAIN_FROZEN = 107
    KEY_CONFIRMATION_FAILED = 108
    KEY_STORE_INVALID = 109
    OPERATOR_ONLY = 110
    PROVIDER_KEY_MISMATCH = 111
    # Contracts and resources (2xx).
    CONTRACT_INVALID = 200
    CONTRACT_EXPIRED = 201
    RESOURCE_EXHAUSTED = 202
    RESOURCE_UNKNOWN = 203
    ADMISSION_TIMEOUT = 204
    # Domains and providers (3xx).
    DOMAIN_UNAVAILABLE = 300
    DOMAIN_NOT_BOUND = 301
    DOMAIN_FAULT = 302
    OPERATION_UNSUPPORTED = 303
    # Process model (4xx).
    LIFECYCLE_VIOLATION = 400
    PROCESS_UNKNOWN = 401
    PROCESS_FAULT = 402
    SYSCALL_INVALID = 403
    LIMIT_EXCEEDED = 404
    PROCESS_INVALID = 405
    DEADLOCK = 406
    RUN_INTERRUPTED = 407
    # Virtual hybrid machines (41x).
    VHM_UNKNOWN = 410
    VHM_INVALID = 411
    VHM_QUOTA_EXCEEDED = 412
    VHM_NESTING_INVALID = 413
    VHM_ISOLATION = 414
    VHM_NOT_EMPTY = 415
    VHM_TERMINATED = 416
    VHM_SNAPSHOT_INVALID = 417
    # Scheduler (42x).
    POLICY_INVALID = 420
    DEADLINE_INVALID = 421
    SCHEDULER_INVARIANT = 422
    # Inter-process communication: channels and messages (43x).
    CHANNEL_UNKNOWN = 430
    CHANNEL_CLOSED = 431
    CHANNEL_TIMEOUT = 432
    MESSAGE_INVALID = 433
    MESSAGE_DOMAIN_STATE = 434
    CHANNEL_CATEGORY = 435
    CHANNEL_ISOLATED = 436
    CHANNEL_INVALID = 437
    # The simulator (44x).
    SIM_PLAN_INVALID = 440
    # Transitions (5xx).
    TRANSITION_FAILED = 500
    INJECTED_FAULT = 501
    FAULT_PLAN_INVALID = 502
    DOMAIN_QUARANTINED = 503
    NODE_PANIC = 505
    RECOVERY_EXHAUSTED = 506
    MEASUREMENT_TIMEOUT = 507
    MEASUREMENT_INVALID = 508
    PHI_INTEGRITY_FAILED = 509
    # Trace and replay (6xx).
    TRACE_CORRUPT = 600
    TRACE_TORN = 601
    TRACE_VERSION = 602
    TRACE_UNENCODABLE = 603
    TRACE_INCOMPLETE = 604
    TRACE_IO = 605
    REPLAY_DIVERGED = 610
    REPLAY_INPUT_CHANGED = 611
    CHECKPOINT_INVALID = 620
    AUDIT_PROOF_INVALID = 621
    TRACE_IN_USE = 622
    # Workloads and usage (7xx).
    WORKLOAD_INVALID = 700
    INVALID_ARGUMENT = 701
    OUTPUT_FAILED = 702
    INPUT_LIMIT_EXCEEDED = 703
    INPUT_DECODE_FAILED = 704
    INPUT_NOT_REGULAR = 705
    # Isolated workloads (706-712).
    WORKER_LIMITS_INVALID = 706
    WORKER_START_FAILED = 707
    WORKER_DIED = 708
    WORKER_LIMIT_EXCEEDED = 709
    WORKER_PROTOCOL = 710
    WORKER_REFUSED = 711
    # Q domain (8xx).
    NO_CLONING_VIOLATION = 800
    DECOHERENCE_EXCEEDED = 801
    CALIBRATION_EXPIRED = 802
    CALIBRATION_INVALID = 803
    MEASUREMENT_RATE_EXCEEDED = 804
    CIRCUIT_INVALID = 805
    Q_PROVIDER_FAILED = 806
    # Q interfaces: Qiskit primitives and provider adapters (81x-82x).
    Q_PUB_INVALID = 810
    Q_ADAPTER_FAILED = 811
    # Φ domain (9xx).
    PHI_ERR_COHERENCE_TIMEOUT = 900
    PHI_ERR_STABILITY_BREACH = 901
    PHI_ERR_UNAUTHORIZED_MUTATION = 902
    PHI_ERR_ENVELOPE_ALIASING = 903
    PHI_ERR_RAW_PHASE_ACCESS = 904
    PHI_ERR_INADMISSIBLE = 905
    PHI_ERR_WINDOW_CONFLICT = 906
    PHI_ERR_ENVELOPE_INVALID = 907
    PHI_ERR_PROBLEM_INVALID = 908
    PHI_ERR_WITNESS_INVALID = 909
    PHI_ERR_PROVIDER_FAILED = 910
    PHI_ERR_WITNESS_UNVERIFIABLE = 911
    # DPL toolchain (10xx).
    DPL_SYNTAX = 1000
    DPL_CHECK = 1001
    DPL_RUNTIME = 1002
    DPL_ADMISSIBILITY = 1003
    DPL_CONTRACT_VIOLATION = 1004
    DPL_DIR_INVALID = 1005
    DPL_LIMIT_EXCEEDED = 1006
    # Node service (11xx).
    SERVICE_UNAUTHENTICATED = 1100
    SERVICE_FORBIDDEN = 1101
    SERVICE_TENANT_UNKNOWN = 1102
    SERVICE_TENANT_EXISTS = 1103
    SERVICE_JOB_UNKNOWN = 1104
    SERVICE_KIND_UNKNOWN = 1105
    SERVICE_REQUEST_INVALID = 1106
    SERVICE_BODY_TOO_LARGE = 1107
    SERVICE_RATE_LIMITED = 1108
    SERVICE_QUEUE_FULL = 1109
    SERVICE_IDEMPOTENCY_CONFLICT = 1110
    SERVICE_JOB_FINISHED = 1111
    SERVICE_UNAVAILABLE = 1112
    SERVICE_ISOLATION_UNAVAILABLE = 1113
    SERVICE_RUNNER_FAILED = 1114
    SERVICE_NOT_FOUND = 1115
    SERVICE_STATE_INVALID = 1116
    SERVICE_TRACE_UNAVAILABLE = 1117
    # Providers: third-party plug-ins (12xx).
    PLUGIN_NOT_FOUND = 1200
    PLUGIN_LOAD_FAILED = 1201
    PLUGIN_FACTORY_FAILED = 1202
    PLUGIN_INVALID = 1203
    PLUGIN_CONFIG_INVALID = 1204
    PLUGIN_VERSION_MISMATCH = 1205
    # Providers: Φ sampler providers, the shipped adapters and plug-ins (121x).
    PHI_SAMPLER_PARAMS_INVALID = 1210
    PHI_PROVIDER_UNAVAILABLE = 1211
    PHI_PROVIDER_INVALID = 1212
    # Cluster: placement, nodes, cluster traces (1300-1319).
    CLUSTER_POLICY_INVALID = 1300
    CLUSTER_NO_NODE = 1301
    CLUSTER_NODE_LOST = 1302
    CLUSTER_JOB_INVALID = 1303
    CLUSTER_TRACE_INVALID = 1304
    CLUSTER_MERGE_MISMATCH = 1305
    CLUSTER_SIGNATURE_INVALID = 1306
    CLUSTER_UNAVAILABLE = 1307
    # Cluster: node identities, membership and the sealed node-to-node transport (1320-1334).
    MEMBERSHIP_NODE_ID_INVALID = 1320
    MEMBERSHIP_IDENTITY_INVALID = 1321
    MEMBERSHIP_INVALID = 1322
    MEMBERSHIP_NODE_UNKNOWN = 1323
    TRANSPORT_HANDSHAKE_INVALID = 1324
    TRANSPORT_EPOCH_MISMATCH = 1325
    TRANSPORT_PEER_UNAUTHENTICATED = 1326
    TRANSPORT_LINK_STATE = 1327
    TRANSPORT_FRAME_MALFORMED = 1328
    TRANSPORT_FRAME_OVERSIZED = 1329
    TRANSPORT_FRAME_MISROUTED = 1330
    TRANSPORT_FRAME_REPLAYED = 1331
    TRANSPORT_FRAME_REORDERED = 1332
    TRANSPORT_FRAME_FORGED = 1333
    TRANSPORT_LINK_EXHAUSTED = 1334
    # Measured boot and boot quotes (152x-153x).
    BOOT_ORDER_VIOLATED = 1520
    BOOT_NOT_MEASURED = 1521
    BOOT_MEASUREMENT_FAILED = 1522
    BOOT_LOG_INVALID = 1523
    QUOTE_MALFORMED = 1524
    QUOTE_SIGNATURE_INVALID = 1525
    QUOTE_KEY_UNTRUSTED = 1526
    QUOTE_CHAIN_MISMATCH = 1527
    QUOTE_NONCE_MISMATCH = 1528
    QUOTE_MEASUREMENT_MISMATCH = 1529
    # Telemetry: metrics, alerts and their export, derived from traces (140x).
    TELEMETRY_THRESHOLDS_INVALID = 1400
    TELEMETRY_FORMAT_UNKNOWN = 1401
    TELEMETRY_EXPORT_FAILED = 1402
    TELEMETRY_ENDPOINT_INVALID = 1403
    TELEMETRY_SNAPSHOT_INVALID = 1404
    # Conformance test suite, `xdv cts` (15xx).
    CTS_CASE_INVALID = 1500
    CTS_CASE_DUPLICATE = 1501
    CTS_FILTER_EMPTY = 1502
    CTS_ADAPTER_FAILED = 1503
    CTS_REPORT_INVALID = 1504
    CTS_REPORT_UNTRUSTED = 1505
    # XDV View (xdv view, the node's /view): the read-only web view of traces (141x).
    VIEW_TRACE_UNREADABLE = 1410
    VIEW_REQUEST_INVALID = 1411
    VIEW_ENTRY_UNKNOWN = 1412
    VIEW_ASSET_MISSING = 1413
    # Cluster consensus: BFT agreement on the cluster's decisions (1335-1349).
    CONSENSUS_MESSAGE_INVALID = 1335
    CONSENSUS_SIGNATURE_INVALID = 1336
    CONSENSUS_NOT_MEMBER = 1337
    CONSENSUS_CERTIFICATE_INVALID = 1338
    CONSENSUS_DECISION_INVALID = 1339
    CONSENSUS_MEMBERS_INVALID = 1340
    CONSENSUS_CONFIG_INVALID = 1341
    CONSENSUS_VALUE_INVALID = 1342
    CONSENSUS_SIMULATION_INVALID = 1343


class XdvError(Exception):
    """Base of every operating error XDV raises. ``code`` is stable; ``where`` says where."""

    default_code: ErrorCode = ErrorCode.INVALID_ARGUMENT

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        where: str | None = None,
        **details: Any,
    ) -> None:
        self.code: ErrorCode = code if code is not None else self.default_code
        # Messages enter traces: memory addresses (which differ from run to run) are masked.
        self.message = _ADDRESS.sub("0x…", message)
        self.where = where
        self.details = details
        super().__init__(self.__str__())

    def __str__(self) -> str:
        location = f" (at {self.where})" if self.where else ""
        return f"{self.code.name}: {self.message}{location}"

    def to_record(self) -> dict[str, Any]:
        """A trace- and JSON-friendly description of the error."""
        record: dict[str, Any] = {"code": self.code.name, "message": self.message}
        if self.where:
            record["where"] = self.where
        return record


class UnauthorizedError(XdvError):
    """A capability check failed: the caller may not do what it asked."""

    default_code = ErrorCode.DOMAIN_UNAUTHORIZED


class ContractError(XdvError):
    """A resource or transition contract is invalid, expired or violated."""

    default_code = ErrorCode.CONTRACT_INVALID


class ResourceError(XdvError):
    """A resource request cannot be satisfied."""

    default_code = ErrorCode.RESOURCE_EXHAUSTED


class DomainError(XdvError):
    """A domain manager or provider refused or failed an operation."""

    default_code = ErrorCode.DOMAIN_FAULT


class LifecycleError(XdvError):
    """An illegal process lifecycle transition was requested."""

    default_code = ErrorCode.LIFECYCLE_VIOLATION


class TraceError(XdvError):
    """A trace file is malformed, corrupt, torn, incomplete or of an unknown version."""

    default_code = ErrorCode.TRACE_CORRUPT

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        where: str | None = None,
        entry_index: int | None = None,
        offset: int | None = None,
        **details: Any,
    ) -> None:
        self.entry_index = entry_index
        self.offset = offset
        super().__init__(message, code=code, where=where, **details)


class ReplayDivergence(XdvError):
    """A replayed run produced a different trace from the recorded one."""

    default_code = ErrorCode.REPLAY_DIVERGED


class WorkloadError(XdvError):
    """A workload target could not be loaded or is not a valid workload."""

    default_code = ErrorCode.WORKLOAD_INVALID


class InvariantViolation(RuntimeError):
    """A broken internal invariant: a programmer error, never an operating condition."""


def invariant(condition: bool, message: str) -> None:
    """Check an internal invariant; always on, unlike ``assert``.

    Raise :class:`InvariantViolation` when ``condition`` is false. Use it for facts that must
    hold if XDV itself is correct, never to validate user input (that gets a typed
    :class:`XdvError`).
    """
    if not condition:
        _fail(message)


def _fail(message: str) -> NoReturn:
    raise InvariantViolation(f"XDV invariant violated: {message}")


_PLAIN_TYPES = (type(None), bool, int, float, str, bytes)
_REPR_CHARS_MAX = 80


def describe_exception(error: BaseException) -> str:
    """``Type: message`` for an exception raised by user or provider code, fit for a trace.

    Memory addresses (``0x7f…``) are masked: the same failure must produce the same bytes in
    every run, and an object's default repr differs from run to run.
    """
    return f"{type(error).__name__}: {_ADDRESS.sub('0x…', str(error))}"


def safe_repr(value: Any) -> str:
    """A deterministic, bounded repr: plain values as themselves, anything else by type name."""
    if isinstance(value, _PLAIN_TYPES):
        text = repr(value)
        if len(text) > _REPR_CHARS_MAX:
            text = text[: _REPR_CHARS_MAX - 1] + "…"
        return text
    return f"<{type(value).__name__}>"


def as_typed(error: Exception, code: ErrorCode, context: str, where: str) -> XdvError:
    """``error`` itself if it is already typed, else an :class:`XdvError` with ``code`` that
    says ``context: Type: message`` (addresses masked): how a failure of user or provider code
    becomes an operating error without losing what happened."""
    if isinstance(error, XdvError):
        return error
    return XdvError(f"{context}: {describe_exception(error)}", code=code, where=where)
