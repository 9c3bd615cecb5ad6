"""Running cases: drive the executor, then check every expectation a case states.

A case passes when every check passes: its class of ending and error code, its diagnostics,
outputs, Q counts or Φ result, the properties of its trace, and, whenever it wrote a trace,
that the trace verifies (or fails with the expected code) and replays to the same bytes. A case
that requires a feature the implementation lacks is skipped, with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdv.cts._case import Case
from xdv.cts._executor import (
    AdapterExecutor,
    Executor,
    InProcessExecutor,
    Observation,
    Unsupported,
)
from xdv.runtime import NodeKey
from xdv.trace import EventType, read_trace

__all__ = ["CaseResult", "available_features", "mutate_trace", "run_case", "run_cases"]

# A feature is present when the implementation has it: for XDV, when the extra's packages are
# installed and the command's package exists.
_FEATURE_MODULES = {
    "q": ("qiskit_aer",),
    "phi": ("ortools", "numba"),
    "service": ("fastapi", "uvicorn", "httpx"),
    "cluster": ("ray", "xdv.cluster._node"),
    "view": ("xdv.view",),
    "telemetry": ("xdv.telemetry",),
    "attest": ("fastapi", "xdv.service"),
}


def available_features() -> frozenset[str]:
    """The features XDV has here (each extra installed and its command built)."""
    found = set()
    for feature, modules in _FEATURE_MODULES.items():
        try:
            if all(importlib.util.find_spec(name) is not None for name in modules):
                found.add(feature)
        except (ImportError, ValueError):
            continue
    return frozenset(found)


@dataclass(frozen=True)
class CaseResult:
    """One case's verdict: ``pass``, ``fail`` or ``skip``, the reason (empty on a pass), and
    what the trace checks found (``ok``, ``failed`` or ``none``)."""

    id: str
    status: str
    reason: str = ""
    verify: str = "none"
    replay: str = "none"

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "status": self.status,
            "reason": self.reason,
            "verify": self.verify,
            "replay": self.replay,
        }


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of every frame of a trace's bytes (after the 12-byte preamble)."""
    spans = []
    offset = 12
    while offset + 4 <= len(data):
        size = 4 + int.from_bytes(data[offset : offset + 4], "little") + 4
        spans.append((offset, size))
        offset += size
    return spans


_FIELD_OFFSETS = {
    "length": 0,
    "seq": 4,
    "event_type": 4 + 16,
    "header": 4 + 21,
    "prev_hash": 4 + 49,
    "metadata": 4 + 81,
}


def mutate_trace(data: bytes, mutation: dict[str, Any]) -> bytes:
    """``data`` (a trace file's bytes) damaged as ``mutation`` says (see docs/conformance.md):
    flip one byte of a field of an entry, truncate before an entry, drop, swap (with the next)
    or duplicate an entry, append bytes, or flip a preamble byte."""
    kind = mutation["kind"]
    if kind == "preamble":
        return bytes([data[0] ^ 0x01]) + data[1:]
    if kind == "append":
        return data + b"\x00" * 8
    frames = _frames(data)
    index = int(mutation.get("entry", 0))
    if index < 0:
        index += len(frames)
    index = max(0, min(index, len(frames) - 1))
    offset, size = frames[index]
    frame = data[offset : offset + size]
    if kind == "flip":
        name = mutation["field"]
        at = size - 1 if name == "check" else _FIELD_OFFSETS[name]
        changed = bytearray(frame)
        changed[at] ^= 0x01
        return data[:offset] + bytes(changed) + data[offset + size :]
    if kind == "truncate":
        return data[:offset]
    if kind == "drop":
        return data[:offset] + data[offset + size :]
    if kind == "duplicate":
        return data[: offset + size] + frame + data[offset + size :]
    # swap with the next frame
    if index + 1 >= len(frames):
        index -= 1
        offset, size = frames[index]
        frame = data[offset : offset + size]
    next_offset, next_size = frames[index + 1]
    following = data[next_offset : next_offset + next_size]
    return data[:offset] + following + frame + data[next_offset + next_size :]


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return abs(float(expected) - float(actual)) <= 1e-9 * max(1.0, abs(float(expected)))
    return bool(expected == actual)


