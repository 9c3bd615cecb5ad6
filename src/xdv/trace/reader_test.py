from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdv.core import Kernel
from xdv.errors import ErrorCode, TraceError
from xdv.syscalls import Emit, Sleep
from xdv.trace import read_trace, scan_trace, verify_trace
from xdv.trace._format import CHECK_SIZE, FRAME_LENGTH, PREAMBLE, encode_trace

pytestmark = pytest.mark.spec("XDV-071-8")


def sample_trace() -> bytes:
    def talker(count: int):
        for index in range(count):
            yield Emit({"i": index, "text": "hello" * (index % 3)})
            yield Sleep(1)

    kernel = Kernel(seed=3)
    kernel.spawn(talker, 6)
    kernel.spawn(talker, 4)
    result = kernel.run()
    assert result.trace_bytes is not None
    return result.trace_bytes


TRACE = sample_trace()


def frame_offsets(data: bytes) -> list[int]:
    offsets, offset = [], len(PREAMBLE)
    while offset < len(data):
        offsets.append(offset)
        (length,) = FRAME_LENGTH.unpack_from(data, offset)
        offset += FRAME_LENGTH.size + length + CHECK_SIZE
    return offsets


def test_clean_trace_verifies() -> None:
    report = verify_trace(TRACE)
    assert report.ok and report.complete and report.entries == len(frame_offsets(TRACE))


@pytest.mark.spec("XDV-071-3.1")
@given(st.integers(0, len(TRACE) - 1))
def test_truncation_anywhere_is_detected(cut: int) -> None:
    truncated = TRACE[:cut]
    report = verify_trace(truncated)
    assert not report.ok
    with pytest.raises(TraceError):
        read_trace(truncated)
    if cut in frame_offsets(TRACE) and cut > len(PREAMBLE):
        # Cut exactly between entries: the chain is intact but the run is not closed.
        assert report.error is not None and report.error.code is ErrorCode.TRACE_INCOMPLETE
        assert verify_trace(truncated, allow_open=True).ok
    elif cut > len(PREAMBLE):
        assert report.error is not None and report.error.code is ErrorCode.TRACE_TORN


@given(st.integers(0, len(TRACE) * 8 - 1))
def test_every_single_bit_flip_is_detected(bit: int) -> None:
    mutated = bytearray(TRACE)
    mutated[bit // 8] ^= 1 << (bit % 8)
    assert not verify_trace(bytes(mutated)).ok


def _rebuild(bodies: list[bytes]) -> bytes:
    return encode_trace(bodies)


def test_deleted_swapped_and_inserted_entries_break_the_chain() -> None:
    bodies = [entry.body for entry in read_trace(TRACE).entries]
    rng = random.Random(11)
    for _ in range(200):
        mutated = list(bodies)
        choice = rng.randrange(3)
        index = rng.randrange(1, len(mutated) - 1)
        if choice == 0:
            del mutated[index]
        elif choice == 1:
            mutated[index], mutated[index + 1] = mutated[index + 1], mutated[index]
        else:
            mutated.insert(index, bodies[rng.randrange(len(bodies))])
        report = verify_trace(_rebuild(mutated))
        assert not report.ok
        assert report.error is not None and report.error.entry_index is not None
        assert report.error.entry_index <= index + 1


def test_damage_reports_the_first_bad_entry_and_keeps_the_intact_prefix() -> None:
    offsets = frame_offsets(TRACE)
    mutated = bytearray(TRACE)
    mutated[offsets[7] + 20] ^= 0xFF
    scan = scan_trace(bytes(mutated))
    assert scan.error is not None and scan.error.entry_index == 7
    assert scan.error.offset == offsets[7] and len(scan.entries) == 7


def test_unknown_versions_and_foreign_files_are_refused() -> None:
    for version in (b"\x01", b"\x03"):  # version 1 hashed entries without the leaf prefix
        with pytest.raises(TraceError) as raised:
            read_trace(b"XDVTRACE" + version + b"\x00\x00\x00")
        assert raised.value.code is ErrorCode.TRACE_VERSION
    with pytest.raises(TraceError, match="magic"):
        read_trace(b"NOTATRACE" * 3)
    with pytest.raises(TraceError):
        read_trace(TRACE + TRACE[len(PREAMBLE) :])  # entries after RUN_END
