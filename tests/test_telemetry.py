"""Telemetry derived from traces (docs/telemetry.md): the schema, values checked against real
runs' traces, alerts, the Prometheus and OTLP formats (parsed back with their own parsers),
the OTLP/HTTP exporter against a real local receiver, golden files, and purity."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from google.protobuf.json_format import Parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from helpers import EXAMPLES, ROOT
from xdv.errors import ErrorCode, TraceError
from xdv.runtime import RunRequest, load_workload, q_job, run
from xdv.telemetry import (
    SCHEMA,
    Snapshot,
    TelemetryError,
    Thresholds,
    alerts,
    export_otlp,
    metrics_from_trace,
    otlp_requests,
    render,
    schema_json,
    to_otlp_json,
    to_prometheus,
)
from xdv.trace import EventType, read_trace

GOLDEN = ROOT / "tests" / "golden"
REGENERATE = os.environ.get("XDV_REGENERATE_GOLDEN") == "1"
BELL = (
    'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\n'
    "h q[0];\ncx q[0], q[1];\nc = measure q;\n"
)


def _run(workload: Any, folder: Path, name: str, seed: int = 3) -> Path:
    request = RunRequest(
        workload,
        seed=seed,
        trace=folder / f"{name}.xdvt",
        audit=False,
        fsync="never",
        key_store=folder / "keys",
        witness_dir=folder,
        handle_signals=False,
    )
    run(request)
    return folder / f"{name}.xdvt"


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real runs: the hybrid example (K transitions), a Q job under a calibration
    profile, and the same job refused by its fidelity floor."""
    folder = tmp_path_factory.mktemp("telemetry")
    return {
        "hybrid": _run(load_workload(str(EXAMPLES / "hybrid_offload.py")), folder, "hybrid"),
        "q": _run(q_job(BELL, shots=300, calibration="fake_manila"), folder, "q"),
        "refused": _run(
            q_job(BELL, shots=300, calibration="fake_manila", fidelity_min=0.99),
            folder,
            "refused",
        ),
    }


def _events(path: Path, event: EventType) -> list[Any]:
    return [entry for entry in read_trace(path).entries if entry.event_type is event]


def _prometheus_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


@pytest.mark.spec("XDV-070-3.1")
def test_every_metric_has_a_name_kind_unit_domain_category_and_bounded_labels() -> None:
    names = [spec.name for spec in SCHEMA]
    assert len(names) == len(set(names))
    for spec in SCHEMA:
        assert spec.name.startswith("xdv_") and spec.unit and spec.description
        assert spec.kind in ("counter", "gauge", "histogram")
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
        assert spec.domain in ("K", "Q", "Φ", "O", "S")
        assert spec.category in (
            "performance",
            "resource",
            "stability",
            "security",
            "fault",
            "scheduling",
        )
        assert (spec.kind == "histogram") == bool(spec.buckets)
        assert list(spec.buckets) == sorted(spec.buckets)


@pytest.mark.spec("XDV-070-3.2")
def test_the_schema_document_is_pinned() -> None:
    _check_golden("schema.json", json.dumps(schema_json(), indent=1, ensure_ascii=False) + "\n")
    categories = {spec.category for spec in SCHEMA}
    assert categories == {"performance", "resource", "stability", "security", "fault", "scheduling"}
    assert {spec.domain for spec in SCHEMA} >= {"K", "Q", "Φ"}


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / "telemetry" / name
    if REGENERATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; see the module docstring"


@pytest.mark.spec("XDV-070-3.3")
def test_golden_snapshot_prometheus_and_otlp_of_the_mixed_trace() -> None:
    """The pinned mixed trace (tests/golden/mixed.xdvt) gives pinned telemetry in every
    format. Regenerate with XDV_REGENERATE_GOLDEN=1 after a deliberate change."""
    snapshot = metrics_from_trace(GOLDEN / "mixed.xdvt")
    _check_golden("mixed.snapshot.json", snapshot.to_bytes().decode("utf-8"))
    _check_golden("mixed.prom", to_prometheus(snapshot))
    _check_golden("mixed.otlp.jsonl", to_otlp_json(snapshot))
    # Every timestamp is a logical time of the trace: nothing later than its last entry.
    entries = read_trace(GOLDEN / "mixed.xdvt").entries
    last = entries[-1].logical_time
    _, spans_line = to_otlp_json(snapshot).splitlines()
    request = Parse(spans_line, ExportTraceServiceRequest())
    times = [
        (span.start_time_unix_nano, span.end_time_unix_nano)
        for scope in request.resource_spans[0].scope_spans
        for span in scope.spans
    ]
    assert times and all(0 <= start <= end <= last for start, end in times)
    starts = {entry.logical_time for entry in entries}
    assert {start for start, _ in times} <= starts