def _subset(expected: Any, actual: Any, path: str) -> str | None:
    """Why ``actual`` does not contain ``expected`` (maps: every expected key, recursively)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected a map, got {json.dumps(actual)[:80]}"
        for key, value in expected.items():
            if key not in actual:
                return f"{path}.{key}: missing"
            why = _subset(value, actual[key], f"{path}.{key}")
            if why:
                return why
        return None
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            why = _subset(want, got, f"{path}[{index}]")
            if why:
                return why
        return None
    if not _equal(expected, actual):
        return f"{path}: expected {json.dumps(expected)}, got {json.dumps(actual)[:120]}"
    return None


def _trace_events(trace: Path) -> list[tuple[str, str]]:
    """(event type, status) of every entry: names, ``OK`` for status 0."""
    events = []
    for entry in read_trace(trace, allow_open=True).entries:
        kind, status = entry.event_type, entry.status
        name = kind.name if isinstance(kind, EventType) else str(int(kind))
        code = "OK" if int(status) == 0 else getattr(status, "name", str(int(status)))
        events.append((name, code))
    return events


def _matches(pattern: str, event: tuple[str, str]) -> bool:
    """Whether ``event`` is what ``pattern`` names: ``TYPE`` (any status) or ``TYPE:STATUS``
    (``OK``, or an error code name)."""
    name, _, status = pattern.partition(":")
    return event[0] == name and (not status or event[1] == status)


def _check_trace(expected: dict[str, Any], trace: Path | None) -> str | None:
    if trace is None:
        return "no trace was written"
    try:
        events = _trace_events(trace)
    except Exception as error:
        return f"the trace cannot be read: {error}"

    def count(pattern: str) -> int:
        return sum(1 for event in events if _matches(pattern, event))

    for pattern in expected.get("present", ()):
        if not count(pattern):
            return f"trace: no {pattern} entry"
    for pattern in expected.get("absent", ()):
        if count(pattern):
            return f"trace: an unexpected {pattern} entry"
    order = list(expected.get("order", ()))
    position = 0
    for event in events:
        if position < len(order) and _matches(order[position], event):
            position += 1
    if position < len(order):
        return f"trace: {order[position]} does not follow {' → '.join(order[:position]) or 'start'}"
    for pattern, wanted in (expected.get("counts") or {}).items():
        if count(pattern) != wanted:
            return f"trace: {count(pattern)} {pattern} entries, expected {wanted}"
    for pattern, wanted in (expected.get("at_least") or {}).items():
        if count(pattern) < wanted:
            return f"trace: {count(pattern)} {pattern} entries, expected at least {wanted}"
    return None


def _diagnostics(expected: list[str], observed: list[str]) -> str | None:
    if all("@" in item for item in expected):
        want, got = sorted(set(expected)), sorted(set(observed))
    else:
        want = sorted({item.split("@")[0] for item in expected})
        got = sorted({item.split("@")[0] for item in observed})
    if want != got:
        return f"diagnostics {got}, expected {want}"
    return None


def _check(case: Case, seen: Observation) -> str | None:
    """Why the observation fails the case's expectations (None: it meets them)."""
    expect = case.expect
    if "exit" in expect and seen.exit != expect["exit"]:
        detail = f" ({seen.code})" if seen.code else ""
        note = f"; {seen.note}" if seen.note else ""
        return f"ended {seen.exit}{detail}, expected {expect['exit']}{note}"
    if "code" in expect and seen.code != expect["code"]:
        return f"error code {seen.code}, expected {expect['code']}"
    if "diagnostics" in expect:
        why = _diagnostics(list(expect["diagnostics"]), seen.diagnostics)
        if why:
            return why
    if "outputs" in expect:
        want = json.loads(json.dumps(expect["outputs"]))
        if _subset(want, seen.outputs, "outputs") is not None or len(want) != len(seen.outputs):
            return f"outputs {json.dumps(seen.outputs)[:300]}, expected {json.dumps(want)[:300]}"
    for item in expect.get("outputs_include", ()):
        if not any(_equal(item, output) for output in seen.outputs):
            return f"no output {json.dumps(item)} among {json.dumps(seen.outputs)[:200]}"
    if "counts" in expect:
        counts = seen.result.get("counts")
        if counts != expect["counts"]:
            return f"counts {json.dumps(counts)}, expected {json.dumps(expect['counts'])}"
    if "result" in expect:
        why = _subset(expect["result"], seen.result, "result")
        if why:
            return why
    if "trace" in expect:
        return _check_trace(dict(expect["trace"]), seen.trace)
    return None


