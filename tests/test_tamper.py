"""Tamper evidence: random mutations of real signed traces are all detected, clean ones pass.

The mutations model an attacker with write access to the trace and its audit file but not to
the node key: bit flips, deleted, duplicated, reordered and truncated entries, entries rewritten
with the whole hash chain *and* the in-trace checkpoints recomputed, runs rolled back to an
earlier checkpoint (with the later signed heads dropped or kept), damaged, dropped or reordered
signed heads, and forgeries re-signed with a foreign key. Verification is what ``xdv verify
--trusted-key`` runs. ``--long`` multiplies the counts by ten.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import EXAMPLES, WORKLOADS, xdv
from xdv.core import AuditConfig
from xdv.errors import XdvError
from xdv.runtime import run_workload
from xdv.security import HybridKeyPair, SignedHeadLog, verify_audit
from xdv.security._audit import head_message
from xdv.trace import EventType, read_trace
from xdv.trace._format import (
    CHECK_SIZE,
    FRAME_LENGTH,
    GENESIS_HASH,
    HEADER,
    PREAMBLE,
    canonical_metadata,
    encode_trace,
    entry_hash,
)
from xdv.trace._merkle import tree_root

KEYS = HybridKeyPair.from_seed(b"tamper-test node")
FOREIGN = HybridKeyPair.from_seed(b"attacker")
TRUSTED = {KEYS.public.fingerprint}


def signed_run(tmp_path: Path, target: str, seed: int, interval: int = 16) -> tuple[bytes, bytes]:
    trace = tmp_path / f"run-{seed}.xdvt"
    audit = tmp_path / f"run-{seed}.xdvt.audit"
    sink = SignedHeadLog(audit, KEYS, fsync=False)
    result = run_workload(
        target, seed=seed, trace=trace, audit=AuditConfig(interval, sink), fsync="never"
    )
    assert result.trace_path == trace
    return trace.read_bytes(), audit.read_bytes()


def detected(trace: bytes, audit: bytes) -> bool:
    try:
        verify_audit(trace, audit, trusted=TRUSTED)
    except XdvError:
        return True
    return False


def frames_of(data: bytes) -> list[bytes]:
    """Whole frames (length, body, check) of an intact trace."""
    frames, offset = [], len(PREAMBLE)
    while offset < len(data):
        (length,) = FRAME_LENGTH.unpack_from(data, offset)
        end = offset + FRAME_LENGTH.size + length + CHECK_SIZE
        frames.append(data[offset:end])
        offset = end
    return frames


def rechain(bodies: list[bytes]) -> bytes:
    """What a forger without the key does after editing bodies: recompute every link, every
    check and every in-trace checkpoint, so that only the signed heads can tell."""
    out: list[bytes] = []
    previous = GENESIS_HASH
    hashes: list[bytes] = []
    for index, body in enumerate(bodies):
        fields = list(HEADER.unpack_from(body))
        fields[0] = index
        fields[-1] = previous
        metadata = body[HEADER.size :]
        if fields[2] == EventType.CHECKPOINT:
            metadata = canonical_metadata({"size": index, "root": tree_root(hashes)})
        rebuilt = HEADER.pack(*fields) + metadata
        out.append(rebuilt)
        previous = entry_hash(rebuilt)
        hashes.append(previous)
    return encode_trace(out)


def bodies_of(data: bytes) -> list[bytes]:
    return [entry.body for entry in read_trace(data).entries]


def audit_lines(audit: bytes) -> list[bytes]:
    return audit.splitlines(keepends=True)


Mutation = Callable[[random.Random, bytes, bytes], tuple[bytes, bytes]]


def flip_bit(rng: random.Random, trace: bytes, audit: bytes) -> tuple[bytes, bytes]:
    data = bytearray(trace)
    position = rng.randrange(len(data))
    data[position] ^= 1 << rng.randrange(8)
    return bytes(data), audit


def delete_entry(rng: random.Random, trace: bytes, audit: bytes) -> tuple[bytes, bytes]:
    frames = frames_of(trace)
    del frames[rng.randrange(len(frames))]
    return PREAMBLE + b"".join(frames), audit


def insert_entry(rng: random.Random, trace: bytes, audit: bytes) -> tuple[bytes, bytes]:
    frames = frames_of(trace)
    frames.insert(rng.randrange(len(frames) + 1), frames[rng.randrange(len(frames))])
    return PREAMBLE + b"".join(frames), audit


def reorder_entries(rng: random.Random, trace: bytes, audit: bytes) -> tuple[bytes, bytes]:
    frames = frames_of(trace)
    first, second = rng.sample(range(len(frames)), 2)
    frames[first], frames[second] = frames[second], frames[first]
    return PREAMBLE + b"".join(frames), audit


def truncate_entries(rng: random.Random, trace: bytes, audit: bytes) -> tuple[bytes, bytes]:
    frames = frames_of(trace)
    return PREAMBLE + b"".join(frames[: rng.randrange(len(frames))]), audit


def truncate_bytes(rng: random.Random, trace: bytes, audit: bytes) -> tuple[bytes, bytes]:
    return trace[: rng.randrange(len(trace))], audit


def rechained_edit(rng: random.Random, trace: bytes, audit: bytes) -> tuple[bytes, bytes]:
    bodies = bodies_of(trace)
    index = rng.randrange(len(bodies))
    fields = list(HEADER.unpack_from(bodies[index]))
    choice = rng.randrange(4)
    if choice == 0:  # another process
        fields[5] ^= 1 + rng.randrange(7)
    elif choice == 1:  # another capability
        fields[8] += 1 + rng.randrange(5)
    elif choice == 2:  # another outcome status
        fields[4] = 0 if fields[4] else 302
    else:  # rewritten metadata
        metadata = read_trace(trace).entries[index].metadata
        fields_bytes = HEADER.pack(*fields)
        bodies[index] = fields_bytes + canonical_metadata({**metadata, "forged": True})
        return rechain(bodies), audit
    bodies[index] = HEADER.pack(*fields) + bodies[index][HEADER.size :]
    return rechain(bodies), audit


def rechained_delete(rng: random.Random, trace: bytes, audit: bytes) -> tuple[bytes, bytes]:
    bodies = bodies_of(trace)
    del bodies[rng.randrange(1, len(bodies) - 1)]
    return rechain(bodies), audit


def roll_back(rng: random.Random, trace: bytes, audit: bytes) -> tuple[bytes, bytes]:
    """Cut the run back to one of its checkpoints, forge a run end, drop (or keep) heads."""
    bodies = bodies_of(trace)
    checkpoints = [
        index
        for index, body in enumerate(bodies)
        if HEADER.unpack_from(body)[2] == EventType.CHECKPOINT
    ]
    cut = rng.choice(checkpoints)
    forged = [*bodies[: cut + 1], bodies[-1]]
    lines = audit_lines(audit)
    heads = [json.loads(line) for line in lines[1:]]
    keep = rng.randrange(3)
    if keep == 0:  # drop every head past the cut
        kept = [line for line, head in zip(lines[1:], heads, strict=True) if head["size"] <= cut]
    elif keep == 1:  # keep them all
        kept = lines[1:]
    else:  # keep the final head only
        kept = [line for line, head in zip(lines[1:], heads, strict=True) if head["final"]]
    return rechain(forged), lines[0] + b"".join(kept)


def damage_audit(rng: random.Random, trace: bytes, audit: bytes) -> tuple[bytes, bytes]:
    lines = audit_lines(audit)
    choice = rng.randrange(4)
    if choice == 0:  # flip a byte inside a head's signature
        index = rng.randrange(1, len(lines))
        head = json.loads(lines[index])
        signature = bytearray(head["sig"].encode())
        position = rng.randrange(8, len(signature) - 8)
        signature[position] = ord("A") if signature[position] != ord("A") else ord("B")
        head["sig"] = signature.decode()
        lines[index] = (json.dumps(head) + "\n").encode()
    elif choice == 1:  # drop a head
        del lines[rng.randrange(1, len(lines))]
    elif choice == 2 and len(lines) > 2:  # reorder two heads
        first, second = rng.sample(range(1, len(lines)), 2)
        lines[first], lines[second] = lines[second], lines[first]
    else:  # alter a head's size or root (its signature no longer covers it)
        index = rng.randrange(1, len(lines))
        head = json.loads(lines[index])
        if rng.randrange(2):
            head["size"] += 1
        else:
            head["root"] = ("0" if head["root"][0] != "0" else "1") + head["root"][1:]
        lines[index] = (json.dumps(head) + "\n").encode()
    return trace, b"".join(lines)


def foreign_signature(rng: random.Random, trace: bytes, audit: bytes) -> tuple[bytes, bytes]:
    """A rechained forgery whose heads are re-signed with the attacker's own key."""
    forged, _ = rechained_edit(rng, trace, audit)
    entries = read_trace(forged).entries
    hashes = [entry.hash for entry in entries]
    run = hashes[0]
    header = {"xdv-audit": 1, "fingerprint": FOREIGN.public.fingerprint}
    header["key"] = FOREIGN.public.to_record()  # type: ignore[assignment]
    lines = [json.dumps(header)]
    sizes = [index for index, entry in enumerate(entries) if entry.event_name == "CHECKPOINT"]
    for size, final in [*((size, False) for size in sizes), (len(hashes), True)]:
        root = tree_root(hashes[:size])
        import base64

        signature = FOREIGN.sign(head_message(run, size, root, final), context=b"xdv-tree-head")
        lines.append(
            json.dumps(
                {
                    "run": run.hex(),
                    "size": size,
                    "root": root.hex(),
                    "final": final,
                    "sig": base64.b64encode(signature).decode(),
                }
            )
        )
    return forged, ("\n".join(lines) + "\n").encode()