@pytest.mark.spec("XDV-070-4.1")
def test_k_metrics_match_the_hybrid_examples_trace(traces: dict[str, Path]) -> None:
    path = traces["hybrid"]
    snapshot = metrics_from_trace(path)
    entries = read_trace(path).entries
    assert snapshot.value("xdv_trace_entries_total") == len(entries)
    assert snapshot.value("xdv_run_steps_total") == entries[-1].metadata["steps"]
    assert snapshot.value("xdv_k_processes_created_total") == len(
        _events(path, EventType.PROCESS_CREATE)
    )
    assert snapshot.value("xdv_k_effects_total") == len(_events(path, EventType.EFFECT))
    assert snapshot.value("xdv_k_scheduler_decisions_total", decision="dispatch") == len(
        _events(path, EventType.DISPATCH)
    )
    commits = len(_events(path, EventType.TRANSITION_COMMIT))
    rollbacks = len(_events(path, EventType.TRANSITION_ROLLBACK))
    assert (commits, rollbacks) == (2, 1)  # the impatient worker's rollback, then two commits
    assert snapshot.value("xdv_transitions_total", outcome="commit") == commits
    assert snapshot.value("xdv_transitions_total", outcome="rollback") == rollbacks
    revoked = sum(
        len(entry.metadata["ids"]) for entry in _events(path, EventType.CAPABILITY_REVOKE)
    )
    assert snapshot.value("xdv_security_revocations_total") == revoked
    # One span per process, each from its creation to its exit, named as the trace names it.
    created = {entry.process: entry for entry in _events(path, EventType.PROCESS_CREATE)}
    exits = {entry.process: entry for entry in _events(path, EventType.PROCESS_EXIT)}
    spans = [span for span in snapshot.spans if span.kind == "process"]
    assert len(spans) == len(created)
    for span in spans:
        pid = dict(span.attributes)["xdv.process"]
        assert isinstance(pid, int)
        assert span.name == created[pid].metadata["name"]
        assert (span.start, span.end) == (created[pid].logical_time, exits[pid].logical_time)
    # Prometheus text parses back to the same values.
    values = _prometheus_values(to_prometheus(snapshot))
    assert values[("xdv_trace_entries_total", ())] == len(entries)
    assert values[("xdv_transitions_total", (("domain", "K"), ("outcome", "rollback")))] == 1
    # No process memory: emitted values and K call arguments never appear.
    text = snapshot.to_bytes().decode("utf-8")
    assert "Collatz" not in text and "longest" not in text


