"""The XDV fuzz harness: seeded, structure-aware inputs for every command, and one oracle.

Every case is a command line of ``xdv`` and the files it reads, made deterministically from a
campaign seed and the case's index (so any case can be re-made and re-run alone). Inputs come
from two sources: mutations of real, valid inputs that the real commands produced (a trace and
its audit file from ``xdv run``, proofs from ``xdv audit prove``, a witness from ``xdv
phirun``, the example DPL programs, the shared OpenQASM circuits) and structure-aware malformed
inputs (deep nesting, huge numbers, bad encodings, CBOR tags, truncation, bit flips, special
files: FIFOs, directories, devices, huge sparse files).

The oracle, for every case: the exit code is one of the documented ones (0, 1, 64, 65, 70, 71,
72), nothing on stdout or stderr is a Python traceback, the command finishes within the time
bound, and it writes nothing in its working directory that it was not asked to write.

Cases run in-process (``xdv.cli.main`` with the standard streams captured and a SIGALRM time
guard), which makes 100,000 cases a matter of minutes. A campaign (:func:`campaign`) runs them
in a worker process watched by its parent, so that a hang the alarm cannot break (inside native
code) is recorded as a hang and the campaign goes on with a fresh worker.

Run a campaign from the command line::

    python tests/fuzz/fuzzlib.py --cases 100000 --seed 1 [--formats trace,proof] [--jobs 2]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT.parent / "shared" / "testdata"
DOCUMENTED_EXITS = frozenset({0, 1, 64, 65, 70, 71, 72})
TIME_BOUND_S = 10.0  # processor time a case may take
WALL_SLACK = 5.0  # and wall-clock time, as a multiple of that (a loaded machine is slow)

# The formats, and which of them the trace/audit/proof/witness hardening owns (the CI run is
# strict for these; the others are reported by campaigns).
FORMATS = ("dpl", "qasm", "gset", "bqm", "trace", "audit", "proof", "witness", "special")
HARDENED = ("trace", "audit", "proof", "witness", "special")


# ---------------------------------------------------------------------------------------------
# Cases and results


@dataclass
class Case:
    """One command line and the files it needs (written into a fresh working directory)."""

    fmt: str
    generator: str
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    special: dict[str, str] = field(default_factory=dict)  # name -> fifo | dir | huge | devzero
    outputs: frozenset[str] = frozenset()  # names the command may create

    def describe(self) -> str:
        return f"{self.fmt}/{self.generator}: xdv {' '.join(self.argv)}"


@dataclass
class Result:
    """What running a case gave, and what the oracle made of it."""

    exit_code: int | None
    seconds: float
    stdout: str
    stderr: str
    written: list[str]
    problem: str | None = None  # None when the oracle is satisfied
    cpu_seconds: float = 0.0

    @property
    def kind(self) -> str:
        """ok, crash or hang."""
        if self.problem is None:
            return "ok"
        return "hang" if self.problem.startswith("hang") else "crash"


def judge(case: Case, result: Result, bound: float = TIME_BOUND_S) -> str | None:
    """The oracle: why ``result`` is not acceptable for ``case``, or None."""
    if result.exit_code is None:
        return f"hang: no exit within {bound:g} s of processor time or {bound * WALL_SLACK:g} s"
    if result.cpu_seconds > bound or result.seconds > bound * WALL_SLACK:
        return (
            f"hang: took {result.cpu_seconds:.1f} s of processor time, {result.seconds:.1f} s "
            f"in all (bounds {bound:g} s and {bound * WALL_SLACK:g} s)"
        )
    if "Traceback (most recent call last)" in result.stderr + result.stdout:
        last = [line for line in result.stderr.splitlines() if line.strip()][-1:]
        return f"traceback: {last[0].strip() if last else '?'}"
    if result.exit_code not in DOCUMENTED_EXITS:
        return f"exit code {result.exit_code} is not documented"
    extra = [name for name in result.written if name not in case.outputs]
    if extra:
        return f"wrote files it was not asked for: {extra}"
    return None


# ---------------------------------------------------------------------------------------------
# Running one case in-process


class CaseTimeout(BaseException):
    """Raised by the alarm in the main thread; a BaseException so no handler swallows it."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise CaseTimeout


def _prepare(case: Case, directory: Path) -> None:
    for name, content in case.files.items():
        (directory / name).write_bytes(content)
    for name, kind in case.special.items():
        path = directory / name
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            path.mkdir()
        elif kind == "devzero":
            path.symlink_to("/dev/zero")
        elif kind.startswith("huge"):
            size = int(kind[4:] or (1 << 41))
            with open(path, "wb") as file:
                file.truncate(size)  # sparse: costs nothing on disk
        else:
            raise ValueError(kind)