def _verdict(executor: Executor, case: Case, trace: Path) -> tuple[str, str | None]:
    """The verify check of a trace: (``ok``/``failed``, why it failed)."""
    expected = case.expect.get("verify", "ok")
    ok, code = executor.verify(trace)
    if expected == "ok":
        return ("ok", None) if ok else ("failed", f"the trace does not verify ({code})")
    if ok:
        return "failed", f"the trace verifies, expected it to fail with {expected}"
    if code != expected:
        return "failed", f"verification failed with {code}, expected {expected}"
    return "ok", None


def run_case(case: Case, executor: Executor, features: frozenset[str], workdir: Path) -> CaseResult:
    """Run one case in ``workdir`` (a fresh directory) and judge it. Whatever the
    implementation under test does (crash, hang up, answer garbage) fails this case only."""
    try:
        return _run_case(case, executor, features, workdir)
    except Exception as error:
        return CaseResult(case.id, "fail", f"crashed: {type(error).__name__}: {error}"[:400])


def _run_case(
    case: Case, executor: Executor, features: frozenset[str], workdir: Path
) -> CaseResult:
    missing = [feature for feature in case.requires if feature not in features]
    if missing:
        return CaseResult(case.id, "skip", f"requires {', '.join(missing)}, not available")
    options = dict(case.options)
    if isinstance(options.get("faults"), str):
        options["faults"] = str(case.path.parent / options["faults"])
    elif isinstance(options.get("faults"), dict):
        plan = workdir / "faults.json"
        plan.write_text(json.dumps(options["faults"]), encoding="utf-8")
        options["faults"] = str(plan)
    trace = workdir / "trace.xdvt"
    if case.action in _FEATURE_ACTIONS:
        try:
            return _FEATURE_ACTIONS[case.action](case, executor, options, workdir)
        except Unsupported as unsupported:
            return CaseResult(case.id, "skip", str(unsupported))
    try:
        if case.action == "verify":
            base = case.path.parent / case.input["base"]
            seen = executor.run(base, options, trace)
            if seen.trace is None or not seen.trace.is_file():
                return CaseResult(case.id, "fail", f"the base program wrote no trace ({seen.exit})")
            if "mutate" in case.input:
                data = trace.read_bytes()
                trace.write_bytes(mutate_trace(data, dict(case.input["mutate"])))
            verified, why = _verdict(executor, case, trace)
            return CaseResult(case.id, "pass" if why is None else "fail", why or "", verified)
        if case.action == "run":
            seen = executor.run(case.path, options, trace)
        elif case.action == "check":
            seen = executor.check(case.path, options)
        elif case.action == "qrun":
            seen = executor.qrun(case.path, options, trace)
        else:
            problem = case.input["problem"]
            source = workdir / ("problem.json" if isinstance(problem, dict) else "problem.txt")
            text = json.dumps(problem) if isinstance(problem, dict) else str(problem)
            source.write_text(text, encoding="utf-8")
            seen = executor.phirun(source, options, trace)
    except Exception as error:  # the implementation under test crashed: the case fails
        return CaseResult(case.id, "fail", f"crashed: {type(error).__name__}: {error}"[:400])
    why = _check(case, seen)
    if why is not None:
        return CaseResult(case.id, "fail", why)
    verify = replay = "none"
    if seen.trace is not None and seen.trace.is_file():
        verify, why = _verdict(executor, case, seen.trace)
        if why is not None:
            return CaseResult(case.id, "fail", why, verify)
        wanted = case.expect.get("replay", "ok")
        modes = {"ok": ("reexecute",), "both": ("reexecute", "inject")}.get(wanted, ())
        for mode in modes:
            ok, detail = executor.replay(seen.trace, mode)
            replay = "ok" if ok else "failed"
            if not ok:
                return CaseResult(case.id, "fail", detail, verify, replay)
    elif case.expect.get(
        "replay", "ok" if seen.exit == "ok" and case.action != "check" else "none"
    ) in ("ok", "both"):
        # A run that ends well writes its trace (a static check writes none); one without a
        # trace fails unless the case says there is nothing to replay.
        return CaseResult(case.id, "fail", "no trace was written, so nothing to verify or replay")
    return CaseResult(case.id, "pass", "", verify, replay)