@pytest.mark.spec("XDV-070-4.2")
@pytest.mark.spec("XDV-072-7")
def test_q_metrics_carry_the_jobs_recorded_diagnostics(traces: dict[str, Path]) -> None:
    path = traces["q"]
    snapshot = metrics_from_trace(path)
    (reserve,) = _events(path, EventType.RESOURCE_RESERVE)
    (result,) = _events(path, EventType.DOMAIN_RESULT)
    calibration = reserve.metadata["terms"]["calibration"]
    diagnostics = result.metadata["value"]["diagnostics"]
    assert calibration["profile"] == "fake_manila"
    assert snapshot.value("xdv_q_jobs_total", calibration="fake_manila", status="OK") == 1
    assert snapshot.value("xdv_q_shots_total", calibration="fake_manila") == 300
    assert snapshot.value("xdv_q_fidelity_estimated_min") == diagnostics["fidelity"]
    assert snapshot.value("xdv_q_decoherence_margin_min", kind="t1") == diagnostics["t1_margin_ns"]
    assert snapshot.value("xdv_q_decoherence_margin_min", kind="t2") == diagnostics["t2_margin_ns"]
    assert snapshot.value("xdv_q_readout_error_max") == diagnostics["readout_error"]
    assert snapshot.value("xdv_q_calibration_info", digest=calibration["digest"]) == 1
    (used,) = snapshot.metric("xdv_q_decoherence_budget_used").series
    assert used.sum == diagnostics["duration_ns"] / diagnostics["duration_ns_budget"]  # type: ignore[union-attr]
    (job,) = [span for span in snapshot.spans if span.kind == "job"]
    attributes = dict(job.attributes)
    assert attributes["xdv.q.fidelity"] == diagnostics["fidelity"]
    assert attributes["xdv.q.calibration"] == "fake_manila" and attributes["xdv.q.shots"] == 300
    # Measurement counts (and anything like amplitudes) never leave the trace into telemetry.
    text = snapshot.to_bytes().decode("utf-8") + to_otlp_json(snapshot)
    assert '"counts"' not in text and "amplitude" not in text and "statevector" not in text


@pytest.mark.spec("XDV-072-3.3.1")
def test_q_alerts_fire_at_the_logical_time_of_the_job(traces: dict[str, Path]) -> None:
    path = traces["q"]
    (result,) = _events(path, EventType.DOMAIN_RESULT)
    diagnostics = result.metadata["value"]["diagnostics"]
    assert metrics_from_trace(path).alerts == ()  # the defaults: a healthy job
    limits = Thresholds(
        q_fidelity_min=diagnostics["fidelity"] + 0.01,
        q_margin_min_ns=diagnostics["t2_margin_ns"] + 1,
        q_readout_error_max=diagnostics["readout_error"] / 2,
    )
    fired = alerts(path, limits)
    assert [alert.rule for alert in fired] == [
        "q.fidelity",
        "q.decoherence_margin",
        "q.readout_error",
    ]
    for alert in fired:
        assert (alert.logical_time, alert.seq) == (result.logical_time, result.seq)
        assert alert.contract == result.contract and alert.domain == "Q"
    assert fired[0].value == diagnostics["fidelity"]
    assert fired[0].threshold == limits.q_fidelity_min
    assert fired[1].value == diagnostics["t2_margin_ns"]
    snapshot = metrics_from_trace(path, thresholds=limits)
    assert snapshot.value("xdv_alerts_total", rule="q.fidelity") == 1
    # A job refused by its decoherence budget is counted by its code and fires a critical alert.
    refused = metrics_from_trace(traces["refused"])
    assert refused.value("xdv_q_jobs_total", status="DECOHERENCE_EXCEEDED") == 1
    assert [(alert.rule, alert.severity) for alert in refused.alerts] == [("q.refused", "critical")]


def test_thresholds_are_data_with_typed_refusals(tmp_path: Path) -> None:
    assert Thresholds.from_json({"q_fidelity_min": 1}).q_fidelity_min == 1.0
    for bad in (
        {"q_fidelity_min": -1},
        {"nope": 1},
        {"denials_max": 0},
        [],
        {"phi_drift_max": "x"},
    ):
        with pytest.raises(TelemetryError) as caught:
            Thresholds.from_json(bad)
        assert caught.value.code is ErrorCode.TELEMETRY_THRESHOLDS_INVALID
    with pytest.raises(TelemetryError) as format_error:
        render(metrics_from_trace(GOLDEN / "mixed.xdvt"), "xml")
    assert format_error.value.code is ErrorCode.TELEMETRY_FORMAT_UNKNOWN


@pytest.mark.spec("XDV-070-7")
def test_faults_are_reported_with_class_domain_and_status() -> None:
    path = GOLDEN / "mixed.xdvt"
    snapshot = metrics_from_trace(path)
    faults = _events(path, EventType.FAULT)
    assert faults
    for fault in faults:
        labels = {"domain": fault.metadata["domain"], "class": fault.metadata["class"]}
        assert snapshot.value("xdv_faults_total", **labels) >= 1
    assert snapshot.value("xdv_faults_total") == len(faults)
    exits = _events(path, EventType.PROCESS_EXIT)
    failed = [entry for entry in exits if entry.status]
    assert snapshot.value("xdv_k_process_exits_total", status="PROCESS_FAULT") == len(failed)
    failed_spans = [span for span in snapshot.spans if span.status == "PROCESS_FAULT"]
    assert len(failed_spans) == len(failed)