MUTATIONS: list[tuple[Mutation, int]] = [
    (flip_bit, 3100),
    (delete_entry, 700),
    (insert_entry, 700),
    (reorder_entries, 700),
    (truncate_entries, 700),
    (truncate_bytes, 700),
    (rechained_edit, 1500),
    (rechained_delete, 500),
    (roll_back, 800),
    (damage_audit, 700),
]
FOREIGN_SIGNED = 20  # each one signs several heads with both schemes: kept small


@pytest.fixture(scope="module")
def real_traces(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, bytes]]:
    directory = tmp_path_factory.mktemp("signed")
    return [
        signed_run(directory, str(EXAMPLES / "hybrid_offload.py"), 1),
        signed_run(directory, "tests.workloads.mixed:main", 7),
    ]


@pytest.mark.spec("XDV-034-4.2")
def test_thousands_of_mutations_are_all_detected(
    real_traces: list[tuple[bytes, bytes]], request: pytest.FixtureRequest
) -> None:
    # 2,000 mutations in the default run, 100,000 with --long.
    scale = 10 if request.config.getoption("--long") else 0.2
    rng = random.Random(20261126)
    total = 0
    missed: list[str] = []
    for trace, audit in real_traces:
        assert not detected(trace, audit)
    for mutation, count in [*MUTATIONS, (foreign_signature, FOREIGN_SIGNED)]:
        for _ in range(max(1, int(count * scale))):
            trace, audit = real_traces[rng.randrange(len(real_traces))]
            mutated_trace, mutated_audit = mutation(rng, trace, audit)
            if (mutated_trace, mutated_audit) == (trace, audit):
                continue  # a no-op mutation (e.g. swapping equal frames) is not tampering
            total += 1
            if not detected(mutated_trace, mutated_audit):
                missed.append(mutation.__name__)
    assert total >= int(10_000 * scale)
    assert missed == []


@pytest.mark.spec("XDV-034-4.2")
def test_clean_signed_traces_all_pass(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    count = 10_000 if request.config.getoption("--long") else 200
    for seed in range(count):
        trace, audit = signed_run(tmp_path, "tests.workloads.no_random:main", seed, 32)
        report = verify_audit(trace, audit, trusted=TRUSTED)
        assert report.signed and report.checkpoints >= 1 and report.heads == report.checkpoints + 1


def test_the_command_line_detects_a_rechained_forgery(tmp_path: Path) -> None:
    path = tmp_path / "t.xdvt"
    assert (
        xdv(
            "run",
            str(WORKLOADS / "no_random.py"),
            "--trace",
            str(path),
            "--checkpoint-interval",
            "16",
        ).returncode
        == 0
    )
    verified = xdv("verify", str(path))
    assert verified.returncode == 0 and "signed: " in verified.stdout
    forged, _ = rechained_edit(random.Random(3), path.read_bytes(), b"")
    path.write_bytes(forged)
    failed = xdv("verify", str(path))
    assert failed.returncode == 1
    assert "CHECKPOINT_INVALID" in failed.stdout + failed.stderr