def _base_trace(
    case: Case, executor: Executor, options: dict[str, Any], trace: Path
) -> tuple[Path | None, str]:
    """Run the case's base program (a Q job for ``.qasm``) into ``trace``; (the trace, or None
    and why there is none)."""
    base = case.path.parent / str(case.input["base"])
    if base.suffix == ".qasm":
        seen = executor.qrun(base, options, trace)
    else:
        seen = executor.run(base, options, trace)
    if seen.trace is None or not seen.trace.is_file():
        return None, f"the base program wrote no trace ({seen.exit} {seen.code or ''})".strip()
    return seen.trace, ""


def _series_total(snapshot: dict[str, Any], metric: str, labels: dict[str, Any]) -> float | None:
    """The sum of the values of ``metric``'s series whose labels include ``labels`` (None: no
    such metric)."""
    for item in snapshot.get("metrics", ()):
        if isinstance(item, dict) and item.get("name") == metric:
            total = 0.0
            for series in item.get("series", ()):
                have = series.get("labels", {})
                if all(str(have.get(k)) == str(v) for k, v in labels.items()):
                    total += float(series.get("value", series.get("count", 0)))
            return total
    return None


def _telemetry_case(
    case: Case, executor: Executor, options: dict[str, Any], workdir: Path
) -> CaseResult:
    expect = dict(case.expect["telemetry"])
    trace, why = _base_trace(case, executor, options, workdir / "trace.xdvt")
    if trace is None:
        return CaseResult(case.id, "fail", why)
    thresholds = None
    if "thresholds" in case.input:
        thresholds = workdir / "thresholds.json"
        thresholds.write_text(json.dumps(case.input["thresholds"]), encoding="utf-8")
    snapshot = executor.telemetry(trace, thresholds)
    for wanted in expect.get("series", ()):
        metric, labels = str(wanted["metric"]), dict(wanted.get("labels") or {})
        total = _series_total(snapshot, metric, labels)
        if total is None:
            return CaseResult(case.id, "fail", f"telemetry: no metric {metric}")
        if not _equal(wanted["value"], total):
            shown = ",".join(f"{k}={v}" for k, v in labels.items())
            return CaseResult(
                case.id,
                "fail",
                f"telemetry: {metric}{{{shown}}} is {total}, expected {wanted['value']}",
            )
    if "alerts" in expect:
        rules = [str(a.get("rule")) for a in snapshot.get("alerts", ()) if isinstance(a, dict)]
        if rules != list(expect["alerts"]):
            return CaseResult(case.id, "fail", f"alerts {rules}, expected {expect['alerts']}")
    verify, why_not = _verdict(executor, case, trace)
    if why_not is not None:
        return CaseResult(case.id, "fail", why_not, verify)
    replay = "none"
    if expect.get("same_on_rerun"):
        again, why = _base_trace(case, executor, options, workdir / "again.xdvt")
        if again is None:
            return CaseResult(case.id, "fail", f"the rerun: {why}", verify)
        ok, detail = executor.replay(trace, "reexecute")
        replay = "ok" if ok else "failed"
        if not ok:
            return CaseResult(case.id, "fail", detail, verify, replay)
        if executor.telemetry(again, thresholds) != snapshot:
            return CaseResult(
                case.id, "fail", "telemetry of the same run made again differs", verify, replay
            )
    return CaseResult(case.id, "pass", "", verify, replay)


def _view_case(
    case: Case, executor: Executor, options: dict[str, Any], workdir: Path
) -> CaseResult:
    expect = dict(case.expect["view"])
    trace, why = _base_trace(case, executor, options, workdir / "trace.xdvt")
    if trace is None:
        return CaseResult(case.id, "fail", why)
    before = trace.read_bytes()
    answer = executor.view(trace, int(expect["at"]))
    if trace.read_bytes() != before:
        return CaseResult(case.id, "fail", "the view changed the trace")
    if "state" in expect:
        why_not = _subset(expect["state"], answer.state.get("state"), "state")
        if why_not:
            return CaseResult(case.id, "fail", f"view: {why_not}")
    if "deterministic" in expect:
        same = answer.pages[0] == answer.pages[1]
        if same != bool(expect["deterministic"]):
            return CaseResult(case.id, "fail", f"view: two servers' pages equal: {same}")
    verify, why_not = _verdict(executor, case, trace)
    return CaseResult(case.id, "pass" if why_not is None else "fail", why_not or "", verify)


def _payload(quote: Path) -> dict[str, Any]:
    document = json.loads(quote.read_text(encoding="utf-8"))
    return {key: value for key, value in document.items() if key != "signature"}