def test_the_snapshot_round_trips_and_bad_traces_get_their_trace_error(tmp_path: Path) -> None:
    snapshot = metrics_from_trace(GOLDEN / "mixed.xdvt")
    again = Snapshot.from_json(json.loads(snapshot.to_bytes()))
    assert again.to_bytes() == snapshot.to_bytes()
    with pytest.raises(TelemetryError) as caught:
        Snapshot.from_json({"schema_version": 99})
    assert caught.value.code is ErrorCode.TELEMETRY_SNAPSHOT_INVALID
    data = (GOLDEN / "mixed.xdvt").read_bytes()
    cut = tmp_path / "cut.xdvt"
    cut.write_bytes(data[:-3])
    with pytest.raises(TraceError) as torn:
        metrics_from_trace(cut)
    assert torn.value.code is ErrorCode.TRACE_TORN
    flipped = bytearray(data)
    flipped[200] ^= 1
    with pytest.raises(TraceError) as corrupt:
        metrics_from_trace(bytes(flipped))
    assert corrupt.value.code is ErrorCode.TRACE_CORRUPT
    # An open trace (cut at an entry boundary) is measured when asked to, with its spans open.
    frames = read_trace(data).entries
    open_bytes = data[: len(data) - (len(frames[-1].body) + 8)]
    with pytest.raises(TraceError):
        metrics_from_trace(open_bytes)
    partial = metrics_from_trace(open_bytes, allow_open=True)
    assert partial.run.status == "open" and partial.run.entries == len(frames) - 1


@pytest.mark.spec("XDV-070-3.3")
def test_otlp_json_parses_into_the_otlp_requests_with_the_snapshots_values(
    traces: dict[str, Path],
) -> None:
    snapshot = metrics_from_trace(traces["q"])
    metrics_line, spans_line = to_otlp_json(snapshot).splitlines()
    metrics = Parse(metrics_line, ExportMetricsServiceRequest())
    spans = Parse(spans_line, ExportTraceServiceRequest())
    expected_metrics, expected_spans = otlp_requests(snapshot)
    assert metrics == expected_metrics and spans == expected_spans
    found = {metric.name: metric for metric in metrics.resource_metrics[0].scope_metrics[0].metrics}
    shots = found["xdv_q_shots_total"].sum
    assert shots.is_monotonic and shots.data_points[0].as_int == 300
    assert shots.data_points[0].time_unix_nano == snapshot.run.last_time  # ns = L
    fidelity = found["xdv_q_fidelity_estimated"].histogram.data_points[0]
    assert fidelity.count == 1 and fidelity.sum == snapshot.value("xdv_q_fidelity_estimated_min")
    names = [span.name for span in spans.resource_spans[0].scope_spans[0].spans]
    assert names == ["qrun", "Q run"]
    job = spans.resource_spans[0].scope_spans[0].spans[1]
    process = spans.resource_spans[0].scope_spans[0].spans[0]
    assert job.parent_span_id == process.span_id and job.trace_id == process.trace_id
    assert job.trace_id.hex() == snapshot.run.trace_id


def test_the_file_exporter_appends_otlp_json_lines(traces: dict[str, Path], tmp_path: Path) -> None:
    from xdv.telemetry import OtlpJsonLinesExporter, to_metrics_data, to_spans

    snapshot = metrics_from_trace(traces["hybrid"])
    path = tmp_path / "export.jsonl"
    exporter = OtlpJsonLinesExporter(path)
    exporter.write(snapshot)
    exporter.export_metrics(to_metrics_data(snapshot))
    assert exporter.export(to_spans(snapshot)).name == "SUCCESS"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert "\n".join(lines[:2]) + "\n" == to_otlp_json(snapshot)
    metrics, spans = otlp_requests(snapshot)
    assert Parse(lines[2], ExportMetricsServiceRequest()) == metrics
    assert Parse(lines[3], ExportTraceServiceRequest()) == spans


