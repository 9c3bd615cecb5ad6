"""The fuzz harness in the test suite (docs/fuzzing.md).

The default run is short and derandomized: a fixed slice of a seeded campaign over the trace,
audit, proof, witness and special-file inputs, in-process, plus Hypothesis properties and a few
cases through the real ``xdv`` binary. With ``--long`` the campaign covers every format with
``XDV_FUZZ_CASES`` cases (100,000 unless set) in a watched worker process.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import fuzzlib
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xdv.errors import XdvError
from xdv.trace import HEADER, PREAMBLE, scan_trace, split_frames, verify_trace

LONG = os.environ.get("XDV_LONG") == "1"
SHORT_CASES = 160  # a few seconds on one idle core
EXAMPLES = 2000 if LONG else 40


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> fuzzlib.Corpus:
    return fuzzlib.build_corpus(tmp_path_factory.mktemp("fuzz-corpus"))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-cases")


def _failures(results: list[tuple[fuzzlib.Case, fuzzlib.Result]]) -> list[str]:
    return [
        f"{case.describe()}: {result.problem}\n{result.stderr[-800:]}"
        for case, result in results
        if result.problem is not None
    ]


def test_the_short_campaign_over_traces_audits_proofs_witnesses_and_special_files(
    corpus: fuzzlib.Corpus, base: Path
) -> None:
    results = []
    for index in range(SHORT_CASES):
        case = fuzzlib.make_case(7, index, fuzzlib.HARDENED, corpus)
        results.append((case, fuzzlib.run_in_process(case, base, bound=8.0)))
    assert not _failures(results), "\n".join(_failures(results))
    # The campaign reached every format and more than one outcome (it is not all refusals at
    # the door, nor all successes).
    assert {case.fmt for case, _ in results} == set(fuzzlib.HARDENED)
    assert {result.exit_code for _, result in results} >= {0, 1}


def test_the_oracle_catches_what_it_is_meant_to_catch() -> None:
    case = fuzzlib.Case("trace", "t", ["verify", "x"], outputs=frozenset({"allowed"}))

    def verdict(**changes: object) -> str | None:
        fields: dict[str, object] = {
            "exit_code": 1,
            "seconds": 0.1,
            "stdout": "",
            "stderr": "",
            "written": [],
        }
        fields.update(changes)
        return fuzzlib.judge(case, fuzzlib.Result(**fields))  # type: ignore[arg-type]

    assert verdict() is None and verdict(written=["allowed"]) is None
    assert verdict(exit_code=2) is not None
    assert verdict(exit_code=None) is not None and verdict(cpu_seconds=99.0) is not None
    assert verdict(seconds=40.0) is None  # a slow, loaded machine: within the wall-clock slack
    assert verdict(seconds=999.0) is not None
    assert verdict(stderr="Traceback (most recent call last):\n  boom\nValueError") is not None
    assert verdict(written=["stray.json"]) is not None


def test_the_real_binary_refuses_a_fifo_and_a_self_containing_trace(
    corpus: fuzzlib.Corpus, base: Path
) -> None:
    from xdv.trace._format import HEADER as _HEADER

    bodies = [frame[4:] for frame in split_frames(corpus.trace)]
    bodies[1] = bodies[1][: _HEADER.size] + b"\xa1\x61\x61\xd8\x1c\x81\xd8\x1d\x00"
    cases = [
        fuzzlib.Case("special", "fifo", ["verify", "t.xdvt"], special={"t.xdvt": "fifo"}),
        fuzzlib.Case(
            "trace", "shared-ref", ["trace", "show", "t.xdvt"], {"t.xdvt": fuzzlib.rechain(bodies)}
        ),
    ]
    for case in cases:
        result = fuzzlib.run_subprocess(case, base, bound=60.0)
        assert result.problem is None, (case.describe(), result.problem, result.stderr)
        assert result.exit_code == 1, (case.describe(), result.stdout, result.stderr)


_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=not LONG,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_SETTINGS
@given(st.binary(max_size=400), st.booleans())
def test_any_bytes_are_a_trace_or_a_typed_refusal(data: bytes, with_preamble: bool) -> None:
    data = PREAMBLE + data if with_preamble else data
    report = verify_trace(data, allow_open=True)
    assert report.ok or isinstance(report.error, XdvError)
    scan_trace(data)
    with contextlib.suppress(XdvError):
        split_frames(data)


# CBOR items built by hand, tags and every other form included, so that the profile check
# meets what a generic encoder would never produce.
def _head(major: int, argument: int) -> bytes:
    if argument < 24:
        return bytes([major << 5 | argument])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * width):
            return bytes([major << 5 | info]) + argument.to_bytes(width, "big")
    raise ValueError(argument)


_cbor = st.recursive(
    st.one_of(
        st.integers(0, 2**64 - 1).map(lambda n: _head(0, n)),
        st.binary(max_size=8).map(lambda b: _head(2, len(b)) + b),
        st.text(max_size=8).map(lambda t: _head(3, len(t.encode())) + t.encode()),
        st.sampled_from([b"\xf4", b"\xf5", b"\xf6", b"\xf7", b"\xf9\x7e\x00", b"\x1c", b"\xff"]),
        st.sampled_from([b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00", b"\xfb\x3f\xf0" + b"\0" * 6]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: _head(4, len(xs)) + b"".join(xs)),
        st.lists(st.tuples(inner, inner), max_size=3).map(
            lambda kv: _head(5, len(kv)) + b"".join(k + v for k, v in kv)
        ),
        st.tuples(st.integers(0, 300), inner).map(lambda t: _head(6, t[0]) + t[1]),
        st.lists(inner, max_size=3).map(lambda xs: b"\x9f" + b"".join(xs) + b"\xff"),
        inner.map(lambda x: b"\x81" * 70 + x),
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def frames(corpus: fuzzlib.Corpus) -> list[bytes]:
    return [frame[4:] for frame in split_frames(corpus.trace)]


@_SETTINGS
@given(metadata=_cbor, where=st.integers(0, 10**6))
def test_any_metadata_in_a_well_chained_trace_is_read_or_refused_with_a_typed_error(
    frames: list[bytes], metadata: bytes, where: int
) -> None:
    bodies = list(frames)
    index = where % len(bodies)
    bodies[index] = bodies[index][: HEADER.size] + metadata
    data = fuzzlib.rechain(bodies)
    report = verify_trace(data)
    if not report.ok:
        assert isinstance(report.error, XdvError)
        assert report.entries <= index  # the damage is found at the entry, or before it
    for entry in scan_trace(data).entries:
        json.dumps(entry.to_json())  # whatever was accepted can be shown


_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@_SETTINGS
@given(data=st.data())
def test_any_edit_of_a_proof_or_witness_is_verified_or_refused_with_a_typed_error(
    corpus: fuzzlib.Corpus, data: st.DataObject
) -> None:
    from xdv.cli._audit import check_proof
    from xdv.domains.phi import verify_witness

    fmt = data.draw(st.sampled_from(["proof", "witness"]))
    _, raw = data.draw(st.sampled_from(corpus.items[fmt]))
    document = json.loads(raw)
    paths = list(fuzzlib._walk_paths(document))
    path = data.draw(st.sampled_from(paths))
    document = fuzzlib._set(document, path, data.draw(_json))
    try:
        if fmt == "proof":
            check_proof(document, root=bytes.fromhex(corpus.root))
        else:
            verify_witness(document, recheck=data.draw(st.booleans()))
    except XdvError:
        pass


@pytest.mark.slow
def test_the_long_campaign_over_every_format() -> None:
    cases = int(os.environ.get("XDV_FUZZ_CASES", "100000"))
    seed = int(os.environ.get("XDV_FUZZ_SEED", "1"))
    tallies = fuzzlib.campaign(cases, seed, fuzzlib.FORMATS)
    failures = [failure for tally in tallies.values() for failure in tally.failures]
    print(fuzzlib.summary(tallies, 0.0))
    assert not failures, json.dumps(failures[:20], indent=1)


def test_cases_are_deterministic(corpus: fuzzlib.Corpus) -> None:
    for index in (0, 5, 17):
        first = fuzzlib.make_case(3, index, fuzzlib.FORMATS, corpus)
        again = fuzzlib.make_case(3, index, fuzzlib.FORMATS, corpus)
        assert first == again
    assert fuzzlib.make_case(3, 0, fuzzlib.FORMATS, corpus) != fuzzlib.make_case(
        4, 0, fuzzlib.FORMATS, corpus
    )
