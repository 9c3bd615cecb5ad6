"""The facts the spec profile states are the code's facts.

A test that cites a clause checks the behaviour the clause describes; it keeps passing when the
clause's text drifts away from the code (a clause once named a trace format version the code no
longer wrote). The tests here read the checkable facts out of the clause text itself (versions,
sizes, field layouts, limits, code numbers, exit codes, the names of events, errors, operations
and interface methods) and compare them with the code, so a clause that drifts fails.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import re
import struct
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from helpers import EXAMPLES, ROOT, xdv
from xdv import Kernel, run_workload
from xdv.core import DomainManager, KDomainManager, Operation, ProcessState
from xdv.errors import ErrorCode, XdvError
from xdv.syscalls import Bind, Invoke, Release, Reserve, Revoke, Self, Sleep
from xdv.trace import (
    FORMAT_VERSION,
    HEADER,
    PREAMBLE,
    Domain,
    EventType,
    TraceEntry,
    canonical_metadata,
    read_trace,
)

SPEC = ROOT / "docs" / "spec"
CLAUSE = re.compile(r"^- \*\*(XDV-\d{3}-[0-9.]+)\*\* — (.*)$", re.MULTILINE)
STRUCT_CODES = {"8": "B", "16": "H", "32": "I", "64": "Q"}
SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def clause(clause_id: str) -> str:
    """The text of one clause (its bullet line)."""
    for path in sorted(SPEC.glob("XDV-*.md")):
        for found_id, text in CLAUSE.findall(path.read_text(encoding="utf-8")):
            if found_id == clause_id:
                return str(text)
    raise AssertionError(f"no clause {clause_id} in docs/spec")


def stated(pattern: str, text: str, what: str) -> re.Match[str]:
    found = re.search(pattern, text)
    assert found is not None, f"the clause no longer states {what} in a form this test reads"
    return found


def stated_entry_hash(text: str) -> Callable[[bytes], bytes]:
    """The entry hash as the clause defines it, over a frame without its check."""
    found = stated(
        r"SHA-256 of (the byte 0x([0-9a-fA-F]{2}) followed by )?its length and body",
        text,
        "how an entry is hashed",
    )
    prefix = bytes.fromhex(found[2]) if found[1] else b""
    return lambda frame: hashlib.sha256(prefix + frame).digest()


@pytest.fixture(scope="module")
def written_trace(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A trace as the code writes it now."""
    path = tmp_path_factory.mktemp("facts") / "ping_pong.xdvt"
    assert run_workload(str(EXAMPLES / "ping_pong.py"), seed=3, trace=path).ok
    return path.read_bytes()


def frames(data: bytes, preamble_size: int, check_size: int) -> list[tuple[bytes, bytes, bytes]]:
    """(length bytes, body, check) of every frame, read by the clause's framing."""
    found, offset = [], preamble_size
    while offset < len(data):
        (length,) = struct.unpack_from("<I", data, offset)
        body = data[offset + 4 : offset + 4 + length]
        check = data[offset + 4 + length : offset + 4 + length + check_size]
        found.append((data[offset : offset + 4], body, check))
        offset += 4 + length + check_size
    assert offset == len(data)
    return found


@pytest.mark.spec("XDV-071-3.1")
@pytest.mark.spec("XDV-005-6.4")
def test_the_trace_framing_the_clauses_state_is_what_the_code_writes(written_trace: bytes) -> None:
    text = clause("XDV-071-3.1")
    version = int(stated(r"format version (\d+)", text, "the format version")[1])
    assert version == FORMAT_VERSION, "XDV-071-3.1 names another format version than the code"
    preamble_size = int(stated(r"(\d+)-byte preamble", text, "the preamble size")[1])
    magic = stated(r"magic bytes `([^`]+)`", text, "the magic bytes")[1].encode()
    check_size = int(stated(r"(\d+)-byte check", text, "the check size")[1])
    preamble = magic + struct.pack("<HH", version, 0)  # version u16, flags u16 zero
    assert len(preamble) == preamble_size and preamble == PREAMBLE
    assert written_trace.startswith(preamble)

    for clause_id in ("XDV-071-3.1", "XDV-005-6.4"):
        entry_hash = stated_entry_hash(clause(clause_id))
        previous = hashlib.sha256(preamble).digest()  # the first entry links to the preamble
        read = frames(written_trace, preamble_size, check_size)
        assert len(read) > 3
        for length, body, check in read:
            assert body[HEADER.size - 32 : HEADER.size] == previous, clause_id
            previous = entry_hash(length + body)
            assert check == previous[:check_size], clause_id