def _listing(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*")}


def run_in_process(case: Case, base: Path, bound: float = TIME_BOUND_S) -> Result:
    """Run ``case`` through ``xdv.cli.main`` in this process, in a fresh directory under
    ``base``, with the standard streams captured, stopped after ``bound`` seconds of processor
    time (SIGPROF) or ``bound * WALL_SLACK`` seconds in all (SIGALRM: a case blocked on a FIFO
    uses no processor time)."""
    from click.testing import CliRunner

    from xdv.cli import main

    directory = Path(tempfile.mkdtemp(dir=base))
    _prepare(case, directory)
    before = _listing(directory)
    runner = CliRunner()
    previous_cwd = os.getcwd()
    previous = signal.signal(signal.SIGALRM, _alarm)
    previous_prof = signal.signal(signal.SIGPROF, _alarm)
    exit_code: int | None = None
    stdout = stderr = ""
    start = time.perf_counter()
    start_cpu = time.process_time()
    try:
        os.chdir(directory)
        with runner.isolation() as streams:
            try:
                signal.setitimer(signal.ITIMER_REAL, bound * WALL_SLACK)
                signal.setitimer(signal.ITIMER_PROF, bound)
                main(list(case.argv))
                exit_code = 0
            except SystemExit as stop:
                code = stop.code
                exit_code = code if isinstance(code, int) else (0 if code is None else 1)
            except CaseTimeout:
                exit_code = None
            except BaseException as error:
                import traceback

                sys.stderr.write(
                    "Traceback (most recent call last): escaped main\n"
                    + "".join(traceback.format_exception(type(error), error, error.__traceback__))
                )
                exit_code = -1
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.setitimer(signal.ITIMER_PROF, 0)
            sys.stdout.flush()
            sys.stderr.flush()
            stdout = streams[0].getvalue().decode("utf-8", "replace")
            stderr = streams[1].getvalue().decode("utf-8", "replace")
    finally:
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - start_cpu
        signal.signal(signal.SIGALRM, previous)
        signal.signal(signal.SIGPROF, previous_prof)
        os.chdir(previous_cwd)
    written = sorted(_listing(directory) - before)
    shutil.rmtree(directory, ignore_errors=True)
    result = Result(exit_code, seconds, stdout, stderr, written, cpu_seconds=cpu_seconds)
    result.problem = judge(case, result, bound)
    return result


def run_subprocess(case: Case, base: Path, bound: float = 60.0) -> Result:
    """Run ``case`` with the real ``xdv`` binary (``python -m xdv``) in a fresh directory."""
    directory = Path(tempfile.mkdtemp(dir=base))
    _prepare(case, directory)
    before = _listing(directory)
    start = time.perf_counter()
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "xdv", *case.argv],
            cwd=directory,
            capture_output=True,
            timeout=bound * WALL_SLACK,
            check=False,
        )
        exit_code: int | None = completed.returncode
        stdout = completed.stdout.decode("utf-8", "replace")
        stderr = completed.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        exit_code, stdout, stderr = None, "", ""
    seconds = time.perf_counter() - start
    written = sorted(_listing(directory) - before)
    shutil.rmtree(directory, ignore_errors=True)
    result = Result(exit_code, seconds, stdout, stderr, written)
    result.problem = judge(case, result, bound)
    return result


# ---------------------------------------------------------------------------------------------
# The seed corpus: real inputs made by the real commands


@dataclass
class Corpus:
    """Valid inputs of every format, by format: lists of (name, bytes)."""

    items: dict[str, list[tuple[str, bytes]]]
    trace: bytes
    trace_workload: tuple[str, bytes]  # the DPL file the trace's run-start names
    audit: bytes
    root: str  # the trace's Merkle root (hex), for verify-proof --root
    signer: str  # the node key's fingerprint


def _xdv_quiet(argv: list[str], cwd: Path) -> int:
    """Run ``xdv`` in-process for the corpus (output discarded)."""
    from click.testing import CliRunner

    from xdv.cli import main

    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with CliRunner().isolation():
            try:
                main(argv)
            except SystemExit as stop:
                return stop.code if isinstance(stop.code, int) else 0
    finally:
        os.chdir(previous)
    return 0


_GSET_SMALL = b"6 7\n1 2 1\n2 3 1\n3 4 1\n4 5 1\n5 6 1\n6 1 1\n1 4 -1\n"
_BQM_SMALL = json.dumps(
    {"kind": "ising", "n": 4, "h": [0.5, -0.25, 0, 1], "J": [[0, 1, 1.0], [1, 2, -1.0], [2, 3, 1]]}
).encode()
_QASM_SMALL = (
    b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\n'
    b"measure q -> c;\n"
)


