"""The process-side handle of a Q container: move-only, never copied, never serialized.

A K anchor works with Q through a :class:`QHandle`::

    handle = yield from QHandle.reserve(3, calibration="fake_manila")
    result = yield from handle.run(circuit_text, shots=1000)   # counts, via measurement
    yield from handle.release()

The handle is the only name of the container in the process. It can be *moved*
(:meth:`QHandle.move` gives a new handle and kills the old one), and handed to another process
only by an explicit, recorded transfer (:meth:`QHandle.transfer`, taken up on the other side with
:meth:`QHandle.adopt`); every other way of duplicating or exporting it is refused with
NO_CLONING_VIOLATION: ``copy.copy``, ``copy.deepcopy``, pickling, serializing it into a trace
(emitting it, returning it, passing it in a K call or a transition), snapshotting it, passing
it to another process (``Spawn`` arguments, or using it from a process
that does not own it), and asking it for amplitudes. Refusals raised inside a system call are
recorded as that call's failure; refusals of Python-level copies are recorded by the Q manager
(a ``refusal`` invocation) at the handle's next operation, before that operation runs.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, NoReturn

from xdv.core import ResourceContract
from xdv.domains.q._circuit import NoCloningViolation, circuit_to_text
from xdv.errors import DomainError, ErrorCode, XdvError
from xdv.syscalls import Contracts, Invoke, Release, Reserve, Self, Transfer

__all__ = ["QHandle"]

Steps = Generator[Any, Any, Any]


class QHandle:
    """A move-only handle to one Q container (see the module documentation)."""

    __slots__ = ("_contract", "_live", "_owner", "_pending")

    def __init__(self, contract: ResourceContract, owner: int) -> None:
        if not isinstance(contract, ResourceContract) or contract.resource != "qubits":
            raise XdvError("a QHandle wraps a Q 'qubits' contract", where="QHandle")
        self._contract = contract
        self._owner = owner
        self._live = True
        self._pending: list[str] = []

    @classmethod
    def reserve(cls, qubits: int, **terms: Any) -> Generator[Any, Any, QHandle]:
        """Reserve a container of ``qubits`` logical qubits (``terms`` as in the Q manager)."""
        info = yield Self()
        contract = yield Reserve("Q", "qubits", qubits, terms=terms)
        return cls(contract, info.pid)

    # ------------------------------------------------------------------ operations

    @property
    def contract_id(self) -> int:
        """The id of the resource contract behind the handle."""
        return self._contract.id

    @property
    def terms(self) -> dict[str, Any]:
        """The contract's granted terms (provider, calibration, mapping, budget, ...)."""
        return dict(self._contract.terms)

    def _check(self) -> Steps:
        if not self._live:
            raise NoCloningViolation(
                "this QHandle was moved or released; use the handle it was moved to",
                where=f"contract {self._contract.id}",
            )
        info = yield Self()
        if info.pid != self._owner:
            self._pending.insert(0, "foreign-process")
        yield from self._flush()

    def _flush(self) -> Steps:
        """Report refused attempts to the Q manager, which records and refuses each."""
        while self._pending:
            kind = self._pending.pop(0)
            try:
                yield Invoke(self._contract, "refusal", (kind,))
            except DomainError as error:
                if error.code is not ErrorCode.NO_CLONING_VIOLATION:
                    raise
                if kind == "foreign-process":
                    raise
            except XdvError as error:
                if kind == "foreign-process":
                    raise NoCloningViolation(
                        f"a QHandle of process {self._owner} was used by another process",
                        where=f"contract {self._contract.id}",
                    ) from error
                raise

    def run(self, circuit: Any, shots: int = 1024) -> Generator[Any, Any, dict[str, Any]]:
        """Submit a job (OpenQASM 2/3 text or a ``QuantumCircuit``); return its result dict."""
        yield from self._check()
        if not isinstance(circuit, str):
            circuit = circuit_to_text(circuit, f"contract {self._contract.id}")
        result: dict[str, Any] = yield Invoke(self._contract, "run", (circuit, shots))
        return result

    def recalibrate(self) -> Generator[Any, Any, dict[str, Any]]:
        """Ask for a fresh calibration contract (the provider is re-attested first)."""
        yield from self._check()
        result: dict[str, Any] = yield Invoke(self._contract, "recalibrate", ())
        return result

    def release(self) -> Steps:
        """Destroy the container and kill the handle."""
        yield from self._check()
        self._live = False
        yield Release(self._contract)

    def transfer(self, to: int) -> Steps:
        """Hand the container to process ``to`` under an explicit, recorded transfer (the
        kernel's ``Transfer``: the receiver must be bound to Q and hold ALLOCATE(K→Q)); this
        handle is dead afterwards. The receiver takes it up with :meth:`adopt`."""
        yield from self._check()
        yield Transfer(self._contract, to)
        self._live = False

    @classmethod
    def adopt(cls, contract_id: int) -> Generator[Any, Any, QHandle]:
        """The handle for Q container contract ``contract_id``, transferred to this process
        (the receiving side of :meth:`transfer`); CONTRACT_INVALID if it holds no such
        contract. Ownership is the kernel's: only the owning process can use the contract."""
        info = yield Self()
        contracts = yield Contracts("Q")
        for contract in contracts:
            if contract.id == contract_id and contract.resource == "qubits":
                return cls(contract, info.pid)
        raise XdvError(
            f"process {info.pid} holds no Q container contract {contract_id}",
            code=ErrorCode.CONTRACT_INVALID,
            where=f"process {info.pid}",
        )

    def move(self) -> QHandle:
        """Move the container to a new handle; this one is dead afterwards."""
        if not self._live:
            self._refuse("move a dead handle of")
        moved = QHandle(self._contract, self._owner)
        moved._pending = self._pending
        self._live = False
        self._pending = []
        return moved

    # ------------------------------------------------------------------ refusals

    def _refuse(self, action: str, kind: str | None = None) -> NoReturn:
        if kind is not None:
            self._pending.append(kind)
        raise NoCloningViolation(
            f"cannot {action} a Q container: Q state is never duplicated or exported",
            where=f"contract {self._contract.id}",
        )

    def __copy__(self) -> NoReturn:
        self._refuse("copy", "copy")

    def __deepcopy__(self, memo: Any) -> NoReturn:
        self._refuse("deep-copy", "deepcopy")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        self._refuse("pickle", "pickle")

    def __reduce__(self) -> NoReturn:
        self._refuse("pickle", "pickle")

    def __getstate__(self) -> NoReturn:
        self._refuse("serialize", "serialize")

    def snapshot(self) -> NoReturn:
        """Always refused: snapshots exclude Q state."""
        self._refuse("snapshot", "snapshot")

    def statevector(self) -> NoReturn:
        """Always refused: amplitudes never leave the provider."""
        self._refuse("read the amplitudes of", "amplitudes")

    amplitudes = statevector
    density_matrix = statevector

    def __array__(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse("read the amplitudes of", "amplitudes")

    def __xdv_refusal__(self, context: str) -> XdvError:
        """The error the kernel raises when the handle would enter a trace or another process
        (the kernel records it as the failure of the system call that tried)."""
        return NoCloningViolation(
            f"a Q container handle cannot be {context}: Q state is never serialized or shared",
            where=f"contract {self._contract.id}",
        )

    def __repr__(self) -> str:
        state = "live" if self._live else "dead"
        return f"<QHandle contract={self._contract.id} ({state})>"