@pytest.mark.spec("XDV-071-3.2")
def test_the_entry_header_and_metadata_limit_are_as_stated() -> None:
    text = clause("XDV-071-3.2")
    size = int(stated(r"fixed (\d+)-byte", text, "the header size")[1])
    assert size == HEADER.size
    fields = stated(r"header \((.*?)\) followed", text, "the header fields")[1]
    layout = "".join(
        STRUCT_CODES[bits] if bits else f"{count}s"
        for bits, count in re.findall(r"\bu(8|16|32|64)\b|(\d+) bytes", fields)
    )
    assert "<" + layout == HEADER.format
    amount, unit = stated(r"at most (\d+) (MiB|KiB)", text, "the metadata limit").groups()
    limit = int(amount) << (20 if unit == "MiB" else 10)
    # {"b": bytes(n)} encodes as 1 (map) + 2 (key) + 5 (byte string head) + n bytes.
    assert len(canonical_metadata({"b": bytes(limit - 8)})) == limit
    with pytest.raises(XdvError) as raised:
        canonical_metadata({"b": bytes(limit - 7)})
    assert raised.value.code is ErrorCode.TRACE_UNENCODABLE


@pytest.mark.spec("XDV-071-3.3")
def test_the_integer_range_is_as_stated() -> None:
    text = clause("XDV-071-3.3").translate(SUPERSCRIPTS).replace("−", "-")
    low, high = stated(r"integers in \[(-?)2(\d+), 2(\d+)\)", text, "the integer range").groups()[
        1:
    ]
    smallest, beyond = -(2 ** int(low)), 2 ** int(high)
    for value in (smallest, beyond - 1):
        canonical_metadata({"i": value})
    for value in (smallest - 1, beyond):
        with pytest.raises(XdvError) as raised:
            canonical_metadata({"i": value})
        assert raised.value.code is ErrorCode.TRACE_UNENCODABLE
    with pytest.raises(XdvError):
        canonical_metadata({"f": float("nan")})


def emitted_event_types() -> set[str]:
    """Event types some code of the system records (referenced outside their definition)."""
    source = "\n".join(
        path.read_text(encoding="utf-8")
        for path in sorted((ROOT / "src" / "xdv").rglob("*.py"))
        if not path.name.endswith("_test.py") and path.name != "_events.py"
    )
    return {event.name for event in EventType if re.search(rf"\.{event.name}\b", source)}


@pytest.mark.spec("XDV-005-3.1")
def test_the_reserved_event_codes_are_exactly_those_nothing_emits() -> None:
    text = (SPEC / "XDV-005.md").read_text(encoding="utf-8")
    sentence = stated(r"- ((?:`[A-Z_]+`[,\sand]*)+) are reserved codes", text, "the reserved codes")
    reserved = set(re.findall(r"`([A-Z_]+)`", sentence[1]))
    assert reserved == {event.name for event in EventType} - emitted_event_types()
    table = (ROOT / "docs" / "trace-format.md").read_text(encoding="utf-8")
    marked = set(re.findall(r"^\| *\d+ *\| *([A-Z_]+) *\| *reserved", table, re.MULTILINE))
    assert marked == reserved, "docs/trace-format.md marks other codes reserved"