def build_corpus(work: Path) -> Corpus:
    """Make the seed corpus in ``work`` with the real commands."""
    work.mkdir(parents=True, exist_ok=True)
    items: dict[str, list[tuple[str, bytes]]] = {name: [] for name in FORMATS}
    # DPL: the examples and a sample of the conformance corpus.
    for path in sorted((ROOT / "examples").glob("*.ds")):
        items["dpl"].append((path.name, path.read_bytes()))
    for path in sorted((ROOT / "tests" / "dpl").rglob("*.ds"))[::8]:
        items["dpl"].append((path.name, path.read_bytes()))
    # OpenQASM: a small circuit and a few of the shared ones.
    items["qasm"].append(("bell.qasm", _QASM_SMALL))
    for name in ("teleportation_n3", "deutsch_n2", "wstate_n3", "toffoli_n3", "qft_n4"):
        path = TESTDATA / "qasm" / "qasmbench" / f"{name}.qasm"
        if path.is_file():
            items["qasm"].append((path.name, path.read_bytes()))
    # G-set and bqm-json.
    items["gset"].append(("ring.txt", _GSET_SMALL))
    items["bqm"].append(("small.json", _BQM_SMALL))
    # A real trace, audit file and proofs: `xdv run` of an example, then `xdv audit prove`.
    program = ROOT / "examples" / "primes.ds"
    shutil.copy(program, work / "primes.ds")
    trace_path = work / "run.xdvt"
    for stale in (trace_path, work / "run.xdvt.audit"):
        stale.unlink(missing_ok=True)
    _xdv_quiet(["run", "primes.ds", "--trace", "run.xdvt", "--checkpoint-interval", "16"], work)
    trace = trace_path.read_bytes()
    audit = (work / "run.xdvt.audit").read_bytes()
    items["trace"].append(("run.xdvt", trace))
    items["audit"].append(("run.xdvt.audit", audit))
    _xdv_quiet(["audit", "prove", "run.xdvt", "--entry", "3", "-o", "inclusion.json"], work)
    _xdv_quiet(["audit", "prove", "run.xdvt", "--consistency", "5", "-o", "consistency.json"], work)
    for name in ("inclusion.json", "consistency.json"):
        items["proof"].append((name, (work / name).read_bytes()))
    root = json.loads(items["proof"][0][1])["root"]
    # A witness from `xdv phirun` (exact provider: OPTIMAL claims), and one from the phase one.
    (work / "ring.txt").write_bytes(_GSET_SMALL)
    for provider in ("exact", "phase"):
        directory = work / f"witness-{provider}"
        shutil.rmtree(directory, ignore_errors=True)
        _xdv_quiet(
            ["phirun", "ring.txt", "--provider", provider, "--witness-dir", str(directory)], work
        )
        for path in sorted(directory.glob("*.json")):
            items["witness"].append((f"witness-{provider}.json", path.read_bytes()))
    signer = json.loads(audit.splitlines()[0])["fingerprint"]
    return Corpus(items, trace, ("primes.ds", program.read_bytes()), audit, root, signer)


# ---------------------------------------------------------------------------------------------
# Mutators


_INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xC0, 0xD8, 0x9F, 0xBF, 0xFB, 0xF9, 0x1B, 0x00]