def _attest_case(
    case: Case, executor: Executor, options: dict[str, Any], workdir: Path
) -> CaseResult:
    expect = dict(case.expect["quote"])
    change = str(case.input.get("change", "none"))
    nonce = case.input.get("nonce")
    home = workdir / "home"
    home.mkdir()
    quote, expected = workdir / "quote.json", workdir / "expected.json"
    if change == "bad-config":  # a configuration file that is not TOML: the boot must fail
        (home / "cts.toml").write_text("[cts\nthis is = not toml\n", encoding="utf-8")
    failed = executor.attest(home, nonce, quote, expected)
    if failed is not None or "attest" in expect:
        if failed != expect.get("attest"):
            return CaseResult(
                case.id,
                "fail",
                f"the boot ended with {failed or 'a quote'}, expected "
                f"{expect.get('attest') or 'a quote'}",
            )
        return CaseResult(case.id, "pass")
    checked, trusted = quote, None
    verifier_nonce = nonce
    if change in ("repeat", "config"):
        if change == "config":  # every *.toml file of the home is a measured configuration
            (home / "cts.toml").write_text("[cts]\nchanged = true\n", encoding="utf-8")
        checked = workdir / "again.json"
        failed = executor.attest(home, nonce, checked, workdir / "again-expected.json")
        if failed is not None:
            return CaseResult(case.id, "fail", f"the second boot failed with {failed}")
        if "same_payload" in expect and (_payload(quote) == _payload(checked)) != bool(
            expect["same_payload"]
        ):
            return CaseResult(case.id, "fail", "the quote payloads are not as expected")
    elif change == "nonce":
        verifier_nonce = "ff" if nonce != "ff" else "fe"
    elif change == "untrusted":
        trusted = "0" * 64
    elif change == "signature":  # one measured digest changed after signing
        document = json.loads(quote.read_text(encoding="utf-8"))
        digest = document["measurements"][0]["digest"]
        document["measurements"][0]["digest"] = ("1" if digest[0] == "0" else "0") + digest[1:]
        checked = workdir / "forged.json"
        checked.write_text(json.dumps(document, sort_keys=True), encoding="utf-8")
    verdict = executor.verify_quote(checked, expected, verifier_nonce, trusted)
    wanted = str(expect["verify"])
    seen = "ok" if verdict.ok else str(verdict.code)
    if seen != wanted:
        return CaseResult(case.id, "fail", f"verify-quote said {seen}, expected {wanted}")
    if "differences" in expect and list(verdict.differences) != sorted(expect["differences"]):
        return CaseResult(
            case.id,
            "fail",
            f"differing components {list(verdict.differences)}, expected "
            f"{sorted(expect['differences'])}",
        )
    return CaseResult(case.id, "pass")


def _model_case(
    case: Case, executor: Executor, options: dict[str, Any], workdir: Path
) -> CaseResult:
    expect = dict(case.expect["model"])
    found = executor.model_check(case.path, options)
    summary = found.get("summary", "")
    if bool(found["violation"]) != bool(expect["violation"]):
        return CaseResult(case.id, "fail", f"model check: {summary}")
    for key, name in (("states_min", "states"), ("transitions_min", "transitions")):
        if key in expect and int(found[name]) < int(expect[key]):
            return CaseResult(
                case.id,
                "fail",
                f"model check: {found[name]} {name}, expected at least {expect[key]} ({summary})",
            )
    if "depth" in expect and int(found["depth"]) != int(expect["depth"]):
        return CaseResult(case.id, "fail", f"model check reached depth {found['depth']}")
    limit = expect.get("counterexample_max")
    if limit is not None and (found["counterexample"] or 0) > int(limit):
        return CaseResult(
            case.id,
            "fail",
            f"counterexample of {found['counterexample']} actions, not the "
            f"shortest (at most {limit})",
        )
    return CaseResult(case.id, "pass")