@pytest.mark.spec("XDV-011-3.1")
def test_the_manager_interface_has_exactly_the_stated_operations() -> None:
    text = clause("XDV-011-3.1")
    named = stated(r"named by its `(\w+)` and the operations (.*?); the kernel", text, "them")
    operations = set(re.findall(r"`(\w+)`", named[2]))
    declared = {
        name
        for name, member in vars(DomainManager).items()
        if not name.startswith("_") and callable(member)
    }
    assert operations == declared
    assert named[1] in inspect.get_annotations(DomainManager)


def test_the_default_quantum_is_as_stated() -> None:
    notes = (SPEC / "XDV-005.md").read_text(encoding="utf-8")
    quantum = int(stated(r"`quantum` consecutive steps \((\d+) by default\)", notes, "it")[1])
    assert inspect.signature(Kernel).parameters["quantum"].default == quantum
    assert inspect.signature(run_workload).parameters["quantum"].default == quantum


@pytest.mark.spec("XDV-061-10.1")
def test_error_code_numbers_stated_in_clauses_are_the_codes_values() -> None:
    checked = 0
    for path in sorted(SPEC.glob("XDV-*.md")):
        text = path.read_text(encoding="utf-8")
        for name, number in re.findall(r"`([A-Z][A-Z0-9_]+)` (\d+)\b", text):
            assert name in ErrorCode.__members__, f"{path.name}: {name}"
            assert ErrorCode[name] == int(number), f"{path.name}: {name} is not {number}"
            checked += 1
    assert checked >= 2
    text = clause("XDV-061-10.1")
    hundreds = int(stated(r"in the (\d)xx range", text, "the Φ code range")[1])
    phi = [code for code in ErrorCode if code.name.startswith("PHI_ERR_")]
    assert phi and all(code // 100 == hundreds for code in phi)
    first, last = stated(r"\(`(\w+)` \d+ to `(\w+)` \d+\)", text, "the first and last").groups()
    assert (min(phi).name, max(phi).name) == (first, last)


INADMISSIBLE = """forge split {
    proc Φ::split(total: i64) -> Witness uses envelope(window = 16) {
        let a = phi::int(0, 100);
        let b = phi::int(0, 100);
        constrain a + b == total;
        constrain a == 3 * b;
        prove w from a;
        return w;
    }

    proc K::main() {
        emit "before";
        let w = Φ::split(41);
        emit "split {w.a}";
    }

    bind K::main -> Φ::split contract {
        witness_transfer == true;
        latency_us <= 64;
        record == true;
    }
}
"""


@pytest.mark.spec("XDV-052-8")
def test_dpl_failures_exit_with_the_stated_codes(tmp_path: Path) -> None:
    pytest.importorskip("ortools")
    text = clause("XDV-052-8")
    stated_exits = {name: int(code) for name, code in re.findall(r"`(\w+)`, exit (\d+)", text)}
    inadmissible = tmp_path / "inadmissible.ds"
    inadmissible.write_text(INADMISSIBLE, encoding="utf-8")
    corpus = ROOT / "tests" / "dpl"
    programs = {
        "DPL_RUNTIME": corpus / "effects" / "fail_before_effect.ds",
        "DPL_CONTRACT_VIOLATION": corpus / "time" / "latency_unmeetable.ds",
        "DPL_ADMISSIBILITY": inadmissible,
    }
    assert set(stated_exits) == set(programs)
    for name, program in programs.items():
        done = xdv("run", str(program), "--json")
        assert done.returncode == stated_exits[name], (name, done.stdout, done.stderr)
        assert name in done.stdout + done.stderr


def upstream_capability_kind(name: str) -> bool:
    """A capability kind of the corpus (``EXECUTE_Q``, ``ALLOCATE_DOMAIN_RESOURCE``) that
    XDV-002-8.1 maps onto one of XDV's operations."""
    return name.split("_")[0] in Operation.__members__ and name in clause("XDV-002-8.1")


def dpl_diagnostic_codes() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "src" / "xdv" / "dpl").glob("*.py"):
        found.update(re.findall(r"""["']([A-Z]\d{3})["']""", path.read_text(encoding="utf-8")))
    return found