class _Receiver(BaseHTTPRequestHandler):
    bodies: dict[str, list[bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.setdefault(self.path, []).append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    bodies: dict[str, list[bytes]] = {}
    handler = type("Handler", (_Receiver,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()


def test_otlp_http_export_reaches_a_real_receiver(
    traces: dict[str, Path], receiver: tuple[str, dict[str, list[bytes]]]
) -> None:
    url, bodies = receiver
    snapshot = metrics_from_trace(traces["hybrid"])
    sent = export_otlp(snapshot, url)
    (metrics_body,) = bodies["/v1/metrics"]
    (spans_body,) = bodies["/v1/traces"]
    metrics = ExportMetricsServiceRequest.FromString(metrics_body)
    spans = ExportTraceServiceRequest.FromString(spans_body)
    expected_metrics, expected_spans = otlp_requests(snapshot)
    assert metrics == expected_metrics and spans == expected_spans
    assert sent == {
        "metrics": len(metrics.resource_metrics[0].scope_metrics[0].metrics),
        "spans": len(snapshot.spans),
    }
    with pytest.raises(TelemetryError) as invalid:
        export_otlp(snapshot, "ftp://example")
    assert invalid.value.code is ErrorCode.TELEMETRY_ENDPOINT_INVALID


def test_the_command_line(traces: dict[str, Path], tmp_path: Path) -> None:
    from xdv.cli._main import cli

    runner = CliRunner()
    path = str(traces["q"])
    done = runner.invoke(cli, ["telemetry", path])
    assert done.exit_code == 0, done.output
    assert done.output == to_prometheus(metrics_from_trace(traces["q"]))
    out = tmp_path / "otlp.jsonl"
    done = runner.invoke(cli, ["telemetry", path, "--format", "otlp-json", "-o", str(out)])
    assert done.exit_code == 0 and out.read_text() == to_otlp_json(metrics_from_trace(traces["q"]))
    limits = tmp_path / "limits.json"
    limits.write_text('{"q_fidelity_min": 0.999}')
    done = runner.invoke(cli, ["telemetry", path, "--alerts", "--thresholds", str(limits)])
    assert done.exit_code == 0
    assert [json.loads(line)["rule"] for line in done.output.splitlines()] == ["q.fidelity"]
    done = runner.invoke(cli, ["telemetry", path, "--format", "xml", "--json"])
    assert done.exit_code == 64
    assert json.loads(done.output)["error"]["code"] == "TELEMETRY_FORMAT_UNKNOWN"


@st.composite
def _programs(draw: st.DrawFn) -> list[list[str]]:
    calls = st.sampled_from(["emit", "yield", "sleep", "fail"])
    return draw(st.lists(st.lists(calls, max_size=6), min_size=1, max_size=4))


def _worker(program: list[str]) -> Any:
    from xdv.syscalls import Emit, Sleep, Yield

    for index, call in enumerate(program):
        if call == "emit":
            yield Emit(index)
        elif call == "yield":
            yield Yield()
        elif call == "sleep":
            yield Sleep(index % 3)
        else:
            raise RuntimeError("a failing step")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs=_programs(), seed=st.integers(0, 2**16))
def test_metrics_are_a_pure_function_of_the_trace_bytes(
    programs: list[list[str]], seed: int
) -> None:
    from xdv.core import Kernel

    def run_once() -> bytes:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "run.xdvt"
            kernel = Kernel(seed, trace=path, fsync="never")
            for program in programs:
                kernel.spawn(_worker, program)
            kernel.run()
            return path.read_bytes()

    data = run_once()
    snapshot = metrics_from_trace(data)
    assert metrics_from_trace(bytes(bytearray(data))).to_bytes() == snapshot.to_bytes()
    assert to_prometheus(metrics_from_trace(data)) == to_prometheus(snapshot)
    entries = read_trace(data).entries
    count = {event: 0 for event in EventType}
    for entry in entries:
        count[entry.event_type] += 1  # type: ignore[index]
    assert snapshot.value("xdv_trace_entries_total") == len(entries)
    assert snapshot.value("xdv_k_effects_total") == count[EventType.EFFECT]
    assert snapshot.value("xdv_faults_total") == count[EventType.FAULT]
    assert (
        snapshot.value("xdv_k_scheduler_decisions_total", decision="yield")
        == count[EventType.YIELD]
    )
    assert snapshot.value("xdv_k_process_exits_total") == count[EventType.PROCESS_EXIT]
    assert sum(1 for span in snapshot.spans if span.kind == "process") == len(programs)


@pytest.mark.spec("XDV-070-9")
@pytest.mark.spec("XDV-072-8.1")
def test_a_replayed_run_reports_the_same_telemetry(traces: dict[str, Path], tmp_path: Path) -> None:
    """Telemetry is derived from the trace alone, so the run made again (same workload, same
    seed) and a replay reproduce it exactly: metrics, spans and alerts, in the same order."""
    from xdv.runtime import replay

    for name, workload in (
        ("hybrid", load_workload(str(EXAMPLES / "hybrid_offload.py"))),
        ("refused", q_job(BELL, shots=300, calibration="fake_manila", fidelity_min=0.99)),
    ):
        again = _run(workload, tmp_path, name)
        assert replay(again, "reexecute").ok
        first = metrics_from_trace(traces[name])
        second = metrics_from_trace(again)
        assert second.to_bytes() == first.to_bytes()
        assert to_otlp_json(second) == to_otlp_json(first)
    assert [alert.rule for alert in metrics_from_trace(traces["refused"]).alerts] == ["q.refused"]


@pytest.mark.spec("XDV-070-5.2")
def test_snapshots_merge_per_tenant_in_any_order_and_each_trace_counts_once(
    traces: dict[str, Path],
) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from xdv.telemetry import Aggregate

    snapshots = [
        ("alice", metrics_from_trace(traces["q"])),
        ("bob", metrics_from_trace(traces["hybrid"])),
        ("alice", metrics_from_trace(traces["refused"])),
    ]
    texts = []
    for order in (snapshots, snapshots[::-1]):
        aggregate = Aggregate(("tenant",))
        for tenant, snapshot in order:
            assert aggregate.add(snapshot, tenant)
            assert not aggregate.add(snapshot, tenant)  # the same trace again: not counted
        registry = CollectorRegistry(auto_describe=False)
        registry.register(aggregate)
        texts.append(generate_latest(registry).decode())
    assert texts[0] == texts[1]
    values = _prometheus_values(texts[0])
    assert values[("xdv_traced_jobs_total", (("tenant", "alice"),))] == 2
    assert values[("xdv_traced_q_shots_total", (("tenant", "alice"),))] == 300
    assert (
        values[
            ("xdv_traced_q_jobs_total", (("status", "DECOHERENCE_EXCEEDED"), ("tenant", "alice")))
        ]
        == 1
    )
    assert values[("xdv_traced_entries_total", (("tenant", "bob"),))] == snapshots[1][1].run.entries
    assert values[("xdv_traced_traces", ())] == 3
    # A node counts by job: two jobs that did the same work wrote identical traces, and both
    # count; the same job never counts twice.
    by_job = Aggregate(("tenant",))
    assert by_job.add(snapshots[0][1], "alice", key="job-1")
    assert by_job.add(snapshots[0][1], "alice", key="job-2")
    assert not by_job.add(snapshots[0][1], "alice", key="job-2")
    assert by_job.seen("job-1") and not by_job.seen(snapshots[0][1].run.head_hash)


def test_every_metric_and_alert_rule_is_documented() -> None:
    text = (ROOT / "docs" / "telemetry.md").read_text(encoding="utf-8")
    for spec in SCHEMA:
        assert f"| `{spec.name}` | {spec.kind} | `{spec.unit}` |" in text, spec.name
    for rule in (
        "q.fidelity",
        "q.decoherence_margin",
        "q.decoherence_budget",
        "q.readout_error",
        "q.refused",
        "phi.stability",
        "phi.noise",
        "phi.drift",
        "phi.coherence_violation",
        "security.denials",
        "fault.escalated",
        "fault.recovery_failed",
        "node.panic",
    ):
        assert f"| `{rule}` |" in text, rule
    for name in Thresholds().to_json():
        assert f"`{name}`" in text, name