def _service_case(
    case: Case, executor: Executor, options: dict[str, Any], workdir: Path
) -> CaseResult:
    expect = dict(case.expect["service"])
    base = case.path.parent / str(case.input["base"])
    answer = executor.service().submit(
        base,
        dict(case.input.get("params") or {}),
        int(options.get("seed", 0)),
        str(case.input.get("tenant", "alice")),
        str(case.input.get("token", "submit")),
        workdir / "trace.xdvt",
    )
    if answer.status != int(expect.get("status", 202)):
        return CaseResult(
            case.id,
            "fail",
            f"the submission got HTTP {answer.status} ({answer.code}), expected "
            f"{expect.get('status', 202)}",
        )
    if "code" in expect and answer.code != expect["code"]:
        return CaseResult(case.id, "fail", f"error code {answer.code}, expected {expect['code']}")
    job = answer.job or {}
    for key in ("state", "exit_code"):
        if key in expect and job.get(key) != expect[key]:
            return CaseResult(case.id, "fail", f"job {key} {job.get(key)}, expected {expect[key]}")
    found = job.get("outputs")
    outputs: list[Any] = found if isinstance(found, list) else []
    if "outputs" in expect and _subset(list(expect["outputs"]), outputs, "outputs") is not None:
        return CaseResult(case.id, "fail", f"outputs {json.dumps(outputs)[:300]}")
    for item in expect.get("outputs_include", ()):
        if not any(_equal(item, output) for output in outputs):
            return CaseResult(case.id, "fail", f"no output {json.dumps(item)} in {outputs}")
    if answer.job is None:
        return CaseResult(case.id, "pass")
    if "trace" in expect:
        why = _check_trace(dict(expect["trace"]), answer.trace)
        if why is not None:
            return CaseResult(case.id, "fail", why)
    if answer.trace is None:  # a job refused before it ran (static errors) has none
        if "trace" in expect or job.get("exit_code") != 65:
            return CaseResult(case.id, "fail", "the node serves no trace of the job")
        return CaseResult(case.id, "pass")
    verify, why_not = _verdict(executor, case, answer.trace)
    if why_not is not None:
        return CaseResult(case.id, "fail", why_not, verify)
    if case.expect.get("replay", "ok") == "none":
        return CaseResult(case.id, "pass", "", verify)
    ok, detail = executor.replay(answer.trace, "reexecute")
    replay = "ok" if ok else "failed"
    return CaseResult(case.id, "pass" if ok else "fail", detail, verify, replay)