def mutate_bytes(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    """One to four random byte-level mutations of ``data``."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(9)
        position = rng.randrange(len(out) + 1)
        if choice == 0 and out:  # bit flip
            index = rng.randrange(len(out))
            out[index] ^= 1 << rng.randrange(8)
        elif choice == 1 and out:  # interesting byte
            out[rng.randrange(len(out))] = rng.choice(_INTERESTING)
        elif choice == 2:  # random bytes inserted
            out[position:position] = rng.randbytes(rng.randint(1, 16))
        elif choice == 3 and out:  # a range deleted
            end = min(len(out), position + rng.randint(1, 64))
            del out[position:end]
        elif choice == 4 and out:  # a range repeated
            end = min(len(out), position + rng.randint(1, 32))
            out[position:position] = out[position:end] * rng.randint(2, 50)
        elif choice == 5:  # truncated
            del out[position:]
        elif choice == 6 and others:  # spliced with another input
            other = rng.choice(others)
            cut = rng.randrange(len(other) + 1)
            out[position:] = other[cut:]
        elif choice == 7:  # invalid UTF-8 or a NUL
            out[position:position] = rng.choice(
                [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xe2\x82"]
            )
        else:  # an ASCII digit run (huge numbers)
            out[position:position] = b"9" * rng.choice([20, 400, 5000])
    return bytes(out)


def deep_json(rng: random.Random) -> Any:
    """A JSON text nested far deeper than any limit (as text: no recursion to build it)."""
    depth = rng.choice([65, 200, 1000, 100_000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    return opener * depth + "1" + closer * depth


_JSON_NASTY: list[Any] = [
    10**400,
    -(10**400),
    1e308,
    -0.0,
    "\ud800",
    "x" * 70_000,
    None,
    True,
    [],
    {},
    [[[[[]]]]],
    {"": None},
    2**64,
    -(2**64) - 1,
    "00",
    "zz",
]


def _walk_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        yield where
        if isinstance(item, dict):
            stack.extend((child, (*where, key)) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend((child, (*where, index)) for index, child in enumerate(item))


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return value


def mutate_json(rng: random.Random, data: bytes) -> bytes:
    """A structure-aware mutation of a JSON document: a value replaced by a nasty one, a key
    removed, a subtree duplicated or nested deep; sometimes raw NaN/Infinity or a surrogate."""
    try:
        value = json.loads(data)
    except ValueError:
        return mutate_bytes(rng, data, [])
    for _ in range(rng.randint(1, 3)):
        paths = list(_walk_paths(value))
        path = rng.choice(paths)
        choice = rng.randrange(5)
        if choice == 0:
            value = _set(value, path, rng.choice(_JSON_NASTY))
        elif choice == 1 and path:
            parent = value
            for key in path[:-1]:
                parent = parent[key]
            del parent[path[-1]]
        elif choice == 2:
            nested: Any = 1
            for _ in range(rng.choice([10, 63, 64, 65, 300])):
                nested = [nested]
            value = _set(value, path, nested)
        elif choice == 3:
            value = _set(value, path, rng.choice(["", 0, -1, 1.5, "OPTIMAL", [1, -1]]))
        else:
            return mutate_bytes(rng, json.dumps(value).encode(), [])
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        return deep_json(rng).encode()
    if rng.random() < 0.1:
        text = text.replace("1", rng.choice(["NaN", "Infinity", "1e999", "\\ud800"]), 1)
    return text.encode("utf-8", "surrogatepass")


# Trace-aware mutations: replace an entry's metadata or header and re-chain, so the damage
# passes the frame checks and reaches the decoder.

_CBOR_NASTY = [
    b"\xa1\x61\x61\xd8\x1c\x81\xd8\x1d\x00",  # shared references: a list that holds itself
    b"\xa1\x61\x61" + b"\x81" * 100 + b"\x00",  # nesting past the limit
    b"\xa1\x61\x61" + b"\x81" * 100_000 + b"\x00",  # nesting far past it
    b"\xa1\x61\x61\x9f\x00\xff",  # indefinite-length array
    b"\xbf\x61\x61\x00\xff",  # indefinite-length map
    b"\xa1\x61\x61\xc2\x49\x01" + b"\x00" * 8,  # bignum tag
    b"\xa1\x61\x61\xd8\x23\x63a*b",  # regular-expression tag
    b"\xa1\x61\x61\xc1\x1a\x00\x00\x00\x00",  # epoch-date tag
    b"\xa1\x61\x61\xf9\x7e\x00",  # half float NaN
    b"\xa1\x61\x61\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00",  # binary64 infinity
    b"\xa1\x61\x61\xf7",  # undefined
    b"\xa1\x61\x61\xf8\x20",  # simple value
    b"\xa1\x61\x61\x1c",  # reserved additional information
    b"\xa1\x61\x61\x62\xed\xa0",  # invalid UTF-8 text
    b"\xa1\x61\x61\x7b\xff\xff\xff\xff\xff\xff\xff\xff",  # a text longer than everything
    b"\xa1\x61\x61\x9b\xff\xff\xff\xff\xff\xff\xff\xff",  # an array longer than everything
    b"\xa1\x01\x02",  # integer key
    b"\xa2\x61\x62\x00\x61\x61\x00",  # keys out of order
    b"\xa1\x61\x61\x18\x01",  # non-minimal integer
    b"\x80",  # not a map
    b"",  # nothing
    b"\xa1\x61\x61\x00\x00",  # trailing byte
]


def _frames(trace: bytes) -> list[bytes]:
    from xdv.trace import split_frames

    return [frame[4:] for frame in split_frames(trace)]


def rechain(bodies: list[bytes], *, fix_prev: bool = True) -> bytes:
    """A trace file from entry bodies, with previous-entry hashes and checks recomputed."""
    from xdv.trace import GENESIS_HASH, HEADER
    from xdv.trace._format import encode_trace, entry_hash

    out, previous = [], GENESIS_HASH
    for body in bodies:
        if fix_prev and len(body) >= HEADER.size:
            body = body[: HEADER.size - 32] + previous + body[HEADER.size :]
        out.append(body)
        previous = entry_hash(body)
    return encode_trace(out)


def mutate_trace(rng: random.Random, trace: bytes) -> bytes:
    """A trace whose damage passes the frame checks: metadata replaced by a nasty CBOR value,
    a header field changed, an entry dropped or repeated, then re-chained."""
    from xdv.trace import HEADER

    bodies = _frames(trace)
    for _ in range(rng.randint(1, 2)):
        index = rng.randrange(len(bodies))
        body = bodies[index]
        choice = rng.randrange(6)
        if choice <= 1:
            bodies[index] = body[: HEADER.size] + rng.choice(_CBOR_NASTY)
        elif choice == 2:
            metadata = mutate_bytes(rng, body[HEADER.size :], [])
            bodies[index] = body[: HEADER.size] + metadata
        elif choice == 3:
            header = bytearray(body[: HEADER.size - 32])
            header[rng.randrange(len(header))] = rng.randrange(256)
            bodies[index] = bytes(header) + body[HEADER.size - 32 :]
        elif choice == 4:
            del bodies[index]
            if not bodies:
                bodies = [body]
        else:
            bodies.insert(index, body)
    data = rechain(bodies, fix_prev=rng.random() < 0.9)
    if rng.random() < 0.15:
        data = mutate_bytes(rng, data, [])
    return data


# ---------------------------------------------------------------------------------------------
# Generators, one set per format


def _pick(rng: random.Random, corpus: Corpus, fmt: str) -> tuple[str, bytes]:
    return rng.choice(corpus.items[fmt])


def _all_bytes(corpus: Corpus, fmt: str) -> list[bytes]:
    return [data for _, data in corpus.items[fmt]]


def gen_dpl(rng: random.Random, corpus: Corpus) -> Case:
    _, data = _pick(rng, corpus, "dpl")
    kind = rng.randrange(6)
    if kind <= 2:
        content, generator = mutate_bytes(rng, data, _all_bytes(corpus, "dpl")), "mutation"
    elif kind == 3:
        depth = rng.choice([100, 1000, 20_000])
        content = b"process main() {\n emit(" + b"(" * depth + b"1" + b")" * depth + b");\n}\n"
        generator = "deep-parens"
    elif kind == 4:
        count = rng.choice([500, 5000, 50_000])
        content = b"process main() {\n emit(1" + b" + 1" * count + b");\n}\n"
        generator = "operator-chain"
    else:
        depth = rng.choice([100, 1000])
        content = b"process main() {\n" + b"if (true) {\n" * depth + b"}\n" * depth + b"}\n"
        generator = "deep-blocks"
    command = rng.choice([["check"], ["run"]])
    return Case("dpl", generator, [*command, "input.ds"], {"input.ds": content})


def gen_qasm(rng: random.Random, corpus: Corpus) -> Case:
    _, data = _pick(rng, corpus, "qasm")
    kind = rng.randrange(5)
    if kind <= 2:
        content, generator = mutate_bytes(rng, data, _all_bytes(corpus, "qasm")), "mutation"
    elif kind == 3:
        size = rng.choice(["1000000000000000000000000000000", "2000000000", "65", "0", "-1"])
        content = f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{size}];\nh q[0];\n'.encode()
        generator = "huge-register"
    else:
        lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', "gate g0 a { h a; }"]
        for level in range(1, rng.choice([8, 22])):
            lines.append(f"gate g{level} a {{ g{level - 1} a; g{level - 1} a; g{level - 1} a; }}")
        lines += ["qreg q[1];", f"g{level} q[0];"]
        content, generator = "\n".join(lines).encode(), "gate-explosion"
    return Case("qasm", generator, ["qrun", "input.qasm", "--shots", "4"], {"input.qasm": content})


def gen_gset(rng: random.Random, corpus: Corpus) -> Case:
    _, data = _pick(rng, corpus, "gset")
    kind = rng.randrange(4)
    if kind <= 2:
        content, generator = mutate_bytes(rng, data, []), "mutation"
    else:
        content = rng.choice(
            [
                b"3 1\n1 2 1e999\n",
                b"99999999999999999999 1\n1 2 1\n",
                b"3 99999999999999999999\n1 2 1\n",
                b"3 1\n1 2 " + b"9" * 400 + b"\n",
                b"3 1\n1 99999999999999999999 1\n",
                b"-3 1\n1 2 1\n",
                b"3 1\n1 2 nan\n",
                b"\xff\xfe3 1\n",
            ]
        )
        generator = "pathological"
    provider = rng.choice([["--provider", "exact", "--work-limit", "0.01"], []])
    return Case("gset", generator, ["phirun", "input.txt", *provider], {"input.txt": content})


def gen_bqm(rng: random.Random, corpus: Corpus) -> Case:
    _, data = _pick(rng, corpus, "bqm")
    kind = rng.randrange(4)
    if kind <= 1:
        content, generator = mutate_json(rng, data), "json-mutation"
    elif kind == 2:
        content, generator = mutate_bytes(rng, data, []), "mutation"
    else:
        content, generator = deep_json(rng).encode(), "deep-nesting"
    provider = rng.choice([["--provider", "exact", "--work-limit", "0.01"], []])
    argv = ["phirun", "input.json", "--format", "bqm-json", *provider]
    return Case("bqm", generator, argv, {"input.json": content})


def _trace_command(rng: random.Random, corpus: Corpus) -> tuple[list[str], dict[str, bytes]]:
    """A command that reads ``input.xdvt`` (and what else it needs)."""
    files = {}
    choice = rng.randrange(7)
    if choice == 0:
        argv = ["verify", "input.xdvt"]
    elif choice == 1:
        argv = ["verify", "input.xdvt", "--allow-open", "--json"]
    elif choice == 2:
        argv = ["trace", "show", "input.xdvt"]
    elif choice == 3:
        argv = ["trace", "diff", "good.xdvt", "input.xdvt"]
        files["good.xdvt"] = corpus.trace
    elif choice == 4:
        argv = ["replay", "input.xdvt", "--mode", rng.choice(["reexecute", "inject"])]
        name, program = corpus.trace_workload
        files[name] = program
    elif choice == 5:
        argv = ["audit", "prove", "input.xdvt", "--entry", str(rng.randrange(4))]
    else:
        argv = ["audit", "prove", "input.xdvt", "--consistency", "2"]
    return argv, files


def gen_trace(rng: random.Random, corpus: Corpus) -> Case:
    kind = rng.randrange(4) if rng.random() > 0.08 else -1
    if kind == -1:
        content, generator = corpus.trace, "valid"
    elif kind <= 1:
        content, generator = mutate_trace(rng, corpus.trace), "rechained"
    elif kind == 2:
        content, generator = mutate_bytes(rng, corpus.trace, []), "mutation"
    else:
        content = corpus.trace[: rng.randrange(len(corpus.trace))]
        generator = "truncation"
    argv, files = _trace_command(rng, corpus)
    files["input.xdvt"] = content
    return Case("trace", generator, argv, files)


def gen_audit(rng: random.Random, corpus: Corpus) -> Case:
    lines = corpus.audit.splitlines(keepends=True)
    kind = rng.randrange(5) if rng.random() > 0.08 else -1
    if kind == -1:
        content, generator = corpus.audit, "valid"
    elif kind <= 1:
        index = rng.randrange(len(lines))
        lines[index] = mutate_json(rng, lines[index].rstrip(b"\n")) + b"\n"
        content, generator = b"".join(lines), "json-mutation"
    elif kind == 2:
        content, generator = mutate_bytes(rng, corpus.audit, []), "mutation"
    elif kind == 3:
        lines.insert(rng.randrange(len(lines) + 1), deep_json(rng).encode() + b"\n")
        content, generator = b"".join(lines), "deep-nesting"
    else:
        content = rng.choice([b"", b"\n" * 100, b"x" * 70_000, lines[0] * 3])
        generator = "pathological"
    argv = ["verify", "good.xdvt", "--audit", "input.audit"]
    if rng.random() < 0.3:
        argv += ["--trusted-key", corpus.signer]
    return Case("audit", generator, argv, {"good.xdvt": corpus.trace, "input.audit": content})


def gen_proof(rng: random.Random, corpus: Corpus) -> Case:
    _, data = _pick(rng, corpus, "proof")
    kind = rng.randrange(5) if rng.random() > 0.08 else -1
    if kind == -1:
        content, generator = data, "valid"
    elif kind <= 1:
        content, generator = mutate_json(rng, data), "json-mutation"
    elif kind == 2:
        content, generator = mutate_bytes(rng, data, _all_bytes(corpus, "proof")), "mutation"
    elif kind == 3:
        content, generator = deep_json(rng).encode(), "deep-nesting"
    else:
        document = json.loads(data)
        document["frame"] = (
            bytes.fromhex(document.get("frame", "00" * 90))[:85] + rng.choice(_CBOR_NASTY)
        ).hex()
        content, generator = json.dumps(document).encode(), "nasty-frame"
    root = rng.choice([corpus.root, "", "00" * 32, "zz"])
    argv = ["audit", "verify-proof", "input.json", "--root", root]
    if rng.random() < 0.2:
        argv = ["audit", "verify-proof", "input.json", "--trusted-key", corpus.signer]
    return Case("proof", generator, argv, {"input.json": content})


def gen_witness(rng: random.Random, corpus: Corpus) -> Case:
    _, data = _pick(rng, corpus, "witness")
    kind = rng.randrange(4) if rng.random() > 0.08 else -1
    if kind == -1:
        content, generator = data, "valid"
    elif kind <= 1:
        content, generator = mutate_json(rng, data), "json-mutation"
    elif kind == 2:
        content, generator = mutate_bytes(rng, data, _all_bytes(corpus, "witness")), "mutation"
    else:
        content, generator = deep_json(rng).encode(), "deep-nesting"
    argv = ["witness", "verify", "input.json"]
    if rng.random() < 0.3:
        argv += ["--trusted-key", corpus.signer]
    return Case("witness", generator, argv, {"input.json": content})


# Every command with the argument that names its input file (None: the file is the last).
_SPECIAL_COMMANDS: list[tuple[list[str], str, str]] = [
    (["verify", "{}"], "trace", ".xdvt"),
    (["trace", "show", "{}"], "trace", ".xdvt"),
    (["trace", "diff", "{}", "{}"], "trace", ".xdvt"),
    (["replay", "{}"], "trace", ".xdvt"),
    (["audit", "prove", "{}", "--entry", "0"], "trace", ".xdvt"),
    (["verify", "good.xdvt", "--audit", "{}"], "audit", ".audit"),
    (["audit", "verify-proof", "{}", "--root", "00"], "proof", ".json"),
    (["witness", "verify", "{}"], "witness", ".json"),
    (["check", "{}"], "dpl", ".ds"),
    (["run", "{}"], "dpl", ".ds"),
    (["qrun", "{}"], "qasm", ".qasm"),
    (["phirun", "{}"], "gset", ".txt"),
    (["phirun", "{}", "--format", "bqm-json"], "bqm", ".json"),
]
# Which commands the strict (CI) run covers: those of the hardened formats.
_SPECIAL_HARDENED = {"trace", "audit", "proof", "witness"}


def gen_special(rng: random.Random, corpus: Corpus, *, hardened_only: bool = False) -> Case:
    commands = [c for c in _SPECIAL_COMMANDS if not hardened_only or c[1] in _SPECIAL_HARDENED]
    template, owner, suffix = rng.choice(commands)
    kind = rng.choice(["fifo", "dir", "devzero", "huge", "huge-small", "dev"])
    name = f"input{suffix}"
    files: dict[str, bytes] = {"good.xdvt": corpus.trace}
    special: dict[str, str] = {}
    if kind == "dev":
        name = "/dev/zero"
    elif kind == "huge-small":
        special[name] = f"huge{200 << 20}"  # sparse, over the document and source limits
    else:
        special[name] = kind
    argv = [name if part == "{}" else part for part in template]
    return Case("special", f"{kind}:{owner}", argv, files, special)


GENERATORS: dict[str, Callable[[random.Random, Corpus], Case]] = {
    "dpl": gen_dpl,
    "qasm": gen_qasm,
    "gset": gen_gset,
    "bqm": gen_bqm,
    "trace": gen_trace,
    "audit": gen_audit,
    "proof": gen_proof,
    "witness": gen_witness,
    "special": gen_special,
}


def make_case(seed: int, index: int, formats: tuple[str, ...], corpus: Corpus) -> Case:
    """Case ``index`` of the campaign ``seed`` over ``formats`` (deterministic)."""
    rng = random.Random(f"xdv-fuzz/{seed}/{index}")
    fmt = formats[index % len(formats)]
    if fmt == "special":
        return gen_special(rng, corpus, hardened_only=set(formats) <= set(HARDENED))
    return GENERATORS[fmt](rng, corpus)


# ---------------------------------------------------------------------------------------------
# Campaigns


@dataclass
class Tally:
    """Per-format figures of a campaign."""

    cases: int = 0
    crashes: int = 0
    hangs: int = 0
    seconds: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)


def _record(case: Case, result: Result, index: int) -> dict[str, Any]:
    return {
        "index": index,
        "case": case.describe(),
        "problem": result.problem,
        "exit": result.exit_code,
        "stderr_tail": result.stderr[-600:],
        "files": {
            name: base64.b64encode(data[:4096]).decode() for name, data in case.files.items()
        },
        "sizes": {name: len(data) for name, data in case.files.items()},
    }


def _worker(seed: int, formats: tuple[str, ...], base: Path, bound: float) -> None:
    """Read case indices on stdin, run each in-process, answer one JSON line per case.

    The worker's address space is capped (``XDV_FUZZ_MEMORY``, 4 GiB unless set), so that an
    input that makes a command allocate without end fails with MemoryError in the worker
    instead of taking the machine's memory."""
    import resource

    cap = int(os.environ.get("XDV_FUZZ_MEMORY", str(4 << 30)))
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    corpus = build_corpus(base / "corpus")
    print("ready", flush=True)
    for line in sys.stdin:
        index = int(line)
        case = make_case(seed, index, formats, corpus)
        result = run_in_process(case, base, bound)
        answer = {"index": index, "fmt": case.fmt, "seconds": result.seconds, "kind": result.kind}
        if result.problem is not None:
            answer["record"] = _record(case, result, index)
        print(json.dumps(answer), flush=True)


def campaign(
    cases: int,
    seed: int,
    formats: tuple[str, ...],
    *,
    start: int = 0,
    bound: float = TIME_BOUND_S,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Tally]:
    """Run cases ``start`` .. ``start + cases - 1`` in a watched worker process; a worker that
    stops answering (a hang the alarm could not break) is killed, its case recorded as a hang,
    and a fresh worker goes on with the next case."""
    tallies = {fmt: Tally() for fmt in formats}
    base = Path(tempfile.mkdtemp(prefix="xdv-fuzz-"))
    env = dict(os.environ)
    env.setdefault("XDV_HOME", str(base / "home"))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    index = start
    end = start + cases
    limit_s = bound * WALL_SLACK + 30  # past the in-process alarms: the worker is stuck
    try:
        while index < end:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    "--seed",
                    str(seed),
                    "--formats",
                    ",".join(formats),
                    "--base",
                    str(base),
                    "--bound",
                    str(bound),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            assert worker.stdin is not None and worker.stdout is not None
            out = worker.stdout.fileno()
            buffer = b""
            line, buffer = _next_line(out, buffer, 600)
            if line != b"ready":
                raise RuntimeError("the fuzz worker did not start")
            sent = index
            while index < end:
                # Keep a window of cases queued, so the worker never waits for this process.
                while sent < end and sent - index < _WINDOW:
                    worker.stdin.write(f"{sent}\n".encode())
                    sent += 1
                worker.stdin.flush()
                line, buffer = _next_line(out, buffer, limit_s)
                fmt = formats[index % len(formats)]
                tally = tallies[fmt]
                tally.cases += 1
                if line is None:  # the worker hangs or died: record, replace it
                    tally.hangs += 1
                    tally.seconds += limit_s
                    tally.failures.append({"index": index, "problem": "hang (worker killed)"})
                    worker.kill()
                    worker.wait()
                    index += 1
                    break
                answer = json.loads(line)
                if answer["index"] != index:
                    raise RuntimeError(f"the worker answered case {answer['index']}, not {index}")
                tally.seconds += answer["seconds"]
                if answer["kind"] == "crash":
                    tally.crashes += 1
                elif answer["kind"] == "hang":
                    tally.hangs += 1
                if "record" in answer:
                    tally.failures.append(answer["record"])
                index += 1
                if progress is not None:
                    progress(index - start)
            else:
                worker.stdin.close()
                worker.wait()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return tallies


_WINDOW = 64  # cases queued ahead for a worker


def _next_line(fd: int, buffer: bytes, timeout: float) -> tuple[bytes | None, bytes]:
    """The next line from ``fd`` (without its newline) and what remains buffered, or None if
    none comes within ``timeout`` seconds or the stream ends."""
    import select

    while b"\n" not in buffer:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return None, buffer
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None, buffer
        buffer += chunk
    line, _, rest = buffer.partition(b"\n")
    return line.strip(), rest


def summary(tallies: dict[str, Tally], wall: float) -> str:
    """A table of the figures."""
    lines = [f"{'format':<10}{'cases':>9}{'crashes':>9}{'hangs':>7}{'case s':>10}"]
    total = Tally()
    for fmt, tally in tallies.items():
        lines.append(
            f"{fmt:<10}{tally.cases:>9}{tally.crashes:>9}{tally.hangs:>7}{tally.seconds:>10.1f}"
        )
        total.cases += tally.cases
        total.crashes += tally.crashes
        total.hangs += tally.hangs
        total.seconds += tally.seconds
    lines.append(
        f"{'total':<10}{total.cases:>9}{total.crashes:>9}{total.hangs:>7}{total.seconds:>10.1f}"
    )
    lines.append(f"wall time {wall:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--bound", type=float, default=TIME_BOUND_S)
    parser.add_argument("--jobs", type=int, default=1, help="parallel workers (case ranges)")
    parser.add_argument("--failures", type=Path, help="write every failing case here (JSON)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    formats = tuple(options.formats.split(","))
    if options.worker:
        _worker(options.seed, formats, options.base, options.bound)
        return 0
    started = time.perf_counter()

    def progress(done: int) -> None:
        if done % 1000 == 0:
            print(
                f"{done} cases, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True
            )

    if options.jobs <= 1:
        tallies = campaign(
            options.cases,
            options.seed,
            formats,
            start=options.start,
            bound=options.bound,
            progress=progress,
        )
    else:
        from concurrent.futures import ThreadPoolExecutor

        share = -(-options.cases // options.jobs)
        with ThreadPoolExecutor(options.jobs) as pool:
            parts = list(
                pool.map(
                    lambda job: campaign(
                        min(share, options.cases - job * share),
                        options.seed,
                        formats,
                        start=options.start + job * share,
                        bound=options.bound,
                        progress=progress,
                    ),
                    range(options.jobs),
                )
            )
        tallies = {fmt: Tally() for fmt in formats}
        for part in parts:
            for fmt, tally in part.items():
                merged = tallies[fmt]
                merged.cases += tally.cases
                merged.crashes += tally.crashes
                merged.hangs += tally.hangs
                merged.seconds += tally.seconds
                merged.failures += tally.failures
    wall = time.perf_counter() - started
    print(summary(tallies, wall))
    failures = [f for tally in tallies.values() for f in tally.failures]
    if options.failures is not None:
        options.failures.write_text(json.dumps(failures, indent=1))
    for failure in failures[:50]:
        print(f"#{failure['index']}: {failure.get('case', '')}: {failure['problem']}")
    return 1 if failures else 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
