"""The cluster trace without Ray: nodes in this process (LocalBackend), the signed manifest,
the merged order, a lost node, tampering, the manifest's golden form and `xdv cluster run
--local` against `xdv run`. The same coordinator and nodes run as Ray actors in
tests/test_cluster_ray.py."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import cbor2
import pytest
from click.testing import CliRunner

from helpers import ROOT
from xdv.cli._common import cli
from xdv.cluster import (
    MANIFEST_CONTEXT,
    ClusterNode,
    ClusterRun,
    Coordinator,
    Decision,
    JobSpec,
    LocalBackend,
    manifest_body,
    place,
    verify_cluster_trace,
    write_cluster_trace,
)
from xdv.errors import ErrorCode, XdvError
from xdv.security import HybridKeyPair
from xdv.trace import EventType, read_trace

GOLDEN = ROOT / "tests" / "golden" / "cluster_manifest.json"
REGENERATE = os.environ.get("XDV_REGENERATE_GOLDEN") == "1"
COORDINATOR_KEY = HybridKeyPair.from_seed(bytes(32))
JOBS = [
    JobSpec(f"offload-{seed}", "run", "examples/hybrid_offload.py", seed=seed)
    for seed in range(1, 4)
] + [
    JobSpec("ping-pong", "run", "examples/ping_pong.py", seed=7),
    JobSpec("producer-consumer", "run", "examples/producer_consumer.py", seed=8),
    JobSpec("fault-isolation", "run", "examples/fault_isolation.py", seed=9),
]


def nodes(count: int = 3) -> list[ClusterNode]:
    return [
        ClusterNode(f"node-{n}", key_seed=bytes([n]) * 32, workdir=None)
        for n in range(1, count + 1)
    ]


def cluster_run(kill: str | None = None, count: int = 3) -> ClusterRun:
    members = nodes(count)
    backend = LocalBackend(members)

    def on_dispatch(epoch: int, batches: dict[str, list[str]]) -> None:
        if kill is not None and epoch == 0:
            backend.kill(kill)

    try:
        return Coordinator(backend, COORDINATOR_KEY).run(JOBS, on_dispatch=on_dispatch)
    finally:
        for member in members:
            member.shutdown()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[ClusterRun, Path]:
    os.chdir(ROOT)  # module targets resolve from the repository root
    run = cluster_run()
    directory = tmp_path_factory.mktemp("cluster") / "trace"
    write_cluster_trace(run, directory, COORDINATOR_KEY)
    return run, directory


@pytest.fixture(scope="module")
def faulted(tmp_path_factory: pytest.TempPathFactory) -> tuple[ClusterRun, Path]:
    os.chdir(ROOT)
    run = cluster_run(kill="node-2")
    directory = tmp_path_factory.mktemp("cluster") / "trace"
    write_cluster_trace(run, directory, COORDINATOR_KEY)
    return run, directory


@pytest.mark.spec("XDV-041-7")
def test_a_cluster_trace_verifies(clean: tuple[ClusterRun, Path]) -> None:
    run, directory = clean
    assert run.ok
    report = verify_cluster_trace(directory, trusted={COORDINATOR_KEY.public.fingerprint})
    assert report.traces == 4 and report.nodes == 3 and report.jobs == len(JOBS)
    assert report.lost == [] and report.trusted
    assert sorted(path.name for path in (directory / "jobs").iterdir()) == sorted(
        f"{job.id}.xdvt" for job in JOBS
    )


@pytest.mark.spec("XDV-041-3.2")
@pytest.mark.spec("XDV-041-5.1")
def test_the_merged_order_is_total_and_respects_every_message(
    clean: tuple[ClusterRun, Path],
) -> None:
    _, directory = clean
    manifest = json.loads((directory / "manifest.json").read_text())
    traces = {
        record["node"]: read_trace(directory / record["file"]).entries
        for record in manifest["traces"]
    }
    keys = [
        (entry.logical_time, entry.node, entry.seq) for trace in traces.values() for entry in trace
    ]
    assert len(set(keys)) == len(keys) == manifest["merge"]["entries"]  # a total order
    coordinator = traces["coordinator"]
    for node, trace in traces.items():
        if node == "coordinator":
            continue
        for batch in (e for e in trace if e.event_type is EventType.CLUSTER_BATCH):
            placed = [
                e.logical_time
                for e in coordinator
                if e.event_type is EventType.CLUSTER_PLACE
                and e.metadata["job"] in batch.metadata["jobs"]
            ]
            assert batch.logical_time > max(placed)  # sent before received
        for done in (e for e in trace if e.event_type is EventType.CLUSTER_JOB_DONE):
            commit = next(
                e
                for e in coordinator
                if e.event_type is EventType.CLUSTER_COMMIT
                and e.metadata["job"] == done.metadata["job"]
            )
            assert commit.logical_time > done.logical_time


@pytest.mark.spec("XDV-041-9")
@pytest.mark.spec("XDV-041-5.2")
def test_a_cluster_run_is_reproducible_byte_for_byte(clean: tuple[ClusterRun, Path]) -> None:
    first, _ = clean
    second = cluster_run()
    assert second.coordinator["trace"] == first.coordinator["trace"]
    for node, bundle in first.bundles.items():
        assert second.bundles[node]["trace"] == bundle["trace"]
        assert second.bundles[node]["jobs"] == bundle["jobs"]
    public = COORDINATOR_KEY.public

    def unsigned(body: dict[str, Any]) -> dict[str, Any]:
        # ML-DSA signatures are hedged (randomized); everything else is the same bytes.
        traces = [{k: v for k, v in t.items() if k != "signature"} for t in body["traces"]]
        epochs = [
            {
                **e,
                "decision": Decision.from_record(
                    cbor2.loads(bytes.fromhex(e["decision"]))
                ).summary(),
            }
            for e in body["epochs"]
        ]
        return {**body, "traces": traces, "epochs": epochs}

    assert unsigned(manifest_body(second, public)) == unsigned(manifest_body(first, public))


@pytest.mark.spec("XDV-041-6.3")
def test_a_lost_node_s_jobs_move_and_the_results_equal_a_fault_free_run(
    clean: tuple[ClusterRun, Path], faulted: tuple[ClusterRun, Path]
) -> None:
    run, directory = faulted
    fault_free, _ = clean
    assert run.lost == {"node-2": 0} and len(run.epochs) == 2
    assert run.epochs[1] == ["node-1", "node-3"]
    for job in JOBS:
        result, node, epoch = run.results[job.id]
        assert result == fault_free.results[job.id][0]  # same lines, status, trace head
        assert node == place(job.id, ["node-1", "node-3"])
        assert epoch == (1 if fault_free.results[job.id][1] == "node-2" else 0)
    assert any(epoch == 1 for _, _, epoch in run.results.values())
    report = verify_cluster_trace(directory)
    assert report.lost == ["node-2"] and report.epochs == 2
    moves = [
        e.metadata
        for e in read_trace(directory / "coordinator.xdvt").entries
        if e.event_type is EventType.CLUSTER_JOB_MOVE
    ]
    assert {m["job"] for m in moves} == {
        job for job, (_, node, _) in fault_free.results.items() if node == "node-2"
    }


def _copy(directory: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(directory, target)
    return target


def _resign(target: Path, edit: Any) -> None:
    manifest = json.loads((target / "manifest.json").read_text())
    edit(manifest)
    body = {key: value for key, value in manifest.items() if key != "signature"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    manifest["signature"] = COORDINATOR_KEY.sign(canonical.encode(), context=MANIFEST_CONTEXT).hex()
    (target / "manifest.json").write_text(json.dumps(manifest))


def _refused(target: Path, code: ErrorCode) -> XdvError:
    with pytest.raises(XdvError) as caught:
        verify_cluster_trace(target)
    assert caught.value.code is code, caught.value
    return caught.value


@pytest.mark.spec("XDV-041-4.2")
@pytest.mark.spec("XDV-041-5.2")
class _Claiming(ClusterNode):
    """A lying node: it answers for a job it was not given too."""

    def run_batch(self, message: dict[str, Any]) -> dict[str, Any]:
        answer = super().run_batch(message)
        stolen = dict(answer["results"][0], job="not-given")
        return {**answer, "results": [*answer["results"], stolen]}


def test_a_node_answering_for_jobs_it_was_not_given_is_treated_as_lost(tmp_path: Path) -> None:
    members = nodes(3)
    liar = _Claiming("node-2", key_seed=bytes([2]) * 32, workdir=None)
    members[1] = liar
    try:
        run = Coordinator(LocalBackend(members), COORDINATOR_KEY).run(JOBS)
    finally:
        for member in members:
            member.shutdown()
    assert run.lost == {"node-2": 0} and "not-given" not in run.results
    for job in JOBS:
        assert run.results[job.id][1] != "node-2"
        assert run.results[job.id][1] == place(job.id, ["node-1", "node-3"]) or (
            run.results[job.id][2] == 0
        )
    write_cluster_trace(run, tmp_path / "trace", COORDINATOR_KEY)
    assert verify_cluster_trace(tmp_path / "trace").lost == ["node-2"]


def test_tampering_is_refused(clean: tuple[ClusterRun, Path], tmp_path: Path) -> None:
    _, directory = clean
    # A flipped byte in a node trace.
    target = _copy(directory, tmp_path / "a")
    node_trace = target / "nodes" / "node-1.xdvt"
    data = bytearray(node_trace.read_bytes())
    data[-10] ^= 1
    node_trace.write_bytes(bytes(data))
    _refused(target, ErrorCode.CLUSTER_TRACE_INVALID)
    # An edited manifest without the coordinator's key.
    target = _copy(directory, tmp_path / "b")
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["jobs"][0]["status"] = "failed"
    (target / "manifest.json").write_text(json.dumps(manifest))
    _refused(target, ErrorCode.CLUSTER_SIGNATURE_INVALID)
    # A job trace removed or replaced by another job's.
    target = _copy(directory, tmp_path / "c")
    shutil.copy(target / "jobs" / "offload-2.xdvt", target / "jobs" / "offload-1.xdvt")
    _refused(target, ErrorCode.CLUSTER_TRACE_INVALID)
    # A node trace swapped for another node's: its head is not the one its node signed.
    target = _copy(directory, tmp_path / "d")
    shutil.copy(target / "nodes" / "node-1.xdvt", target / "nodes" / "node-3.xdvt")
    _refused(target, ErrorCode.CLUSTER_TRACE_INVALID)
    # A re-signed manifest whose merge root is not the traces'.
    target = _copy(directory, tmp_path / "e")
    _resign(target, lambda m: m["merge"].update(root="00" * 32))
    _refused(target, ErrorCode.CLUSTER_MERGE_MISMATCH)
    # A re-signed manifest that moves a job to another node.
    target = _copy(directory, tmp_path / "f")

    def move(manifest: dict[str, Any]) -> None:
        job = manifest["jobs"][0]
        job["node"] = next(n["node"] for n in manifest["nodes"] if n["node"] != job["node"])

    _resign(target, move)
    _refused(target, ErrorCode.CLUSTER_TRACE_INVALID)
    # A node's head signature from another key.
    target = _copy(directory, tmp_path / "g")

    def forge(manifest: dict[str, Any]) -> None:
        manifest["traces"][1]["signature"] = manifest["traces"][2]["signature"]

    _resign(target, forge)
    _refused(target, ErrorCode.CLUSTER_SIGNATURE_INVALID)
    # An agreement certificate that does not verify.
    target = _copy(directory, tmp_path / "h")

    def corrupt(manifest: dict[str, Any]) -> None:
        decision = manifest["epochs"][0]["decision"]
        manifest["epochs"][0]["decision"] = decision[:-16] + "00" * 8

    _resign(target, corrupt)
    _refused(target, ErrorCode.CLUSTER_SIGNATURE_INVALID)
    # A re-signed manifest whose agreement was left out (no member was lost in that epoch).
    target = _copy(directory, tmp_path / "i")
    _resign(target, lambda m: m["epochs"][0].update(decision=""))
    _refused(target, ErrorCode.CLUSTER_SIGNATURE_INVALID)
    # A re-signed manifest that says a node was lost when the coordinator's trace says not.
    target = _copy(directory, tmp_path / "j")
    _resign(target, lambda m: m["nodes"][0].update(lost_in_epoch=0))
    with pytest.raises(XdvError) as caught:
        verify_cluster_trace(target)
    assert caught.value.code in (ErrorCode.CLUSTER_TRACE_INVALID, ErrorCode.CLUSTER_MERGE_MISMATCH)
    # An untrusted signer.
    with pytest.raises(XdvError) as caught:
        verify_cluster_trace(directory, trusted={"0" * 64})
    assert caught.value.code is ErrorCode.CLUSTER_SIGNATURE_INVALID


@pytest.mark.spec("XDV-041-9")
def test_a_placement_the_policy_does_not_give_is_refused(
    clean: tuple[ClusterRun, Path], tmp_path: Path
) -> None:
    _, directory = clean
    target = _copy(directory, tmp_path)
    _resign(target, lambda m: m["policy"].update(salt="other"))
    error = _refused(target, ErrorCode.CLUSTER_TRACE_INVALID)
    assert "policy" in error.message


def _normalized(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: "<hash>"
            if key in {"head", "heads_root", "root", "signature", "decision"} and value[key]
            else _normalized(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_normalized(item) for item in value]
    return value


def test_the_manifest_format_matches_its_golden_file(clean: tuple[ClusterRun, Path]) -> None:
    _, directory = clean
    manifest = json.loads((directory / "manifest.json").read_text())
    # Hashes that the kernel's own trace format decides are masked; everything else is pinned.
    actual = json.dumps(_normalized(manifest), sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    if REGENERATE:
        GOLDEN.write_text(actual)
    assert GOLDEN.read_text() == actual, "the cluster manifest differs from its golden file"


@pytest.mark.spec("XDV-041-3.1")
def test_cluster_run_prints_what_xdv_run_prints(tmp_path: Path) -> None:
    runner = CliRunner()
    target = "examples/hybrid_offload.py"
    alone = runner.invoke(cli, ["run", target, "--seed", "5"])
    assert alone.exit_code == 0, alone.output
    trace = tmp_path / "trace"
    clustered = runner.invoke(
        cli,
        [
            "cluster",
            "run",
            target,
            "--local",
            "--nodes",
            "3",
            "--seed",
            "5",
            "--trace",
            str(trace),
            "--key-store",
            str(tmp_path / "keys"),
        ],
    )
    assert clustered.exit_code == 0, clustered.output
    assert clustered.stdout == alone.stdout
    # The job's trace is byte for byte the trace of that run made without the audit file (the
    # node's signed head and the manifest's roots take its place).
    single = tmp_path / "single.xdvt"
    made = runner.invoke(cli, ["run", target, "--seed", "5", "--trace", str(single), "--no-audit"])
    assert made.exit_code == 0, made.output
    (job_trace,) = sorted((trace / "jobs").iterdir())
    assert job_trace.read_bytes() == single.read_bytes()
    checked = runner.invoke(cli, ["verify", str(trace), "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["kind"] == "cluster"
    (trace / "nodes").rename(trace / "gone")
    broken = runner.invoke(cli, ["verify", str(trace)])
    assert broken.exit_code == 1


@pytest.mark.spec("XDV-041-4.2")
def test_requests_and_answers_cross_only_as_sealed_frames(clean: tuple[ClusterRun, Path]) -> None:
    _, directory = clean
    coordinator = read_trace(directory / "coordinator.xdvt").entries
    established = [e.metadata for e in coordinator if e.event_type is EventType.LINK_ESTABLISHED]
    assert [m["peer"] for m in established] == ["node-1", "node-2", "node-3"]
    assert all(m["role"] == "initiator" and m["epoch"] == 0 for m in established)
    node = read_trace(directory / "nodes" / "node-1.xdvt").entries
    assert [e.event_type for e in node if e.event_type.name.startswith("LINK_")] == [
        EventType.LINK_ESTABLISHED,
        EventType.LINK_CLOSED,
    ]
    # A node answers only frames of its link: a tampered or replayed frame is refused and
    # recorded, and the link goes on.
    member = ClusterNode("node-1", key_seed=bytes([1]) * 32)
    coordinator_run = Coordinator(LocalBackend([member]), COORDINATOR_KEY)
    run = ClusterRun("c", coordinator_run.policy, [], hellos={"node-1": member.hello()})
    run.coordinator_entry = coordinator_run.identity.entry().to_record()
    assert coordinator_run._connect(run, 0, ["node-1"]) == []
    link = coordinator_run.links["node-1"]
    good = link.seal(cbor2.dumps({"method": "open", "args": ["c", 1]}))
    frame = bytearray(good)
    frame[-1] ^= 1
    with pytest.raises(XdvError) as caught:
        member.call(bytes(frame))
    assert caught.value.code is ErrorCode.TRANSPORT_FRAME_FORGED
    assert cbor2.loads(link.open(member.call(good))) == {"ok": None}
    with pytest.raises(XdvError) as caught:
        member.call(good)
    assert caught.value.code is ErrorCode.TRANSPORT_FRAME_REPLAYED
    # A batch the members did not agree on is refused.
    batch = {"epoch": 0, "time": 1, "jobs": [JOBS[0].to_record()]}
    frame = link.seal(cbor2.dumps({"method": "run_batch", "args": [batch]}))
    answer = cbor2.loads(link.open(member.call(frame)))
    assert answer["error"]["code"] == "CLUSTER_JOB_INVALID"
    member.shutdown()
    # A node that pins another coordinator key refuses the handshake.
    pinned = ClusterNode("node-1", key_seed=bytes([1]) * 32, coordinator="0" * 64)
    other = Coordinator(LocalBackend([pinned]), COORDINATOR_KEY)
    run.hellos = {"node-1": pinned.hello()}
    assert other._connect(run, 0, ["node-1"]) == ["node-1"]
    pinned.shutdown()