def test_every_code_name_the_spec_mentions_exists() -> None:
    known = (
        set(ErrorCode.__members__)
        | set(EventType.__members__)
        | set(Operation.__members__)
        | set(ProcessState.__members__)
        | dpl_diagnostic_codes()
    )
    unknown = []
    for path in sorted(SPEC.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        names = set(re.findall(r"`([A-Z][A-Z0-9_]+)[`(]", text))
        for name in sorted(names - known):
            if not upstream_capability_kind(name) and PREAMBLE[: len(name)] != name.encode():
                unknown.append(f"{path.name}: {name}")
    assert unknown == []


# ---------------------------------------------------------------- XDV-080 and XDV-081


@pytest.mark.spec("XDV-080-3")
def test_the_reference_kernel_parts_are_the_stated_modules() -> None:
    parts = re.findall(r"`([a-z_/]+\.py)` \(`(\w+)`\)", clause("XDV-080-3"))
    assert len(parts) >= 10, "the clause no longer lists the kernel's modules in a readable form"
    for path, name in parts:
        assert (ROOT / "src" / "xdv" / path).is_file(), path
        module = importlib.import_module("xdv." + path.removesuffix(".py").replace("/", "."))
        assert inspect.isclass(getattr(module, name, None)), f"{path} defines no class {name}"


@pytest.mark.spec("XDV-080-4.2")
def test_every_entry_header_carries_the_stated_fields() -> None:
    stated_fields = re.findall(r"\(`(\w+)`", clause("XDV-080-4.2"))
    fields = [field.name for field in dataclasses.fields(TraceEntry)]
    assert stated_fields == fields[: len(stated_fields)]
    # The header is exactly those fields (prev_hash included), in that order.
    assert len(HEADER.unpack(bytes(HEADER.size))) == len(stated_fields)

    def user() -> Generator[Any, Any, None]:
        lane = yield Reserve("K", "lane", 1)
        yield Invoke(lane, "call", (len, "abc"))
        yield Release(lane)

    kernel = Kernel()
    kernel.spawn(user)
    read = read_trace(kernel.run().trace_bytes).entries
    assert [entry.seq for entry in read] == list(range(read[0].seq, read[0].seq + len(read)))
    with_contract = {entry.event_type for entry in read if entry.contract != 0}
    assert with_contract == {
        EventType.RESOURCE_RESERVE,
        EventType.RESOURCE_RELEASE,
        EventType.DOMAIN_INVOKE,
        EventType.DOMAIN_RESULT,
    }
    assert {entry.process for entry in read if entry.contract != 0} == {1}


class _WatchedQ(KDomainManager):
    """The K manager's behaviour under the Q tag, counting every call the kernel makes."""

    domain = Domain.Q

    def __init__(self) -> None:
        super().__init__()
        self.touched: list[str] = []

    def init(self, pid: int) -> dict[str, Any]:
        self.touched.append("init")
        return super().init(pid)

    def request_resources(self, request: Any) -> Any:
        self.touched.append("request_resources")
        return super().request_resources(request)

    def execute(self, invocation: Any) -> Any:
        self.touched.append("execute")
        return super().execute(invocation)


@pytest.mark.spec("XDV-080-6")
def test_a_capability_check_precedes_every_boundary_and_refusals_are_recorded() -> None:
    codes: list[ErrorCode] = []
    watched = _WatchedQ()
    kernel = Kernel(domains=[KDomainManager(), watched])

    def prober() -> Generator[Any, Any, None]:
        info = yield Self()
        try:
            yield Bind("Q")  # no ALLOCATE capability from K to Q
        except XdvError as error:
            codes.append(error.code)
        allocate = next(
            c for c in kernel.authority.held_by(info.pid) if c.operation is Operation.ALLOCATE
        )
        yield Revoke(allocate.id)
        try:
            yield Reserve("K", "lane", 1)
        except XdvError as error:
            codes.append(error.code)

    kernel.spawn(prober)
    result = kernel.run()
    assert codes == [ErrorCode.DOMAIN_UNAUTHORIZED, ErrorCode.CAPABILITY_REVOKED]
    assert watched.touched == []  # the refused bind never reached the manager
    statuses = {
        (entry.event_type, entry.status) for entry in read_trace(result.trace_bytes).entries
    }
    assert (EventType.DOMAIN_BIND, ErrorCode.DOMAIN_UNAUTHORIZED) in statuses
    assert (EventType.RESOURCE_RESERVE, ErrorCode.CAPABILITY_REVOKED) in statuses


@pytest.mark.spec("XDV-080-13")
def test_the_verification_points_are_plain_data_and_functions() -> None:
    from xdv.core import LEGAL_TRANSITIONS, RoundRobinPolicy, SchedulerPolicy
    from xdv.runtime import check_state

    text = clause("XDV-080-13")
    for name in ("xdv.core.LEGAL_TRANSITIONS", "key", "xdv.runtime.check_state"):
        assert f"`{name}`" in text
    assert set(LEGAL_TRANSITIONS) == set(ProcessState)
    assert all(isinstance(after, frozenset) for after in LEGAL_TRANSITIONS.values())
    assert callable(SchedulerPolicy.key) and callable(RoundRobinPolicy().key)

    manager = KDomainManager()
    kernel = Kernel(domains=[manager])
    seen: list[Any] = []

    def holder() -> Generator[Any, Any, None]:
        lane = yield Reserve("K", "lane", 1)
        seen.append(check_state(kernel, {Domain.K: manager}))
        yield Release(lane)

    kernel.spawn(holder)
    assert kernel.run().ok and seen == [None]


@pytest.mark.spec("XDV-081-4.2")
def test_the_runtime_lifecycle_states_are_the_kernels() -> None:
    states = re.findall(r"`([A-Z]+)`", clause("XDV-081-4.2"))
    assert states[: len(ProcessState)] == [state.name for state in ProcessState]
    assert "XDV-020-6" in clause("XDV-081-4.2")


@pytest.mark.spec("XDV-081-6")
@pytest.mark.spec("XDV-081-12")
def test_an_invocation_needs_a_live_contract_of_the_caller() -> None:
    manager = KDomainManager()
    kernel = Kernel(domains=[manager], quantum=1)
    codes: list[ErrorCode] = []

    def caller() -> Generator[Any, Any, None]:
        lane = yield Reserve("K", "lane", 1)
        yield Release(lane)
        for handle in (lane, "lane", 1):
            try:
                yield Invoke(handle, "call", (len, "abc"))
            except XdvError as error:
                codes.append(error.code)
        soon = yield Reserve("K", "lane", 1, duration=1)
        yield Sleep(3)
        try:
            yield Invoke(soon, "call", (len, "abc"))
        except XdvError as error:
            codes.append(error.code)

    kernel.spawn(caller)
    result = kernel.run()
    assert codes == [ErrorCode.CONTRACT_INVALID] * 3 + [ErrorCode.CONTRACT_EXPIRED]
    assert result.ok and manager.calls == 0
    refused = [
        entry.status
        for entry in read_trace(result.trace_bytes).entries
        if entry.status in (ErrorCode.CONTRACT_INVALID, ErrorCode.CONTRACT_EXPIRED)
    ]
    assert refused == codes  # each refusal is recorded, in order
    again = Kernel(domains=[KDomainManager()], quantum=1)
    again.spawn(caller)
    assert again.run().trace_bytes == result.trace_bytes  # the refusals replay byte for byte