def _tamper(directory: Path, how: str, key_store: Path) -> None:
    """Damage the cluster trace in ``directory`` as ``how`` says (see docs/conformance.md):
    a byte of a node trace, a job trace replaced by another's, the manifest edited without
    its key, or re-signed with the coordinator's key after moving a job to another node,
    changing the policy, the merge root or a byte of an agreement certificate."""
    from xdv.cluster import MANIFEST_CONTEXT

    if how == "node-trace":
        path = sorted((directory / "nodes").iterdir())[0]
        data = bytearray(path.read_bytes())
        data[-10] ^= 0x01
        path.write_bytes(bytes(data))
        return
    if how == "job-trace":
        first, second = sorted((directory / "jobs").iterdir())[:2]
        shutil.copyfile(second, first)
        return
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    if how == "manifest":  # edited, not signed again
        manifest["jobs"][0]["status"] = "failed"
        (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        return
    if how == "placement":
        job = manifest["jobs"][0]
        job["node"] = next(n["node"] for n in manifest["nodes"] if n["node"] != job["node"])
    elif how == "policy":
        manifest["policy"]["salt"] = "another salt"
    elif how == "merge-root":
        manifest["merge"]["root"] = "00" * 32
    else:  # an agreement certificate's last bytes
        decision = manifest["epochs"][0]["decision"]
        manifest["epochs"][0]["decision"] = decision[:-16] + "00" * 8
    body = {key: value for key, value in manifest.items() if key != "signature"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    keys = NodeKey(key_store).keys()
    manifest["signature"] = keys.sign(canonical.encode(), context=MANIFEST_CONTEXT).hex()
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _events(trace: Path) -> list[tuple[str, str, int]]:
    """(event type, status, logical time) of every entry but the first (whose metadata names
    how the run was recorded)."""
    entries = read_trace(trace, allow_open=True).entries
    return [
        (
            entry.event_type.name if isinstance(entry.event_type, EventType) else "?",
            str(int(entry.status)),
            entry.logical_time,
        )
        for entry in entries[1:]
    ]


def _cluster_case(
    case: Case, executor: Executor, options: dict[str, Any], workdir: Path
) -> CaseResult:
    from xdv.cluster import place

    expect = dict(case.expect["cluster"])
    jobs = [case.path.parent / str(job) for job in case.input["jobs"]]
    nodes = int(case.input.get("nodes", 2))
    kill = case.input.get("kill")
    keys = workdir / "cluster-keys"
    directory = workdir / "cluster"
    run = executor.cluster(jobs, options, nodes, kill, directory, keys)
    records = run["jobs"]
    lines = [line for record in records for line in record["lines"]]
    if "lines" in expect and lines != list(expect["lines"]):
        return CaseResult(case.id, "fail", f"cluster lines {json.dumps(lines)[:300]}")
    lost = sorted(run.get("lost") or {})
    if "lost" in expect and lost != sorted(expect["lost"]):
        return CaseResult(case.id, "fail", f"lost nodes {lost}, expected {expect['lost']}")
    epochs = run.get("epochs") or []
    if "epochs" in expect and len(epochs) != int(expect["epochs"]):
        return CaseResult(case.id, "fail", f"{len(epochs)} epochs, expected {expect['epochs']}")
    if expect.get("placement"):
        for record in records:  # every job where the final epoch's members put it
            wanted = place(str(record["id"]), list(epochs[-1]))
            if record["node"] != wanted:
                return CaseResult(
                    case.id, "fail", f"job {record['id']} on {record['node']}, not {wanted}"
                )
    if "moved" in expect or "deterministic" in expect:
        again = executor.cluster(jobs, options, nodes, None, workdir / "again", workdir / "k2")
        fault_free = {str(r["id"]): r for r in again["jobs"]}
        if kill is None and "deterministic" in expect:
            same = all(
                fault_free[str(r["id"])]["node"] == r["node"]
                and fault_free[str(r["id"])]["head"] == r["head"]
                for r in records
            )
            if same != bool(expect["deterministic"]):
                return CaseResult(case.id, "fail", "a second run placed or ran jobs otherwise")
        if "moved" in expect:
            moved = sorted(str(r["id"]) for r in records if r["epoch"] > 0)
            held = sorted(i for i, r in fault_free.items() if r["node"] == kill)
            if moved != held or len(moved) != int(expect["moved"]):
                return CaseResult(case.id, "fail", f"moved {moved}; the lost node held {held}")
            for record in records:  # same lines, status and trace head as the fault-free run
                twin = fault_free[str(record["id"])]
                if [record[k] for k in ("lines", "status", "head")] != [
                    twin[k] for k in ("lines", "status", "head")
                ]:
                    return CaseResult(case.id, "fail", f"job {record['id']} differs after moving")
    if expect.get("same_as_run"):
        for index, (path, record) in enumerate(zip(jobs, records, strict=True)):
            single = workdir / f"single-{index}.xdvt"
            seen = executor.run(path, options, single)
            if seen.trace is None or [str(v) for v in seen.outputs] != record["lines"]:
                return CaseResult(case.id, "fail", f"job {record['id']}: `run` printed otherwise")
            job_trace = directory / "jobs" / f"{record['id']}.xdvt"
            if _events(job_trace) != _events(single):
                return CaseResult(case.id, "fail", f"job {record['id']}: its trace is not `run`'s")
    if "tamper" in case.input:
        _tamper(directory, str(case.input["tamper"]), keys)
    ok, code = executor.verify_cluster(directory)
    seen_verdict = "ok" if ok else str(code)
    wanted = str(expect.get("verify", "ok"))
    if seen_verdict != wanted:
        return CaseResult(case.id, "fail", f"the cluster trace: {seen_verdict}, expected {wanted}")
    return CaseResult(case.id, "pass", "", "ok" if wanted == seen_verdict else "failed")


def _transport_case(
    case: Case, executor: Executor, options: dict[str, Any], workdir: Path
) -> CaseResult:
    expect = dict(case.expect["transport"])
    found = executor.transport(
        str(case.input.get("handshake", "ok")),
        int(case.input.get("frames", 0)),
        [str(step) for step in case.input.get("deliver", ())],
    )
    for key in ("handshake", "opened", "refused"):
        if key in expect and found.get(key) != expect[key]:
            return CaseResult(case.id, "fail", f"link {key}: {found.get(key)}, not {expect[key]}")
    if found.get("recorded", found.get("refused")) != found.get("refused"):
        return CaseResult(case.id, "fail", "the link's refusal records differ from its refusals")
    return CaseResult(case.id, "pass")


def _consensus_case(
    case: Case, executor: Executor, options: dict[str, Any], workdir: Path
) -> CaseResult:
    expect = dict(case.expect["consensus"])
    arguments = (
        int(case.input.get("n", 4)),
        int(case.input.get("values", 1)),
        [str(node) for node in case.input.get("crash", ())],
        int(options.get("seed", 0)),
        case.input.get("forge"),
        [str(node) for node in case.input.get("equivocate", ())],
    )
    found = executor.consensus(*arguments)
    if "decided" in expect and found["decided"] != expect["decided"]:
        return CaseResult(case.id, "fail", f"{found['decided']} decisions, not {expect['decided']}")
    if "agreement" in expect and (found["agreement"] and found["valid"]) != expect["agreement"]:
        return CaseResult(case.id, "fail", "replicas decided different or unproposed values")
    if found["view_changes"] < int(expect.get("view_changes_min", 0)):
        return CaseResult(case.id, "fail", f"{found['view_changes']} view changes")
    if "evidence" in expect and found["evidence"] != sorted(expect["evidence"]):
        wanted = sorted(expect["evidence"])
        return CaseResult(case.id, "fail", f"evidence {found['evidence']}, not {wanted}")
    for key in ("verify", "forged"):
        if key in expect and found[key] != expect[key]:
            return CaseResult(case.id, "fail", f"{key}: {found[key]}, expected {expect[key]}")
    if "deterministic" in expect:
        same = executor.consensus(*arguments)["record"] == found["record"]
        if same != bool(expect["deterministic"]):
            return CaseResult(case.id, "fail", f"the same run, twice, gave equal records: {same}")
    return CaseResult(case.id, "pass")


_FEATURE_ACTIONS: dict[str, Callable[[Case, Executor, dict[str, Any], Path], CaseResult]] = {
    "telemetry": _telemetry_case,
    "view": _view_case,
    "attest": _attest_case,
    "model-check": _model_case,
    "service": _service_case,
    "cluster": _cluster_case,
    "transport": _transport_case,
    "consensus": _consensus_case,
}


def _run_batch(
    cases: Sequence[Case], impl: str | None, features: frozenset[str], base: str
) -> list[CaseResult]:
    """Run ``cases`` one after another in fresh directories under ``base``."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=base))
    executor: Executor = (
        InProcessExecutor(home / "keys") if impl is None else AdapterExecutor(impl, home)
    )
    results = []
    try:
        for case in cases:
            workdir = Path(tempfile.mkdtemp(prefix="case-", dir=base))
            try:
                results.append(run_case(case, executor, features, workdir))
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
    finally:
        executor.close()  # the batch's node, if a service case started one
    return results


def _in_worker(cases: Sequence[Case], features: frozenset[str], base: str) -> list[CaseResult]:
    os.environ["XDV_HOME"] = tempfile.mkdtemp(prefix="xdv-home-", dir=base)
    return _run_batch(cases, None, features, base)


def run_cases(
    cases: Iterable[Case],
    *,
    impl: str | None = None,
    jobs: int = 1,
    features: frozenset[str] | None = None,
    progress: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run ``cases`` against XDV in process (``impl`` None) or against the implementation the
    command ``impl`` starts; with ``jobs`` > 1 in that many worker processes (in process) or
    threads (adapter). Results come back in the cases' order."""
    chosen = list(cases)
    have = available_features() if features is None else features
    with tempfile.TemporaryDirectory(prefix="xdv-cts-") as base:
        if jobs <= 1 or len(chosen) <= 1:
            results = []
            for index in range(0, len(chosen), 16):
                batch = _run_batch(chosen[index : index + 16], impl, have, base)
                for result in batch:
                    if progress is not None:
                        progress(result)
                results.extend(batch)
        else:
            # Interleaved batches: Q and Φ cases (the slow ones) spread over the workers; the
            # service cases in one batch of their own, so that one node serves them all.
            served = [case for case in chosen if case.action == "service"]
            rest = [case for case in chosen if case.action != "service"]
            batches = [rest[start :: jobs * 4] for start in range(jobs * 4)]
            batches = [batch for batch in ([served] if served else []) + batches if batch]
            pool: ProcessPoolExecutor | ThreadPoolExecutor
            if impl is None:
                import multiprocessing

                context = multiprocessing.get_context("spawn")
                pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context)
                futures = [pool.submit(_in_worker, batch, have, base) for batch in batches]
            else:
                pool = ThreadPoolExecutor(max_workers=jobs)
                futures = [pool.submit(_run_batch, batch, impl, have, base) for batch in batches]
            by_id: dict[str, CaseResult] = {}
            with pool:
                for future in futures:
                    for result in future.result():
                        by_id[result.id] = result
                        if progress is not None:
                            progress(result)
            results = [by_id[case.id] for case in chosen]
    return results
